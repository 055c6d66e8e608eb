// The worker's recheck over several sources (sources/recheck.ts): rows of two sources waiting in one batch.
// One source that cannot be read (an EMR down, a proxy's page) must not keep the other's rows from being
// rechecked: they would go out unchecked with the worker's fallback, a record withdrawn meanwhile among them.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { RecheckNotReady } from '../../src/delivery/index.js';
import type { Ledger, LedgerRow } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { type SubjectRecheck, sourcesRecheck } from '../../src/sources/recheck.js';
import { eventInput, tempLedger } from './ledger-helpers.js';

describe('sourcesRecheck: a batch with rows of two sources', () => {
  let ledger: Ledger;
  let cleanup: () => void;
  let rows: LedgerRow[];
  /** The subjects each source was asked to recheck. */
  let asked: Array<[string, string[]]>;

  beforeEach(() => {
    ({ ledger, cleanup } = tempLedger());
    rows = [
      ledger.recordEvent({ ...eventInput('a1'), sourceId: 'emr-a' }).row,
      ledger.recordEvent({ ...eventInput('b1'), sourceId: 'emr-b' }).row,
      ledger.recordEvent({ ...eventInput('b2'), sourceId: 'emr-b' }).row,
    ];
    asked = [];
  });
  afterEach(() => cleanup());

  /** Source B withdraws its record b1 (entered in error meanwhile), as its pipeline would. */
  const sourceB: SubjectRecheck = async (keys) => {
    asked.push(['emr-b', keys]);
    ledger.cancelUnsent({
      sourceId: 'emr-b',
      eventType: 'birth',
      subjectKey: 'Patient/b1',
      sourceRef: 'Patient/b1',
      reason: 'no longer notifiable: entered in error',
    });
  };
  const failing =
    (err: Error): SubjectRecheck =>
    async (keys) => {
      asked.push(['emr-a', keys]);
      throw err;
    };

  it("rechecks the second source when the first fails, then throws the first's error", async () => {
    const down = new FhirSourceError('read Patient failed: HTTP 503', 503, true);
    const recheck = sourcesRecheck(
      new Map([
        ['emr-a', failing(down)],
        ['emr-b', sourceB],
      ]),
      ledger,
      silentLogger,
    );
    await assert.rejects(recheck.run(rows), (err: unknown) => err === down);
    assert.deepEqual(asked, [
      ['emr-a', ['Patient/a1']],
      ['emr-b', ['Patient/b1', 'Patient/b2']],
    ]);
    assert.deepEqual(
      rows.map((row) => ledger.get(row.id)?.state),
      ['pending', 'skipped', 'pending'],
      "the second source's withdrawal is recorded before the worker sends the rest as recorded",
    );
  });

  it("throws a RecheckNotReady naming that source's rows alone, with the other source's error", async () => {
    const down = new FhirSourceError('read Patient failed: HTTP 503', 503, true);
    const notReady = new RecheckNotReady('a page that is not the source answered');
    const recheck = sourcesRecheck(
      new Map<string, SubjectRecheck>([
        ['emr-a', failing(down)],
        [
          'emr-b',
          async (keys) => {
            asked.push(['emr-b', keys]);
            throw notReady;
          },
        ],
      ]),
      ledger,
      silentLogger,
    );
    await assert.rejects(recheck.run(rows), (err: unknown) => {
      assert.ok(err instanceof RecheckNotReady);
      assert.equal(err.message, notReady.message);
      // emr-b's rows wait; emr-a's go out as recorded (its source failed otherwise), with its error logged.
      assert.deepEqual(err.rowIds, [rows[1]?.id, rows[2]?.id]);
      assert.equal(err.otherFailure, down);
      return true;
    });
  });

  it("keeps waiting only the subjects a source names, and passes on that source's other failure", async () => {
    // emr-b cannot settle b2 yet (DHIS2's lists disagree on it), and its read of b1 failed otherwise.
    const unread = new FhirSourceError('read Patient failed: HTTP 503', 503, true);
    const recheck = sourcesRecheck(
      new Map<string, SubjectRecheck>([
        ['emr-a', async (keys) => void asked.push(['emr-a', keys])],
        [
          'emr-b',
          async (keys) => {
            asked.push(['emr-b', keys]);
            throw new RecheckNotReady('the lists disagree', { subjectKeys: ['Patient/b2'], otherFailure: unread });
          },
        ],
      ]),
      ledger,
      silentLogger,
    );
    await assert.rejects(recheck.run(rows), (err: unknown) => {
      assert.ok(err instanceof RecheckNotReady);
      assert.equal(err.message, 'the lists disagree');
      // b2's row waits; a1 (rechecked) and b1 (unread: as recorded, its failure logged) go on.
      assert.deepEqual(err.rowIds, [rows[2]?.id]);
      assert.equal(err.otherFailure, unread);
      return true;
    });
  });
});
