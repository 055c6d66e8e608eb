// The admin listener answers only to host names it serves: its loopback names on its own port, admin.host
// there, and admin.allowedHosts. A page whose own name is re-pointed at 127.0.0.1 (DNS rebinding) sends
// its own name in Host and Origin, so such a request is refused (421) before the token is looked at, and a
// Basic POST counts as same-origin only when its Origin names a served host, whatever Host says.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_NOT_HERE_MESSAGE,
  type AdminTarget,
  adminListenerFallback,
  adminRoutes,
  MISDIRECTED_MESSAGE,
} from '../../src/http/admin/index.js';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';

const TOKEN = 'admin-hosts-token-0123456789';
const bearer = { Authorization: `Bearer ${TOKEN}` };
const basic = { Authorization: `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}` };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A request to 127.0.0.1:`port` naming whatever Host it is given (fetch sets Host itself). */
function send(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; from?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: options.from,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** An HTTP/1.0 request, which may carry no Host at all; the status of its answer. */
function sendWithoutHost(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => {
      socket.write(`GET ${path} HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => resolve(Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

function assertHardened(answer: Answer, what: string): void {
  assert.equal(answer.headers['cache-control'], 'no-store', what);
  assert.equal(answer.headers['x-content-type-options'], 'nosniff', what);
  assert.equal(answer.headers['x-frame-options'], 'DENY', what);
  assert.equal(answer.headers['referrer-policy'], 'no-referrer', what);
}

describe('admin listener host names', () => {
  let dir: string;
  let ledger: Ledger;
  let server: Server;
  let port: number;
  const replays: Array<number[] | 'dead'> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admin-hosts-'));
    ledger = openLedger(join(dir, 'bridge.db'));
    const target: AdminTarget = {
      ledger,
      counts: () => ledger.counts(),
      held: () => undefined,
      sourceStatuses: () => [],
      replay: async (ids) => {
        replays.push(ids);
        return ledger.replay(ids);
      },
    };
    const settings = {
      token: TOKEN,
      showPersonalData: false,
      host: '127.0.0.1',
      allowedHosts: ['admin.hospital.example', 'bridge.vpn.example:9443'],
    };
    const app = createHttpApp(
      [
        { path: '/admin', router: adminRoutes(target, settings) },
        { path: '/', router: adminListenerFallback(settings) },
      ],
      silentLogger,
    );
    ({ server, port } = await listen(app, 0, '127.0.0.1'));
  });
  after(async () => {
    await closeServer(server, 1000);
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves its loopback names on its own port and the configured names', async () => {
    const served = [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      `LocalHost:${port}`,
      'admin.hospital.example',
      'ADMIN.hospital.example',
      'bridge.vpn.example:9443',
    ];
    for (const host of served) {
      const res = await send(port, '/admin/api/summary', { headers: { Host: host, ...bearer } });
      assert.equal(res.status, 200, `${host}: ${res.text}`);
    }
  });

  it('refuses any other Host with 421 before the token is looked at, naming no host', async () => {
    const refused = [
      `attacker.example:${port}`,
      'attacker.example',
      `127.0.0.1:${port + 1}`,
      `localhost:${port}.attacker.example`,
      'admin.hospital.example:8443',
      'bridge.vpn.example',
      `127.0.0.1:${port}@attacker.example`,
    ];
    for (const host of refused) {
      for (const path of ['/admin', '/admin/api/summary', '/admin/app.js']) {
        const res = await send(port, path, { headers: { Host: host, ...bearer } });
        assert.equal(res.status, 421, `${host}${path}: ${res.text}`);
        assert.deepEqual(JSON.parse(res.text), { error: MISDIRECTED_MESSAGE });
        assert.equal(res.headers['www-authenticate'], undefined, 'no prompt for the token');
        assertHardened(res, host);
      }
    }
    assert.equal(await sendWithoutHost(port, '/admin/api/summary'), 421, 'no Host at all');
  });

  it('does not count wrong tokens sent under a refused Host', async () => {
    const from = '127.0.0.40';
    for (let i = 0; i < 12; i++) {
      const res = await send(port, '/admin/api/summary', {
        from,
        headers: { Host: `attacker.example:${port}`, Authorization: `Bearer guess-${i}` },
      });
      assert.equal(res.status, 421);
    }
    const wrong = await send(port, '/admin/api/summary', { from, headers: { Authorization: 'Bearer guess-x' } });
    assert.equal(wrong.status, 401, 'a first wrong token, not a block');
  });

  it('refuses a Basic POST whose Origin names the page’s own host but not one it serves', async () => {
    // DNS rebinding: the page's name is in Host and Origin alike.
    const rebound = await send(port, '/admin/api/replay-dead', {
      method: 'POST',
      headers: { Host: `attacker.example:${port}`, Origin: `http://attacker.example:${port}`, ...basic },
    });
    assert.equal(rebound.status, 421);
    // Another origin, or another local web application's (another port), against a served Host.
    for (const origin of [`http://attacker.example:${port}`, `http://localhost:${port + 1}`, 'null']) {
      const res = await send(port, '/admin/api/replay-dead', {
        method: 'POST',
        headers: { Host: `127.0.0.1:${port}`, Origin: origin, ...basic },
      });
      assert.equal(res.status, 403, origin);
    }
    assert.deepEqual(replays, []);
  });

  it('takes a Basic POST whose Origin is a served name, whichever served name Host says', async () => {
    const cases: Array<[host: string, origin: string]> = [
      [`127.0.0.1:${port}`, `http://127.0.0.1:${port}`],
      [`127.0.0.1:${port}`, `http://localhost:${port}`],
      // A proxy that passes its own upstream address in Host, and the browser's Origin.
      [`127.0.0.1:${port}`, 'https://admin.hospital.example'],
      ['admin.hospital.example', 'https://admin.hospital.example'],
      ['bridge.vpn.example:9443', 'https://bridge.vpn.example:9443'],
    ];
    for (const [host, origin] of cases) {
      // A row that does not exist: 404 from the replay route, past the token and the origin checks.
      const res = await send(port, '/admin/api/events/999999/replay', {
        method: 'POST',
        headers: { Host: host, Origin: origin, ...basic },
      });
      assert.equal(res.status, 404, `${host} ${origin}: ${res.text}`);
      assert.match(res.text, /no ledger row 999999/, res.text);
    }
    assert.deepEqual(replays, []);
  });

  it('answers other paths 404 with the admin answers’ headers, and 421 to other hosts', async () => {
    for (const path of ['/', '/healthz', '/metrics', '/fhir-subscription/emr']) {
      const res = await send(port, path, { headers: { Host: `127.0.0.1:${port}` } });
      assert.equal(res.status, 404, path);
      assert.deepEqual(JSON.parse(res.text), { error: ADMIN_NOT_HERE_MESSAGE });
      assertHardened(res, path);
      const elsewhere = await send(port, path, { headers: { Host: `attacker.example:${port}` } });
      assert.equal(elsewhere.status, 421, path);
      assertHardened(elsewhere, path);
    }
  });
});
