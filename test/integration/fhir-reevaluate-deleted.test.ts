// A partial evaluation (reevaluate: a recheck, an inbox round, a replay's reading) that finds many records
// gone from the FHIR source records each deletion in a transaction of its own, with a turn of the event
// loop between them: a replay of thousands of rows whose records were deleted held serve's event loop for
// up to 570 ms per batch of 50 before. Against the FHIR sandbox, which has none of the records.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Ledger } from '../../src/ledger/index.js';
import { loadMappings } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { reevaluate } from '../../src/sources/fhir/reevaluate.js';
import { SourcePipeline } from '../../src/sources/pipeline.js';
import { eventInput, tempLedger } from '../unit/ledger-helpers.js';
import { type FhirBehindProxy, startFhirBehindProxy } from './helpers/fhir-proxy.js';

const GONE = 20;

describe('FHIR source: records found deleted by a partial evaluation', () => {
  let setup: FhirBehindProxy;
  let ledger: Ledger;
  let cleanup: () => void;

  before(async () => {
    setup = await startFhirBehindProxy({ timeoutMs: 5000 });
    ({ ledger, cleanup } = tempLedger());
  });
  after(async () => {
    await setup?.close();
    cleanup?.();
  });

  it('withdraws each unsent row, with turns of the event loop between the deletions', async () => {
    const rows = Array.from({ length: GONE }, (_, i) => ledger.recordEvent(eventInput(`gone-${i}`)).row);
    const pipeline = new SourcePipeline({
      sourceId: 'emr',
      mappings: loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } }),
      ledger,
      logger: silentLogger,
      mapOptions: () => ({ resolveLocation: (ref) => ref }),
    });
    // What serve does meanwhile: a turn of the event loop, noting how many rows are withdrawn each time.
    const seen: number[] = [];
    let done = false;
    const tick = () => {
      if (done) return;
      seen.push(ledger.counts().reduce((n, c) => n + (c.state === 'skipped' ? c.count : 0), 0));
      setImmediate(tick);
    };
    setImmediate(tick);
    try {
      await reevaluate(
        { client: setup.client, pipeline },
        rows.map((row) => row.subjectKey),
      );
    } finally {
      done = true;
    }
    assert.deepEqual(
      rows.map((row) => [ledger.get(row.id)?.state, ledger.get(row.id)?.skipReason]),
      Array(GONE).fill(['skipped', 'deleted in the source before it was sent']),
    );
    assert.ok(
      seen.some((n) => n > 0 && n < GONE),
      `the loop turned between two deletions (withdrawn rows seen: ${[...new Set(seen)].join(', ')})`,
    );
  });
});
