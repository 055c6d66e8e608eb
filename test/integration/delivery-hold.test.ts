import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createDeliveryWorker, type DeliveryOutcome, type DeliveryWorker } from '../../src/delivery/index.js';
import { type Ledger, type LedgerRow, openLedger } from '../../src/ledger/index.js';
import { createOpenCrvsClient } from '../../src/opencrvs/client.js';
import { defaultHealthScopes } from '../../src/sandbox/opencrvs/index.js';
import {
  assertExactlyOnce,
  birthEvent,
  clientSettings,
  fastDelivery,
  otherOffice,
  type TestBed,
  testBed,
  until,
} from './delivery-helpers.js';

describe('delivery held for an operator', () => {
  let bed: TestBed;
  beforeEach(async () => {
    bed = await testBed();
  });
  afterEach(async () => {
    await bed.close();
  });

  it('a revoked client (401) holds the queue without dead letters, and delivery resumes once it is back', async () => {
    for (let i = 0; i < 8; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const outcomes: DeliveryOutcome[] = [];
    // The client's clock, moved on past the token endpoint's backoff below instead of waiting it out.
    let skewMs = 0;
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim), { now: () => Date.now() + skewMs }),
      settings: { ...fastDelivery, concurrency: 2 },
      onOutcome: (o) => outcomes.push(o),
    });
    await worker.processNext(); // two delivered with the good client
    await bed.sim.control.removeClient(bed.sim.clientId);
    await worker.runUntilIdle({ timeoutMs: 30_000 }); // returns once held
    const held = worker.held();
    assert.ok(held, 'the queue is held');
    assert.match(held.reason, /unauthorized|401/i);
    assert.match(bed.ledger.getHold()?.reason ?? '', /401/);
    assert.equal(bed.ledger.list({ states: ['dead'] }).length, 0, 'nothing is dead-lettered');
    const waiting = bed.ledger.list({ states: ['pending', 'failed'] });
    assert.equal(waiting.length, 6);
    for (const row of waiting) assert.equal(row.attempts, 0, 'held attempts are not counted');

    // Still revoked: probes keep it held, without asking the token endpoint again within its backoff.
    const tokenRequests = async () => (await bed.sim.control.requests()).token ?? 0;
    const asked = await tokenRequests();
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await worker.probe(), false);
    assert.equal(await tokenRequests(), asked, 'the refusal stands for 30 s');

    await bed.sim.control.addClient({
      clientId: bed.sim.clientId,
      clientSecret: bed.sim.clientSecret,
      scopes: defaultHealthScopes('2.0'),
    });
    skewMs = 30_000;
    await until(worker, () => bed.ledger.counts().every((c) => c.state === 'delivered'));
    assert.equal(worker.held(), undefined);
    assert.equal(bed.ledger.getHold(), undefined);
    assert.ok(outcomes.some((o) => o.type === 'resumed'));
    await assertExactlyOnce(bed.sim, bed.ledger, 8);
  });

  it('a client without the notify scope (403) holds the queue, and resumes when the scope is granted', async () => {
    const [createScope] = defaultHealthScopes('2.0').filter((s) => s.includes('record.create'));
    assert.ok(createScope);
    await bed.sim.control.addClient({
      clientId: bed.sim.clientId,
      clientSecret: bed.sim.clientSecret,
      scopes: [createScope],
    });
    for (let i = 0; i < 5; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    // Probes are counted (each starts with a token check), so the test knows they ran, not that time passed.
    let probes = 0;
    const checkToken = api.checkToken.bind(api);
    api.checkToken = async () => {
      probes++;
      return checkToken();
    };
    const worker = createDeliveryWorker({ ledger: bed.ledger, api, settings: fastDelivery });
    worker.start();
    try {
      await waitFor(() => worker.held() !== undefined);
      assert.match(worker.held()?.reason ?? '', /403/);
      const since = worker.held()?.since;
      // Two probes run while the scope is still missing: nothing burned, nothing dead.
      const before = probes;
      await waitFor(() => probes >= before + 2);
      assert.ok(worker.held());
      // Each probe's refused re-try raises the hold again; it still dates from the first refusal.
      assert.equal(worker.held()?.since, since);
      assert.equal(bed.ledger.getHold()?.since, since);
      assert.equal(bed.ledger.list({ states: ['dead'] }).length, 0);
      // A probe's own re-try may be in flight (counted until the refusal hands it back).
      const counted = bed.ledger.list({ limit: 10 }).filter((r) => r.attempts !== 0 && r.state !== 'delivering');
      assert.deepEqual(counted, [], 'refused attempts are not counted');
      await bed.sim.control.addClient({
        clientId: bed.sim.clientId,
        clientSecret: bed.sim.clientSecret,
        scopes: defaultHealthScopes('2.0'),
      });
      await waitFor(() => bed.ledger.counts().every((c) => c.state === 'delivered'));
    } finally {
      await worker.stop({ drainMs: 5000 });
    }
    assert.equal(worker.held(), undefined);
    await assertExactlyOnce(bed.sim, bed.ledger, 5);
  });
});

describe("the hold probe and another worker's recheck of the held row", () => {
  let bed: TestBed;
  beforeEach(async () => {
    bed = await testBed();
  });
  afterEach(async () => {
    await bed.close();
  });

  // Two workers on one ledger, both probing the same hold (credentials, 401, fixed meanwhile). Worker A's
  // probe has the held row, which waited past recheckAfterSeconds, confirmed at its source: the row is
  // given back with a lease for that recheck, which takes a while. Worker B's probe meanwhile must leave it
  // to A (sent by B, it would go out while its source is still being asked about it), and re-try another
  // waiting row, or, with none, keep the hold.
  for (const others of [1, 0]) {
    it(`${others ? 'another row waiting: B re-tries that one' : 'nothing else waiting: the hold stands'}, not the held row in A's recheck lease`, async () => {
      for (let i = 0; i <= others; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
      await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 401 } });
      // A lease (the lock timeout) long enough to outlast the test.
      const settings = { ...fastDelivery, concurrency: 1, recheckAfterSeconds: 1, lockTimeoutSeconds: 60 };
      let entered: () => void = () => {};
      const inRecheck = new Promise<void>((resolve) => {
        entered = resolve;
      });
      let answer: () => void = () => {};
      const answered = new Promise<void>((resolve) => {
        answer = resolve;
      });
      const a = createDeliveryWorker({
        ledger: bed.ledger,
        api: createOpenCrvsClient(clientSettings(bed.sim)),
        settings,
        workerId: 'worker-a',
        // The EMR answers A's recheck only when the test says so.
        recheck: {
          appliesTo: () => true,
          run: async () => {
            entered();
            await answered;
          },
        },
      });
      const rechecksOfB: number[] = [];
      const b = createDeliveryWorker({
        ledger: bed.ledger,
        api: createOpenCrvsClient(clientSettings(bed.sim)),
        settings,
        workerId: 'worker-b',
        recheck: {
          appliesTo: () => true,
          run: async (rows: LedgerRow[]) => {
            rechecksOfB.push(...rows.map((r) => r.id));
          },
        },
      });
      let probeOfA: Promise<boolean> | undefined;
      try {
        await a.runUntilIdle({ timeoutMs: 10_000 }); // returns once held
        const heldId = bed.ledger.getHold()?.rowId;
        assert.ok(heldId !== undefined, 'held, naming its row');
        await bed.sim.control.configure({ faults: {} });
        await new Promise((r) => setTimeout(r, 1_100)); // every row waited past recheckAfterSeconds
        probeOfA = a.probe();
        await inRecheck;
        const leased = bed.ledger.get(heldId);
        assert.ok(leased && leased.state === 'pending' && leased.nextRunAt > Date.now(), 'in its recheck lease');

        assert.equal(await b.probe(), others > 0, others ? "B's re-try ended the hold" : 'the hold stands');
        assert.ok(!rechecksOfB.includes(heldId), 'B did not take the held row');
        const row = bed.ledger.get(heldId);
        assert.deepEqual([row?.state, row?.lockedBy], ['pending', null], 'still waiting out the lease');
        const notified = await bed.sim.control.events({ transactionId: row?.createTransactionId });
        assert.equal(notified.length, 0, 'nothing of it sent while its recheck runs');
        assert.equal(bed.ledger.list({ states: ['delivered'] }).length, others);

        answer();
        assert.equal(await probeOfA, true, "A's probe sends it once rechecked");
        assert.equal(bed.ledger.get(heldId)?.state, 'delivered');
      } finally {
        answer();
        await probeOfA?.catch(() => undefined);
        await a.stop({ drainMs: 5000 });
        await b.stop({ drainMs: 5000 });
      }
      assert.equal(a.held(), undefined);
      await assertExactlyOnce(bed.sim, bed.ledger, others + 1);
    });
  }

  // Worker A in another process (serve beside `sync --once`: two connections to one file) leases the held
  // row for its recheck just as B's probe claims it. Read first and claimed after, B took the row the
  // other process had leased in between, and sent it while its recheck ran; checked and claimed in one
  // statement, B's claim comes before A's lease (and A's claim fails) or after it (and B's fails).
  it("another process's recheck lease taken just before the probe's claim: the probe leaves the row", async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 0));
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 401 } });
    const other = openLedger(bed.dbPath);
    let leased = 0;
    // What A's startRows does to a row that waited past recheckAfterSeconds (worker.ts recheck), through
    // its own connection, right before B's claim statement runs.
    const leaseByA = (id: number) => {
      if (id !== row.id || leased++ > 0) return;
      assert.deepEqual(
        other.claimDue('worker-a', 1).map((r) => r.id),
        [row.id],
      );
      assert.equal(other.deferForRecheck([row.id], 'worker-a', 60_000), 1);
    };
    const ledger: Ledger = {
      ...bed.ledger,
      claimRow: (id, workerId, at) => {
        leaseByA(id);
        return bed.ledger.claimRow(id, workerId, at);
      },
      claimIfDue: (id, workerId, at) => {
        leaseByA(id);
        return bed.ledger.claimIfDue(id, workerId, at);
      },
    };
    const b = createDeliveryWorker({
      ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: { ...fastDelivery, concurrency: 1, lockTimeoutSeconds: 60 },
      workerId: 'worker-b',
    });
    try {
      await b.runUntilIdle({ timeoutMs: 10_000 }); // returns once held
      assert.equal(bed.ledger.getHold()?.rowId, row.id, 'held, naming the row');
      await bed.sim.control.configure({ faults: {} });

      assert.equal(await b.probe(), false, 'nothing else due: the hold stands');
      assert.equal(leased, 1, "A's lease was taken right before B's claim");
      const after = bed.ledger.get(row.id);
      assert.deepEqual([after?.state, after?.lockedBy], ['pending', null], "waiting out A's lease");
      assert.ok((after?.nextRunAt ?? 0) > Date.now(), "waiting out A's lease");
      const sent = await bed.sim.control.events({ transactionId: row.createTransactionId });
      assert.equal(sent.length, 0, 'nothing of it sent while its recheck runs');
    } finally {
      await b.stop({ drainMs: 5000 });
      other.close();
    }
  });
});

/** Events-API calls the simulator's faults answered so far. */
async function faultsFired(bed: TestBed): Promise<number> {
  const response = await fetch(`${bed.sim.baseUrl}/_sandbox/config`, { signal: AbortSignal.timeout(5000) });
  return ((await response.json()) as { faultsFired: number }).faultsFired;
}

describe('OpenCRVS out of reach', () => {
  let bed: TestBed;
  beforeEach(async () => {
    bed = await testBed();
  });
  afterEach(async () => {
    await bed.close();
  });

  for (const fault of [{ dropRate: 1 }, { errorRate: 1, errorStatus: 502 }]) {
    it(`holds the queue without spending the rows' budgets (${Object.keys(fault)[0]}); back, every birth goes out once`, async () => {
      for (let i = 0; i < 10; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
      await bed.sim.control.configure({ faults: fault });
      const worker = createDeliveryWorker({
        ledger: bed.ledger,
        api: createOpenCrvsClient(clientSettings(bed.sim)),
        // A budget an outage of a few seconds would spend many times over.
        settings: { ...fastDelivery, concurrency: 2, maxAttempts: 3, outageHoldSeconds: 1 },
      });
      try {
        await until(worker, () => worker.held() !== undefined);
        assert.match(worker.held()?.reason ?? '', /^OpenCRVS out of reach: /);
        assert.equal(bed.ledger.getHold()?.outage, true);
        const spent = () => bed.ledger.list().reduce((sum, r) => sum + r.attempts, 0);
        const atHold = spent();
        // Probes (every second) go on failing for a while: each tries a row, and spends nothing. Counted until
        // three calls have failed, not for a fixed time a loaded machine may probe less in. No try is in flight
        // when the hold is seen (processNext waited for its batch), so the three are probes a second apart, and
        // take two seconds at least (a queue not held calls again every 20-200 ms).
        // Before the count is read: every call it does not include came after this moment.
        const since = Date.now();
        const fired = await faultsFired(bed);
        for (let calls = 0; calls < 3; calls = (await faultsFired(bed)) - fired) {
          assert.ok(Date.now() - since < 30_000, `calls to OpenCRVS while held: ${calls} in 30 s`);
          const next = Date.now() + 100;
          await until(worker, () => Date.now() > next);
        }
        const took = Date.now() - since;
        assert.ok(took >= 2000, `three calls to OpenCRVS while held took ${took} ms`);
        assert.ok(spent() <= atHold, 'no attempt counted while held');
        // Beyond maxAttempts (3), none is dead: failures that never reached OpenCRVS end a row by age only.
        assert.equal(bed.ledger.list({ states: ['dead'] }).length, 0, 'no birth spent its budget');
        await bed.sim.control.configure({ faults: {} });
        await until(worker, () => bed.ledger.list({ states: ['delivered'] }).length === 10);
        assert.equal(worker.held(), undefined);
      } finally {
        await worker.stop({ drainMs: 5000 });
      }
      await assertExactlyOnce(bed.sim, bed.ledger, 10);
    });
  }

  it('the probe sends nothing: a record the EMR withdrew during the outage is confirmed at its source first', async () => {
    for (let i = 0; i < 4; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    await bed.sim.control.configure({ faults: { dropRate: 1 } });
    let voided = false;
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: { ...fastDelivery, concurrency: 2, outageHoldSeconds: 1, recheckAfterSeconds: 1 },
      // The EMR: during the outage a merge voids every waiting record (the duplicates it left).
      recheck: {
        appliesTo: () => true,
        run: async (rows: LedgerRow[]) => {
          if (!voided) return;
          for (const row of rows) bed.ledger.cancelUnsent({ ...row, reason: 'voided in the source (merged)' });
        },
      },
    });
    try {
      await until(worker, () => worker.held() !== undefined);
      voided = true;
      const waited = Date.now() + 1500;
      await until(worker, () => Date.now() > waited);
      await bed.sim.control.configure({ faults: {} });
      await until(worker, () => bed.ledger.list({ states: ['pending', 'failed', 'delivering'] }).length === 0);
    } finally {
      await worker.stop({ drainMs: 5000 });
    }
    assert.deepEqual(
      bed.ledger.list().map((r) => r.state),
      ['skipped', 'skipped', 'skipped', 'skipped'],
    );
    const events = await bed.sim.control.events();
    assert.equal(events.filter((e) => e.actions.some((a) => a.type === 'NOTIFY')).length, 0, 'nothing notified');
  });

  it('a stop while the hold probe waits on OpenCRVS ends at once, not when the probe is answered or times out', async () => {
    for (let i = 0; i < 6; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    await bed.sim.control.configure({ faults: { dropRate: 1 } });
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      // Each call may take 120 s: the probe below would be answered within it.
      api: createOpenCrvsClient(clientSettings(bed.sim, { timeoutMs: 120_000 })),
      settings: { ...fastDelivery, concurrency: 2, outageHoldSeconds: 1 },
    });
    const waitFor = async (what: string, check: () => boolean | Promise<boolean>) => {
      const deadline = Date.now() + 15_000;
      while (!(await check())) {
        assert.ok(Date.now() < deadline, `${what}: not in time`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    let stopped = false;
    try {
      worker.start();
      await waitFor('the queue held for the outage', () => bed.ledger.getHold()?.outage === true);
      // OpenCRVS answers again, slowly: the probe's call (the location list) is answered after 60 s, far
      // later than any stop here takes, whatever the machine's load.
      await bed.sim.control.configure({ faults: { delayMs: 60_000, operations: ['locations'] } });
      const asked = (await bed.sim.control.requests()).locations ?? 0;
      await waitFor('the probe sent', async () => ((await bed.sim.control.requests()).locations ?? 0) > asked);
      await worker.stop({ drainMs: 0 });
      stopped = true;
      // Neither waited for nor left to run on: OpenCRVS sees the call closed before it answered (a call
      // answered is never counted so, and waitFor gives up long before the answer).
      await waitFor('the probe closed', async () => ((await bed.sim.control.abandonedRequests()).locations ?? 0) > 0);
    } finally {
      if (!stopped) await worker.stop({ drainMs: 0 });
    }
  });

  it('one row failing unreached again and again is not an outage: it keeps to its budget', async () => {
    bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 502 } });
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: { ...fastDelivery, maxAttempts: 3, maxAgeHours: 0.001, outageHoldSeconds: 1 },
    });
    try {
      await until(worker, () => bed.ledger.list({ states: ['dead'] }).length === 1, 10_000);
      assert.equal(worker.held(), undefined);
      assert.match(bed.ledger.list()[0]?.lastError?.message ?? '', /Bad Gateway|502/i);
    } finally {
      await worker.stop({ drainMs: 5000 });
    }
  });
});

describe('an office OpenCRVS does not know', () => {
  let bed: TestBed;
  beforeEach(async () => {
    bed = await testBed();
  });
  afterEach(async () => {
    await bed.close();
  });

  /** A UUID no location of the simulator has, as an OpenCRVS v1 Task of another deployment names one. */
  const foreignOffice = '0be1dc9b-0000-4000-8000-000000000001';

  /** A birth whose payload says the record itself named `office` (the mapping marks it so). */
  const namedByRecord = (office: string, i: number) => {
    const event = birthEvent(office, i);
    assert.ok(event.payload);
    return { ...event, payload: { ...event.payload, officeFromRecord: true as const } };
  };

  it('named by the record: that row is dead with what to do, and the queue goes on', async () => {
    const { row: foreign } = bed.ledger.recordEvent(namedByRecord(foreignOffice, 1));
    for (let i = 2; i <= 4; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    assert.equal(worker.held(), undefined, 'the queue is not held');
    const dead = bed.ledger.get(foreign.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.lastError?.kind, 'unknown-office');
    assert.equal(dead?.lastError?.classification, 'permanent');
    assert.match(dead?.lastError?.message ?? '', /does not know office 0be1dc9b-.*which the source record named/);
    assert.match(dead?.lastError?.message ?? '', /routing\.facilities.*then replay/);
    assert.deepEqual(
      bed.ledger
        .list()
        .filter((r) => r.id !== foreign.id)
        .map((r) => r.state),
      ['delivered', 'delivered', 'delivered'],
    );
    await worker.stop({ drainMs: 5000 });
  });

  it('chosen by the routing table: the queue holds (every row routed there would fail alike)', async () => {
    bed.ledger.recordEvent(birthEvent(foreignOffice, 1)); // as routed: no mark
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    assert.match(worker.held()?.reason ?? '', /^unknown-office \(HTTP 400\)/);
    assert.equal(bed.ledger.getHold()?.rowId, 1, 'the hold names the row that showed it');
    assert.equal(bed.ledger.list({ states: ['dead'] }).length, 0);
    await worker.stop({ drainMs: 5000 });
  });
});

describe('an office closed while a NOTIFY to it is in doubt', () => {
  let bed: TestBed;
  let open: string;
  beforeEach(async () => {
    bed = await testBed();
    open = otherOffice(bed.sim, bed.office);
  });
  afterEach(async () => {
    await bed.close();
  });

  /**
   * Birth 1's NOTIFY to the office leaves its answer lost (`stored`: OpenCRVS kept it, else it never got
   * there), then OpenCRVS stops knowing that office. The row must resend that very copy, which a routing
   * fix cannot reach: it is dead with what to do, and births 2 and 3 (routed elsewhere) go on.
   */
  async function inDoubtThenClosed(stored: boolean): Promise<{ worker: DeliveryWorker; id: number }> {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await bed.sim.control.configure({
      faults: { ...(stored ? { commitThenFailRate: 1 } : { dropRate: 1 }), operations: ['notify'], times: 1 },
    });
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await until(worker, () => bed.ledger.get(row.id)?.state === 'failed');
    await bed.sim.control.removeLocation(bed.office);
    for (let i = 2; i <= 3; i++) bed.ledger.recordEvent(birthEvent(open, i));
    await until(worker, () => bed.ledger.list({ states: ['delivered'] }).length === 2);
    await until(worker, () => bed.ledger.get(row.id)?.state === 'dead');
    return { worker, id: row.id };
  }

  for (const stored of [true, false]) {
    it(`${stored ? 'stored' : 'not stored'}: that row alone is dead; mapped again to an open office, it is delivered once`, async () => {
      const { worker, id } = await inDoubtThenClosed(stored);
      try {
        assert.equal(worker.held(), undefined, 'the queue is not held');
        const dead = bed.ledger.get(id);
        assert.equal(dead?.lastError?.kind, 'unknown-office');
        assert.match(dead?.lastError?.message ?? '', /no longer knows office .*earlier NOTIFY.*then replay/);
        // The replay maps the record again: the routing now names an open office.
        const { change } = bed.ledger.recordEvent(birthEvent(open, 1));
        assert.equal(change, 'replaced');
        await until(worker, () => bed.ledger.get(id)?.state === 'delivered');
      } finally {
        await worker.stop({ drainMs: 5000 });
      }
      await assertExactlyOnce(bed.sim, bed.ledger, 3);
      const row = bed.ledger.get(id);
      const [event] = await bed.sim.control.events({ transactionId: row?.createTransactionId });
      const requested = event?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested') ?? [];
      assert.equal(requested.length, 1, 'one NOTIFY reached OpenCRVS');
      assert.equal(requested[0]?.createdAtLocation, stored ? bed.office : open);
      // Stored, OpenCRVS holds it at the closed office, not the row's: someone moves it there.
      assert.equal(row?.updatesAfterNotification, stored ? 1 : 0, 'flagged when OpenCRVS holds another copy');
    });
  }

  it('stored, and the record corrected before the replay: delivered, and flagged as updated after notification', async () => {
    const { worker, id } = await inDoubtThenClosed(true);
    try {
      bed.ledger.recordEvent(birthEvent(open, 1, { 'child.name': { firstname: 'Corrected', surname: 'Child' } }));
      await until(worker, () => bed.ledger.get(id)?.state === 'delivered');
    } finally {
      await worker.stop({ drainMs: 5000 });
    }
    await assertExactlyOnce(bed.sim, bed.ledger, 3);
    const row = bed.ledger.get(id);
    assert.equal(row?.updatesAfterNotification, 1, 'OpenCRVS holds the first copy: someone corrects it there');
    const [event] = await bed.sim.control.events({ transactionId: row?.createTransactionId });
    const requested = event?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested') ?? [];
    assert.deepEqual(
      requested.map((a) => (a.declaration?.['child.name'] as { firstname?: string } | undefined)?.firstname),
      ['Test1'],
    );
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
