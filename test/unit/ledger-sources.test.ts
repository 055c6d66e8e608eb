// The source ids the ledger holds history under: what a rename moves (every table and meta key keyed by
// the id, transaction ids kept), what it refuses, retirement, and the exclusive open that keeps both
// away from a running bridge.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  type Ledger,
  LedgerInUseError,
  openLedger,
  SourceIdError,
  transactionIdsFor,
  unaccountedSources,
  unaccountedSourcesMessage,
} from '../../src/ledger/index.js';
import { eventInput, settleRow, tempLedger } from './ledger-helpers.js';

describe('ledger sources', () => {
  let ledger: Ledger;
  let path: string;
  let cleanup: () => void;
  beforeEach(() => {
    ({ ledger, path, cleanup } = tempLedger());
  });
  afterEach(() => cleanup());

  function seedOld(): { delivered: number; foreign: number } {
    const delivered = ledger.recordEvent(eventInput('1')).row.id;
    settleRow(ledger, delivered, { outcome: 'delivered', eventId: 'ev-1', trackingId: 'TRK001' });
    const foreign = ledger.recordEvent(eventInput('2')).row.id;
    settleRow(ledger, foreign, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'foreign-event', message: 'another client' },
    });
    ledger.setCursor('emr', 'Patient', '2026-01-01T00:00:00Z');
    ledger.inbox.add('emr', { resourceType: 'Bundle' }, 1);
    ledger.setMeta('writeBack.enabledAt:emr', '5');
    ledger.setMeta('subscription:emr:eventNumber:Subscription/s1', '12');
    ledger.setMeta('doctor:lastCheck', 'x');
    const raw = new Database(path);
    raw
      .prepare(
        "INSERT INTO write_backs (row_id, source_id, tracking_id, next_attempt_at, created_at, updated_at) VALUES (?, 'emr', 'TRK001', 0, 0, 0)",
      )
      .run(delivered);
    raw.close();
    return { delivered, foreign };
  }

  it('lists the ids with rows, cursors or waiting notifications, and what each holds', () => {
    seedOld();
    ledger.setCursor('dhis2-only-cursor', 'updatedAt', 'x');
    assert.deepEqual(ledger.sources.recordedIds(), ['dhis2-only-cursor', 'emr']);
    assert.deepEqual(ledger.sources.history('emr'), {
      rows: 2,
      cursors: 1,
      notifications: 1,
      writeBacks: 1,
      metaKeys: 2,
    });
  });

  it('moves every table and source meta key to the new id; delivered rows keep their transaction ids', () => {
    const { delivered, foreign } = seedOld();
    const before = ledger.get(delivered);
    const result = ledger.sources.rename('emr', 'hospital-a', 1000);
    assert.deepEqual(result.moved, { rows: 2, cursors: 1, notifications: 1, writeBacks: 1, metaKeys: 2 });
    assert.equal(result.newTransactionIds, 1);
    assert.deepEqual(ledger.sources.recordedIds(), ['hospital-a']);
    const after = ledger.get(delivered);
    assert.equal(after?.sourceId, 'hospital-a');
    assert.equal(after?.createTransactionId, before?.createTransactionId, 'nothing is sent again');
    assert.equal(after?.notifyTransactionId, before?.notifyTransactionId);
    assert.equal(ledger.getCursor('hospital-a', 'Patient'), '2026-01-01T00:00:00Z');
    assert.equal(ledger.getCursor('emr', 'Patient'), undefined);
    assert.equal(ledger.inbox.due(10, 10)[0]?.sourceId, 'hospital-a');
    assert.equal(ledger.getMeta('writeBack.enabledAt:hospital-a'), '5');
    assert.equal(ledger.getMeta('subscription:hospital-a:eventNumber:Subscription/s1'), '12');
    assert.equal(ledger.getMeta('writeBack.enabledAt:emr'), undefined);
    assert.equal(ledger.getMeta('doctor:lastCheck'), 'x', 'keys of no source stay');
    const raw = new Database(path, { readonly: true });
    assert.equal(raw.prepare('SELECT source_id FROM write_backs').pluck().get(), 'hospital-a');
    raw.close();
    // The row another OpenCRVS client's event answered holds nothing in OpenCRVS: the new key's ids.
    const ids = transactionIdsFor('hospital-a', 'birth', 'Patient/2');
    assert.equal(ledger.get(foreign)?.createTransactionId, ids.create);
    assert.equal(ledger.get(foreign)?.notifyTransactionId, ids.notify);
  });

  it('gives new ids to a row whose event another client notified, and forgets that event', () => {
    // Its own event holds another bridge's NOTIFY, none of its own (one in doubt neither: the 500 before).
    const notified = ledger.recordEvent(eventInput('4')).row.id;
    settleRow(
      ledger,
      notified,
      {
        outcome: 'retry',
        error: { classification: 'retryable', kind: 'server', status: 500, message: 'x' },
        nextRunAt: 0,
      },
      { created: { eventId: 'ev-4', trackingId: 'TRK004' } },
    );
    settleRow(ledger, notified, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'foreign-notify', message: 'another client notified it' },
    });
    assert.equal(ledger.sources.rename('emr', 'hospital-a', 1000).newTransactionIds, 1);
    const ids = transactionIdsFor('hospital-a', 'birth', 'Patient/4');
    const renamed = ledger.get(notified);
    assert.deepEqual(
      [renamed?.createTransactionId, renamed?.notifyTransactionId, renamed?.eventId, renamed?.trackingId],
      [ids.create, ids.notify, null, null],
      'the new ids, and not the event that holds the other record',
    );
  });

  it("moves slow records' strikes with the source; any under the new id give way", () => {
    seedOld();
    const strikes = (subjectRef: string, n: number) => ({ mappingId: 'birth', subjectRef, strikes: n, struckAt: 5 });
    ledger.slowRecords.write('emr', [strikes('Patient/1', 2)], []);
    ledger.slowRecords.write('hospital-a', [strikes('Patient/1', 1), strikes('Patient/9', 1)], []);
    ledger.sources.rename('emr', 'hospital-a', 1000);
    const bounds = { before: 0, after: 10, keep: 10 };
    assert.deepEqual(ledger.slowRecords.load('emr', bounds), []);
    assert.deepEqual(
      ledger.slowRecords.load('hospital-a', bounds).map((r) => [r.subjectRef, r.strikes]),
      [['Patient/1', 2]],
    );
  });

  it('refuses an id with nothing under it, and an id that already has rows or cursors', () => {
    seedOld();
    assert.throws(() => ledger.sources.rename('nothing', 'x', 1), SourceIdError);
    ledger.setCursor('taken', 'Patient', 'x');
    assert.throws(() => ledger.sources.rename('emr', 'taken', 1), /"taken" already has history in the ledger/);
    assert.deepEqual(ledger.sources.recordedIds(), ['emr', 'taken'], 'nothing moved');
  });

  it('accounts for ids that are configured or retired, and names the rest with both ways out', () => {
    seedOld();
    assert.deepEqual(unaccountedSources(ledger, ['emr']), []);
    const unaccounted = unaccountedSources(ledger, ['emr-main']);
    assert.deepEqual(unaccounted, [{ sourceId: 'emr', rows: 2, cursors: 1 }]);
    const message = unaccountedSourcesMessage(ledger, unaccounted, ['emr-main']);
    assert.match(message, /Renamed to "emr-main"\? .*ledger rename-source emr emr-main/);
    assert.match(message, /ledger retire-source emr/);
    ledger.sources.retire('emr', 7);
    assert.deepEqual([...ledger.sources.retired()], [['emr', 7]]);
    assert.deepEqual(unaccountedSources(ledger, ['emr-main']), []);
    // Renaming a retired id brings it back into use: the mark goes.
    ledger.sources.rename('emr', 'emr-main', 8);
    assert.deepEqual([...ledger.sources.retired()], []);
  });

  it('opens exclusively only when no other connection has the ledger open', () => {
    assert.throws(() => openLedger(path, { exclusive: true }), LedgerInUseError);
    ledger.close();
    openLedger(path, { exclusive: true }).close();
  });
});
