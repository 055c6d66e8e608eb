// A secret given as a file follows the file while the bridge runs: a Kubernetes Secret or a Vault agent
// rewrites it on rotation, and the bridge must not keep the old value until a restart (the EMR answering
// 401 to every poll, OpenCRVS refusing every token request, the EMR's notifications refused).
// Over HTTP: the FHIR sandbox behind a proxy that wants a bearer token, the OpenCRVS simulator with its
// client replaced, and the subscription receiver.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.js';
import { type AdminTarget, adminRoutes } from '../../src/http/admin/index.js';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { openLedger } from '../../src/ledger/index.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { defaultHealthScopes } from '../../src/sandbox/opencrvs/index.js';
import { SOURCE_ID, startHarness } from './helpers/bridge-harness.js';
import { answerJson, type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

const NOTIFICATION = readFileSync(
  new URL('../fixtures/subscriptions/r4-backport-notification-id-only.json', import.meta.url),
  'utf8',
);

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bridge-secret-rotation-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** As a Vault agent or kubelet does: the new file written aside, then moved over the old one. */
function rotate(file: string, value: string): void {
  writeFileSync(`${file}.new`, `${value}\n`);
  renameSync(`${file}.new`, file);
}

describe('secret files rotated while the bridge runs', () => {
  it('a FHIR source whose bearer tokenFile is rewritten polls again with the new token, without a restart', {
    timeout: 60_000,
  }, async () => {
    const tokenFile = join(dir, 'emr-token');
    rotate(tokenFile, 'emr-token-first-7Rk2');
    let wanted = 'emr-token-first-7Rk2';
    const proxy: FaultProxy = await startFaultProxy();
    // The EMR's gateway: 401 to any other token, as a server whose token was rotated answers.
    proxy.rules.push((req) =>
      req.headers.authorization === `Bearer ${wanted}`
        ? undefined
        : answerJson(401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] }),
    );
    const h = await startHarness({
      source: {
        baseUrl: (sandbox) => {
          proxy.target = sandbox;
          return `${proxy.url}${new URL(sandbox).pathname}`;
        },
        auth: { type: 'bearer', tokenFile },
      },
    });
    try {
      await h.writeBirths(0, 1);
      const first = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(first.failedSources, [], `last error: ${h.bridge.sourceStatuses()[0]?.lastError}`);

      // The EMR takes the new token; until the file says so, the source is refused.
      wanted = 'emr-token-second-4Wp9';
      const refused = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(refused.failedSources, [SOURCE_ID]);
      assert.match(h.bridge.sourceStatuses()[0]?.lastError ?? '', /401/);

      rotate(tokenFile, wanted);
      await h.writeBirths(1, 1);
      const after = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(after.failedSources, [], `last error: ${h.bridge.sourceStatuses()[0]?.lastError}`);
      await h.waitFor('both births delivered', () => h.rows().filter((r) => r.state === 'delivered').length === 2);
      const stale = proxy.seen.filter((s) => s.status === 401).length;
      assert.ok(stale > 0, 'the proxy refused the old token');
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('the OpenCRVS client secret rotated and clientSecretFile rewritten: delivery resumes without a restart, before the refusal backoff ends', {
    timeout: 60_000,
  }, async () => {
    const secretFile = join(dir, 'opencrvs-client-secret');
    // The simulator seeds its client with this secret.
    rotate(secretFile, 'sandbox-secret');
    const h = await startHarness({ opencrvs: { clientSecret: undefined, clientSecretFile: secretFile } });
    try {
      await h.writeBirths(0, 1);
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      await h.waitFor('the first birth delivered', () => h.rows().some((r) => r.state === 'delivered'));

      // OpenCRVS replaces the client's secret, which revokes the tokens it holds.
      const secret = 'rotated-opencrvs-secret-2Fq8';
      await h.sim.control.addClient({
        clientId: h.sim.clientId,
        clientSecret: secret,
        scopes: defaultHealthScopes('2.0'),
      });
      await h.writeBirths(1, 1);
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      await h.waitFor('delivery held on the refused client', () => h.bridge.ledger.getHold() !== undefined);
      assert.match(h.bridge.ledger.getHold()?.reason ?? '', /401/);

      // The token endpoint's refusal stands for 30 s, and the file is looked at every 30 s on its own: the
      // changed file ends the refusal at once, so delivery resumes well within that.
      rotate(secretFile, secret);
      await h.waitFor(
        'both births delivered',
        () => h.rows().filter((r) => r.state === 'delivered').length === 2,
        15_000,
      );
      assert.equal(h.bridge.ledger.getHold(), undefined);
      assert.equal((await h.events()).length, 2);
    } finally {
      await h.close();
    }
  });

  it("the OpenCRVS client secret rotated: readiness's token check, refused, passes at its next request once clientSecretFile is rewritten", {
    timeout: 60_000,
  }, async () => {
    const secretFile = join(dir, 'opencrvs-client-secret-readiness');
    rotate(secretFile, 'sandbox-secret');
    const h = await startHarness({
      opencrvs: { clientSecret: undefined, clientSecretFile: secretFile },
      worker: false,
    });
    const tokenCheck = async () => {
      const res = await fetch(`${h.bridgeUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      return ((await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> }).checks[
        'opencrvs-token'
      ];
    };
    try {
      const secret = 'rotated-opencrvs-secret-7Lw2';
      await h.sim.control.addClient({
        clientId: h.sim.clientId,
        clientSecret: secret,
        scopes: defaultHealthScopes('2.0'),
      });
      // The check itself meets the refusal (nothing else asked for a token since).
      const refused = await tokenCheck();
      assert.equal(refused?.ok, false);
      assert.match(refused?.detail ?? '', /401.*\(unauthorized\)$/);
      rotate(secretFile, secret);
      await sleep(400); // a refused secret's file is looked at at most 4 times a second
      assert.deepEqual(await tokenCheck(), { ok: true }, 'the new secret, not the refusal kept for 30 s');
    } finally {
      await h.close();
    }
  });

  it('subscription secretFile and hmacSecretFile rewritten: notifications with the new secrets are accepted at once, the old ones for a while', {
    timeout: 60_000,
  }, async () => {
    const secretFile = join(dir, 'hook-secret');
    const hmacFile = join(dir, 'hook-hmac');
    rotate(secretFile, 'hook-secret-first-5Tg1');
    rotate(hmacFile, 'hook-hmac-first-8Jd3');
    const lines: string[] = [];
    const h = await startHarness({
      worker: false,
      subscription: { secretFile, hmacSecretFile: hmacFile },
      logger: createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } }),
    });
    const post = async (secret: string, hmac: string) => {
      const response = await fetch(h.receiverUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/fhir+json',
          authorization: `Bearer ${secret}`,
          'x-signature': createHmac('sha256', hmac).update(NOTIFICATION).digest('hex'),
        },
        body: NOTIFICATION,
        signal: AbortSignal.timeout(10_000),
      });
      await response.text();
      return response.status;
    };
    try {
      assert.equal(await post('hook-secret-first-5Tg1', 'hook-hmac-first-8Jd3'), 200);
      assert.equal(await post('hook-secret-second-3Mn7', 'hook-hmac-second-6Vb4'), 401, 'not yet rotated');

      rotate(secretFile, 'hook-secret-second-3Mn7');
      rotate(hmacFile, 'hook-hmac-second-6Vb4');
      // Refused a moment ago: the file is looked at again 4 times a second at most.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await post('hook-secret-second-3Mn7', 'hook-hmac-second-6Vb4'), 200, 'the new secrets');
      assert.equal(
        await post('hook-secret-first-5Tg1', 'hook-hmac-first-8Jd3'),
        200,
        'the old ones, during the overlap',
      );
      assert.equal(await post('hook-secret-second-3Mn7', 'hook-hmac-first-8Jd3'), 200, 'the EMR switching one first');
      assert.equal(await post('hook-secret-wrong-0000', 'hook-hmac-second-6Vb4'), 401);
      assert.equal(await post('hook-secret-second-3Mn7', 'hook-hmac-wrong-0000'), 401);

      // Refused at start, so not taken later either: the secrets before stay, and the operator is told.
      await sleep(300);
      rotate(secretFile, 'change-me-hook-secret');
      rotate(hmacFile, 'short-hmac');
      assert.equal(await post('change-me-hook-secret', 'hook-hmac-second-6Vb4'), 401, 'a weak secret is not taken');
      assert.equal(await post('hook-secret-second-3Mn7', 'short-hmac'), 401, 'nor a weak hmacSecret');
      assert.equal(await post('hook-secret-second-3Mn7', 'hook-hmac-second-6Vb4'), 200, 'the secrets before stay');
      const warnings = lines
        .map((line) => JSON.parse(line))
        .filter((entry) => entry.msg?.startsWith('a secret file cannot be used'));
      assert.deepEqual(warnings.map((entry) => entry.key).sort(), [
        'sources[0].subscription.hmacSecretFile',
        'sources[0].subscription.secretFile',
      ]);
      assert.match(warnings[0].reason, /placeholder|shorter than 16 characters/);
      assert.ok(!lines.some((line) => /change-me-hook|short-hmac/.test(line)), 'the values are not logged');
    } finally {
      await h.close();
    }
  });

  it('admin tokenFile rewritten: the new token opens the admin API at once, the old one for a while; a token too short is not taken', async () => {
    const tokenFile = join(dir, 'admin-token');
    rotate(tokenFile, 'admin-token-first-0123456789');
    const config = loadConfig({
      text: `opencrvs:\n  domain: farajaland.example.org\n  clientId: bridge\n  clientSecret: s3cret\nadmin:\n  tokenFile: ${tokenFile}\n`,
    });
    const ledger = openLedger(join(dir, 'admin.db'));
    const target: AdminTarget = {
      ledger,
      counts: () => ledger.counts(),
      held: () => undefined,
      sourceStatuses: () => [],
      replay: async (ids) => ledger.replay(ids),
    };
    const app = createHttpApp([{ path: '/admin', router: adminRoutes(target, config.admin) }], silentLogger);
    const { server, port } = await listen(app, 0, '127.0.0.1');
    const status = async (token: string) => {
      const response = await fetch(`http://127.0.0.1:${port}/admin/api/summary`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5000),
      });
      await response.text();
      return response.status;
    };
    /** Basic, as the browser sends what the operator typed or pasted into its prompt. */
    const basic = async (password: string) => {
      const response = await fetch(`http://127.0.0.1:${port}/admin/api/summary`, {
        headers: { authorization: `Basic ${Buffer.from(`operator:${password}`).toString('base64')}` },
        signal: AbortSignal.timeout(5000),
      });
      await response.text();
      return response.status;
    };
    try {
      assert.equal(await status('admin-token-first-0123456789'), 200);
      // Compared without surrounding spaces on either side, as a subscription's bearer secret is.
      assert.equal(await basic(' admin-token-first-0123456789 '), 200, 'a Basic password pasted with spaces');
      rotate(tokenFile, '  admin-token-second-9876543210 ');
      assert.equal(await status('admin-token-second-9876543210'), 200, 'the new token');
      assert.equal(await basic('admin-token-second-9876543210'), 200, 'the new token, by Basic');
      assert.equal(await status('admin-token-first-0123456789'), 200, 'the old one, during the overlap');
      assert.equal(await status('admin-token-wrong-000000000000'), 401);
      // Refused at start, so not taken later either: the token before it stays.
      await new Promise((resolve) => setTimeout(resolve, 300));
      rotate(tokenFile, 'short');
      assert.equal(await status('short'), 401);
      assert.equal(await status('admin-token-second-9876543210'), 200);
    } finally {
      await closeServer(server, 1000);
      ledger.close();
    }
  });
});
