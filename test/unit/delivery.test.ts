import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { DeliverySettings } from '../../src/config/types.js';
import { createDeliveryWorker, type DeliveryOutcome, type DeliveryWorker } from '../../src/delivery/index.js';
import { countedAttempts, type Ledger } from '../../src/ledger/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { FakeOpenCrvs, TEST_DELIVERY_SETTINGS as settings } from './delivery-fake-api.js';
import { eventInput, payload, type TestClock, tempLedger, testClock } from './ledger-helpers.js';

describe('delivery worker', () => {
  let clock: TestClock;
  let ledger: Ledger;
  let cleanup: () => void;
  let api: FakeOpenCrvs;
  let outcomes: DeliveryOutcome[];
  const worker = (overrides: Partial<DeliverySettings> = {}): DeliveryWorker =>
    createDeliveryWorker({
      ledger,
      api,
      settings: { ...settings, ...overrides },
      workerId: 'w-test',
      now: clock.now,
      random: () => 1,
      onOutcome: (event) => outcomes.push(event),
    });

  beforeEach(() => {
    clock = testClock();
    ({ ledger, cleanup } = tempLedger(clock, 1));
    api = new FakeOpenCrvs();
    outcomes = [];
  });
  afterEach(() => cleanup());

  it('runUntilIdle ends at its timeout while every round is busy (an OpenCRVS that answers slowly, or never)', async () => {
    for (let i = 0; i < 100; i++) ledger.recordEvent(eventInput(`slow${i}`));
    const createEvent = api.createEvent.bind(api);
    api.createEvent = async (input) => {
      await new Promise((resolve) => setTimeout(resolve, 20)); // each call waits out a (short) timeout
      return createEvent(input);
    };
    api.always.create = { classification: 'retryable', kind: 'timeout', message: 'no answer', operation: 'create' };
    await assert.rejects(worker().runUntilIdle({ timeoutMs: 50 }), /did not become idle before the timeout/);
    assert.ok(api.count('create') < 100, `stopped after ${api.count('create')} of 100 rows' first attempts`);
  });

  it('backs off, doubling its wait, while every round of the claim loop fails (a full disk)', async () => {
    let claims = 0;
    ledger.claimDue = () => {
      claims++;
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const w = worker({ pollIntervalMs: 10 });
    w.start();
    await new Promise((resolve) => setTimeout(resolve, 700));
    await w.stop({ drainMs: 0 });
    // Waits of 10, 20, 40… ms: about 7 rounds in 700 ms, where a fixed 10 ms wait made about 70 (and as
    // many error lines in the log).
    assert.ok(claims >= 2 && claims <= 15, `${claims} rounds`);
  });

  it('gives a row back, due in 30 s, when its attempt crashed on a ledger write (a full disk); the resend finds the event', async () => {
    const { row } = ledger.recordEvent(eventInput('full'));
    const { recordCreated, settle } = ledger;
    const full = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
    const created: string[] = [];
    const createEvent = api.createEvent.bind(api);
    api.createEvent = async (input) => {
      const event = await createEvent(input);
      created.push(event.id);
      return event;
    };
    // OpenCRVS creates the event; the ledger cannot store its id, nor the failure.
    ledger.recordCreated = () => {
      throw full();
    };
    ledger.settle = () => {
      throw full();
    };
    const w = worker();
    await w.processNext();
    ledger.recordCreated = recordCreated;
    ledger.settle = settle;
    const given = ledger.get(row.id);
    assert.equal(given?.state, 'failed', 'not left delivering until the lock timeout (5 minutes)');
    assert.equal(given?.lockedBy, null);
    assert.equal(given?.nextRunAt, clock.now() + 30_000, 'not at once: no loop of calls while the disk is full');
    assert.match(given?.lastError?.message ?? '', /ledger write the disk refused \(SQLITE_FULL\)/);
    await w.processNext();
    assert.equal(api.count('create'), 1, 'not due yet');
    clock.advance(30_000);
    await w.processNext();
    assert.equal(ledger.get(row.id)?.state, 'delivered');
    assert.equal(api.count('create'), 2, 'sent again');
    assert.equal(new Set(api.calls.map((c) => c.transactionId)).size, 2, 'with the same create and notify ids');
    assert.equal(new Set(created).size, 1, 'the resend found the event the first create made');
    assert.equal(ledger.get(row.id)?.eventId, created[0]);
  });

  it('gives the row of a crashed attempt back at the next round when the ledger refused that too', async () => {
    const { row } = ledger.recordEvent(eventInput('full-twice'));
    const { settle, takeBackUnfinished } = ledger;
    const full = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
    ledger.settle = () => {
      throw full();
    };
    ledger.takeBackUnfinished = () => {
      throw full();
    };
    const w = worker();
    await w.processNext();
    assert.equal(ledger.get(row.id)?.state, 'delivering', 'the disk still full');
    ledger.settle = settle;
    ledger.takeBackUnfinished = takeBackUnfinished;
    clock.advance(1_000); // well within the lock timeout
    await w.processNext();
    const given = ledger.get(row.id);
    assert.equal(given?.state, 'failed');
    assert.equal(given?.lockedBy, null);
    assert.equal(given?.nextRunAt, clock.now() + 30_000);
  });

  it('gives a crashed attempt of a bug (not a storage error) the retry backoff, and the row dead once its attempts are spent', async () => {
    const { row } = ledger.recordEvent(eventInput('crash-bug'));
    // Thrown on every attempt, after the NOTIFY went out: no settle ever records the retry policy's decision.
    ledger.settle = () => {
      throw new TypeError("Cannot read properties of undefined (reading 'x')");
    };
    const w = worker({ maxAttempts: 3 }); // baseDelayMs 1000, random 1: waits of 1 s, then 2 s
    await w.processNext();
    let given = ledger.get(row.id);
    assert.equal(given?.state, 'failed');
    assert.equal(given?.lockedBy, null);
    assert.equal(given?.nextRunAt, clock.now() + 1_000, "the policy's backoff for attempt 1, not 30 s");
    assert.equal(given?.lastError?.kind, 'internal');
    assert.match(given?.lastError?.message ?? '', /unexpected error \(see the log\); resending/);
    clock.advance(1_000);
    await w.processNext();
    given = ledger.get(row.id);
    assert.equal(given?.state, 'failed');
    assert.equal(given?.nextRunAt, clock.now() + 2_000, 'doubled for attempt 2');
    clock.advance(2_000);
    await w.processNext();
    given = ledger.get(row.id);
    assert.equal(given?.state, 'dead', 'maxAttempts reached: dead, not resent every 30 s for ever');
    assert.equal(given?.attempts, 3);
    assert.equal(given?.lockedBy, null);
    assert.equal(given?.lastError?.kind, 'internal');
    assert.match(given?.lastError?.message ?? '', /gave up after 3 attempts \(maxAttempts 3\)/);
    assert.deepEqual(
      outcomes.filter((o) => o.type === 'dead').map((o) => o.row?.id),
      [row.id],
      'counted dead (metrics)',
    );
    for (let i = 0; i < 5; i++) {
      clock.advance(3_600_000);
      await w.processNext();
    }
    assert.equal(api.count('notify'), 3, 'nothing sent after it went dead');
    assert.equal(new Set(api.calls.map((c) => c.transactionId)).size, 2, 'every resend under the same ids');
    const attempts = ledger.attempts(row.id);
    assert.equal(attempts.length, 3);
    assert.deepEqual(
      attempts.map((a) => a.outcome),
      ['retry', 'retry', 'dead'],
    );
  });

  it('gives a storage crash back due in 30 s however many attempts it made: the disk is no fault of the row', async () => {
    const { row } = ledger.recordEvent(eventInput('full-spent'));
    ledger.settle = () => {
      throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
    };
    await worker({ maxAttempts: 1 }).processNext();
    const given = ledger.get(row.id);
    assert.equal(given?.state, 'failed', 'not dead');
    assert.equal(given?.nextRunAt, clock.now() + 30_000);
  });

  it('retries a row whose attempt failed inside the bridge (not an OpenCRVS answer), with the error kept', async () => {
    const { row } = ledger.recordEvent(eventInput('bug'));
    api.createEvent = async () => {
      throw new TypeError('cannot read properties of undefined');
    };
    await worker().processNext();
    const failed = ledger.get(row.id);
    assert.equal(failed?.state, 'failed', 'a bug is no reason to give a birth up at once');
    assert.equal(failed?.lastError?.kind, 'internal');
    assert.match(failed?.lastError?.message ?? '', /TypeError: cannot read properties/);
    assert.ok((failed?.nextRunAt ?? 0) > clock.now(), 'retried later, with backoff');
  });

  it('keeps the inner reasons of an AggregateError that failed an attempt (its own message is empty)', async () => {
    const { row } = ledger.recordEvent(eventInput('aggregate'));
    api.createEvent = async () => {
      throw new AggregateError([
        Object.assign(new Error('connect ECONNREFUSED ::1:80'), { code: 'ECONNREFUSED' }),
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:80'), { code: 'ECONNREFUSED' }),
      ]);
    };
    await worker().processNext();
    assert.equal(
      ledger.get(row.id)?.lastError?.message,
      'AggregateError: connect ECONNREFUSED ::1:80; connect ECONNREFUSED 127.0.0.1:80',
    );
  });

  it('creates then notifies with the row transactionIds and records the tracking id', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    assert.equal(await worker().processNext(), 1);
    assert.deepEqual(api.calls, [
      { op: 'create', transactionId: row.createTransactionId },
      { op: 'notify', transactionId: row.notifyTransactionId },
    ]);
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered');
    assert.equal(done?.eventId, 'event-1');
    assert.equal(done?.trackingId, 'TRK001');
    assert.deepEqual(
      outcomes.map((o) => o.type),
      ['delivered'],
    );
    assert.equal(outcomes[0]?.row?.trackingId, 'TRK001');
    assert.deepEqual(outcomes[0]?.row, done, 'the reported row is the row as stored');
  });

  it('resumes at notify when the create succeeded but the notify failed', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 502 });
    const w = worker();
    await w.processNext();
    const failed = ledger.get(row.id);
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.eventId, 'event-1');
    assert.equal(failed?.nextRunAt, clock.now() + 1000);
    clock.advance(1000);
    await w.processNext();
    assert.equal(api.count('create'), 1);
    assert.equal(api.count('notify'), 2);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
    assert.equal(ledger.get(row.id)?.attempts, 2);
  });

  it('uses one create-and-notify call with the base transactionId in single-call mode', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    await worker({ mode: 'single-call' }).processNext();
    assert.deepEqual(api.calls, [{ op: 'createAndNotify', transactionId: row.baseTransactionId }]);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('in single-call mode, a replayed row goes out under a new NOTIFY transactionId (the old one would be answered as before)', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('createAndNotify', { classification: 'permanent', kind: 'bad-request', status: 400, message: 'refused' });
    await worker({ mode: 'single-call' }).processNext();
    assert.equal(ledger.get(row.id)?.state, 'dead');
    ledger.replay([row.id]);
    const replayed = ledger.get(row.id);
    assert.ok(replayed && replayed.notifyTransactionId !== row.notifyTransactionId, 'a new generation');
    await worker({ mode: 'single-call' }).processNext();
    assert.deepEqual(api.calls, [
      { op: 'createAndNotify', transactionId: row.baseTransactionId },
      { op: 'create', transactionId: row.createTransactionId },
      { op: 'notify', transactionId: replayed.notifyTransactionId },
    ]);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it("a replayed row's failed lookup of its earlier NOTIFYs sent nothing: a correction then replaces its payload", async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', { classification: 'permanent', kind: 'bad-request', status: 400, message: 'refused' });
    await worker().processNext();
    assert.equal(ledger.get(row.id)?.state, 'dead');
    ledger.replay([row.id]);
    api.fail('create', { classification: 'retryable', kind: 'network', message: 'ECONNRESET' });
    await worker().processNext();
    assert.equal(ledger.attempts(row.id).at(-1)?.step, 'lookup');
    assert.equal(api.count('notify'), 1, 'nothing sent by the replay yet');
    assert.equal(ledger.recordEvent(eventInput('1', payload('Corrected'), '2')).change, 'replaced');
  });

  it('marks a Requested notify as delivered-pending', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.outcome = 'pending';
    await worker().processNext();
    assert.equal(ledger.get(row.id)?.state, 'delivered-pending');
    assert.equal(outcomes[0]?.type, 'pending');
  });

  it('treats a 409 already-notified as delivered, learning the event id from the idempotent create', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('createAndNotify', {
      classification: 'permanent',
      kind: 'already-notified',
      status: 409,
      message: "Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state",
    });
    await worker({ mode: 'single-call' }).processNext();
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered');
    assert.equal(done?.trackingId, 'TRK001');
    assert.deepEqual(
      api.calls.map((c) => c.op),
      ['createAndNotify', 'create'],
    );
  });

  it('sends a 400 to dead at once with the OpenCRVS field message, without the echoed value', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', {
      classification: 'permanent',
      kind: 'bad-request',
      status: 400,
      message: '[{"message":"Invalid input","id":"child.name","value":{"firstname":999}}]',
    });
    await worker().processNext();
    const dead = ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.deepEqual(dead?.lastError, {
      classification: 'permanent',
      kind: 'bad-request',
      status: 400,
      message: '[{"message":"Invalid input","id":"child.name"}]',
    });
    assert.equal(outcomes[0]?.type, 'dead');
  });

  it('a 400 for a copy a newer version replaced meanwhile sends that version next, not a dead letter', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', { classification: 'permanent', kind: 'bad-request', status: 400, message: 'Invalid input' });
    api.onNotify = () => {
      api.onNotify = undefined;
      ledger.recordEvent(eventInput('1', payload('Corrected'), '2'));
    };
    const w = worker();
    await w.processNext();
    assert.equal(ledger.get(row.id)?.state, 'failed');
    assert.deepEqual(
      outcomes.map((o) => o.type),
      ['retry'],
    );
    await w.processNext();
    const delivered = ledger.get(row.id);
    assert.equal(delivered?.state, 'delivered');
    assert.deepEqual(delivered?.payload?.declaration['child.name'], payload('Corrected').declaration['child.name']);
    assert.equal(delivered?.updatesAfterNotification, 0);
  });

  it('backs off with the policy delays, honours Retry-After, then dead-letters after maxAttempts', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    // A 500 is OpenCRVS's own answer: counted (a 502–504 or a lost connection ends the budget by age only).
    api.fail('create', { classification: 'retryable', kind: 'server', status: 500 }, 5);
    api.failures.create?.splice(1, 1, {
      kind: 'rate-limited',
      classification: 'retryable',
      status: 429,
      message: 'slow down',
      retryAfterMs: 30_000,
    });
    const w = worker();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      await w.processNext();
      const current = ledger.get(row.id);
      if (current?.state === 'failed') {
        delays.push(current.nextRunAt - clock.now());
        clock.set(current.nextRunAt);
      }
    }
    // random = 1: base 1 s doubling; the 2nd failure's Retry-After (30 s) beats its 2 s backoff.
    assert.deepEqual(delays, [1000, 30_000, 4000, 8000]);
    const dead = ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.attempts, 5);
    assert.equal(dead?.lastError?.status, 500);
    assert.match(outcomes.at(-1)?.reason ?? '', /5 attempts/);
  });

  it("counts toward maxAttempts only the failures OpenCRVS answered, not its gateway's 503s, and keeps them apart on the row", async () => {
    const { row } = ledger.recordEvent(eventInput('flaky-gateway'));
    // Four 503s of a gateway (one row alone: no outage hold), then OpenCRVS's own 500s.
    api.fail('create', { classification: 'retryable', kind: 'server', status: 503 }, 4);
    api.fail('create', { classification: 'retryable', kind: 'server', status: 500 }, 3);
    const w = worker({ maxAttempts: 3 });
    const step = async () => {
      await w.processNext();
      const current = ledger.get(row.id);
      if (current?.state === 'failed') clock.set(current.nextRunAt);
      return current;
    };
    for (let i = 0; i < 4; i++) await step();
    const afterGateway = await step(); // the first 500: one counted attempt of three
    assert.equal(afterGateway?.state, 'failed', 'not dead at the first answered failure');
    assert.equal(afterGateway?.attempts, 5);
    assert.equal(afterGateway?.unreachedAttempts, 4);
    assert.equal(countedAttempts(afterGateway ?? row), 1);
    await step();
    const dead = await step();
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.attempts, 7);
    assert.equal(countedAttempts(dead ?? row), 3);
    // Each attempt says whether it was one of them (ledger --find, the admin page's list).
    assert.deepEqual(
      ledger.attempts(row.id).map((a) => a.unreached),
      [true, true, true, true, false, false, false],
    );
    assert.match(
      outcomes.at(-1)?.reason ?? '',
      /gave up after 3 attempts \(maxAttempts 3; 4 more did not reach OpenCRVS\)/,
    );
    // A replay starts a new budget: neither count is kept.
    ledger.replay([row.id]);
    assert.deepEqual([ledger.get(row.id)?.attempts, ledger.get(row.id)?.unreachedAttempts], [0, 0]);
  });

  it('holds the whole queue on an operator error without burning attempts, and resumes after a probe', async () => {
    const rows = ['1', '2', '3'].map((s) => ledger.recordEvent(eventInput(s)).row);
    api.always.create = { kind: 'forbidden', classification: 'operator', status: 403, message: 'Forbidden' };
    const w = worker({ concurrency: 1, holdProbeSeconds: 60 });
    assert.equal(await w.processNext(), 1);
    assert.match(w.held()?.reason ?? '', /forbidden \(HTTP 403\)/);
    assert.equal(ledger.getHold()?.rowId, rows[0]?.id);
    assert.equal(await w.processNext(), 0, 'nothing is claimed while held');
    for (const row of rows) {
      const current = ledger.get(row.id);
      assert.equal(current?.state, 'pending');
      assert.equal(current?.attempts, 0);
    }
    // Probe due but the problem is still there: still held, still nothing burned.
    clock.advance(60_000);
    assert.equal(await w.probe(), false);
    assert.ok(w.held());
    assert.equal(ledger.get(rows[0]?.id ?? 0)?.attempts, 0);
    // Fixed by the operator: the next due probe re-tries the held row and resumes.
    api.always.create = undefined;
    clock.advance(60_000);
    assert.equal(await w.processNext(), 1);
    assert.equal(w.held(), undefined);
    assert.equal(ledger.getHold(), undefined);
    await w.processNext();
    await w.processNext();
    assert.deepEqual(
      rows.map((r) => ledger.get(r.id)?.state),
      ['delivered', 'delivered', 'delivered'],
    );
    assert.deepEqual(
      outcomes.map((o) => o.type),
      ['held', 'held', 'delivered', 'resumed', 'delivered', 'delivered'],
    );
  });

  it('an outage is one hold: the attempts still in flight do not replace the row its log line names', async () => {
    for (const s of ['1', '2', '3', '4']) ledger.recordEvent(eventInput(s));
    api.always.create = {
      kind: 'network',
      classification: 'retryable',
      message: 'UND_ERR_SOCKET',
      operation: 'create',
    };
    const lines: string[] = [];
    const w = createDeliveryWorker({
      ledger,
      api,
      settings: { ...settings, concurrency: 4, outageHoldSeconds: 1 },
      workerId: 'w-test',
      now: clock.now,
      random: () => 1,
      onOutcome: (event) => outcomes.push(event),
      logger: createLogger({ destination: { write: (line: string) => lines.push(line) } }),
    });
    clock.advance(2000); // OpenCRVS silent for longer than outageHoldSeconds: the third failing row holds
    await w.processNext();
    assert.ok(
      outcomes.filter((o) => o.type === 'held').length >= 2,
      'a second attempt in flight was held too (what this is about)',
    );
    const logged = lines.map((line) => JSON.parse(line)).filter((entry) => /delivery held/.test(entry.msg));
    assert.equal(logged.length, 1, 'an outage is logged once');
    assert.equal(ledger.getHold()?.outage, true);
    assert.equal(ledger.getHold()?.rowId, logged[0]?.rowId, 'the ledger, `ledger` and doctor name the logged row');
  });

  it('a credentials hold that turns into an outage logs the outage, naming the row the ledger names', async () => {
    for (const s of ['1', '2', '3', '4']) ledger.recordEvent(eventInput(s));
    // The first attempt is refused at once (held for an operator): OpenCRVS answered. The three still in
    // flight then find it gone, each a while later (their timeouts), the last past outageHoldSeconds.
    const create = api.createEvent.bind(api);
    let calls = 0;
    api.createEvent = async (input) => {
      calls++;
      if (calls === 1) api.fail('create', { kind: 'forbidden', classification: 'operator', status: 403 });
      else {
        await new Promise((resolve) => setTimeout(resolve, 10 * calls));
        clock.advance(700);
        api.fail('create', { kind: 'network', classification: 'retryable', message: 'UND_ERR_SOCKET' });
      }
      return create(input);
    };
    const lines: string[] = [];
    const w = createDeliveryWorker({
      ledger,
      api,
      settings: { ...settings, concurrency: 4, outageHoldSeconds: 1 },
      workerId: 'w-test',
      now: clock.now,
      random: () => 1,
      onOutcome: (event) => outcomes.push(event),
      logger: createLogger({ destination: { write: (line: string) => lines.push(line) } }),
    });
    await w.processNext();
    const logged = lines.map((line) => JSON.parse(line)).filter((entry) => /delivery held/.test(entry.msg));
    assert.deepEqual(
      logged.map((entry) => entry.msg),
      ['delivery held for an operator', 'delivery held: OpenCRVS out of reach; probing until it answers'],
    );
    assert.equal(ledger.getHold()?.outage, true, 'the hold is an outage now');
    assert.equal(ledger.getHold()?.rowId, logged[1]?.rowId, 'the ledger, `ledger` and doctor name the logged row');
  });

  it('keeps the hold across a restart and probes it at once', async () => {
    ledger.recordEvent(eventInput('1'));
    api.always.notify = { kind: 'unauthorized', classification: 'operator', status: 401, message: 'Unauthorized' };
    await worker().processNext();
    assert.ok(ledger.getHold());
    const restarted = worker();
    assert.ok(restarted.held());
    api.always.notify = undefined;
    assert.equal(await restarted.processNext(), 1);
    assert.equal(restarted.held(), undefined);
  });

  it('stays held when the token check of the probe fails', async () => {
    ledger.recordEvent(eventInput('1'));
    api.always.create = { kind: 'unauthorized', classification: 'operator', status: 401, message: 'Unauthorized' };
    api.always.checkToken = {
      kind: 'unauthorized',
      classification: 'operator',
      status: 401,
      message: 'invalid_client',
    };
    const w = worker();
    await w.processNext();
    assert.equal(await w.probe(), false);
    assert.equal(api.count('create'), 1, 'no row re-try when the token is refused');
  });

  it('resets stale locks of a dead worker before claiming', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    ledger.claimDue('crashed-worker', 1);
    clock.advance(300_000);
    await worker().processNext();
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered');
    assert.equal(done?.attempts, 2);
  });

  it('at start, takes back at once the rows an earlier run of this process (same host and pid) left locked', async () => {
    const { row: ours } = ledger.recordEvent(eventInput('1'));
    const { row: other } = ledger.recordEvent(eventInput('2'));
    ledger.claimRow(ours.id, `${hostname()}:${process.pid}:dead01`); // the process before a SIGKILL
    ledger.claimRow(other.id, `another-host:${process.pid}:abcdef`); // maybe alive: left to the lock timeout
    const w = createDeliveryWorker({ ledger, api, settings, now: clock.now, random: () => 1 });
    w.start();
    try {
      assert.ok(w.workerId.startsWith(`${hostname()}:${process.pid}:`));
      const reset = ledger.get(ours.id);
      assert.notEqual(reset?.lockedBy, `${hostname()}:${process.pid}:dead01`, 'no 300 s wait for the dead lock');
      assert.equal(reset?.lastError?.kind, 'stale-lock'); // (the running worker may have claimed it since)
      assert.equal(ledger.get(other.id)?.state, 'delivering');
      // A second worker of this same process does not take the first one's live rows.
      const { row: live } = ledger.recordEvent(eventInput('3'));
      ledger.claimRow(live.id, w.workerId);
      const second = createDeliveryWorker({ ledger, api, settings, now: clock.now, random: () => 1 });
      second.start();
      await second.stop({ drainMs: 0 });
      assert.equal(ledger.get(live.id)?.lockedBy, w.workerId);
    } finally {
      await w.stop({ drainMs: 0 });
    }
  });

  it('takes back at once the rows a stopped process of this host and pid namespace left locked, no others', async () => {
    // A VM or systemd restart, or a cron `sync` killed mid-pass: same host, a pid that no longer runs.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    const { row: dead } = ledger.recordEvent(eventInput('1'));
    const { row: alive } = ledger.recordEvent(eventInput('2'));
    const { row: elsewhere } = ledger.recordEvent(eventInput('3'));
    ledger.claimRow(dead.id, `${hostname()}:${gone}:ns${ns}-dead02`);
    ledger.claimRow(alive.id, `${hostname()}:${process.ppid}:ns${ns}-live01`); // the test runner: still running
    // The same hostname in another pid namespace (a second container): its pid says nothing here.
    ledger.claimRow(elsewhere.id, `${hostname()}:${gone}:ns1-other1`);
    const w = createDeliveryWorker({ ledger, api, settings, now: clock.now, random: () => 1 });
    assert.match(w.workerId, new RegExp(`^${hostname()}:${process.pid}:ns${ns}-[0-9a-f]{6}$`));
    w.start();
    try {
      assert.equal(ledger.get(dead.id)?.lastError?.kind, 'stale-lock', 'no 300 s wait for a process that is gone');
      assert.notEqual(ledger.get(dead.id)?.lockedBy, `${hostname()}:${gone}:ns${ns}-dead02`);
      assert.equal(
        ledger.get(alive.id)?.lockedBy,
        `${hostname()}:${process.ppid}:ns${ns}-live01`,
        'a live process keeps its rows',
      );
      assert.equal(ledger.get(elsewhere.id)?.lockedBy, `${hostname()}:${gone}:ns1-other1`, 'left to the lock timeout');
    } finally {
      await w.stop({ drainMs: 0 });
    }
  });

  it('drains in-flight rows on stop and takes back what is still unfinished at the deadline, which then sends nothing', async () => {
    ledger.recordEvent(eventInput('1'));
    const { row: slow } = ledger.recordEvent(eventInput('2'));
    let release: (() => void) | undefined;
    const original = api.createEvent.bind(api);
    api.createEvent = async (input) => {
      if (input.transactionId === slow.createTransactionId) await new Promise<void>((r) => (release = r));
      return original(input);
    };
    const w = worker({ concurrency: 2, pollIntervalMs: 10 });
    w.start();
    while (!release) await new Promise((r) => setTimeout(r, 5));
    await w.stop({ drainMs: 50 });
    const takenBack = ledger.get(slow.id);
    assert.equal(takenBack?.state, 'failed');
    assert.equal(takenBack?.attempts, 1, 'the attempt ran: it stays counted');
    assert.equal(takenBack?.lockedBy, null);
    assert.deepEqual(
      ledger.attempts(slow.id).map((a) => [a.step, a.error?.kind]),
      [['create', 'stale-lock']],
    );
    assert.equal(ledger.findByKey('emr', 'birth', 'Patient/1')?.state, 'delivered');
    // The late attempt's look at its lock before the NOTIFY: what it was told decides whether it sends.
    const lockAnswers: boolean[] = [];
    const holdsLock = ledger.holdsLock.bind(ledger);
    ledger.holdsLock = (id, ...rest) => {
      const held = holdsLock(id, ...rest);
      if (id === slow.id) lockAnswers.push(held);
      return held;
    };
    release();
    // The late attempt creates (idempotent), then finds its lock gone: no NOTIFY after the stop.
    const created = () => api.calls.some((c) => c.op === 'create' && c.transactionId === slow.createTransactionId);
    for (let waited = 0; lockAnswers.length === 0 && waited < 10_000; waited += 5)
      await new Promise((r) => setTimeout(r, 5));
    assert.ok(created(), 'the late attempt went on');
    assert.deepEqual(lockAnswers, [false], 'the late attempt looked at its lock before the NOTIFY, and found it gone');
    assert.ok(!api.calls.some((c) => c.op === 'notify' && c.transactionId === slow.notifyTransactionId));
    assert.equal(ledger.get(slow.id)?.state, 'failed', 'the late settle does not overwrite the row');
  });

  it('a row taken back while its NOTIFY may be out goes back to the copy in flight at the drain deadline', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    let release: (() => void) | undefined;
    api.onNotify = () => {
      api.onNotify = undefined;
      ledger.recordEvent(eventInput('1', payload('Newer'), '2'));
    };
    const original = api.notify.bind(api);
    api.notify = async (input) => {
      const answer = original(input); // stored in OpenCRVS; the answer is what hangs
      await new Promise<void>((r) => (release = r));
      return answer;
    };
    const w = worker({ pollIntervalMs: 10 });
    w.start();
    while (!release) await new Promise((r) => setTimeout(r, 5));
    await w.stop({ drainMs: 20 });
    const back = ledger.get(row.id);
    assert.equal(back?.state, 'failed');
    assert.deepEqual(back?.payload?.declaration['child.name'], row.payload?.declaration['child.name']);
    assert.equal(back?.updatesAfterNotification, 1);
    assert.equal(ledger.attempts(row.id).at(-1)?.step, 'interrupted');
    release?.();
  });

  it('an attempt whose row was taken back and claimed again sends nothing: the claim, not the worker id, decides', async () => {
    const { row } = ledger.recordEvent(eventInput('1', payload('Old')));
    let releaseCreate: (() => void) | undefined;
    const create = api.createEvent.bind(api);
    let creates = 0;
    api.createEvent = async (input) => {
      if (++creates === 1) await new Promise<void>((r) => (releaseCreate = r)); // the first attempt hangs in create
      return create(input);
    };
    const sent: unknown[] = [];
    let releaseNotify: (() => void) | undefined;
    const notify = api.notify.bind(api);
    api.notify = async (input) => {
      const name = (input.declaration['child.name'] as { firstname?: string } | undefined)?.firstname;
      sent.push(name);
      if (name === 'New') await new Promise<void>((r) => (releaseNotify = r)); // the new claim is in flight
      return notify(input);
    };
    const first = worker().processNext();
    while (!releaseCreate) await new Promise((r) => setTimeout(r, 5));
    clock.advance(1);
    assert.equal(ledger.resetStaleLocks(0), 1); // renewals failed (a busy database): taken back as stale
    ledger.recordEvent(eventInput('1', payload('New'), '2'));
    // The same worker id claims it again (a second worker object, as after a restart in the same process).
    const second = worker().processNext();
    while (!releaseNotify) await new Promise((r) => setTimeout(r, 5));
    releaseCreate?.(); // the first attempt's create answers while the new claim holds the row
    await first;
    releaseNotify();
    await second;
    assert.deepEqual(sent, ['New'], 'only the attempt holding the claim sends');
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered');
    assert.deepEqual(done?.payload?.declaration['child.name'], payload('New').declaration['child.name']);
  });

  it('does not start a row again while its earlier attempt by this worker still runs', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    let release: (() => void) | undefined;
    let creates = 0;
    const create = api.createEvent.bind(api);
    api.createEvent = async (input) => {
      creates++;
      if (!release) await new Promise<void>((r) => (release = r));
      return create(input);
    };
    const w = worker();
    const first = w.processNext();
    while (!release) await new Promise((r) => setTimeout(r, 5));
    clock.advance(1);
    assert.equal(ledger.resetStaleLocks(0), 1);
    await w.processNext(); // claims it again, and hands it back unstarted
    assert.equal(creates, 1);
    assert.notEqual(ledger.get(row.id)?.state, 'delivering');
    release?.();
    await first;
    assert.equal(api.count('notify'), 0, 'the taken-back attempt sends no NOTIFY');
    await w.processNext();
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('purges delivered payloads after the retention while it runs', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const w = worker();
    await w.processNext();
    assert.ok(ledger.get(row.id)?.payload);
    clock.advance(3_600_000 + 10 * 60_000);
    await w.processNext();
    assert.equal(ledger.get(row.id)?.payload, null);
  });
});
