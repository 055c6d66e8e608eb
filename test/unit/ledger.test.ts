import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  CONTEXT_READ_REFS_SQL,
  CONTEXT_READ_WINDOW_DAYS,
  CONTEXT_READERS_SQL,
} from '../../src/ledger/context-reads.js';
import { migrate, watchFileIdentity } from '../../src/ledger/db.js';
import { DUE_SQL } from '../../src/ledger/inbox.js';
import {
  type Ledger,
  type LedgerError,
  LedgerOpenError,
  type LedgerRow,
  type ListFilter,
  openLedger,
  type Settlement,
  transactionIdsFor,
} from '../../src/ledger/index.js';
import { MIGRATIONS } from '../../src/ledger/migrations/index.js';
import { listQuery, OLDEST_WAITING_SQL, PURGE_SQL, timeProbeQuery } from '../../src/ledger/queries.js';
import { createLogger, type Logger, silentLogger } from '../../src/observability/logger.js';
import { WriteBackStore } from '../../src/sources/writeback/store.js';
import { bundleForNobody } from '../support/bundle-for-nobody.js';
import { CHECKOUT } from '../support/checkout.js';
import { eventInput, OFFICE, payload, settleRow, type TestClock, tempLedger, testClock } from './ledger-helpers.js';

/** The schema this build migrates to: its newest migration. */
const latestSchema = () => Math.max(...MIGRATIONS.map((m) => m.version));

describe('ledger: recording events', () => {
  let clock: TestClock;
  let ledger: Ledger;
  let path: string;
  let cleanup: () => void;
  beforeEach(() => {
    clock = testClock();
    ({ ledger, path, cleanup } = tempLedger(clock));
  });
  afterEach(() => cleanup());
  /** An attempt whose answer was lost (a 500, a timeout): due again in a second; the call may have landed. */
  const retryLater = (error: LedgerError): Settlement => ({ outcome: 'retry', nextRunAt: clock.now() + 1000, error });
  const server500: LedgerError = { classification: 'retryable', kind: 'server', status: 500, message: 'x' };

  it('recording the same event twice leaves one row, the second call reporting unchanged', () => {
    const first = ledger.recordEvent(eventInput('1'));
    const second = ledger.recordEvent(eventInput('1'));
    assert.equal(first.change, 'inserted');
    assert.equal(second.change, 'unchanged');
    assert.equal(second.row.id, first.row.id);
    assert.deepEqual(ledger.counts(), [{ state: 'pending', eventType: 'birth', count: 1 }]);
    assert.equal(first.row.state, 'pending');
    assert.equal(first.row.attempts, 0);
    assert.deepEqual(first.row.payload, payload());
    assert.equal(first.row.office, OFFICE);
  });

  it('derives deterministic transactionIds from the natural key (UUIDv5, suffixed per step)', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const ids = transactionIdsFor('emr', 'birth', 'Patient/1');
    assert.match(ids.base, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(row.baseTransactionId, ids.base);
    assert.equal(row.createTransactionId, `${ids.base}:create`);
    assert.equal(row.notifyTransactionId, `${ids.base}:notify`);
    assert.equal(transactionIdsFor('emr', 'birth', 'Patient/1').base, ids.base);
    assert.notEqual(transactionIdsFor('emr', 'death', 'Patient/1').base, ids.base);
    assert.notEqual(transactionIdsFor('emr2', 'birth', 'Patient/1').base, ids.base);
    // Pinned: rows recorded by an older release are sent again after an upgrade under these ids, and
    // OpenCRVS recognises a resend only by them. A change of namespace or key order would create every
    // waiting event a second time.
    assert.equal(ids.base, 'dbc58748-f96d-5146-b246-2b7f47a9018c');
  });

  it('a later version of a not yet delivered event replaces the pending payload', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const result = ledger.recordEvent(eventInput('1', payload('Newer'), '2'));
    assert.equal(result.change, 'replaced');
    assert.equal(result.row.id, row.id);
    assert.equal(result.row.sourceVersion, '2');
    assert.deepEqual(result.row.payload?.declaration['child.name'], { firstname: 'Newer', surname: 'Child' });
    assert.equal(result.row.state, 'pending');
  });

  it('a later version after notification is recorded on the same row and never queued again', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 10);
    assert.ok(claimed);
    assert.ok(
      ledger.settle({
        id: row.id,
        workerId: 'w1',
        claimedPayloadHash: claimed.payloadHash,
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'delivered', eventId: 'e-1', trackingId: 'B7K2QZ' },
      }),
    );
    clock.advance(1000);
    const later = ledger.recordEvent(eventInput('1', payload('Changed'), '2'));
    assert.equal(later.change, 'updated-after-notification');
    assert.equal(later.row.id, row.id);
    assert.equal(later.row.state, 'delivered');
    assert.equal(later.row.updatesAfterNotification, 1);
    assert.equal(later.row.updatedAfterNotificationAt, clock.now());
    assert.equal(later.row.sourceVersion, '2');
    assert.equal(later.row.trackingId, 'B7K2QZ');
    // The same later version seen again (an overlapping poll) is not counted twice.
    assert.equal(ledger.recordEvent(eventInput('1', payload('Changed'), '2')).change, 'unchanged');
    assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1);
    assert.equal(ledger.claimDue('w1', 10).length, 0);
  });

  it('a delivered record mapped otherwise (an upgrade, a mapping change) is no update after notification while its source content is the same', () => {
    const read = (subject: string, firstname: string, source: string | undefined) => ({
      ...eventInput(subject, payload(firstname)),
      ...(source ? { sourceFingerprint: () => source } : {}),
    });
    const delivered = (subject: string, source: string | undefined) => {
      const { row } = ledger.recordEvent(read(subject, 'Test', source));
      settleRow(ledger, row.id, { outcome: 'delivered', eventId: `e-${subject}`, trackingId: 'B7K2QZ' });
      return row.id;
    };
    const counted = (id: number) => ledger.get(id)?.updatesAfterNotification;

    const a = delivered('a', 'content-1');
    // The same content, another payload: nothing moved at the source, nothing for OpenCRVS to catch up on.
    assert.equal(ledger.recordEvent(read('a', 'Mapped otherwise', 'content-1')).change, 'unchanged');
    assert.equal(counted(a), 0);
    assert.equal(ledger.get(a)?.state, 'delivered');
    // …and the hash follows the mapping in force: that reading again is unchanged too.
    assert.equal(ledger.recordEvent(read('a', 'Mapped otherwise', 'content-1')).change, 'unchanged');
    // The source changed and the payload with it: an update after notification, as before.
    assert.equal(ledger.recordEvent(read('a', 'Corrected', 'content-2')).change, 'updated-after-notification');
    assert.equal(counted(a), 1);

    // Delivered before fingerprints were kept: the payload alone decides, as before…
    const b = delivered('b', undefined);
    assert.equal(ledger.recordEvent(read('b', 'Mapped otherwise', 'content-1')).change, 'updated-after-notification');
    // …unless a reading with the payload unchanged recorded the fingerprint first.
    const c = delivered('c', undefined);
    assert.equal(ledger.recordEvent(read('c', 'Test', 'content-1')).change, 'unchanged');
    assert.equal(ledger.recordEvent(read('c', 'Mapped otherwise', 'content-1')).change, 'unchanged');
    assert.equal(counted(c), 0);
    assert.equal(counted(b), 1);
  });

  it('asks for the source fingerprint only when it stores or compares it: not for a delivered row read again unchanged', () => {
    // It costs about as much as evaluating the mapping (mapping/fingerprint.ts), and the poll overlap reads
    // delivered records again all the time.
    let computed = 0;
    const read = (firstname: string, source: string) => ({
      ...eventInput('lazy', payload(firstname)),
      sourceFingerprint: () => {
        computed++;
        return source;
      },
    });
    const { row, change } = ledger.recordEvent(read('Test', 'content-1'));
    assert.equal(change, 'inserted');
    assert.equal(computed, 1, 'a new row stores it');
    settleRow(ledger, row.id, { outcome: 'delivered', eventId: 'e-lazy', trackingId: 'B7K2QZ' });

    computed = 0;
    for (let i = 0; i < 3; i++) assert.equal(ledger.recordEvent(read('Test', 'content-1')).change, 'unchanged');
    assert.equal(computed, 0, 'the same payload, a fingerprint already kept: nothing to compare');
    // Another payload: whether the content moved (a correction) or not (a mapping change) needs it.
    assert.equal(ledger.recordEvent(read('Mapped otherwise', 'content-1')).change, 'unchanged');
    assert.ok(computed > 0, 'compared');
    assert.equal(ledger.get(row.id)?.updatesAfterNotification, 0);
  });

  it('a version arriving while a worker sends the row is sent next time, or counted as an update if the send succeeded', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    assert.ok(claimed);
    assert.equal(ledger.recordEvent(eventInput('1', payload('During'), '2')).change, 'replaced');
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: claimed.payloadHash,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'delivered', eventId: 'e-1', trackingId: 'AAAAAA' },
    });
    const after = ledger.get(row.id);
    assert.equal(after?.state, 'delivered');
    assert.equal(after?.updatesAfterNotification, 1);
  });

  it('a new version of a dead event requeues it with a fresh budget; the same payload again does not', () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('w1', 1);
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: claimed?.payloadHash ?? null,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'dead', error: { classification: 'permanent', kind: 'bad-request', message: 'x' } },
    });
    assert.equal(ledger.recordEvent(eventInput('1')).change, 'unchanged');
    assert.equal(ledger.get(row.id)?.state, 'dead');
    clock.advance(5000);
    const fixed = ledger.recordEvent(eventInput('1', payload('Fixed'), '2'));
    assert.equal(fixed.change, 'replaced');
    assert.equal(fixed.row.state, 'pending');
    assert.equal(fixed.row.attempts, 0);
    assert.equal(fixed.row.queuedAt, clock.now());
  });

  it('a copy OpenCRVS rejected stays dead when the record comes back as it, after an invalid reading or another copy', () => {
    const read = (subject: string, p = payload(), fingerprint = 'content-a') => ({
      ...eventInput(subject, p),
      sourceFingerprint: () => fingerprint,
    });
    const rejectedWith = (message: string) => ({
      outcome: 'dead' as const,
      error: { classification: 'permanent' as const, kind: 'rejected', message },
    });
    const invalidReading = (subject: string) =>
      ledger.recordInvalid({
        sourceId: 'emr',
        eventType: 'birth',
        subjectKey: `Patient/${subject}`,
        sourceRef: `Encounter/${subject}`,
        errors: [{ field: 'x', message: 'child.dob: not a date' }],
        sourceFingerprint: () => 'content-b',
      }).changed;
    const { row } = ledger.recordEvent(read('c'));
    settleRow(ledger, row.id, rejectedWith('first copy rejected'), { now: clock.now() });
    assert.equal(invalidReading('c'), true);
    assert.deepEqual([ledger.get(row.id)?.payload, ledger.get(row.id)?.lastError?.kind], [null, 'mapping']);
    const back = ledger.recordEvent(read('c'));
    assert.deepEqual(
      [back.change, back.row.state, back.row.notifyTransactionId, back.row.lastError?.message],
      ['unchanged', 'dead', row.notifyTransactionId, 'first copy rejected'],
    );
    // The same copy as a newer mapping writes it (its keys in another order, so another payload hash).
    const p = payload();
    const reordered = { office: p.office, declaration: Object.fromEntries(Object.entries(p.declaration).reverse()) };
    const upgraded = { ...read('c', reordered), payloadHash: 'hash of the upgraded mapping' };
    assert.deepEqual([ledger.recordEvent(upgraded).change, ledger.get(row.id)?.state], ['unchanged', 'dead']);
    assert.equal(ledger.recordEvent(upgraded).change, 'unchanged');

    // A new version goes out under the next generation. Rejected too, the first copy read again is still
    // one OpenCRVS rejected (under the earlier generation), and a third version goes out.
    const second = ledger.recordEvent(read('c', payload('Second'), 'content-c'));
    assert.deepEqual([second.change, second.row.state], ['replaced', 'pending']);
    assert.match(second.row.notifyTransactionId, /:notify:r1$/);
    clock.advance(1000);
    settleRow(ledger, row.id, rejectedWith('second copy rejected'), { now: clock.now() });
    const first = ledger.recordEvent(read('c'));
    assert.deepEqual(
      [first.change, first.row.state, first.row.lastError?.message, first.row.payload],
      ['unchanged', 'dead', 'first copy rejected', payload()],
    );
    const third = ledger.recordEvent(read('c', payload('Third'), 'content-d'));
    assert.deepEqual([third.change, third.row.state], ['replaced', 'pending']);
    assert.match(third.row.notifyTransactionId, /:notify:r2$/);

    // Rejected after a pending answer (a pending check), once its payload was purged: the same.
    const { row: pending } = ledger.recordEvent(read('p'));
    const claimed = ledger.claimRow(pending.id, 'w1', clock.now());
    assert.ok(claimed?.payload);
    ledger.settle({
      id: pending.id,
      workerId: 'w1',
      step: 'notify',
      startedAt: clock.now(),
      claimedAttempts: claimed.attempts,
      claimedPayloadHash: claimed.payloadHash,
      claimedPayload: claimed.payload,
      settlement: { outcome: 'delivered-pending', eventId: 'event-p', trackingId: 'TRK-p' },
    });
    assert.equal(ledger.purgePayloads(clock.now() + 169 * 3_600_000), 1);
    ledger.recordPendingCheck({
      id: pending.id,
      notifyTransactionId: claimed.notifyTransactionId,
      workerId: 'w1',
      startedAt: clock.now(),
      step: 'pending-check',
      result: rejectedWith('rejected after answering pending'),
    });
    assert.equal(invalidReading('p'), true);
    const pendingBack = ledger.recordEvent(read('p'));
    assert.deepEqual([pendingBack.change, pendingBack.row.state], ['unchanged', 'dead']);
    // An operator's replay re-reads the record (the same copy) and sends what the row then holds.
    assert.deepEqual(ledger.replay([pending.id]).requeued, [pending.id]);
    assert.match(ledger.get(pending.id)?.notifyTransactionId ?? '', /:notify:r1$/);
  });

  it('a rejection of an earlier NOTIFY that stood (olderCopy) names no copy: the newer version read again goes out', () => {
    const read = (p = payload(), fingerprint = 'content-a') => ({
      ...eventInput('o', p),
      sourceFingerprint: () => fingerprint,
    });
    const { row } = ledger.recordEvent(read());
    // The first copy's NOTIFY may be stored in OpenCRVS (its answers were lost) when the row runs out of retries.
    settleRow(ledger, row.id, { outcome: 'dead', error: server500 }, { now: clock.now() });
    clock.advance(1000);
    const second = read(payload('Second'), 'content-b');
    const changed = ledger.recordEvent(second);
    assert.deepEqual([changed.change, changed.row.state], ['replaced', 'pending']);
    assert.match(changed.row.notifyTransactionId, /:notify:r1$/);
    clock.advance(1000);
    // Sending it finds the earlier NOTIFY standing, pending: OpenCRVS holds a copy other than this one.
    const claimed = ledger.claimRow(row.id, 'w1', clock.now());
    assert.ok(claimed?.payload);
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      step: 'notify',
      startedAt: clock.now(),
      claimedAttempts: claimed.attempts,
      claimedPayloadHash: claimed.payloadHash,
      claimedPayload: claimed.payload,
      settlement: { outcome: 'delivered-pending', eventId: 'event-o', trackingId: 'TRK-o', olderCopy: true },
    });
    clock.advance(1000);
    ledger.recordPendingCheck({
      id: row.id,
      notifyTransactionId: claimed.notifyTransactionId,
      workerId: 'w1',
      startedAt: clock.now(),
      step: 'pending-check',
      result: { outcome: 'dead', error: { classification: 'permanent', kind: 'rejected', message: 'rejected' } },
    });
    const dead = ledger.get(row.id);
    assert.deepEqual([dead?.state, dead?.payload, dead?.payloadHash], ['dead', payload('Second'), null]);
    // The second version is not what OpenCRVS rejected (it never had it): read again, it goes out, and the
    // rejection is not taken for one recorded before migration 019 and given its copy.
    const back = ledger.recordEvent(second);
    assert.deepEqual([back.change, back.row.state], ['replaced', 'pending']);
    assert.match(back.row.notifyTransactionId, /:notify:r2$/);
    const db = new Database(path, { readonly: true });
    const named = db
      .prepare(`SELECT copy_hash FROM ledger_attempts WHERE row_id = ? AND error_kind = 'rejected'`)
      .pluck()
      .all(row.id);
    db.close();
    assert.deepEqual(named, ['']);
  });

  it('a copy OpenCRVS rejected, read again while a newer version waits to be sent, is not sent: the row is dead again', () => {
    const read = (p = payload(), fingerprint = 'content-a') => ({
      ...eventInput('w', p),
      sourceFingerprint: () => fingerprint,
    });
    const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'first copy rejected' };
    const { row } = ledger.recordEvent(read());
    settleRow(ledger, row.id, { outcome: 'dead', error: rejected }, { now: clock.now() });
    clock.advance(1000);
    // The record changes: the newer version requeues the row under the next generation.
    const changed = ledger.recordEvent(read(payload('Second'), 'content-b'));
    assert.deepEqual([changed.change, changed.row.state], ['replaced', 'pending']);
    assert.match(changed.row.notifyTransactionId, /:notify:r1$/);
    clock.advance(1000);
    // Before it is sent, the record is back as OpenCRVS rejected it.
    for (let poll = 0; poll < 2; poll++) {
      const back = ledger.recordEvent(read());
      assert.deepEqual(
        [back.change, back.row.state, back.row.lastError?.kind, back.row.lastError?.message],
        ['unchanged', 'dead', 'rejected', 'first copy rejected'],
        `poll ${poll}`,
      );
      // It holds that copy, for a replay to send.
      assert.deepEqual(back.row.payload, payload());
    }
    assert.deepEqual(ledger.claimDue('w1', 10), [], 'nothing is sent');
    assert.equal(ledger.attempts(row.id).length, 1);

    // A later version requeues it as usual, under a generation of its own.
    const third = ledger.recordEvent(read(payload('Third'), 'content-c'));
    assert.deepEqual([third.change, third.row.state, third.row.lastError], ['replaced', 'pending', null]);
    assert.match(third.row.notifyTransactionId, /:notify:r2$/);

    // Back as it was rejected again: dead again. An operator's replay sends it, and the same copy read
    // again while it waits leaves it to be sent.
    assert.equal(ledger.recordEvent(read()).row.state, 'dead');
    assert.deepEqual(ledger.replay([row.id]).requeued, [row.id]);
    assert.match(ledger.get(row.id)?.notifyTransactionId ?? '', /:notify:r3$/);
    const replayed = ledger.recordEvent(read());
    assert.deepEqual([replayed.change, replayed.row.state], ['unchanged', 'pending']);
    assert.deepEqual(
      ledger.claimDue('w1', 10).map((claimed) => claimed.payload),
      [payload()],
    );
  });

  it('a copy OpenCRVS rejected, read again while the newer version is retried, is not sent: the row is dead again', () => {
    const read = (p = payload(), fingerprint = 'content-a') => ({
      ...eventInput('r', p),
      sourceFingerprint: () => fingerprint,
    });
    const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'first copy rejected' };
    const { row } = ledger.recordEvent(read());
    settleRow(ledger, row.id, { outcome: 'dead', error: rejected }, { now: clock.now() });
    clock.advance(1000);
    assert.equal(ledger.recordEvent(read(payload('Second'), 'content-b')).change, 'replaced');
    // The newer version's NOTIFY refused with a 503 (nothing stored): it waits to be retried.
    const unavailable = { classification: 'retryable' as const, kind: 'server', status: 503, message: 'unavailable' };
    settleRow(ledger, row.id, retryLater(unavailable), { now: clock.now() });
    assert.equal(ledger.get(row.id)?.state, 'failed');
    clock.advance(2000);
    const back = ledger.recordEvent(read());
    assert.deepEqual(
      [back.change, back.row.state, back.row.lastError?.kind, back.row.lastError?.message],
      ['unchanged', 'dead', 'rejected', 'first copy rejected'],
    );
    assert.deepEqual(back.row.payload, payload());
    assert.deepEqual(ledger.claimDue('w1', 10), [], 'nothing is sent');
    // A later version requeues it, under the generation after the one the 503 was answered under.
    const third = ledger.recordEvent(read(payload('Third'), 'content-c'));
    assert.deepEqual([third.change, third.row.state], ['replaced', 'pending']);
    assert.match(third.row.notifyTransactionId, /:notify:r2$/);
  });

  it('a copy OpenCRVS rejected, read again while the newer version is sent, is never sent: the row ends dead with it', () => {
    const read = (subject: string, p = payload(), fingerprint = 'content-a') => ({
      ...eventInput(subject, p),
      sourceFingerprint: () => fingerprint,
    });
    const rejectedWith = (message: string) => ({
      outcome: 'dead' as const,
      error: { classification: 'permanent' as const, kind: 'rejected', message },
    });
    /** Row `subject`: its first copy rejected, a newer version requeued, claimed, and the record back as it was. */
    const sendingNewer = (subject: string): LedgerRow => {
      const { row } = ledger.recordEvent(read(subject));
      settleRow(ledger, row.id, rejectedWith('first copy rejected'), { now: clock.now() });
      clock.advance(1000);
      assert.equal(ledger.recordEvent(read(subject, payload('Second'), 'content-b')).change, 'replaced');
      const claimed = ledger.claimRow(row.id, 'w1', clock.now());
      assert.ok(claimed?.payload);
      const back = ledger.recordEvent(read(subject));
      assert.deepEqual([back.change, back.row.state], ['unchanged', 'delivering']);
      assert.equal(ledger.recordEvent(read(subject)).change, 'unchanged', 'read again');
      return claimed;
    };
    const settleClaimed = (claimed: LedgerRow, settlement: Settlement) =>
      ledger.settle({
        id: claimed.id,
        workerId: 'w1',
        step: 'notify',
        startedAt: clock.now(),
        claimedAttempts: claimed.attempts,
        claimedPayloadHash: claimed.payloadHash,
        ...(claimed.payload ? { claimedPayload: claimed.payload } : {}),
        settlement,
      });
    const deadWithFirstRejection = (subject: string, id: number) => {
      const back = ledger.recordEvent(read(subject));
      assert.deepEqual(
        [back.change, back.row.state, back.row.lastError?.message, back.row.payload],
        ['unchanged', 'dead', 'first copy rejected', payload()],
        subject,
      );
      assert.deepEqual(
        ledger.claimDue('w2', 10, clock.now() + 3_600_000).filter((row) => row.id === id),
        [],
        `${subject}: nothing is sent`,
      );
    };

    // The newer copy rejected too: nothing newer waits, the rejected first copy is not sent next.
    const rejected = sendingNewer('rj');
    const settled = settleClaimed(rejected, rejectedWith('second copy rejected'));
    assert.deepEqual(
      [settled?.state, settled?.notifyTransactionId],
      ['dead', rejected.notifyTransactionId],
      'not requeued under the next generation',
    );
    deadWithFirstRejection('rj', rejected.id);

    // Refused with a 503 (nothing stored): no copy is left to retry; the next reading says why.
    const unavailable = { classification: 'retryable' as const, kind: 'server', status: 503, message: 'unavailable' };
    const retried = sendingNewer('rt');
    assert.deepEqual(settleClaimed(retried, retryLater(unavailable))?.payload, null);
    deadWithFirstRejection('rt', retried.id);

    // Delivered: OpenCRVS holds the newer copy, and the record now says otherwise: counted once.
    const delivered = sendingNewer('dl');
    const done = settleClaimed(delivered, { outcome: 'delivered', eventId: 'event-dl', trackingId: 'TRK-dl' });
    assert.deepEqual([done?.state, done?.updatesAfterNotification, done?.payload], ['delivered', 1, delivered.payload]);
    assert.equal(ledger.recordEvent(read('dl')).change, 'unchanged');
    assert.equal(ledger.get(delivered.id)?.updatesAfterNotification, 1);
  });

  it('a dismissed row read again as a copy OpenCRVS rejected stays dismissed; a version not decided on brings it back', () => {
    const read = (p = payload(), fingerprint = 'content-a') => ({
      ...eventInput('dr', p),
      sourceFingerprint: () => fingerprint,
    });
    const rejectedWith = (message: string) => ({
      outcome: 'dead' as const,
      error: { classification: 'permanent' as const, kind: 'rejected', message },
    });
    // The first copy rejected; the record changes, and that copy is rejected too (under r1).
    const { row } = ledger.recordEvent(read());
    settleRow(ledger, row.id, rejectedWith('first copy rejected'), { now: clock.now() });
    clock.advance(1000);
    assert.equal(ledger.recordEvent(read(payload('Second'), 'content-b')).change, 'replaced');
    settleRow(ledger, row.id, rejectedWith('second copy rejected'), { now: clock.now() });
    assert.deepEqual(ledger.dismiss([row.id], 'not to be registered').dismissed, [row.id]);
    const dismissed = ledger.get(row.id) as LedgerRow;
    clock.advance(1000);
    // The record back as the first copy, then as the second: OpenCRVS decided on each, the person on the row.
    for (const [p, fingerprint] of [
      [payload(), 'content-a'],
      [payload(), 'content-a'],
      [payload('Second'), 'content-b'],
    ] as const) {
      const back = ledger.recordEvent(read(p, fingerprint));
      assert.deepEqual(
        [back.change, back.row.state, back.row.skipReason, back.row.notifyTransactionId, back.row.updatedAt],
        ['unchanged', 'skipped', dismissed.skipReason, dismissed.notifyTransactionId, dismissed.updatedAt],
        fingerprint,
      );
      assert.equal(back.row.payload, null);
    }
    assert.deepEqual(ledger.claimDue('w1', 10, clock.now() + 3_600_000), [], 'nothing is sent');
    // A version OpenCRVS has not decided on is worth a look, as for any dismissed row: under the next generation.
    const third = ledger.recordEvent(read(payload('Third'), 'content-c'));
    assert.deepEqual([third.change, third.row.state, third.row.skipReason], ['replaced', 'pending', null]);
    assert.match(third.row.notifyTransactionId, /:notify:r2$/);
  });

  it('records skipped events with their reason, and a notifiable later version queues them', () => {
    const input = {
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/9',
      sourceRef: 'Encounter/9',
      reason: 'not a live birth',
    };
    const { row: skipped, changed } = ledger.recordSkipped(input);
    assert.equal(changed, true);
    // Read again as it was (the next poll's overlap): the row stays, and says it was not written.
    assert.deepEqual(ledger.recordSkipped(input), { row: skipped, changed: false });
    assert.equal(ledger.recordSkipped({ ...input, reason: 'stillbirth' }).changed, true, 'a new reason is a change');
    assert.equal(skipped.state, 'skipped');
    assert.equal(skipped.skipReason, 'not a live birth');
    assert.equal(skipped.payload, null);
    assert.equal(ledger.claimDue('w1', 10).length, 0);
    const later = ledger.recordEvent(eventInput('9'));
    assert.equal(later.change, 'replaced');
    assert.equal(later.row.state, 'pending');
  });

  it('keeps invalid mapping output visible as dead with a permanent mapping error and no payload', () => {
    const input = {
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/5',
      sourceRef: 'Encounter/5',
      mappingId: 'birth.fhir',
      errors: [{ field: 'child.gender', message: 'not one of male, female, unknown' }],
    };
    const { row, changed } = ledger.recordInvalid(input);
    assert.equal(changed, true);
    assert.deepEqual(ledger.recordInvalid(input), { row, changed: false }, 'the same error again writes nothing');
    assert.equal(row.state, 'dead');
    assert.equal(row.payload, null);
    assert.deepEqual(row.lastError, {
      classification: 'permanent',
      kind: 'mapping',
      message: 'child.gender: not one of male, female, unknown',
    });
    const replay = ledger.replay([row.id]);
    assert.deepEqual(replay.requeued, []);
    assert.equal(replay.skipped[0]?.id, row.id);
    // Mapped again by its source (what a replay does first): queued with the new payload.
    const remapped = ledger.recordEvent(eventInput('5', payload('Remapped')));
    assert.equal(remapped.change, 'replaced');
    const after = ledger.get(row.id);
    assert.equal(after?.state, 'pending');
    assert.equal(after?.payload?.office, OFFICE);
    assert.ok(after?.payloadHash);
  });

  /** Two rows, a and b: the first claimed dies with `error`, the other stays pending. */
  const oneDeadOnePending = (error: LedgerError) => {
    const a = ledger.recordEvent(eventInput('a')).row;
    const b = ledger.recordEvent(eventInput('b')).row;
    for (const claimed of ledger.claimDue('w1', 1)) {
      ledger.settle({
        id: claimed.id,
        workerId: 'w1',
        claimedPayloadHash: claimed.payloadHash,
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'dead', error },
      });
    }
    return { a, b };
  };

  it('replay only touches dead rows and resets their budget', () => {
    const { a, b } = oneDeadOnePending({ classification: 'retryable', kind: 'server', message: 'gave up' });
    const result = ledger.replay([a.id, b.id, 999]);
    assert.deepEqual(result.requeued, [a.id]);
    assert.deepEqual(
      result.skipped.map((s) => s.id),
      [b.id, 999],
    );
    assert.equal(ledger.get(a.id)?.attempts, 0);
    assert.equal(ledger.get(a.id)?.state, 'pending');
    // The error that ended it is in its attempts; on the pending row it read as a failed replay.
    assert.equal(ledger.get(a.id)?.lastError, null);
    assert.equal(ledger.attempts(a.id).at(-1)?.error?.message, 'gave up');
  });

  it('dismiss closes dead rows only; the same record seen again stays dismissed, a changed one comes back', () => {
    const { a, b } = oneDeadOnePending({ classification: 'permanent', kind: 'bad-request', message: 'no' });
    const result = ledger.dismiss([a.id, b.id, 999], 'duplicate of #7');
    assert.deepEqual(result.dismissed, [a.id]);
    assert.deepEqual(
      result.refused.map((r) => [r.id, r.reason]),
      [
        [b.id, 'state is pending, not dead'],
        [999, 'no such row'],
      ],
    );
    const dismissed = ledger.get(a.id);
    assert.equal(dismissed?.state, 'skipped');
    assert.equal(dismissed?.skipReason, 'dismissed by an operator: duplicate of #7');
    assert.equal(dismissed?.payload, null, 'nothing will send it: its personal data goes');
    // A poll's overlap or a notification reads the record again, unchanged: it must not go after all.
    assert.equal(ledger.recordEvent(eventInput('a')).change, 'unchanged');
    assert.equal(ledger.get(a.id)?.state, 'skipped');
    // A changed record deserves a look, as for a dead row.
    assert.equal(ledger.recordEvent(eventInput('a', payload('Corrected'))).change, 'replaced');
    assert.equal(ledger.get(a.id)?.state, 'pending');
    // Under the next NOTIFY generation, as a replayed dead row: OpenCRVS answers the old transactionId
    // with the NOTIFY it refused, so the row would die again sending nothing.
    assert.equal(ledger.get(a.id)?.requeues, 1);
    assert.equal(ledger.get(a.id)?.notifyTransactionId, `${ledger.get(a.id)?.baseTransactionId}:notify:r1`);
  });

  it('a dismissed record mapped otherwise (an upgrade, a mapping change) stays dismissed while its source content is the same', () => {
    const refused: Settlement = {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', message: 'no' },
    };
    const read = (subject: string, firstname: string, source: string | undefined) => ({
      ...eventInput(subject, payload(firstname)),
      ...(source ? { sourceFingerprint: () => source } : {}),
    });
    const dismissedRow = (subject: string, source: string | undefined) => {
      const { row } = ledger.recordEvent(read(subject, 'Test', source));
      settleRow(ledger, row.id, refused);
      assert.deepEqual(ledger.dismiss([row.id], 'registered by hand').dismissed, [row.id]);
      return row.id;
    };
    const state = (id: number) => [ledger.get(id)?.state, ledger.get(id)?.skipReason?.split(':')[0]];
    const dismissed = ['skipped', 'dismissed by an operator'];

    const a = dismissedRow('a', 'content-1');
    const dismissedAt = ledger.get(a)?.updatedAt;
    clock.advance(1_000);
    // The same content, another payload (the new version leaves a field out): the decision stands.
    assert.equal(ledger.recordEvent(read('a', 'Mapped otherwise', 'content-1')).change, 'unchanged');
    assert.deepEqual(state(a), dismissed);
    assert.equal(ledger.get(a)?.payload, null, 'nothing to send');
    assert.equal(ledger.get(a)?.updatedAt, dismissedAt, 'still shows when it was dismissed');
    // Its hash follows: a change of the content the payload does not show leaves it dismissed as before.
    assert.equal(ledger.recordEvent(read('a', 'Mapped otherwise', 'content-2')).change, 'unchanged');
    assert.deepEqual(state(a), dismissed);
    // The content changed and the payload with it: a correction, back to the queue as before.
    assert.equal(ledger.recordEvent(read('a', 'Corrected', 'content-3')).change, 'replaced');
    assert.equal(ledger.get(a)?.state, 'pending');

    // Mapped otherwise from other content (a context record changed too): back to the queue.
    const b = dismissedRow('b', 'content-1');
    assert.equal(ledger.recordEvent(read('b', 'Mapped otherwise', 'content-2')).change, 'replaced');
    assert.equal(ledger.get(b)?.state, 'pending');

    // A plain dead row mapped otherwise goes back to the queue: the new mapping may be its fix.
    const { row: dead } = ledger.recordEvent(read('c', 'Test', 'content-1'));
    settleRow(ledger, dead.id, refused);
    assert.equal(ledger.recordEvent(read('c', 'Mapped otherwise', 'content-1')).change, 'replaced');
    assert.equal(ledger.get(dead.id)?.state, 'pending');

    // Recorded without a fingerprint (before migration 017): a different payload brings it back, as before…
    const d = dismissedRow('d', undefined);
    assert.equal(ledger.recordEvent(read('d', 'Mapped otherwise', 'content-1')).change, 'replaced');
    // …unless a read with the payload unchanged recorded the fingerprint first.
    const e = dismissedRow('e', undefined);
    assert.equal(ledger.recordEvent(read('e', 'Test', 'content-1')).change, 'unchanged');
    assert.equal(ledger.recordEvent(read('e', 'Mapped otherwise', 'content-1')).change, 'unchanged');
    assert.deepEqual(state(e), dismissed);
    // Read without a fingerprint (no content known), the payload rule alone decides, as before.
    assert.equal(ledger.recordEvent(read('e', 'Mapped a third way', undefined)).change, 'replaced');
    assert.equal(ledger.get(d)?.state, 'pending');

    // A reading that cannot be mapped (an office closed since, a mapping change) has nothing to send and
    // says nothing new of the content: the decision stands, and a later valid reading of the same content
    // mapped otherwise finds it as it was.
    const f = dismissedRow('f', 'content-1');
    const invalid = ledger.recordInvalid({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/f',
      sourceRef: 'Encounter/f',
      errors: [{ field: 'createdAtLocation', message: "office 'X' is not a known, open OpenCRVS office" }],
    });
    assert.equal(invalid.changed, false);
    assert.deepEqual(state(f), dismissed);
    assert.equal(ledger.recordEvent(read('f', 'Mapped otherwise', 'content-1')).change, 'unchanged');
    assert.deepEqual(state(f), dismissed);
  });

  it('content that moved while a row waited to be sent (the payload as it was) is what a later dismissal keeps', () => {
    const refused: Settlement = {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', message: 'no' },
    };
    const read = (subject: string, firstname: string, source: string) => ({
      ...eventInput(subject, payload(firstname)),
      sourceFingerprint: () => source,
    });
    // The EMR saves what the mapping reads but does not send (the mother's phone) while the row is pending,
    // failed or in flight: the same payload from other content.
    const pending = ledger.recordEvent(read('p', 'Test', 'content-1')).row.id;
    assert.equal(ledger.recordEvent(read('p', 'Test', 'content-2')).change, 'unchanged');
    settleRow(ledger, pending, refused);

    const failed = ledger.recordEvent(read('f', 'Test', 'content-1')).row.id;
    settleRow(ledger, failed, retryLater({ classification: 'retryable', kind: 'network', message: 'refused' }));
    assert.equal(ledger.get(failed)?.state, 'failed');
    assert.equal(ledger.recordEvent(read('f', 'Test', 'content-2')).change, 'unchanged');
    clock.advance(1_000);
    settleRow(ledger, failed, refused);

    const inFlight = ledger.recordEvent(read('d', 'Test', 'content-1')).row.id;
    const claimed = ledger.claimRow(inFlight, 'w1');
    assert.ok(claimed);
    assert.equal(ledger.recordEvent(read('d', 'Test', 'content-2')).change, 'unchanged');
    ledger.settle({
      id: inFlight,
      workerId: 'w1',
      claimedPayloadHash: claimed.payloadHash,
      step: 'notify',
      startedAt: 0,
      settlement: refused,
    });

    for (const [id, subject] of [
      [pending, 'p'],
      [failed, 'f'],
      [inFlight, 'd'],
    ] as const) {
      assert.equal(ledger.get(id)?.state, 'dead', subject);
      assert.deepEqual(ledger.dismiss([id], 'registered by hand').dismissed, [id]);
      // Nothing moved at the source since; an upgrade maps the record otherwise: the decision stands.
      assert.equal(ledger.recordEvent(read(subject, 'Mapped otherwise', 'content-2')).change, 'unchanged', subject);
      assert.equal(ledger.get(id)?.state, 'skipped', subject);
      assert.equal(ledger.get(id)?.requeues, 0, subject);
    }
  });

  it('a dismissed row read as no event (an exclusion) stays dismissed, and so does the same record read again', () => {
    const { a } = oneDeadOnePending({ classification: 'permanent', kind: 'rejected', message: 'rejected' });
    assert.deepEqual(ledger.dismiss([a.id], 'wrong twin').dismissed, [a.id]);
    const before = ledger.get(a.id);
    const skipped = ledger.recordSkipped({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/a',
      sourceRef: 'Patient/a',
      reason: 'excluded: fetal death',
    });
    assert.equal(skipped.changed, false);
    assert.equal(ledger.get(a.id)?.skipReason, before?.skipReason);
    // The exclusion gone, the record as it was dismissed: it must not go after all.
    assert.equal(ledger.recordEvent(eventInput('a')).change, 'unchanged');
    assert.equal(ledger.get(a.id)?.state, 'skipped');
    assert.equal(ledger.get(a.id)?.requeues, 0);
    // A correction comes back under the next NOTIFY generation: OpenCRVS answers the one it rejected with
    // that rejection (a row dismissed, then read as no event, was no longer known to have died).
    assert.equal(ledger.recordEvent(eventInput('a', payload('Corrected'))).change, 'replaced');
    assert.equal(ledger.get(a.id)?.notifyTransactionId, `${before?.baseTransactionId}:notify:r1`);
  });

  it('undismiss makes a dismissed row dead again as it died, and refuses every other row', () => {
    const error: LedgerError = { classification: 'permanent', kind: 'bad-request', message: 'no' };
    const { a, b } = oneDeadOnePending(error);
    const dead = ledger.get(a.id);
    const { row: notEvent } = ledger.recordSkipped({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/not-event',
      sourceRef: 'Encounter/not-event',
      reason: 'not a live birth',
    });
    assert.deepEqual(ledger.dismiss([a.id], 'test patient').dismissed, [a.id]);
    const result = ledger.undismiss([a.id, b.id, notEvent.id, 999]);
    assert.deepEqual(result.restored, [a.id]);
    assert.deepEqual(
      result.refused.map((r) => [r.id, r.reason]),
      [
        [b.id, 'state is pending, not dismissed'],
        [notEvent.id, 'skipped by the bridge, not dismissed by an operator'],
        [999, 'no such row'],
      ],
    );
    const restored = ledger.get(a.id);
    assert.equal(restored?.state, 'dead');
    assert.equal(restored?.skipReason, null);
    assert.deepEqual(restored?.lastError, dead?.lastError, 'the error it died with is shown again');
    assert.equal(restored?.attempts, dead?.attempts);
    assert.equal(restored?.payload, null, 'dismiss dropped it: a replay maps the record again');
    assert.equal(ledger.get(notEvent.id)?.skipReason, 'not a live birth');
    // Twice is refused: it is dead now.
    assert.deepEqual(ledger.undismiss([a.id]).refused, [{ id: a.id, reason: 'state is dead, not dismissed' }]);
    // The same record seen again (a replay reads it first) leaves it dead, with its payload back to replay.
    assert.equal(ledger.recordEvent(eventInput('a')).change, 'unchanged');
    assert.equal(ledger.get(a.id)?.state, 'dead');
    assert.deepEqual(ledger.get(a.id)?.payload, dead?.payload);
    assert.deepEqual(ledger.replay([a.id]).requeued, [a.id]);
  });

  it('a row dead on "Event not found" forgets that event when replayed or sent a new version: create runs again', () => {
    const notFound: Settlement = {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'not-found', status: 404, message: 'Event not found with ID: e' },
    };
    const lost = ledger.recordEvent(eventInput('lost')).row;
    const other = ledger.recordEvent(eventInput('other')).row;
    settleRow(ledger, lost.id, notFound, { created: { eventId: 'event-lost', trackingId: 'TRKL' } });
    settleRow(
      ledger,
      other.id,
      { outcome: 'dead', error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'x' } },
      { created: { eventId: 'event-other', trackingId: 'TRKO' } },
    );
    ledger.replay('dead');
    assert.deepEqual([ledger.get(lost.id)?.eventId, ledger.get(lost.id)?.trackingId], [null, null]);
    assert.equal(ledger.get(other.id)?.eventId, 'event-other', 'any other dead row keeps its event');
    // The same through a corrected version from the source.
    const again = ledger.recordEvent(eventInput('again')).row;
    settleRow(ledger, again.id, notFound, { created: { eventId: 'event-again', trackingId: 'TRKA' } });
    assert.equal(ledger.recordEvent(eventInput('again', payload('Corrected'), '2')).change, 'replaced');
    assert.equal(ledger.get(again.id)?.eventId, null);
  });

  it('a replayed row starts a new age budget: maxAgeHours counts from the replay, not from its first queueing', () => {
    const { row } = ledger.recordEvent(eventInput('old'));
    settleRow(ledger, row.id, {
      outcome: 'dead',
      error: { classification: 'retryable', kind: 'server', message: 'x' },
    });
    clock.advance(5 * 3_600_000); // fixed hours later
    ledger.replay([row.id]);
    assert.equal(ledger.get(row.id)?.queuedAt, clock.now(), 'the retry budget (maxAgeHours) starts at the replay');
  });

  it('moves a cursor forward on every commit (the next pass starts from the newest)', () => {
    ledger.setCursor('emr', 'lastUpdated:Patient', '2026-01-01T00:00:00Z');
    ledger.setCursor('emr', 'lastUpdated:Patient', '2026-01-02T00:00:00Z');
    assert.equal(ledger.getCursor('emr', 'lastUpdated:Patient'), '2026-01-02T00:00:00Z');
  });

  it('commits cursors and rows together: a throw inside the transaction rolls both back', () => {
    ledger.transaction(() => {
      ledger.recordEvent(eventInput('1'));
      ledger.setCursor('emr', 'Encounter', '2026-01-01T00:00:00Z');
    });
    assert.throws(
      () =>
        ledger.transaction(() => {
          ledger.recordEvent(eventInput('2'));
          ledger.setCursor('emr', 'Encounter', '2026-02-01T00:00:00Z');
          throw new Error('page failed half way');
        }),
      /half way/,
    );
    assert.equal(ledger.getCursor('emr', 'Encounter'), '2026-01-01T00:00:00Z');
    assert.equal(ledger.findByKey('emr', 'birth', 'Patient/2'), undefined);
    assert.ok(ledger.findByKey('emr', 'birth', 'Patient/1'));
    assert.equal(ledger.getCursor('emr', 'other'), undefined);
  });

  it('lists rows by filter, newest first, and counts them by state and event type', () => {
    for (const s of ['1', '2', '3']) ledger.recordEvent(eventInput(s));
    ledger.recordSkipped({ sourceId: 'dhis2', eventType: 'death', subjectKey: 'TEI/1', sourceRef: 'x', reason: 'r' });
    assert.deepEqual(
      ledger.list({ states: ['pending'] }).map((r) => r.subjectKey),
      ['Patient/3', 'Patient/2', 'Patient/1'],
    );
    assert.equal(ledger.list({ sourceId: 'dhis2' }).length, 1);
    assert.equal(ledger.list({ eventType: 'death', states: ['skipped'] }).length, 1);
    assert.equal(ledger.list({ limit: 2, offset: 1 }).length, 2);
    assert.equal(ledger.list({ since: clock.now() + 1 }).length, 0);
    assert.deepEqual(ledger.counts(), [
      { state: 'pending', eventType: 'birth', count: 3 },
      { state: 'skipped', eventType: 'death', count: 1 },
    ]);
  });

  it('finds an event by subject, source reference, bare id or tracking ID', () => {
    for (const s of ['12', '123', 'a_b']) ledger.recordEvent(eventInput(s));
    ledger.recordSkipped({
      sourceId: 'dhis2',
      eventType: 'death',
      subjectKey: 'TrackedEntity/123',
      sourceRef: 'TrackedEntity/123',
      reason: 'r',
    });
    const [row] = ledger.claimDue('w', 10).filter((r) => r.subjectKey === 'Patient/12');
    assert.ok(row);
    ledger.recordCreated(row.id, 'event-12', 'B7K2QZ');
    const found = (find: string, filter: Omit<ListFilter, 'find'> = {}) =>
      ledger.list({ ...filter, find }).map((r) => `${r.sourceId}:${r.subjectKey}`);
    assert.deepEqual(found('Patient/123'), ['emr:Patient/123'], 'a reference matches exactly, not by prefix');
    assert.deepEqual(found('Encounter/123'), ['emr:Patient/123'], 'the source reference');
    assert.deepEqual(found('123'), ['dhis2:TrackedEntity/123', 'emr:Patient/123'], 'a bare id, in any type');
    assert.deepEqual(found(' B7K2QZ '), ['emr:Patient/12'], 'a tracking ID, trimmed');
    // Read off a certificate or over the phone in any case: OpenCRVS's tracking IDs are all capitals.
    assert.deepEqual(found('b7k2qz'), ['emr:Patient/12'], 'a tracking ID in lower case');
    assert.deepEqual(found('b7K2qZ', { sourceId: 'emr' }), ['emr:Patient/12'], 'in mixed case, with other filters');
    assert.deepEqual(found('A_B'), [], 'resource ids stay case-sensitive, as in FHIR');
    assert.deepEqual(found('a_b'), ['emr:Patient/a_b']);
    assert.deepEqual(found('a%b'), [], 'no wildcard reading');
    assert.deepEqual(found('123', { sourceId: 'emr' }), ['emr:Patient/123'], 'combined with the other filters');
    assert.deepEqual(found('123', { states: ['skipped'] }), ['dhis2:TrackedEntity/123']);
    // As the ledger table prints a row: source:reference.
    assert.deepEqual(found('emr:Encounter/123'), ['emr:Patient/123']);
    assert.deepEqual(found('dhis2:TrackedEntity/123'), ['dhis2:TrackedEntity/123']);
    assert.deepEqual(found('dhis2:Patient/123'), [], 'the source must match too');
    // A subject is found under every source and event type holding it: read through the natural key (031).
    for (const [sourceId, eventType] of [
      ['emr', 'death'],
      ['dhis2', 'death'],
    ] as const) {
      ledger.recordSkipped({ sourceId, eventType, subjectKey: 'Patient/12', sourceRef: 'Encounter/d12', reason: 'r' });
    }
    assert.deepEqual(found('Patient/12'), ['dhis2:Patient/12', 'emr:Patient/12', 'emr:Patient/12']);
    assert.deepEqual(
      ledger.list({ find: 'Patient/12' }).map((r) => r.eventType),
      ['death', 'death', 'birth'],
    );
  });

  it('cancels a row not sent yet when its record is no event any more, and nothing else', () => {
    const input = (subject: string) => ({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: `Patient/${subject}`,
      sourceRef: `Patient/${subject}`,
      reason: 'no longer notifiable: no birth evidence',
    });
    assert.equal(ledger.cancelUnsent(input('never-seen')), undefined);
    assert.equal(ledger.list().length, 0, 'a non-event leaves no row');

    const { row: waiting } = ledger.recordEvent(eventInput('w'));
    const cancelled = ledger.cancelUnsent(input('w'));
    assert.equal(cancelled?.id, waiting.id);
    assert.equal(cancelled?.state, 'skipped');
    assert.equal(cancelled?.skipReason, 'no longer notifiable: no birth evidence');
    assert.equal(cancelled?.payload, null, 'the declaration goes with it');
    assert.equal(ledger.cancelUnsent(input('w')), undefined, 'already skipped: unchanged');

    const { row: sent } = ledger.recordEvent(eventInput('s'));
    const [claimed] = ledger.claimDue('w', 10).filter((r) => r.id === sent.id);
    assert.ok(claimed);
    const inFlight = ledger.cancelUnsent(input('s'));
    assert.equal(inFlight?.state, 'delivering', 'in flight: not cancelled under the worker');
    assert.equal(inFlight?.withdrawnReason, 'no longer notifiable: no birth evidence', 'marked for the worker');
    ledger.settle({
      id: sent.id,
      workerId: 'w',
      claimedPayloadHash: claimed.payloadHash,
      step: 'notify',
      startedAt: clock.now(),
      settlement: { outcome: 'delivered', eventId: 'e', trackingId: 'T' },
    });
    assert.equal(ledger.cancelUnsent(input('s')), undefined);
    assert.equal(ledger.get(sent.id)?.state, 'delivered', 'a delivered event stands');
    assert.equal(ledger.get(sent.id)?.withdrawnReason, 'no longer notifiable: no birth evidence', 'and says so');

    // Its OpenCRVS event exists and a NOTIFY was tried (its answer lost, maybe): marked, not cancelled.
    const { row: doubt } = ledger.recordEvent(eventInput('d'));
    settleRow(ledger, doubt.id, retryLater(server500), {
      now: clock.now(),
      created: { eventId: 'event-d', trackingId: 'TRKD' },
    });
    const marked = ledger.cancelUnsent(input('d'));
    assert.deepEqual([marked?.state, marked?.withdrawnReason], ['failed', 'no longer notifiable: no birth evidence']);
    assert.equal(ledger.cancelUnsent(input('d')), undefined, 'marked already: unchanged');
    // A newer version while that NOTIFY is in doubt is an update after notification; the payload sent stays.
    const { change } = ledger.recordEvent(eventInput('d', payload('Corrected'), '2'));
    assert.equal(change, 'updated-after-notification');
    const kept = ledger.get(doubt.id);
    assert.deepEqual(
      [kept?.updatesAfterNotification, kept?.payload?.declaration['child.name']],
      [1, doubt.payload?.declaration['child.name']],
    );
  });

  it('a dead row whose NOTIFY may be in OpenCRVS takes a newer version under the next generation', () => {
    const { row } = ledger.recordEvent(eventInput('x'));
    // Out of retries after a 500: the NOTIFY may have been stored.
    settleRow(
      ledger,
      row.id,
      { outcome: 'dead', error: { classification: 'retryable', kind: 'server', status: 500, message: 'x' } },
      { now: clock.now(), created: { eventId: 'event-x', trackingId: 'TRKX' } },
    );
    assert.equal(ledger.get(row.id)?.state, 'dead');
    // Nothing was sent under the next generation: its first attempt asks OpenCRVS what the first left
    // (delivery/send.ts), so the row may carry the correction.
    const { change } = ledger.recordEvent(eventInput('x', payload('Corrected'), '2'));
    assert.equal(change, 'replaced');
    const requeued = ledger.get(row.id);
    assert.deepEqual(
      [requeued?.state, requeued?.updatesAfterNotification, requeued?.payload?.declaration['child.name']],
      ['pending', 0, payload('Corrected').declaration['child.name']],
    );
    assert.match(requeued?.notifyTransactionId ?? '', /:notify:r1$/);
    assert.equal(requeued?.eventId, 'event-x', 'the event stays');
  });

  it('a replayed row starts a fresh notify transactionId: doubt about the old one no longer holds a correction back', () => {
    const { row } = ledger.recordEvent(eventInput('g'));
    settleRow(
      ledger,
      row.id,
      { outcome: 'dead', error: { classification: 'retryable', kind: 'server', status: 500, message: 'x' } },
      { now: clock.now(), created: { eventId: 'event-g', trackingId: 'TRKG' } },
    );
    clock.advance(1000);
    assert.deepEqual(ledger.replay([row.id]).requeued, [row.id]);
    assert.match(ledger.get(row.id)?.notifyTransactionId ?? '', /:notify:r1$/);
    const { change } = ledger.recordEvent(eventInput('g', payload('Corrected'), '2'));
    assert.equal(change, 'replaced', 'nothing was sent under :notify:r1 yet');
    assert.deepEqual(
      ledger.get(row.id)?.payload?.declaration['child.name'],
      payload('Corrected').declaration['child.name'],
    );
  });

  it('a single-call (v1.9) row whose call may have reached OpenCRVS keeps what it sent: a newer version, a withdrawal', () => {
    const { row } = ledger.recordEvent(eventInput('v1'));
    // createAndNotify timed out: no event id came back, but OpenCRVS may have stored the declaration.
    settleRow(ledger, row.id, retryLater({ classification: 'retryable', kind: 'timeout', message: 'x' }), {
      now: clock.now(),
      step: 'createAndNotify',
    });
    assert.equal(ledger.get(row.id)?.eventId, null);
    // The retry sends the same transactionId, which OpenCRVS answers with what it stored: the correction
    // cannot go out under it, and must not be recorded as if it had.
    const { change } = ledger.recordEvent(eventInput('v1', payload('Corrected'), '2'));
    assert.equal(change, 'updated-after-notification');
    assert.deepEqual(ledger.get(row.id)?.payload?.declaration['child.name'], row.payload?.declaration['child.name']);
    const withdrawn = ledger.cancelUnsent({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/v1',
      sourceRef: 'Patient/v1',
      reason: 'deleted in the source before it was sent',
    });
    assert.deepEqual(
      [withdrawn?.state, withdrawn?.withdrawnReason],
      ['failed', 'deleted in the source before it was sent'],
      'marked for the worker to ask OpenCRVS, not skipped',
    );
  });

  it('a delivered row stays delivered when a later version cannot be mapped (invalid): OpenCRVS has the event', () => {
    const { row } = ledger.recordEvent(eventInput('ok'));
    settleRow(ledger, row.id, { outcome: 'delivered', eventId: 'event-ok', trackingId: 'TRKOK' }, { now: clock.now() });
    ledger.recordInvalid({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/ok',
      sourceRef: 'Encounter/ok',
      errors: [{ field: 'child.dob', message: 'not a date' }],
    });
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('a row whose NOTIFY is in doubt keeps what it sent when a later reading cannot be mapped (invalid)', () => {
    const { row } = ledger.recordEvent(eventInput('doubt'));
    settleRow(ledger, row.id, retryLater(server500), {
      now: clock.now(),
      created: { eventId: 'event-doubt', trackingId: 'TRKD' },
    });
    assert.equal(ledger.notifyInDoubt(row.id), true);
    const { changed } = ledger.recordInvalid({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/doubt',
      sourceRef: 'Encounter/doubt',
      errors: [{ field: 'createdAtLocation', message: "office 'X' is not a known, open OpenCRVS office" }],
    });
    assert.equal(changed, false);
    const kept = ledger.get(row.id);
    assert.equal(kept?.state, 'failed', 'its retry resends the copy OpenCRVS may hold');
    assert.deepEqual(kept?.payload, row.payload);
  });

  // For the two describes below: a reading of `subject` the mapping refuses, from content `fingerprint`.
  const officeClosed = "office 'X' is not a known, open OpenCRVS office";
  const invalid = (subject: string, fingerprint: string | undefined, message = 'child.dob: not a date') =>
    ledger.recordInvalid({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: `Patient/${subject}`,
      sourceRef: `Encounter/${subject}`,
      errors: [{ field: 'x', message }],
      ...(fingerprint ? { sourceFingerprint: () => fingerprint } : {}),
    }).changed;

  describe('an invalid reading of a row whose NOTIFY is in doubt: the source content decides', () => {
    /** Row `subject` recorded from content `fingerprint`, its NOTIFY then failed in a way that may follow a commit. */
    const inDoubt = (subject: string, fingerprint?: string) => {
      const { row } = ledger.recordEvent({
        ...eventInput(subject),
        ...(fingerprint ? { sourceFingerprint: () => fingerprint } : {}),
      });
      settleRow(ledger, row.id, retryLater(server500), {
        now: clock.now(),
        created: { eventId: `event-${subject}`, trackingId: `TRK-${subject}` },
      });
      assert.equal(ledger.notifyInDoubt(row.id), true);
      return ledger.get(row.id) as LedgerRow;
    };
    /** What an invalid reading must leave as it was: what the retry resends, and under which ids. */
    const kept = (row: LedgerRow | undefined) => [
      row?.state,
      row?.payload,
      row?.payloadHash,
      row?.notifyTransactionId,
      row?.attempts,
      row?.nextRunAt,
    ];

    it('a changed record is counted once, however often it is read, and the copy that may be in OpenCRVS stays', () => {
      const before = inDoubt('c', 'content-a');
      clock.advance(1000);
      const countedAt = clock.now();
      assert.equal(invalid('c', 'content-b'), true);
      const row = () => ledger.get(before.id);
      assert.deepEqual([row()?.updatesAfterNotification, row()?.updatedAfterNotificationAt], [1, countedAt]);
      assert.deepEqual(kept(row()), kept(before), 'its retry resends the copy OpenCRVS may hold');
      for (let poll = 0; poll < 3; poll++) {
        clock.advance(1000);
        assert.equal(invalid('c', 'content-b', poll % 2 ? 'child.dob: not a date' : officeClosed), false);
      }
      // A record its context needs could not be read: that says nothing of the record itself.
      assert.equal(invalid('c', undefined, 'Observation/1: could not be read'), false);
      assert.deepEqual([row()?.updatesAfterNotification, row()?.updatedAfterNotificationAt], [1, countedAt]);
      // Changed again at the source, still invalid: a second update.
      assert.equal(invalid('c', 'content-c'), true);
      assert.equal(row()?.updatesAfterNotification, 2);
      // Back as it was sent: the kept copy, nothing to requeue and no new transactionId generation.
      assert.equal(
        ledger.recordEvent({ ...eventInput('c'), sourceFingerprint: () => 'content-a' }).change,
        'unchanged',
      );
      assert.deepEqual(kept(row()), kept(before));
      // Corrected at the source: counted as a newer valid version is, the copy still kept.
      const corrected = { ...eventInput('c', payload('Corrected'), '2'), sourceFingerprint: () => 'content-d' };
      assert.equal(ledger.recordEvent(corrected).change, 'updated-after-notification');
      assert.equal(row()?.updatesAfterNotification, 3);
      assert.deepEqual(row()?.payload, before.payload);
    });

    it('an office closed and reopened (the record unchanged) counts nothing, and the same reading after it is unchanged', () => {
      const before = inDoubt('o', 'content-a');
      clock.advance(1000);
      assert.equal(invalid('o', 'content-a', officeClosed), false, 'a config change, not the record');
      assert.deepEqual(
        [ledger.get(before.id)?.updatesAfterNotification, ledger.get(before.id)?.updatedAt],
        [0, before.updatedAt],
      );
      // Reopened: the record maps as it did.
      assert.equal(
        ledger.recordEvent({ ...eventInput('o'), sourceFingerprint: () => 'content-a' }).change,
        'unchanged',
      );
      const after = ledger.get(before.id);
      assert.deepEqual(kept(after), kept(before), 'no requeue, no new generation');
      assert.deepEqual([after?.updatesAfterNotification, after?.baseTransactionId], [0, before.baseTransactionId]);
      // The record moved in a way no field shows (the same payload): when the office closes again, that
      // content is what it is compared with, not the content first sent.
      assert.equal(
        ledger.recordEvent({ ...eventInput('o'), sourceFingerprint: () => 'content-a2' }).change,
        'unchanged',
      );
      assert.equal(invalid('o', 'content-a2', officeClosed), false);
      assert.equal(ledger.get(before.id)?.updatesAfterNotification, 0);
      assert.deepEqual(kept(ledger.get(before.id)), kept(before));
    });

    it('a row being sent again when its record changes is counted, once, and its delivery counts nothing more', () => {
      const before = inDoubt('s', 'content-a');
      clock.advance(2000);
      const claimed = ledger.claimRow(before.id, 'w-retry', clock.now());
      assert.equal(claimed?.state, 'delivering');
      assert.equal(invalid('s', 'content-b'), true);
      assert.equal(invalid('s', 'content-b'), false);
      assert.deepEqual(
        [ledger.get(before.id)?.state, ledger.get(before.id)?.updatesAfterNotification],
        ['delivering', 1],
      );
      ledger.settle({
        id: before.id,
        workerId: 'w-retry',
        claimedPayloadHash: claimed?.payloadHash ?? '',
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'delivered', eventId: 'event-s', trackingId: 'TRK-s' },
      });
      const delivered = ledger.get(before.id);
      assert.deepEqual([delivered?.state, delivered?.updatesAfterNotification], ['delivered', 1]);
    });

    it('rejected after a counted change, then read as it was sent: the rejected copy is not sent again', () => {
      const before = inDoubt('r', 'content-a');
      assert.equal(invalid('r', 'content-b'), true);
      clock.advance(1000);
      const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
      settleRow(ledger, before.id, { outcome: 'dead', error: rejected }, { now: clock.now() });
      assert.equal(ledger.get(before.id)?.state, 'dead');
      // Changed back to the copy OpenCRVS decided on: as when the record never changed, it stays dead.
      for (let poll = 0; poll < 2; poll++) {
        const back = ledger.recordEvent({ ...eventInput('r'), sourceFingerprint: () => 'content-a' });
        assert.equal(back.change, 'unchanged');
        assert.deepEqual(
          [back.row.state, back.row.notifyTransactionId, back.row.updatesAfterNotification],
          ['dead', before.notifyTransactionId, 1],
        );
      }
      // A correction goes out, under the next generation; the change counted stays counted.
      const corrected = ledger.recordEvent({
        ...eventInput('r', payload('Corrected'), '2'),
        sourceFingerprint: () => 'content-c',
      });
      assert.equal(corrected.change, 'replaced');
      assert.match(corrected.row.notifyTransactionId, /:notify:r1$/);
      assert.deepEqual([corrected.row.state, corrected.row.updatesAfterNotification], ['pending', 1]);

      // The same when the change held back was a valid version (its hash, not the copy's, was kept).
      const valid = inDoubt('v', 'content-a');
      const second = { ...eventInput('v', payload('Second'), '2'), sourceFingerprint: () => 'content-b' };
      assert.equal(ledger.recordEvent(second).change, 'updated-after-notification');
      clock.advance(1000);
      settleRow(ledger, valid.id, { outcome: 'dead', error: rejected }, { now: clock.now() });
      const back = ledger.recordEvent({ ...eventInput('v'), sourceFingerprint: () => 'content-a' });
      assert.deepEqual([back.change, back.row.state], ['unchanged', 'dead']);
      assert.equal(ledger.recordEvent(second).change, 'replaced', 'the version held back still goes out');
    });

    it('rejected after a counted change, read invalid again (an overlap poll), then as it was sent: still not sent again', () => {
      const before = inDoubt('ra', 'content-a');
      assert.equal(invalid('ra', 'content-b'), true);
      clock.advance(1000);
      const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
      settleRow(ledger, before.id, { outcome: 'dead', error: rejected }, { now: clock.now() });
      // The invalid content read again: the dead row takes the mapping's error and drops its payload.
      assert.equal(invalid('ra', 'content-b'), true);
      assert.deepEqual([ledger.get(before.id)?.payload, ledger.get(before.id)?.lastError?.kind], [null, 'mapping']);
      const back = ledger.recordEvent({ ...eventInput('ra'), sourceFingerprint: () => 'content-a' });
      assert.deepEqual(
        [back.change, back.row.state, back.row.notifyTransactionId, back.row.lastError?.message],
        ['unchanged', 'dead', before.notifyTransactionId, 'rejected the NOTIFY'],
      );
      const corrected = { ...eventInput('ra', payload('Corrected'), '2'), sourceFingerprint: () => 'content-c' };
      const requeued = ledger.recordEvent(corrected);
      assert.deepEqual([requeued.change, requeued.row.state], ['replaced', 'pending']);
      assert.match(requeued.row.notifyTransactionId, /:notify:r1$/);
    });

    it('rejected before migration 19 (the attempt names no copy) after a counted change: the copy read again is not sent', () => {
      const before = inDoubt('pre', 'content-a');
      const second = { ...eventInput('pre', payload('Second'), '2'), sourceFingerprint: () => 'content-b' };
      assert.equal(ledger.recordEvent(second).change, 'updated-after-notification');
      clock.advance(1000);
      const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
      settleRow(ledger, before.id, { outcome: 'dead', error: rejected }, { now: clock.now() });
      // What a ledger migrated from schema 18 holds for a rejection recorded before the upgrade.
      const db = new Database(path);
      db.prepare('UPDATE ledger_attempts SET copy_hash = NULL WHERE row_id = ?').run(before.id);
      db.close();
      assert.deepEqual([ledger.get(before.id)?.payloadHash, ledger.get(before.id)?.payload], [null, payload()]);
      const first = { ...eventInput('pre'), sourceFingerprint: () => 'content-a' };
      for (let poll = 0; poll < 2; poll++) {
        const back = ledger.recordEvent(first);
        assert.deepEqual(
          [back.change, back.row.state, back.row.notifyTransactionId, back.row.lastError?.message],
          ['unchanged', 'dead', before.notifyTransactionId, 'rejected the NOTIFY'],
          `poll ${poll}`,
        );
      }
      // The rejection now names its copy: an invalid reading that drops the payload does not lose it.
      assert.equal(invalid('pre', 'content-d'), true);
      assert.equal(ledger.get(before.id)?.payload, null);
      const again = ledger.recordEvent(first);
      assert.deepEqual(
        [again.change, again.row.state, again.row.notifyTransactionId],
        ['unchanged', 'dead', before.notifyTransactionId],
      );
      assert.deepEqual(ledger.claimDue('w1', 10, clock.now() + 3_600_000), [], 'nothing is sent');
      // The version held back still goes out, under the next generation.
      const held = ledger.recordEvent(second);
      assert.deepEqual([held.change, held.row.state], ['replaced', 'pending']);
      assert.match(held.row.notifyTransactionId, /:notify:r1$/);
    });

    it('a row recorded before fingerprints were kept takes the first one and counts from the next change', () => {
      const before = inDoubt('p');
      assert.equal(invalid('p', 'content-b'), false, 'nothing to compare with: not taken for a change');
      assert.equal(ledger.get(before.id)?.updatesAfterNotification, 0);
      assert.equal(invalid('p', 'content-b'), false);
      assert.equal(invalid('p', 'content-c'), true);
      assert.equal(ledger.get(before.id)?.updatesAfterNotification, 1);
      assert.deepEqual(kept(ledger.get(before.id)), kept(before));
    });

    it('a withdrawal no longer holds once the source shows the record again, changed or not', () => {
      const withdraw = (subject: string) =>
        ledger.cancelUnsent({
          sourceId: 'emr',
          eventType: 'birth',
          subjectKey: `Patient/${subject}`,
          sourceRef: `Encounter/${subject}`,
          reason: 'merged into another record',
        });
      const same = inDoubt('w1', 'content-a');
      withdraw('w1');
      assert.equal(invalid('w1', 'content-a', officeClosed), false, 'nothing new of the record: no change of the pass');
      assert.deepEqual(
        [ledger.get(same.id)?.withdrawnReason, ledger.get(same.id)?.updatesAfterNotification],
        [null, 0],
      );
      const changed = inDoubt('w2', 'content-a');
      withdraw('w2');
      assert.equal(invalid('w2', 'content-b'), true);
      assert.deepEqual(
        [ledger.get(changed.id)?.withdrawnReason, ledger.get(changed.id)?.updatesAfterNotification],
        [null, 1],
      );
      // Not a record the context needs that could not be read: the withdrawal stands.
      const unread = inDoubt('w3', 'content-a');
      withdraw('w3');
      assert.equal(invalid('w3', undefined, 'Observation/1: could not be read'), false);
      assert.equal(ledger.get(unread.id)?.withdrawnReason, 'merged into another record');
    });

    it('one change of the content, read invalid (an office closed) then valid (reopened), counts once', () => {
      const row = inDoubt('c', 'content-a');
      assert.equal(invalid('c', 'content-b', officeClosed), true);
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1);
      // The office reopens: content-b now maps, to another payload than the copy kept. Nothing new at the source.
      const read = ledger.recordEvent({
        ...eventInput('c', payload('Corrected'), '2'),
        sourceFingerprint: () => 'content-b',
      });
      assert.equal(read.change, 'unchanged');
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1);
      assert.deepEqual(kept(ledger.get(row.id)).slice(0, 2), kept(row).slice(0, 2), 'the copy sent is kept');
      // …and that reading again is no change either.
      const again = ledger.recordEvent({
        ...eventInput('c', payload('Corrected'), '2'),
        sourceFingerprint: () => 'content-b',
      });
      assert.equal(again.change, 'unchanged');
    });

    it('a mapping change alone (the same content, another payload) counts nothing, in doubt or in flight', () => {
      const row = inDoubt('m', 'content-a');
      const read = ledger.recordEvent({
        ...eventInput('m', payload('Mapped otherwise')),
        sourceFingerprint: () => 'content-a',
      });
      assert.equal(read.change, 'unchanged');
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 0);
      assert.deepEqual(kept(ledger.get(row.id)).slice(0, 2), kept(row).slice(0, 2), 'the copy sent is kept');
      // The content changed too: counted, as before.
      const changed = ledger.recordEvent({
        ...eventInput('m', payload('Corrected')),
        sourceFingerprint: () => 'content-b',
      });
      assert.equal(changed.change, 'updated-after-notification');

      // Read while its first attempt is under way, then delivered: nothing to correct in OpenCRVS.
      const { row: sent } = ledger.recordEvent({ ...eventInput('f'), sourceFingerprint: () => 'content-a' });
      const [claimed] = ledger.claimDue('w1', 10).filter((r) => r.id === sent.id);
      assert.ok(claimed);
      const during = ledger.recordEvent({
        ...eventInput('f', payload('Mapped otherwise')),
        sourceFingerprint: () => 'content-a',
      });
      assert.equal(during.change, 'unchanged');
      ledger.settle({
        id: sent.id,
        workerId: 'w1',
        claimedPayloadHash: claimed.payloadHash,
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'delivered', eventId: 'e-f', trackingId: 'AAAAAA' },
      });
      assert.equal(ledger.get(sent.id)?.updatesAfterNotification, 0);
      assert.equal(ledger.get(sent.id)?.state, 'delivered');
    });
  });

  describe('an invalid reading of a delivered row: the source content decides, as for a valid one', () => {
    /** Row `subject` recorded from content `fingerprint` and delivered (or delivered-pending). */
    const delivered = (
      subject: string,
      fingerprint?: string,
      outcome: 'delivered' | 'delivered-pending' = 'delivered',
    ) => {
      const { row } = ledger.recordEvent({
        ...eventInput(subject),
        ...(fingerprint ? { sourceFingerprint: () => fingerprint } : {}),
      });
      settleRow(
        ledger,
        row.id,
        { outcome, eventId: `event-${subject}`, trackingId: `TRK-${subject}` },
        {
          now: clock.now(),
        },
      );
      return ledger.get(row.id) as LedgerRow;
    };
    /** What no reading of a delivered row may change: what OpenCRVS holds, and under which ids. */
    const kept = (row: LedgerRow | undefined) => [
      row?.state,
      row?.payload,
      row?.baseTransactionId,
      row?.notifyTransactionId,
      row?.eventId,
      row?.trackingId,
    ];

    it('a changed record read invalid is counted once, and read valid later it is unchanged', () => {
      const before = delivered('d', 'content-a');
      clock.advance(1000);
      const countedAt = clock.now();
      assert.equal(invalid('d', 'content-b'), true);
      const row = () => ledger.get(before.id);
      assert.deepEqual([row()?.updatesAfterNotification, row()?.updatedAfterNotificationAt], [1, countedAt]);
      assert.deepEqual(kept(row()), kept(before), 'the event OpenCRVS holds stands');
      assert.equal(row()?.payloadHash, before.payloadHash, 'an invalid reading names no payload');
      clock.advance(1000);
      assert.equal(invalid('d', 'content-b', officeClosed), false, 'the same content read again');
      // The record fixed in the source's next reading, its content what was counted: nothing new.
      const valid = ledger.recordEvent({
        ...eventInput('d', payload('Corrected'), '2'),
        sourceFingerprint: () => 'content-b',
      });
      assert.equal(valid.change, 'unchanged');
      assert.deepEqual([row()?.updatesAfterNotification, row()?.updatedAfterNotificationAt], [1, countedAt]);
      assert.deepEqual(kept(row()), kept(before), 'the valid reading sends nothing either');
      // Changed again: a second update, valid or not.
      assert.equal(invalid('d', 'content-c'), true);
      assert.equal(row()?.updatesAfterNotification, 2);
      assert.deepEqual([row()?.state, row()?.trackingId], ['delivered', 'TRK-d']);
    });

    it('the same content (an office closed since), a pre-017 row or an unread context counts nothing', () => {
      const same = delivered('s', 'content-a');
      clock.advance(1000);
      assert.equal(invalid('s', 'content-a', officeClosed), false);
      assert.deepEqual(
        [ledger.get(same.id)?.updatesAfterNotification, ledger.get(same.id)?.updatedAt],
        [0, same.updatedAt],
      );
      assert.deepEqual(kept(ledger.get(same.id)), kept(same));

      const old = delivered('p');
      assert.equal(invalid('p', 'content-b'), false, 'nothing to compare with: not taken for a change');
      assert.equal(invalid('p', 'content-b'), false);
      assert.equal(ledger.get(old.id)?.updatesAfterNotification, 0);
      assert.equal(invalid('p', 'content-c'), true, 'counts from the next change on');
      assert.equal(ledger.get(old.id)?.updatesAfterNotification, 1);
      assert.deepEqual(kept(ledger.get(old.id)), kept(old));

      const unread = delivered('u', 'content-a');
      assert.equal(invalid('u', undefined, 'Observation/1: could not be read'), false);
      assert.equal(
        ledger.recordInvalid({
          sourceId: 'emr',
          eventType: 'birth',
          subjectKey: 'Patient/u',
          sourceRef: 'Encounter/u',
          errors: [{ field: 'x', message: 'Observation/1: could not be read' }],
          kind: 'source-read',
          sourceFingerprint: () => 'content-b',
        }).changed,
        false,
        'a source-read error says nothing of the record',
      );
      assert.equal(ledger.get(unread.id)?.updatesAfterNotification, 0);
      // The content it last read is still what the next reading compares with.
      assert.equal(invalid('u', 'content-a', officeClosed), false);
    });

    it('a delivered-pending row is counted too, and a delivered row keeps the withdrawal settle counted', () => {
      const pendingCheck = delivered('q', 'content-a', 'delivered-pending');
      assert.equal(invalid('q', 'content-b'), true);
      assert.deepEqual(
        [ledger.get(pendingCheck.id)?.state, ledger.get(pendingCheck.id)?.updatesAfterNotification],
        ['delivered-pending', 1],
      );
      assert.deepEqual(kept(ledger.get(pendingCheck.id)), kept(pendingCheck));

      // Withdrawn while its NOTIFY was under way, then delivered: the withdrawal is what was counted.
      const { row } = ledger.recordEvent({ ...eventInput('w'), sourceFingerprint: () => 'content-a' });
      const claimed = ledger.claimRow(row.id, 'w1', clock.now());
      assert.ok(claimed);
      ledger.cancelUnsent({
        sourceId: 'emr',
        eventType: 'birth',
        subjectKey: 'Patient/w',
        sourceRef: 'Encounter/w',
        reason: 'merged into another record',
      });
      ledger.settle({
        id: row.id,
        workerId: 'w1',
        claimedPayloadHash: claimed.payloadHash,
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'delivered', eventId: 'event-w', trackingId: 'TRK-w' },
      });
      assert.deepEqual(
        [ledger.get(row.id)?.updatesAfterNotification, ledger.get(row.id)?.withdrawnReason],
        [1, 'merged into another record'],
      );
      assert.equal(invalid('w', 'content-b'), true);
      assert.deepEqual(
        [ledger.get(row.id)?.updatesAfterNotification, ledger.get(row.id)?.withdrawnReason],
        [2, 'merged into another record'],
      );
    });
  });

  describe('an invalid reading of a row being sent with no NOTIFY in doubt: the source content decides', () => {
    /** Row `subject` recorded from content-a, claimed by w1 for its first attempt. */
    const sending = (subject: string): LedgerRow => {
      const { row } = ledger.recordEvent({ ...eventInput(subject), sourceFingerprint: () => 'content-a' });
      const claimed = ledger.claimRow(row.id, 'w1', clock.now());
      assert.ok(claimed?.payload);
      return claimed;
    };
    /** Ends the attempt of `claimed` with `settlement`, as the worker does. */
    const settleClaimed = (claimed: LedgerRow, settlement: Settlement) =>
      ledger.settle({
        id: claimed.id,
        workerId: 'w1',
        step: 'notify',
        startedAt: clock.now(),
        claimedAttempts: claimed.attempts,
        claimedPayloadHash: claimed.payloadHash,
        ...(claimed.payload ? { claimedPayload: claimed.payload } : {}),
        settlement,
      });

    it('delivered: the change is counted once, OpenCRVS keeps the copy sent, and the content read again is nothing', () => {
      const claimed = sending('d');
      clock.advance(1000);
      assert.equal(invalid('d', 'content-b'), true);
      assert.equal(invalid('d', 'content-b', officeClosed), false, 'the same content read again');
      const delivered = settleClaimed(claimed, { outcome: 'delivered', eventId: 'event-d', trackingId: 'TRK-d' });
      assert.deepEqual([delivered?.state, delivered?.updatesAfterNotification], ['delivered', 1]);
      assert.deepEqual(delivered?.payload, claimed.payload, 'the copy OpenCRVS holds');
      // The content counted, read again invalid or (the office reopened) valid: nothing more.
      assert.equal(invalid('d', 'content-b'), false);
      const valid = ledger.recordEvent({
        ...eventInput('d', payload('Corrected'), '2'),
        sourceFingerprint: () => 'content-b',
      });
      assert.equal(valid.change, 'unchanged');
      assert.equal(ledger.get(claimed.id)?.updatesAfterNotification, 1);
      assert.equal(invalid('d', 'content-c'), true, 'changed again');
      assert.equal(ledger.get(claimed.id)?.updatesAfterNotification, 2);
    });

    it('not delivered: no stale copy is left to resend; a NOTIFY left in doubt keeps its copy and counts', () => {
      // 503: nothing stored. The row holds nothing to send (its next attempt makes it dead) until the
      // record is read again: invalid, it is dead with the mapping's error; valid, it is sent.
      const unavailable = { classification: 'retryable' as const, kind: 'server', status: 503, message: 'x' };
      const unstored = sending('f');
      assert.equal(invalid('f', 'content-b'), true);
      const failed = settleClaimed(unstored, retryLater(unavailable));
      assert.deepEqual(
        [failed?.state, failed?.payload, failed?.updatesAfterNotification],
        ['failed', null, 0],
        'OpenCRVS holds nothing: no update after notification',
      );
      assert.equal(invalid('f', 'content-b'), true);
      assert.deepEqual([ledger.get(unstored.id)?.state, ledger.get(unstored.id)?.lastError?.kind], ['dead', 'mapping']);

      // 500 to the NOTIFY: it may be stored, so the copy stays to be resent, and the change is counted.
      const doubt = sending('n');
      ledger.recordCreated(doubt.id, 'event-n', 'TRK-n');
      assert.equal(invalid('n', 'content-b'), true);
      const kept = settleClaimed(doubt, retryLater(server500));
      assert.deepEqual([kept?.state, kept?.updatesAfterNotification], ['failed', 1]);
      assert.deepEqual(kept?.payload, doubt.payload);
      assert.equal(invalid('n', 'content-b'), false);
      assert.equal(ledger.get(doubt.id)?.updatesAfterNotification, 1);
    });

    it('rejected: the row stays dead, and the record read again as the copy rejected is not sent again', () => {
      const claimed = sending('j');
      ledger.recordCreated(claimed.id, 'event-j', 'TRK-j');
      assert.equal(invalid('j', 'content-b'), true);
      const rejected = { classification: 'permanent' as const, kind: 'rejected', message: 'rejected the NOTIFY' };
      const settled = settleClaimed(claimed, { outcome: 'dead', error: rejected });
      // Nothing newer waits (the reading was invalid): no requeue under the next generation.
      assert.deepEqual(
        [settled?.state, settled?.payload, settled?.notifyTransactionId],
        ['dead', null, claimed.notifyTransactionId],
      );
      // Withdrawn at the source meanwhile, then read again: the source has it again, the mark goes.
      const input = { sourceId: 'emr', eventType: 'birth', subjectKey: 'Patient/j', sourceRef: 'Encounter/j' };
      ledger.cancelUnsent({ ...input, reason: 'entered in error' });
      assert.equal(ledger.get(claimed.id)?.withdrawnReason, 'entered in error');
      for (let poll = 0; poll < 2; poll++) {
        const back = ledger.recordEvent({ ...eventInput('j'), sourceFingerprint: () => 'content-a' });
        assert.deepEqual(
          [back.change, back.row.state, back.row.notifyTransactionId, back.row.lastError?.kind],
          ['unchanged', 'dead', claimed.notifyTransactionId, 'rejected'],
        );
        // It holds that copy again: an operator's replay can send it.
        assert.deepEqual(back.row.payload, claimed.payload);
        assert.equal(back.row.withdrawnReason, null, 'read again: no longer withdrawn');
      }
      assert.deepEqual(ledger.replay([claimed.id]).requeued, [claimed.id], 'a replay is the operator deciding');
      assert.match(ledger.get(claimed.id)?.notifyTransactionId ?? '', /:notify:r1$/);
    });

    it('the same content read invalid while it is sent (an office closed meanwhile) changes nothing', () => {
      const claimed = sending('s');
      assert.equal(invalid('s', 'content-a', officeClosed), false);
      assert.equal(invalid('s', undefined, 'Observation/1: could not be read'), false);
      const delivered = settleClaimed(claimed, { outcome: 'delivered', eventId: 'event-s', trackingId: 'TRK-s' });
      assert.deepEqual(
        [delivered?.state, delivered?.updatesAfterNotification, delivered?.payloadHash],
        ['delivered', 0, claimed.payloadHash],
      );
    });
  });

  it('a row withdrawn while in doubt, then back unchanged (a merge undone), is no longer withdrawn', () => {
    const { row } = ledger.recordEvent(eventInput('m'));
    settleRow(ledger, row.id, retryLater(server500), {
      now: clock.now(),
      created: { eventId: 'event-m', trackingId: 'TRKM' },
    });
    const input = { sourceId: 'emr', eventType: 'birth', subjectKey: 'Patient/m', sourceRef: 'Encounter/m' };
    ledger.cancelUnsent({ ...input, reason: 'merged into another record' });
    assert.equal(ledger.get(row.id)?.withdrawnReason, 'merged into another record');
    ledger.recordEvent(eventInput('m')); // the same payload again
    assert.equal(ledger.get(row.id)?.withdrawnReason, null, 'the worker will deliver it, not settle it withdrawn');
  });

  it('stores the hold in meta for the CLI and health to read', () => {
    assert.equal(ledger.getHold(), undefined);
    ledger.setHold({
      reason: 'forbidden (HTTP 403): missing scope',
      since: 5,
      kind: 'forbidden',
      status: 403,
      rowId: 1,
    });
    assert.deepEqual(ledger.getHold(), {
      reason: 'forbidden (HTTP 403): missing scope',
      since: 5,
      kind: 'forbidden',
      status: 403,
      rowId: 1,
    });
    ledger.setHold(undefined);
    assert.equal(ledger.getHold(), undefined);
    ledger.setMeta('x', 'y');
    assert.equal(ledger.getMeta('x'), 'y');
    ledger.setMeta('x', null);
    assert.equal(ledger.getMeta('x'), undefined);
  });
});

describe('ledger: opening', () => {
  it('names the file and store.path when SQLite cannot open it', () => {
    const missing = join(tmpdir(), `no-such-dir-${process.pid}`, 'bridge.db');
    assert.throws(
      () => openLedger(missing),
      (err: Error) => {
        assert.match(err.message, /^cannot open the ledger .*no-such-dir-\d+\/bridge\.db \(store\.path\): /);
        assert.match(err.message, /must exist and be writable/);
        return true;
      },
    );
  });

  it('refuses a file it cannot write at once (SQLite would open it read-only and fail every write later)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-ro-'));
    const bundle = await bundleForNobody('src/ledger/index.ts');
    try {
      const path = join(dir, 'bridge.db');
      openLedger(path).close();
      chmodSync(path, 0o444);
      chmodSync(dir, 0o777); // the directory stays writable: SQLite's -wal and -shm files can be made
      // Root may write any file: the opening runs as nobody then, from a bundle nobody may read.
      const open = `import { openLedger } from ${JSON.stringify(bundle.url)};
        try { openLedger(${JSON.stringify(path)}).close(); console.log('opened'); } catch (err) { console.log(err.message); }`;
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', open], {
        cwd: bundle.dir,
        ...(process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
      });
      const out = run.stdout.toString();
      assert.match(
        out,
        /^cannot open the ledger .*bridge\.db \(store\.path\): attempt to write a readonly database/,
        out + run.stderr,
      );
      assert.match(out, /writable by this user/);
    } finally {
      bundle.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says another process held the write lock when opening waited out the busy timeout', () => {
    const { ledger, path, cleanup } = tempLedger();
    const holder = new Database(path);
    try {
      holder.exec('BEGIN IMMEDIATE'); // a long backup, a stuck sqlite3 shell
      assert.throws(
        () => openLedger(path, { busyTimeoutMs: 50 }),
        /^Error: cannot open the ledger .* \(store\.path\): database is locked\. Another process held its write lock/,
      );
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
      ledger.close();
      cleanup();
    }
  });

  it('creates no ledger where its -wal is left without it (deleted while open, a restore of the -wal alone)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-wal-'));
    const path = join(dir, 'bridge.db');
    // A bridge's ledger with commits not yet checkpointed, deleted while it is open.
    const running = new Database(path);
    try {
      running.pragma('journal_mode = WAL');
      running.pragma('wal_autocheckpoint = 0');
      running.exec('CREATE TABLE kept (id INTEGER PRIMARY KEY)');
      running.exec('INSERT INTO kept DEFAULT VALUES');
      rmSync(path);
      const wal = readFileSync(`${path}-wal`);
      assert.throws(
        () => openLedger(path),
        (err: Error) => {
          assert.ok(err instanceof LedgerOpenError);
          assert.equal(
            err.message,
            `no ledger at ${path} (store.path), but its bridge.db-wal is there: the ledger was deleted or moved while a process had it open, or a restore copied the -wal alone. Restore bridge.db from the last backup (docs/deployment.md §8 "Backup and restore"; runbook: "Ledger gone, its -wal left"); to start a new, empty ledger instead, stop every bridge using it and remove bridge.db-wal and bridge.db-shm.`,
          );
          return true;
        },
      );
      // SQLite would have made an empty ledger and deleted the -wal: both are as they were.
      assert.equal(existsSync(path), false);
      assert.deepEqual(readFileSync(`${path}-wal`), wal);
    } finally {
      running.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a file that is no ledger, or a damaged one, is to be restored from a backup', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-bad-'));
    try {
      const path = join(dir, 'bridge.db');
      writeFileSync(path, 'this is not an SQLite file at all, but long enough to have a header of 100 bytes'.repeat(3));
      assert.throws(
        () => openLedger(path),
        /^Error: cannot open the ledger .*bridge\.db \(store\.path\): file is not a database\. The file is not a ledger or is damaged: restore it from a backup/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ledger: schema', () => {
  it('applies numbered migrations once and refuses a file written by a newer schema', () => {
    const { ledger, path, cleanup } = tempLedger();
    ledger.close();
    openLedger(path).close();
    const db = new Database(path);
    assert.deepEqual(db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all(), [
      { version: 1, name: 'initial' },
      { version: 2, name: 'requeue-generation-and-inbox' },
      { version: 3, name: 'write-backs' },
      { version: 4, name: 'drop-locked-index' },
      { version: 5, name: 'write-back-counts-index' },
      { version: 6, name: 'lookup-indexes' },
      { version: 7, name: 'rechecked-at' },
      { version: 8, name: 'withdrawn-reason' },
      { version: 9, name: 'mapping-warnings' },
      { version: 10, name: 'state-order-index' },
      { version: 11, name: 'pending-checks' },
      { version: 12, name: 'in-flight-copy' },
      { version: 13, name: 'read-by-source' },
      { version: 14, name: 'ledger-identity' },
      { version: 15, name: 'opencrvs-locations' },
      { version: 16, name: 'slow-record-strikes' },
      { version: 17, name: 'source-fingerprint' },
      { version: 18, name: 'inbox-body-bytes' },
      { version: 19, name: 'rejected-copy' },
      { version: 20, name: 'source-order-index' },
      { version: 21, name: 'updated-at-index' },
      { version: 22, name: 'single-call-at' },
      { version: 23, name: 'context-reads' },
      { version: 24, name: 'single-call-after' },
      { version: 25, name: 'queued-after-attempt' },
      { version: 26, name: 'updated-after-attempt' },
      { version: 27, name: 'earlier-tracking-ids' },
      { version: 28, name: 'waiting-queued-index' },
      { version: 29, name: 'write-back-note' },
      { version: 30, name: 'unreached-attempts' },
      { version: 31, name: 'subject-through-natural-key' },
      { version: 32, name: 'attempt-unreached' },
    ]);
    // The admin summary's per-source, per-outcome counts read the index alone.
    const plan = db
      .prepare('EXPLAIN QUERY PLAN SELECT source_id, outcome, COUNT(*) FROM write_backs GROUP BY source_id, outcome')
      .all() as Array<{ detail: string }>;
    assert.ok(
      plan.some((step) => step.detail.includes('COVERING INDEX write_backs_outcome')),
      JSON.stringify(plan),
    );
    // A lookup by reference or tracking ID (ListFilter.find) reads the natural key (the subject, no index of
    // its own since 031) and the indexes of the source resource and the tracking ID, not the table.
    const find = listQuery({ find: 'Patient/x', states: ['dead'] });
    const lookup = db.prepare(`EXPLAIN QUERY PLAN ${find.sql}`).all(find.params) as Array<{ detail: string }>;
    assert.ok(
      lookup.some((step) =>
        step.detail.includes(
          'USING COVERING INDEX ledger_rows_natural_key (source_id=? AND event_type=? AND subject_key=?)',
        ),
      ),
      JSON.stringify(lookup),
    );
    for (const index of ['ledger_rows_source_ref', 'ledger_rows_tracking']) {
      assert.ok(
        lookup.some((step) => step.detail.includes(`USING INDEX ${index}`)),
        JSON.stringify(lookup),
      );
    }
    assert.ok(!lookup.some((step) => /^SCAN (ledger_rows|r)\b/.test(step.detail)), JSON.stringify(lookup));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)").run();
    db.close();
    assert.throws(
      () => openLedger(path),
      /schema version 99 is newer than this bridge understands: .*restore the ledger backup taken before the upgrade/,
    );
    cleanup();
  });

  it('refuses a ledger whose migration of a known number is another change (another build took the number)', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      ledger.close();
      const db = new Database(path);
      const [latest] = [...MIGRATIONS].sort((a, b) => b.version - a.version);
      assert.ok(latest);
      db.prepare("UPDATE schema_migrations SET name = 'another-change' WHERE version = ?").run(latest.version);
      db.close();
      assert.throws(
        () => openLedger(path),
        new RegExp(
          `schema version ${latest.version} was applied as 'another-change', which this bridge knows as '${latest.name}': another build wrote this ledger`,
        ),
      );
      assert.throws(() => openLedger(path, { inspectOnly: true }), /was applied as 'another-change'/);
    } finally {
      cleanup();
    }
  });

  it("keeps a written write-back job's note in its own column, and moves the notes an older ledger kept as its last error (029)", () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const written = ledger.recordEvent(eventInput('Patient/1')).row.id;
      const abandoned = ledger.recordEvent(eventInput('Patient/2')).row.id;
      ledger.close();
      const note = 'Patient also holds another tracking id of urn:test:tracking-id: BOTHER1 (kept beside this one)';
      const error = 'FHIR write-back: Patient/2 no longer exists';
      const store = new WriteBackStore(path);
      try {
        store.enqueue(written, 'emr', 'TRK0001', 0);
        store.enqueue(abandoned, 'emr', 'TRK0002', 0);
        const [first, second] = store.claimDue(2, 0, 60_000);
        assert.ok(first && second);
        assert.ok(store.done(first, 'written', 1, undefined, note));
        assert.ok(store.done(second, 'abandoned', 1, error));
        // A note is no error: the job that was written has none.
        assert.deepEqual(
          [store.get(written), store.get(abandoned)].map((job) => [job?.lastError, job?.note]),
          [
            [null, note],
            [error, null],
          ],
        );
      } finally {
        store.close();
      }
      // As a bridge before 029 left them: the note in last_error.
      const db = new Database(path);
      db.exec(`UPDATE write_backs SET last_error = note WHERE note IS NOT NULL;
        ALTER TABLE write_backs DROP COLUMN note; DELETE FROM schema_migrations WHERE version = 29;`);
      db.close();
      openLedger(path).close();
      const upgraded = new WriteBackStore(path, { readOnly: true });
      try {
        assert.deepEqual(
          [upgraded.get(written), upgraded.get(abandoned)].map((job) => [job?.lastError, job?.note]),
          [
            [null, note],
            [error, null],
          ],
        );
      } finally {
        upgraded.close();
      }
    } finally {
      cleanup();
    }
  });

  it("counts a waiting row's failures that never reached OpenCRVS in its current budget when an older ledger is upgraded (030)", () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const { row } = ledger.recordEvent(eventInput('Patient/flaky'));
      const gateway = { classification: 'retryable', kind: 'server', status: 503, message: 'Bad Gateway' } as const;
      // A budget before a replay: its 503 is not this budget's.
      settleRow(ledger, row.id, { outcome: 'dead', error: { ...gateway, classification: 'permanent', status: 400 } });
      ledger.replay([row.id]);
      settleRow(ledger, row.id, { outcome: 'retry', error: gateway, nextRunAt: 0 });
      settleRow(ledger, row.id, {
        outcome: 'retry',
        error: { ...gateway, kind: 'timeout', status: undefined },
        nextRunAt: 0,
      });
      settleRow(ledger, row.id, { outcome: 'retry', error: { ...gateway, status: 500 }, nextRunAt: 0 });
      ledger.close();
      // As a bridge before 030 left it: no count kept.
      const db = new Database(path);
      db.exec(
        'ALTER TABLE ledger_rows DROP COLUMN unreached_attempts; DELETE FROM schema_migrations WHERE version = 30;',
      );
      db.close();
      const upgraded = openLedger(path);
      try {
        const found = upgraded.get(row.id);
        assert.deepEqual([found?.attempts, found?.unreachedAttempts], [3, 2]);
      } finally {
        upgraded.close();
      }
    } finally {
      cleanup();
    }
  });

  it('marks the attempts recorded before 032 that never reached OpenCRVS, as 030 counted them (032)', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const { row } = ledger.recordEvent(eventInput('Patient/flaky'));
      const gateway = { classification: 'retryable', kind: 'server', status: 503, message: 'Bad Gateway' } as const;
      settleRow(ledger, row.id, { outcome: 'retry', error: gateway, nextRunAt: 0 });
      settleRow(ledger, row.id, { outcome: 'retry', error: { ...gateway, kind: 'network' }, nextRunAt: 0 });
      settleRow(ledger, row.id, { outcome: 'retry', error: { ...gateway, status: 500 }, nextRunAt: 0 });
      settleRow(ledger, row.id, { outcome: 'held', error: { ...gateway, kind: 'timeout' } });
      ledger.close();
      // As a bridge before 032 left it: no attempt marked, the row's count kept (030).
      const db = new Database(path);
      db.exec('ALTER TABLE ledger_attempts DROP COLUMN unreached; DELETE FROM schema_migrations WHERE version = 32;');
      db.close();
      const upgraded = openLedger(path);
      try {
        // The held attempt is no attempt of the budget: not one of those not counted either.
        assert.deepEqual(
          upgraded.attempts(row.id).map((a) => [a.outcome, a.unreached]),
          [
            ['retry', true],
            ['retry', true],
            ['retry', false],
            ['held', false],
          ],
        );
      } finally {
        upgraded.close();
      }
    } finally {
      cleanup();
    }
  });

  it('an inspecting open (the ledger command) never upgrades an older ledger under its bridge', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const { row } = ledger.recordEvent(eventInput('Patient/1'));
      ledger.close();
      const db = new Database(path);
      // As an older bridge left it, with a NOTIFY answered pending under it.
      db.exec(`DELETE FROM schema_migrations WHERE version >= 10;
        DROP INDEX ledger_rows_state_id; DROP INDEX ledger_rows_pending_check; DROP INDEX ledger_rows_source_id;
        ALTER TABLE ledger_rows DROP COLUMN pending_check_at; ALTER TABLE ledger_rows DROP COLUMN pending_checks;
        ALTER TABLE ledger_rows DROP COLUMN in_flight_payload; ALTER TABLE ledger_rows DROP COLUMN read_by_source;
        ALTER TABLE ledger_rows DROP COLUMN source_fingerprint; ALTER TABLE ledger_attempts DROP COLUMN copy_hash;
        ALTER TABLE ledger_rows DROP COLUMN single_call_at; ALTER TABLE ledger_rows DROP COLUMN single_call_after;
        ALTER TABLE ledger_rows DROP COLUMN queued_after_attempt; ALTER TABLE ledger_rows DROP COLUMN updated_after_attempt;
        ALTER TABLE ledger_rows DROP COLUMN unreached_attempts; ALTER TABLE ledger_attempts DROP COLUMN unreached;
        ALTER TABLE write_backs DROP COLUMN earlier_tracking_ids; ALTER TABLE write_backs DROP COLUMN note;
        DROP INDEX inbox_waiting_bytes; ALTER TABLE inbox DROP COLUMN body_bytes;
        DROP TABLE ledger_identity; DROP TABLE opencrvs_locations; DROP TABLE slow_records; DROP TABLE context_reads;
        UPDATE ledger_rows SET state = 'delivered-pending', event_id = 'e1', tracking_id = 'T1';`);
      db.close();
      assert.throws(
        () => openLedger(path, { inspectOnly: true }),
        new RegExp(
          `the ledger .* was written by an older bridge \\(schema 9, this one reads ${latestSchema()}\\): this command only reads it`,
        ),
      );
      const versions = () => {
        const check = new Database(path, { readonly: true });
        const n = (check.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
        check.close();
        return n;
      };
      assert.equal(versions(), 9, 'left as it was');
      const upgraded = openLedger(path); // the bridge itself (serve, sync) upgrades it
      // A NOTIFY answered pending before this bridge asked about such things is asked about at once.
      assert.deepEqual(
        upgraded.duePendingChecks(10, 1).map((due) => due.row.id),
        [row.id],
      );
      upgraded.close();
      assert.equal(versions(), latestSchema());
      openLedger(path, { inspectOnly: true }).close();
    } finally {
      cleanup();
    }
  });
});

describe('ledger: what opening says of its schema', () => {
  const latest = Math.max(...MIGRATIONS.map((m) => m.version));
  /** The messages of what `open` logs at info and above. */
  function said(open: (logger: Logger) => void): string[] {
    const lines: string[] = [];
    open(createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } }));
    return lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
  }

  it('says a new ledger in one line, not a line per migration', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-new-'));
    try {
      const path = join(dir, 'bridge.db');
      assert.deepEqual(
        said((logger) => openLedger(path, { logger }).close()),
        [`ledger created at schema ${latest}`],
      );
      assert.deepEqual(
        said((logger) => openLedger(path, { logger }).close()),
        [],
        'nothing once current',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates a new ledger in one commit, so a migration that fails leaves no part of the schema', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-new-'));
    try {
      const db = new Database(join(dir, 'bridge.db'));
      const broken = { version: 999, name: 'broken', sql: 'CREATE TABLE nowhere (a); SELECT no_such_function();' };
      assert.throws(() => migrate(db, [...MIGRATIONS, broken], silentLogger, Date.now()), /no_such_function/);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'schema_migrations'");
      assert.deepEqual(tables.all(), []);
      assert.deepEqual(db.prepare('SELECT version FROM schema_migrations').all(), []);
      // An existing ledger keeps each migration it took before the one that failed, as an upgrade did.
      migrate(db, MIGRATIONS.slice(0, 2), silentLogger, Date.now());
      assert.throws(() => migrate(db, [...MIGRATIONS, broken], silentLogger, Date.now()), /no_such_function/);
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      assert.deepEqual(
        versions,
        MIGRATIONS.map((m) => m.version).sort((a, b) => a - b),
      );
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says an upgrade in one line, naming the migrations it applied (what CHANGELOG.md explains)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-upgrade-'));
    try {
      const path = join(dir, 'bridge.db');
      const db = new Database(path);
      migrate(db, MIGRATIONS.slice(0, -3), silentLogger, Date.now()); // the ledger of an older release (numbers may skip)
      db.close();
      const applied = MIGRATIONS.slice(-3)
        .map((m) => `${String(m.version).padStart(3, '0')} ${m.name}`)
        .join(', ');
      assert.deepEqual(
        said((logger) => openLedger(path, { logger }).close()),
        [
          `ledger migrated from schema ${MIGRATIONS.at(-4)?.version} to ${latest}: ${applied} (CHANGELOG.md says what each means for an upgrade)`,
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ledger: OpenCRVS location answers', () => {
  const office = { id: 'office-1', locationType: 'CRVS_OFFICE' };

  it('keeps one row per reference, written only when its answer changes, and never an older copy of the rest', () => {
    const { ledger, path, cleanup } = tempLedger();
    const beside = openLedger(path); // a replay's process beside serve's
    try {
      const answers = ledger.locationAnswers;
      assert.equal(answers.save('https://a', 'R1', office, 10), true);
      assert.equal(answers.save('https://a', 'R2', null, 10), true);
      assert.equal(answers.save('https://a', 'R1', { ...office }, 10), false, 'the same answer writes nothing');
      // The other process learns R3 and a new answer for R1; this one then learns R4: nothing is lost.
      assert.equal(beside.locationAnswers.save('https://a', 'R3', null, 10), true);
      assert.equal(beside.locationAnswers.save('https://a', 'R1', null, 10), true);
      assert.equal(answers.save('https://a', 'R4', office, 10), true);
      assert.deepEqual(answers.load('https://a', 10), [
        ['R2', null],
        ['R3', null],
        ['R1', null],
        ['R4', office],
      ]);
      assert.deepEqual(answers.load('https://other', 10), [], "another OpenCRVS's answers are its own");
      // Bounded: the answer changed longest ago is forgotten first.
      assert.equal(answers.save('https://a', 'R5', office, 3), true);
      assert.deepEqual(
        answers.load('https://a', 10).map(([ref]) => ref),
        ['R1', 'R4', 'R5'],
      );
      assert.deepEqual(
        answers.load('https://a', 2).map(([ref]) => ref),
        ['R4', 'R5'],
      );
    } finally {
      beside.close();
      cleanup();
    }
  });

  it('takes over the answers an older bridge kept in meta, leaving out what it cannot read', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      ledger.close();
      const downgrade = (value: string) => {
        const db = new Database(path);
        db.exec(`DELETE FROM schema_migrations WHERE version = 15; DROP TABLE opencrvs_locations;`);
        db.prepare("INSERT INTO meta (key, value, updated_at) VALUES ('opencrvs:locations', ?, 0)").run(value);
        db.close();
      };
      downgrade(
        JSON.stringify({
          opencrvs: 'https://a',
          known: [['R1', 'office-1', 'CRVS_OFFICE'], ['R2', null], ['R3', 'id-without-type'], 'R4', [5], ['R6', null]],
        }),
      );
      let upgraded = openLedger(path);
      assert.deepEqual(upgraded.locationAnswers.load('https://a', 10), [
        ['R1', office],
        ['R2', null],
        ['R6', null],
      ]);
      assert.equal(upgraded.getMeta('opencrvs:locations'), undefined, 'the meta value is gone');
      upgraded.close();
      for (const unreadable of ['not json', JSON.stringify({ opencrvs: 'https://a', known: { R1: 1 } }), '[1]']) {
        downgrade(unreadable);
        upgraded = openLedger(path);
        assert.deepEqual(upgraded.locationAnswers.load('https://a', 10), [], unreadable);
        upgraded.close();
      }
    } finally {
      cleanup();
    }
  });
});

describe('ledger: requeue generations', () => {
  it('gives a replayed dead row a new NOTIFY transactionId and keeps its create id', () => {
    const { ledger, cleanup } = tempLedger();
    const { row } = ledger.recordEvent({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/gen-1',
      sourceRef: 'Patient/gen-1',
      payloadHash: 'h1',
      payload: { declaration: { 'child.dob': '2026-01-02' }, office: 'office-1' },
    });
    assert.equal(row.notifyTransactionId, `${row.baseTransactionId}:notify`);
    const claimed = ledger.claimDue('w1', 1);
    assert.equal(claimed.length, 1);
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: 'h1',
      step: 'notify',
      startedAt: Date.now(),
      settlement: {
        outcome: 'dead',
        error: { classification: 'permanent', kind: 'rejected', message: 'Rejected by the country configuration' },
      },
    });
    assert.equal(ledger.get(row.id)?.state, 'dead');
    assert.deepEqual(ledger.replay([row.id]).requeued, [row.id]);
    const first = ledger.get(row.id);
    assert.equal(first?.notifyTransactionId, `${row.baseTransactionId}:notify:r1`);
    assert.equal(first?.createTransactionId, row.createTransactionId);
    assert.equal(first?.requeues, 1);
    ledger.claimDue('w1', 1);
    ledger.settle({
      id: row.id,
      workerId: 'w1',
      claimedPayloadHash: 'h1',
      step: 'notify',
      startedAt: Date.now(),
      settlement: {
        outcome: 'dead',
        error: { classification: 'permanent', kind: 'rejected', message: 'Rejected again' },
      },
    });
    ledger.replay('dead');
    assert.equal(ledger.get(row.id)?.notifyTransactionId, `${row.baseTransactionId}:notify:r2`);
    cleanup();
  });
});

describe('ledger: settle delay', () => {
  it('holds a new event back for the settle time so a birth written piecemeal is complete', () => {
    let clock = 1_000_000;
    const dir = mkdtempSync(join(tmpdir(), 'ledger-settle-'));
    const ledger = openLedger(join(dir, 'l.db'), { now: () => clock, settleSeconds: 60 });
    const { row } = ledger.recordEvent({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/settle-1',
      sourceRef: 'Patient/settle-1',
      payloadHash: 'h1',
      payload: { declaration: { 'child.dob': '2026-01-02' }, office: 'office-1' },
    });
    assert.equal(row.nextRunAt, clock + 60_000);
    assert.equal(ledger.claimDue('w1', 10).length, 0);
    clock += 60_000;
    assert.equal(ledger.claimDue('w1', 10).length, 1);
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('ledger: inbox', () => {
  it('reads waiting notifications through their partial index, not by walking the processed ones', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const db = new Database(path, { readonly: true });
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${DUE_SQL}`)
        .all(0, 1)
        .map((row) => (row as { detail: string }).detail)
        .join('; ');
      db.close();
      assert.match(plan, /USING INDEX inbox_due/, plan);
      // And it answers in arrival order, waiting rows only.
      const first = ledger.inbox.add('emr', { n: 1 }, 10);
      const second = ledger.inbox.add('emr', { n: 2 }, 20);
      ledger.inbox.done(first, 30);
      assert.deepEqual(
        ledger.inbox.due(10, 100).map((row) => row.id),
        [second],
      );
    } finally {
      cleanup();
    }
  });

  it('prunes processed notifications older than the bound, at most `limit`, never a waiting one', () => {
    const { ledger, cleanup } = tempLedger();
    try {
      const ids = [1, 2, 3, 4].map((n) => ledger.inbox.add('emr', { n }, n));
      for (const id of ids.slice(0, 3)) ledger.inbox.done(id, 50);
      assert.equal(ledger.inbox.prune(40), 0, 'processed at 50: not older than 40');
      assert.equal(ledger.inbox.prune(60, 2), 2);
      assert.equal(ledger.inbox.prune(60, 2), 1);
      assert.equal(ledger.inbox.prune(1_000), 0, 'the waiting one stays');
      assert.equal(ledger.inbox.backlog().depth, 1);
    } finally {
      cleanup();
    }
  });

  // Processed rows are kept a day (the retention) and nothing reads their bodies again: a sender holding
  // the secret could leave a day of bodies at the 1 MB limit on disk, past the bound on waiting ones.
  it('keeps a summary of a processed or abandoned notification, not its whole body', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const refs = Array.from({ length: 20_000 }, (_, i) => `Patient/p-${String(i).padStart(12, '0')}`);
      const big = (n: number) => ({
        kind: 'event',
        style: 'backport',
        refs,
        subscription: 'Subscription/s1',
        eventNumbers: [n],
        deleted: true,
      });
      const done = ledger.inbox.add('emr', big(1), 10);
      const batch = ledger.inbox.add('emr', big(2), 11);
      const abandoned = ledger.inbox.add('emr', big(3), 12);
      const waiting = ledger.inbox.add('emr', big(4), 13);
      const small = ledger.inbox.add('emr', { kind: 'heartbeat', style: 'backport', eventsSinceStart: 4 }, 14);
      const storedSize = () => {
        const db = new Database(path, { readonly: true });
        try {
          const rows = db
            .prepare<[], { id: number; size: number; bodyBytes: number; body: string }>(
              'SELECT id, length(CAST(body AS BLOB)) AS size, body_bytes AS bodyBytes, body FROM inbox',
            )
            .all();
          return new Map(rows.map((row) => [row.id, row]));
        } finally {
          db.close();
        }
      };
      const before = storedSize().get(done)?.size ?? 0;
      assert.ok(before > 400_000, `stored ${before} bytes`);

      ledger.inbox.done(done, 20);
      ledger.inbox.doneAll([batch, small], 20);
      ledger.inbox.abandon(abandoned, 'read failed', 20);

      const after = storedSize();
      const summary = {
        kind: 'event',
        style: 'backport',
        refs: { items: 20_000 },
        subscription: 'Subscription/s1',
        deleted: true,
      };
      for (const [id, n] of [
        [done, 1],
        [batch, 2],
        [abandoned, 3],
      ] as const) {
        const row = after.get(id);
        assert.ok(row && row.size < 300, `row ${id} stores ${row?.size} bytes`);
        assert.equal(row.bodyBytes, 0);
        assert.deepEqual(JSON.parse(row.body), { ...summary, eventNumbers: [n] });
      }
      assert.deepEqual(JSON.parse(after.get(small)?.body ?? ''), {
        kind: 'heartbeat',
        style: 'backport',
        eventsSinceStart: 4,
      });
      // The waiting one is whole, and read back whole; it alone counts in the backlog.
      assert.equal(after.get(waiting)?.size, before);
      const [due] = ledger.inbox.due(10, 100);
      assert.deepEqual(due?.body, big(4));
      assert.deepEqual(ledger.inbox.backlog(), { depth: 1, bytes: before });
      // Processed rows stay until the retention prunes them.
      assert.equal(ledger.inbox.prune(30), 4);
    } finally {
      cleanup();
    }
  });

  it('shrinks a stored body that is no JSON object to {} rather than fail to mark it', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const ids = [ledger.inbox.add('emr', { kind: 'ping' }, 1), ledger.inbox.add('emr', ['a'], 2)];
      const db = new Database(path);
      try {
        db.prepare("UPDATE inbox SET body = 'not json' WHERE id = ?").run(ids[0]);
      } finally {
        db.close();
      }
      ledger.inbox.doneAll(ids, 5);
      assert.equal(ledger.inbox.backlog().depth, 0);
      const read = new Database(path, { readonly: true });
      try {
        assert.deepEqual(read.prepare('SELECT body FROM inbox ORDER BY id').pluck().all(), ['{}', '{}']);
      } finally {
        read.close();
      }
    } finally {
      cleanup();
    }
  });
});

describe('ledger: slow records', () => {
  const strikes = (subjectRef: string, struckAt: number, n = 1) => ({
    mappingId: 'birth',
    subjectRef,
    strikes: n,
    struckAt,
  });

  it("keeps a source's last struck records, forgets old ones (every source's) and ones struck in the future", () => {
    const { ledger, cleanup } = tempLedger();
    try {
      const { slowRecords } = ledger;
      slowRecords.write(
        'emr',
        [1, 2, 3, 4].map((n) => strikes(`Patient/${n}`, 1_000 + n, n)),
        [],
      );
      slowRecords.write('other', [strikes('Patient/old', 10), strikes('Patient/new', 1_003)], []);
      slowRecords.write('emr', [strikes('Patient/later', 50_000)], []);
      const bounds = { before: 1_002, after: 10_000, keep: 2 };
      assert.deepEqual(
        slowRecords.load('emr', bounds).map((r) => [r.subjectRef, r.strikes, r.struckAt]),
        [
          ['Patient/3', 3, 1_003],
          ['Patient/4', 4, 1_004],
        ],
        'oldest first; 1 older than `before`, 2 beyond `keep`, `later` after `after`',
      );
      assert.deepEqual(
        slowRecords.load('other', { ...bounds, keep: 10 }).map((r) => r.subjectRef),
        ['Patient/new'],
        "another source's old one is forgotten with the first load",
      );
      // Written again: a strike more; cleared: gone, after the writes of the same call.
      slowRecords.write(
        'emr',
        [strikes('Patient/3', 1_500, 4), strikes('Patient/5', 1_600)],
        [
          { mappingId: 'birth', subjectRef: 'Patient/4' },
          { mappingId: 'birth', subjectRef: 'Patient/5' },
        ],
      );
      assert.deepEqual(
        slowRecords.load('emr', { ...bounds, keep: 10 }).map((r) => [r.subjectRef, r.strikes]),
        [['Patient/3', 4]],
      );
    } finally {
      cleanup();
    }
  });
});

describe('ledger: context reads (the rows a changed record concerns)', () => {
  const readersOf = (ledger: Ledger, ref: string, sourceId = 'emr', limit = 10) =>
    ledger.contextReaders(sourceId, ref, limit).map((r) => r.subjectKey);
  const refsOf = (path: string, rowId: number) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT ref, source_id FROM context_reads WHERE row_id = ? ORDER BY ref').all(rowId);
    } finally {
      db.close();
    }
  };

  it("keeps each reading's set with the row, replaced by the next reading, and finds the rows by a record", () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const child1 = ledger.recordEvent({
        ...eventInput('c1'),
        contextReads: ['Patient/mother', 'Encounter/maternity'],
      }).row;
      const child2 = ledger.recordEvent({
        ...eventInput('c2'),
        contextReads: ['Patient/mother', 'Encounter/maternity'],
      }).row;
      assert.deepEqual(ledger.contextReaders('emr', 'Patient/mother', 10), [
        { eventType: 'birth', subjectKey: 'Patient/c1', mappingId: 'birth.fhir' },
        { eventType: 'birth', subjectKey: 'Patient/c2', mappingId: 'birth.fhir' },
      ]);
      assert.deepEqual(readersOf(ledger, 'Patient/mother', 'emr', 1), ['Patient/c1'], 'the oldest, up to the limit');
      assert.deepEqual(readersOf(ledger, 'Patient/mother', 'other'), [], "another source's Patient/mother");
      // Read again with her Patient no longer reached (the encounter's subject corrected): the set is this
      // reading's, whatever the row's change (here none: the payload is the same).
      const again = ledger.recordEvent({ ...eventInput('c1'), contextReads: ['Encounter/maternity'] });
      assert.equal(again.change, 'unchanged');
      assert.deepEqual(readersOf(ledger, 'Patient/mother'), ['Patient/c2']);
      assert.deepEqual(readersOf(ledger, 'Encounter/maternity'), ['Patient/c1', 'Patient/c2']);
      // A reading that says nothing of the context (none given) leaves the set; an empty one clears it.
      ledger.recordEvent(eventInput('c1'));
      assert.deepEqual(refsOf(path, child1.id), [{ ref: 'Encounter/maternity', source_id: 'emr' }]);
      ledger.recordEvent({ ...eventInput('c1'), contextReads: [] });
      assert.deepEqual(refsOf(path, child1.id), []);
      // An invalid reading keeps its set too, as read by the source that read it (a shared record).
      ledger.recordInvalid({
        sourceId: 'emr',
        eventType: 'birth',
        subjectKey: 'Patient/c2',
        sourceRef: 'Encounter/c2',
        errors: [{ field: 'child.dob', message: 'required' }],
        contextReads: ['Patient/mother-2'],
        contextReadBy: 'emr-b',
      });
      assert.deepEqual(refsOf(path, child2.id), [{ ref: 'Patient/mother-2', source_id: 'emr-b' }]);
      assert.deepEqual(readersOf(ledger, 'Patient/mother-2', 'emr-b'), ['Patient/c2']);
      const fresh = ledger.recordInvalid({
        sourceId: 'emr',
        eventType: 'birth',
        subjectKey: 'Patient/c3',
        sourceRef: 'Encounter/c3',
        errors: [{ field: 'child.dob', message: 'required' }],
        contextReads: ['Patient/mother-2'],
      }).row;
      assert.deepEqual(refsOf(path, fresh.id), [{ ref: 'Patient/mother-2', source_id: 'emr' }]);
      // A rename moves what the source read with its rows.
      ledger.sources.rename('emr', 'hospital-a', 1000);
      assert.deepEqual(readersOf(ledger, 'Patient/mother-2', 'hospital-a'), ['Patient/c3']);
      assert.deepEqual(readersOf(ledger, 'Patient/mother-2', 'emr'), []);
      assert.deepEqual(readersOf(ledger, 'Patient/mother-2', 'emr-b'), ['Patient/c2'], "another source's stay");
    } finally {
      cleanup();
    }
  });

  it('lists the distinct records of one type a source read, in ref order from a keyset, through its index', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      const dhis2 = (child: string, refs: string[], contextReadBy?: string) =>
        ledger.recordEvent({
          ...eventInput(child),
          sourceId: 'hmis',
          subjectKey: `TrackedEntity/${child}`,
          contextReads: refs,
          ...(contextReadBy ? { contextReadBy } : {}),
        });
      dhis2('c1', ['TrackedEntity/mB', 'Other/x']);
      dhis2('c2', ['TrackedEntity/mB']); // twins: one mother, listed once
      dhis2('c3', ['TrackedEntity/mA', 'TrackedEntity/mC']);
      dhis2('c4', ['TrackedEntity/mD'], 'hmis-b'); // last read by another source
      const refs = (after: string, limit: number, sourceId = 'hmis') =>
        ledger.contextReadRefs(sourceId, 'TrackedEntity/', after, limit);
      assert.deepEqual(refs('', 10), ['TrackedEntity/mA', 'TrackedEntity/mB', 'TrackedEntity/mC']);
      assert.deepEqual(refs('', 2), ['TrackedEntity/mA', 'TrackedEntity/mB']);
      assert.deepEqual(refs('TrackedEntity/mB', 2), ['TrackedEntity/mC']);
      assert.deepEqual(refs('TrackedEntity/mC', 2), []);
      assert.deepEqual(refs('', 10, 'hmis-b'), ['TrackedEntity/mD']);
      ledger.close();
      const db = new Database(path, { readonly: true });
      const params = {
        sourceId: 'hmis',
        after: '',
        prefix: 'TrackedEntity/',
        upper: 'TrackedEntity0',
        since: 0,
        limit: 100,
      };
      const steps = db.prepare(`EXPLAIN QUERY PLAN ${CONTEXT_READ_REFS_SQL}`).all(params) as Array<{ detail: string }>;
      const plan = steps.map((step) => step.detail).join('; ');
      db.close();
      assert.match(plan, /USING COVERING INDEX context_reads_ref \(source_id=\? AND ref>\? AND ref<\?\)/);
      assert.match(plan, /SEARCH r (EXISTS )?USING INTEGER PRIMARY KEY \(rowid=\?\)/, "each entry's row by its id");
      assert.doesNotMatch(plan, /TEMP B-TREE/);
      assert.doesNotMatch(plan, /SCAN r\b/);
    } finally {
      cleanup();
    }
  });

  it(`lists only the records read by a row updated in the last ${CONTEXT_READ_WINDOW_DAYS} days`, () => {
    const clock = testClock();
    const { ledger, cleanup } = tempLedger(clock);
    try {
      const dhis2 = (child: string, refs: string[]) =>
        ledger.recordEvent({
          ...eventInput(child),
          sourceId: 'hmis',
          subjectKey: `TrackedEntity/${child}`,
          contextReads: refs,
        }).row;
      const old = dhis2('c1', ['TrackedEntity/mOld', 'TrackedEntity/mBoth']);
      settleRow(ledger, old.id, { outcome: 'delivered', eventId: 'e1', trackingId: 't1' });
      const touched = dhis2('c2', ['TrackedEntity/mTouched']);
      clock.advance(CONTEXT_READ_WINDOW_DAYS * 86_400_000 - 1000);
      settleRow(ledger, touched.id, { outcome: 'delivered', eventId: 'e2', trackingId: 't2' }); // sent: updated within the window
      clock.advance(2000);
      const fresh = dhis2('c3', ['TrackedEntity/mBoth', 'TrackedEntity/mNew']);
      settleRow(ledger, fresh.id, { outcome: 'delivered', eventId: 'e3', trackingId: 't3' });
      const refs = () => ledger.contextReadRefs('hmis', 'TrackedEntity/', '', 10);
      assert.deepEqual(refs(), ['TrackedEntity/mBoth', 'TrackedEntity/mNew', 'TrackedEntity/mTouched']);
      assert.equal(ledger.get(old.id)?.id, old.id, 'the row itself is kept');
      clock.advance(CONTEXT_READ_WINDOW_DAYS * 86_400_000 + 1);
      assert.deepEqual(refs(), []);
      // A reading begun earlier asks from its own start (sources/dhis2/poller.ts): the window before it.
      const since = clock.now() - 3 * CONTEXT_READ_WINDOW_DAYS * 86_400_000;
      assert.deepEqual(ledger.contextReadRefs('hmis', 'TrackedEntity/', '', 10, since), [
        'TrackedEntity/mBoth',
        'TrackedEntity/mNew',
        'TrackedEntity/mOld',
        'TrackedEntity/mTouched',
      ]);
    } finally {
      cleanup();
    }
  });

  it(`leaves out a row untouched for ${CONTEXT_READ_WINDOW_DAYS} days: a mother's change years on corrects no birth`, () => {
    const clock = testClock();
    const { ledger, cleanup } = tempLedger(clock);
    try {
      const old = ledger.recordEvent({ ...eventInput('c1'), contextReads: ['Patient/mother'] }).row;
      settleRow(ledger, old.id, { outcome: 'delivered', eventId: 'e1', trackingId: 't1' });
      const touched = ledger.recordEvent({ ...eventInput('c2'), contextReads: ['Patient/mother'] }).row;
      clock.advance(CONTEXT_READ_WINDOW_DAYS * 86_400_000 - 1000);
      settleRow(ledger, touched.id, { outcome: 'delivered', eventId: 'e2', trackingId: 't2' });
      assert.deepEqual(readersOf(ledger, 'Patient/mother'), ['Patient/c1', 'Patient/c2']);
      clock.advance(2000);
      assert.deepEqual(readersOf(ledger, 'Patient/mother'), ['Patient/c2'], `c1 (#${old.id}) untouched for a year`);
      clock.advance(CONTEXT_READ_WINDOW_DAYS * 86_400_000);
      assert.deepEqual(readersOf(ledger, 'Patient/mother'), []);
      // A row still waiting (or dead) stays a reader however long it waits: her correction may be what it needs.
      const waiting = ledger.recordEvent({ ...eventInput('c3'), contextReads: ['Patient/mother'] }).row;
      const refused = { classification: 'permanent', kind: 'bad-request', message: 'no' } as const;
      settleRow(ledger, waiting.id, { outcome: 'dead', error: refused });
      clock.advance(2 * CONTEXT_READ_WINDOW_DAYS * 86_400_000);
      assert.deepEqual(readersOf(ledger, 'Patient/mother'), ['Patient/c3']);
      assert.deepEqual(ledger.contextReadRefs('emr', 'Patient/', '', 10), ['Patient/mother']);
    } finally {
      cleanup();
    }
  });

  it('leaves out a row an operator dismissed (its mapping again would requeue it), not a dead one', () => {
    const { ledger, cleanup } = tempLedger();
    try {
      const rows = ['c1', 'c2', 'c3'].map(
        (s) => ledger.recordEvent({ ...eventInput(s), contextReads: ['Patient/mother'] }).row,
      );
      const [c1, c2] = rows;
      assert.ok(c1 && c2);
      const refused = { classification: 'permanent', kind: 'bad-request', message: 'no' } as const;
      for (const row of [c1, c2]) settleRow(ledger, row.id, { outcome: 'dead', error: refused });
      assert.deepEqual(ledger.dismiss([c2.id], 'duplicate of #12').dismissed, [c2.id]);
      // Dead c1 is read again (the mother's correction may be what fixes it); dismissed c2 is not, nor counted
      // against the limit.
      assert.deepEqual(readersOf(ledger, 'Patient/mother', 'emr', 2), ['Patient/c1', 'Patient/c3']);
      assert.deepEqual(ledger.undismiss([c2.id]).restored, [c2.id]);
      assert.deepEqual(readersOf(ledger, 'Patient/mother'), ['Patient/c1', 'Patient/c2', 'Patient/c3'], 'undone');
    } finally {
      cleanup();
    }
  });

  it('lists no record read only by rows an operator dismissed (nothing would be mapped again for it)', () => {
    const { ledger, cleanup } = tempLedger();
    try {
      const dhis2 = (child: string, refs: string[]) =>
        ledger.recordEvent({
          ...eventInput(child),
          sourceId: 'hmis',
          subjectKey: `TrackedEntity/${child}`,
          contextReads: refs,
        }).row;
      const lone = dhis2('c1', ['TrackedEntity/mLone']);
      const twin = dhis2('c2', ['TrackedEntity/mShared']);
      dhis2('c3', ['TrackedEntity/mShared']);
      const refused = { classification: 'permanent', kind: 'bad-request', message: 'no' } as const;
      for (const row of [lone, twin]) settleRow(ledger, row.id, { outcome: 'dead', error: refused });
      const refs = () => ledger.contextReadRefs('hmis', 'TrackedEntity/', '', 10);
      assert.deepEqual(refs(), ['TrackedEntity/mLone', 'TrackedEntity/mShared'], 'dead rows read theirs');
      assert.deepEqual(ledger.dismiss([lone.id, twin.id], 'test record').dismissed, [lone.id, twin.id]);
      assert.deepEqual(refs(), ['TrackedEntity/mShared'], 'still read by c3, not dismissed');
      assert.deepEqual(ledger.undismiss([lone.id]).restored, [lone.id]);
      assert.deepEqual(refs(), ['TrackedEntity/mLone', 'TrackedEntity/mShared'], 'undone');
    } finally {
      cleanup();
    }
  });

  it('looks a record up through its index, not by reading every row', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      ledger.close();
      const db = new Database(path, { readonly: true });
      const plan = (
        db
          .prepare(`EXPLAIN QUERY PLAN ${CONTEXT_READERS_SQL}`)
          .all({ sourceId: 'emr', ref: 'Patient/1', since: 0, limit: 21 }) as Array<{ detail: string }>
      )
        .map((step) => step.detail)
        .join('; ');
      db.close();
      assert.match(plan, /SEARCH c USING COVERING INDEX context_reads_ref \(source_id=\? AND ref=\?\)/);
      assert.doesNotMatch(plan, /TEMP B-TREE/);
    } finally {
      cleanup();
    }
  });

  it('binds no LIMIT in the lookup a poll runs for each record it reads, and still stops at the limit', () => {
    // SQLite plans with a bound LIMIT's value, so a statement binding one is compiled again at every run:
    // ~8 times the seek's own cost, once for each resource of every page a poll reads.
    assert.doesNotMatch(CONTEXT_READERS_SQL, /\bLIMIT\s*[@:$?]/i);
    const { ledger, cleanup } = tempLedger();
    try {
      for (const s of ['c1', 'c2', 'c3']) ledger.recordEvent({ ...eventInput(s), contextReads: ['Patient/mother'] });
      assert.deepEqual(readersOf(ledger, 'Patient/mother', 'emr', 2), ['Patient/c1', 'Patient/c2']);
      assert.deepEqual(readersOf(ledger, 'Patient/mother', 'emr', 0), []);
      assert.deepEqual(readersOf(ledger, 'Patient/mother', 'emr', 2.9), ['Patient/c1', 'Patient/c2'], 'floored');
    } finally {
      cleanup();
    }
  });
});

describe('ledger: query plans that must not grow with the ledger', () => {
  const planOf = (path: string, sql: string, params: object | unknown[] = []) => {
    const db = new Database(path, { readonly: true });
    try {
      const statement = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
      const rows = Array.isArray(params) ? statement.all(...params) : statement.all(params);
      return rows.map((row) => (row as { detail: string }).detail).join('; ');
    } finally {
      db.close();
    }
  };

  it('lists a state, a source, or both, newest first, without sorting every matching row', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      ledger.close();
      for (const filter of [
        { states: ['delivered' as const], limit: 100 },
        { states: ['dead' as const], sourceId: 'emr', limit: 100 },
        { sourceId: 'emr', limit: 100 },
        { limit: 100 },
      ]) {
        const { sql, params } = listQuery(filter);
        const plan = planOf(path, sql, params);
        assert.doesNotMatch(plan, /TEMP B-TREE/, `${JSON.stringify(filter)}: ${plan}`);
      }
      assert.match(
        planOf(path, listQuery({ states: ['delivered'] }).sql, listQuery({ states: ['delivered'] }).params),
        /ledger_rows_state_id/,
      );
      // A source alone, or with an event type or a time bound, seeks its own rows newest first: walking every
      // id for a source with few rows (or none) read the whole table on every page.
      for (const filter of [
        { sourceId: 'emr', limit: 100 },
        { sourceId: 'emr', eventType: 'birth', limit: 100 },
        { sourceId: 'emr', since: 0, limit: 100 },
      ]) {
        const { sql, params } = listQuery(filter);
        assert.match(
          planOf(path, sql, params),
          /SEARCH ledger_rows USING INDEX ledger_rows_source_id \(source_id=\?\)/,
        );
      }
      // With a state, the state's (rarer) rows are read, not every row of a large source.
      const { sql, params } = listQuery({ states: ['dead'], sourceId: 'emr', limit: 100 });
      assert.match(planOf(path, sql, params), /USING INDEX ledger_rows_state_id/);
      // The cursor (`before`) starts each walk at its row, rather than reading the rows before it as an
      // offset does.
      const plans: Array<[ListFilter, RegExp]> = [
        [{ before: 50, limit: 100 }, /USING INTEGER PRIMARY KEY \(rowid<\?\)/],
        [{ before: 50, sourceId: 'emr', limit: 100 }, /ledger_rows_source_id \(source_id=\? AND id<\?\)/],
        [{ before: 50, states: ['dead'], limit: 100 }, /ledger_rows_state_id \(state=\? AND id<\?\)/],
        [{ before: 50, since: 0, limit: 100 }, /USING INTEGER PRIMARY KEY \(rowid<\?\)/],
      ];
      for (const [filter, plan] of plans) {
        const query = listQuery(filter);
        assert.match(planOf(path, query.sql, query.params), plan, JSON.stringify(filter));
      }
      // A time bound few rows meet is read through its own index (migration 021), its rows alone sorted;
      // otherwise that index is kept out of the walk.
      const byTime = listQuery({ since: 0, sourceId: 'emr', limit: 100 }, { byTime: true });
      assert.match(planOf(path, byTime.sql, byTime.params), /USING INDEX ledger_rows_updated \(updated_at>\?\)/);
      const probe = timeProbeQuery({ since: 0, until: 5, before: 50 });
      assert.match(planOf(path, probe.sql, probe.params), /USING COVERING INDEX ledger_rows_updated/);
      const walked = listQuery({ since: 0, until: 5, limit: 100 });
      assert.doesNotMatch(planOf(path, walked.sql, walked.params), /ledger_rows_updated|TEMP B-TREE/);
    } finally {
      cleanup();
    }
  });

  it('finds the oldest waiting row (due, or being delivered) in the first entry of an index, whatever waits', () => {
    const clock = testClock(1_000);
    const { ledger, path, cleanup } = tempLedger(clock);
    try {
      assert.equal(ledger.oldestWaitingQueuedAt(), undefined, 'none waits');
      const ids: number[] = [];
      for (const s of ['a', 'b', 'c', 'd']) {
        ids.push(ledger.recordEvent(eventInput(s)).row.id);
        clock.advance(1_000);
      }
      const [a, b, c, d] = ids as [number, number, number, number];
      settleRow(ledger, a, { outcome: 'delivered', eventId: 'e-a', trackingId: 'TA' });
      assert.equal(ledger.oldestWaitingQueuedAt(), 2_000, 'a delivered row no longer waits');
      const claimed = ledger.claimRow(b, 'w-test');
      assert.equal(ledger.oldestWaitingQueuedAt(), 2_000, 'a row being delivered still waits');
      const error = { classification: 'retryable' as const, kind: 'server', message: 'x' };
      ledger.settle({
        id: b,
        workerId: 'w-test',
        claimedPayloadHash: claimed?.payloadHash ?? null,
        step: 'notify',
        startedAt: clock.now(),
        settlement: { outcome: 'retry', error, nextRunAt: clock.now() },
      });
      assert.equal(ledger.get(b)?.state, 'failed');
      assert.equal(ledger.oldestWaitingQueuedAt(), 2_000, 'a failed row, to be retried, still waits');
      settleRow(ledger, b, {
        outcome: 'dead',
        error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'x' },
      });
      settleRow(ledger, c, { outcome: 'delivered', eventId: 'e-c', trackingId: 'TC' });
      assert.equal(ledger.oldestWaitingQueuedAt(), 4_000, 'nor a dead one');
      settleRow(ledger, d, { outcome: 'delivered', eventId: 'e-d', trackingId: 'TD' });
      assert.equal(ledger.oldestWaitingQueuedAt(), undefined);
      ledger.close();
      // The rows due from the first entry of their index, not from each waiting row as ledger_rows_state_id led
      // SQLite to (~40 ms at 45,000 waiting); the few being delivered alone through ledger_rows_state_id.
      const plan = planOf(path, OLDEST_WAITING_SQL);
      assert.match(plan, /SEARCH ledger_rows USING INDEX ledger_rows_waiting_queued; UNION ALL; /);
      assert.match(plan, /UNION ALL; SEARCH ledger_rows USING INDEX ledger_rows_state_id \(state=\?\)/);
      assert.doesNotMatch(plan, /SCAN ledger_rows|TEMP B-TREE/);
    } finally {
      cleanup();
    }
  });

  it('binds no bare LIMIT in the statements run at every claim or tick, and each still stops at its limit', () => {
    // SQLite plans with a bare bound LIMIT's value, so binding one (at every run) compiled the statement again:
    // 4 to 25 µs a run (ledger/db.ts). `LIMIT +?` keeps the value bound without that.
    const bare = /\bLIMIT\s*[?@:$]/;
    for (const file of ['outbox', 'inbox', 'pending-checks', 'slow-records', 'location-answers']) {
      const source = readFileSync(`${CHECKOUT}src/ledger/${file}.ts`, 'utf8');
      assert.ok(source.includes('LIMIT +'), file);
      assert.ok(!bare.test(source), `${file} binds a bare LIMIT`);
    }
    const store = readFileSync(`${CHECKOUT}src/sources/writeback/store.ts`, 'utf8');
    assert.match(
      store,
      /FROM write_backs WHERE done_at IS NULL AND next_attempt_at <= \? ORDER BY next_attempt_at, row_id LIMIT \+\?'/,
    );
    const clock = testClock(1_000);
    const { ledger, path, cleanup } = tempLedger(clock);
    const writeBacks = new WriteBackStore(path);
    try {
      const ids = ['a', 'b', 'c'].map((s) => ledger.recordEvent(eventInput(s)).row.id);
      for (const id of ids) ledger.inbox.add('emr', { id }, clock.now());
      for (const id of ids) writeBacks.enqueue(id, 'emr', `T${id}`, clock.now());
      for (const ref of ['R1', 'R2', 'R3']) ledger.locationAnswers.save('https://a', ref, null, 10);
      assert.equal(ledger.inbox.due(2, clock.now()).length, 2);
      assert.equal(ledger.inbox.prune(clock.now() + 1, 1), 0, 'none processed');
      assert.deepEqual(
        writeBacks.claimDue(2, clock.now(), 1_000).map((job) => job.rowId),
        ids.slice(0, 2),
      );
      assert.deepEqual(ledger.locationAnswers.load('https://a', 2), [
        ['R2', null],
        ['R3', null],
      ]);
      const [a, b, c] = ids as [number, number, number];
      settleRow(ledger, a, { outcome: 'delivered-pending', eventId: 'e-a', trackingId: 'TA' });
      settleRow(ledger, b, { outcome: 'delivered-pending', eventId: 'e-b', trackingId: 'TB' });
      assert.deepEqual(
        ledger.duePendingChecks(1, clock.now()).map((due) => due.row.id),
        [a],
      );
      assert.deepEqual(
        ledger.claimDue('w', 5).map((row) => row.id),
        [c],
        'claims what is due',
      );
    } finally {
      writeBacks.close();
      cleanup();
    }
  });

  it('purges payloads through their partial index', () => {
    const { ledger, path, cleanup } = tempLedger();
    try {
      ledger.close();
      assert.match(planOf(path, PURGE_SQL, { cutoff: 0, limit: 500 }), /USING INDEX ledger_rows_purge/);
    } finally {
      cleanup();
    }
  });
});

describe('ledger file identity (liveness)', () => {
  it('says, never throws, when the ledger path no longer leads to the opened file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-identity-'));
    const folder = join(dir, 'data');
    const path = join(folder, 'bridge.db');
    try {
      mkdirSync(folder);
      writeFileSync(path, '');
      const identity = watchFileIdentity(path);
      assert.equal(identity.problem(), undefined);
      // The folder moved away and a file put in its place: stat fails with ENOTDIR.
      renameSync(folder, join(dir, 'moved'));
      writeFileSync(folder, 'not a folder');
      assert.match(identity.problem() ?? '', /cannot be reached any more \(ENOTDIR\)/);
      assert.equal(watchFileIdentity(':memory:').problem(), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tells another ledger copied over the open one in place (the same inode) by its ledger id, read every 5 s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-overwritten-'));
    const path = join(dir, 'bridge.db');
    const ledgerIdIn = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare('SELECT ledger_id FROM ledger_identity').get() as { ledger_id: string }).ledger_id;
      } finally {
        db.close();
      }
    };
    try {
      // A ledger created earlier (its pages in the file, as a running bridge's checkpoints keep them).
      openLedger(path).close();
      openLedger(join(dir, 'other.db')).close();
      assert.match(ledgerIdIn(path), /^[0-9a-f]{32}$/);
      assert.notEqual(ledgerIdIn(path), ledgerIdIn(join(dir, 'other.db')), 'each ledger its own id');
      copyFileSync(path, join(dir, 'backup.db'));
      const ledger = openLedger(path);
      const at = { now: 0 };
      const identity = watchFileIdentity(path, { ledgerId: ledgerIdIn(path), now: () => at.now });
      try {
        assert.equal(identity.problem(), undefined);
        // Its own backup copied back in place carries the same id: not told apart (docs/deployment.md §4).
        copyFileSync(join(dir, 'backup.db'), path);
        at.now = 5_000;
        assert.equal(identity.problem(), undefined);
        const inode = statSync(path).ino;
        copyFileSync(join(dir, 'other.db'), path);
        assert.equal(statSync(path).ino, inode);
        at.now = 9_999;
        assert.equal(identity.problem(), undefined, 'read again 5 s after the last read, not on every probe');
        at.now = 10_000;
        assert.match(
          identity.problem() ?? '',
          new RegExp(
            `^the ledger file .*bridge\\.db was overwritten while the bridge ran \\(it holds another ledger, id ${ledgerIdIn(path)}\\): restart the bridge`,
          ),
        );
        // Kept, whatever the file holds next.
        copyFileSync(join(dir, 'backup.db'), path);
        assert.match(identity.problem() ?? '', /was overwritten while the bridge ran/);
        // A file that is no ledger of this version (an older copy, or anything else) has no ledger id.
        const older = watchFileIdentity(path, { ledgerId: 'f'.repeat(32) });
        const writer = new Database(path);
        writer.exec('DROP TABLE ledger_identity');
        writer.close();
        assert.match(older.problem() ?? '', /overwritten while the bridge ran \(it holds no ledger id: another file\)/);
      } finally {
        ledger.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ledger: a fingerprint taken by the rule before (another source of the server wrote back since)', () => {
  // The reading's own fingerprint leaves out the other sources' tracking ids; the row's, taken before, held
  // them (mapping/fingerprint.ts OwnWrites.ownOnly). Equal by that earlier rule, the content is the same.
  const delivered = { outcome: 'delivered' as const, eventId: 'e1', trackingId: 'T1' };
  const withPrints = (input: ReturnType<typeof eventInput>, own: string, earlier?: string) => ({
    ...input,
    sourceFingerprint: () => own,
    ...(earlier ? { ownOnlyFingerprint: () => earlier } : {}),
  });
  const invalidReading = (own: string, earlier?: string) => ({
    sourceId: 'emr',
    eventType: 'birth',
    subjectKey: 'Patient/legacy',
    sourceRef: 'Encounter/legacy',
    mappingId: 'birth.fhir',
    errors: [{ field: 'office', message: "office 'X' is not a known, open OpenCRVS office" }],
    sourceFingerprint: () => own,
    ...(earlier ? { ownOnlyFingerprint: () => earlier } : {}),
  });

  it('counts no update for an invalid reading of a delivered row, and keeps the fingerprint as now taken', () => {
    const { ledger, cleanup } = tempLedger();
    try {
      const { row } = ledger.recordEvent(withPrints(eventInput('legacy'), 'legacy'));
      settleRow(ledger, row.id, delivered);
      const { changed } = ledger.recordInvalid(invalidReading('new', 'legacy'));
      assert.equal(changed, false);
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 0);
      // Taken as now: a real change later is told from this one.
      assert.equal(ledger.recordInvalid(invalidReading('changed', 'other')).changed, true);
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1);
    } finally {
      cleanup();
    }
  });

  it('counts no update for the same content mapped otherwise while its first attempt is under way', () => {
    const { ledger, cleanup } = tempLedger();
    try {
      const { row } = ledger.recordEvent(withPrints(eventInput('legacy'), 'legacy'));
      const claimed = ledger.claimRow(row.id, 'w-test');
      assert.ok(claimed);
      ledger.recordEvent(withPrints(eventInput('legacy', payload('Other')), 'new', 'legacy'));
      ledger.settle({
        id: row.id,
        workerId: 'w-test',
        claimedPayloadHash: claimed.payloadHash,
        step: 'notify',
        startedAt: 0,
        settlement: delivered,
      });
      assert.equal(ledger.get(row.id)?.state, 'delivered');
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 0);
    } finally {
      cleanup();
    }
  });
});
