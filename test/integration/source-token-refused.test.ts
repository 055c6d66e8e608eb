// A source's OAuth2 token endpoint that refuses the client (401 invalid_client), over HTTP: asked once in a
// `sync --once` pass rather than once per resource type searched, and once in the passes of a running
// bridge until the refusal's backoff (30 s, doubling) ends, so a wrong secret does not flood the hospital's
// IdP with failed logins (which may lock the client out). Calls meanwhile fail at once with the same words
// and when it is asked next. A client secret file rewritten meanwhile (a rotation) is tried at once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { rotateSecretFile as rotate } from '../support/secret-file.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, SOURCE_ID, startHarness, startSimulators } from './helpers/bridge-harness.js';

const REFUSED_SECRET = 'source-client-secret-old-8Tn3';
const ROTATED_SECRET = 'source-client-secret-new-2Vc6';

describe("a source's OAuth2 token endpoint refusing the client", () => {
  let server: TokenServer;
  let tokenUrl = '';
  /** The client secret of each token request, in order. */
  let posted: string[] = [];

  before(async () => {
    server = await startTokenServer((secret, res) => {
      if (secret === ROTATED_SECRET) res.json({ access_token: `tok-${posted.length}`, expires_in: 300 });
      else res.status(401).json({ error: 'invalid_client', error_description: `bad secret ${secret}` });
    });
    tokenUrl = server.url;
    posted = server.posted;
  });
  after(() => server.close());
  beforeEach(() => {
    posted.length = 0;
  });

  describe('in a sync --once pass', () => {
    let s: Simulators;
    before(async () => {
      s = await startSimulators([...birthResources(0)]);
    });
    after(async () => {
      await s?.close();
    });

    it('is asked once, and the pass fails naming the refusal and the keys to check, never the secret', async () => {
      const object = s.configObject() as { sources: Array<Record<string, unknown>> };
      object.sources = object.sources.map((source) => ({
        ...source,
        auth: { type: 'oauth2', tokenUrl, clientId: 'bridge', clientSecret: REFUSED_SECRET },
      }));
      const config = join(s.dir, 'refused-token.yaml');
      writeFileSync(config, stringify(object));
      const run = await runCli(['sync', '--once', '--config', config], { LOG_LEVEL: 'warn' });
      assert.equal(run.code, 1, run.stderr);
      assert.equal(posted.length, 1, 'one token request for the whole pass, whatever the resource types searched');
      assert.match(
        run.stdout,
        /the token endpoint \(auth\.tokenUrl\) refused the client: HTTP 401 \(check auth\.clientId/,
      );
      assert.ok(!`${run.stdout}${run.stderr}`.includes(REFUSED_SECRET), 'no secret in the output');
    });
  });

  it('a running bridge asks it once over several passes, and at once with a client secret file rewritten', {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'source-token-refused-'));
    const secretFile = join(dir, 'client-secret');
    rotate(secretFile, REFUSED_SECRET);
    const h = await startHarness({
      source: { auth: { type: 'oauth2', tokenUrl, clientId: 'bridge', clientSecretFile: secretFile } },
    });
    try {
      await h.writeBirths(0, 1);
      for (let pass = 1; pass <= 3; pass++) {
        const refused = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
        assert.deepEqual(refused.failedSources, [SOURCE_ID]);
        const lastError = h.bridge.sourceStatuses()[0]?.lastError ?? '';
        assert.match(lastError, /refused the client: HTTP 401 \(check auth\.clientId/);
        if (pass > 1) assert.match(lastError, /\(asked again in \d+ s\)$/, 'held, not asked again');
        assert.ok(!lastError.includes(REFUSED_SECRET), lastError);
      }
      assert.deepEqual(posted, [REFUSED_SECRET], 'three passes, one token request');

      // The IdP's client got a new secret and the file follows: asked with it at once, not after the backoff.
      rotate(secretFile, ROTATED_SECRET);
      await sleep(300); // a refused secret's file is looked at at most 4 times a second
      const after = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(after.failedSources, [], `last error: ${h.bridge.sourceStatuses()[0]?.lastError}`);
      assert.deepEqual(posted, [REFUSED_SECRET, ROTATED_SECRET]);
      await h.waitFor('the birth delivered', () => h.rows().some((r) => r.state === 'delivered'));
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("readiness's source check follows a client secret file rewritten at once, not after the failure it kept", {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'source-token-refused-'));
    const secretFile = join(dir, 'client-secret');
    rotate(secretFile, REFUSED_SECRET);
    const h = await startHarness({
      source: { auth: { type: 'oauth2', tokenUrl, clientId: 'bridge', clientSecretFile: secretFile } },
    });
    const sourceCheck = async () => {
      const res = await fetch(`${h.bridgeUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
      const check = body.checks[`source:${SOURCE_ID}`];
      assert.ok(check);
      return check;
    };
    try {
      const refused = await sourceCheck();
      assert.equal(refused.ok, false);
      assert.match(refused.detail ?? '', /refused the client: HTTP 401 \(check auth\.clientId/);
      assert.deepEqual(posted, [REFUSED_SECRET]);
      // Held: asked again before the rotation, the check fails with the same words, the endpoint not asked.
      assert.match((await sourceCheck()).detail ?? '', /refused the client: HTTP 401/);
      assert.deepEqual(posted, [REFUSED_SECRET]);

      rotate(secretFile, ROTATED_SECRET);
      await sleep(300); // a refused secret's file is looked at at most 4 times a second
      const ready = await sourceCheck();
      assert.deepEqual(ready, { ok: true }, 'ready with the new secret, not the refusal kept for 30 s');
      assert.deepEqual(posted, [REFUSED_SECRET, ROTATED_SECRET]);
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
