// The poller's per-pass cache (CachingFetcher): repeated context reads within a pass cost one call,
// but a search cached before a change must not hide that change when the changed resource comes up
// later in the same pass (its page is what makes the poller re-evaluate the subject).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

const encounter = (id: string, lastUpdated: string): Resource => ({
  resourceType: 'Encounter',
  id,
  meta: { versionId: '1', lastUpdated },
  status: 'finished',
  class: { code: 'IMP' },
  subject: { reference: 'Patient/child' },
});

describe('CachingFetcher (the per-pass cache)', () => {
  it('answers a repeated read or search from the cache', async () => {
    const client = new StubFhirClient();
    client.put(stamped('Patient', 'child', '2001-01-01T00:00:00.000Z'));
    const fetcher = new CachingFetcher(client);
    await fetcher.read('Patient', 'child');
    await fetcher.read('Patient', 'child');
    await fetcher.search('Encounter', { subject: 'Patient/child' });
    await fetcher.search('Encounter', { subject: 'Patient/child' });
    assert.equal(fetcher.reads, 2);
  });

  it('forgets cached searches of a resource type when a page of that type is primed', async () => {
    const client = new StubFhirClient();
    const fetcher = new CachingFetcher(client);
    // Evaluating the child (Patient page) searched its encounters: none yet.
    assert.deepEqual(await fetcher.search('Encounter', { subject: 'Patient/child' }), []);
    // The EMR writes the birth encounter; the same pass reaches the Encounter page holding it.
    const birth = encounter('birth', '2001-01-01T00:00:05.000Z');
    client.put(birth);
    fetcher.prime([birth]);
    const found = await fetcher.search('Encounter', { subject: 'Patient/child' });
    assert.deepEqual(
      found.map((r) => r.id),
      ['birth'],
      'the re-evaluation sees the encounter its own page announced',
    );
  });

  it('forgets the searches of a primed type even after many were evicted from the bounded cache', async () => {
    const client = new StubFhirClient();
    const fetcher = new CachingFetcher(client, { maxCacheEntries: 2 });
    for (let i = 0; i < 20; i++) await fetcher.search('Encounter', { subject: `Patient/p${i}` });
    await fetcher.search('Observation', { subject: 'Patient/p19' });
    // The cache holds the last two searches: Encounter of p19 and the Observation.
    await fetcher.search('Encounter', { subject: 'Patient/p19' });
    assert.equal(fetcher.reads, 21, 'a cached search costs no call');
    fetcher.prime([encounter('e1', '2001-01-01T00:00:05.000Z')]);
    await fetcher.search('Encounter', { subject: 'Patient/p19' });
    await fetcher.search('Observation', { subject: 'Patient/p19' });
    assert.equal(fetcher.reads, 22, 'the Encounter search is asked again, the Observation one is not');
  });
});
