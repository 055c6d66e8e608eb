// Configurations that work but are rarely what the operator meant get one warning at construction.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Command } from 'commander';
import { Bridge } from '../../src/app.js';
import { registerValidate } from '../../src/commands/validate.js';
import { configFromObject } from '../../src/config/index.js';
import { MIGRATIONS } from '../../src/ledger/migrations/index.js';
import { createLogger } from '../../src/observability/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-warnings-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function warningsFor(
  subscription: Record<string, unknown> | undefined,
  name: string,
  listen?: { host: string; baseUrl: string; http?: boolean },
): Promise<string[]> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
  const baseUrl = listen?.baseUrl ?? 'http://127.0.0.1:9/fhir';
  const config = configFromObject({
    // Never contacted: the bridge is constructed, not started.
    opencrvs: { domain: 'opencrvs.example.org', clientId: 'c', clientSecret: 'not-a-real-secret' },
    store: { path: join(dir, `${name}.db`) },
    ...(listen ? { http: { host: listen.host } } : {}),
    sources: [{ id: 'emr', kind: 'fhir', baseUrl, ...(subscription ? { subscription } : {}) }],
    routing: { defaultOffice: 'LHUYvwY2Aq1' },
  });
  // Constructed with its listener (as serve builds it) but never started: nothing listens.
  const http = listen?.http ?? false;
  const bridge = new Bridge(config, { logger, schedule: false, http, worker: false });
  await bridge.stop();
  return lines.map((line) => String(JSON.parse(line).msg));
}

describe('construction warnings', () => {
  it('warns once when a subscription accepts notifications without any secret', async () => {
    const open = await warningsFor({}, 'open');
    assert.equal(open.filter((msg) => msg.startsWith('subscription without secret or hmacSecret')).length, 1);
    // Logged whole: the log's scrubber took `hmacSecret: anyone` for a credential and hid the word.
    assert.match(open.join('\n'), /hmacSecret, so anyone who can reach/);
    const bearer = await warningsFor({ secret: 'shared-bearer-secret' }, 'bearer');
    const hmac = await warningsFor({ hmacSecret: 'shared-hmac-secret' }, 'hmac');
    assert.deepEqual(
      [...bearer, ...hmac].filter((msg) => msg.startsWith('subscription without')),
      [],
    );
  });

  it('warns when a subscription has an hmacSecret but no bearer secret (the signature covers the body only)', async () => {
    const said = (msgs: string[]) => msgs.filter((msg) => msg.startsWith('subscription with hmacSecret but no secret'));
    const hmacOnly = said(await warningsFor({ hmacSecret: 'shared-hmac-secret' }, 'hmac-only'));
    assert.equal(hmacOnly.length, 1);
    // Logged whole: the scrubber hides the word after "bearer" (an Authorization header's token).
    assert.doesNotMatch(hmacOnly[0] ?? '', /redacted/);
    const both = await warningsFor({ secret: 'shared-bearer-secret', hmacSecret: 'shared-hmac-secret' }, 'both');
    assert.deepEqual([...said(both), ...said(await warningsFor({}, 'neither'))], []);
  });

  it('warns when a subscription is configured but http.host is loopback and the EMR is elsewhere', async () => {
    const secret = { secret: 'shared-bearer-secret' };
    const emr = 'https://emr.hospital.example/fhir';
    const said = (msgs: string[]) => msgs.filter((msg) => msg.startsWith('subscription configured but http.host'));
    const loopback = said(await warningsFor(secret, 'loopback', { host: '127.0.0.1', baseUrl: emr, http: true }));
    assert.equal(loopback.length, 1);
    assert.match(
      loopback[0] ?? '',
      /is 127\.0\.0\.1: unless a proxy on this machine forwards to it, the EMR cannot reach \/fhir-subscription\/emr /,
    );
    // 0.0.0.0 only for a container, whose port is published: on a host it would serve plain HTTP to all.
    assert.match(
      loopback[0] ?? '',
      /in a container set http\.host 0\.0\.0\.0 and publish the port .*, outside one put a TLS proxy in front/,
    );
    assert.equal(said(await warningsFor(secret, 'ipv6', { host: '::1', baseUrl: emr, http: true })).length, 1);
    // Every address, no subscription, an EMR on this machine too (the sandboxes), or no listener (sync): no warning.
    assert.deepEqual(said(await warningsFor(secret, 'any', { host: '0.0.0.0', baseUrl: emr, http: true })), []);
    assert.deepEqual(said(await warningsFor(undefined, 'poll', { host: '127.0.0.1', baseUrl: emr, http: true })), []);
    const local = { host: 'localhost', baseUrl: 'http://127.0.0.1:8090/fhir', http: true };
    assert.deepEqual(said(await warningsFor(secret, 'local', local)), []);
    assert.deepEqual(said(await warningsFor(secret, 'sync', { host: '127.0.0.1', baseUrl: emr, http: false })), []);
  });

  it('says when it created a new ledger (naming the file alone) in one line, and not when it opens the one it has', async () => {
    const latest = Math.max(...MIGRATIONS.map((m) => m.version));
    /** Every line at info and above about a ledger created, by a bridge constructed on `name`.db. */
    const creationLines = async (name: string, options: { scratchLedger?: boolean } = {}) => {
      const lines: string[] = [];
      const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
      const config = configFromObject({
        opencrvs: { domain: 'opencrvs.example.org', clientId: 'c', clientSecret: 'not-a-real-secret' },
        store: { path: join(dir, `${name}.db`) },
        sources: [{ id: 'emr', kind: 'fhir', baseUrl: 'http://127.0.0.1:9/fhir' }],
        routing: { defaultOffice: 'LHUYvwY2Aq1' },
      });
      await new Bridge(config, { logger, schedule: false, http: false, worker: false, ...options }).stop();
      return lines
        .map((line) => JSON.parse(line) as { level: string; msg: string })
        .filter(({ msg }) => /created/.test(msg))
        .map(({ level, msg }) => `${level} ${msg}`);
    };
    // The warning alone: the ledger's own `ledger created at schema N` beside it said the same thing twice.
    assert.deepEqual(await creationLines('fresh'), [
      `warn created a new ledger at fresh.db (store.path, schema ${latest}): nothing has been recorded before it. On a first start this is expected; if this bridge has run before, its ledger is elsewhere or was lost: stop it, and set store.path to the ledger it has (or restore the last backup)`,
    ]);
    assert.deepEqual(await creationLines('fresh'), []);
    // A ledger made for this process alone (the demo, a bench): no warning meant for an operator, the info line.
    assert.deepEqual(await creationLines('scratch', { scratchLedger: true }), [
      `info ledger created at schema ${latest}`,
    ]);
  });

  it('warns that nothing will be read when sources is empty, at start and in validate', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const opencrvs = { domain: 'opencrvs.example.org', clientId: 'c', clientSecret: 'not-a-real-secret' };
    const config = configFromObject({ opencrvs, store: { path: join(dir, 'none.db') }, sources: [] });
    await new Bridge(config, { logger, schedule: false, http: false, worker: false }).stop();
    const said = lines.map((line) => String(JSON.parse(line).msg)).filter((msg) => msg.startsWith('no sources'));
    assert.deepEqual(said, [
      'no sources configured (sources is empty): nothing will be read or delivered; add a FHIR or DHIS2 source under sources',
    ]);
    // validate says so too, and still passes: a bridge kept for replay alone may have none.
    const file = join(dir, 'no-sources.yaml');
    writeFileSync(file, JSON.stringify({ opencrvs, sources: [] }));
    const out: string[] = [];
    const log = console.log;
    console.log = (...parts: unknown[]) => out.push(parts.join(' '));
    try {
      const program = new Command('opencrvs-bridge').exitOverride();
      registerValidate(program);
      await program.parseAsync(['node', 'opencrvs-bridge', 'validate', '--config', file]);
    } finally {
      console.log = log;
    }
    assert.equal(process.exitCode, 0);
    process.exitCode = undefined;
    assert.ok(out.includes(`warn  ${said[0]}`), out.join('\n'));
  });
});
