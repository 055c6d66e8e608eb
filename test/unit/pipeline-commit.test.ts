// SourcePipeline.commit: one ledger transaction per call, durable unless the caller says a poll
// would redo it, and always durable when it moves a cursor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ledger } from '../../src/ledger/index.js';
import { MappingSet } from '../../src/mapping/index.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { type Evaluation, SourcePipeline } from '../../src/sources/pipeline.js';
import { eventInput, OFFICE, settleRow, tempLedger, testClock } from './ledger-helpers.js';

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

/** A pipeline of source `emr` whose go-live is `goLive` (read in `timeZone`, if given). */
function goLivePipeline(ledger: Ledger, goLive: string, timeZone?: string): SourcePipeline {
  const zone = timeZone ? { timeZone } : {};
  return new SourcePipeline({
    sourceId: 'emr',
    mappings: new MappingSet([]),
    ledger,
    logger: silentLogger,
    goLive: () => goLive,
    ...zone,
  });
}

/** A birth the mapping refused (its office unknown), dated `eventDate`. */
function invalidBirth(subjectRef: string, sourceRef: string, eventDate: string): Evaluation {
  return {
    excluded: false,
    result: {
      status: 'invalid',
      mappingId: 'birth.fhir',
      eventType: 'birth',
      subjectRef,
      sourceRef,
      errors: [{ field: 'createdAtLocation', message: "office 'X' is not a known, open OpenCRVS office" }],
      eventDate,
    },
  };
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

  it("skips a record dated before the source's go-live that maps invalid, as a mapped one: no dead row to alert on", () => {
    const { ledger, cleanup } = tempLedger(testClock());
    try {
      const pipeline = goLivePipeline(ledger, '2025-01-01T00:00:00+03:00');
      const invalid = (subjectRef: string, eventDate: string) => invalidBirth(subjectRef, subjectRef, eventDate);
      // The day before the go-live's date is before it; the go-live day itself is not.
      pipeline.commit([invalid('Patient/old', '2024-12-31'), invalid('Patient/new', '2025-01-01')]);
      const rows = ledger.list({ limit: 10 }).map((r) => [r.subjectKey, r.state, r.skipReason]);
      assert.deepEqual(rows.sort(), [
        ['Patient/new', 'dead', null],
        ['Patient/old', 'skipped', "born before the source's go-live 2025-01-01: registered otherwise"],
      ]);
    } finally {
      cleanup();
    }
  });
  it('skips an old record whose row never had a notification reach OpenCRVS, not one whose NOTIFY may stand', () => {
    const clock = testClock();
    const { ledger, cleanup } = tempLedger(clock);
    try {
      const pipeline = goLivePipeline(ledger, '2025-01-01');
      // Recorded before the go-live moved later (or before the guard): one never sent, one sent by a single
      // call whose answer was lost, which OpenCRVS may hold with no event id on the row.
      const unsent = ledger.recordEvent(eventInput('unsent')).row;
      const inDoubt = ledger.recordEvent(eventInput('doubt')).row;
      settleRow(
        ledger,
        inDoubt.id,
        {
          outcome: 'retry',
          nextRunAt: clock.now() + 1000,
          error: { classification: 'retryable', kind: 'server', status: 500, message: 'x' },
        },
        { now: clock.now(), step: 'createAndNotify' },
      );
      const invalid = (subject: string) => invalidBirth(`Patient/${subject}`, `Encounter/${subject}`, '2024-06');
      pipeline.commit([invalid('unsent'), invalid('doubt')]);
      assert.deepEqual(
        [ledger.get(unsent.id)?.state, ledger.get(unsent.id)?.skipReason],
        ['skipped', "born before the source's go-live 2025-01-01: registered otherwise"],
      );
      assert.equal(ledger.get(inDoubt.id)?.state, 'failed', 'its retry resends the copy OpenCRVS may hold');
    } finally {
      cleanup();
    }
  });
  it("dates the go-live where the source is: sinceDays' start written in UTC is already the next day there", () => {
    const { ledger, cleanup } = tempLedger(testClock());
    try {
      // 23:30Z on the 31st: 01:30 on the 1st in Lusaka, where a child born on the 31st was born before it.
      const pipeline = goLivePipeline(ledger, '2024-12-31T23:30:00.000Z', 'Africa/Lusaka');
      pipeline.commit([invalidBirth('Patient/eve', 'Patient/eve', '2024-12-31')]);
      const [row] = ledger.list({ limit: 10 });
      assert.deepEqual(
        [row?.state, row?.skipReason],
        ['skipped', "born before the source's go-live 2025-01-01: registered otherwise"],
      );
    } finally {
      cleanup();
    }
  });
  it('says how many rows skipped as before the go-live a pass sends, once the go-live is moved earlier', () => {
    const { ledger, cleanup } = tempLedger(testClock());
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    let since = '2025-01-01';
    try {
      const pipeline = new SourcePipeline({
        sourceId: 'emr',
        mappings: new MappingSet([]),
        ledger,
        logger,
        goLive: () => since,
      });
      const mapped = (subject: string, dob = '2024-06-02'): Evaluation => ({
        excluded: false,
        result: {
          status: 'mapped',
          mappingId: 'birth.fhir',
          eventType: 'birth',
          subjectRef: `Patient/${subject}`,
          sourceRef: `Encounter/${subject}`,
          payloadHash: `hash-${subject}-${dob}`,
          declaration: { 'child.dob': dob },
          eventDate: dob,
          routing: { office: OFFICE, via: 'default office' },
          warnings: [],
        } as Evaluation['result'],
      });
      const first = pipeline.commit([mapped('old'), mapped('typo', '2014-06-02')]);
      assert.deepEqual([first.skipped, first.goLiveSkipsSent], [2, 0]);
      // A clerk corrects a birth date typed years too early: sent under the same go-live, which did not move.
      assert.equal(pipeline.commit([mapped('typo', '2025-06-02')]).goLiveSkipsSent, 0);
      // An operator skipped another by hand: its reason is no go-live's, and is not counted as one.
      ledger.recordSkipped({ ...eventInput('other'), reason: 'test record' });
      since = '2024-01-01'; // moved earlier: the old birth is the source's own now
      const second = pipeline.commit([mapped('old'), mapped('other')]);
      assert.equal(second.goLiveSkipsSent, 1);
      assert.deepEqual(
        ledger.list({ limit: 10 }).map((r) => r.state),
        ['pending', 'pending', 'pending'],
      );
      const said = lines.map((line) => JSON.parse(line)).filter((l) => l.goLiveSkipsSent !== undefined);
      assert.deepEqual(
        said.map((l) => l.goLiveSkipsSent),
        [1],
      );
      assert.match(said[0].msg, /skipped as before the source's go-live are queued to be sent now/);
    } finally {
      cleanup();
    }
  });
});
