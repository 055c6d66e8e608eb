// The admin page and API on a listener of their own (admin.host, admin.port), over HTTP to a real Bridge:
// the main listener (reachable from the EMR) serves no admin path, the admin listener nothing else; it
// has the main listener's connection limits; a port that cannot be used fails start-up naming admin.port
// and leaves no listener open; without a token it is not opened; stop() closes both. It answers only to
// the host names it serves (admin-hosts.test.ts has the rules): admin.allowedHosts comes from the config.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { ADMIN_ELSEWHERE_MESSAGE } from '../../src/http/admin/index.js';
import { SERVER_LIMITS } from '../../src/http/server.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { closedPort } from '../support/ports.js';
import { simulatorOpenCrvs } from './helpers/bridge-harness.js';

const TOKEN = 'admin-listener-token-0123456789';
const bearer = { authorization: `Bearer ${TOKEN}` };

let sim: OpenCrvsSimulator;
const dir = mkdtempSync(join(tmpdir(), 'admin-listener-'));
let dbCount = 0;

before(async () => {
  sim = await startOpenCrvsSimulator({ port: 0 });
});

after(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

function newBridge(admin: Record<string, unknown>, httpPort = 0, sources: unknown[] = []): Bridge {
  dbCount += 1;
  const config = configFromObject({
    opencrvs: simulatorOpenCrvs(sim),
    store: { path: join(dir, `bridge-${dbCount}.db`) },
    http: { host: '127.0.0.1', port: httpPort },
    admin,
    sources,
  });
  return new Bridge(config, { logger: silentLogger, schedule: false, worker: false });
}

async function get(port: number | undefined, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, text: await response.text() };
}

/** A GET to 127.0.0.1:`port` naming the Host given (fetch names 127.0.0.1 itself); its status. */
function statusFor(port: number, path: string, host: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { ...headers, host }, agent: false, timeout: 10_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Whether a TCP connection to host:port is accepted (ECONNREFUSED: nothing listens there). */
function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the admin listener', () => {
  it("gives the Find help as the configured sources' own requests, their base URLs without a query", async () => {
    // Never polled (schedule: false): the page needs the configuration only.
    const sources = [
      {
        id: 'hospital-emr',
        kind: 'fhir',
        baseUrl: 'https://emr.example.org/openmrs/ws/fhir2/R4/?tenant=not-for-the-page',
        writeBack: {},
      },
      {
        id: 'hospital-hmis',
        kind: 'dhis2',
        baseUrl: 'https://hmis.example.org/api/',
        dhis2: { program: 'SbxDthProg1' },
      },
    ];
    const bridge = newBridge({ token: TOKEN, port: 0 }, 0, sources);
    try {
      await bridge.start();
      const page = await get(bridge.adminPort, '/admin', bearer);
      assert.equal(page.status, 200, page.text);
      const help = /<p id="find-help"[^>]*>([\s\S]*?)<\/p>/.exec(page.text)?.[1]?.replace(/\s+/g, ' ') ?? '';
      assert.match(
        help,
        /\(<code>GET https:\/\/emr\.example\.org\/openmrs\/ws\/fhir2\/R4\/Patient\?identifier=&lt;value&gt;<\/code>, or <code>GET https:\/\/hmis\.example\.org\/api\/tracker\/trackedEntities\?program=SbxDthProg1&amp;filter=AuPLng5hLbE:eq:&lt;value&gt;<\/code>\) and find Patient\/&lt;that id&gt; or TrackedEntity\/&lt;its trackedEntity uid&gt;/,
      );
      // The system the FHIR source's write-back really uses (its default).
      assert.match(
        help,
        /written back as its identifier of system <code>http:\/\/opencrvs\.org\/tracking-id<\/code>\.$/,
      );
      assert.doesNotMatch(help, /&lt;baseUrl&gt;|not-for-the-page/);
    } finally {
      await bridge.stop();
    }
  });

  it('serves /admin on its own port and nothing else; the main port serves no admin path', async () => {
    const bridge = newBridge({ token: TOKEN, port: 0 });
    try {
      await bridge.start();
      assert.ok(bridge.adminPort && bridge.httpPort && bridge.adminPort !== bridge.httpPort);
      assert.equal(bridge.config.admin.host, '127.0.0.1', 'loopback unless configured otherwise');

      const summary = await get(bridge.adminPort, '/admin/api/summary', bearer);
      assert.equal(summary.status, 200, summary.text);
      assert.equal((await get(bridge.adminPort, '/admin')).status, 401, 'still behind the token');

      for (const path of ['/admin', '/admin/api/summary', '/admin/api/events?state=dead']) {
        const there = await get(bridge.httpPort, path, bearer);
        assert.equal(there.status, 404, `${path} on the main port: ${there.text}`);
        assert.equal(JSON.parse(there.text).error, ADMIN_ELSEWHERE_MESSAGE);
        assert.doesNotMatch(there.text, new RegExp(String(bridge.adminPort)), 'the admin address is not given away');
      }
      // Replay (a POST that changes the ledger) is not reachable from the main port either.
      const replay = await fetch(`http://127.0.0.1:${bridge.httpPort}/admin/api/replay-dead`, {
        method: 'POST',
        headers: bearer,
      });
      assert.equal(replay.status, 404);

      for (const path of ['/healthz', '/readyz', '/metrics', '/fhir-subscription/emr']) {
        const response = await fetch(`http://127.0.0.1:${bridge.adminPort}${path}`);
        assert.equal(response.status, 404, `${path} is not on the admin port`);
        // With the headers of every admin answer: never cached, sniffed or framed.
        assert.equal(response.headers.get('cache-control'), 'no-store', path);
        assert.equal(response.headers.get('x-frame-options'), 'DENY', path);
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
        await response.text();
      }
      assert.equal((await get(bridge.httpPort, '/healthz')).status, 200);
      assert.equal((await get(bridge.httpPort, '/metrics')).status, 200);
    } finally {
      await bridge.stop();
    }
  });

  it('answers its loopback names on its port and admin.allowedHosts, and 421 to any other Host', async () => {
    const bridge = newBridge({ token: TOKEN, port: 0, allowedHosts: ['admin.hospital.example'] });
    try {
      await bridge.start();
      const port = bridge.adminPort ?? 0;
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'admin.hospital.example'])
        assert.equal(await statusFor(port, '/admin/api/summary', host, bearer), 200, host);
      for (const host of [`attacker.example:${port}`, `127.0.0.1:${port + 1}`]) {
        assert.equal(await statusFor(port, '/admin/api/summary', host, bearer), 421, host);
        assert.equal(await statusFor(port, '/healthz', host), 421, `${host}, a path outside /admin`);
      }
      // The main listener (the EMR's) is not restricted: EMRs name it as they please.
      assert.equal(await statusFor(bridge.httpPort ?? 0, '/healthz', `attacker.example:${port}`), 200);
    } finally {
      await bridge.stop();
    }
  });

  it('listens on admin.host only: loopback by default, not the machine’s other addresses', async (t) => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && address.family === 'IPv4' && !address.internal)?.address;
    if (!external) {
      t.skip('this machine has no non-loopback IPv4 address to try');
      return;
    }
    const bridge = newBridge({ token: TOKEN, port: 0 });
    try {
      await bridge.start();
      assert.ok(bridge.adminPort);
      assert.equal(await accepts(bridge.adminPort, '127.0.0.1'), true);
      assert.equal(await accepts(bridge.adminPort, external), false, `not reachable on ${external}`);
    } finally {
      await bridge.stop();
    }
  });

  it('has the main listener’s limits: connections per address, and silent ones closed', async () => {
    const saved = { ...SERVER_LIMITS };
    // Silent ones closed after 1 s: the first two must still be open when the third is refused. Three
    // connections in turn took up to 111 ms on a loaded machine, a third of the 300 ms this timeout was.
    Object.assign(SERVER_LIMITS, { perAddressConnections: 2, firstByteTimeoutMs: 1_000 });
    const bridge = newBridge({ token: TOKEN, port: 0 });
    const sockets: Socket[] = [];
    try {
      await bridge.start();
      Object.assign(SERVER_LIMITS, saved);
      const port = bridge.adminPort ?? 0;
      // Linux routes all of 127/8 to loopback; 127.0.0.2 is an ordinary address to the slot counting.
      const closed: boolean[] = [];
      for (let i = 0; i < 3; i++) {
        const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
        sockets.push(socket);
        closed.push(false);
        socket.on('close', () => {
          closed[i] = true;
        });
        socket.on('error', () => undefined);
        await new Promise((resolve) => socket.once('connect', resolve));
      }
      await until('the third connection from one address is refused', () => closed[2] === true, 10_000);
      assert.deepEqual(closed.slice(0, 2), [false, false], 'the first two are held');
      await until('silent connections are closed', () => closed.every(Boolean), 20_000);
    } finally {
      Object.assign(SERVER_LIMITS, saved);
      for (const socket of sockets) socket.destroy();
      await bridge.stop();
    }
  });

  it('is not opened without an admin token', async () => {
    const bridge = newBridge({ port: 0 });
    try {
      await bridge.start();
      assert.equal(bridge.adminPort, undefined);
      assert.equal((await get(bridge.httpPort, '/admin')).status, 404);
    } finally {
      await bridge.stop();
    }
  });

  it('fails start-up naming admin.port when the port is taken, leaving the main port closed', async () => {
    const holder = holdPort();
    const taken = await holder.port;
    const mainPort = await closedPort();
    const bridge = newBridge({ token: TOKEN, port: taken }, mainPort);
    try {
      await assert.rejects(
        bridge.start(),
        (err: Error & { code?: string }) =>
          /^admin\.port \d+ on admin\.host 127\.0\.0\.1 cannot be used \(EADDRINUSE\)/.test(err.message) &&
          err.code === 'EADDRINUSE',
      );
      assert.equal(bridge.httpPort, undefined);
      assert.equal(await accepts(mainPort), false, 'the main listener was closed again');
    } finally {
      await bridge.stop();
      await holder.close();
    }
  });

  it('is closed by stop(), with the main listener', async () => {
    const bridge = newBridge({ token: TOKEN, port: 0 });
    await bridge.start();
    const { httpPort, adminPort } = bridge;
    assert.ok(httpPort && adminPort);
    // A keep-alive connection open on the admin port does not hold the stop up.
    assert.equal((await get(adminPort, '/admin/api/summary', bearer)).status, 200);
    await bridge.stop();
    assert.equal(await accepts(adminPort), false);
    assert.equal(await accepts(httpPort), false);
  });
});

/** A port held by another server on 127.0.0.1 (as another process would). */
function holdPort(): { port: Promise<number>; close: () => Promise<void> } {
  const server = createServer();
  return {
    port: new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    ),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
