// The worker's recheck reads a waiting birth's child again before the first send; a child the EMR deleted
// is withdrawn. What counts as "deleted" must be the EMR's own answer, and a deletion must be recorded
// whatever else fails:
// - a 404 page from a proxy in front of the EMR (a route missing while it reloads) says nothing about
//   the child: the row is neither withdrawn (a birth lost) nor sent unchecked (a deleted child notified);
//   it waits, alone (the other birth, read fine, goes out), and the next recheck, with the EMR answering
//   again, decides;
// - the deleted child's last version is read from the EMR's history to find records it was part of; a
//   history that cannot be read (503) must not undo the deletion (a review found the birth sent).
// A proxy between the bridge and the FHIR sandbox plays the misbehaving gateway.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation } from '../../src/sandbox/demo/generate.js';
import { startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { birthResources, bridgeConfigObject, sleep } from './helpers/bridge-harness.js';

type Mode = 'as-is' | 'gateway-404' | 'history-503';

/** Passes everything on to `upstream`, except what the mode changes. */
async function gateway(upstream: string, mode: () => Mode): Promise<{ server: Server; baseUrl: string }> {
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = req.url ?? '';
    if (mode() === 'history-503' && url.includes('/_history')) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('busy');
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host') headers[k] = v;
    const answer = await fetch(`${upstream}${url}`, {
      method: req.method,
      headers,
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    });
    const body = Buffer.from(await answer.arrayBuffer());
    if (mode() === 'gateway-404' && (answer.status === 404 || answer.status === 410)) {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body><h1>404 Not Found</h1><hr>nginx</body></html>');
      return;
    }
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/fhir+json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir` };
}

/** Two births wait; the first child is deleted in the EMR; the worker rechecks through the gateway. */
async function deletedWhileWaiting(mode: Mode, then: (run: Run) => Promise<void>): Promise<void> {
  const sim = await startOpenCrvsSimulator({ port: 0 });
  const fhir = await startFhirSandboxWith({ port: 0, seed: DEMO_FACILITIES.map(facilityLocation) }, {});
  const dir = mkdtempSync(join(tmpdir(), 'bridge-recheck-gone-'));
  let current: Mode = 'as-is';
  const proxy = await gateway(fhir.baseUrl.replace(/\/fhir$/, ''), () => current);
  const config = configFromObject(
    bridgeConfigObject({
      sim,
      fhirBaseUrl: proxy.baseUrl,
      dbPath: join(dir, 'bridge.db'),
      options: { delivery: { settleSeconds: 1, recheckAfterSeconds: 1 } },
    }),
  );
  const bridge = new Bridge(config, { logger: silentLogger, schedule: false, worker: false, http: false });
  try {
    await bridge.start();
    for (const i of [0, 1]) for (const resource of birthResources(i)) await fhir.upsert(resource);
    await bridge.sources[0]?.poller.pollOnce();
    const [first, second] = bridge.ledger.list({ limit: 10 });
    assert.deepEqual([first?.state, second?.state], ['pending', 'pending']);
    const deleted = await fetch(`${fhir.baseUrl}/${first?.subjectKey}`, { method: 'DELETE' });
    assert.ok(deleted.ok);
    current = mode;
    await sleep(1_100); // past recheckAfterSeconds
    await then({
      bridge,
      setMode: (m) => {
        current = m;
      },
      rows: () => bridge.ledger.list({ limit: 10 }).map((r) => [r.subjectKey, r.state, r.skipReason ?? null]),
      events: async () => (await sim.control.events()).length,
      deletedChild: first?.subjectKey ?? '',
      otherChild: second?.subjectKey ?? '',
    });
  } finally {
    await bridge.stop().catch(() => undefined);
    proxy.server.close();
    await fhir.close();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Run {
  bridge: Bridge;
  setMode: (mode: Mode) => void;
  rows: () => Array<[string, string, string | null]>;
  events: () => Promise<number>;
  deletedChild: string;
  otherChild: string;
}

describe('the recheck of a waiting birth whose child the EMR deleted', () => {
  it("waits on a gateway's 404 page, and withdraws the birth once the EMR itself answers", async () => {
    await deletedWhileWaiting('gateway-404', async (run) => {
      // The row is tried again after its lease (2 s here) and waits again: delivery never goes idle.
      await assert.rejects(run.bridge.worker.runUntilIdle({ timeoutMs: 3_000 }), /did not become idle/);
      assert.deepEqual(
        run.rows(),
        [
          [run.deletedChild, 'pending', null],
          [run.otherChild, 'delivered', null],
        ],
        'neither withdrawn nor sent, it waits for a recheck the EMR answers; the birth read fine goes out',
      );
      assert.equal(await run.events(), 1, 'nothing sent unchecked');
      run.setMode('as-is');
      await run.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.deepEqual(run.rows(), [
        [run.deletedChild, 'skipped', 'deleted in the source before it was sent'],
        [run.otherChild, 'delivered', null],
      ]);
      assert.equal(await run.events(), 1);
    });
  });

  it('withdraws the birth when the history of the deleted child cannot be read', async () => {
    await deletedWhileWaiting('history-503', async (run) => {
      await run.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.deepEqual(run.rows(), [
        [run.deletedChild, 'skipped', 'deleted in the source before it was sent'],
        [run.otherChild, 'delivered', null],
      ]);
      assert.equal(await run.events(), 1);
    });
  });
});
