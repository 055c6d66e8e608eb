// Source clients never follow a redirect: fetch() follows a 307 or 308 with the body as it was, to any host,
// and the bodies carry secrets (the OAuth2 client secret, a Subscription's bearer header) or a patient's
// record (write-back). A server answering a redirect to a collector here must leave the collector empty,
// and the failure must say where it points (its origin only) and which setting to change.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { checkDhis2Source, checkFhirSource } from '../../src/doctor/source-checks.js';
import { silentLogger } from '../../src/observability/logger.js';
import { SecretScrubber } from '../../src/observability/secret-scrubber.js';
import { Dhis2Client, Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { createSourceAuthenticator, SourceAuthError } from '../../src/sources/shared/source-auth.js';
import { mayConcernOneRecord } from '../../src/sources/shared/source-error.js';

const CLIENT_SECRET = 'redirected-client-secret-value';
const TOKEN = 'redirected-bearer-token-value';
const RECEIVER_SECRET = 'receiver-bearer-secret-value';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('source clients and redirects', () => {
  /** Everything the collector received: method, path and body. */
  const collected: string[] = [];
  let collector: Server;
  let collectorOrigin = '';
  let redirector: Server;
  let redirectorOrigin = '';

  before(async () => {
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        collected.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''} ${Buffer.concat(chunks)}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'stolen', resourceType: 'Bundle', type: 'transaction-response' }));
      });
    });
    collectorOrigin = await listen(collector);
    // 307 and 308 keep the method and the body; `/same/…` redirects on its own origin (a trailing slash).
    redirector = createServer((req, res) => {
      req.resume();
      const same = req.url?.startsWith('/same/');
      const status = req.url?.includes('permanent') ? 308 : 307;
      res.writeHead(status, {
        location: same ? `${req.url}/` : `${collectorOrigin}/stolen${req.url}?patient=Xylophonia`,
      });
      res.end();
    });
    redirectorOrigin = await listen(redirector);
  });
  after(async () => {
    await new Promise((resolve) => redirector.close(resolve));
    await new Promise((resolve) => collector.close(resolve));
  });

  const fhirSettings = (baseUrl: string, auth: Record<string, string>) =>
    ({ id: 'emr', kind: 'fhir', baseUrl, timeoutMs: 2000, auth }) as unknown as SourceSettings;

  it('the OAuth2 token request does not post the client secret where a redirect points', async () => {
    collected.length = 0;
    for (const path of ['/token', '/token-permanent']) {
      const auth = createSourceAuthenticator(
        { type: 'oauth2', tokenUrl: `${redirectorOrigin}${path}`, clientId: 'bridge', clientSecret: CLIENT_SECRET },
        2000,
        new SecretScrubber(),
      );
      const err = await auth.headers().then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SourceAuthError, String(err));
      assert.equal(err.retryable, false, 'configuration: no retry changes it');
      assert.equal(
        err.message,
        `the token endpoint (auth.tokenUrl) answered a redirect (HTTP ${path === '/token' ? 307 : 308}) to ${collectorOrigin}, which is not followed: set auth.tokenUrl to the final address`,
      );
    }
    assert.deepEqual(collected, []);
  });

  it('doctor reports a redirecting token endpoint, for a FHIR and a DHIS2 source, and sends the secret nowhere', async () => {
    collected.length = 0;
    const auth = {
      type: 'oauth2',
      tokenUrl: `${redirectorOrigin}/token`,
      clientId: 'bridge',
      clientSecret: CLIENT_SECRET,
    };
    const fhir = await checkFhirSource(fhirSettings(`${collectorOrigin}/fhir`, auth), ['Patient']);
    const dhis2 = await checkDhis2Source({
      ...fhirSettings(collectorOrigin, auth),
      kind: 'dhis2',
      dhis2: { program: 'IpHINAT79UW', orgUnits: ['ImspTQPwCqd'] },
    } as unknown as SourceSettings);
    for (const results of [fhir, dhis2]) {
      assert.equal(results[0]?.status, 'fail', JSON.stringify(results));
      assert.match(
        results[0]?.detail ?? '',
        /answered a redirect \(HTTP 307\) to http:\/\/127\.0\.0\.1:\d+, which is not followed: set auth\.tokenUrl/,
      );
    }
    assert.deepEqual(collected, [], 'neither the token endpoint redirect nor a source call reached the collector');
  });

  it('a FHIR transaction, update or read is not sent again where a redirect points, and says so', async () => {
    collected.length = 0;
    const client = new FhirSourceClient(fhirSettings(`${redirectorOrigin}/fhir`, { type: 'bearer', token: TOKEN }), {
      logger: silentLogger,
      retryBaseMs: 1,
    });
    const subscriptions = {
      resourceType: 'Bundle' as const,
      type: 'transaction' as const,
      entry: [
        {
          resource: {
            resourceType: 'Subscription' as const,
            status: 'requested' as const,
            reason: 'births',
            criteria: 'Patient?',
            channel: {
              type: 'rest-hook' as const,
              endpoint: 'https://bridge/fhir-subscription/emr',
              header: [`Authorization: Bearer ${RECEIVER_SECRET}`],
            },
          },
          request: { method: 'POST' as const, url: 'Subscription' },
        },
      ],
    };
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['transaction', () => client.transaction(subscriptions)],
      ['update Patient', () => client.update({ resourceType: 'Patient', id: 'permanent-p1', gender: 'female' }, '3')],
      ['read Patient', () => client.read('Patient', 'p1')],
    ];
    for (const [operation, call] of calls) {
      const err = await call().then(
        () => assert.fail(`${operation}: expected a failure`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof FhirSourceError, String(err));
      assert.equal(
        err.message,
        `${operation} failed: the source answered a redirect (HTTP ${operation === 'update Patient' ? 308 : 307}) to ${collectorOrigin}, which is not followed: set sources[].baseUrl of source emr to the final address`,
      );
      assert.equal(err.retryable, false);
      // The configured address concerns every call, not the record asked for.
      assert.equal(mayConcernOneRecord(err), false);
    }
    assert.deepEqual(collected, []);
    client.close();
  });

  it('a FHIR redirect on the same origin is refused too, naming that origin', async () => {
    const client = new FhirSourceClient(fhirSettings(`${redirectorOrigin}/same/fhir`, { type: 'none' }), {
      logger: silentLogger,
      attempts: 1,
    });
    await assert.rejects(client.capabilityStatement(), {
      message: `capabilities failed: the source answered a redirect (HTTP 307) to ${redirectorOrigin}, which is not followed: set sources[].baseUrl of source emr to the final address`,
    });
    client.close();
  });

  it('a DHIS2 call answered with a redirect fails as configuration, not as a network error to retry', async () => {
    collected.length = 0;
    const client = new Dhis2Client(
      { ...fhirSettings(redirectorOrigin, { type: 'pat', token: TOKEN }), kind: 'dhis2' } as unknown as SourceSettings,
      { logger: silentLogger, retryBaseMs: 1 },
    );
    const err = await client.systemInfo().then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof Dhis2SourceError, String(err));
    assert.match(
      err.message,
      /failed: the source answered a redirect \(HTTP 307\) to http:\/\/127\.0\.0\.1:\d+, which is not followed: set sources\[\]\.baseUrl of source emr to the final address$/,
    );
    assert.equal(err.retryable, false);
    assert.deepEqual(collected, []);
    client.close();
  });
});
