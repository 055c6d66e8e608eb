// OAuth2 client credentials against a source's token endpoint (a local HTTP server): the token is cached
// and shared, a refusal is reported as the configuration problem it is, never as a network error, and
// neither a configured secret nor an obtained token is quoted by what the source clients throw or log.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.js';
import type { SourceSettings } from '../../src/config/types.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { SecretScrubber } from '../../src/observability/secret-scrubber.js';
import { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { createSourceAuthenticator, SourceAuthError } from '../../src/sources/shared/source-auth.js';
import { loggableCause } from '../../src/sources/shared/source-error.js';
import { sourceSecrets } from '../../src/sources/shared/source-secrets.js';
import { closedPort } from '../support/ports.js';
import { rotateSecretFile } from '../support/secret-file.js';
import { MINIMAL_CONFIG } from './config-helpers.js';

const SECRET = 'source-client-secret-value';

describe('source OAuth2 client credentials', () => {
  let server: Server;
  let base = '';
  let tokenStatus = 200;
  /** What the token endpoint hands out instead of `tok-<n>`. */
  let issuedToken: string | undefined;
  const calls: string[] = [];
  /** The client secrets posted to `/token-short`, whose tokens live one second (each call renews). */
  const posted: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.url === '/token-short') {
          posted.push(new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('client_secret') ?? '');
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ access_token: `short-tok-${calls.length}`, expires_in: 1 }));
          return;
        }
        if (req.url === '/token-huge') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ access_token: 'tok', padding: 'x'.repeat(200_000) }));
          return;
        }
        if (req.url === '/token') {
          res.writeHead(tokenStatus, { 'content-type': 'application/json' });
          res.end(
            tokenStatus === 200
              ? JSON.stringify({ access_token: issuedToken ?? `tok-${calls.length}`, expires_in: 300 })
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
    createSourceAuthenticator(
      { type: 'oauth2', tokenUrl, clientId: 'bridge', clientSecret: SECRET },
      2000,
      new SecretScrubber(),
    );

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
    const unreachable = await refusal(auth(`http://127.0.0.1:${await closedPort()}/token`).headers());
    assert.equal(unreachable.retryable, true);
    assert.match(unreachable.message, /could not be reached: network error \(ECONNREFUSED\)/);
    // Port 1 is one Node's fetch refuses without connecting, with no code: said so, not a bare "network error".
    const unsafe = await refusal(auth('http://127.0.0.1:1/token').headers());
    assert.match(unsafe.message, /could not be reached: network error \(a port fetch refuses as unsafe: use another\)/);
  });

  it('refuses a token answer larger than 64 kB instead of reading it whole, and holds it as a refusal is', async () => {
    calls.length = 0;
    const a = auth(`${base}/token-huge`);
    const err = await refusal(a.headers());
    assert.equal(err.retryable, false);
    assert.match(err.message, /auth\.tokenUrl\) answered with more than 64 kB/);
    // Asked again on every call, each read of a FHIR pass would fetch it anew: held instead.
    const again = await refusal(a.headers());
    assert.match(again.message, /answered with more than 64 kB \(asked again in \d+ s\)/);
    assert.equal(calls.filter((c) => c === 'POST /token-huge').length, 1);
  });

  it('a 408 from the token endpoint may pass (retryable), and is not held', async () => {
    tokenStatus = 408;
    calls.length = 0;
    const a = auth();
    assert.equal((await refusal(a.headers())).retryable, true);
    tokenStatus = 200;
    assert.match((await a.headers()).authorization ?? '', /^Bearer tok-/);
    assert.equal(calls.filter((c) => c === 'POST /token').length, 2);
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
    // Fixed at the endpoint: found when the refusal's backoff ends, not by every call meanwhile, which
    // fails at once with the same words and when the endpoint is asked again.
    tokenStatus = 200;
    await assert.rejects(client.read('Patient', 'p1'), (err: Error) => {
      assert.match(
        err.message,
        /^read Patient failed: the token endpoint \(auth\.tokenUrl\) refused the client: HTTP 401 \(check auth\.clientId, auth\.clientSecret and auth\.scope\) \(asked again in 30 s\)$/,
      );
      return true;
    });
    assert.deepEqual(calls, ['POST /token'], 'the endpoint was not asked again');
  });

  it('a refusal stands 30 s, then twice as long each time it is met again, at most 5 minutes', async () => {
    tokenStatus = 401;
    calls.length = 0;
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      const a = auth();
      const waits: number[] = [];
      for (let i = 0; i < 6; i++) {
        assert.doesNotMatch((await refusal(a.headers())).message, /asked again/, 'asked');
        const held = (await refusal(a.headers())).message;
        const wait = Number(/\(asked again in (\d+) s\)$/.exec(held)?.[1]);
        waits.push(wait);
        mock.timers.tick(wait * 1000);
      }
      assert.deepEqual(waits, [30, 60, 120, 240, 300, 300]);
      assert.equal(calls.length, 6, 'one request each time the backoff ended');
      tokenStatus = 200;
      assert.match((await a.headers()).authorization ?? '', /^Bearer tok-/);
      tokenStatus = 401;
      // A token obtained ends the backoff: the next refusal stands 30 s again.
      mock.timers.tick(300_000);
      await refusal(a.headers());
      assert.match((await refusal(a.headers())).message, /\(asked again in 30 s\)$/);
    } finally {
      mock.timers.reset();
    }
  });

  it('a refused client secret rewritten in its file is asked with at once, the refusal left standing for the old one', async () => {
    tokenStatus = 401;
    const dir = mkdtempSync(join(tmpdir(), 'source-auth-refused-'));
    const secretFile = join(dir, 'client-secret');
    const rotate = (value: string) => {
      writeFileSync(`${secretFile}.new`, `${value}\n`);
      renameSync(`${secretFile}.new`, secretFile);
    };
    try {
      rotate('refused-secret-6Hb2');
      const config = loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: ${base}/fhir\n    auth: { type: oauth2, tokenUrl: "${base}/token", clientId: bridge, clientSecretFile: ${secretFile} }\n`,
      });
      const settings = config.sources[0];
      assert.ok(settings);
      const a = createSourceAuthenticator(settings.auth, 2000, sourceSecrets(settings));
      calls.length = 0;
      await refusal(a.headers());
      assert.match((await refusal(a.headers())).message, /asked again in/);
      assert.equal(calls.length, 1);
      rotate('rotated-secret-3Qs7');
      await sleep(300); // a refused secret's file is looked at at most 4 times a second
      const rotated = await refusal(a.headers());
      assert.doesNotMatch(rotated.message, /asked again/, 'asked with the new secret');
      assert.equal(calls.length, 2);
      tokenStatus = 200;
      assert.match((await refusal(a.headers())).message, /\(asked again in 30 s\)$/, 'the new secret refused too');
      assert.equal(calls.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an answer without a usable access_token is held as a refusal is, and a client secret rewritten in its file ends it too', async () => {
    tokenStatus = 200;
    issuedToken = ''; // some IdPs answer a wrong secret so: 200, and no token
    const dir = mkdtempSync(join(tmpdir(), 'source-auth-no-token-'));
    const secretFile = join(dir, 'client-secret');
    try {
      rotateSecretFile(secretFile, 'unusable-secret-8Lc1');
      const config = loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: ${base}/fhir\n    auth: { type: oauth2, tokenUrl: "${base}/token", clientId: bridge, clientSecretFile: ${secretFile} }\n`,
      });
      const settings = config.sources[0];
      assert.ok(settings);
      const a = createSourceAuthenticator(settings.auth, 2000, sourceSecrets(settings));
      calls.length = 0;
      assert.match((await refusal(a.headers())).message, /returned no access_token$/);
      assert.match((await refusal(a.headers())).message, /returned no access_token \(asked again in 30 s\)$/);
      assert.equal(calls.length, 1);
      issuedToken = undefined;
      rotateSecretFile(secretFile, 'usable-secret-4Pz9');
      await sleep(300); // a held secret's file is looked at at most 4 times a second
      assert.match((await a.headers()).authorization ?? '', /^Bearer tok-/, 'asked with the new secret at once');
      assert.equal(calls.length, 2);
    } finally {
      issuedToken = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('adds every token it obtains to the scrubber it is given, before handing it out', async () => {
    tokenStatus = 200;
    issuedToken = undefined;
    const secrets = new SecretScrubber();
    const a = createSourceAuthenticator(
      { type: 'oauth2', tokenUrl: `${base}/token`, clientId: 'bridge', clientSecret: SECRET },
      2000,
      secrets,
    );
    const token = (await a.headers()).authorization?.replace(/^Bearer /, '') ?? '';
    assert.match(token, /^tok-\d+$/);
    assert.equal(secrets.text(`an answer quoting ${token} bare`), 'an answer quoting [redacted] bare');
  });

  it('a client secret rotated in its file stays hidden however many tokens are renewed after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'source-auth-rotation-'));
    const secretFile = join(dir, 'client-secret');
    // As a Vault agent or kubelet does: the new file written aside, then moved over the old one.
    const rotate = (value: string) => {
      writeFileSync(`${secretFile}.new`, `${value}\n`);
      renameSync(`${secretFile}.new`, secretFile);
    };
    const [first, second, third] = ['first-secret-2Kq9vT', 'second-secret-7Wm4xR', 'third-secret-5Jd8pL'];
    try {
      rotate(first);
      const config = loadConfig({
        text: `${MINIMAL_CONFIG}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: ${base}/fhir\n    auth: { type: oauth2, tokenUrl: "${base}/token-short", clientId: bridge, clientSecretFile: ${secretFile} }\n`,
      });
      const settings = config.sources[0];
      assert.ok(settings);
      // As the FHIR and DHIS2 clients build theirs: the configured secrets, then the authenticator's.
      const secrets = sourceSecrets(settings);
      const a = createSourceAuthenticator(settings.auth, 2000, secrets);
      posted.length = 0;
      await a.headers();
      for (const next of [second, third]) {
        rotate(next);
        await sleep(300); // a 401's look at the file is made at most 4 times a second
        a.invalidate(); // the token endpoint or the server refused the old secret
        await a.headers();
      }
      // Tokens of one second, each asked for anew: far more renewals than the scrubber keeps tokens.
      for (let i = 0; i < 12; i++) await a.headers();
      assert.deepEqual([...new Set(posted)], [first, second, third], 'each secret was sent in its turn');
      assert.ok(posted.length >= 14, `${posted.length} tokens obtained`);

      // A proxy's page, an error quoting a form body sent before the rotation: none of the three may show.
      const page = `gateway refused ${first}; earlier ${second}; now ${third}`;
      assert.equal(secrets.text(page), 'gateway refused [redacted]; earlier [redacted]; now [redacted]');
      const cause = loggableCause(new Error(page), secrets) as { message?: string };
      for (const secret of [first, second, third]) assert.ok(!String(cause.message).includes(secret), cause.message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a token the runtime would refuse to send (a line break in it) is refused by name and quoted by nothing the FHIR or DHIS2 client throws or logs', async () => {
    tokenStatus = 200;
    // Sent, the runtime's error would quote the whole header value; the generic scrubber stops at the line break.
    issuedToken = 'opaque-first-half\nhidden-second-half-31';
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
    const settings = (kind: 'fhir' | 'dhis2') =>
      ({
        id: kind,
        kind,
        baseUrl: `${base}/${kind}`,
        timeoutMs: 2000,
        auth: { type: 'oauth2', tokenUrl: `${base}/token`, clientId: 'bridge', clientSecret: SECRET },
      }) as unknown as SourceSettings;
    const messages: string[] = [];
    const calls = [
      new FhirSourceClient(settings('fhir'), { logger, attempts: 1 }).read('Patient', 'p1'),
      new Dhis2Client(settings('dhis2'), { logger, attempts: 1 }).systemInfo(),
    ];
    for (const call of calls) {
      await assert.rejects(call, (err: Error) => {
        messages.push(err.message);
        logger.warn({ err }, 'source call failed');
        return true;
      });
    }
    try {
      const logged = lines.join('');
      assert.equal(lines.length, 2);
      for (const message of messages) assert.match(message, /returned an access_token that cannot be sent in a header/);
      for (const text of [logged, ...messages]) {
        for (const part of ['opaque-first-half', 'hidden-second-half-31'])
          assert.ok(!text.includes(part), `${part} leaked: ${text}`);
      }
    } finally {
      issuedToken = undefined;
    }
  });
});

describe('source secrets', () => {
  it('knows every secret of a source configuration, and the basic auth header value', () => {
    const quoted = (settings: Pick<SourceSettings, 'auth' | 'subscription'>, values: string[]) =>
      sourceSecrets(settings).text(values.map((value) => `"${value}"`).join(' '));
    assert.equal(
      quoted({ auth: { type: 'bearer', token: 'plain-bearer-token' } }, ['plain-bearer-token']),
      '"[redacted]"',
    );
    assert.equal(quoted({ auth: { type: 'pat', token: 'd2pat_abcdef123' } }, ['d2pat_abcdef123']), '"[redacted]"');
    const basic = Buffer.from('bridge:basic-pass-word').toString('base64');
    assert.equal(
      quoted({ auth: { type: 'basic', username: 'bridge', password: 'basic-pass-word' } }, ['basic-pass-word', basic]),
      '"[redacted]" "[redacted]"',
    );
    assert.equal(
      quoted(
        {
          auth: { type: 'oauth2', tokenUrl: 'https://idp/token', clientId: 'bridge', clientSecret: 'oauth-secret' },
          subscription: { secret: 'hook-bearer-secret', hmacSecret: 'hook-hmac-secret' },
        },
        ['oauth-secret', 'hook-bearer-secret', 'hook-hmac-secret', 'bridge'],
      ),
      '"[redacted]" "[redacted]" "[redacted]" "bridge"',
    );
  });
});
