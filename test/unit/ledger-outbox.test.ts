import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ROW_CONFIRMATION_FAILED_SQL, ROW_NOTIFY_SENT_SQL } from '../../src/ledger/in-doubt.js';
import {
  type Ledger,
  type LedgerError,
  type LedgerPayload,
  type LedgerRow,
  openLedger,
  type SettleInput,
} from '../../src/ledger/index.js';
import { LEDGER_ROW_COLUMNS } from '../../src/ledger/rows.js';
import { eventInput, payload, type TestClock, tempLedger, testClock } from './ledger-helpers.js';

const retryErr = { classification: 'retryable' as const, kind: 'server', status: 503, message: 'Service Unavailable' };

describe('ledger: outbox', () => {
  let clock: TestClock;
  let ledger: Ledger;
  let path: string;
  let cleanup: () => void;
  beforeEach(() => {
    clock = testClock();
    ({ ledger, path, cleanup } = tempLedger(clock, 1));
  });
  afterEach(() => cleanup());

  /** Settles the claimed copy `claimed` (an attempt of worker w1 that started now; `step` notify unless said). */
  const settleClaimed = (claimed: LedgerRow, settlement: SettleInput['settlement'], step = 'notify') =>
    ledger.settle({
      id: claimed.id,
      workerId: 'w1',
      step,
      startedAt: clock.now(),
      claimedAttempts: claimed.attempts,
      claimedPayloadHash: claimed.payloadHash,
      ...(claimed.payload ? { claimedPayload: claimed.payload } : {}),
      settlement,
    });

  /** Patient/1 claimed by w1, then a newer version of it recorded while the attempt runs: the claimed copy. */
  const claimedThenReplaced = (): LedgerRow & { payload: LedgerPayload } => {
    ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    assert.ok(claimed?.payload);
    ledger.recordEvent(eventInput('1', payload('Newer'), '2'));
    return { ...claimed, payload: claimed.payload };
  };

  it('claims due rows in run-time order, counting the attempt at claim and locking them', () => {
    for (const s of ['1', '2', '3']) ledger.recordEvent(eventInput(s));
    const claimed = ledger.claimDue('w1', 2);
    assert.deepEqual(
      claimed.map((r) => r.subjectKey),
      ['Patient/1', 'Patient/2'],
    );
    for (const row of claimed) {
      assert.equal(row.state, 'delivering');
      assert.equal(row.attempts, 1);
      assert.equal(row.lockedBy, 'w1');
      assert.equal(row.lockedAt, clock.now());
    }
    assert.deepEqual(claimed, [ledger.get(claimed[0]?.id ?? 0), ledger.get(claimed[1]?.id ?? 0)], 'as stored');
    assert.deepEqual(
      ledger.claimDue('w1', 5).map((r) => r.subjectKey),
      ['Patient/3'],
    );
    assert.equal(ledger.claimDue('w1', 5).length, 0);
  });

  it('two claimers on separate connections never get the same row', () => {
    const other = openLedger(path, { now: clock.now });
    try {
      for (let i = 0; i < 200; i++) ledger.recordEvent(eventInput(String(i)));
      const seen = new Map<number, string>();
      for (;;) {
        const a = ledger.claimDue('a', 3);
        const b = other.claimDue('b', 4);
        for (const row of a) {
          assert.ok(!seen.has(row.id), `row ${row.id} claimed twice`);
          seen.set(row.id, 'a');
        }
        for (const row of b) {
          assert.ok(!seen.has(row.id), `row ${row.id} claimed twice`);
          seen.set(row.id, 'b');
        }
        if (a.length === 0 && b.length === 0) break;
      }
      assert.equal(seen.size, 200);
      assert.ok([...seen.values()].includes('a') && [...seen.values()].includes('b'));
    } finally {
      other.close();
    }
  });

  it('does not claim a failed row before its next run time', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'create',
      startedAt: clock.now(),
      settlement: { outcome: 'retry', error: retryErr, nextRunAt: clock.now() + 4000 },
    });
    const failed = ledger.get(row.id);
    assert.equal(failed?.state, 'failed');
    assert.deepEqual(failed?.lastError, retryErr);
    assert.equal(ledger.nextDueAt(), clock.now() + 4000);
    clock.advance(3999);
    assert.equal(ledger.claimDue('w1', 1).length, 0);
    clock.advance(1);
    const [again] = ledger.claimDue('w1', 1);
    assert.equal(again?.attempts, 2);
  });

  it('writes an audit row per settled attempt with the classified error', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    let [claimed] = ledger.claimDue('w1', 1);
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'retry', error: retryErr, nextRunAt: clock.now() },
    });
    [claimed] = ledger.claimDue('w1', 1);
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'delivered-pending', eventId: 'e1', trackingId: 'T1' },
    });
    const attempts = ledger.attempts(row.id);
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.outcome, a.step, a.error?.status ?? null]),
      [
        [1, 'retry', 'notify', 503],
        [2, 'delivered-pending', 'notify', null],
      ],
    );
    const delivered = ledger.get(row.id);
    assert.equal(delivered?.state, 'delivered-pending');
    assert.equal(delivered?.lastError, null);
    assert.equal(delivered?.deliveredAt, clock.now());
  });

  it('claims a row by id only while it is due: not in a recheck lease, not claimed, not settled', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    assert.equal(ledger.claimIfDue(row.id, 'w2'), undefined, 'claimed by another worker');
    assert.equal(ledger.deferForRecheck([row.id], 'w1', 5000), 1);
    assert.equal(ledger.claimIfDue(row.id, 'w2'), undefined, 'waiting out the recheck lease');
    assert.equal(ledger.claimIfDue(row.id, 'w2', clock.now() + 4999), undefined, 'at the lease end less 1 ms');
    clock.advance(5000);
    const taken = ledger.claimIfDue(row.id, 'w2');
    assert.deepEqual(
      [taken?.id, taken?.state, taken?.lockedBy, taken?.attempts],
      [row.id, 'delivering', 'w2', claimed?.attempts],
    );
    assert.equal(ledger.claimIfDue(row.id, 'w2'), undefined, 'claimed already');
    ledger.settle({
      id: row.id,
      workerId: 'w2',
      claimedPayloadHash: taken?.payloadHash ?? null,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'delivered', eventId: 'e', trackingId: 'T' },
    });
    assert.equal(ledger.claimIfDue(row.id, 'w2'), undefined, 'delivered');
    assert.equal(ledger.claimIfDue(row.id + 1, 'w2'), undefined, 'no such row');
  });

  it('hands back claimed rows unstarted with their attempt not counted', () => {
    ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    assert.ok(claimed);
    assert.equal(ledger.handBack([claimed.id], 'someone-else'), 0);
    assert.equal(ledger.handBack([claimed.id], 'w1'), 1);
    const row = ledger.get(claimed.id);
    assert.equal(row?.state, 'pending');
    assert.equal(row?.attempts, 0);
    assert.equal(row?.lockedBy, null);
  });

  it('a held attempt goes back to the queue without burning the attempt', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    const operator = { classification: 'operator' as const, kind: 'forbidden', status: 403, message: 'no scope' };
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'create',
      startedAt: clock.now(),
      settlement: { outcome: 'held', error: operator },
    });
    const after = ledger.get(row.id);
    assert.equal(after?.state, 'pending');
    assert.equal(after?.attempts, 0);
    assert.deepEqual(after?.lastError, operator);
    assert.equal(ledger.attempts(row.id)[0]?.outcome, 'held');
  });

  it('resets stale locks so another worker can resend, and ignores the late result of the lost worker', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('dead-worker', 1);
    clock.advance(299_999);
    assert.equal(ledger.resetStaleLocks(300_000), 0);
    clock.advance(1);
    assert.equal(ledger.resetStaleLocks(300_000), 1);
    const reset = ledger.get(row.id);
    assert.equal(reset?.state, 'failed');
    assert.equal(reset?.attempts, 1);
    assert.equal(reset?.lastError?.kind, 'stale-lock');
    const [reclaimed] = ledger.claimDue('w2', 1);
    assert.equal(reclaimed?.attempts, 2);
    const late = ledger.settle({
      id: row.id,
      workerId: 'dead-worker',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'dead', error: { classification: 'permanent', kind: 'x', message: 'late' } },
    });
    assert.equal(late, undefined);
    assert.equal(ledger.get(row.id)?.lockedBy, 'w2');
  });

  it('a version arriving during a failed attempt is what the next attempt sends', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    ledger.recordEvent(eventInput('1', payload('Newer'), '2'));
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'retry', error: retryErr, nextRunAt: clock.now() },
    });
    const [next] = ledger.claimDue('w1', 1);
    assert.deepEqual(next?.payload?.declaration['child.name'], { firstname: 'Newer', surname: 'Child' });
    assert.equal(next?.updatesAfterNotification, 0);
  });

  it('a version arriving while a NOTIFY that may have landed failed (timeout, 502): the claimed copy stays, to resend', () => {
    for (const [key, error] of [
      ['t', { classification: 'retryable' as const, kind: 'timeout', message: 'timed out' }],
      ['g', { classification: 'retryable' as const, kind: 'server', status: 502, message: 'Bad Gateway' }],
    ] as const) {
      const { row } = ledger.recordEvent(eventInput(key));
      const [claimed] = ledger.claimDue('w1', 1);
      assert.ok(claimed);
      ledger.recordEvent(eventInput(key, payload('Newer'), '2'));
      ledger.settle({
        id: row.id,
        workerId: 'w1',
        claimedPayloadHash: claimed.payloadHash,
        ...(claimed.payload ? { claimedPayload: claimed.payload } : {}),
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'retry', error, nextRunAt: clock.now() },
      });
      // OpenCRVS answers the resend under the same transactionId with what it stored: the first copy.
      const [next] = ledger.claimDue('w1', 1);
      assert.deepEqual(next?.payload?.declaration['child.name'], claimed.payload?.declaration['child.name'], key);
      assert.equal(next?.updatesAfterNotification, 1, key);
      ledger.settle({
        id: row.id,
        workerId: 'w1',
        claimedPayloadHash: next?.payloadHash ?? null,
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'delivered', eventId: 'e', trackingId: 'T' },
      });
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1, `${key}: counted once`);
    }
  });

  it('delivered with a version that arrived meanwhile: the row keeps the copy OpenCRVS got', () => {
    const claimed = claimedThenReplaced();
    settleClaimed(claimed, { outcome: 'delivered', eventId: 'e', trackingId: 'T' });
    const done = ledger.get(claimed.id);
    assert.deepEqual(done?.payload?.declaration['child.name'], claimed.payload.declaration['child.name']);
    assert.equal(done?.updatesAfterNotification, 1);
  });

  it('a lock taken back records the cut-short attempt; a later version is then an update after notification', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    ledger.claimDue('dead-worker', 1);
    ledger.recordCreated(row.id, 'event-1', 'TRK001');
    clock.advance(300_000);
    assert.equal(ledger.resetStaleLocks(300_000), 1);
    assert.deepEqual(
      ledger.attempts(row.id).map((a) => [a.step, a.outcome, a.workerId, a.error?.kind]),
      [['interrupted', 'retry', 'dead-worker', 'stale-lock']],
    );
    // The worker died after its NOTIFY perhaps reached OpenCRVS: a correction now cannot go out under it.
    const { change } = ledger.recordEvent(eventInput('1', payload('Newer'), '2'));
    assert.equal(change, 'updated-after-notification');
    assert.deepEqual(ledger.get(row.id)?.payload?.declaration['child.name'], row.payload?.declaration['child.name']);
  });

  it('a worker dying after its NOTIFY, while a newer version arrived in that flight: the row goes back to the copy sent', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    ledger.claimDue('dead-worker', 1);
    ledger.recordCreated(row.id, 'event-1', 'TRK001');
    // The NOTIFY is on its way when the correction comes: replaced, as for any row not yet delivered.
    assert.equal(ledger.recordEvent(eventInput('1', payload('Newer'), '2')).change, 'replaced');
    clock.advance(300_000);
    assert.equal(ledger.resetStaleLocks(300_000), 1);
    const back = ledger.get(row.id);
    // OpenCRVS may hold the first copy under this notify transactionId and answers every resend with it.
    assert.deepEqual(back?.payload?.declaration['child.name'], row.payload?.declaration['child.name']);
    assert.equal(back?.updatesAfterNotification, 1);
    assert.equal(ledger.recordEvent(eventInput('1', payload('Newer'), '2')).change, 'unchanged', 'counted once');
    const db = new Database(path, { readonly: true });
    assert.equal(db.prepare('SELECT in_flight_payload FROM ledger_rows WHERE id = ?').pluck().get(row.id), null);
    db.close();

    // Before any NOTIFY could go out (two-step, no event id yet) the newer version is simply the one to send.
    const { row: early } = ledger.recordEvent(eventInput('2'));
    ledger.claimRow(early.id, 'dead-worker');
    ledger.recordEvent(eventInput('2', payload('Newer'), '2'));
    clock.advance(300_000);
    assert.equal(ledger.resetStaleLocks(300_000), 1);
    assert.deepEqual(
      ledger.get(early.id)?.payload?.declaration['child.name'],
      payload('Newer').declaration['child.name'],
    );
    assert.equal(ledger.get(early.id)?.updatesAfterNotification, 0);
  });

  it('an attempt that ends normally forgets the copy it had in flight', () => {
    const claimed = claimedThenReplaced();
    settleClaimed(claimed, { outcome: 'retry', error: retryErr, nextRunAt: clock.now() }, 'create');
    const db = new Database(path, { readonly: true });
    assert.equal(db.prepare('SELECT in_flight_payload FROM ledger_rows WHERE id = ?').pluck().get(claimed.id), null);
    db.close();
    assert.deepEqual(
      ledger.get(claimed.id)?.payload?.declaration['child.name'],
      payload('Newer').declaration['child.name'],
    );
  });

  it('a version arriving while an earlier in-doubt NOTIFY is resent stays out of it, whatever this attempt gives', () => {
    // startedAt: when the attempt began (its claim), as the worker passes it.
    const settle = (
      claimed: NonNullable<ReturnType<Ledger['get']>>,
      error: SettleInput['settlement'],
      startedAt: number,
    ) =>
      ledger.settle({
        id: claimed.id,
        workerId: 'w1',
        claimedPayloadHash: claimed.payloadHash,
        ...(claimed.payload ? { claimedPayload: claimed.payload } : {}),
        step: 'notify',
        startedAt,
        settlement: error,
      });
    const { row } = ledger.recordEvent(eventInput('1'));
    let startedAt = clock.now();
    const [first] = ledger.claimDue('w1', 1);
    assert.ok(first);
    ledger.recordCreated(row.id, 'e', 'T');
    clock.advance(10);
    const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 't' };
    settle(first, { outcome: 'retry', error: timeout, nextRunAt: clock.now() }, startedAt);
    clock.advance(10);
    startedAt = clock.now();
    const [second] = ledger.claimDue('w1', 1);
    assert.ok(second);
    // The resend of the in-doubt copy is under way when the correction comes.
    assert.equal(ledger.recordEvent(eventInput('1', payload('Newer'), '2')).change, 'updated-after-notification');
    clock.advance(10);
    settle(second, { outcome: 'retry', error: retryErr, nextRunAt: clock.now() }, startedAt); // a 503: stored nothing
    startedAt = clock.now();
    const [third] = ledger.claimDue('w1', 1);
    assert.deepEqual(third?.payload?.declaration['child.name'], first.payload?.declaration['child.name']);
    assert.ok(third);
    clock.advance(10);
    settle(third, { outcome: 'delivered', eventId: 'e', trackingId: 'T' }, startedAt);
    assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1, 'counted once');
  });

  it('after an in-doubt NOTIFY a 400 leaves the doubt (a correction takes the next generation), a rejection ends it', () => {
    const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 't' };
    /** A row whose NOTIFY timed out, then a correction, then the resend of the kept copy ends with `error`. */
    const inDoubtThenRefused = (subject: string, error: LedgerError) => {
      const { row } = ledger.recordEvent(eventInput(subject));
      const first = ledger.claimRow(row.id, 'w1');
      assert.ok(first?.payload);
      ledger.recordCreated(row.id, 'e', 'T');
      const base = { id: row.id, workerId: 'w1', step: 'notify', startedAt: clock.now() };
      ledger.settle({
        ...base,
        claimedPayloadHash: first.payloadHash,
        claimedPayload: first.payload,
        settlement: { outcome: 'retry', error: timeout, nextRunAt: clock.now() },
      });
      assert.equal(
        ledger.recordEvent(eventInput(subject, payload('Second'), '2')).change,
        'updated-after-notification',
      );
      clock.advance(10);
      const resend = ledger.claimRow(row.id, 'w1');
      assert.ok(resend?.payload);
      ledger.settle({
        ...base,
        startedAt: clock.now(),
        claimedPayloadHash: resend.payloadHash,
        claimedPayload: resend.payload,
        settlement: { outcome: 'dead', error },
      });
      return row.id;
    };
    // A 400 may be a location or form changed since: the first copy may be stored all the same. The
    // correction goes out under the next generation, whose first attempt asks OpenCRVS first (send.ts).
    const refused = { classification: 'permanent' as const, kind: 'bad-request', status: 400, message: 'Invalid' };
    inDoubtThenRefused('1', refused);
    const requeued = ledger.recordEvent(eventInput('1', payload('Fixed'), '3'));
    assert.equal(requeued.change, 'replaced');
    assert.match(requeued.row.notifyTransactionId, /:notify:r1$/);
    // Rejected: OpenCRVS holds that copy, refused; a correction goes out under the next generation.
    const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
    const id = inDoubtThenRefused('2', rejected);
    // The version held back while in doubt is no longer "unchanged" when seen again: it goes out.
    assert.equal(ledger.recordEvent(eventInput('2', payload('Second'), '2')).change, 'replaced');
    assert.equal(ledger.get(id)?.state, 'pending');
    ledger.claimRow(id, 'w1');
    ledger.settle({
      id,
      workerId: 'w1',
      step: 'notify',
      startedAt: clock.now(),
      claimedPayloadHash: null,
      settlement: { outcome: 'dead', error: rejected },
    });
    const { change, row: fixed } = ledger.recordEvent(eventInput('2', payload('Fixed'), '3'));
    assert.equal(change, 'replaced');
    assert.equal(fixed.state, 'pending');
    assert.equal(fixed.id, id);
    assert.match(fixed.notifyTransactionId, /:notify:r2$/);
    assert.deepEqual(fixed.payload?.declaration['child.name'], payload('Fixed').declaration['child.name']);
  });

  it('refused for its copy while a newer version came: the row is due again with that version, not dead', () => {
    const claimed = claimedThenReplaced();
    const refused = {
      classification: 'permanent' as const,
      kind: 'bad-request',
      status: 400,
      message: 'Invalid input',
    };
    const settled = settleClaimed(claimed, { outcome: 'dead', error: refused });
    assert.equal(settled?.state, 'failed');
    assert.equal(settled?.nextRunAt, clock.now());
    assert.deepEqual(settled?.payload?.declaration['child.name'], payload('Newer').declaration['child.name']);
    assert.equal(settled?.lastError?.status, 400, 'the refusal of the older copy stays visible');
    assert.deepEqual(
      ledger.attempts(claimed.id).map((a) => a.outcome),
      ['dead'],
    );
    // A proxy's 413 refuses the copy as much (too large): the newer version goes next too.
    const big = ledger.recordEvent(eventInput('3')).row;
    const third = ledger.claimRow(big.id, 'w1');
    assert.ok(third?.payload);
    ledger.recordEvent(eventInput('3', payload('Smaller'), '2'));
    const tooLarge = { classification: 'permanent' as const, kind: 'bad-request', status: 413, message: 'Too Large' };
    const after413 = ledger.settle({
      id: big.id,
      workerId: 'w1',
      step: 'notify',
      startedAt: clock.now(),
      claimedPayloadHash: third.payloadHash,
      claimedPayload: third.payload,
      settlement: { outcome: 'dead', error: tooLarge },
    });
    assert.equal(after413?.state, 'failed');
    assert.deepEqual(after413?.payload?.declaration['child.name'], payload('Smaller').declaration['child.name']);
    // A 405 the classifier files as bad-request is about the endpoint (a proxy's method rule), not the copy:
    // the newer version would meet it alike; dead.
    const routed = ledger.recordEvent(eventInput('4')).row;
    const fourth = ledger.claimRow(routed.id, 'w1');
    assert.ok(fourth?.payload);
    ledger.recordEvent(eventInput('4', payload('Other'), '2'));
    const notAllowed = {
      classification: 'permanent' as const,
      kind: 'bad-request',
      status: 405,
      message: 'Not Allowed',
    };
    const after405 = ledger.settle({
      id: routed.id,
      workerId: 'w1',
      step: 'notify',
      startedAt: clock.now(),
      claimedPayloadHash: fourth.payloadHash,
      claimedPayload: fourth.payload,
      settlement: { outcome: 'dead', error: notAllowed },
    });
    assert.equal(after405?.state, 'dead');
    // Refused for another reason (a 403 for its type): a newer version changes nothing; dead.
    const { row: other } = ledger.recordEvent(eventInput('2'));
    const second = ledger.claimRow(other.id, 'w1');
    assert.ok(second?.payload);
    ledger.recordEvent(eventInput('2', payload('Newer'), '2'));
    const forbidden = { classification: 'permanent' as const, kind: 'forbidden', status: 403, message: 'FORBIDDEN' };
    assert.equal(
      ledger.settle({
        id: other.id,
        workerId: 'w1',
        step: 'notify',
        startedAt: clock.now(),
        claimedPayloadHash: second.payloadHash,
        claimedPayload: second.payload,
        settlement: { outcome: 'dead', error: forbidden },
      })?.state,
      'dead',
    );
  });

  it('rejected for its copy while a newer version came: that version goes next, under the next generation', () => {
    const claimed = claimedThenReplaced();
    const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
    const settled = settleClaimed(claimed, { outcome: 'dead', error: rejected });
    assert.equal(settled?.state, 'pending');
    assert.equal(settled?.nextRunAt, clock.now());
    assert.equal(settled?.attempts, 0, 'a fresh budget, as for a correction after the rejection');
    assert.match(settled?.notifyTransactionId ?? '', /:notify:r1$/, 'the rejected NOTIFY keeps its transactionId');
    assert.deepEqual(settled?.payload?.declaration['child.name'], payload('Newer').declaration['child.name']);
    assert.deepEqual(
      ledger.attempts(claimed.id).map((a) => [a.outcome, a.error?.kind]),
      [['dead', 'rejected']],
      'the rejection of the older copy stays in its attempt',
    );
    // The rejected NOTIFY is the earlier generation's: the newer version's first attempt looks it up (send.ts).
    assert.equal(ledger.notifySentSince(claimed.id, 'queued'), false);
    assert.equal(ledger.notifySentSince(claimed.id, 'ever'), true);
  });

  it('rejected, but no correction replaced the copy in flight: dead, and nothing resent (reviews)', () => {
    const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
    const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 'timed out' };
    // In doubt (a NOTIFY timed out), then a version recorded between the claim of the resend and the
    // attempt's start: counted in doubt (its hash kept, its payload not), not a replacement.
    const { row } = ledger.recordEvent(eventInput('1'));
    ledger.recordCreated(row.id, 'ev-1', 'TRK1');
    let [claimed] = ledger.claimDue('w1', 1);
    assert.ok(claimed?.payload);
    settleClaimed(claimed, { outcome: 'retry', error: timeout, nextRunAt: clock.now() });
    clock.advance(1000);
    [claimed] = ledger.claimDue('w1', 1);
    assert.ok(claimed?.payload);
    assert.equal(ledger.recordEvent(eventInput('1', payload('Newer'), '2')).change, 'updated-after-notification');
    clock.advance(1);
    const inDoubt = settleClaimed(claimed, { outcome: 'dead', error: rejected });
    assert.equal(inDoubt?.state, 'dead', 'the rejected copy is not sent again');
    // A correction that did replace the copy in flight, then withdrawn by the source: not sent either.
    const { row: other } = ledger.recordEvent(eventInput('2'));
    const second = ledger.claimRow(other.id, 'w1');
    assert.ok(second?.payload);
    assert.equal(ledger.recordEvent(eventInput('2', payload('Newer'), '2')).change, 'replaced');
    ledger.recordSkipped({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: other.subjectKey,
      sourceRef: other.sourceRef,
      reason: 'deleted in the source',
    });
    const withdrawn = settleClaimed(second, { outcome: 'dead', error: rejected });
    assert.equal(withdrawn?.state, 'dead');
  });

  it('a lock taken back before any NOTIFY could go out (two-step, no event yet) leaves a correction free to replace', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    ledger.claimDue('dead-worker', 1);
    clock.advance(300_000);
    assert.equal(ledger.resetStaleLocks(300_000), 1);
    assert.equal(ledger.attempts(row.id)[0]?.step, 'create');
    assert.equal(ledger.recordEvent(eventInput('1', payload('Corrected'), '2')).change, 'replaced');
    // In single-call mode the one call may have run without an event id: in doubt.
    const { row: single } = ledger.recordEvent(eventInput('s'));
    ledger.claimRow(single.id, 'dead-worker');
    clock.advance(300_000);
    assert.equal(ledger.resetStaleLocks(300_000, undefined, { singleCall: true }), 1);
    assert.equal(ledger.attempts(single.id)[0]?.step, 'interrupted');
    assert.equal(ledger.recordEvent(eventInput('s', payload('Corrected'), '2')).change, 'updated-after-notification');
  });

  it('a single call begun after the clock stepped back is still the one whose lock, taken back, may have sent it', () => {
    const { row } = ledger.recordEvent(eventInput('s'));
    const first = ledger.claimRow(row.id, 'w1');
    assert.ok(first);
    clock.advance(60_000);
    settleClaimed(first, { outcome: 'retry', error: retryErr, nextRunAt: clock.now() }, 'create');
    // The clock steps back (an NTP correction) before the next attempt begins its single call, which the
    // process making it never settles: restarted in two-step mode, the lock is taken back.
    clock.advance(-30_000);
    assert.ok(ledger.claimRow(row.id, 'gone-process:1'));
    ledger.recordSingleCall(row.id);
    assert.equal(
      ledger.resetLocksOf('gone-process', () => true, { singleCall: false }),
      1,
    );
    assert.equal(ledger.attempts(row.id).at(-1)?.step, 'interrupted', 'the single call may be in OpenCRVS');
    assert.equal(ledger.notifyMayStand(row.id), true);
    // The next attempt, two-step, taken back before its create answered: that single call was an earlier one's.
    assert.ok(ledger.claimRow(row.id, 'gone-process:2'));
    assert.equal(
      ledger.resetLocksOf('gone-process', () => true, { singleCall: false }),
      1,
    );
    assert.equal(ledger.attempts(row.id).at(-1)?.step, 'create');

    // A mark a bridge before migration 024 made (its time alone) is still read, by the clock.
    const { row: older } = ledger.recordEvent(eventInput('o'));
    assert.ok(ledger.claimRow(older.id, 'gone-process:3'));
    const db = new Database(path);
    db.prepare('UPDATE ledger_rows SET single_call_at = ? WHERE id = ?').run(clock.now(), older.id);
    db.close();
    assert.equal(
      ledger.resetLocksOf('gone-process', () => true, { singleCall: false }),
      1,
    );
    assert.equal(ledger.attempts(older.id).at(-1)?.step, 'interrupted');
  });

  it('tells whether an attempt since the row was last queued sent its NOTIFY, and reads the attempts index for it', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const sentSince = (since: 'queued' | 'ever') => ledger.notifySentSince(row.id, since);
    assert.equal(sentSince('ever'), false, 'never attempted');
    /** One attempt of the row that stopped at `step`, due again at once. */
    const attempt = (step: string) => {
      const claimed = ledger.claimRow(row.id, 'w1');
      assert.ok(claimed);
      settleClaimed(claimed, { outcome: 'retry', error: retryErr, nextRunAt: clock.now() }, step);
    };
    attempt('create');
    attempt('lookup');
    assert.equal(sentSince('queued'), false, 'a create or a lookup sends no declaration');
    clock.advance(1000);
    attempt('notify');
    assert.equal(sentSince('queued'), true, 'a failed NOTIFY was sent all the same');
    const dead = ledger.claimRow(row.id, 'w1');
    assert.ok(dead);
    settleClaimed(dead, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'forbidden', status: 403, message: 'FORBIDDEN' },
    });
    assert.deepEqual(ledger.replay([row.id]).requeued, [row.id]);
    assert.deepEqual([sentSince('queued'), sentSince('ever')], [false, true], 'a replay starts over');
    attempt('interrupted');
    assert.equal(sentSince('queued'), true, 'an attempt cut short after its NOTIFY may have sent it');
    const { row: single } = ledger.recordEvent(eventInput('s'));
    const claimed = ledger.claimRow(single.id, 'w1');
    assert.ok(claimed);
    settleClaimed(claimed, { outcome: 'retry', error: retryErr, nextRunAt: clock.now() }, 'createAndNotify');
    assert.equal(ledger.notifySentSince(single.id, 'queued'), true, 'the single call sends it too');
    assert.equal(ledger.notifySentSince(row.id + 100, 'ever'), false, 'another row knows nothing of these');
    const db = new Database(path, { readonly: true });
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN ${ROW_NOTIFY_SENT_SQL}`)
      .all({ id: row.id, ever: 0 })
      .map((r) => JSON.stringify(r));
    db.close();
    assert.ok(
      plan.some((line) => line.includes('USING INDEX ledger_attempts_row')) &&
        !plan.some((line) => line.includes('SCAN')),
      plan.join('\n'),
    );
  });

  it('tells whether an attempt since the row was last queued met a failed confirmation of its NOTIFY, and reads the attempts index for it', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const failedSince = (since: 'queued' | 'ever') => ledger.confirmationFailedSince(row.id, since);
    assert.equal(failedSince('ever'), false, 'never attempted');
    /** One attempt of the row that ended with `error`, due again at once. */
    const attempt = (error: LedgerError) => {
      const claimed = ledger.claimRow(row.id, 'w1');
      assert.ok(claimed);
      settleClaimed(claimed, { outcome: 'retry', error, nextRunAt: clock.now() });
    };
    attempt(retryErr);
    assert.equal(failedSince('ever'), false, 'another failure of the NOTIFY');
    clock.advance(1000);
    attempt({ classification: 'retryable', kind: 'confirmation-failed', status: 500, message: 'confirmation failed' });
    clock.advance(1000);
    attempt(retryErr);
    assert.equal(failedSince('queued'), true, 'found behind a later attempt');
    const dead = ledger.claimRow(row.id, 'w1');
    assert.ok(dead);
    settleClaimed(dead, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'forbidden', status: 403, message: 'FORBIDDEN' },
    });
    assert.deepEqual(ledger.replay([row.id]).requeued, [row.id]);
    assert.deepEqual([failedSince('queued'), failedSince('ever')], [false, true], 'not since a later queueing');
    assert.equal(ledger.confirmationFailedSince(row.id + 100, 'ever'), false, 'another row knows nothing of it');
    const db = new Database(path, { readonly: true });
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN ${ROW_CONFIRMATION_FAILED_SQL}`)
      .all({ id: row.id, ever: 0 })
      .map((r) => JSON.stringify(r));
    db.close();
    assert.ok(
      plan.some((line) => line.includes('USING INDEX ledger_attempts_row')) &&
        !plan.some((line) => line.includes('SCAN')),
      plan.join('\n'),
    );
  });

  it("a requeue's generation is told by attempt ids: a clock stepped back past it hides none of its attempts", () => {
    const forbidden = { classification: 'permanent' as const, kind: 'forbidden', status: 403, message: 'FORBIDDEN' };
    const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 'timed out' };
    const failedConfirmation = {
      classification: 'retryable' as const,
      kind: 'confirmation-failed',
      status: 500,
      message: 'confirmation failed',
    };
    /** Row `subject`, dead, then requeued by `requeue`, and the clock stepped back a minute (an NTP correction). */
    const requeuedThenStepBack = (subject: string, requeue: (id: number) => void) => {
      const { row } = ledger.recordEvent(eventInput(subject));
      const claimed = ledger.claimRow(row.id, 'w1');
      assert.ok(claimed);
      settleClaimed(claimed, { outcome: 'dead', error: forbidden }, 'create');
      clock.advance(1000);
      requeue(row.id);
      assert.equal(ledger.get(row.id)?.state, 'pending');
      clock.advance(-60_000);
      return row.id;
    };
    /** One attempt of the row that ended with `error` at `step`, due again at once. */
    const attempt = (id: number, error: LedgerError, step = 'notify') => {
      const claimed = ledger.claimRow(id, 'w1');
      assert.ok(claimed);
      settleClaimed(claimed, { outcome: 'retry', error, nextRunAt: clock.now() }, step);
    };

    // Requeued by a corrected version (record.ts): this generation's NOTIFY timed out, and may be stored.
    const corrected = requeuedThenStepBack('c', () =>
      assert.equal(ledger.recordEvent(eventInput('c', payload('Corrected'), '2')).change, 'replaced'),
    );
    attempt(corrected, timeout);
    assert.equal(ledger.notifyInDoubt(corrected), true);
    assert.equal(ledger.notifySentSince(corrected, 'queued'), true);
    // Its retry must resend that copy: the next version is an update after notification, not a replacement.
    assert.equal(ledger.recordEvent(eventInput('c', payload('Later'), '3')).change, 'updated-after-notification');
    assert.deepEqual(ledger.get(corrected)?.payload?.declaration, payload('Corrected').declaration);

    // Replayed (queries.ts): the same, and a failed confirmation of this generation's NOTIFY is found.
    const replayed = requeuedThenStepBack('r', (id) => assert.deepEqual(ledger.replay([id]).requeued, [id]));
    attempt(replayed, failedConfirmation);
    assert.equal(ledger.confirmationFailedSince(replayed, 'queued'), true);
    assert.equal(ledger.notifyInDoubt(replayed), true);

    // A row last queued before migration 025 is judged by the clock, as it was.
    const { row: older } = ledger.recordEvent(eventInput('o'));
    attempt(older.id, timeout);
    const db = new Database(path);
    db.prepare('UPDATE ledger_rows SET queued_after_attempt = NULL, queued_at = ? WHERE id = ?').run(
      clock.now() + 1,
      older.id,
    );
    db.close();
    assert.deepEqual(
      [ledger.notifyInDoubt(older.id), ledger.notifySentSince(older.id, 'queued')],
      [false, false],
      'queued after that attempt, by the clock',
    );
  });

  it('a correction counted in doubt after the clock stepped back past the queueing is still forgotten when the copy is rejected', () => {
    const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 'timed out' };
    const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
    /** Row `subject`'s NOTIFY timed out (in doubt), the clock stepped back a minute past its queueing (an NTP
     * correction), a correction counted, then the resend of the kept copy rejected. */
    const countedThenRejected = (subject: string, beforeMigration = false) => {
      const { row } = ledger.recordEvent(eventInput(subject));
      const first = ledger.claimRow(row.id, 'w1');
      assert.ok(first);
      ledger.recordCreated(row.id, 'e', 'T');
      settleClaimed(first, { outcome: 'retry', error: timeout, nextRunAt: clock.now() });
      if (!beforeMigration) clock.advance(-60_000);
      const second = ledger.recordEvent(eventInput(subject, payload('Second'), '2'));
      assert.equal(second.change, 'updated-after-notification');
      assert.ok((second.row.updatedAfterNotificationAt ?? 0) < row.queuedAt || beforeMigration);
      if (beforeMigration) {
        // Counted by a bridge before migration 026: its time alone.
        const db = new Database(path);
        db.prepare('UPDATE ledger_rows SET updated_after_attempt = NULL WHERE id = ?').run(row.id);
        db.close();
      }
      clock.advance(10);
      const resend = ledger.claimRow(row.id, 'w1');
      assert.ok(resend);
      settleClaimed(resend, { outcome: 'dead', error: rejected });
      return row.id;
    };
    const id = countedThenRejected('1');
    assert.equal(ledger.get(id)?.payloadHash, null, 'the correction held back is forgotten');
    // Seen again, the correction goes out under the next generation, not kept "unchanged" behind the rejection.
    const back = ledger.recordEvent(eventInput('1', payload('Second'), '2'));
    assert.deepEqual([back.change, back.row.state], ['replaced', 'pending']);
    assert.match(back.row.notifyTransactionId, /:notify:r1$/);

    // A version counted before migration 026 is judged by the clock, as it was: counted since the queueing.
    const older = countedThenRejected('o', true);
    assert.equal(ledger.get(older)?.payloadHash, null);
  });

  it('a version counted while an in-doubt NOTIFY is resent is counted once, though the clock steps back during the attempt', () => {
    const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 't' };
    /** Row `subject`: its NOTIFY timed out; the resend under way when a correction comes, the clock stepped back. */
    const resentWhileCorrected = (subject: string, stepBack: number) => {
      const { row } = ledger.recordEvent(eventInput(subject));
      const first = ledger.claimRow(row.id, 'w1');
      assert.ok(first);
      ledger.recordCreated(row.id, 'e', 'T');
      settleClaimed(first, { outcome: 'retry', error: timeout, nextRunAt: clock.now() });
      clock.advance(10);
      const resend = ledger.claimRow(row.id, 'w1');
      assert.ok(resend);
      const startedAt = clock.now();
      clock.advance(-stepBack);
      const correction = eventInput(subject, payload('Newer'), '2');
      assert.equal(ledger.recordEvent(correction).change, 'updated-after-notification');
      clock.advance(10);
      return { id: row.id, resend, startedAt };
    };
    const settleAt = (claimed: LedgerRow, startedAt: number, settlement: SettleInput['settlement']) =>
      ledger.settle({
        id: claimed.id,
        workerId: 'w1',
        step: 'notify',
        startedAt,
        claimedAttempts: claimed.attempts,
        claimedPayloadHash: claimed.payloadHash,
        ...(claimed.payload ? { claimedPayload: claimed.payload } : {}),
        settlement,
      });
    const delivered = resentWhileCorrected('d', 60_000);
    settleAt(delivered.resend, delivered.startedAt, { outcome: 'delivered', eventId: 'e', trackingId: 'T' });
    assert.equal(ledger.get(delivered.id)?.updatesAfterNotification, 1, 'counted once');
    // Left in doubt again (another timeout), the copy resent is kept and the correction not counted again.
    const again = resentWhileCorrected('a', 60_000);
    settleAt(again.resend, again.startedAt, { outcome: 'retry', error: timeout, nextRunAt: clock.now() });
    assert.deepEqual(
      [ledger.get(again.id)?.updatesAfterNotification, ledger.get(again.id)?.payload],
      [1, payload()],
      'counted once, the copy in doubt kept',
    );

    // A version counted before migration 026 is judged by the clock, as it was: during this attempt.
    const older = resentWhileCorrected('o', 0);
    const db = new Database(path);
    db.prepare('UPDATE ledger_rows SET updated_after_attempt = NULL WHERE id = ?').run(older.id);
    db.close();
    settleAt(older.resend, older.startedAt, { outcome: 'delivered', eventId: 'e', trackingId: 'T' });
    assert.equal(ledger.get(older.id)?.updatesAfterNotification, 1);
  });

  it('a version replacing the copy of a row requeued after a withdrawal is counted, whatever an earlier generation counted', () => {
    const timeout = { classification: 'retryable' as const, kind: 'timeout', message: 't' };
    const { row } = ledger.recordEvent(eventInput('w'));
    const first = ledger.claimRow(row.id, 'w1');
    assert.ok(first);
    settleClaimed(first, { outcome: 'retry', error: timeout, nextRunAt: clock.now() });
    assert.equal(ledger.recordEvent(eventInput('w', payload('Second'), '2')).change, 'updated-after-notification');
    // The source withdraws the record while the resend is claimed; the worker finds nothing in OpenCRVS.
    const claimed = ledger.claimRow(row.id, 'w1');
    assert.ok(claimed);
    ledger.recordSkipped({ ...eventInput('w'), reason: 'withdrawn' });
    assert.equal(ledger.withdrawClaimed(row.id, 'w1', 'not in OpenCRVS')?.state, 'skipped');
    // Back in the source: a new generation, with no attempt recorded since the correction was counted.
    assert.equal(ledger.recordEvent(eventInput('w', payload('Third'), '3')).change, 'replaced');
    clock.advance(10);
    const third = ledger.claimRow(row.id, 'w1');
    assert.ok(third);
    // Nothing of this generation is in doubt: the newer version replaces the copy in flight, uncounted.
    assert.equal(ledger.recordEvent(eventInput('w', payload('Fourth'), '4')).change, 'replaced');
    settleClaimed(third, { outcome: 'delivered', eventId: 'e', trackingId: 'T' });
    const settled = ledger.get(row.id);
    assert.deepEqual(
      [settled?.updatesAfterNotification, settled?.payload],
      [2, payload('Third')],
      'the fourth version, never sent, is counted as it is delivered',
    );
  });

  it('a lock its worker renews is not stale, however long the attempt takes', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    ledger.claimDue('w1', 1);
    clock.advance(200_000);
    assert.equal(ledger.renewLocks([row.id], 'w1'), 1);
    assert.equal(ledger.renewLocks([row.id], 'another-worker'), 0, 'only its holder renews a lock');
    clock.advance(200_000);
    assert.equal(ledger.resetStaleLocks(300_000), 0);
    assert.equal(ledger.get(row.id)?.state, 'delivering');
  });

  it('stores the event id after create in its own write, keeping the first one', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    ledger.recordCreated(row.id, 'event-1', 'TRK001');
    ledger.recordCreated(row.id, 'event-2', 'TRK002');
    assert.equal(ledger.get(row.id)?.eventId, 'event-1');
    assert.equal(ledger.get(row.id)?.trackingId, 'TRK001');
  });

  it('purges payloads of rows delivered longer ago than the retention, and only those', () => {
    const delivered = ledger.recordEvent(eventInput('1')).row;
    ledger.recordEvent(eventInput('2'));
    const [claimed] = ledger.claimDue('w1', 1);
    ledger.settle({
      id: delivered.id,
      workerId: 'w1',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'delivered', eventId: 'e1', trackingId: 'T1' },
    });
    clock.advance(3_599_999);
    assert.equal(ledger.purgePayloads(), 0);
    clock.advance(1);
    assert.equal(ledger.purgePayloads(), 1);
    const purged = ledger.get(delivered.id);
    assert.equal(purged?.payload, null);
    assert.equal(purged?.trackingId, 'T1');
    assert.equal(purged?.office !== null, true);
    assert.ok(ledger.findByKey('emr', 'birth', 'Patient/2')?.payload);
  });

  it('settle returns the row as stored after the attempt, for either ending', () => {
    const a = ledger.recordEvent(eventInput('1')).row;
    const b = ledger.recordEvent(eventInput('2')).row;
    const claimed = ledger.claimDue('w1', 2);
    const settle = (id: number, settlement: SettleInput['settlement']) =>
      ledger.settle({
        id,
        workerId: 'w1',
        claimedPayloadHash: a.payloadHash,
        step: 'notify',
        startedAt: 0,
        settlement,
      });
    const delivered = settle(a.id, { outcome: 'delivered', eventId: 'e1', trackingId: 'T1' });
    assert.equal(delivered?.state, 'delivered');
    assert.equal(delivered?.lockedBy, null);
    assert.deepEqual(delivered, ledger.get(a.id));
    const failed = settle(b.id, { outcome: 'retry', error: retryErr, nextRunAt: clock.now() + 10 });
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.nextRunAt, clock.now() + 10);
    assert.deepEqual(failed, ledger.get(b.id));
    assert.equal(claimed.length, 2);
  });

  it('a claim inside a caller transaction commits or rolls back with it', () => {
    ledger.recordEvent(eventInput('1'));
    assert.throws(() =>
      ledger.transaction(() => {
        assert.equal(ledger.claimDue('w1', 1).length, 1);
        throw new Error('undo');
      }),
    );
    assert.equal(ledger.claimDue('w1', 1).length, 1, 'the rolled back claim left the row due');
  });

  it('reads every column of a row the worker claims or settles', () => {
    const db = new Database(path, { readonly: true });
    const table = db
      .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('ledger_rows') ORDER BY name")
      .all()
      .map((c) => c.name);
    db.close();
    // mapping_warnings is read on its own (Ledger.mappingWarnings), the pending-check schedule by the
    // pending checks alone (pending-checks.ts): the worker's claims and settles never need them.
    // in_flight_payload is read only when a lock is taken back (SQL alone), read_by_source on its own
    // (Ledger.readBy) for a row's detail, source_fingerprint only by recording (record.ts), single_call_at
    // and single_call_after only when a lock is taken back, queued_after_attempt only in SQL (in-doubt.ts),
    // updated_after_attempt by settle's own read and in SQL.
    const apart = [
      'mapping_warnings',
      'pending_check_at',
      'pending_checks',
      'in_flight_payload',
      'read_by_source',
      'source_fingerprint',
      'single_call_at',
      'single_call_after',
      'queued_after_attempt',
      'updated_after_attempt',
    ];
    assert.deepEqual(
      LEDGER_ROW_COLUMNS.split(',')
        .map((c) => c.trim())
        .sort(),
      table.filter((c) => !apart.includes(c)),
    );
  });

  it('finds stale locks through an index, not a scan of the table', () => {
    const db = new Database(path, { readonly: true });
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN SELECT id FROM ledger_rows WHERE state = 'delivering' AND locked_at <= 0`)
      .all()
      .map((r) => JSON.stringify(r));
    db.close();
    assert.ok(
      plan.some((line) => line.includes('USING INDEX')) && !plan.some((line) => line.includes('SCAN')),
      plan.join('\n'),
    );
  });

  it('claims through the partial due index rather than a scan of the table', () => {
    const db = new Database(path, { readonly: true });
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT id FROM ledger_rows INDEXED BY ledger_rows_due
         WHERE state IN ('pending', 'failed') AND next_run_at <= 0 ORDER BY next_run_at, id LIMIT 4`,
      )
      .all()
      .map((r) => JSON.stringify(r));
    db.close();
    assert.ok(plan.some((line) => line.includes('ledger_rows_due')));
    assert.ok(!plan.some((line) => line.includes('TEMP B-TREE')), 'no sort step');
  });
});
