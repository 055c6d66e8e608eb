// /healthz, /readyz and /metrics of a Bridge on a free port, with the OpenCRVS simulator and the FHIR
// sandbox: ready when everything works, 503 naming the failing check when OpenCRVS refuses the
// credentials or the queue is held, and metrics that say what happened without any personal data.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { openLedger } from '../../src/ledger/index.js';
import { createLogger, type Logger, silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth, generateDeath } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { MAX_INBOX_BYTES, MAX_INBOX_DEPTH } from '../../src/sources/fhir/receiver.js';
import { OPENCRVS_IDENTITY_META } from '../../src/sources/identity.js';
import { corruptLedger } from './helpers/corrupt-ledger.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SEED = [
  ...DEMO_FACILITIES.map(facilityLocation),
  ...[0, 1].flatMap((i) => generateBirth(i, { prefix: 'ops' })),
  ...generateDeath(0, { prefix: 'ops' }),
];

let sim: OpenCrvsSimulator;
let fhir: FhirSandbox;
const dir = mkdtempSync(join(tmpdir(), 'ops-routes-'));
let dbCount = 0;

function newBridge(
  opencrvs: { clientId?: string; clientSecret?: string; clientSecretFile?: string; tokenUrl?: string } = {},
  defaultOffice = 'LHUYvwY2Aq1',
  port = 0,
  delivery: Record<string, unknown> = {},
  options: { storePath?: string; logger?: Logger } = {},
): Bridge {
  dbCount += 1;
  const config = configFromObject({
    opencrvs: {
      tokenUrl: opencrvs.tokenUrl ?? sim.tokenUrl,
      eventsUrl: sim.eventsUrl,
      clientId: opencrvs.clientId ?? sim.clientId,
      ...(opencrvs.clientSecretFile
        ? { clientSecretFile: opencrvs.clientSecretFile }
        : { clientSecret: opencrvs.clientSecret ?? sim.clientSecret }),
      timeoutMs: 5000,
    },
    store: { path: options.storePath ?? join(dir, `bridge-${dbCount}.db`) },
    http: { host: '127.0.0.1', port },
    // A long probe interval keeps a hold in place while the test looks at it.
    delivery: { baseDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 20, holdProbeSeconds: 3600, ...delivery },
    sources: [{ id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl, timeoutMs: 5000 }],
    routing: {
      defaultOffice,
      facilities: {
        'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
        'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
      },
    },
  });
  return new Bridge(config, { logger: options.logger ?? silentLogger, schedule: false });
}

/**
 * A TCP proxy to the simulator that can be switched to reset every connection (OpenCRVS's auth service
 * down behind a load balancer). Switching cuts the open ones, so a kept-alive connection cannot pass.
 */
async function resettingProxy(targetPort: number) {
  let reset = false;
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (reset) return void client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    reset(on: boolean) {
      reset = on;
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function get(bridge: Bridge, path: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${bridge.httpPort}${path}`, { signal: AbortSignal.timeout(15_000) });
  return { status: response.status, text: await response.text() };
}

interface Readiness {
  status: string;
  failed: string[];
  checks: Record<string, { ok: boolean; detail?: string }>;
}

async function readyz(bridge: Bridge): Promise<{ status: number; body: Readiness }> {
  const { status, text } = await get(bridge, '/readyz');
  return { status, body: JSON.parse(text) as Readiness };
}

/** `name{a="x",b="y"} value` lines → [{name, labels}] (comments skipped). */
function samples(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ''] = pair[2] ?? '';
    out.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return out;
}

before(async () => {
  sim = await startOpenCrvsSimulator({ port: 0 });
  fhir = await startFhirSandbox({ port: 0, seed: SEED });
});

after(async () => {
  await fhir.close();
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('health and readiness', () => {
  it('answers /healthz and is ready when the store, OpenCRVS, routing, queue and source are fine', async () => {
    const bridge = newBridge();
    try {
      await bridge.start();
      const health = await get(bridge, '/healthz');
      assert.equal(health.status, 200);
      assert.equal(JSON.parse(health.text).status, 'ok');
      const { status, body } = await readyz(bridge);
      assert.equal(status, 200, JSON.stringify(body));
      assert.deepEqual(body.failed, []);
      assert.deepEqual(Object.keys(body.checks).sort(), [
        'delivery',
        'inbox',
        'opencrvs-token',
        'queue',
        'routing',
        'source:emr',
        'store',
      ]);
      // The store check proves a write, but not one per probe: a probe loop would be a commit loop.
      const written = bridge.ledger.getMeta('health:lastWriteCheck');
      assert.ok(written);
      await sleep(5);
      await readyz(bridge);
      assert.equal(bridge.ledger.getMeta('health:lastWriteCheck'), written);
    } finally {
      await bridge.stop();
    }
  });

  it('asks for a restart (/healthz 503, readiness store) once the ledger file is deleted, replaced or overwritten under it', async () => {
    const realNow = Date.now;
    for (const change of ['deleted', 'replaced', 'overwritten'] as const) {
      const lines: string[] = [];
      const logger = createLogger({ level: 'error', destination: { write: (line: string) => void lines.push(line) } });
      // Spaces in its folder and its name: still named by its base name alone.
      mkdirSync(join(dir, 'site data'), { recursive: true });
      const storePath = join(dir, 'site data', `bridge ${change}.db`);
      const bridge = newBridge({}, undefined, 0, {}, { logger, storePath });
      try {
        await bridge.start();
        assert.equal((await get(bridge, '/healthz')).status, 200);
        const path = bridge.ledger.path;
        if (change === 'deleted') rmSync(path);
        else if (change === 'replaced') {
          // A restore: another file moved over the path (a new inode), as `mv backup.db bridge.db` does.
          copyFileSync(path, `${path}.restore`);
          renameSync(`${path}.restore`, path);
        } else {
          // `cp other.db bridge.db` while it runs: the same file (inode), another ledger's pages in it.
          const other = join(dir, `other-${dbCount}.db`);
          openLedger(other).close();
          await checkpointedAway(path);
          const inode = statSync(path).ino;
          copyFileSync(other, path);
          assert.equal(statSync(path).ino, inode, 'the same inode: the device and inode alone do not tell');
          assert.equal((await get(bridge, '/healthz')).status, 200, 'the ledger id is read again every 5 s only');
          Date.now = () => realNow() + 5_000;
        }
        const health = await get(bridge, '/healthz');
        assert.equal(health.status, 503, health.text);
        const body = JSON.parse(health.text) as { status: string; problem: string };
        assert.equal(body.status, 'restart needed');
        // Both answer anyone who reaches the port: the file by its base name, not where it lives.
        const name = basename(path);
        assert.equal(body.problem.startsWith(`the ledger file ${name} was ${change} while the bridge ran`), true);
        assert.equal(health.text.includes(dirname(path)), false, health.text);
        assert.equal(health.text.includes('site data'), false, health.text);
        const ready = await readyz(bridge);
        assert.equal(ready.status, 503);
        assert.deepEqual(ready.body.failed, ['store']);
        assert.equal(ready.body.checks.store?.detail, body.problem);
        // The log, the operator's, keeps the full path.
        assert.equal(
          lines.some((line) => line.includes(`the ledger file ${path} was ${change}`)),
          true,
          lines.join(''),
        );
      } finally {
        Date.now = realNow;
        await bridge.stop();
      }
    }
  });

  it('does not renew the OpenCRVS token on every probe: a passed token check is kept 5 minutes', async () => {
    const bridge = newBridge();
    const realNow = Date.now;
    try {
      await bridge.start();
      await readyz(bridge);
      const renewals = bridge.opencrvs.tokenRenewals();
      // A minute later (a probe every few seconds meanwhile): the check is not run again.
      Date.now = () => realNow() + 60_000;
      assert.equal((await readyz(bridge)).status, 200);
      assert.equal(bridge.opencrvs.tokenRenewals(), renewals);
      // Past 5 minutes it is.
      Date.now = () => realNow() + 301_000;
      await readyz(bridge);
      assert.equal(bridge.opencrvs.tokenRenewals(), renewals + 1);
    } finally {
      Date.now = realNow;
      await bridge.stop();
    }
  });

  it('is not ready, naming opencrvs-token, when OpenCRVS refuses the credentials, and does not ask it again and again', async () => {
    const secret = 'not-the-right-secret-0001';
    const bridge = newBridge({ clientSecret: secret });
    const tokenRequests = async () => (await sim.control.requests()).token ?? 0;
    const before = await tokenRequests();
    const realNow = Date.now;
    try {
      await bridge.start(); // resolving the routing table needs a token: refused
      for (let i = 0; i < 3; i++) {
        // Each readiness check runs anew (a failure is kept 30 s), and so do other calls.
        Date.now = () => realNow() + i * 31_000;
        const { status, body } = await readyz(bridge);
        assert.equal(status, 503);
        assert.ok(body.failed.includes('opencrvs-token'), JSON.stringify(body));
        assert.match(
          body.checks['opencrvs-token']?.detail ?? '',
          /^token: HTTP 401: invalid_client: .*; the token endpoint answered so \d+ s ago and is asked again in \d+ s \(unauthorized\)$/,
        );
        assert.equal(body.checks.store?.ok, true);
        assert.ok(!JSON.stringify(body).includes(secret));
        await assert.rejects(bridge.opencrvs.listLocations({ externalId: 'LHUYvwY2Aq1' }), { kind: 'unauthorized' });
      }
      assert.equal(await tokenRequests(), before + 1, 'the token endpoint was asked once, not per check or call');
    } finally {
      Date.now = realNow;
      await bridge.stop();
    }
  });

  it('is not ready, naming opencrvs-token, while the token endpoint cannot be reached, though the current token is valid', async () => {
    const tokenUrl = new URL(sim.tokenUrl);
    const proxy = await resettingProxy(Number(tokenUrl.port));
    tokenUrl.port = String(proxy.port);
    const bridge = newBridge({ tokenUrl: tokenUrl.toString() });
    const realNow = Date.now;
    try {
      // Started with the endpoint up: the bridge holds a token valid for 10 minutes.
      await bridge.start();
      proxy.reset(true);
      // The first check runs during the outage: the unexpired token is no proof the endpoint works.
      let ready = await readyz(bridge);
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.deepEqual(ready.body.failed, ['opencrvs-token']);
      assert.match(ready.body.checks['opencrvs-token']?.detail ?? '', /^token: .*\(network\)$/);
      assert.ok(!JSON.stringify(ready.body).includes(sim.clientSecret));
      // Calls still go out with that token meanwhile (its renewal is not due, nor is it expired).
      await bridge.opencrvs.checkToken();
      // A failure is kept 30 s, not 5 minutes: the endpoint back, the next check after that passes.
      proxy.reset(false);
      Date.now = () => realNow() + 10_000;
      assert.equal((await readyz(bridge)).status, 503);
      Date.now = () => realNow() + 31_000;
      ready = await readyz(bridge);
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      // With the endpoint down again, a passed check is kept its 5 minutes; the next one fails.
      proxy.reset(true);
      Date.now = () => realNow() + 31_000 + 301_000;
      ready = await readyz(bridge);
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.deepEqual(ready.body.failed, ['opencrvs-token']);
    } finally {
      Date.now = realNow;
      await bridge.stop();
      await proxy.close();
    }
  });

  it('fails opencrvs-token at once when the token endpoint refused a call since a passed check, without asking it', async () => {
    const client = { clientId: 'ops-refused-later', clientSecret: 'ops-refused-later-secret-01' };
    await sim.control.addClient(client);
    const bridge = newBridge(client);
    const tokenRequests = async () => (await sim.control.requests()).token ?? 0;
    try {
      await bridge.start();
      assert.equal((await readyz(bridge)).status, 200); // a passed check is kept 5 minutes
      // The client deactivated in OpenCRVS: the next token request (a renewal for a delivery) is refused.
      await sim.control.removeClient(client.clientId);
      await assert.rejects(bridge.opencrvs.checkToken({ fresh: true }), { kind: 'unauthorized' });
      const asked = await tokenRequests();
      const first = await readyz(bridge);
      assert.equal(first.status, 503, JSON.stringify(first.body));
      assert.deepEqual(first.body.failed, ['opencrvs-token']);
      const detail = first.body.checks['opencrvs-token']?.detail ?? '';
      assert.match(
        detail,
        /^token: HTTP 401: .*; the token endpoint answered so 0 s ago and is asked again in \d+ s \(unauthorized\)$/,
      );
      // Said as it stands at each request, not as it stood when first cached.
      await sleep(1_100);
      const later = (await readyz(bridge)).body.checks['opencrvs-token']?.detail ?? '';
      assert.match(later, /answered so 1 s ago/);
      assert.equal(await tokenRequests(), asked, 'readiness asked the token endpoint nothing');
    } finally {
      await bridge.stop();
    }
  });

  it('passes opencrvs-token again, in an idle bridge, once the refused client is reactivated and the backoff is over', async () => {
    const client = { clientId: 'ops-reactivated', clientSecret: 'ops-reactivated-secret-001' };
    await sim.control.addClient(client);
    // Replaced before the bridge is built, so that the token client's clock (which keeps the function it is
    // given) follows it too.
    const realNow = Date.now;
    let offset = 0;
    Date.now = () => realNow() + offset;
    const bridge = newBridge(client);
    const tokenRequests = async () => (await sim.control.requests()).token ?? 0;
    try {
      await bridge.start();
      assert.equal((await readyz(bridge)).status, 200);
      await sim.control.removeClient(client.clientId);
      offset = 301_000; // the passed check's 5 minutes are over: readiness asks the endpoint itself
      const refused = await readyz(bridge);
      assert.deepEqual(refused.body.failed, ['opencrvs-token'], 'no hold: nothing else asks for a token');
      await sim.control.addClient(client); // reactivated in OpenCRVS
      const asked = await tokenRequests();
      offset = 301_000 + 20_000; // inside the refusal's 30 s: not asked
      const waiting = await readyz(bridge);
      assert.equal(waiting.status, 503);
      assert.match(
        waiting.body.checks['opencrvs-token']?.detail ?? '',
        /answered so 20 s ago and is asked again in 10 s/,
      );
      assert.equal(await tokenRequests(), asked);
      offset = 301_000 + 31_000; // the backoff is over: readiness asks once, and finds the client again
      const ready = await readyz(bridge);
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      assert.equal(await tokenRequests(), asked + 1);
    } finally {
      Date.now = realNow;
      await bridge.stop();
    }
  });

  it('passes opencrvs-token again once a refused secret is replaced in its file, before the backoff is over', async () => {
    const client = { clientId: 'ops-rotated', clientSecret: 'ops-rotated-secret-old-01' };
    const secretFile = join(dir, 'ops-rotated-secret');
    writeFileSync(secretFile, `${client.clientSecret}\n`);
    await sim.control.addClient(client);
    const realNow = Date.now;
    let offset = 0;
    Date.now = () => realNow() + offset; // before the bridge is built, as above
    const bridge = newBridge({ clientId: client.clientId, clientSecretFile: secretFile });
    const tokenRequests = async () => (await sim.control.requests()).token ?? 0;
    try {
      await bridge.start();
      assert.equal((await readyz(bridge)).status, 200); // a passed check, kept 5 minutes
      // The secret rotated in OpenCRVS, not yet in the file: renewals are refused, the second time for 60 s.
      await sim.control.removeClient(client.clientId);
      await sim.control.addClient({ ...client, clientSecret: 'ops-rotated-secret-new-01' });
      await assert.rejects(bridge.opencrvs.checkToken({ fresh: true }), { kind: 'unauthorized' });
      offset = 31_000;
      await assert.rejects(bridge.opencrvs.checkToken({ fresh: true }), { kind: 'unauthorized' });
      // 60 s, counted in whole seconds left: less after a stall of the machine, more than the first hold's 30 s.
      const detail = (await readyz(bridge)).body.checks['opencrvs-token']?.detail ?? '';
      const left = /is asked again in (\d+) s/.exec(detail);
      assert.ok(left && Number(left[1]) > 30 && Number(left[1]) <= 60, detail);
      writeFileSync(secretFile, 'ops-rotated-secret-new-01\n');
      const asked = await tokenRequests();
      offset = 62_000; // the file is looked at every 30 s at most; the refusal stands until +91 s
      const ready = await readyz(bridge);
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      assert.equal(await tokenRequests(), asked + 1, 'asked once, with the new secret');
    } finally {
      Date.now = realNow;
      await bridge.stop();
    }
  });

  it('passes opencrvs-token at once when a token was obtained since a failed check, without asking again', async () => {
    const tokenUrl = new URL(sim.tokenUrl);
    const proxy = await resettingProxy(Number(tokenUrl.port));
    tokenUrl.port = String(proxy.port);
    const bridge = newBridge({ tokenUrl: tokenUrl.toString() });
    const tokenRequests = async () => (await sim.control.requests()).token ?? 0;
    try {
      await bridge.start();
      proxy.reset(true);
      assert.equal((await readyz(bridge)).status, 503, 'the endpoint out of reach');
      proxy.reset(false);
      // A renewal for a delivery gets a token: the endpoint works again.
      await bridge.opencrvs.checkToken({ fresh: true });
      const asked = await tokenRequests();
      const ready = await readyz(bridge);
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      assert.equal(await tokenRequests(), asked, 'no token request of its own');
    } finally {
      await bridge.stop();
      await proxy.close();
    }
  });

  it('fails store, with the code and when, after a ledger write failed on storage, though its own small write passes', async () => {
    const bridge = newBridge();
    try {
      await bridge.start();
      assert.equal((await readyz(bridge)).body.checks.store?.ok, true);
      const at = Date.now() - 12_000;
      // What a delivery's write met (ledger-write-health.test.ts makes SQLite refuse one for real).
      bridge.ledger.writeFailure = () => ({ code: 'SQLITE_FULL', message: 'database or disk is full', at });
      const { status, body } = await readyz(bridge);
      assert.equal(status, 503);
      assert.deepEqual(body.failed, ['store'], JSON.stringify(body));
      const detail = body.checks.store?.detail ?? '';
      assert.match(detail, /^the ledger refused a write 12 s ago \(SQLITE_FULL: database or disk is full\), at /);
      assert.ok(detail.includes(new Date(at).toISOString()), detail);
      assert.match(detail, /Ledger disk full or unwritable/);
      // What an alert sees without asking /readyz: the store failing, and the bridge not ready.
      const gauges = async () => {
        const all = samples((await get(bridge, '/metrics')).text);
        return ['bridge_store_ok', 'bridge_ready'].map((name) => all.find((s) => s.name === name)?.value);
      };
      assert.deepEqual(await gauges(), [0, 0]);
      bridge.ledger.writeFailure = () => undefined;
      assert.equal((await readyz(bridge)).status, 200);
      assert.deepEqual(await gauges(), [1, 1]);
    } finally {
      await bridge.stop();
    }
  });

  it('does not start on a port another process holds, naming http.port', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    const bridge = newBridge({}, 'LHUYvwY2Aq1', port);
    try {
      await assert.rejects(
        bridge.start(),
        /^Error: http\.port \d+ on http\.host 127\.0\.0\.1 cannot be used \(EADDRINUSE\)/,
      );
    } finally {
      await bridge.stop();
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('is not ready, naming routing and the config key, while an office does not resolve', async () => {
    const bridge = newBridge({}, 'NoSuchOffice1');
    try {
      await bridge.start();
      const { status, body } = await readyz(bridge);
      assert.equal(status, 503);
      assert.ok(body.failed.includes('routing'), JSON.stringify(body));
      assert.match(
        body.checks.routing?.detail ?? '',
        /not resolved in OpenCRVS yet \(routing\.defaultOffice\); polling, notifications and delivery wait for them: (resolveLocation: )?routing\.defaultOffice: location NoSuchOffice1 is not a location of this OpenCRVS deployment/,
      );
    } finally {
      await bridge.stop();
    }
  });

  it('is not ready, naming queue with the hold reason, once delivery is held for revoked credentials', async () => {
    const clientId = 'ops-revoked-client';
    const clientSecret = 'ops-revoked-secret-0001';
    await sim.control.addClient({ clientId, clientSecret });
    const bridge = newBridge({ clientId, clientSecret });
    try {
      await bridge.start();
      assert.equal((await readyz(bridge)).status, 200);
      await sim.control.removeClient(clientId);
      await bridge.syncOnce(undefined, { timeoutMs: 5000 });
      assert.ok(bridge.worker.held(), 'delivery is held');
      const { status, body } = await readyz(bridge);
      assert.equal(status, 503);
      assert.ok(body.failed.includes('queue'), JSON.stringify(body));
      assert.match(body.checks.queue?.detail ?? '', /^held: /);
      const metrics = samples((await get(bridge, '/metrics')).text);
      assert.equal(metrics.find((s) => s.name === 'bridge_queue_held')?.value, 1);
    } finally {
      await bridge.stop();
    }
  });
});

/**
 * Puts a running ledger's pages in its file, none left in its -wal (a reader takes a page there over the
 * file's), as a ledger that has run a while has them: done here, not waited for from the bridge's background
 * checkpoints, whose worker thread a loaded machine starts late. Asked again while that worker checkpoints
 * at the same moment (SQLite answers busy at once then, without waiting).
 */
async function checkpointedAway(path: string): Promise<void> {
  const db = new Database(path, { timeout: 10_000 });
  try {
    let result: unknown;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(10)) {
      result = db.pragma('wal_checkpoint(TRUNCATE)');
      if ((result as [{ busy: number }])[0].busy === 0) return;
    }
    assert.fail(`the ledger could not be checkpointed: ${JSON.stringify(result)}`);
  } finally {
    db.close();
  }
}

/** The delivery check as it will read `ms` from now (it reads the clock; minutes are asked of it directly). */
function deliveryProblemIn(bridge: Bridge, ms: number): string | undefined {
  return (bridge as unknown as { deliveryProblem(now: number): string | undefined }).deliveryProblem(Date.now() + ms);
}

/** Starts the bridge with its offices resolved (the lookup would fail too), then fails every OpenCRVS call. */
async function startThenFailEveryCall(bridge: Bridge): Promise<void> {
  await bridge.start();
  for (let waited = 0; !(await readyz(bridge)).body.checks.routing?.ok && waited < 10_000; waited += 50)
    await sleep(50);
  await sim.control.configure({ faults: { errorRate: 1, errorStatus: 500 } });
}

describe('readiness: what alerting needs to see', () => {
  it('is not ready, naming inbox, while the inbox is full and notifications are refused', async () => {
    const bridge = newBridge();
    try {
      await bridge.start();
      // Not due for a day: the processor leaves them waiting, as it would behind a stalled source.
      const later = Date.now() + 86_400_000;
      bridge.ledger.transaction(() => {
        for (let i = 0; i < MAX_INBOX_DEPTH; i++) bridge.ledger.inbox.add('emr', { resourceType: 'Bundle' }, later);
      });
      const { status, body } = await readyz(bridge);
      assert.equal(status, 503);
      assert.deepEqual(body.failed, ['inbox'], JSON.stringify(body));
      assert.match(body.checks.inbox?.detail ?? '', /^100000 notifications waiting: new ones are refused \(503/);
    } finally {
      await bridge.stop();
    }
  });

  it('is not ready, naming inbox and the bytes, while the waiting notifications pass the byte limit', async () => {
    const bridge = newBridge();
    try {
      await bridge.start();
      bridge.ledger.inbox.add('emr', { kind: 'ping', style: 'hapi-empty' }, Date.now() + 86_400_000);
      // The tracked size set as 256 MB of notifications would leave it, without writing them.
      const db = new Database(join(dir, `bridge-${dbCount}.db`));
      try {
        db.prepare('UPDATE inbox SET body_bytes = ? WHERE processed_at IS NULL').run(MAX_INBOX_BYTES);
      } finally {
        db.close();
      }
      const { status, body } = await readyz(bridge);
      assert.equal(status, 503);
      assert.deepEqual(body.failed, ['inbox'], JSON.stringify(body));
      assert.match(
        body.checks.inbox?.detail ?? '',
        /^1 notifications waiting \(256 MB, past the byte limit\): new ones are refused \(503/,
      );
      const { text } = await get(bridge, '/metrics');
      assert.match(text, new RegExp(`^bridge_inbox_bytes ${MAX_INBOX_BYTES}$`, 'm'));
    } finally {
      await bridge.stop();
    }
  });

  it('names delivery once every attempt has failed for 5 minutes, and not after one is taken', async () => {
    const bridge = newBridge();
    const retries: string[] = [];
    bridge.onDeliveryOutcome((outcome) => {
      if (outcome.type === 'retry') retries.push(outcome.error?.kind ?? '');
    });
    const problemIn = (ms: number) => deliveryProblemIn(bridge, ms);
    try {
      await startThenFailEveryCall(bridge);
      await bridge.syncOnce(undefined, { timeoutMs: 3000 });
      for (let waited = 0; retries.length < 3 && waited < 10_000; waited += 50) await sleep(50);
      assert.ok(retries.length >= 3, `attempts failed: ${retries.length}`);
      assert.equal((await readyz(bridge)).body.checks.delivery?.ok, true, 'a few minutes of failures is no alert yet');
      assert.match(
        problemIn(6 * 60_000) ?? '',
        /^no delivery has succeeded for 6 min: \d+ attempts failed and wait for a retry \(last: \w+ \(HTTP 500\)\)$/,
      );
      await sim.control.configure({ faults: {} });
      await bridge.syncOnce(undefined, { timeoutMs: 15_000 });
      assert.equal(problemIn(6 * 60_000), undefined, 'a delivery ends it');
    } finally {
      await sim.control.configure({ faults: {} });
      await bridge.stop();
    }
  });

  it('gives the age of the row waiting longest in bridge_oldest_waiting_seconds, 0 once none waits', async () => {
    // Retried every 2 s, up to 1,000 times: the rows wait as failed, not dead, while the test looks.
    const bridge = newBridge({}, 'LHUYvwY2Aq1', 0, { baseDelayMs: 2_000, maxDelayMs: 2_000, maxAttempts: 1000 });
    const gauges = async () => {
      const { status, text } = await get(bridge, '/metrics');
      assert.equal(status, 200);
      const all = samples(text);
      const value = (name: string) => all.find((s) => s.name === name)?.value ?? Number.NaN;
      return {
        oldest: value('bridge_oldest_waiting_seconds'),
      };
    };
    try {
      await startThenFailEveryCall(bridge);
      const started = Date.now();
      await bridge.syncOnce(undefined, { timeoutMs: 3000 });
      assert.ok(bridge.ledger.list({ limit: 100 }).some((row) => row.state === 'failed'));
      await sleep(1_100);
      const first = await gauges();
      assert.ok(first.oldest >= 1 && first.oldest <= (Date.now() - started) / 1000, JSON.stringify(first));
      await sleep(1_000);
      assert.ok((await gauges()).oldest >= first.oldest + 0.9, 'it grows while the row waits');
      await sim.control.configure({ faults: {} });
      await bridge.syncOnce(undefined, { timeoutMs: 15_000 });
      assert.equal((await gauges()).oldest, 0, 'nothing waits once delivered');
    } finally {
      await sim.control.configure({ faults: {} });
      await bridge.stop();
    }
  });

  it('names delivery no more once the failing rows are dead: nothing waits for a retry', async () => {
    const bridge = newBridge({}, 'LHUYvwY2Aq1', 0, { maxAttempts: 4 });
    const problemIn = (ms: number) => deliveryProblemIn(bridge, ms);
    try {
      await startThenFailEveryCall(bridge);
      await bridge.syncOnce(undefined, { timeoutMs: 10_000 });
      const states = new Set(bridge.ledger.list({ limit: 100 }).map((row) => row.state));
      assert.deepEqual([...states], ['dead'], 'every row ran out of attempts');
      assert.equal(problemIn(6 * 60_000), undefined);
    } finally {
      await sim.control.configure({ faults: {} });
      await bridge.stop();
    }
  });
});

describe('a corrupt ledger', () => {
  /** A fresh ledger with the pages that a poll's rows (an index of ledger_rows) and routing answers go to damaged. */
  function corruptFresh(name: string): string {
    const path = join(dir, name);
    openLedger(path).close();
    assert.notEqual(corruptLedger(path, ['ledger_rows_state', 'opencrvs_locations']), 'ok');
    return path;
  }

  it('fails /readyz store saying the ledger is corrupt and to restore a backup; /metrics says so', async () => {
    const bridge = newBridge({}, 'LHUYvwY2Aq1', 0, {}, { storePath: corruptFresh('corrupt-readyz.db') });
    try {
      await bridge.start();
      // Opened, and still the file opened: serve runs, and liveness has nothing a restart mends.
      assert.equal((await get(bridge, '/healthz')).status, 200);
      const pass = await bridge.syncOnce(undefined, { timeoutMs: 10_000 });
      assert.equal(pass.sourceErrors.emr, 'database disk image is malformed');
      const { status, body } = await readyz(bridge);
      assert.equal(status, 503);
      assert.deepEqual(body.failed, ['store'], JSON.stringify(body));
      const detail = body.checks.store?.detail ?? '';
      assert.match(detail, /^the ledger is corrupt: a ledger call failed \d+ s ago \(SQLITE_CORRUPT: /);
      assert.match(detail, /stop the bridge and restore the last backup \(deployment\.md §8 "Backup and restore"/);
      assert.match(detail, /runbook: "Ledger corrupt"/);
      assert.doesNotMatch(detail, /Free space|writable/);
      const gauges = async () => {
        const all = samples((await get(bridge, '/metrics')).text);
        const value = (name: string) => all.find((s) => s.name === name)?.value;
        return { store: value('bridge_store_ok'), ready: value('bridge_ready') };
      };
      assert.deepEqual(await gauges(), { store: 0, ready: 0 });
    } finally {
      await bridge.stop();
    }
  });

  it("warns once, not once per routed location, when the ledger cannot keep OpenCRVS's answers", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    // The table the answers go to is damaged; the index they are loaded through at start is not.
    const bridge = newBridge({}, 'LHUYvwY2Aq1', 0, {}, { storePath: corruptFresh('corrupt-answers.db'), logger });
    try {
      await bridge.start(); // the routing table looked up once: five offices and facilities, each a new answer
      assert.ok(bridge.ready, 'OpenCRVS answered for every routed location');
      const warned = lines
        .map((line) => JSON.parse(line) as { msg: string; err?: { code?: string } })
        .filter((l) => l.msg === 'could not keep an answer of OpenCRVS about a location in the ledger');
      assert.equal(warned.length, 1, JSON.stringify(warned.map((l) => l.msg)));
      assert.equal(warned[0]?.err?.code, 'SQLITE_CORRUPT');
    } finally {
      await bridge.stop();
    }
  });

  it('says the ledger failed, not OpenCRVS, when recording what OpenCRVS answered fails on it', async () => {
    const path = corruptFresh('corrupt-routing.db');
    // What a read of the damaged pages throws: SQLite's own error, from this file.
    const db = new Database(path, { readonly: true });
    const corrupt = (() => {
      try {
        db.prepare('SELECT COUNT(*) FROM ledger_rows INDEXED BY ledger_rows_state WHERE state = ?').get('pending');
      } catch (err) {
        return err;
      } finally {
        db.close();
      }
      return undefined;
    })();
    assert.equal((corrupt as { code?: string } | undefined)?.code, 'SQLITE_CORRUPT');
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const bridge = newBridge({}, 'LHUYvwY2Aq1', 0, {}, { storePath: path, logger });
    // The OpenCRVS address is recorded once its routing answers came (a meta value): the damage met there.
    // The meta table cannot be damaged in the file itself, as the lease is kept in it too.
    const setMeta = bridge.ledger.setMeta.bind(bridge.ledger);
    bridge.ledger.setMeta = (key, value) => {
      if (key === OPENCRVS_IDENTITY_META) throw corrupt;
      setMeta(key, value);
    };
    try {
      await bridge.start();
      const deadline = Date.now() + 5_000;
      const routing = () =>
        lines.map((line) => JSON.parse(line) as { msg: string }).filter((l) => l.msg.startsWith('routing could not'));
      while (routing().length === 0 && Date.now() < deadline) await sleep(20);
      const said = routing()[0]?.msg ?? '';
      assert.match(
        said,
        /^routing could not be (confirmed|resolved): the ledger failed \(SQLITE_CORRUPT: database disk image is malformed; \/readyz store says what to do\)/,
      );
      assert.doesNotMatch(said, /in OpenCRVS \(/);
      assert.match((await readyz(bridge)).body.checks.store?.detail ?? '', /^the ledger is corrupt/);
    } finally {
      await bridge.stop();
    }
  });
});

describe('dead rows in the metrics', () => {
  it('counts the rows that died in bridge_events_dead_total, which a replay does not take back', async () => {
    const bridge = newBridge({}, 'LHUYvwY2Aq1', 0, { maxAttempts: 4 });
    const dead = async () => {
      // What /metrics serves (the first look comes before the listener opens).
      const all = samples((await bridge.renderMetrics()).body);
      const value = (name: string, labels: Record<string, string>) =>
        all.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
      return {
        counted: {
          birth: value('bridge_events_dead_total', { source: 'emr', event_type: 'birth' }),
          death: value('bridge_events_dead_total', { source: 'emr', event_type: 'death' }),
        },
        now: value('bridge_events', { state: 'dead', event_type: 'birth' }),
      };
    };
    try {
      // There at 0 before the first death, so increase() sees that one.
      assert.deepEqual(await dead(), { counted: { birth: 0, death: 0 }, now: 0 });
      await startThenFailEveryCall(bridge);
      await bridge.syncOnce(undefined, { timeoutMs: 10_000 });
      assert.deepEqual(await dead(), { counted: { birth: 2, death: 1 }, now: 2 });
      await sim.control.configure({ faults: {} });
      const replayed = await bridge.replay('dead');
      assert.equal(replayed.requeued.length, 3, JSON.stringify(replayed));
      await bridge.syncOnce(undefined, { timeoutMs: 15_000 });
      // The gauge went down (a counter reset to increase()); the counter did not.
      assert.deepEqual(await dead(), { counted: { birth: 2, death: 1 }, now: 0 });
    } finally {
      await sim.control.configure({ faults: {} });
      await bridge.stop();
    }
  });
});

describe('metrics', () => {
  const bridge = () => shared;
  let shared: Bridge;

  before(async () => {
    shared = newBridge();
    await shared.start();
    const summary = await shared.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.ok(summary.ok, JSON.stringify(summary.report));
  });

  after(async () => {
    await shared.stop();
  });

  it('exposes events, deliveries, latency, token renewals, poll lag, inbox depth, hold flag and process metrics', async () => {
    const { status, text } = await get(bridge(), '/metrics');
    assert.equal(status, 200);
    const all = samples(text);
    const find = (name: string, labels: Record<string, string> = {}) =>
      all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    assert.equal(find('bridge_events', { state: 'delivered', event_type: 'birth' })[0]?.value, 2);
    assert.equal(find('bridge_events', { state: 'delivered', event_type: 'death' })[0]?.value, 1);
    // An empty state is there at 0, so a dashboard sees the first one come (alerts use bridge_events_dead_total).
    assert.equal(find('bridge_events', { state: 'dead', event_type: 'birth' })[0]?.value, 0);
    assert.equal(find('bridge_events', { state: 'dead', event_type: 'death' })[0]?.value, 0);
    assert.equal(find('bridge_deliveries_total', { outcome: 'delivered', event_type: 'birth' })[0]?.value, 2);
    assert.equal(find('bridge_delivery_latency_seconds_count', { event_type: 'birth' })[0]?.value, 2);
    assert.ok(find('bridge_delivery_latency_seconds_bucket', { event_type: 'death', le: '+Inf' }).length === 1);
    assert.ok((find('bridge_opencrvs_token_renewals_total')[0]?.value ?? 0) >= 1);
    const lag = find('bridge_source_poll_lag_seconds', { source: 'emr' });
    assert.ok(lag.length > 0 && lag.every((s) => s.value >= 0 && s.labels.resource_type));
    assert.equal(find('bridge_inbox_depth')[0]?.value, 0);
    assert.equal(find('bridge_inbox_bytes')[0]?.value, 0);
    assert.equal(find('bridge_queue_held')[0]?.value, 0);
    // Every row delivered, and /readyz ready: what an alert on these compares with.
    assert.equal(find('bridge_oldest_waiting_seconds')[0]?.value, 0);
    assert.equal(find('bridge_store_ok')[0]?.value, 1);
    assert.equal((await readyz(bridge())).status, 200);
    assert.equal(find('bridge_ready')[0]?.value, 1);
    assert.ok(find('bridge_process_cpu_user_seconds_total').length === 1);
    assert.ok(
      find('bridge_process_resident_memory_bytes').length + find('bridge_nodejs_heap_size_used_bytes').length > 0,
    );
  });

  it('carries no personal data and no record identifiers in labels', async () => {
    const { text } = await get(bridge(), '/metrics');
    const personal = new Set<string>();
    const ids = new Set<string>();
    for (const resource of SEED) {
      if (resource.id) ids.add(resource.id);
      if (resource.resourceType === 'Patient') {
        for (const name of resource.name ?? [])
          for (const part of [...(name.given ?? []), name.family ?? '']) personal.add(part);
        if (resource.birthDate) personal.add(resource.birthDate);
        if (resource.deceasedDateTime) personal.add(resource.deceasedDateTime.slice(0, 10));
        for (const id of resource.identifier ?? []) if (id.value) personal.add(id.value);
      }
    }
    personal.delete('');
    assert.ok(personal.size > 5);
    const allowedLabels = new Set([
      'state',
      'event_type',
      'outcome',
      'classification',
      'kind',
      'source',
      'resource_type',
      'le',
    ]);
    for (const sample of samples(text)) {
      for (const [label, value] of Object.entries(sample.labels)) {
        if (
          sample.name.startsWith('bridge_') &&
          !sample.name.startsWith('bridge_process') &&
          !sample.name.startsWith('bridge_nodejs')
        ) {
          assert.ok(allowedLabels.has(label), `unexpected label ${label} on ${sample.name}`);
        }
        for (const p of personal)
          assert.ok(!value.includes(p), `${sample.name}{${label}="${value}"} carries personal data`);
        for (const id of ids) assert.ok(!value.includes(id), `${sample.name}{${label}="${value}"} carries a record id`);
      }
    }
  });
});
