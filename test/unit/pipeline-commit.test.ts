// SourcePipeline.commit: one ledger transaction per call, durable unless the caller says a poll
// would redo it, and always durable when it moves a cursor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ledger } from '../../src/ledger/index.js';
import { MappingSet } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type Evaluation, SourcePipeline } from '../../src/sources/pipeline.js';
import { eventInput, settleRow, tempLedger, testClock } from './ledger-helpers.js';

function recordingLedger() {
  const transactions: Array<{ reconciled?: boolean }> = [];
  const cursors: string[] = [];
  const ledger = {
    transaction: <T>(fn: () => T, options?: { reconciled?: boolean }): T => {
      transactions.push({ ...options });
      return fn();
    },
    setCursor: (_source: string, name: string, value: string) => void cursors.push(`${name}=${value}`),
  } as unknown as Ledger;
  return { ledger, transactions, cursors };
}

describe('SourcePipeline.commit', () => {
  it('passes `reconciled` to the ledger, except with a cursor, which always commits durably', () => {
    const { ledger, transactions, cursors } = recordingLedger();
    const pipeline = new SourcePipeline({ sourceId: 's', mappings: new MappingSet([]), ledger, logger: silentLogger });
    pipeline.commit([]);
    pipeline.commit([], undefined, { reconciled: true });
    pipeline.commit([], { name: 'lastUpdated:Patient', value: 'x' }, { reconciled: true });
    assert.deepEqual(
      transactions.map((t) => t.reconciled),
      [false, true, false],
    );
    assert.deepEqual(cursors, ['lastUpdated:Patient=x']);
  });

  it('lists an invalid reading among the rows the pass changed when the record changed, not when it only ends a withdrawal', () => {
    const clock = testClock();
    const { ledger, cleanup } = tempLedger(clock);
    try {
      const pipeline = new SourcePipeline({
        sourceId: 'emr',
        mappings: new MappingSet([]),
        ledger,
        logger: silentLogger,
      });
      // A row whose NOTIFY may be in OpenCRVS (its answer lost), read from content-a, then withdrawn by
      // the source (marked: the worker asks OpenCRVS before settling it).
      const { row } = ledger.recordEvent({ ...eventInput('1'), sourceFingerprint: () => 'content-a' });
      settleRow(
        ledger,
        row.id,
        {
          outcome: 'retry',
          nextRunAt: clock.now() + 1000,
          error: { classification: 'retryable', kind: 'server', status: 500, message: 'x' },
        },
        { now: clock.now(), created: { eventId: 'event-1', trackingId: 'TRK1' } },
      );
      const key = { sourceId: 'emr', eventType: 'birth', subjectKey: 'Patient/1', sourceRef: 'Encounter/1' };
      ledger.cancelUnsent({ ...key, reason: 'no longer notifiable: merged into another record' });
      const invalid = (fingerprint: string): Evaluation => ({
        excluded: false,
        result: {
          status: 'invalid',
          mappingId: 'birth.fhir',
          eventType: 'birth',
          subjectRef: 'Patient/1',
          sourceRef: 'Encounter/1',
          errors: [{ field: 'createdAtLocation', message: "office 'X' is not a known, open OpenCRVS office" }],
          sourceFingerprint: () => fingerprint,
        },
      });
      // Back in the source as it was, its office closed meanwhile: the withdrawal ends (the worker resends
      // the copy), but nothing of the record is new, as for a valid reading of it (recordEvent: unchanged).
      const same = pipeline.commit([invalid('content-a')]);
      assert.equal(ledger.get(row.id)?.withdrawnReason, null);
      assert.deepEqual([same.invalid, same.ledgerIds], [1, []]);
      // Changed at the source: an update after notification, a change of this pass.
      const changed = pipeline.commit([invalid('content-b')]);
      assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1);
      assert.deepEqual([changed.invalid, changed.ledgerIds], [1, [row.id]]);
    } finally {
      cleanup();
    }
  });
});
