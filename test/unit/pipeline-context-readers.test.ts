// The rows that read a changed record as context (the mother's own Patient): a poll or a notification maps
// them again with the subjects the record names (SourcePipeline.subjectsOf); a recheck or a replay, which
// names rows to check and not records that changed, does not (`readers: false`), so a failure of their
// reads is no failure of the rows it was asked about.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { openLedger } from '../../src/ledger/index.js';
import { bundleFetcher, loadMappings, type Resource, type ResourceFetcher } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { SourcePipeline } from '../../src/sources/pipeline.js';

const mappings = loadMappings({
  names: ['birth.fhir', 'death.fhir'],
  routing: { defaultOffice: 'office-1', facilities: {} },
});
const birth = generateBirth(0, { prefix: 'p' }) as unknown as Resource[];
const all = bundleFetcher({
  resourceType: 'Bundle',
  type: 'collection',
  entry: birth.map((resource) => ({ resource })),
});
const CHILD = 'Patient/p-birth-0-child';
const MOTHER = 'Patient/p-birth-0-mother';

it("a recheck of the mother's Patient (readers: false) maps no birth that read her, so a failure of its reads fails nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-readers-'));
  const ledger = openLedger(join(dir, 'bridge.db'));
  try {
    const pipeline = new SourcePipeline({
      sourceId: 'emr',
      mappings,
      ledger,
      logger: silentLogger,
      mapOptions: () => ({ resolveLocation: (ref) => ref }),
      probe: async () => {},
    });
    const child = birth.find((r) => `Patient/${r.id}` === CHILD);
    const mother = birth.find((r) => `Patient/${r.id}` === MOTHER);
    assert.ok(child && mother);
    pipeline.commit((await pipeline.evaluate([child], all)).results);
    assert.deepEqual(
      ledger.contextReaders('emr', MOTHER, 10).map((r) => r.subjectKey),
      [CHILD],
      "the birth's row read her",
    );
    // The child's context search times out; the mother's own reads are answered.
    const childSearchFails: ResourceFetcher = {
      read: (type, id) => all.read(type, id),
      search: async (type, params) => {
        if (Object.values(params).some((v) => String(v).includes('p-birth-0-child')))
          throw new FhirSourceError('search failed: timeout', undefined, true);
        return all.search(type, params);
      },
    };
    // A notification of her change maps the birth too: its failure is the call's (for that subject).
    const notified = await pipeline.evaluate([mother], childSearchFails, undefined, { partial: true });
    assert.deepEqual(
      notified.failures?.map((f) => f.subjectRef),
      [CHILD],
    );
    // A recheck of her row maps her alone.
    const rechecked = await pipeline.evaluate([mother], childSearchFails, undefined, { partial: true, readers: false });
    assert.deepEqual(rechecked.failures, []);
    assert.equal(rechecked.subjects, mappings.subjectsFor(mother).length);
  } finally {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('a shared record (more readers than the cap) is warned of and counted once a version, however often it is seen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-readers-'));
  const ledger = openLedger(join(dir, 'bridge.db'));
  try {
    const shared: string[] = [];
    const pipeline = new SourcePipeline({
      sourceId: 'emr',
      mappings,
      ledger,
      logger: silentLogger,
      mapOptions: () => ({ resolveLocation: (ref) => ref }),
      probe: async () => {},
      maxContextReaders: 0,
      onSharedRecord: (type) => shared.push(type),
    });
    const child = birth.find((r) => `Patient/${r.id}` === CHILD);
    const mother = birth.find((r) => `Patient/${r.id}` === MOTHER);
    assert.ok(child && mother);
    pipeline.commit((await pipeline.evaluate([child], all)).results);
    const seen = (versionId: string) =>
      pipeline.evaluate([{ ...mother, meta: { ...mother.meta, versionId } }], all, undefined, { partial: true });
    // A notification of version 2, then the poll that reads it again, then the next poll's overlap.
    for (let i = 0; i < 3; i++) assert.equal((await seen('2')).subjects, mappings.subjectsFor(mother).length);
    assert.deepEqual(shared, ['Patient']);
    await seen('3');
    assert.deepEqual(shared, ['Patient', 'Patient'], 'another change of it is counted');
  } finally {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
