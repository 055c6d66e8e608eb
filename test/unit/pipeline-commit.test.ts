// SourcePipeline.commit: one ledger transaction per call, durable unless the caller says a poll
// would redo it, and always durable when it moves a cursor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ledger } from '../../src/ledger/index.js';
import { MappingSet } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { SourcePipeline } from '../../src/sources/pipeline.js';

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
});
