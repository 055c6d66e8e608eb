// A DHIS2 pass whose page request the bridge itself cuts off (the client closed at shutdown, or at a sync
// pass's deadline) was counted as a failed pass, and logged "poll pass failed" as the bridge stopped; the
// FHIR poller ends such a pass as stopped. Against the DHIS2 simulator behind a proxy that never answers
// the list.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { createLogger } from '../../src/observability/logger.js';
import { startDhis2Simulator } from '../../src/sandbox/dhis2/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { finished, spawnCli } from './helpers/bridge-cli.js';
import { sleep } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, demoEntities, dhis2ConfigObject } from './helpers/dhis2-harness.js';
import { startDhis2HarnessBehindProxy } from './helpers/dhis2-proxy.js';
import { type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

const LIST = '/api/tracker/trackedEntities';
const PASS_FAILED = 'poll pass failed; the watermark stays where it was';

async function untilListAsked(proxy: FaultProxy): Promise<void> {
  const asked = () => proxy.seen.some((s) => new URL(s.url, 'http://x').pathname === LIST);
  for (let i = 0; i < 1_000 && !asked(); i++) await sleep(20);
  assert.ok(asked(), 'the list was asked for');
}

async function hangingList() {
  const lines: Array<{ msg: string }> = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const { proxy, h } = await startDhis2HarnessBehindProxy({ births: 2, deaths: 0, writeBack: false, logger });
  proxy.rules.push((req) => (new URL(req.url ?? '/', 'http://x').pathname === LIST ? () => undefined : undefined));
  const listAsked = () => untilListAsked(proxy);
  const status = () => {
    const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
    assert.ok(source);
    return source.poller.status;
  };
  return { proxy, h, lines, listAsked, status };
}

describe('DHIS2 poller: a page request cut off by the bridge itself', () => {
  it('at shutdown ends the pass as stopped: no failure counted, no "poll pass failed"', async () => {
    const { proxy, h, lines, listAsked, status } = await hangingList();
    try {
      const pass = h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 }).catch(() => undefined);
      await listAsked();
      await h.bridge.stop();
      await pass;
      assert.equal(status().consecutiveFailures, 0, String(status().lastError));
      assert.equal(status().lastError, undefined);
      assert.deepEqual(
        lines.filter((l) => l.msg === PASS_FAILED),
        [],
      );
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("at a sync pass's deadline: the pass says it reached its deadline, not that the source failed", async () => {
    const { proxy, h, listAsked, status } = await hangingList();
    try {
      const pass = h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 1_500 });
      await listAsked();
      const summary = await pass;
      assert.equal(summary.timedOut, true);
      assert.equal(summary.ok, false);
      assert.deepEqual(summary.failedSources, [], JSON.stringify(summary.sourceErrors));
      assert.equal(status().consecutiveFailures, 0);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('sync --once stopped by SIGTERM during a page still exits 1 as stopped, and logs no failed pass', async () => {
    const dhis2 = await startDhis2Simulator({ port: 0, seed: demoEntities(2, 0) });
    const sim = await startOpenCrvsSimulator({ port: 0 });
    const proxy = await startFaultProxy();
    const dir = mkdtempSync(join(tmpdir(), 'dhis2-poll-stop-'));
    try {
      proxy.target = dhis2.baseUrl;
      proxy.rules.push((req) => (new URL(req.url ?? '/', 'http://x').pathname === LIST ? () => undefined : undefined));
      const object = dhis2ConfigObject({
        dhis2BaseUrl: proxy.url,
        sim,
        dbPath: join(dir, 'bridge.db'),
        writeBack: false,
      });
      const config = join(dir, 'bridge.yaml');
      writeFileSync(config, stringify(object));
      const child = spawnCli(['sync', '--once', '--config', config, '--source', BIRTHS_SOURCE], { LOG_LEVEL: 'info' });
      const result = finished(child, 30_000);
      await untilListAsked(proxy);
      child.kill('SIGTERM');
      const { code, stderr } = await result;
      assert.equal(code, 1, stderr);
      assert.match(stderr, /sync stopped by SIGTERM: rows in flight were handed back/);
      assert.doesNotMatch(stderr, /poll pass failed/);
    } finally {
      await proxy.close();
      await Promise.all([dhis2.close(), sim.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
