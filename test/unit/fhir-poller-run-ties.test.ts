// A run of resources sharing one lastUpdated, longer than the page the server allows (OpenMRS caps `_count`
// and stamps to the second, so a bulk import makes long runs), on a server whose tie order depends on the
// query's LIMIT/OFFSET (MySQL documents this for ORDER BY on a non-unique column). The order is fixed per
// query, so every reading of the run sees the same subset: readings agree on a run none of them read whole.
// The watermark must never pass a member not read, and no member may be evaluated twice.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { guardedPatientPoller, StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

function hash(text: string): number {
  let h = 2166136261;
  for (const c of text) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

/** Offset paging, `_count` capped at `cap` (5); ties ordered by a key of the query's limit and offset. */
class LimitDependentTies extends StubFhirClient {
  private links = new Map<string, { type: string; params: Record<string, string>; offset: number }>();
  private n = 0;
  constructor(
    private readonly tieKey: (limit: number, offset: number) => string,
    private readonly cap = 5,
  ) {
    super();
  }
  private page(type: string, params: Record<string, string>, offset: number): Bundle {
    const limit = Math.min(Number(params._count ?? 100), this.cap);
    const key = this.tieKey(limit, offset);
    const at = (r: Resource) => Date.parse(r.meta?.lastUpdated ?? '');
    const from = params._lastUpdated?.startsWith('ge') ? Date.parse(params._lastUpdated.slice(2)) : -Infinity;
    const only = params._lastUpdated?.startsWith('eq') ? Date.parse(params._lastUpdated.slice(2)) : undefined;
    const matches = [...this.store.values()]
      .filter((r) => r.resourceType === type && at(r) >= from && (only === undefined || at(r) === only))
      .sort((a, b) => at(a) - at(b) || hash(`${key}:${a.id}`) - hash(`${key}:${b.id}`));
    if (params._summary === 'count' && this.counts)
      return { resourceType: 'Bundle', type: 'searchset', total: matches.length };
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: matches.slice(offset, offset + limit).map((resource) => ({ resource, search: { mode: 'match' } })),
    };
    if (matches.length > offset + limit) {
      const url = `http://stub.invalid/fhir?_getpages=x${++this.n}`;
      this.links.set(url, { type, params, offset: offset + limit });
      bundle.link = [{ relation: 'next', url }];
    }
    return bundle;
  }
  override async searchPage(type: string, params: Record<string, string>): Promise<Bundle> {
    this.searches.push({ type, params: { ...params } });
    return this.page(type, params, 0);
  }
  override async nextPage(bundle: Bundle): Promise<Bundle | undefined> {
    const url = bundle.link?.find((l) => l.relation === 'next')?.url;
    const q = url ? this.links.get(url) : undefined;
    return q ? this.page(q.type, q.params, q.offset) : undefined;
  }
}

const tie = '2001-01-01T00:00:05.000Z';
const afterAt = '2001-01-01T00:00:09.000Z';
const run = Array.from({ length: 8 }, (_, i) => `t${i}`);

function setup(client: StubFhirClient) {
  const { pipeline, poller, violations } = guardedPatientPoller(client, 5);
  client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
  for (const id of run) client.put(stamped('Patient', id, tie));
  client.put(stamped('Patient', 'after', afterAt));
  const missing = () => run.filter((id) => !pipeline.evaluated.includes(`Patient/${id}/1`));
  const twice = () => pipeline.evaluated.filter((key, i) => pipeline.evaluated.indexOf(key) !== i);
  return { pipeline, poller, violations, missing, twice };
}

describe('FhirPoller: a run whose tie order depends on LIMIT/OFFSET', () => {
  it('never moves the watermark past a member it did not read, pass after pass (no count from the server)', async () => {
    const client = new LimitDependentTies((_limit, offset) => `${offset}`);
    const { pipeline, poller, violations, twice } = setup(client);
    for (let pass = 0; pass < 3; pass++) {
      await poller.pollOnce();
      assert.deepEqual(violations, [], 'no watermark passed a member not evaluated');
      assert.deepEqual(twice(), [], 'no version evaluated twice');
      assert.ok(pipeline.evaluated.includes('Patient/after/1'), 'what follows the run is read all the same');
      // Its readings met members twice: without a count it is never taken as complete.
      assert.equal(pipeline.cursors.get('lastUpdated:Patient'), tie, `pass ${pass}: held at the run`);
    }
  });

  it("with the server's count, the run is complete once its readings together hold every member", async () => {
    // MySQL's order among ties changes with the LIMIT as well (a smaller page is another query plan).
    const client = new LimitDependentTies((limit, offset) => `${limit}:${offset}`);
    client.counts = true;
    const { pipeline, poller, violations, missing, twice } = setup(client);
    for (let pass = 0; pass < 3 && missing().length > 0; pass++) {
      await poller.pollOnce();
      assert.deepEqual(violations, [], 'no watermark passed a member not evaluated');
    }
    await poller.pollOnce(); // the pass after the last member was read completes the run, if that one did not
    assert.deepEqual(missing(), [], 'every member read');
    assert.deepEqual(twice(), [], 'no version evaluated twice');
    assert.deepEqual(violations, []);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), afterAt, 'the watermark passed the run');
    const counts = client.searches.filter((s) => s.params._summary === 'count');
    assert.ok(counts.length > 0 && counts.every((s) => s.params._lastUpdated === `eq${tie}`), 'the run was counted');
  });

  it('a count larger than the run (a server that ignored eq) does not hold the watermark at a run read whole', async () => {
    class Overcounting extends StubFhirClient {
      override async searchPage(type: string, params: Record<string, string>): Promise<Bundle> {
        if (params._summary === 'count') {
          this.searches.push({ type, params: { ...params } });
          return { resourceType: 'Bundle', type: 'searchset', total: 1000 };
        }
        return super.searchPage(type, params);
      }
    }
    const client = new Overcounting(); // ties in a fixed order
    client.paging = 'offset';
    client.maxCount = 5;
    const { pipeline, poller, violations, missing, twice } = setup(client);
    await poller.pollOnce();
    assert.deepEqual([missing(), twice(), violations], [[], [], []]);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), afterAt, 'two agreeing readings complete it');
  });

  it("a run read whole, with the server's count, is complete at the reading that finds nothing new", async () => {
    const client = new StubFhirClient(); // ties in a fixed order
    client.paging = 'offset';
    client.maxCount = 5;
    client.counts = true;
    const { pipeline, poller, violations, missing, twice } = setup(client);
    await poller.pollOnce();
    assert.deepEqual([missing(), twice(), violations], [[], [], []]);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), afterAt);
    // The run's searches: the page of 5, one asking for 20 (capped to 5), the count, and a second reading
    // (a count reached by a reading that found members new could be a member that left and one that joined).
    const fromTie = client.searches.filter((s) => s.params._lastUpdated === `ge${tie}`);
    assert.equal(fromTie.length, 3, 'two readings of the run (its first page asked for at two sizes)');
  });

  it("with the server's count, completes a run no single pass reads whole from the members read over the passes", async () => {
    // 150 members, pages capped at 10, each limit and offset in its own order: a reading gives about two thirds
    // of the run. No pass's readings hold every member (without what earlier passes read, the watermark stays
    // at the run for good); two passes' readings, eight page sizes, do.
    const client = new LimitDependentTies((limit, offset) => `${limit}:${offset}`, 10);
    client.counts = true;
    const { pipeline, poller, violations } = guardedPatientPoller(client, 5);
    const members = Array.from({ length: 150 }, (_, i) => `m${i}`);
    for (const id of members) client.put(stamped('Patient', id, tie));
    client.put(stamped('Patient', 'after', afterAt));
    let passes = 0;
    while (passes < 10 && pipeline.cursors.get('lastUpdated:Patient') !== afterAt) {
      passes++;
      await poller.pollOnce();
      assert.deepEqual(violations, [], 'no watermark passed a member not evaluated');
    }
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), afterAt, 'the watermark passed the run');
    assert.ok(passes <= 3, `within three passes (${passes})`);
    assert.deepEqual(
      members.filter((id) => !pipeline.evaluated.includes(`Patient/${id}/1`)),
      [],
      'every member read',
    );
    const twice = pipeline.evaluated.filter((key, i) => pipeline.evaluated.indexOf(key) !== i);
    assert.deepEqual(twice, [], 'no version evaluated twice');
  });

  it('reads the run with every page size from the one served down to 1, pass after pass', async () => {
    const client = new LimitDependentTies((limit, offset) => `${limit}:${offset}`, 10); // no count
    // Pages of 12 asked, so that no size below 10 is asked but by the readings of the run.
    const { pipeline, poller } = guardedPatientPoller(client, 12);
    for (let i = 0; i < 150; i++) client.put(stamped('Patient', `m${i}`, tie));
    client.put(stamped('Patient', 'after', afterAt));
    for (let pass = 0; pass < 3; pass++) await poller.pollOnce();
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), tie, 'held at the run');
    const fromTie = client.searches.filter((s) => s.params._lastUpdated === `ge${tie}` && !s.params._summary);
    const sizes = new Set(fromTie.map((s) => Math.min(Number(s.params._count), 10)));
    // Each size orders the run its own way: one never asked would leave the members only it shows unread.
    assert.deepEqual(
      [...sizes].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });
});
