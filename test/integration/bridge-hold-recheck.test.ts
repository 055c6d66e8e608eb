// Delivery held for an operator problem (credentials, scope) lasts as long as it takes someone to fix it,
// far longer than delivery.recheckAfterSeconds. The hold's probe re-tries the held row by sending it: that
// row must be confirmed at its source first, like any row that waited, or a record the EMR voided during
// the hold is registered by the probe. Over HTTP: the FHIR sandbox, the OpenCRVS simulator, the Bridge.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import type { LedgerRow } from '../../src/ledger/index.js';
import { defaultHealthScopes } from '../../src/sandbox/opencrvs/index.js';
import { birthResources, type Harness, sleep, startHarness } from './helpers/bridge-harness.js';
import { answerStatus, type FaultProxy, forbiddenPage, startFaultProxy } from './helpers/fault-proxy.js';

const BIRTHS = 3;

interface Refusal {
  name: string;
  /** Makes OpenCRVS refuse the bridge's sends as an operator problem. */
  refuse(h: Harness): Promise<void>;
  /** The operator's fix. */
  fix(h: Harness): Promise<void>;
  kind: string;
}

const refusals: Refusal[] = [
  {
    // Every events-API call answered 401 (a fresh token does not help): nothing of the row reached OpenCRVS.
    name: 'credentials refused (401)',
    refuse: (h) => h.sim.control.configure({ faults: { errorRate: 1, errorStatus: 401 } }),
    fix: (h) => h.sim.control.configure({ faults: {} }),
    kind: 'unauthorized',
  },
  {
    // Created, then the NOTIFY refused: the held row knows its event, and OpenCRVS is asked about it.
    name: 'the notify scope missing (403)',
    refuse: async (h) => {
      const scopes = defaultHealthScopes('2.0').filter((s) => !s.includes('notify'));
      await h.sim.control.addClient({ clientId: h.sim.clientId, clientSecret: h.sim.clientSecret, scopes });
    },
    fix: (h) =>
      h.sim.control.addClient({
        clientId: h.sim.clientId,
        clientSecret: h.sim.clientSecret,
        scopes: defaultHealthScopes('2.0'),
      }),
    kind: 'forbidden',
  },
];

/**
 * Births polled and sent at once (no settle time), the sends refused: the queue holds. The EMR then voids
 * the held birth's child (the duplicate a merge left), the hold outlasts recheckAfterSeconds (1 s), and the
 * operator fixes the refusal. Probes run only when the test calls them. The FHIR source is read through
 * `proxy`, which forwards everything until a test gives it rules.
 */
async function heldBirthVoided(
  refusal: Refusal,
  fixed = true,
  lockTimeoutSeconds?: number,
  attempts?: number,
): Promise<{ h: Harness; proxy: FaultProxy; held: LedgerRow }> {
  const proxy = await startFaultProxy();
  const h = await startHarness({
    worker: false,
    delivery: {
      settleSeconds: 0,
      recheckAfterSeconds: 1,
      holdProbeSeconds: 3600,
      ...(lockTimeoutSeconds ? { lockTimeoutSeconds } : {}),
    },
    source: {
      baseUrl: (sandbox) => {
        proxy.target = sandbox;
        return `${proxy.url}${new URL(sandbox).pathname}`;
      },
      // A read the proxy fails is tried its three times 10 ms apart, not 0.5 s then 1 s: what these prove is
      // what a probe makes of a recheck that failed through its tries.
      retry: { baseDelayMs: 10, ...(attempts ? { attempts } : {}) },
    },
  });
  try {
    await refusal.refuse(h);
    for (let i = 0; i < BIRTHS; i++) for (const r of birthResources(i)) await h.fhir.upsert(r);
    await h.bridge.sources[0]?.poller.pollOnce();
    assert.equal(h.rows().length, BIRTHS);
    await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 }); // returns once held
    const hold = h.bridge.ledger.getHold();
    assert.equal(hold?.kind, refusal.kind, JSON.stringify(hold));
    const held = h.bridge.ledger.get(hold?.rowId ?? 0);
    assert.ok(held, 'the hold names its row');
    assert.equal(held.recheckedAt, null, 'sent unchecked before the hold: it had not waited');
    const voided = await fetch(`${h.fhir.baseUrl}/${held.subjectKey}`, { method: 'DELETE' });
    assert.ok(voided.ok, `delete: HTTP ${voided.status}`);
    await sleep(1_100);
    if (fixed) await refusal.fix(h);
    return { h, proxy, held };
  } catch (err) {
    await h.close();
    await proxy.close();
    throw err;
  }
}

/** NOTIFYs OpenCRVS holds for this row's event, whatever their status. */
async function notifiesOf(h: Harness, row: LedgerRow): Promise<number> {
  const events = await h.sim.control.events({ transactionId: row.createTransactionId });
  return events.flatMap((e) => e.actions.filter((a) => a.type === 'NOTIFY')).length;
}

/** The births other than `held` all go out, each rechecked first (they waited too), and the hold ends. */
async function othersDelivered(h: Harness, held: LedgerRow): Promise<void> {
  for (let probes = 0; h.bridge.worker.held() && probes < 3; probes++) await h.bridge.worker.probe();
  assert.equal(h.bridge.worker.held(), undefined, 'the hold ended');
  await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
  const others = h.rows().filter((r) => r.id !== held.id);
  assert.deepEqual(
    others.map((r) => r.state),
    Array(BIRTHS - 1).fill('delivered'),
  );
  for (const row of others) assert.ok(row.recheckedAt, 'rechecked before its send');
  const events = await h.events();
  const accepted = events.flatMap((e) => e.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted'));
  assert.equal(accepted.length, BIRTHS - 1, 'one NOTIFY accepted per birth still in the EMR');
}

describe('bridge: the hold probe re-tries a row that waited only after its recheck at the source', () => {
  for (const refusal of refusals) {
    it(`${refusal.name}: the held birth, voided in the EMR during the hold, is withdrawn, not registered`, async () => {
      const { h, proxy, held } = await heldBirthVoided(refusal);
      try {
        await h.bridge.worker.probe();
        const after = h.bridge.ledger.get(held.id);
        assert.equal(after?.state, 'skipped', `the held row: ${after?.state}`);
        // (When OpenCRVS holds its event, unnotified, the reason says so.)
        assert.match(after?.skipReason ?? '', /^deleted in the source before it was sent/);
        assert.equal(await notifiesOf(h, held), 0, 'the voided birth was not notified');
        await othersDelivered(h, held);
      } finally {
        await h.close();
        await proxy.close();
      }
    });
  }

  it('the notify scope still missing: the held birth withdrawn with one create, which proves no NOTIFY allowed, the hold stands', async () => {
    const scope = refusals.find((r) => r.kind === 'forbidden');
    assert.ok(scope);
    const { h, proxy, held } = await heldBirthVoided(scope, false);
    try {
      assert.equal(await h.bridge.worker.probe(), false, 'the hold stands');
      assert.equal(h.bridge.ledger.get(held.id)?.state, 'skipped', 'the voided birth withdrawn all the same');
      assert.equal(h.bridge.ledger.getHold()?.kind, 'forbidden');
      assert.equal(await notifiesOf(h, held), 0);
      // The next probe re-tries another birth: refused its NOTIFY again, still held.
      assert.equal(await h.bridge.worker.probe(), false);
      assert.equal(h.bridge.ledger.getHold()?.kind, 'forbidden');
      assert.notEqual(h.bridge.ledger.getHold()?.rowId, held.id, 'held again by that birth');
      assert.equal(h.rows().filter((r) => r.state === 'delivered').length, 0, 'nothing delivered');
      // Granted: the next probe's NOTIFY goes through and the hold ends.
      await scope.fix(h);
      await othersDelivered(h, held);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  // What the EMR's reads meet during the hold. A proxy's page is a recheck that cannot run yet (RecheckNotReady);
  // the others are plain failures, which outside a hold send the rows as recorded (an EMR's outage must not
  // stop registrations). A probe's re-try is never sent unchecked: the drill sent a birth the EMR could not
  // be asked about (connection refused), and so could register a record voided during the hold.
  const emrFaults: Array<{ name: string; answer: () => (res: ServerResponse) => void }> = [
    { name: "a proxy's page", answer: forbiddenPage },
    { name: 'a reset connection', answer: () => (res) => res.socket?.destroy() },
    { name: "a gateway's 502", answer: () => answerStatus(502) },
  ];
  for (const fault of emrFaults) {
    it(`the recheck meets ${fault.name} at the EMR: the held row waits out its lease, neither sent unchecked nor withdrawn`, async () => {
      const [credentials] = refusals;
      assert.ok(credentials);
      // A lease (the lock timeout) long enough to outlast two probes on a busy machine: the harness's 2 s did
      // not always, and the held birth was then re-tried by the second probe instead of waiting. Those probes
      // waited out their reads' backoff (0.5 s + 1 s each); tried 10 ms apart (sources[].retry above), the two
      // take 0.1-0.3 s at a load of 10 on two cores. The test waits out the lease after them: 3 s, not 6.
      const { h, proxy, held } = await heldBirthVoided(credentials, true, 3);
      try {
        let met = 0;
        proxy.rules.push(() => {
          met++;
          return fault.answer();
        });
        assert.equal(await h.bridge.worker.probe(), false, 'the hold stands');
        assert.ok(met > 0, 'the recheck read through the proxy');
        assert.equal(h.bridge.ledger.getHold()?.kind, credentials.kind, 'held still for the refusal');
        assert.match(h.bridge.ledger.get(held.id)?.state ?? '', /^(pending|failed)$/);
        assert.equal(await notifiesOf(h, held), 0, 'nothing sent unchecked');
        assert.equal((await h.events()).length, 0, 'no other row sent by that probe either');
        // The EMR still unreadable: the next probe re-tries another birth, which waits the same way.
        const metBefore = met;
        assert.equal(await h.bridge.worker.probe(), false, 'the hold stands');
        assert.ok(met > metBefore, 'another birth rechecked through the proxy');
        assert.equal(h.bridge.ledger.getHold()?.kind, credentials.kind);
        assert.equal((await h.events()).length, 0, 'nothing sent unchecked by the next probe');
        // The EMR answers again. The two births wait out the lease of the rechecks that could not run (the
        // lock timeout): the next probe re-tries the third, confirmed at its source first, and the hold ends.
        proxy.rules.length = 0;
        assert.equal(await h.bridge.worker.probe(), true, 'another birth re-tried: the hold ended');
        const waiting = h.rows().filter((r) => r.state === 'pending' || r.state === 'failed');
        assert.equal(waiting.length, 2, 'the two births whose recheck failed still wait');
        assert.ok(
          waiting.some((r) => r.id === held.id),
          'the held birth among them',
        );
        for (const row of waiting) assert.ok((row.nextRunAt ?? 0) > Date.now(), 'waits out its lease');
        // Due after it, the held birth is rechecked like any row that waited: withdrawn, not registered.
        await sleep(Math.max(...waiting.map((r) => r.nextRunAt ?? 0)) - Date.now() + 50);
        await othersDelivered(h, held);
        assert.equal(h.bridge.ledger.get(held.id)?.state, 'skipped');
        assert.equal(await notifiesOf(h, held), 0);
      } finally {
        await h.close();
        await proxy.close();
      }
    });
  }

  it("a recheck that fails only after the row's lease ran out: the held birth is not sent by that probe either", async () => {
    const [credentials] = refusals;
    assert.ok(credentials);
    // A lease (the lock timeout) of 2 s, and an EMR that answers each read with a gateway's 502 after 2.5 s,
    // tried once (sources[].retry): the recheck fails past the lease all the same, 2.5 s in rather than 7.5.
    const { h, proxy, held } = await heldBirthVoided(credentials, true, 2, 1);
    try {
      let met = 0;
      proxy.rules.push(() => {
        met++;
        return (res) => {
          setTimeout(() => res.writeHead(502).end(), 2_500);
        };
      });
      assert.equal(await h.bridge.worker.probe(), false, 'the hold stands');
      assert.ok(met > 0, 'the recheck read through the proxy');
      assert.equal(await notifiesOf(h, held), 0, 'the voided birth was not sent unchecked');
      assert.equal(h.bridge.ledger.get(held.id)?.recheckedAt, null, 'not recorded as rechecked');
      assert.equal(h.bridge.ledger.getHold()?.kind, 'unauthorized');
      // The EMR answers again: the held birth, rechecked at the next probe that takes it, is withdrawn.
      proxy.rules.length = 0;
      await othersDelivered(h, held);
      assert.equal(h.bridge.ledger.get(held.id)?.state, 'skipped');
      assert.equal(await notifiesOf(h, held), 0);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
