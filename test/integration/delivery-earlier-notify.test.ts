// A row whose earlier attempt may have stored its NOTIFY (the answer lost) is never skipped, cancelled or
// declared "nothing was sent" without asking OpenCRVS first, whatever happened to the row since: a requeue
// to the next transactionId generation, a switch of `delivery.mode`, an outage hold that un-counted the
// attempt. Real client, real simulator: OpenCRVS holds the NOTIFY each time, and the ledger must say so.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createDeliveryWorker, type DeliveryWorker } from '../../src/delivery/index.js';
import { sendRow } from '../../src/delivery/send.js';
import { dismissalNote, hashPayload, notifyTransactionId, type RecordSkippedInput } from '../../src/ledger/index.js';
import { createOpenCrvsClient, LocationResolver, OpenCrvsError } from '../../src/opencrvs/index.js';
import type { FaultConfig } from '../../src/sandbox/opencrvs/types.js';
import {
  birthEvent,
  birthPayload,
  clientSettings,
  fastDelivery,
  otherOffice,
  type TestBed,
  testBed,
  until,
} from './delivery-helpers.js';

const singleCall = { ...fastDelivery, mode: 'single-call' as const };

function merged(i: number): RecordSkippedInput {
  return {
    sourceId: 'emr',
    eventType: 'birth',
    subjectKey: `Patient/${i}`,
    sourceRef: `Encounter/${i}`,
    reason: 'merged in the source',
  };
}

describe('a NOTIFY an earlier attempt may have stored', () => {
  let bed: TestBed;
  const workers: DeliveryWorker[] = [];
  beforeEach(async () => {
    bed = await testBed();
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop({ drainMs: 2000 });
    await bed.close();
  });

  const worker = (settings = fastDelivery, extra: Partial<Parameters<typeof createDeliveryWorker>[0]> = {}) => {
    const w = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings,
      ...extra,
    });
    workers.push(w);
    return w;
  };
  const settledState = (id: number) => bed.ledger.get(id)?.state ?? 'gone';
  const settled = (id: number) => !['pending', 'failed', 'delivering'].includes(settledState(id));
  const acceptedNotifies = async (transactionId?: string) =>
    (await bed.sim.control.events(transactionId ? { transactionId } : undefined))
      .flatMap((e) => e.actions)
      .filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted');

  it('single call stored, its answer lost, then a 400: OpenCRVS is asked, and it is delivered, not dead', async () => {
    // The single call is stored and accepted, its answer lost; the retry meets a 400 (a form changed
    // meanwhile), which OpenCRVS answers before it looks for the transactionId. Dead, the row would say
    // "not delivered" of a registered birth, and invite a replay or a registrar to register it again.
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['createAndNotify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const w = worker(singleCall);
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['createAndNotify'], times: 1 },
    });
    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.lastError?.message}`);
    const events = await bed.sim.control.events();
    assert.equal(events.length, 1, "the lookup's create found the single call's event");
    assert.equal(after?.trackingId, events[0]?.trackingId);
    assert.equal((await acceptedNotifies()).length, 1);
    assert.deepEqual(
      bed.ledger.attempts(row.id).map((a) => a.step),
      ['createAndNotify', 'lookup'],
    );
  });

  it('single call lost before OpenCRVS took it, then a 400: OpenCRVS is asked, nothing stands, dead', async () => {
    await bed.sim.control.configure({ faults: { dropRate: 1, operations: ['createAndNotify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const w = worker(singleCall);
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['createAndNotify'], times: 1 },
    });
    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'dead');
    assert.equal(after?.lastError?.status, 400);
    // Recorded as the single call it was: a 400 to it, which stored nothing.
    assert.equal(bed.ledger.attempts(row.id).at(-1)?.step, 'createAndNotify');
    assert.equal((await acceptedNotifies()).length, 0);
  });

  // Not a 400 alone: a proxy's 413, a 422, a 409 other than "already notified" refuse the resend as
  // much, store nothing, and say as little of the NOTIFY an earlier attempt stored.
  for (const status of [413, 422, 409]) {
    it(`two-step NOTIFY stored, its answer lost, then a ${status} to the resend: OpenCRVS is asked, and it is delivered`, async () => {
      await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
      const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
      const w = worker();
      await until(w, () => settledState(row.id) === 'failed');
      await bed.sim.control.configure({
        faults: { errorRate: 1, errorStatus: status, operations: ['notify'], times: 1 },
      });
      await until(w, () => settled(row.id));
      const after = bed.ledger.get(row.id);
      assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.lastError?.kind} ${after?.lastError?.status}`);
      assert.equal((await acceptedNotifies()).length, 1);
      assert.deepEqual(
        bed.ledger.attempts(row.id).map((a) => a.step),
        ['notify', 'lookup'],
      );
    });
  }

  it('two-step NOTIFY stored, its answer lost, then "Event not found" to the resend: dead, nothing asked', async () => {
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    let resends = 0;
    // The simulator cannot delete an event, so OpenCRVS's 404 for a vanished one is the only answer not
    // fetched over HTTP here: the first NOTIFY goes to the simulator, the resend meets the 404.
    const gone = {
      ...api,
      async notify(input: Parameters<typeof api.notify>[0]) {
        if (resends++ === 0) return api.notify(input);
        throw new OpenCrvsError({
          kind: 'not-found',
          classification: 'permanent',
          status: 404,
          message: 'Event not found',
          operation: 'notify',
        });
      },
    };
    const w = worker(undefined, { api: gone });
    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'dead', `${after?.state}: ${after?.lastError?.kind} ${after?.lastError?.status}`);
    assert.equal(after?.lastError?.status, 404);
    // No lookup: its idempotent create could make an event the ledger never records.
    assert.deepEqual(
      bed.ledger.attempts(row.id).map((a) => a.step),
      ['notify', 'notify'],
    );
  });

  /**
   * The client, its NOTIFYs refused with a 400 (or as `refusal` says) once `refusing()` says so, each refusal
   * followed by a `lookupStatus` answer to the next create (the lookup's): faults of the real simulator, set
   * between calls.
   */
  const refusedThenLookupFails = (
    refusing: () => boolean,
    lookupStatus: number,
    refusal: Pick<FaultConfig, 'errorStatus' | 'errorEcho'> = { errorStatus: 400 },
  ) => {
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    return {
      ...api,
      async notify(input: Parameters<typeof api.notify>[0]) {
        if (!refusing()) return api.notify(input);
        await bed.sim.control.configure({
          faults: { errorRate: 1, ...refusal, operations: ['notify'], times: 1 },
        });
        try {
          return await api.notify(input);
        } finally {
          await bed.sim.control.configure({
            faults: { errorRate: 1, errorStatus: lookupStatus, operations: ['create'], times: 1 },
          });
        }
      },
    };
  };

  it('NOTIFY lost, then a 400 to each resend and a 500 to each lookup till the budget ends: dead for the 400', async () => {
    let refusing = false;
    const w = worker({ ...fastDelivery, maxAttempts: 4 }, { api: refusedThenLookupFails(() => refusing, 500) });
    await bed.sim.control.configure({ faults: { dropRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settledState(row.id) === 'failed');
    refusing = true;
    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'dead');
    assert.equal(after?.lastError?.status, 400, "the dead row says what OpenCRVS refused, not the lookup's 500");
    assert.equal(after?.lastError?.kind, 'bad-request');
    assert.match(after?.lastError?.message ?? '', /may have been taken by OpenCRVS; asking it failed: server\)$/);
    // Recorded as the NOTIFY refused, which stored nothing: not a retryable failure of it, in doubt.
    const last = bed.ledger.attempts(row.id).at(-1);
    assert.deepEqual([last?.step, last?.error?.classification, last?.error?.status], ['notify', 'permanent', 400]);
    // The lost NOTIFY (no answer in time) is not counted toward maxAttempts: four after it.
    assert.deepEqual(
      bed.ledger.attempts(row.id).map((a) => a.step),
      ['notify', 'lookup', 'lookup', 'lookup', 'notify'],
    );
  });

  it('a 400 to each resend, the lookup after it unreached (502): no outage hold, the rows keep to their budgets', async () => {
    // OpenCRVS answered each NOTIFY: the lookup's gateway failure is no sign of an outage, and counts.
    let refusing = false;
    const w = worker(
      { ...fastDelivery, concurrency: 1, maxAttempts: 4, outageHoldSeconds: 1 },
      { api: refusedThenLookupFails(() => refusing, 502) },
    );
    // Each first NOTIFY answered with a 500 (in doubt): an answer, so no outage before the resends.
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 500, operations: ['notify'], times: 3 } });
    const rows = [1, 2, 3].map((i) => bed.ledger.recordEvent(birthEvent(bed.office, i)).row);
    await until(w, () => rows.every((r) => settledState(r.id) === 'failed'));
    refusing = true;
    await until(w, () => w.held() !== undefined || rows.every((r) => settled(r.id)));
    assert.equal(w.held(), undefined, w.held()?.reason);
    for (const r of rows) {
      const after = bed.ledger.get(r.id);
      assert.equal(after?.state, 'dead');
      assert.equal(after?.lastError?.status, 400);
      assert.match(after?.lastError?.message ?? '', /asking it failed: server\)$/);
    }
  });

  it("a proxy's 413 page to each resend, the lookup after it unreached (502): no answer of OpenCRVS, the queue holds", async () => {
    // nginx refuses by size before OpenCRVS is asked, and its page is no answer of OpenCRVS, which may be
    // down behind it, as the lookups' 502s say. Taken for OpenCRVS's refusal, it reset the outage watch,
    // and the 502s spent each row's maxAttempts: the backlog died in an outage.
    let refusing = false;
    const w = worker(
      { ...fastDelivery, concurrency: 1, maxAttempts: 4, outageHoldSeconds: 1 },
      { api: refusedThenLookupFails(() => refusing, 502, { errorStatus: 413, errorEcho: 'html' }) },
    );
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 500, operations: ['notify'], times: 3 } });
    const rows = [1, 2, 3].map((i) => bed.ledger.recordEvent(birthEvent(bed.office, i)).row);
    await until(w, () => rows.every((r) => settledState(r.id) === 'failed'));
    refusing = true;
    await until(w, () => w.held() !== undefined || rows.every((r) => settled(r.id)));
    const states = rows.map((r) => `${settledState(r.id)} ${bed.ledger.get(r.id)?.lastError?.status}`);
    const held = w.held();
    assert.ok(held, `not held: ${states.join(', ')}`);
    assert.match(held.reason, /^OpenCRVS out of reach: server \(HTTP 502\)/);
    for (const r of rows) assert.notEqual(settledState(r.id), 'dead');
  });

  it('a 409 "already notified" to the resend, then a 500 to each lookup till the budget ends: dead saying OpenCRVS holds a NOTIFY', async () => {
    // The first NOTIFY is lost on the way; OpenCRVS holds one of the row's all the same, under the next
    // generation (a replay's, made after the backup this ledger was restored from). The resend is answered
    // 409, and the lookup that would tell whose NOTIFY that is fails till the budget ends. Dead with the
    // lookup's 500, the row read "not delivered" of a birth OpenCRVS has, and said nothing of the 409.
    await bed.sim.control.configure({ faults: { dropRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const w = worker({ ...fastDelivery, maxAttempts: 3 });
    await until(w, () => settledState(row.id) === 'failed');
    const eventId = bed.ledger.get(row.id)?.eventId;
    assert.ok(eventId);
    const { declaration } = birthPayload(bed.office, 1);
    const transactionId = notifyTransactionId(row.baseTransactionId, 1);
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    await api.notify({ eventId, transactionId, createdAtLocation: bed.office, declaration });
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 500, operations: ['create'] } });
    await until(w, () => settled(row.id));
    const dead = bed.ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.deepEqual([dead?.lastError?.kind, dead?.lastError?.status], ['already-notified', 409]);
    const message = dead?.lastError?.message ?? '';
    assert.match(message, /^OpenCRVS answered that event \S+ was already notified \(already-notified \(HTTP 409\)/);
    assert.match(message, /the lookup to confirm which NOTIFY it holds could not be made \(server \(HTTP 500\)/);
    assert.match(
      message,
      /Replay the row once OpenCRVS answers lookups: it asks OpenCRVS first, and the row is delivered if the NOTIFY is its own$/,
    );
    // The lost NOTIFY (no answer in time) is not counted toward maxAttempts: three after it.
    assert.deepEqual(
      bed.ledger.attempts(row.id).map((a) => a.step),
      ['notify', 'lookup', 'lookup', 'notify'],
    );
    // What the message says: once OpenCRVS answers lookups, a replay finds the NOTIFY and sends nothing.
    await bed.sim.control.configure({ faults: {} });
    assert.deepEqual(bed.ledger.replay([row.id]).requeued, [row.id]);
    await until(w, () => settled(row.id));
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered', bed.ledger.get(row.id)?.lastError?.message);
    assert.equal((await acceptedNotifies()).length, 1);
  });

  it('a 409 "already notified" to the resend, then a 400 to the lookup: dead at once, saying what refused the lookup, not to wait for lookups', async () => {
    // A lookup refused for good is not waiting for OpenCRVS to answer: "replay once OpenCRVS answers
    // lookups" would send the operator to replay into the same refusal.
    await bed.sim.control.configure({ faults: { dropRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    let refuseLookup = false;
    const w = worker(
      { ...fastDelivery, maxAttempts: 5 },
      {
        api: {
          ...api,
          // The create after the 409 (the lookup's) refused with a 400, once: the simulator's fault, set between calls.
          async notify(input: Parameters<typeof api.notify>[0]) {
            try {
              return await api.notify(input);
            } catch (err) {
              if (refuseLookup && err instanceof OpenCrvsError && err.status === 409)
                await bed.sim.control.configure({
                  faults: { errorRate: 1, errorStatus: 400, operations: ['create'], times: 1 },
                });
              throw err;
            }
          },
        },
      },
    );
    await until(w, () => settledState(row.id) === 'failed');
    const eventId = bed.ledger.get(row.id)?.eventId;
    assert.ok(eventId);
    const { declaration } = birthPayload(bed.office, 1);
    await api.notify({
      eventId,
      transactionId: notifyTransactionId(row.baseTransactionId, 1),
      createdAtLocation: bed.office,
      declaration,
    });
    refuseLookup = true;
    await until(w, () => settled(row.id));
    const dead = bed.ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.deepEqual([dead?.lastError?.kind, dead?.lastError?.status], ['already-notified', 409]);
    const message = dead?.lastError?.message ?? '';
    assert.match(message, /^OpenCRVS answered that event \S+ was already notified \(already-notified \(HTTP 409\)/);
    assert.match(message, /OpenCRVS refused the lookup to confirm which NOTIFY it holds \(bad-request \(HTTP 400\)/);
    assert.doesNotMatch(message, /once OpenCRVS answers lookups|could not be made/);
    assert.equal(dead?.attempts, 2, 'dead at the first refusal, its budget not spent');
  });

  it('a 409 "already notified" to each resend, the lookup after it unreached (502): no outage hold, the rows keep to their budgets', async () => {
    // OpenCRVS answered each resend with its 409: the lookup's gateway failure right after is no sign of
    // an outage, as after any other refusal of the resend. Taken for one, the rows held the queue, or
    // retried till maxAgeHours, while OpenCRVS answered every NOTIFY.
    const w = worker({ ...fastDelivery, concurrency: 1, maxAttempts: 4, outageHoldSeconds: 1 });
    // Each first NOTIFY answered with a 500 (in doubt): an answer, so no outage before the resends.
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 500, operations: ['notify'], times: 3 } });
    const rows = [1, 2, 3].map((i) => bed.ledger.recordEvent(birthEvent(bed.office, i)).row);
    await until(w, () => rows.every((r) => settledState(r.id) === 'failed'));
    // OpenCRVS holds a NOTIFY of each row under the next generation (a replay's, after the backup this
    // ledger was restored from): each resend of generation 0 is answered 409.
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    for (const [n, r] of rows.entries()) {
      const eventId = bed.ledger.get(r.id)?.eventId;
      assert.ok(eventId);
      const transactionId = notifyTransactionId(r.baseTransactionId, 1);
      const { declaration } = birthPayload(bed.office, n + 1);
      await api.notify({ eventId, transactionId, createdAtLocation: bed.office, declaration });
    }
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 502, operations: ['create'] } });
    await until(w, () => w.held() !== undefined || rows.every((r) => settled(r.id)));
    assert.equal(w.held(), undefined, w.held()?.reason);
    for (const r of rows) {
      const after = bed.ledger.get(r.id);
      assert.equal(after?.state, 'dead');
      assert.deepEqual([after?.lastError?.kind, after?.lastError?.status], ['already-notified', 409]);
      assert.match(after?.lastError?.message ?? '', /could not be made \(server \(HTTP 502\)/);
      // One lookup to an attempt: the 409's own, not a second one after it that failed alike.
      assert.doesNotMatch(after?.lastError?.message ?? '', /asking it failed/);
      assert.equal(after?.attempts, 4, 'each lookup that failed after a 409 counted');
    }
  });

  it('single call stored, then dead on a 400 that OpenCRVS also gives the lookup: a corrected record requeues it, the source withdraws it; delivered', async () => {
    // The single call is stored and accepted, its answer lost; the retry meets a 400 (a form changed
    // meanwhile), and so does the lookup's create: the row dies, saying OpenCRVS may hold it. The single
    // call stored no event id on the row.
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['createAndNotify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const w = worker(singleCall);
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['createAndNotify', 'create'], times: 2 },
    });
    await until(w, () => settled(row.id));
    assert.equal(settledState(row.id), 'dead');
    assert.match(
      bed.ledger.get(row.id)?.lastError?.message ?? '',
      /an earlier attempt may have been taken by OpenCRVS/,
    );
    assert.equal(bed.ledger.get(row.id)?.eventId, null);

    // A corrected record requeues the row (the next generation), and the source withdraws it before it is sent.
    const requeued = bed.ledger.recordEvent(birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' }));
    assert.equal(requeued.change, 'replaced');
    assert.equal(requeued.row.requeues, 1);
    const withdrawn = bed.ledger.cancelUnsent(merged(1));
    assert.equal(withdrawn?.state, 'pending', 'marked, not cancelled: the first single call may be in OpenCRVS');
    assert.equal(withdrawn?.withdrawnReason, 'merged in the source');

    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.skipReason ?? after?.lastError?.message}`);
    assert.equal((await acceptedNotifies()).length, 1, 'the first single call, and nothing since');
    assert.ok((after?.updatesAfterNotification ?? 0) >= 1, 'the withdrawal counts as an update after notification');
  });

  it('single call stored, withdrawn, then sent in two-step mode: OpenCRVS is asked, and it is delivered', async () => {
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['createAndNotify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const first = worker(singleCall);
    await until(first, () => settledState(row.id) === 'failed');
    await first.stop({ drainMs: 2000 });
    assert.equal(bed.ledger.cancelUnsent(merged(1))?.withdrawnReason, 'merged in the source');

    // Restarted with `delivery.mode: two-step`: the attempt that was a single call still says so.
    const second = worker(fastDelivery);
    await until(second, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.skipReason ?? after?.lastError?.message}`);
    assert.equal((await acceptedNotifies()).length, 1);
  });

  it('single call made by a process that stopped, its lock taken back in two-step mode, withdrawn: delivered', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    // The process that stopped: it claimed the row and made the single call, and never settled it.
    const claimed = bed.ledger.claimRow(row.id, 'gone-process:1');
    assert.ok(claimed?.payload);
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    await sendRow(api, bed.ledger, claimed, claimed.payload, 'single-call', { step: 'create' });
    assert.equal(bed.ledger.get(row.id)?.eventId, null, 'a single call stores no event id');

    // Restarted with `delivery.mode: two-step`: the lock is taken back, then the source withdraws the record.
    assert.equal(
      bed.ledger.resetLocksOf('gone-process', () => true, { singleCall: false }),
      1,
    );
    assert.equal(bed.ledger.attempts(row.id).at(-1)?.step, 'interrupted', 'the single call may be in OpenCRVS');
    assert.equal(bed.ledger.cancelUnsent(merged(1))?.withdrawnReason, 'merged in the source');

    const w = worker(fastDelivery);
    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.skipReason ?? after?.lastError?.message}`);
    assert.equal((await acceptedNotifies()).length, 1);
  });

  it('single calls stored during an outage, the hold un-counts one, the source withdraws it: delivered', async () => {
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['createAndNotify'], times: 3 } });
    const rows = [1, 2, 3].map((i) => bed.ledger.recordEvent(birthEvent(bed.office, i)).row);
    const settings = { ...singleCall, outageHoldSeconds: 0, holdProbeSeconds: 3600 };
    const first = worker(settings);
    await until(first, () => bed.ledger.getHold() !== undefined);
    await first.stop({ drainMs: 2000 });
    // The attempt that met the hold is not counted against the row's budget: as if never tried.
    const held = rows.find((r) => bed.ledger.get(r.id)?.attempts === 0);
    assert.ok(held, 'a row whose attempt the hold un-counted');
    const i = Number(held.subjectKey.split('/')[1]);
    assert.equal(bed.ledger.cancelUnsent(merged(i))?.withdrawnReason, 'merged in the source');

    const second = worker({ ...settings, holdProbeSeconds: 1 });
    await until(second, () => rows.every((r) => settled(r.id)));
    const after = bed.ledger.get(held.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.skipReason ?? after?.lastError?.message}`);
    assert.equal((await acceptedNotifies(held.baseTransactionId)).length, 1);
    assert.deepEqual(
      rows.map((r) => settledState(r.id)),
      ['delivered', 'delivered', 'delivered'],
    );
  });

  it('two-step NOTIFY stored, then dead on a 400, requeued, office closed since: delivered, not "nothing was sent"', async () => {
    let now = Date.now();
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    await resolver.preload([{ ref: bed.office, type: 'CRVS_OFFICE' }]);
    const w = worker(fastDelivery, { officeClosedOn: (office) => resolver.officeClosedOn(office) });
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settledState(row.id) === 'failed');
    // The resend refused (400), and the lookup it makes then refused too: dead, though OpenCRVS holds it.
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['notify', 'create'], times: 2 },
    });
    await until(w, () => settled(row.id));
    assert.equal(settledState(row.id), 'dead');

    const requeued = bed.ledger.recordEvent(birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' }));
    assert.equal(requeued.row.requeues, 1);
    await bed.sim.control.closeLocation(bed.office, '2026-01-31T00:00:00.000Z');
    now += 2 * 3_600_000; // past the resolver's hour: the closure is seen
    await until(w, () => settled(row.id));

    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.lastError?.message}`);
    assert.equal((await acceptedNotifies()).length, 1);
    assert.equal(after?.updatesAfterNotification, 1, 'the corrected record is an update after notification');
  });

  it('the same, with the lookup refused for good: dead for the office, saying OpenCRVS may hold it', async () => {
    let now = Date.now();
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    await resolver.preload([{ ref: bed.office, type: 'CRVS_OFFICE' }]);
    const w = worker(fastDelivery, { officeClosedOn: (office) => resolver.officeClosedOn(office) });
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['notify', 'create'], times: 2 },
    });
    await until(w, () => settled(row.id));
    bed.ledger.recordEvent(birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' }));
    await bed.sim.control.closeLocation(bed.office, '2026-01-31T00:00:00.000Z');
    now += 2 * 3_600_000;
    // The lookup (an idempotent create) refused with a 400, as OpenCRVS refuses a create naming an office
    // it no longer takes: the row's reason stays the office's, not the lookup's.
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['create'], times: 1 },
    });
    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'dead');
    assert.equal(after?.lastError?.kind, 'office-closed', JSON.stringify(after?.lastError));
    assert.match(
      after?.lastError?.message ?? '',
      /an earlier attempt may have been taken by OpenCRVS; asking it failed/,
    );
  });

  it('two-step NOTIFY stored, dead on a 400, requeued with a facility OpenCRVS now lists otherwise: delivered', async () => {
    // The facility OpenCRVS could not be asked about when the corrected record was mapped, and with no
    // source to map it again: a row that would be dead "nothing was sent".
    const w = worker(fastDelivery, { locationNow: async () => 'another-facility' });
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['notify', 'create'], times: 2 },
    });
    await until(w, () => settled(row.id));
    assert.equal(settledState(row.id), 'dead');

    const corrected = birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' });
    corrected.payload = { ...corrected.payload, facility: 'facility-as-mapped', facilityUnchecked: 'Location/7' };
    corrected.payloadHash = hashPayload(corrected.payload);
    assert.equal(bed.ledger.recordEvent(corrected).row.requeues, 1);
    await until(w, () => settled(row.id));

    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.lastError?.message}`);
    assert.equal((await acceptedNotifies()).length, 1);
  });

  it('the same, the office gone from OpenCRVS so that the lookup is refused for it: that row alone is dead, the queue goes on', async () => {
    // OpenCRVS refuses the lookup's create for the office (unknown-office, an operator's error), which
    // concerns this row, not the queue: held, births to other offices waited for good, the hold probe
    // re-trying this row and meeting the same refusal.
    const w = worker(fastDelivery, { locationNow: async () => 'another-facility' });
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['notify', 'create'], times: 2 },
    });
    await until(w, () => settled(row.id));
    assert.equal(settledState(row.id), 'dead');

    // OpenCRVS set up again without that office; births at another office keep coming.
    await bed.sim.control.removeLocation(bed.office);
    const open = otherOffice(bed.sim, bed.office);
    const corrected = birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' });
    corrected.payload = { ...corrected.payload, facility: 'facility-as-mapped', facilityUnchecked: 'Location/7' };
    corrected.payloadHash = hashPayload(corrected.payload);
    assert.equal(bed.ledger.recordEvent(corrected).row.requeues, 1);
    const others = [2, 3].map((i) => bed.ledger.recordEvent(birthEvent(open, i)).row);
    await until(w, () => settled(row.id) && others.every((r) => settledState(r.id) === 'delivered'));

    assert.equal(w.held(), undefined, 'the queue is not held');
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'dead');
    assert.equal(after?.lastError?.kind, 'facility-changed', JSON.stringify(after?.lastError));
    assert.match(
      after?.lastError?.message ?? '',
      /an earlier attempt may have been taken by OpenCRVS; asking it failed: unknown-office/,
    );
    // Dismissed, it says OpenCRVS may hold it; replayed, OpenCRVS is asked first.
    assert.equal(bed.ledger.notifyMayStand(row.id), true);
    assert.match(dismissalNote(after?.trackingId, bed.ledger.notifyMayStand(row.id)) ?? '', /nothing was withdrawn/);
    await w.stop({ drainMs: 2000 });
    assert.deepEqual(bed.ledger.replay([row.id]).requeued, [row.id]);
    assert.equal((await acceptedNotifies()).length, 3, "births 2 and 3, and birth 1's first NOTIFY, nothing since");
  });

  it('the same, the lookup refused for every row (403 to the client): the queue is held, the row not dead', async () => {
    const w = worker(fastDelivery, { locationNow: async () => 'another-facility' });
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['notify', 'create'], times: 2 },
    });
    await until(w, () => settled(row.id));
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 403, operations: ['create'], times: 1 } });
    const corrected = birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' });
    corrected.payload = { ...corrected.payload, facility: 'facility-as-mapped', facilityUnchecked: 'Location/7' };
    corrected.payloadHash = hashPayload(corrected.payload);
    assert.equal(bed.ledger.recordEvent(corrected).row.requeues, 1);
    // Held, then the probe's re-try of the row, the refusal gone: OpenCRVS holds the first NOTIFY, and says so.
    await until(w, () => settled(row.id));
    assert.deepEqual(
      bed.ledger
        .attempts(row.id)
        .filter((a) => a.outcome === 'held')
        .map((a) => [a.step, a.error?.kind]),
      [['lookup', 'forbidden']],
      'the refusal held the queue',
    );
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.lastError?.message}`);
    assert.equal((await acceptedNotifies()).length, 1);
  });

  it('two-step NOTIFY stored, dead, requeued, then read invalid while sent and handed back: asked, delivered', async () => {
    const w = worker(fastDelivery);
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settledState(row.id) === 'failed');
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['notify', 'create'], times: 2 },
    });
    await until(w, () => settled(row.id));
    assert.equal(settledState(row.id), 'dead');
    const corrected = { ...birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' }), sourceFingerprint: () => 'fp-2' };
    assert.equal(bed.ledger.recordEvent(corrected).row.requeues, 1);

    // The next generation's first attempt, by a worker that stops before it sends: meanwhile the record
    // is read invalid from changed content, and with no NOTIFY of this generation in doubt the copy in
    // flight is set aside (record.ts). Handed back, the row has no payload to send.
    assert.ok(bed.ledger.claimRow(row.id, 'stopping-worker'));
    bed.ledger.recordInvalid({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: row.subjectKey,
      sourceRef: row.sourceRef,
      errors: [{ field: 'child.dob', message: 'not a date' }],
      sourceFingerprint: () => 'fp-3',
    });
    assert.equal(bed.ledger.handBack([row.id], 'stopping-worker'), 1);
    assert.equal(bed.ledger.get(row.id)?.payload, null);

    await until(w, () => settled(row.id));
    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'delivered', `${after?.state}: ${after?.lastError?.message}`);
    assert.equal((await acceptedNotifies()).length, 1);
    assert.equal(after?.updatesAfterNotification, 1, 'the source says otherwise since: an update after notification');
  });

  it('a NOTIFY refused before anything was stored, office closed since: dead, nothing sent', async () => {
    let now = Date.now();
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    await resolver.preload([{ ref: bed.office, type: 'CRVS_OFFICE' }]);
    const w = worker(fastDelivery, { officeClosedOn: (office) => resolver.officeClosedOn(office) });
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 400, operations: ['notify'], times: 1 } });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await until(w, () => settled(row.id));
    assert.equal(settledState(row.id), 'dead');
    bed.ledger.recordEvent(birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' }));
    await bed.sim.control.closeLocation(bed.office, '2026-01-31T00:00:00.000Z');
    now += 2 * 3_600_000;
    await until(w, () => settled(row.id));

    const after = bed.ledger.get(row.id);
    assert.equal(after?.state, 'dead');
    assert.equal(after?.lastError?.kind, 'office-closed');
    assert.equal((await acceptedNotifies()).length, 0);
  });
});
