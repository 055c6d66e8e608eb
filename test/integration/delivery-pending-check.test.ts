// A NOTIFY answered "Requested" is decided by the country configuration later; the worker asks again
// (the same call, same transactionId) until it learns the decision. Real client, real simulator.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { DeliverySettings } from '../../src/config/types.js';
import { createDeliveryWorker, type DeliveryOutcome } from '../../src/delivery/index.js';
import { MIN_CHECKS_TO_EXPIRE, PENDING_CHECK_DELAYS_MS } from '../../src/delivery/pending-check.js';
import { createOpenCrvsClient } from '../../src/opencrvs/client.js';
import { birthEvent, clientSettings, fastDelivery, type TestBed, testBed, until } from './delivery-helpers.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

describe('delivery: asking again about a NOTIFY left pending', () => {
  let bed: TestBed;
  /** How far the worker's clock runs ahead of the ledger's (real) one. */
  let ahead: number;
  let outcomes: DeliveryOutcome[];
  beforeEach(async () => {
    bed = await testBed();
    ahead = 0;
    outcomes = [];
    await bed.sim.control.configure({ actionConfirmation: 'pending' });
  });
  afterEach(async () => {
    await bed.close();
  });

  /** Runs `w` until idle; asserts the next check is `delay` after a moment of that run. */
  const runExpectingNextCheck = async (w: ReturnType<typeof worker>, delay: number | undefined) => {
    const from = Date.now() + ahead;
    await w.runUntilIdle({ timeoutMs: 30_000 });
    const to = Date.now() + ahead;
    const next = bed.ledger.nextPendingCheckAt();
    assert.ok(delay !== undefined && next !== undefined, 'a next check is scheduled');
    assert.ok(next >= from + delay && next <= to + delay, `next check ${next - from} ms on, expected ${delay}`);
  };

  /**
   * Puts the worker's clock on each next check in turn until the row is decided (at most `max` checks);
   * how many checks that took.
   */
  const checkUntilDecided = async (rowId: number, max = 300) => {
    const w = worker();
    let checks = 0;
    while (bed.ledger.get(rowId)?.state === 'delivered-pending' && checks < max) {
      const next = bed.ledger.nextPendingCheckAt();
      assert.ok(next !== undefined, 'a next check is scheduled');
      ahead = Math.max(ahead, next - Date.now());
      await w.runUntilIdle({ timeoutMs: 30_000 });
      checks++;
    }
    return checks;
  };

  const worker = (settings: DeliverySettings = fastDelivery) =>
    createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings,
      now: () => Date.now() + ahead,
      onOutcome: (outcome) => outcomes.push(outcome),
    });

  /** The NOTIFY actions the simulator holds for the row's event. */
  const notifies = async (eventId: string | null) => {
    const events = await bed.sim.control.events();
    const event = events.find((e) => e.id === eventId);
    assert.ok(event, 'the event is in the simulator');
    return event.actions.filter((a) => a.type === 'NOTIFY').map((a) => a.status);
  };

  it('records an acceptance decided later as delivered, with no second notification', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const w = worker();
    await runExpectingNextCheck(w, PENDING_CHECK_DELAYS_MS[0]);
    const pending = bed.ledger.get(row.id);
    assert.equal(pending?.state, 'delivered-pending');

    // Not due yet: nothing is asked, the row stays as it is.
    await w.runUntilIdle({ timeoutMs: 30_000 });
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered-pending');

    await bed.sim.control.confirm(pending?.eventId ?? '', 'accept');
    ahead += 6 * MINUTE;
    await w.runUntilIdle({ timeoutMs: 30_000 });
    const delivered = bed.ledger.get(row.id);
    assert.equal(delivered?.state, 'delivered');
    assert.equal(delivered?.trackingId, pending?.trackingId);
    assert.deepEqual(await notifies(delivered?.eventId ?? null), ['Requested', 'Accepted']);
    const last = bed.ledger.attempts(row.id).at(-1);
    assert.equal(last?.step, 'pending-check');
    assert.equal(last?.outcome, 'delivered');
    assert.equal(bed.ledger.nextPendingCheckAt(), undefined);
    assert.deepEqual(
      outcomes.map((o) => [o.type, o.decidedLater ?? false]),
      [
        ['pending', false],
        ['delivered', true],
      ],
    );
  });

  it('asks again on a growing delay while the country configuration has not decided', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 2));
    const w = worker();
    await runExpectingNextCheck(w, PENDING_CHECK_DELAYS_MS[0]);
    ahead += 6 * MINUTE;
    await runExpectingNextCheck(w, PENDING_CHECK_DELAYS_MS[1]);
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered-pending');
    // Still one Requested NOTIFY: the question was a replay, answered with the event as it is.
    assert.deepEqual(await notifies(bed.ledger.get(row.id)?.eventId ?? null), ['Requested']);
    // No attempt row for a question without an answer.
    assert.equal(bed.ledger.attempts(row.id).length, 1);
  });

  it('records a rejection decided later as dead with the reason; the EMR correction then goes out', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 3));
    const w = worker();
    await w.runUntilIdle({ timeoutMs: 30_000 });
    await bed.sim.control.confirm(bed.ledger.get(row.id)?.eventId ?? '', 'reject');
    ahead += 6 * MINUTE;
    await w.runUntilIdle({ timeoutMs: 30_000 });
    const dead = bed.ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.lastError?.kind, 'rejected');
    assert.match(dead?.lastError?.message ?? '', /rejected the NOTIFY action \(after answering it pending\)/);
    assert.deepEqual(
      outcomes.map((o) => o.type),
      ['pending', 'dead'],
    );
    // The EMR's correction now goes out, under the next transactionId generation: OpenCRVS holds the
    // first copy as rejected, so it is no longer in doubt.
    const corrected = bed.ledger.recordEvent(birthEvent(bed.office, 3, { 'child.gender': 'male' }));
    assert.equal(corrected.change, 'replaced');
    assert.equal(corrected.row.state, 'pending');
    assert.match(corrected.row.notifyTransactionId, /:notify:r1$/);
  });

  it('asks a single-call delivery again with the same create-and-notify, under the base transactionId', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 4));
    const w = worker({ ...fastDelivery, mode: 'single-call' });
    await w.runUntilIdle({ timeoutMs: 30_000 });
    const pending = bed.ledger.get(row.id);
    assert.equal(pending?.state, 'delivered-pending');
    // Asked while undecided: a NOTIFY under the notify transactionId would be a second notification.
    ahead += 6 * MINUTE;
    await w.runUntilIdle({ timeoutMs: 30_000 });
    assert.deepEqual(await notifies(pending?.eventId ?? null), ['Requested']);
    await bed.sim.control.confirm(pending?.eventId ?? '', 'accept');
    ahead += 16 * MINUTE;
    await w.runUntilIdle({ timeoutMs: 30_000 });
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered');
    assert.deepEqual(await notifies(pending?.eventId ?? null), ['Requested', 'Accepted']);
    assert.equal((await bed.sim.control.events()).length, 1);
  });

  it('keeps asking later when OpenCRVS cannot be reached; undecided after 30 days, the row is dead with what to do', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 5));
    await worker().runUntilIdle({ timeoutMs: 30_000 });
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503 } });
    ahead += 6 * MINUTE;
    await runExpectingNextCheck(worker(), PENDING_CHECK_DELAYS_MS[1]);
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered-pending');
    await bed.sim.control.configure({ faults: {} });
    // Asked on schedule (every 6 hours by then), it is dead at the first check after 30 days, not before.
    await checkUntilDecided(row.id);
    assert.ok(ahead > 30 * DAY && ahead <= 30 * DAY + 6 * 60 * MINUTE + MINUTE, `dead at ${ahead / DAY} days`);
    const dead = bed.ledger.get(row.id);
    assert.deepEqual([dead?.state, dead?.lastError?.kind], ['dead', 'undecided'], 'OpenCRVS never decided');
    assert.match(dead?.lastError?.message ?? '', /not decided this NOTIFY in 30 days.*then replay/);
    assert.equal(bed.ledger.nextPendingCheckAt(), undefined, 'not asked about again');
  });

  it('a NOTIFY pending for minutes is not declared undecided for 30 days after a clock step', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 9));
    const w = worker();
    await until(w, () => bed.ledger.get(row.id)?.state === 'delivered-pending');
    ahead += 31 * DAY; // the clock put forward a month, minutes after the pending answer
    await w.runUntilIdle({ timeoutMs: 10_000 }).catch(() => undefined);
    await w.stop({ drainMs: 2000 });
    const after = bed.ledger.get(row.id);
    assert.notEqual(after?.lastError?.kind, 'undecided');
    assert.equal(after?.state, 'delivered-pending', 'asked again later');
  });

  it('after a clock step, a NOTIFY is undecided only once it has been asked about as often as in 15 days', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 10));
    await worker().runUntilIdle({ timeoutMs: 30_000 });
    ahead += 31 * DAY;
    // Every check is past 30 days on this clock: the one that finds it undecided has MIN_CHECKS_TO_EXPIRE before it.
    assert.equal(await checkUntilDecided(row.id), MIN_CHECKS_TO_EXPIRE + 1);
    const dead = bed.ledger.get(row.id);
    assert.deepEqual([dead?.state, dead?.lastError?.kind], ['dead', 'undecided']);
  });

  it('a NOTIFY OpenCRVS no longer holds (restored from a backup) is a dead row to replay, not pending for ever', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 6));
    await worker().runUntilIdle({ timeoutMs: 30_000 });
    await bed.sim.control.reset(); // every event gone, as after a restore from an older backup
    await bed.sim.control.configure({ actionConfirmation: 'pending' });
    ahead += 6 * MINUTE;
    await worker().runUntilIdle({ timeoutMs: 30_000 });
    const dead = bed.ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.lastError?.kind, 'not-found');
    assert.match(dead?.lastError?.message ?? '', /no longer holds our NOTIFY .*replay/);
    // Replayed, it is notified again (the lookup's create made the event again; create is idempotent).
    assert.deepEqual(bed.ledger.replay([row.id]).requeued, [row.id]);
    await worker().runUntilIdle({ timeoutMs: 30_000 });
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered-pending');
    assert.equal((await bed.sim.control.events()).length, 1);
  });

  it('a replayed row whose earlier NOTIFY was stored (its answer lost) is not notified again', async () => {
    await bed.sim.control.configure({
      actionConfirmation: 'pending',
      faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 },
    });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 7));
    const w = worker();
    await w.processNext(); // the NOTIFY is stored as Requested, its answer lost: in doubt
    // The resend is refused before OpenCRVS looks for the transactionId (an office retired meanwhile), and
    // so is the lookup it makes then (its create names that office).
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['notify', 'create'], times: 2 },
    });
    ahead += 10_000;
    await w.processNext();
    assert.equal(bed.ledger.get(row.id)?.state, 'dead');
    bed.ledger.replay([row.id]); // under the next transactionId generation
    await w.runUntilIdle({ timeoutMs: 30_000 });
    const replayed = bed.ledger.get(row.id);
    assert.equal(replayed?.state, 'delivered-pending', 'found pending under the earlier generation');
    assert.deepEqual(await notifies(replayed?.eventId ?? null), ['Requested'], 'one notification of one birth');
  });

  it('a correction seen while the NOTIFY was pending goes out once the country configuration rejects it', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 8));
    const w = worker();
    await w.runUntilIdle({ timeoutMs: 30_000 });
    const corrected = birthEvent(bed.office, 8, { 'child.gender': 'female' });
    assert.equal(bed.ledger.recordEvent(corrected).change, 'updated-after-notification');
    await bed.sim.control.confirm(bed.ledger.get(row.id)?.eventId ?? '', 'reject');
    ahead += 6 * MINUTE;
    await w.runUntilIdle({ timeoutMs: 30_000 });
    assert.equal(bed.ledger.get(row.id)?.state, 'dead');
    // Seen again (a poll, or a replay reading the source): no longer "unchanged", it is requeued.
    const again = bed.ledger.recordEvent(corrected);
    assert.equal(again.change, 'replaced');
    assert.equal(again.row.state, 'pending');
    assert.equal(again.row.payload?.declaration['child.gender'], 'female');
  });
});
