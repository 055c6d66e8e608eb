// A run of equal updatedAt (one bulk import, an Android sync) longer than poll.pageSize is first asked for
// in one larger page (×4 per step, up to 1,000 records, with the source's `fields`). A slow DHIS2 that
// answers poll.pageSize pages at once but not that larger page within sources[].timeoutMs must not stop
// the source at the run for good: the run is read in smaller pages instead, and the births after it too.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHILD_PROGRAMME } from '../../src/sandbox/dhis2/index.js';
import { BIRTHS_SOURCE, startDhis2Harness } from './helpers/dhis2-harness.js';
import { startFaultProxy } from './helpers/fault-proxy.js';

const LIST = '/api/tracker/trackedEntities';

/** The pageSize each list call asked for (count calls of pageSize 1 left out). */
function listPageSizes(seen: Array<{ url: string }>): number[] {
  return seen
    .map((s) => new URL(s.url, 'http://x'))
    .filter((url) => url.pathname === LIST && url.searchParams.get('totalPages') !== 'true')
    .map((url) => Number(url.searchParams.get('pageSize') ?? '50'));
}

async function startSlowRun(options: { timeoutMs: number }) {
  const proxy = await startFaultProxy();
  const h = await startDhis2Harness({
    births: 9,
    deaths: 0,
    writeBack: false,
    // Six of the nine children (and their events) stamped alike, as one bulk import does.
    entities: (entities) => {
      const children = entities.filter((te) => te.enrollments?.some((en) => en.program === CHILD_PROGRAMME));
      const run = new Set(children.slice(0, 6).map((te) => te.trackedEntity));
      const stamp = String(children[0]?.updatedAt);
      return entities.map((te) =>
        run.has(te.trackedEntity)
          ? {
              ...te,
              updatedAt: stamp,
              enrollments: te.enrollments?.map((en) => ({
                ...en,
                updatedAt: stamp,
                events: en.events?.map((ev) => ({ ...ev, updatedAt: stamp })),
              })),
            }
          : te,
      );
    },
    configure: ({ sources }) => {
      proxy.target = String(sources[0]?.baseUrl);
      sources[0] = {
        ...sources[0],
        baseUrl: proxy.url,
        timeoutMs: options.timeoutMs,
        poll: { ...(sources[0]?.poll as object), pageSize: 2 },
      };
    },
  });
  return { proxy, h };
}

describe('DHIS2 source: a bulk-import run on a slow server', () => {
  it('reads the run in poll.pageSize pages when the larger page times out, and the births after it', async () => {
    const { proxy, h } = await startSlowRun({ timeoutMs: 1000 });
    try {
      // Pages of poll.pageSize (2) are answered at once; a page 4× larger never within the timeout.
      proxy.rules.push((req) => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname !== LIST || Number(url.searchParams.get('pageSize') ?? '50') < 8) return undefined;
        return () => undefined;
      });
      const passes = [];
      for (let pass = 0; pass < 3; pass++) passes.push(await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 }));
      const status = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE);
      assert.deepEqual(
        passes.map((p) => p.failedSources),
        [[], [], []],
        `every pass reads on (last error: ${status?.lastError})`,
      );
      const rows = h.rows();
      assert.equal(rows.length, 9);
      assert.equal(rows.filter((r) => r.state === 'delivered').length, 9, 'the run and the births after it');
      // The larger page is asked once, not retried, and not again for the same run in later passes.
      const larger = listPageSizes(proxy.seen).filter((size) => size >= 8);
      assert.deepEqual(larger, [8]);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('names timeoutMs and pageSize, not baseUrl, when even poll.pageSize pages time out', async () => {
    const { proxy, h } = await startSlowRun({ timeoutMs: 300 });
    try {
      proxy.rules.push((req) => (new URL(req.url ?? '/', 'http://x').pathname === LIST ? () => undefined : undefined));
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      const error = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE)?.lastError ?? '';
      assert.match(error, /timeout/);
      assert.match(error, /sources\[\]\.timeoutMs/);
      assert.match(error, /sources\[\]\.poll\.pageSize/);
      assert.doesNotMatch(error, /baseUrl/);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
