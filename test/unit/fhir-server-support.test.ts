// The CapabilityStatement is optional knowledge (ServerSupport): a pass waits for it before its first
// context search, so a /metadata that fails or never answers must cost one bounded try, not the client's
// three tries of its whole timeout every five minutes.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { ServerSupport } from '../../src/sources/fhir/server-support.js';

describe('ServerSupport reading the CapabilityStatement', () => {
  let server: Server;
  let origin = '';
  const asked: string[] = [];
  /** Connections the server accepted, and a hook called on each. */
  let connections = 0;
  let onConnection = () => {};

  before(async () => {
    // `/failing/metadata` answers 503 (retried by the client's other calls); `/silent/metadata` never answers.
    server = createServer((req, res) => {
      req.resume();
      asked.push(req.url ?? '');
      if (req.url?.startsWith('/failing/')) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('unavailable');
      }
    });
    server.on('connection', () => {
      connections++;
      onConnection();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const client = (path: string, timeoutMs: number, lines: string[]) =>
    new FhirSourceClient(
      {
        id: 'emr',
        kind: 'fhir',
        baseUrl: `${origin}${path}`,
        timeoutMs,
        auth: { type: 'none' },
      } as unknown as SourceSettings,
      { logger: createLogger({ destination: { write: (line: string) => lines.push(line) } }), retryBaseMs: 1 },
    );

  it('asks a failing /metadata once per reading, not with the client tries', async () => {
    asked.length = 0;
    const lines: string[] = [];
    const source = client('/failing', 5000, lines);
    assert.equal(await new ServerSupport(source).capabilities(), undefined);
    assert.deepEqual(asked, ['/failing/metadata']);
    assert.ok(lines.some((line) => /CapabilityStatement could not be read/.test(line)));
    source.close();
  });

  it('gives up on a /metadata that never answers within its own timeout, not sources[].timeoutMs', {
    timeout: 20_000,
  }, async () => {
    asked.length = 0;
    connections = 0;
    const connected = new Promise<void>((resolve) => {
      onConnection = resolve;
    });
    const lines: string[] = [];
    // sources[].timeoutMs of ten minutes: a statement read with it holds the test until its own timeout.
    const source = client('/silent', 600_000, lines);
    assert.equal(await new ServerSupport(source, Date.now, 50).capabilities(), undefined);
    const warned = lines.map((line) => JSON.parse(line)).find((entry) => /CapabilityStatement/.test(entry.msg));
    assert.match(JSON.stringify(warned?.err), /no answer within 50 ms/);
    // Raising sources[].timeoutMs would not lengthen this read: the message does not advise it.
    assert.doesNotMatch(JSON.stringify(warned?.err), /raise sources/);
    // One try, one connection. Counted as the server accepts them, not by the requests it read: on a loaded
    // machine the 50 ms ran out before the server (in this same event loop) had read the request, or before
    // the client had written it. Every try's connection was opened before the read gave up, so the server
    // accepts them together, in the poll phase that accepts the first; a turn later all are counted.
    await connected;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(connections, 1, 'one try, not the client tries');
    assert.ok(
      asked.every((url) => url === '/silent/metadata'),
      asked.join(', '),
    );
    source.close();
  });
});
