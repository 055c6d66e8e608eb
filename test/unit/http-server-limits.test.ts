// The HTTP server's bounds: connections past the limit are dropped, so a flood of half-open
// connections cannot hold the bridge's memory (see SERVER_LIMITS).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { closeServer, createHttpApp, listen, SERVER_LIMITS } from '../../src/http/server.js';
import { silentLogger } from '../../src/observability/logger.js';

function opened(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('HTTP server limits', () => {
  it('drops connections past maxConnections and keeps serving the ones it holds', async () => {
    const saved = SERVER_LIMITS.maxConnections;
    SERVER_LIMITS.maxConnections = 2;
    const { server, port } = await listen(createHttpApp([], silentLogger), 0, '127.0.0.1');
    SERVER_LIMITS.maxConnections = saved;
    const sockets: Socket[] = [];
    try {
      sockets.push(await opened(port), await opened(port));
      const third = await opened(port);
      sockets.push(third);
      const closed = await new Promise<boolean>((resolve) => {
        third.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 5_000);
      });
      assert.equal(closed, true, 'the connection past the limit is closed by the server');
      assert.equal(server.requestTimeout, SERVER_LIMITS.requestTimeoutMs);
      const first = sockets[0] as Socket;
      const answer = new Promise<string>((resolve) => first.once('data', (chunk) => resolve(chunk.toString())));
      first.write('GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(await answer, /^HTTP\/1\.1 404/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeServer(server, 100);
    }
  });
});
