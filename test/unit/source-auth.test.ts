// OAuth2 client credentials against a source's token endpoint (a local HTTP server): the token is cached
// and shared, and a refusal is reported as the configuration problem it is, never as a network error.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { createSourceAuthenticator, SourceAuthError } from '../../src/sources/shared/source-auth.js';

const SECRET = 'source-client-secret-value';

describe('source OAuth2 client credentials', () => {
  let server: Server;
  let base = '';
  let tokenStatus = 200;
  const calls: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        if (req.url === '/token') {
          res.writeHead(tokenStatus, { 'content-type': 'application/json' });
          res.end(
            tokenStatus === 200
              ? JSON.stringify({ access_token: `tok-${calls.length}`, expires_in: 300 })
              : JSON.stringify({ error: 'invalid_client', echoed: SECRET }),
          );
          return;
        }
        res.writeHead(200, { 'content-type': 'application/fhir+json' });
        res.end(JSON.stringify({ resourceType: 'Patient', id: 'p1', echo: req.headers.authorization }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const auth = (tokenUrl = `${base}/token`) =>
    createSourceAuthenticator({ type: 'oauth2', tokenUrl, clientId: 'bridge', clientSecret: SECRET }, 2000);

  async function refusal(promise: Promise<unknown>): Promise<SourceAuthError> {
    try {
      await promise;
    } catch (err) {
      if (err instanceof SourceAuthError) return err;
      throw err;
    }
    assert.fail('expected a SourceAuthError');
  }

  it('fetches one token and shares it between concurrent callers', async () => {
    tokenStatus = 200;
    calls.length = 0;
    const a = auth();
    const [one, two] = await Promise.all([a.headers(), a.headers()]);
    assert.deepEqual(one, two);
    assert.match(one.authorization ?? '', /^Bearer tok-/);
    assert.equal(calls.filter((c) => c === 'POST /token').length, 1);
  });

  it('reports a refused client as configuration (not retryable), naming the keys, never the secret', async () => {
    tokenStatus = 400;
    const err = await refusal(auth().headers());
    assert.equal(err.retryable, false);
    assert.match(err.message, /auth\.tokenUrl\) refused the client: HTTP 400 \(check auth\.clientId/);
    assert.ok(!err.message.includes(SECRET));
    tokenStatus = 503;
    assert.equal((await refusal(auth().headers())).retryable, true, 'a 5xx may pass');
    const unreachable = await refusal(auth('http://127.0.0.1:1/token').headers());
    assert.equal(unreachable.retryable, true);
    assert.match(unreachable.message, /could not be reached: network error/);
  });

  it('a FHIR read with a refused client fails at once with that reason, not as a network error', async () => {
    tokenStatus = 401;
    calls.length = 0;
    const settings = {
      id: 'emr',
      kind: 'fhir',
      baseUrl: `${base}/fhir`,
      timeoutMs: 2000,
      auth: { type: 'oauth2', tokenUrl: `${base}/token`, clientId: 'bridge', clientSecret: SECRET },
    } as unknown as SourceSettings;
    const client = new FhirSourceClient(settings, { logger: silentLogger, retryBaseMs: 1 });
    await assert.rejects(client.read('Patient', 'p1'), (err: Error) => {
      assert.match(
        err.message,
        /^read Patient failed: the token endpoint \(auth\.tokenUrl\) refused the client: HTTP 401/,
      );
      return true;
    });
    assert.deepEqual(calls, ['POST /token'], 'no retries, and the FHIR server was never called');
    tokenStatus = 200;
    assert.equal((await client.read('Patient', 'p1'))?.id, 'p1');
  });
});
