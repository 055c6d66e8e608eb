// A polled source cannot see a deletion, and sees a merge or a correction only at its next poll. The
// worker therefore evaluates a row that waited (settle time, an outage) again at the source before its
// first send (delivery.recheckAfterSeconds), over HTTP against the FHIR sandbox and the simulator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Observation, Patient, Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { RecheckNotReady } from '../../src/delivery/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation } from '../../src/sandbox/demo/generate.js';
import { CHILD_PROGRAMME, DEFAULT_SANDBOX_AUTH } from '../../src/sandbox/dhis2/index.js';
import { startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { OvertakenReadFailed } from '../../src/sources/pipeline.js';
import type { SubjectRecheck } from '../../src/sources/recheck.js';
import { SourceCallError } from '../../src/sources/shared/source-error.js';
import {
  birthResources,
  bridgeConfigObject,
  type Harness,
  notifiedDeclaration,
  sleep,
  startHarness,
  startSimulators,
  waitUntil,
} from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';
import {
  answerJson,
  type FaultProxy,
  type FaultRule,
  forbiddenPage,
  noAnswer,
  startFaultProxy,
} from './helpers/fault-proxy.js';

const child = (resources: Resource[]): Patient => {
  const found = resources.find((r): r is Patient => r.resourceType === 'Patient' && r.id?.endsWith('-child') === true);
  assert.ok(found);
  return found;
};

const child0 = (): Patient => child(birthResources(0));

/** The rows of birth 0 and birth 1, in that order. */
function rowsOf(h: Harness) {
  const bySubject = (i: number) => h.rows().find((r) => r.subjectKey === `Patient/${child(birthResources(i)).id}`);
  return [bySubject(0), bySubject(1)];
}

/** Two births polled and recorded; nothing sent yet (settle 1 s, recheck after 1 s unless turned off). */
async function twoWaitingBirths(recheckAfterSeconds = 1): Promise<Harness> {
  const h = await startHarness({ worker: false, delivery: { settleSeconds: 1, recheckAfterSeconds } });
  for (const i of [0, 1]) for (const r of birthResources(i)) await h.fhir.upsert(r);
  const poller = h.bridge.sources[0]?.poller;
  assert.ok(poller);
  await poller.pollOnce();
  assert.deepEqual(
    h.rows().map((r) => r.state),
    ['pending', 'pending'],
  );
  return h;
}

/** Past the settle time, then the worker runs; no poll in between. */
async function deliverAfterSettle(h: Harness): Promise<void> {
  await sleep(1_100);
  await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
}

describe('bridge: waiting rows rechecked at the source before their first send', () => {
  it('a child deleted (voided) in the EMR while its birth waited is withdrawn; the other birth goes out', async () => {
    const h = await twoWaitingBirths();
    try {
      const gone = child(birthResources(0));
      const res = await fetch(`${h.fhir.baseUrl}/Patient/${gone.id}`, { method: 'DELETE' });
      assert.ok(res.ok, `delete: HTTP ${res.status}`);
      await deliverAfterSettle(h);
      const [withdrawn, sent] = rowsOf(h);
      assert.equal(withdrawn?.state, 'skipped');
      assert.equal(withdrawn?.skipReason, 'deleted in the source before it was sent');
      assert.equal(sent?.state, 'delivered');
      assert.ok(sent?.recheckedAt, 'the delivered row was rechecked too');
      const events = await h.sim.control.events();
      assert.equal(events.length, 1);
      assert.equal(events[0]?.id, sent?.eventId);
    } finally {
      await h.close();
    }
  });

  it('a child merged away (inactive) while waiting is skipped, and a weight corrected meanwhile goes out', async () => {
    const h = await twoWaitingBirths();
    try {
      const merged = child(birthResources(0));
      await h.fhir.upsert({ ...merged, active: false } as Patient);
      const weight = birthResources(1).find((r): r is Observation => r.resourceType === 'Observation');
      assert.ok(weight?.valueQuantity);
      await h.fhir.upsert({ ...weight, valueQuantity: { ...weight.valueQuantity, value: 3210 } });
      await deliverAfterSettle(h);
      const [skipped, sent] = rowsOf(h);
      assert.equal(skipped?.state, 'skipped');
      assert.match(skipped?.skipReason ?? '', /inactive|merged/);
      assert.equal(sent?.state, 'delivered');
      const [event] = await h.sim.control.events();
      assert.ok(event);
      assert.equal(notifiedDeclaration(event)['child.weightAtBirth'], 3.21, 'the corrected weight');
    } finally {
      await h.close();
    }
  });

  it('with recheckAfterSeconds 0 the rows go out as polled: the deleted child is notified too', async () => {
    const h = await twoWaitingBirths(0);
    try {
      const gone = child(birthResources(0));
      await fetch(`${h.fhir.baseUrl}/Patient/${gone.id}`, { method: 'DELETE' });
      await deliverAfterSettle(h);
      assert.deepEqual(
        h.rows().map((r) => [r.state, r.recheckedAt]),
        [
          ['delivered', null],
          ['delivered', null],
        ],
      );
      assert.equal((await h.sim.control.events()).length, 2);
    } finally {
      await h.close();
    }
  });
});

/**
 * Births 0, 1 and 2 polled and waiting; birth 1 then entered in error in the EMR and birth 2's weight corrected.
 * `fault` (a fault-proxy rule) keeps some read for child 0 from being answered (`child0Id`) through the
 * recheck, and `failed` says the proxy saw it. What the others' reads show is recorded (birth 1 withdrawn,
 * birth 2 corrected); only birth 0 goes out as recorded, or, `waits` (the fault is a proxy's page), not at
 * all until the proxy lets its reads through.
 */
async function recheckWithChild0Unread(
  fault: (child0Id: string) => FaultRule,
  failed: (seen: FaultProxy['seen'], child0Id: string) => boolean,
  { timeoutMs, waits = false }: { timeoutMs?: number; waits?: boolean } = {},
): Promise<void> {
  const proxy = await startFaultProxy();
  const h = await startHarness({
    worker: false,
    delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
    source: {
      baseUrl: (sandbox) => {
        proxy.target = sandbox;
        return `${proxy.url}${new URL(sandbox).pathname}`;
      },
      ...(timeoutMs ? { timeoutMs } : {}),
      // Where the read fails through every try (a 500, a 429, no answer in time), the tries 10 ms apart rather
      // than 0.5 s then 1 s: what these prove is what the recheck makes of a read that failed through them.
      // Not for a proxy's page: there the waiting row is rechecked each time its lease ends while births 1
      // and 2 settle, and fast tries made that take longer, not shorter (7-13 s against a 10 s bound).
      ...(waits ? {} : { retry: { baseDelayMs: 10 } }),
    },
  });
  try {
    for (const i of [0, 1, 2]) for (const r of birthResources(i)) await h.fhir.upsert(r);
    await h.bridge.sources[0]?.poller.pollOnce();
    const rowOf = (i: number) => h.rows().find((r) => r.subjectKey === `Patient/${child(birthResources(i)).id}`);
    assert.deepEqual(
      [0, 1, 2].map((i) => rowOf(i)?.state),
      ['pending', 'pending', 'pending'],
    );
    // Birth 1 is entered in error after it was recorded; birth 2's weight is corrected.
    const withdrawn: Record<string, Record<string, unknown>> = {
      Encounter: { status: 'entered-in-error' },
      Observation: { status: 'entered-in-error' },
      RelatedPerson: { active: false },
    };
    for (const r of birthResources(1)) {
      const change = r.id?.endsWith('-maternity') ? undefined : withdrawn[r.resourceType];
      if (change) await h.fhir.upsert({ ...r, ...change } as typeof r);
    }
    const weight = birthResources(2).find((r): r is Observation => r.resourceType === 'Observation');
    assert.ok(weight?.valueQuantity);
    await h.fhir.upsert({ ...weight, valueQuantity: { ...weight.valueQuantity, value: 3210 } });
    const unreadable = child0().id ?? '';
    proxy.rules.push(fault(unreadable));

    if (waits) {
      // Not until idle: birth 0's row is due again, and rechecked again, each time its lease ends.
      await sleep(1_100);
      await waitUntil(
        'births 1 and 2 settled',
        async () => {
          await h.bridge.worker.processNext();
          return rowOf(1)?.state === 'skipped' && rowOf(2)?.state === 'delivered';
        },
        10_000,
      );
    } else await deliverAfterSettle(h);
    assert.ok(failed(proxy.seen, unreadable), "child 0's read failed");
    const [unread, enteredInError, corrected] = [0, 1, 2].map(rowOf);
    assert.equal(enteredInError?.state, 'skipped', 'withdrawn: its evaluation was recorded');
    assert.match(enteredInError?.skipReason ?? '', /^no longer notifiable: no birth evidence/);
    assert.equal(corrected?.state, 'delivered');
    const events = await h.sim.control.events();
    const sentCorrected = events.find((e) => e.id === corrected?.eventId);
    assert.ok(sentCorrected);
    assert.equal(notifiedDeclaration(sentCorrected)['child.weightAtBirth'], 3.21, 'the corrected weight');
    if (!waits) {
      assert.equal(unread?.state, 'delivered', 'could not be checked: sent as recorded, the EMR stops no registration');
      assert.equal(events.length, 2);
      return;
    }
    // The page says nothing of the record: its row is neither sent unchecked, withdrawn nor kept dead.
    assert.deepEqual(
      [unread?.state, unread?.skipReason, unread?.withdrawnReason, unread?.eventId],
      ['pending', null, null, null],
      'waits to be checked',
    );
    assert.equal(events.length, 1);
    // The proxy lets the bridge through again: rechecked once its lease ends, and sent.
    proxy.rules.length = 0;
    await waitUntil(
      'birth 0 delivered',
      async () => {
        await h.bridge.worker.processNext();
        return rowOf(0)?.state === 'delivered';
      },
      10_000,
    );
    assert.equal((await h.sim.control.events()).length, 2);
  } finally {
    await h.close();
    await proxy.close();
  }
}

/** A search (not a read by `_id`) that names child 0: one of its context searches, alone or batched. */
function contextSearchOf(url: string | undefined, child0Id: string): boolean {
  const asked = new URL(url ?? '/', 'http://proxy');
  return asked.search !== '' && !asked.searchParams.has('_id') && decodeURIComponent(asked.search).includes(child0Id);
}

describe('bridge: a recheck in which one record cannot be read', () => {
  it("records what the others' reads show (a birth entered in error is withdrawn); only the unread one goes out as recorded", async () => {
    // The EMR answers 500 to every read of child 0 (alone or in an `_id` list), whatever the retries.
    await recheckWithChild0Unread(
      (id) => (req) =>
        req.url?.includes(id)
          ? answerJson(500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] })
          : undefined,
      (seen, id) => seen.some((s) => s.url.includes(`/Patient/${id}`) && s.status === 500),
    );
  });

  it("the same when child 0's context searches get no answer in time (its neighbours' withdrawal is recorded)", async () => {
    // Child 0 itself reads fine; every search naming it (its encounters, observations, mother) is left hanging
    // past sources[].timeoutMs: a first timeout is no slow record yet, so its evaluation fails.
    await recheckWithChild0Unread(
      (id) => (req) => (contextSearchOf(req.url, id) ? noAnswer() : undefined),
      (seen, id) => seen.some((s) => contextSearchOf(s.url, id) && s.status === undefined),
      { timeoutMs: 400 },
    );
  });

  it("the same when the EMR answers 429 to child 0's context searches through every retry", async () => {
    await recheckWithChild0Unread(
      (id) => (req) =>
        contextSearchOf(req.url, id)
          ? answerJson(429, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'throttled' }] })
          : undefined,
      (seen, id) => seen.some((s) => contextSearchOf(s.url, id) && s.status === 429),
    );
  });

  it("a proxy's page to child 0's own read: only its row waits, the others' reads are recorded and go out", async () => {
    // A WAF rule blocks every read naming child 0 (alone or in an `_id` list) with its own HTML page.
    await recheckWithChild0Unread(
      (id) => (req) => (req.url?.includes(id) ? forbiddenPage() : undefined),
      (seen, id) => seen.some((s) => s.url.includes(`/Patient/${id}`) && s.status === 403),
      { waits: true },
    );
  });

  it("a proxy's page to child 0's context searches: only its row waits, not sent as recorded", async () => {
    // Child 0 itself reads fine; its evaluation's searches meet the page (the evaluation stops for the source).
    await recheckWithChild0Unread(
      (id) => (req) => (contextSearchOf(req.url, id) ? forbiddenPage() : undefined),
      (seen, id) => seen.some((s) => contextSearchOf(s.url, id) && s.status === 403),
      { waits: true },
    );
  });
});

describe('bridge: the recheck while the routing table is not resolved', () => {
  it('lets the waiting rows wait (neither re-mapped without offices nor sent unchecked), then checks them', async () => {
    const h = await twoWaitingBirths();
    const object = bridgeConfigObject({
      sim: h.sim,
      fhirBaseUrl: h.fhir.baseUrl,
      dbPath: h.config.store.path,
      options: { delivery: { settleSeconds: 1, recheckAfterSeconds: 1 } },
    });
    // A restart during which OpenCRVS cannot answer location lookups: the routing table does not resolve.
    const restarted = new Bridge(configFromObject(object), {
      logger: silentLogger,
      schedule: false,
      http: false,
      worker: false,
    });
    try {
      await h.bridge.stop();
      // While the bridge was down, the EMR deleted one child.
      const gone = child0();
      assert.ok((await fetch(`${h.fhir.baseUrl}/Patient/${gone.id}`, { method: 'DELETE' })).ok);
      await h.sim.control.configure({ faults: { errorRate: 1, operations: ['locations'] } });
      await restarted.start();
      assert.equal(restarted.ready, false, 'the routing table did not resolve');
      await sleep(1_100);
      await restarted.worker.processNext(); // claims them for the recheck, which cannot run yet
      await restarted.worker.processNext(); // and does not send them meanwhile
      assert.deepEqual(
        restarted.ledger.list().map((r) => r.state),
        ['pending', 'pending'],
        'neither dead ("office not known") nor sent without the check',
      );
      assert.equal((await h.sim.control.events()).length, 0);

      await h.sim.control.configure({ faults: {} });
      await restarted.resolveLocations();
      await sleep(2_100); // FAST_DELIVERY's lock timeout: the lease of the deferred rows
      await restarted.worker.runUntilIdle({ timeoutMs: 10_000 });
      const byChild = (id: string | undefined) => restarted.ledger.list().find((r) => r.subjectKey === `Patient/${id}`);
      assert.equal(byChild(gone.id)?.state, 'skipped');
      assert.equal(byChild(child(birthResources(1)).id)?.state, 'delivered');
      assert.equal((await h.sim.control.events()).length, 1);
    } finally {
      await h.sim.control.configure({ faults: {} });
      await restarted.stop();
      await h.close();
    }
  });
});

describe("bridge: a recheck batch with rows of two sources, one answered by a proxy's page", () => {
  it("only that source's rows wait; the other source's rows are rechecked and go out", async () => {
    // Source emr reads the sandbox itself; source emr-b another EMR behind a proxy, which answers the
    // recheck's reads with its own 403 page (a WAF rule): no answer of that EMR, so its rows wait.
    const sims = await startSimulators();
    const other = await startFhirSandboxWith({ port: 0, seed: DEMO_FACILITIES.map(facilityLocation) }, {});
    const proxy = await startFaultProxy();
    proxy.target = other.baseUrl;
    const object = sims.configObject({ delivery: { settleSeconds: 1, recheckAfterSeconds: 1 } });
    const [own] = object.sources as Array<Record<string, unknown>>;
    const behindProxy = { ...own, id: 'emr-b', baseUrl: `${proxy.url}${new URL(other.baseUrl).pathname}` };
    const bridge = new Bridge(configFromObject({ ...object, sources: [own, behindProxy] }), {
      logger: silentLogger,
      schedule: false,
      http: false,
      worker: false,
    });
    try {
      await bridge.start();
      for (const i of [0, 1]) for (const r of birthResources(i)) await sims.fhir.upsert(r);
      for (const i of [2, 3]) for (const r of birthResources(i, 'b')) await other.upsert(r);
      for (const source of bridge.sources) await source.poller.pollOnce();
      const rows = (sourceId: string) => bridge.ledger.list({ sourceId, limit: 100 });
      assert.deepEqual(
        ['emr', 'emr-b'].map((id) => rows(id).map((r) => r.state)),
        [
          ['pending', 'pending'],
          ['pending', 'pending'],
        ],
      );
      // The EMR deletes birth 0's child meanwhile: the recheck of emr's rows sees it.
      const gone = child0();
      assert.ok((await fetch(`${sims.fhir.baseUrl}/Patient/${gone.id}`, { method: 'DELETE' })).ok);
      proxy.rules.push(() => forbiddenPage());
      await sleep(1_100);
      // All four in one batch (the worker claims up to its concurrency): emr's rows are not held by emr-b's.
      assert.ok(bridge.config.delivery.concurrency >= 4);
      await waitUntil(
        "emr's rows settled",
        async () => {
          await bridge.worker.processNext();
          return rows('emr').every((r) => r.state === 'delivered' || r.state === 'skipped');
        },
        10_000,
      );
      assert.ok(
        proxy.seen.some((s) => s.status === 403),
        "the recheck of emr-b's rows met the proxy's page",
      );
      const byChild = (id: string | undefined) => rows('emr').find((r) => r.subjectKey === `Patient/${id}`);
      assert.equal(byChild(gone.id)?.state, 'skipped', 'rechecked: the deleted child is withdrawn');
      assert.equal(byChild(child(birthResources(1)).id)?.state, 'delivered');
      assert.deepEqual(
        rows('emr-b').map((r) => r.state),
        ['pending', 'pending'],
        "emr-b's rows wait, neither withdrawn nor sent unchecked",
      );
      assert.equal((await sims.sim.control.events()).length, 1);

      // The proxy lets the bridge through again: emr-b's rows are rechecked and go out once their lease ends.
      proxy.rules.length = 0;
      await waitUntil(
        "emr-b's rows delivered",
        async () => {
          await bridge.worker.processNext();
          return rows('emr-b').every((r) => r.state === 'delivered');
        },
        10_000,
      );
      assert.equal((await sims.sim.control.events()).length, 3);
    } finally {
      await bridge.stop();
      await proxy.close();
      await other.close();
      await sims.close();
    }
  });
});

describe('bridge: a record withdrawn in the EMR after its OpenCRVS event was created', () => {
  /** Birth 0 polled, created in OpenCRVS, its NOTIFY failing (or answered and lost) until the faults clear. */
  async function createdNotNotified(commitThenFail: boolean): Promise<Harness> {
    const h = await startHarness({ worker: false, delivery: { recheckAfterSeconds: 1, baseDelayMs: 10 } });
    for (const r of birthResources(0)) await h.fhir.upsert(r);
    await h.bridge.sources[0]?.poller.pollOnce();
    await h.sim.control.configure({
      faults: commitThenFail
        ? { commitThenFailRate: 1, operations: ['notify'] }
        : { errorRate: 1, errorStatus: 500, operations: ['notify'] },
    });
    await h.bridge.worker.processNext();
    const [row] = h.rows();
    assert.equal(row?.state, 'failed');
    assert.ok(row?.eventId, 'created in OpenCRVS');
    await h.sim.control.configure({ faults: {} });
    return h;
  }

  it('deleted before any NOTIFY reached OpenCRVS: never notified, and the ledger names the event left there', async () => {
    const h = await createdNotNotified(false);
    try {
      const child = child0();
      const res = await fetch(`${h.fhir.baseUrl}/Patient/${child.id}`, { method: 'DELETE' });
      assert.ok(res.ok);
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      const [row] = h.rows();
      assert.equal(row?.state, 'skipped');
      assert.match(
        row?.skipReason ?? '',
        /^deleted in the source before it was sent \(its OpenCRVS event \w+ was created and never notified\)$/,
      );
      const [event] = await h.sim.control.events();
      assert.equal(event?.actions.filter((a) => a.type === 'NOTIFY').length, 0, 'no NOTIFY after the delete');
    } finally {
      await h.close();
    }
  });

  it('merged after its NOTIFY reached OpenCRVS (the answer lost): delivered, and the merge shown after it', async () => {
    const h = await createdNotNotified(true);
    try {
      await h.fhir.upsert({ ...child0(), active: false } as Patient);
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      const [row] = h.rows();
      assert.equal(row?.state, 'delivered', 'OpenCRVS holds it: the ledger says so');
      assert.equal(row?.updatesAfterNotification, 1);
      assert.match(row?.withdrawnReason ?? '', /inactive record/);
      const [event] = await h.sim.control.events();
      assert.equal(
        event?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested').length,
        1,
        'one NOTIFY',
      );
    } finally {
      await h.close();
    }
  });
});

describe('bridge: a DHIS2 tracked entity deleted while its birth waited', () => {
  it('is withdrawn at the recheck; the others go out', async () => {
    const h = await startDhis2Harness({
      births: 2,
      deaths: 0,
      writeBack: false,
      delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
    });
    try {
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      await source.poller.pollOnce();
      const waiting = h.rows().filter((r) => r.sourceId === BIRTHS_SOURCE);
      assert.equal(waiting.length, 2);
      assert.ok(waiting.every((r) => r.state === 'pending'));
      const [gone] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(gone?.trackedEntity);
      const deleted = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=DELETE`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
        body: JSON.stringify({ trackedEntities: [{ trackedEntity: gone.trackedEntity }] }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(deleted.status, 200, await deleted.text());
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      const rows = h.rows().filter((r) => r.sourceId === BIRTHS_SOURCE);
      const withdrawn = rows.find((r) => r.subjectKey === `TrackedEntity/${gone.trackedEntity}`);
      assert.equal(withdrawn?.state, 'skipped');
      assert.equal(withdrawn?.skipReason, 'deleted in the source before it was sent');
      assert.deepEqual(
        rows.filter((r) => r !== withdrawn).map((r) => r.state),
        ['delivered'],
      );
      assert.equal((await h.events()).length, 1);
    } finally {
      await h.close();
    }
  });
});

describe('bridge: a recheck whose commit another evaluation overtook', () => {
  it('leaves its rows waiting (not sent as recorded) when the record could not be read again', async () => {
    const h = await twoWaitingBirths();
    try {
      const source = h.bridge.sources[0];
      assert.ok(source);
      // What the recheck saw (a withdrawal, say) was not recorded, and reading it again failed.
      source.pipeline.finished = async () => {
        throw new OvertakenReadFailed('a record another evaluation overtook could not be read again');
      };
      const runners = (h.bridge as unknown as { recheckRunners(): Map<string, SubjectRecheck> }).recheckRunners();
      const run = runners.get(source.settings.id);
      assert.ok(run);
      await assert.rejects(run([`Patient/${child0().id}`]), RecheckNotReady);
    } finally {
      await h.close();
    }
  });
});

describe("bridge: a proxy's page the FHIR recheck cannot tie to a record", () => {
  it('leaves every row of the source waiting, as RecheckNotReady naming no subject', async () => {
    const h = await twoWaitingBirths();
    try {
      const source = h.bridge.sources[0];
      assert.ok(source);
      // Thrown by the evaluation as a whole, not by one subject's read: no record to name.
      const page = new SourceCallError('search Encounter: HTTP 403 (not a FHIR answer)', 403, true, { foreign: true });
      source.pipeline.evaluate = async () => {
        throw page;
      };
      const runners = (h.bridge as unknown as { recheckRunners(): Map<string, SubjectRecheck> }).recheckRunners();
      const run = runners.get(source.settings.id);
      assert.ok(run);
      const err = await run([`Patient/${child0().id}`, `Patient/${child(birthResources(1)).id}`]).then(
        () => assert.fail('the recheck went on past the page'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RecheckNotReady, String(err));
      assert.equal(err.message, page.message);
      assert.equal(err.subjectKeys, undefined, 'every row of the source waits');
    } finally {
      await h.close();
    }
  });
});
