// The OpenCRVS transport against a server that answers with far too much: refused, not buffered.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { undiciRequester } from '../../src/opencrvs/http.js';

describe('OpenCRVS transport', () => {
  it('refuses an answer past 64 MB instead of holding it all in memory', { timeout: 60_000 }, async () => {
    const flood = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1_048_576, 32);
      const pump = () => {
        if (!res.destroyed) res.write(chunk, () => setImmediate(pump));
      };
      pump();
    });
    await new Promise<void>((resolve) => flood.listen(0, '127.0.0.1', resolve));
    const { request, close } = undiciRequester(30_000);
    try {
      const url = `http://127.0.0.1:${(flood.address() as AddressInfo).port}/api/events/events`;
      await assert.rejects(request({ method: 'GET', url, headers: {} }), /larger than 64 MB/);
    } finally {
      await close().catch(() => undefined);
      flood.closeAllConnections();
      await new Promise((resolve) => flood.close(resolve));
    }
  });
});
