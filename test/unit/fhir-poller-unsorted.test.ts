// A FHIR server that ignores `_sort=_lastUpdated` but honours `_lastUpdated=ge` answers in its own order
// (here: id order). Disorder inside one page gives it away, but disorder on a page boundary does not: with
// [id1 id2 id3(edited, now newest) id4 id5] and pages of 2, every page looks sorted, and the keyset jumps
// from id3's time past id4 and id5. The poller must notice from what the server says (its self link, its
// `total`) or from the search after a page with more to come, and never commit a watermark past them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import {
  guardedPatientPoller,
  type RecordingPipeline,
  StubFhirClient,
  stamped,
} from '../integration/helpers/bridge-stubs.js';

/** A server in id order that fills in `Bundle.total` and/or a self link echoing only what it used. */
class UnsortedServer extends StubFhirClient {
  constructor(private readonly says: { total?: boolean; self?: boolean }) {
    super();
    this.unsorted = true;
  }
  override async searchPage(type: string, params: Record<string, string>): Promise<Bundle> {
    const page = await super.searchPage(type, params);
    const from = params._lastUpdated ? Date.parse(params._lastUpdated.slice(2)) : Number.NEGATIVE_INFINITY;
    const matches = [...this.store.values()].filter((r) => Date.parse(r.meta?.lastUpdated ?? '') >= from);
    if (this.says.total) page.total = matches.length;
    if (this.says.self) {
      const used = new URLSearchParams({ ...params });
      used.delete('_sort'); // not used, so not echoed
      page.link = [...(page.link ?? []), { relation: 'self', url: `http://stub.invalid/fhir/${type}?${used}` }];
    }
    return page;
  }
}

function setup(client: StubFhirClient, records: Resource[]) {
  for (const r of records) client.store.set(`${r.resourceType}/${r.id}`, r);
  return guardedPatientPoller(client, 2);
}

const at = (s: number) => `2001-01-01T00:00:${String(s).padStart(2, '0')}.000Z`;
// In id order; id3 was edited (its lastUpdated moved on to the newest), the server keeps id order.
const boundary = [
  stamped('Patient', 'id1', at(1)),
  stamped('Patient', 'id2', at(2)),
  stamped('Patient', 'id3', at(9), '2'),
  stamped('Patient', 'id4', at(4)),
  stamped('Patient', 'id5', at(5)),
];
// The same, and one more record, newest of all, last in id order: the search from id3's time is no longer
// empty beyond id3, so only what the server says about itself can give it away.
const withLater = [...boundary, stamped('Patient', 'id6', at(10))];

function assertAllOnce(pipeline: RecordingPipeline, records: Resource[], violations: string[]) {
  const expected = records.map((r) => `Patient/${r.id}/${r.meta?.versionId}`).sort();
  assert.deepEqual([...pipeline.evaluated].sort(), expected, 'every record evaluated exactly once');
  assert.deepEqual(violations, [], 'no watermark passed a record not evaluated');
}

describe('FhirPoller against a server that ignores _sort', () => {
  it('notices it when the search after a page with more to come shows nothing beyond that page', async () => {
    const client = new StubFhirClient(); // no total, no self link: only the next search can tell
    client.unsorted = true;
    const { pipeline, poller, violations } = setup(client, boundary);
    await poller.pollOnce();
    assertAllOnce(pipeline, boundary, violations);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), at(9));
    await poller.pollOnce();
    assertAllOnce(pipeline, boundary, violations);
  });

  it('notices it from Bundle.total when the search after such a page counts fewer records than it left', async () => {
    const client = new UnsortedServer({ total: true });
    const { pipeline, poller, violations } = setup(client, withLater);
    await poller.pollOnce();
    assertAllOnce(pipeline, withLater, violations);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), at(10));
  });

  it('notices it from a self link that does not echo _sort, on the first page', async () => {
    const client = new UnsortedServer({ self: true });
    const { pipeline, poller, violations } = setup(client, withLater);
    await poller.pollOnce();
    assertAllOnce(pipeline, withLater, violations);
    assert.equal(client.searches.length, 1, 'read to the end of one search through its next links');
  });

  it('a sorted server where a record was deleted between two searches stays on the keyset path', async () => {
    const client = new StubFhirClient();
    const records = [1, 2, 3, 4].map((s) => stamped('Patient', `p${s}`, at(s)));
    const { pipeline, poller, violations } = setup(client, records);
    // After the first page [p1 p2], p3 and p4 are deleted: the search from p2 shows nothing beyond p2.
    client.beforePage = (served) => {
      if (served === 1) for (const id of ['p3', 'p4']) client.store.delete(`Patient/${id}`);
    };
    await poller.pollOnce();
    assert.deepEqual(pipeline.evaluated, ['Patient/p1/1', 'Patient/p2/1']);
    assert.deepEqual(violations, []);
    assert.equal(client.followed.length, 1, "one look at the first page's next link, which held only later records");
    assert.equal(client.searches.length, 2, 'no search again from the start, as an unsorted reading would');
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), at(2), 'the keyset went on: the watermark moved');
  });
});
