// Ledger.deadRows: every row that becomes dead through a connection that counts (serve's), wherever it
// died, once; a row already dead, a replay, or a transaction rolled back takes nothing back or adds nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openLedger } from '../../src/ledger/index.js';
import type { Ledger, LedgerError } from '../../src/ledger/types.js';
import { eventInput, settleRow } from './ledger-helpers.js';

const REFUSED: LedgerError = { classification: 'permanent', kind: 'validation', status: 400, message: 'refused' };
const invalid = (id: string, eventType = 'birth') => ({
  sourceId: 'emr',
  eventType,
  subjectKey: `Patient/${id}`,
  sourceRef: `Encounter/${id}`,
  mappingId: 'birth.fhir',
  errors: [{ field: 'child.gender', message: 'not one of male, female, unknown' }],
});

describe('dead rows counted', () => {
  let dir: string;
  let ledger: Ledger;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-dead-'));
    ledger = openLedger(join(dir, 'bridge.db'), { countDeadRows: true });
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts a row dead at intake and one dead on delivery, each once, and keeps them through a replay', () => {
    assert.deepEqual(ledger.deadRows(), []);
    const atIntake = ledger.recordInvalid(invalid('a')).row;
    ledger.recordInvalid({ ...invalid('a'), errors: [{ field: 'child.dob', message: 'not a date' }] });
    const { row } = ledger.recordEvent(eventInput('b'));
    settleRow(ledger, row.id, { outcome: 'dead', error: REFUSED });
    ledger.recordInvalid(invalid('c', 'death'));
    assert.deepEqual(sorted(ledger.deadRows()), [
      { sourceId: 'emr', eventType: 'birth', count: 2 },
      { sourceId: 'emr', eventType: 'death', count: 1 },
    ]);
    // The state gauge goes down with a replay; what died stays counted.
    assert.deepEqual(ledger.replay([row.id]).requeued, [row.id]);
    assert.equal(ledger.get(atIntake.id)?.state, 'dead');
    assert.equal(sorted(ledger.deadRows())[0]?.count, 2);
    // Dying again after the replay is another death.
    settleRow(ledger, row.id, { outcome: 'dead', error: REFUSED });
    assert.equal(sorted(ledger.deadRows())[0]?.count, 3);
  });

  it('does not count a death that was rolled back, nor through a connection that does not count', () => {
    assert.throws(() =>
      ledger.transaction(() => {
        ledger.recordInvalid(invalid('d'));
        throw new Error('the pass failed');
      }),
    );
    assert.equal(ledger.get(1), undefined);
    assert.deepEqual(ledger.deadRows(), []);
    const other = openLedger(join(dir, 'bridge.db'));
    try {
      other.recordInvalid(invalid('e'));
      assert.deepEqual(other.deadRows(), []);
    } finally {
      other.close();
    }
    // This connection did not make it dead either.
    assert.deepEqual(ledger.deadRows(), []);
  });
});

function sorted<T extends { eventType: string }>(counts: T[]): T[] {
  return [...counts].sort((a, b) => a.eventType.localeCompare(b.eventType));
}
