// A correction to a record of a birth's context only (the mother, an observation), the child's own record
// unchanged, over HTTP against the FHIR sandbox, the DHIS2 simulator and the OpenCRVS simulator. What
// docs/deployment.md (§7, "A record whose content changed …") and docs/mappings.md ("Which changes a poll
// sees") say is seen, and what is not:
// - waiting to be sent, the worker's recheck maps the birth again with fresh reads: the correction goes out;
// - FHIR: a poll sees a correction to a record the mapping *searches* for by the child (a RelatedPerson, an
//   Observation of the child: it names the child), and one to a record it only *reads* by reference (the
//   mother's own Patient, the maternity encounter): the ledger keeps with each row the records its context
//   reached (migration 023), and a changed one maps those rows' children again. Delivered, that counts an
//   update after notification; waiting, it replaces the payload; dead, it requeues the row, but a row an
//   operator dismissed is not mapped again for it. A record more rows read than
//   SourcePipeline.maxContextReaders is shared reference data and maps none of them again;
// - DHIS2: the mother's tracked entity is not in the programme the poll lists; each pass also reads, by uid
//   and updatedAfter, the tracked entities the ledger's rows read as their context, so her correction maps
//   the child again: delivered, it counts an update after notification once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Encounter, Observation, Patient, RelatedPerson, Resource } from '@medplum/fhirtypes';
import Database from 'better-sqlite3';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ATTRIBUTES, CHILD_PROGRAMME, DEFAULT_SANDBOX_AUTH } from '../../src/sandbox/dhis2/index.js';
import type { TrackedEntity } from '../../src/sandbox/dhis2/types.js';
import { fhirRecheck } from '../../src/sources/fhir/recheck.js';
import { reevaluate } from '../../src/sources/fhir/reevaluate.js';
import { MAX_CONTEXT_READERS, SourcePipeline } from '../../src/sources/pipeline.js';
import {
  birthResources,
  notifiedDeclaration,
  type Simulators,
  sleep,
  startSimulators,
} from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, type Dhis2Harness, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

const CORRECTED = { use: 'official' as const, family: 'Corrected', given: ['Amended'] };
const correctedName = { firstname: 'Amended', surname: 'Corrected' };

const byType = <T extends Resource>(resources: Resource[], type: T['resourceType'], suffix: string): T => {
  const found = resources.find((r) => r.resourceType === type && r.id?.endsWith(suffix) === true);
  assert.ok(found, `${type} *${suffix}`);
  return found as T;
};

/**
 * Birth `i` as the sandbox writes it; `mother: 'patient'` leaves out the RelatedPerson, so the mapping takes
 * the mother from her own Patient, read through the maternity encounter the birth encounter is part of.
 */
function birth(i: number, mother: 'relatedPerson' | 'patient'): Resource[] {
  const all = birthResources(i);
  return mother === 'patient' ? all.filter((r) => r.resourceType !== 'RelatedPerson') : all;
}

/** A bridge on the simulators' ledger (no schedule, no worker): stopped and started again as `serve` would be. */
async function bridgeOn(sims: Simulators, delivery: Record<string, unknown>): Promise<Bridge> {
  const object = sims.configObject({ delivery });
  const bridge = new Bridge(configFromObject(object), {
    logger: silentLogger,
    schedule: false,
    http: false,
    worker: false,
  });
  await bridge.start();
  return bridge;
}

async function pollOnce(bridge: Bridge) {
  const poller = bridge.sources[0]?.poller;
  assert.ok(poller);
  return poller.pollOnce();
}

async function onlyEvent(sims: Simulators) {
  const events = await sims.sim.control.events();
  assert.equal(events.length, 1, 'one OpenCRVS event');
  const [event] = events;
  assert.ok(event);
  return event;
}

describe('FHIR: a correction to a record of the context only, the child unchanged', () => {
  // `pollBetween`: a poll between the correction and the send.
  const waiting = [
    { mother: 'patient', recheckAfterSeconds: 1, pollBetween: false },
    { mother: 'relatedPerson', recheckAfterSeconds: 1, pollBetween: true },
    { mother: 'patient', recheckAfterSeconds: 0, pollBetween: false },
    { mother: 'patient', recheckAfterSeconds: 0, pollBetween: true },
  ] as const;
  for (const { mother, recheckAfterSeconds, pollBetween } of waiting) {
    const record = mother === 'patient' ? 'Patient' : 'RelatedPerson';
    const title = pollBetween
      ? `waiting to be sent, a poll maps the birth again for the mother's corrected ${record}: its payload is replaced${recheckAfterSeconds > 0 ? '' : ' (no recheck)'}`
      : recheckAfterSeconds > 0
        ? `waiting to be sent (settleSeconds), the mother's corrected ${record} goes out: the recheck reads it`
        : `with recheckAfterSeconds 0 and no poll meanwhile, the waiting birth goes out with the mother's ${record} as first polled`;
    it(title, async () => {
      const sims = await startSimulators();
      const bridge = await bridgeOn(sims, { settleSeconds: 1, recheckAfterSeconds });
      try {
        const resources = birth(0, mother);
        for (const r of resources) await sims.fhir.upsert(r);
        await pollOnce(bridge);
        const [row] = bridge.ledger.list({ limit: 10 });
        assert.equal(row?.state, 'pending');
        if (mother === 'patient') {
          const motherPatient = byType<Patient>(resources, 'Patient', '-mother');
          await sims.fhir.upsert({ ...motherPatient, name: [CORRECTED] });
        } else {
          const rp = byType<RelatedPerson>(resources, 'RelatedPerson', '-mother-rp');
          await sims.fhir.upsert({ ...rp, name: [CORRECTED] });
        }
        if (pollBetween) {
          // The RelatedPerson names the child; the mother's Patient names no child, but the ledger row says
          // the birth's context read her: either way the child is mapped again and the waiting payload replaced.
          const polled = await pollOnce(bridge);
          assert.equal(polled.mapped.replaced, 1);
          assert.notEqual(bridge.ledger.get(row.id)?.payloadHash, row.payloadHash);
        }
        await sleep(1_100);
        await bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
        assert.equal(bridge.ledger.get(row.id)?.state, 'delivered');
        const sent = notifiedDeclaration(await onlyEvent(sims))['mother.name'];
        if (recheckAfterSeconds > 0 || pollBetween) assert.deepEqual(sent, correctedName);
        else assert.notDeepEqual(sent, correctedName);
      } finally {
        await bridge.stop();
        await sims.close();
      }
    });
  }

  it('delivered, a corrected RelatedPerson or Observation of the child counts an update after notification', async () => {
    const sims = await startSimulators();
    const bridge = await bridgeOn(sims, {});
    try {
      const resources = birth(1, 'relatedPerson');
      for (const r of resources) await sims.fhir.upsert(r);
      assert.ok((await bridge.syncOnce()).ok);
      const rp = byType<RelatedPerson>(resources, 'RelatedPerson', '-mother-rp');
      await sims.fhir.upsert({ ...rp, name: [CORRECTED] });
      const renamed = await bridge.syncOnce();
      assert.equal(renamed.report.mapped['updated-after-notification'], 1, 'the RelatedPerson names the child');
      const weight = byType<Observation>(resources, 'Observation', '-weight');
      assert.ok(weight.valueQuantity);
      await sims.fhir.upsert({ ...weight, valueQuantity: { ...weight.valueQuantity, value: 3210 } });
      const reweighed = await bridge.syncOnce();
      assert.equal(reweighed.report.mapped['updated-after-notification'], 1, 'the Observation names the child');
      const [row] = bridge.ledger.list({ limit: 10 });
      assert.equal(row?.updatesAfterNotification, 2);
      await onlyEvent(sims);
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });

  it("delivered, the mother's own Patient corrected alone is counted once by the next poll; the maternity encounter changed alone maps the birth again to no effect", async () => {
    const sims = await startSimulators();
    let bridge = await bridgeOn(sims, {});
    try {
      const resources = birth(2, 'patient');
      for (const r of resources) await sims.fhir.upsert(r);
      assert.ok((await bridge.syncOnce()).ok);
      const event = await onlyEvent(sims);
      assert.notDeepEqual(notifiedDeclaration(event)['mother.name'], correctedName);
      const motherPatient = byType<Patient>(resources, 'Patient', '-mother');
      await sims.fhir.upsert({ ...motherPatient, name: [CORRECTED] });
      // The mother's Patient is no birth and points at no child: the row that read her is what names it.
      const polled = await bridge.syncOnce();
      assert.equal(polled.report.mapped['updated-after-notification'], 1);
      const [row] = bridge.ledger.list({ limit: 10 });
      assert.equal(row?.updatesAfterNotification, 1);
      assert.equal((await bridge.syncOnce()).report.mapped['updated-after-notification'], 0, 'nothing new');

      // The maternity encounter names the mother, not the child: the birth is mapped again (unchanged: the
      // mapping reads nothing of what changed), and no update is counted.
      const maternity = byType<Encounter>(resources, 'Encounter', '-maternity');
      await sims.fhir.upsert({ ...maternity, status: 'finished', length: { value: 9, unit: 'h' } });
      const remapped = await bridge.syncOnce();
      assert.equal(remapped.report.mapped.unchanged, 1, 'the child was mapped again');
      assert.equal(remapped.report.mapped['updated-after-notification'], 0);
      assert.equal(bridge.ledger.get(row.id)?.updatesAfterNotification, 1);

      // Reading the period again counts nothing more: the correction was counted once.
      await bridge.stop();
      bridge = await bridgeOn(sims, {});
      const reread = await bridge.syncOnce(undefined, { since: '2020-01-01' });
      assert.equal(reread.report.mapped['updated-after-notification'], 0);
      assert.equal(bridge.ledger.get(row.id)?.updatesAfterNotification, 1);
      await onlyEvent(sims);
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });

  it('a row recorded before the ledger kept context reads (migration 023) is not found by her Patient; sync --since reads the child again and counts it', async () => {
    const sims = await startSimulators();
    let bridge = await bridgeOn(sims, {});
    try {
      const resources = birth(3, 'patient');
      for (const r of resources) await sims.fhir.upsert(r);
      assert.ok((await bridge.syncOnce()).ok);
      // As an upgraded ledger holds a row delivered before the upgrade.
      const db = new Database(join(sims.dir, 'bridge.db'));
      assert.ok(db.prepare('DELETE FROM context_reads').run().changes > 0);
      db.close();
      const motherPatient = byType<Patient>(resources, 'Patient', '-mother');
      await sims.fhir.upsert({ ...motherPatient, name: [CORRECTED] });
      const polled = await bridge.syncOnce();
      assert.equal(polled.report.mapped['updated-after-notification'], 0);
      assert.equal(bridge.ledger.list({ limit: 10 })[0]?.updatesAfterNotification, 0);

      // The workaround the docs give: stop serve, read the period again, start serve.
      await bridge.stop();
      bridge = await bridgeOn(sims, {});
      const reread = await bridge.syncOnce(undefined, { since: '2020-01-01' });
      assert.equal(reread.report.mapped['updated-after-notification'], 1);
      const [row] = bridge.ledger.list({ limit: 10 });
      assert.equal(row?.updatesAfterNotification, 1);
      await onlyEvent(sims);
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });

  it('a record more rows read than the fan-out cap is shared reference data: its change maps none of them again, and is counted', async () => {
    const sims = await startSimulators();
    const bridge = await bridgeOn(sims, { settleSeconds: 3600 });
    try {
      // Triplets: three children whose birth encounters are part of one maternity encounter of one mother.
      const first = birth(4, 'patient');
      const maternity = byType<Encounter>(first, 'Encounter', '-maternity');
      const siblings = [5, 6].flatMap((i) =>
        birth(i, 'patient')
          .filter((r) => !r.id?.endsWith('-mother') && !r.id?.endsWith('-maternity'))
          .map((r) =>
            r.resourceType === 'Encounter' ? { ...r, partOf: { reference: `Encounter/${maternity.id}` } } : r,
          ),
      );
      for (const r of [...first, ...siblings]) await sims.fhir.upsert(r);
      await pollOnce(bridge);
      const rows = bridge.ledger.list({ limit: 10 });
      assert.equal(rows.length, 3);
      assert.ok(rows.every((row) => row.state === 'pending'));
      const motherPatient = byType<Patient>(first, 'Patient', '-mother');
      await sims.fhir.upsert({ ...motherPatient, name: [CORRECTED] });

      // A pipeline that takes a record read by more than two rows for shared reference data, reading the
      // change as a notification of it would.
      const source = bridge.sources[0];
      assert.ok(source);
      const shared: string[] = [];
      const capped = new SourcePipeline({
        sourceId: source.settings.id,
        mappings: source.mappings,
        ledger: bridge.ledger,
        logger: silentLogger,
        mapOptions: () => ({ resolveLocation: (ref) => ref }),
        maxContextReaders: 2,
        onSharedRecord: (type) => shared.push(type),
      });
      const skipped = await reevaluate({ client: source.client, pipeline: capped }, [`Patient/${motherPatient.id}`]);
      assert.deepEqual(shared, ['Patient'], 'counted, by type');
      assert.equal(skipped.mapped.replaced, 0);
      for (const row of rows) assert.equal(bridge.ledger.get(row.id)?.payloadHash, row.payloadHash);

      // Within the cap (the bridge's own pipeline: 20), the three births are mapped again, each once.
      const polled = await pollOnce(bridge);
      assert.equal(polled.mapped.replaced, 3);
      for (const row of rows) assert.notEqual(bridge.ledger.get(row.id)?.payloadHash, row.payloadHash);
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });

  it('a recheck (or replay) of a row whose subject is her Patient maps no birth that read her; a poll does', async () => {
    const sims = await startSimulators();
    const bridge = await bridgeOn(sims, { settleSeconds: 3600 });
    try {
      const resources = birth(9, 'patient');
      for (const r of resources) await sims.fhir.upsert(r);
      await pollOnce(bridge);
      const [row] = bridge.ledger.list({ limit: 10 });
      assert.equal(row?.state, 'pending');
      const motherPatient = byType<Patient>(resources, 'Patient', '-mother');
      await sims.fhir.upsert({ ...motherPatient, name: [CORRECTED] });
      // What the worker's recheck (and `replay`) runs for a row of hers (a maternal death): her key alone.
      const source = bridge.sources[0];
      assert.ok(source);
      await fhirRecheck({ client: source.client, pipeline: source.pipeline })([`Patient/${motherPatient.id}`]);
      assert.equal(bridge.ledger.get(row.id)?.payloadHash, row.payloadHash, "the child's row was not asked about");
      const polled = await pollOnce(bridge);
      assert.equal(polled.mapped.replaced, 1, 'a poll of her change maps the birth again');
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });

  it('her Patient deleted, as a notification says: the births that read her are mapped again, not one a recheck names', async () => {
    const sims = await startSimulators();
    const bridge = await bridgeOn(sims, { settleSeconds: 3600 });
    try {
      const resources = birth(10, 'patient');
      for (const r of resources) await sims.fhir.upsert(r);
      await pollOnce(bridge);
      const [row] = bridge.ledger.list({ limit: 10 });
      assert.equal(row?.state, 'pending');
      const motherPatient = byType<Patient>(resources, 'Patient', '-mother');
      const deleted = await fetch(`${sims.fhir.baseUrl}/Patient/${motherPatient.id}`, {
        method: 'DELETE',
        signal: AbortSignal.timeout(10_000),
      });
      assert.ok(deleted.ok, `DELETE ${deleted.status}`);
      const source = bridge.sources[0];
      assert.ok(source);
      const mother = `Patient/${motherPatient.id}`;
      // A recheck of a row of hers (readers: false) leaves the birth as it was.
      await fhirRecheck({ client: source.client, pipeline: source.pipeline })([mother]);
      const unchanged = bridge.ledger.get(row.id);
      assert.deepEqual([unchanged?.state, unchanged?.payloadHash], [row.state, row.payloadHash]);
      // The inbox's reading of a notification of her deletion maps the birth again, without her.
      await reevaluate({ client: source.client, pipeline: source.pipeline }, [mother]);
      const after = bridge.ledger.get(row.id);
      assert.equal(after?.state, 'pending');
      assert.ok(row.payload?.declaration['mother.name'], 'she was read at first');
      assert.equal(after?.payload?.declaration['mother.name'], undefined, 'the waiting payload no longer has her');
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });

  it('her Patient changed alone brings back a dead birth that read her, never one an operator dismissed', async () => {
    const sims = await startSimulators();
    const bridge = await bridgeOn(sims, {});
    try {
      // One baby recorded twice under one maternity encounter of one mother: both refused by OpenCRVS, the
      // duplicate dismissed ("duplicate of #12"), the other left dead.
      const first = birth(7, 'patient');
      const maternity = byType<Encounter>(first, 'Encounter', '-maternity');
      const duplicate = birth(8, 'patient')
        .filter((r) => !r.id?.endsWith('-mother') && !r.id?.endsWith('-maternity'))
        .map((r) =>
          r.resourceType === 'Encounter' ? { ...r, partOf: { reference: `Encounter/${maternity.id}` } } : r,
        );
      for (const r of [...first, ...duplicate]) await sims.fhir.upsert(r);
      await sims.sim.control.configure({ actionConfirmation: 'reject' });
      await bridge.syncOnce();
      const rows = bridge.ledger.list({ limit: 10 });
      assert.equal(rows.length, 2);
      assert.deepEqual(
        rows.map((row) => row.state),
        ['dead', 'dead'],
      );
      const kept = rows.find((row) => row.subjectKey.endsWith('-7-child'));
      const dismissed = rows.find((row) => row.subjectKey.endsWith('-8-child'));
      assert.ok(kept && dismissed, rows.map((row) => row.subjectKey).join());
      assert.deepEqual(bridge.ledger.dismiss([dismissed.id], 'duplicate of #12').dismissed, [dismissed.id]);
      await sims.sim.control.configure({ actionConfirmation: 'accept' });
      const notifies = async () =>
        (await sims.sim.control.events()).flatMap((e) =>
          e.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested'),
        ).length;
      const before = await notifies();

      // Months later she moves, and her Patient's address is updated at a visit; neither child changed.
      const motherPatient = byType<Patient>(first, 'Patient', '-mother');
      await sims.fhir.upsert({
        ...motherPatient,
        address: [{ line: ['12 New Street'], city: 'Elsewhere', country: 'FAR' }],
      });
      const polled = await bridge.syncOnce();
      assert.equal(polled.report.mapped.replaced, 1, 'the dead birth, mapped again');
      assert.equal(bridge.ledger.get(kept.id)?.state, 'delivered', 'the change may be what fixes a dead row');
      const after = bridge.ledger.get(dismissed.id);
      assert.equal(after?.state, 'skipped');
      assert.equal(after?.skipReason, 'dismissed by an operator: duplicate of #12');
      assert.equal(await notifies(), before + 1, 'the dead birth only is sent');
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });
});

/** Posts the mother's tracked entity with her first name corrected, as a DHIS2 user saving her profile does. */
async function correctMother(h: Dhis2Harness, motherUid: string): Promise<void> {
  const mother = h.seeded.find((te) => te.trackedEntity === motherUid);
  assert.ok(mother);
  const attributes = (mother.attributes ?? []).map((a) =>
    a.attribute === ATTRIBUTES.firstName ? { ...a, value: 'Amended' } : a,
  );
  const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
    body: JSON.stringify({
      trackedEntities: [
        { trackedEntity: motherUid, trackedEntityType: mother.trackedEntityType, orgUnit: mother.orgUnit, attributes },
      ],
    }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, await res.text());
}

function motherOf(child: TrackedEntity): string {
  const rel = child.relationships?.[0];
  const uid = rel?.to?.trackedEntity?.trackedEntity;
  assert.ok(uid, 'the demo child has a relationship to its mother');
  return uid;
}

async function motherName(h: Dhis2Harness): Promise<unknown> {
  const events = await h.events();
  assert.equal(events.length, 1, 'one OpenCRVS event');
  const [event] = events;
  assert.ok(event);
  const name = notifiedDeclaration(event)['mother.name'] as { firstname?: string } | undefined;
  return name?.firstname;
}

describe("DHIS2: a correction to the mother's tracked entity only, the child unchanged", () => {
  it('waiting to be sent (settleSeconds), the recheck reads her again and the corrected name goes out', async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      writeBack: false,
      delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
    });
    try {
      const [child] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child?.trackedEntity);
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      await source.poller.pollOnce();
      const [row] = h.rows();
      assert.equal(row?.state, 'pending');
      await correctMother(h, motherOf(child));
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.equal(h.bridge.ledger.get(row.id)?.state, 'delivered');
      assert.equal(await motherName(h), 'Amended');
    } finally {
      await h.close();
    }
  });

  it('delivered, the next poll reads her correction by uid (she is not in the programme) and counts it once', async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 0, writeBack: false });
    let next: Bridge | undefined;
    try {
      const [child] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child?.trackedEntity);
      const mother = motherOf(child);
      assert.equal(
        enrolledIn(h.seeded, CHILD_PROGRAMME).some((te) => te.trackedEntity === mother),
        false,
        'she is not in the programme the poll lists',
      );
      assert.ok((await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 })).ok);
      assert.notEqual(await motherName(h), 'Amended');
      const quiet = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.equal(quiet.report.mapped['updated-after-notification'], 0, 'nothing changed yet');
      await correctMother(h, mother);
      const polled = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.ok(polled.ok);
      assert.equal(polled.report.mapped['updated-after-notification'], 1);
      assert.equal(h.rows()[0]?.updatesAfterNotification, 1);
      assert.equal(h.rows().length, 1, 'read as a subject of her own, she is no birth and gets no row');
      const again = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.equal(again.report.mapped['updated-after-notification'], 0, 'counted once');

      // A restart reads from the stored cursor: nothing counted twice, and reading the period again neither.
      await h.bridge.stop();
      next = new Bridge(h.config, { logger: silentLogger, schedule: false, http: false, worker: false });
      await next.start();
      const restarted = await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.equal(restarted.report.mapped['updated-after-notification'], 0);
      const reread = await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2026-01-01T00:00:00.000' });
      assert.equal(reread.report.mapped['updated-after-notification'], 0);
      assert.equal(next.ledger.list({ limit: 10 })[0]?.updatesAfterNotification, 1);
      assert.equal((await h.events()).length, 1);
    } finally {
      await next?.stop();
      await h.close();
    }
  });

  it('a mother more rows read than the fan-out cap is shared reference data: her correction maps none again, and is counted by source', async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 0, writeBack: false, delivery: { settleSeconds: 3600 } });
    try {
      const [child] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child?.trackedEntity);
      const mother = motherOf(child);
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      await source.poller.pollOnce();
      const [row] = h.rows();
      assert.ok(row?.payload && row.payloadHash);
      // As many more births as the cap (MAX_CONTEXT_READERS) whose context read her too: a placeholder
      // "unknown mother" record, say.
      for (let i = 0; i < MAX_CONTEXT_READERS; i++)
        h.bridge.ledger.recordEvent({
          sourceId: BIRTHS_SOURCE,
          eventType: 'birth',
          subjectKey: `TrackedEntity/Placeholder${String(i).padStart(2, '0')}`,
          sourceRef: `TrackedEntity/Placeholder${String(i).padStart(2, '0')}`,
          payloadHash: row.payloadHash,
          payload: row.payload,
          contextReads: [`TrackedEntity/${mother}`],
        });
      await correctMother(h, mother);
      const polled = await source.poller.pollOnce();
      assert.equal(polled.mapped.replaced, 0, 'no birth mapped again');
      assert.equal(h.bridge.ledger.get(row.id)?.payloadHash, row.payloadHash);
      const counted = (await h.bridge.metrics.sharedContextRecords.get()).values;
      assert.deepEqual(
        counted.map((v) => ({ ...v.labels, value: v.value })),
        [{ source: BIRTHS_SOURCE, resource_type: 'TrackedEntity', value: 1 }],
      );
    } finally {
      await h.close();
    }
  });
});
