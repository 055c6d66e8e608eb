// `replay` beside serve reads serve's admin API (src/commands/replay-remote.ts). Whatever listens at
// admin.host:admin.port may not be serve: an answer far larger than any serve gives is cut off, not read
// whole (Node 20's fetch() bounds neither its size nor, when it comes fast, its time: read-body.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { replayThroughServe, ServeRefused } from '../../src/commands/replay-remote.js';
import { loadConfig } from '../../src/config/index.js';
import { openLedger } from '../../src/ledger/index.js';
import { PROCESS_LEASE_META } from '../../src/ledger/process-lease.js';

const TOKEN = 'replay-remote-bounds-admin-token-0123';
const MB = 1_048_576;
const dir = mkdtempSync(join(tmpdir(), 'replay-remote-bounds-'));
const servers: Server[] = [];
after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Sends `{"<key>":"xxx…"}` of `size` bytes as fast as the client reads it; resolves with the bytes the
 * client had taken when the connection ended.
 */
function flood(res: ServerResponse, key: string, size: number): Promise<number> {
  return new Promise((resolve) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(65_536, 'x');
    let sent = 0;
    const more = () => {
      if (sent === 0) {
        res.write(`{"${key}":"`);
        sent += key.length + 5;
      }
      while (sent < size) {
        sent += chunk.length;
        if (!res.write(chunk)) return;
      }
      res.end('"}');
    };
    res.on('drain', more);
    res.on('close', () => resolve(sent));
    more();
  });
}

async function listen(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ port: number; server: Server }> {
  const server = createServer(handle);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, server };
}

/**
 * A ledger whose lease a live serve of this host holds (this process's parent: one surely running, and not
 * this process, whose own pid reads as an earlier holder's), beside an admin listener on `port`.
 */
function ledgerServedOn(name: string, port: number) {
  const ledger = openLedger(join(dir, `${name}.db`));
  const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  const holder = `${hostname()}:${process.ppid}:ns${ns}-abcdef`;
  ledger.setMeta(PROCESS_LEASE_META, JSON.stringify({ holder, command: 'serve', renewedAt: Date.now() }));
  const config = loadConfig({
    text: stringify({
      opencrvs: { domain: 'farajaland.example.org', clientId: 'bridge', clientSecret: 's3cret' },
      store: { path: join(dir, `${name}.db`) },
      admin: { token: TOKEN, port },
    }),
  });
  return { ledger, config };
}

describe('replay beside serve: answers of its admin listener', () => {
  it('does not read a summary far larger than serve sends: replayed here, and said why', async () => {
    let taken: Promise<number> | undefined;
    const { port } = await listen((_req, res) => {
      taken = flood(res, 'ledgerId', 64 * MB);
    });
    const { ledger, config } = ledgerServedOn('summary', port);
    try {
      const answer = await replayThroughServe(config, ledger, [1]);
      assert.equal(answer.by, 'here');
      assert.match(
        'why' in answer ? answer.why : '',
        new RegExp(
          `its admin API at 127\\.0\\.0\\.1:${port} did not answer \\(the answer is larger than 1 MB, not read\\)`,
        ),
      );
      // Cut off near the limit: what the sockets' buffers held beyond it, not the 64 MB sent.
      assert.ok((await taken) !== undefined);
      assert.ok(((await taken) ?? 0) < 16 * MB, `read ${(await taken) ?? 0} bytes`);
    } finally {
      ledger.close();
    }
  });

  it('does not read a replay answer far larger than serve sends: refused, and not replayed here', async () => {
    let taken: Promise<number> | undefined;
    let ledgerId = '';
    const { port } = await listen((req, res) => {
      if (req.url === '/admin/api/summary') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ledgerId }));
        return;
      }
      taken = flood(res, 'requeued', 48 * MB);
    });
    const { ledger, config } = ledgerServedOn('result', port);
    ledgerId = ledger.ledgerId ?? '';
    try {
      assert.ok(ledgerId);
      await assert.rejects(replayThroughServe(config, ledger, [1]), (err: Error) => {
        assert.ok(err instanceof ServeRefused, String(err));
        assert.match(err.message, /did not answer the replay \(the answer is larger than 32 MB, not read\)/);
        return true;
      });
      assert.ok(((await taken) ?? 0) < 48 * MB, `read ${(await taken) ?? 0} bytes`);
    } finally {
      ledger.close();
    }
  });
});
