// The write-back at the end of `sync --once` (Bridge.syncOnce) against a DHIS2 that fails it: each job is
// tried at most once a pass, whatever its backoff.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { type Dhis2Harness, startDhis2Harness } from './helpers/dhis2-harness.js';
import { type FaultProxy, startFaultProxy, unavailable } from './helpers/fault-proxy.js';

const isImport = (req: IncomingMessage) => req.method === 'POST' && (req.url ?? '').startsWith('/api/tracker?');

/** The births source alone, behind the proxy, with these write-back and source settings. */
async function behindProxy(
  proxy: FaultProxy,
  births: number,
  writeBack: Record<string, unknown>,
  source: Record<string, unknown> = {},
): Promise<Dhis2Harness> {
  return startDhis2Harness({
    births,
    deaths: 0,
    configure: ({ sources }) => {
      proxy.target = String(sources[0]?.baseUrl);
      sources[0] = {
        ...sources[0],
        baseUrl: proxy.url,
        ...source,
        writeBack: { ...(sources[0]?.writeBack as object), ...writeBack },
      };
      sources.splice(1, 1);
    },
  });
}

const jobsOf = (h: Dhis2Harness) => h.bridge.writeBacks?.store.list() ?? [];

describe('write-back in a sync --once pass', () => {
  it('tries each job once a pass, however short its backoff: a DHIS2 restarting does not spend the budget', async () => {
    const proxy = await startFaultProxy();
    // A backoff of 1 ms makes each failed job due again at once; three attempts abandon it.
    const h = await behindProxy(proxy, 4, { baseDelayMs: 1, maxDelayMs: 1, maxAttempts: 3 });
    try {
      proxy.rules.push((req) => (isImport(req) ? unavailable() : undefined));
      const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
      assert.ok(summary.ok, 'every birth delivered');
      const jobs = jobsOf(h);
      assert.equal(jobs.length, 4);
      for (const job of jobs) {
        assert.equal(job.outcome, null, `job of row ${job.rowId} still pending, not abandoned`);
        assert.equal(job.attempts, 1, `job of row ${job.rowId}: one attempt in one pass`);
        assert.match(job.lastError ?? '', /HTTP 503/);
      }
      assert.equal(proxy.seen.filter(isImportSeen).length, 4 * 3, "one attempt each (the client's three tries)");
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});

function isImportSeen(seen: { method: string; url: string }): boolean {
  return seen.method === 'POST' && seen.url.startsWith('/api/tracker?');
}
