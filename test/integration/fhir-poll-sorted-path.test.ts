// The poller's checks that a FHIR server really sorted (its self link, the search after a page with more to
// come) must cost nothing against a server that does: on the FHIR sandbox (fhir-router, keyset paging,
// `total` always given) a pass over many births stays on the keyset path, one search per page, and never
// follows a `next` link to check on the server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle } from '@medplum/fhirtypes';
import { type Harness, startHarness } from './helpers/bridge-harness.js';

const BIRTHS = Number(process.env.SORTED_PATH_BIRTHS ?? 600);
const PAGE_SIZE = Number(process.env.SORTED_PATH_PAGE_SIZE ?? 100);

describe('polling the FHIR sandbox: a sorted server stays on the keyset path', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ worker: false, poll: { pageSize: PAGE_SIZE } });
  });
  after(async () => {
    await h?.close();
  });

  it('reads every birth with one keyset search per page and follows no `next` link of a poll search', async () => {
    await h.writeBirths(0, BIRTHS);
    const source = h.bridge.sources[0];
    assert.ok(source);
    const client = source.client;
    const pollSearches: Array<{ type: string; entries: number; self: string | undefined }> = [];
    const followedPollLinks: string[] = [];
    let calls = 0;
    const searchPage = client.searchPage.bind(client);
    client.searchPage = async (type, params) => {
      calls++;
      const page = await searchPage(type, params);
      if (String(params._sort ?? '').startsWith('_lastUpdated')) {
        const self = page.link?.find((l) => l.relation === 'self')?.url;
        pollSearches.push({ type, entries: page.entry?.length ?? 0, self });
      }
      return page;
    };
    const nextPage = client.nextPage.bind(client);
    client.nextPage = async (page: Bundle) => {
      calls++;
      const next = page.link?.find((l) => l.relation === 'next')?.url ?? '';
      if (next.includes('_sort=_lastUpdated')) followedPollLinks.push(next);
      return nextPage(page);
    };
    const report = await source.poller.pollOnce();
    assert.equal(report.mapped.inserted, BIRTHS);
    assert.ok(pollSearches.length > 0);
    for (const search of pollSearches)
      assert.match(search.self ?? '', /_sort=_lastUpdated/, 'the sandbox echoes _sort');
    assert.deepEqual(followedPollLinks, [], 'no `next` link of a poll search was followed');
    // A keyset over distinct timestamps re-reads one record per page: per type, at most one search more
    // than the pages its resources fill.
    const byType = new Map<string, { searches: number; entries: number }>();
    for (const s of pollSearches) {
      const t = byType.get(s.type) ?? { searches: 0, entries: 0 };
      byType.set(s.type, { searches: t.searches + 1, entries: t.entries + s.entries });
    }
    for (const [type, t] of byType) {
      const distinct = t.entries - (t.searches - 1); // each later page re-reads the previous page's newest
      assert.ok(t.searches <= Math.ceil(distinct / (PAGE_SIZE - 1)) + 1, `${type}: ${t.searches} searches`);
    }
    console.log(
      `poll searches: ${pollSearches.length}, searches and next pages in all: ${calls}, for ${BIRTHS} births at pageSize ${PAGE_SIZE}`,
    );
  });
});
