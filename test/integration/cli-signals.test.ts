// Every command stops on SIGINT and SIGTERM, not only those that drain deliveries (serve, sync). As PID 1 in
// a container a signal with no handler is dropped: `docker run --rm … doctor` against a hanging OpenCRVS
// ignored Ctrl-C and `docker stop` until its call timed out. Here, as an ordinary process, a signal without
// a handler kills the process instead (no exit code): an exit code shows that the command handled it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { finished, spawnCli } from './helpers/bridge-cli.js';

describe('a command waiting on a server that never answers', () => {
  let dir: string;
  let silent: Server;
  const sockets = new Set<Socket>();
  let connected: () => void = () => {};
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-signals-'));
    silent = createServer((socket) => {
      sockets.add(socket);
      connected();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [signal, exitCode] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`doctor exits ${exitCode} on ${signal} at once, not when its call times out`, async () => {
      const address = silent.address();
      assert.ok(address && typeof address === 'object');
      const base = `http://127.0.0.1:${address.port}`;
      const config = join(dir, `bridge-${signal}.yaml`);
      writeFileSync(
        config,
        [
          'opencrvs:',
          `  eventsUrl: ${base}/events`,
          `  tokenUrl: ${base}/token`,
          '  clientId: bridge',
          '  clientSecret: s3cret',
          '  timeoutMs: 60000',
          `store: { path: ${join(dir, `${signal}.db`)} }`,
          '',
        ].join('\n'),
      );
      const reached = new Promise<void>((resolve) => {
        connected = resolve;
      });
      const child = spawnCli(['doctor', '--config', config]);
      const result = finished(child, 30_000);
      await reached;
      const started = Date.now();
      child.kill(signal);
      const { code, signal: killedBy, stderr } = await result;
      assert.equal(killedBy, null, `handled, not killed by ${signal}`);
      assert.equal(code, exitCode, stderr);
      assert.ok(Date.now() - started < 10_000, 'stopped at once');
    });
  }
});
