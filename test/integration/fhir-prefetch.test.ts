import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { batchableSearches, loadMappings, type MappingSet, mapSubject } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth, generateDeath } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { comparable } from './helpers/map-results.js';
import { sourceSettings } from './helpers/source-settings.js';

const BIRTHS = 30;
const DEATHS = 10;
const routing = { defaultOffice: 'office-1', facilities: {} };

/** Reads these Patients at once (so they may be batched) and gives back the ids that came. */
async function readPatientIds(fetcher: CachingFetcher, ids: string[]): Promise<Array<string | undefined>> {
  const read = await Promise.all(ids.map((id) => fetcher.read('Patient', id)));
  return read.map((resource) => resource?.id);
}

describe('batched context prefetch (live FHIR source)', () => {
  let sandbox: FhirSandbox;
  let client: FhirSourceClient;
  let set: MappingSet;
  const subjects: Array<{ mappingId: string; subjectRef: string }> = [];

  before(async () => {
    const seed = [];
    for (let i = 0; i < BIRTHS; i++) seed.push(...generateBirth(i));
    for (let i = 0; i < DEATHS; i++) seed.push(...generateDeath(i));
    sandbox = await startFhirSandbox({ port: 0, seed, logger: silentLogger });
    client = new FhirSourceClient(
      sourceSettings(sandbox.baseUrl, { timeoutMs: 10_000, mappings: ['birth.fhir', 'death.fhir'] }),
      { logger: silentLogger },
    );
    set = loadMappings({ names: ['birth.fhir', 'death.fhir'], routing });
    for (const mappingId of ['birth.fhir', 'death.fhir']) {
      for (let i = 0; i < BIRTHS; i++) {
        subjects.push({ mappingId, subjectRef: `Patient/demo-birth-${i}-child` });
        subjects.push({ mappingId, subjectRef: `Patient/demo-birth-${i}-mother` });
      }
      for (let i = 0; i < DEATHS; i++) subjects.push({ mappingId, subjectRef: `Patient/demo-death-${i}-patient` });
    }
  });

  after(async () => {
    await sandbox.close();
  });

  /** Every subject mapped through a plain fetcher, and through one that prefetched them in batches first. */
  async function withAndWithoutPrefetch(source: FhirSourceClient) {
    const mapEach = async (fetcher: CachingFetcher) => {
      const results = [];
      for (const s of subjects) results.push(comparable(await mapSubject(set, s.mappingId, s.subjectRef, fetcher)));
      return results;
    };
    const plain = new CachingFetcher(source);
    const expected = await mapEach(plain);
    const batched = new CachingFetcher(source);
    await batched.prefetch(set, subjects);
    return { plain, expected, batched, actual: await mapEach(batched) };
  }

  it('finds the searches that depend only on the subject reference', () => {
    const searches = batchableSearches(set, ['birth.fhir']);
    assert.ok(searches.some((s) => s.type === 'Encounter' && s.refParam === 'subject'));
    assert.ok(searches.some((s) => s.type === 'RelatedPerson' && s.refParam === 'patient'));
    assert.ok(
      searches.some((s) => s.type === 'Observation' && s.refParam === 'subject' && s.fixed.code?.includes('8339-4')),
    );
  });

  it('maps every subject exactly as without prefetch, with far fewer calls to the server', async () => {
    const { plain, expected, batched, actual } = await withAndWithoutPrefetch(client);

    assert.deepEqual(actual, expected);
    const mapped = expected.filter((r) => r.status === 'mapped');
    assert.equal(mapped.filter((r) => r.eventType === 'birth').length, BIRTHS);
    assert.equal(mapped.filter((r) => r.eventType === 'death').length, DEATHS);
    // Without prefetch every subject runs its own searches; with it, a few batched searches per chunk
    // answer them, and only the reads and the searches that depend on other context remain.
    assert.ok(batched.reads * 3 < plain.reads, `batched ${batched.reads} calls vs ${plain.reads} without prefetch`);
  });

  it('maps every subject exactly as without prefetch on a server that reads a comma list as one value', async () => {
    // Such a server finds nothing for `subject=Patient/a,Patient/b` (no reference equals that string).
    class LiteralLists extends FhirSourceClient {
      override searchBounded(type: string, params: Record<string, string>, maxPages?: number) {
        const listed = Object.entries(params).some(
          ([name, value]) => name !== '_id' && name !== 'code' && value.includes(','),
        );
        return listed
          ? Promise.resolve({ resources: [], complete: true })
          : super.searchBounded(type, params, maxPages);
      }
    }
    const literal = new LiteralLists(client.settings, { logger: silentLogger });
    const { expected, actual } = await withAndWithoutPrefetch(literal);
    assert.deepEqual(actual, expected, 'no subject mapped as if it had no encounter or observation');
    assert.equal(expected.filter((r) => r.status === 'mapped').length, BIRTHS + DEATHS);
  });

  it('sends the reads asked together as one _id search, and reads alone what it did not return', async () => {
    const fetcher = new CachingFetcher(client);
    const refs = Array.from({ length: 12 }, (_, i) => `demo-birth-${i}-mother`);
    const asked = [...refs, 'no-such-patient'];
    const batched = await Promise.all(asked.map((id) => fetcher.read('Patient', id)));
    const single = await Promise.all(asked.map((id) => client.read('Patient', id)));
    assert.deepEqual(batched, single);
    assert.equal(batched.at(-1), undefined);
    // One search for the twelve, then the id it did not return, read on its own (it may be deleted).
    assert.equal(fetcher.reads, 2);
    // Asked again: from the cache.
    await fetcher.read('Patient', 'demo-birth-3-mother');
    assert.equal(fetcher.reads, 2);
  });

  it('falls back to single reads when the batched search fails', async () => {
    class FailingSearches extends FhirSourceClient {
      override searchBounded(): Promise<never> {
        return Promise.reject(new Error('search refused'));
      }
    }
    const failing = new FailingSearches(client.settings, { logger: silentLogger });
    const fetcher = new CachingFetcher(failing);
    const ids = ['demo-birth-0-child', 'demo-birth-1-child', 'demo-death-0-patient'];
    assert.deepEqual(await readPatientIds(fetcher, ids), ids);
    assert.equal(fetcher.reads, 1 + ids.length);
  });

  it('reads one by one from a server that ignores _id lists, once it has seen it do so', async () => {
    // Such a server answers `Patient?_id=a,b` with every patient (here: the search without `_id`).
    class IgnoresIdLists extends FhirSourceClient {
      override searchBounded(type: string, params: Record<string, string>, maxPages?: number) {
        const { _id, ...rest } = params;
        return super.searchBounded(type, rest, maxPages);
      }
    }
    const ignoring = new IgnoresIdLists(client.settings, { logger: silentLogger });
    const first = new CachingFetcher(ignoring);
    const ids = ['demo-birth-4-mother', 'demo-birth-5-mother', 'demo-birth-6-mother'];
    assert.deepEqual(await readPatientIds(first, ids), ids);
    assert.equal(first.reads, 1 + ids.length, 'one search found out, then single reads');
    // A later pass (a new fetcher) over the same source does not try the batch again.
    const later = new CachingFetcher(ignoring);
    assert.deepEqual(await readPatientIds(later, ids), ids);
    assert.equal(later.reads, ids.length);
  });
});
