// The write-back at the end of `sync --once` (Bridge.syncOnce) against a DHIS2 that fails it: each job is
// tried at most once a pass, whatever its backoff, the pass's --timeout bounds it, and an attempt the
// bridge cut off itself (the deadline, a stop) is not counted and leaves the job's last error as the
// source gave it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startDhis2Simulator } from '../../src/sandbox/dhis2/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { WriteBackStore } from '../../src/sources/writeback/index.js';
import { runCli } from './helpers/bridge-cli.js';
import {
  BIRTHS_SOURCE,
  type Dhis2Harness,
  demoEntities,
  dhis2ConfigObject,
  startDhis2Harness,
} from './helpers/dhis2-harness.js';
import { dhis2ImportRefused, type FaultProxy, noAnswer, startFaultProxy, unavailable } from './helpers/fault-proxy.js';

const isImport = (req: IncomingMessage) => req.method === 'POST' && (req.url ?? '').startsWith('/api/tracker?');
const isEventRead = (req: IncomingMessage) =>
  req.method === 'GET' && (req.url ?? '').startsWith('/api/tracker/events/');

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

/** Until every pending job's backoff has passed. */
async function untilDue(h: Dhis2Harness): Promise<void> {
  const due = Math.max(...jobsOf(h).map((j) => j.nextAttemptAt));
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now() + 20)));
}

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

  it('ends at its --timeout when DHIS2 hangs on the write-back reads, counting no attempt it cut off', async () => {
    const proxy = await startFaultProxy();
    // Each attempt would take the client's three tries of 2 s: longer than what the pass has left.
    const h = await behindProxy(proxy, 12, { baseDelayMs: 600_000, maxDelayMs: 600_000 }, { timeoutMs: 2000 });
    try {
      // Delivered in a pass of their own, however long that takes, so the short pass's deadline falls among
      // the write-backs: their first attempt refused for good, then re-queued by an operator (attempts 0).
      proxy.rules.push((req) =>
        isImport(req) ? dhis2ImportRefused('E1000', 'User has no write access to organisation unit') : undefined,
      );
      assert.ok((await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 })).ok, 'every birth delivered');
      for (const job of jobsOf(h)) assert.ok(h.bridge.writeBacks?.requeue(job.rowId), `job of row ${job.rowId}`);
      const before = jobsOf(h).map((j) => ({ rowId: j.rowId, attempts: j.attempts, lastError: j.lastError }));
      assert.equal(before.length, 12);
      proxy.rules.length = 0;
      proxy.rules.push((req) => (isEventRead(req) ? noAnswer() : undefined));
      const reads = proxy.seen.filter(isEventReadSeen).length;
      // Waited for, the attempts would end in the client's timeouts, each counted with its error.
      const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 4000 });
      assert.ok(summary.ok, 'a write-back cut off changes no delivery');
      assert.ok(proxy.seen.filter(isEventReadSeen).length > reads, 'the write-back began');
      assert.deepEqual(
        jobsOf(h).map((j) => ({ rowId: j.rowId, attempts: j.attempts, lastError: j.lastError })),
        before,
        'a call the pass cut off is no attempt, and leaves the last error as DHIS2 gave it',
      );
      for (const job of jobsOf(h)) assert.equal(job.outcome, null);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("keeps a job's real last error when the next pass cuts its attempt off at the deadline", async () => {
    const proxy = await startFaultProxy();
    const h = await behindProxy(proxy, 2, { baseDelayMs: 1500, maxDelayMs: 1500 }, { timeoutMs: 2000 });
    try {
      // Pass 1: delivered; each write-back meets a 503 and waits for its backoff.
      proxy.rules.push((req) => (isImport(req) ? unavailable() : undefined));
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      await untilDue(h);
      const before = jobsOf(h).map((j) => ({ rowId: j.rowId, attempts: j.attempts, lastError: j.lastError }));
      assert.deepEqual(
        before.map((j) => j.attempts),
        [1, 1],
      );
      // Pass 2: DHIS2 no longer answers the event reads; the pass reaches its deadline during them.
      proxy.rules.length = 0;
      proxy.rules.push((req) => (isEventRead(req) ? noAnswer() : undefined));
      const reads = proxy.seen.filter(isEventReadSeen).length;
      await h.bridge.syncOnce(undefined, { timeoutMs: 3000 });
      assert.ok(proxy.seen.filter(isEventReadSeen).length > reads, 'pass 2 tried them');
      assert.deepEqual(
        jobsOf(h).map((j) => ({ rowId: j.rowId, attempts: j.attempts, lastError: j.lastError })),
        before,
        'no attempt counted, and the last error is still the 503',
      );
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('a stop (SIGTERM, serve shutting down) counts no attempt for the write-backs it cuts off', async () => {
    const proxy = await startFaultProxy();
    const h = await behindProxy(proxy, 2, { baseDelayMs: 1500, maxDelayMs: 1500 }, { timeoutMs: 10_000 });
    try {
      proxy.rules.push((req) => (isImport(req) ? unavailable() : undefined));
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      await untilDue(h);
      const before = jobsOf(h).map((j) => ({ rowId: j.rowId, attempts: j.attempts, lastError: j.lastError }));
      proxy.rules.length = 0;
      proxy.rules.push((req) => (isEventRead(req) ? noAnswer() : undefined));
      const reads = proxy.seen.filter(isEventReadSeen).length;
      const running = h.bridge.writeBacks?.drain();
      for (let waited = 0; proxy.seen.filter(isEventReadSeen).length === reads; waited += 10) {
        assert.ok(waited < 10_000, 'the drain reads the event');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // Waited for, the hanging reads would end in the client's timeouts, each attempt counted with its error.
      await h.bridge.stop();
      await running;
      const store = new WriteBackStore(h.config.store.path);
      try {
        assert.deepEqual(
          store.list().map((j) => ({ rowId: j.rowId, attempts: j.attempts, lastError: j.lastError })),
          before,
          'no attempt counted, and the last error is not "the bridge is stopping"',
        );
      } finally {
        store.close();
      }
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});

function isImportSeen(seen: { method: string; url: string }): boolean {
  return seen.method === 'POST' && seen.url.startsWith('/api/tracker?');
}

function isEventReadSeen(seen: { method: string; url: string }): boolean {
  return seen.method === 'GET' && seen.url.startsWith('/api/tracker/events/');
}

describe('a write-back DHIS2 refuses for good', () => {
  /** Births delivered, their write-backs refused with E1000 (the user may not capture data in the org unit). */
  async function refused(proxy: FaultProxy, births: number): Promise<Dhis2Harness> {
    const h = await behindProxy(proxy, births, {});
    proxy.rules.push((req) =>
      isImport(req) ? dhis2ImportRefused('E1000', 'User has no write access to organisation unit') : undefined,
    );
    return h;
  }

  it('shows in /metrics as bridge_write_backs{source,state}, every state of the source present', async () => {
    const proxy = await startFaultProxy();
    const h = await refused(proxy, 2);
    try {
      const before = (await h.bridge.renderMetrics()).body;
      for (const state of ['pending', 'written', 'already', 'abandoned'])
        assert.ok(
          before.includes(`bridge_write_backs{source="${BIRTHS_SOURCE}",state="${state}"} 0`),
          `${state} at 0 before any job:\n${before
            .split('\n')
            .filter((l) => l.includes('write_back'))
            .join('\n')}`,
        );
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.ok(jobsOf(h).every((j) => j.outcome === 'abandoned'));
      const { body } = await h.bridge.renderMetrics();
      assert.match(body, new RegExp(`^bridge_write_backs\\{source="${BIRTHS_SOURCE}",state="abandoned"\\} 2$`, 'm'));
      assert.match(body, new RegExp(`^bridge_write_backs\\{source="${BIRTHS_SOURCE}",state="pending"\\} 0$`, 'm'));
      assert.doesNotMatch(body, /(TrackedEntity|Event)\//, 'no record reference in the metrics');
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('counts each abandonment in bridge_write_backs_abandoned_total, which a re-queue does not take back', async () => {
    const proxy = await startFaultProxy();
    const h = await refused(proxy, 2);
    const metric = async (name: string, state?: string) => {
      const labels = `source="${BIRTHS_SOURCE}"${state ? `,state="${state}"` : ''}`;
      const line = (await h.bridge.renderMetrics()).body.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const seen = async () => ({
      counted: await metric('bridge_write_backs_abandoned_total'),
      now: await metric('bridge_write_backs', 'abandoned'),
    });
    try {
      // There at 0 before the first abandonment, so increase() sees that one.
      assert.deepEqual(await seen(), { counted: 0, now: 0 });
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(await seen(), { counted: 2, now: 2 });
      // A re-queue lowers the gauge: with an abandonment in the same hour, delta() of it would see nothing.
      const [first] = jobsOf(h);
      assert.ok(first && h.bridge.writeBacks?.requeue(first.rowId));
      assert.deepEqual(await seen(), { counted: 2, now: 1 });
      // Refused again: abandoned a second time, counted a second time.
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(await seen(), { counted: 3, now: 2 });
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('shows a source no longer writing back at 0 before its abandonments count, so increase() sees them', async () => {
    const proxy = await startFaultProxy();
    // Both sources write back; DHIS2 fails the births' writes, so their jobs are left waiting.
    const h = await startDhis2Harness({
      births: 2,
      deaths: 0,
      configure: ({ sources }) => {
        proxy.target = String(sources[0]?.baseUrl);
        sources[0] = { ...sources[0], baseUrl: proxy.url };
      },
    });
    let restarted: Bridge | undefined;
    try {
      proxy.rules.push((req) => (isImport(req) ? unavailable() : undefined));
      await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
      assert.deepEqual(
        jobsOf(h).map((j) => [j.sourceId, j.outcome]),
        [
          [BIRTHS_SOURCE, null],
          [BIRTHS_SOURCE, null],
        ],
      );
      await untilDue(h);
      await h.bridge.stop();
      // Started again with the births' write-back taken out: its jobs are abandoned by the first run, before
      // any scrape, under a source whose series nothing made at 0 beforehand.
      const sources = h.config.sources.map((s) => {
        if (s.id !== BIRTHS_SOURCE) return s;
        const { writeBack: _, ...rest } = s;
        return rest;
      });
      restarted = new Bridge(
        { ...h.config, sources },
        { logger: silentLogger, schedule: false, http: false, worker: false },
      );
      await restarted.start();
      const summary = await restarted.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.equal(summary.writeBacks?.abandoned, 2);
      const counted = async () => {
        const name = `bridge_write_backs_abandoned_total{source="${BIRTHS_SOURCE}"} `;
        const line = (await restarted?.renderMetrics())?.body.split('\n').find((l) => l.startsWith(name));
        return line === undefined ? undefined : Number(line.slice(name.length));
      };
      // Prometheus takes a series' first sample as its start: scraped at 2 first, increase() would be 0.
      assert.equal(await counted(), 0, 'the first scrape shows the series at 0');
      assert.equal(await counted(), 2, 'the next one counts both abandonments');
      assert.equal(await counted(), 2, 'once');
    } finally {
      await restarted?.stop();
      await h.close();
      await proxy.close();
    }
  });

  it('is reported by sync --once, in its summary and with --json, without changing the exit status', async () => {
    const proxy = await startFaultProxy();
    const dhis2 = await startDhis2Simulator({ port: 0, seed: demoEntities(2, 0) });
    const sim = await startOpenCrvsSimulator({ port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'bridge-writeback-cli-'));
    try {
      proxy.target = dhis2.baseUrl;
      const object = dhis2ConfigObject({ dhis2BaseUrl: proxy.url, sim, dbPath: join(dir, 'bridge.db') });
      (object.sources as unknown[]).splice(1, 1);
      const config = join(dir, 'bridge.json');
      writeFileSync(config, JSON.stringify(object));
      proxy.rules.push((req) =>
        isImport(req) ? dhis2ImportRefused('E1000', 'User has no write access to organisation unit') : undefined,
      );

      const text = await runCli(['sync', '--once', '--config', config]);
      assert.equal(text.code, 0, `a write-back changes no delivery: exit 0\n${text.stdout}${text.stderr}`);
      assert.match(text.stdout, /^write-backs to the sources: 2 abandoned/m);
      const lines = text.stdout.split('\n').filter((line) => /^ {2}#\d+ .*abandoned/.test(line));
      assert.equal(lines.length, 2, text.stdout);
      for (const line of lines) assert.match(line, new RegExp(`${BIRTHS_SOURCE}.*E1000`));
      assert.match(text.stdout, /result: everything found was delivered/);

      // Re-queued (as an operator would once the user may write there), and refused again: --json.
      const store = new WriteBackStore(join(dir, 'bridge.db'));
      try {
        for (const job of store.list()) assert.ok(store.requeue(job.rowId, Date.now()));
      } finally {
        store.close();
      }
      const json = await runCli(['sync', '--once', '--config', config, '--json']);
      assert.equal(json.code, 0, json.stdout + json.stderr);
      const summary = JSON.parse(json.stdout);
      assert.equal(summary.ok, true);
      assert.equal(summary.writeBacks.tried, 2);
      assert.equal(summary.writeBacks.abandoned, 2);
      assert.equal(summary.writeBacks.failures.length, 2);
      for (const failure of summary.writeBacks.failures) {
        assert.equal(failure.sourceId, BIRTHS_SOURCE);
        assert.equal(failure.state, 'abandoned');
        assert.match(failure.error, /E1000/);
      }
      assert.doesNotMatch(JSON.stringify(summary.writeBacks), /(TrackedEntity|Event)\//, 'no record reference');
    } finally {
      await proxy.close();
      await Promise.all([dhis2.close(), sim.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
