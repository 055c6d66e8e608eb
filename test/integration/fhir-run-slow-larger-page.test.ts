// A run of resources sharing one lastUpdated (a transaction Bundle, a bulk import) longer than poll.pageSize
// is first asked for in one larger page (`_count` ×4 per step, up to 1,000). A slow EMR that answers
// poll.pageSize pages at once but not that larger page within sources[].timeoutMs must not stop the
// source at the run for good: the run is read in smaller pages instead, and the births after it too.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { birthResources, startHarness } from './helpers/bridge-harness.js';
import { startFaultProxy } from './helpers/fault-proxy.js';

const PAGE_SIZE = 2;

/** A poll search (`_sort=_lastUpdated`, its `next` links too) for more than poll.pageSize records. */
function largerPollSearch(url: URL): boolean {
  return url.searchParams.get('_sort') === '_lastUpdated' && Number(url.searchParams.get('_count')) > PAGE_SIZE;
}

/** `Type _count` of each larger poll search. */
function largerSearches(seen: Array<{ url: string }>): string[] {
  return seen
    .map((s) => new URL(s.url, 'http://x'))
    .filter(largerPollSearch)
    .map((url) => `${url.pathname.split('/').pop()} ${url.searchParams.get('_count')}`);
}

describe('FHIR source: a transaction-Bundle run on a slow server', () => {
  it('reads the run in poll.pageSize pages when the larger page times out, and the births after it', async () => {
    const proxy = await startFaultProxy();
    // Six births in one transaction share one lastUpdated (every type's run is longer than a page); three
    // more follow a few ms apart, all within poll.overlapSeconds, so the second pass reads the run again.
    const frozen = Date.parse('2026-11-20T10:00:00.000Z');
    let now = frozen;
    let ticking = false;
    const h = await startHarness({
      poll: { pageSize: PAGE_SIZE, overlapSeconds: 2 },
      fhirClock: () => (ticking ? ++now : now),
      source: {
        baseUrl: (sandbox) => {
          proxy.target = sandbox;
          return `${proxy.url}${new URL(sandbox).pathname}`;
        },
        timeoutMs: 1000,
      },
    });
    try {
      // Poll pages of poll.pageSize are answered at once; a larger one never within the timeout. (The
      // bridge's other searches, for the records a birth refers to, are answered.)
      proxy.rules.push((req) => (largerPollSearch(new URL(req.url ?? '/', 'http://x')) ? () => undefined : undefined));
      await h.transaction(Array.from({ length: 6 }, (_, i) => birthResources(i)).flat());
      now = frozen + 100;
      ticking = true;
      await h.writeBirths(6, 3);

      const passes = [];
      const callsAfter: number[] = [];
      for (let pass = 0; pass < 2; pass++) {
        passes.push(await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 }));
        callsAfter.push(proxy.seen.length);
      }
      const status = h.bridge.sourceStatuses()[0];
      assert.deepEqual(
        passes.map((p) => p.failedSources),
        [[], []],
        `every pass reads on (last error: ${status?.lastError})`,
      );
      const rows = h.rows();
      assert.equal(rows.length, 9);
      assert.equal(rows.filter((r) => r.state === 'delivered').length, 9, 'the run and the births after it');
      // The second pass meets the run again (it is within the overlap), in pages of poll.pageSize.
      const runAt = new Date(frozen).toISOString();
      const secondPass = proxy.seen.slice(callsAfter[0]).map((s) => new URL(s.url, 'http://x'));
      assert.ok(
        secondPass.some(
          (url) =>
            url.pathname.endsWith('/Patient') &&
            url.searchParams.get('_lastUpdated') === `ge${runAt}` &&
            url.searchParams.get('_count') === String(PAGE_SIZE),
        ),
        'the second pass reads the run',
      );
      // The larger page is asked once per type, not retried, and not again in the second pass.
      const larger = largerSearches(proxy.seen);
      const types = [...new Set(larger.map((l) => l.split(' ')[0]))].sort();
      assert.ok(types.includes('Patient') && types.includes('Encounter'), `runs met: ${types.join(', ')}`);
      assert.deepEqual(
        larger.sort(),
        types.map((type) => `${type} 8`),
      );
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
