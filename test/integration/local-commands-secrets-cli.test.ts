// During a rotation incident (the OpenCRVS secret file emptied, a source's or the admin token's unreadable)
// the commands that only read the ledger must still answer: they are how the operator sees what happens.
// Those that call OpenCRVS or the sources still refuse such a file by name, with exit code 2.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openLedger } from '../../src/ledger/index.js';
import { eventInput, settleRow } from '../unit/ledger-helpers.js';
import { runCli } from './helpers/bridge-cli.js';

const liveBirth = fileURLToPath(
  new URL('../fixtures/fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json', import.meta.url),
);

describe('commands that call nobody, with the secret files empty', () => {
  let dir: string;
  let config: string;
  let deadId: number;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'local-secrets-'));
    for (const name of ['ocrvs', 'emr-token', 'admin-token']) writeFileSync(join(dir, name), '');
    config = join(dir, 'bridge.yaml');
    writeFileSync(
      config,
      [
        'opencrvs: { domain: farajaland.example.org, clientId: bridge, clientSecretFile: ocrvs }',
        `store: { path: ${JSON.stringify(join(dir, 'bridge.db'))} }`,
        'admin: { tokenFile: admin-token }',
        'routing: { defaultOffice: 0be1dc9b-5c8b-4d20-a88c-08cafc71c99a }',
        'sources:',
        '  - id: emr',
        '    kind: fhir',
        '    baseUrl: http://127.0.0.1:9/fhir',
        '    auth: { type: bearer, tokenFile: emr-token }',
        '    poll: { since: "2026-01-01" }',
        '',
      ].join('\n'),
    );
    const ledger = openLedger(join(dir, 'bridge.db'));
    const { row } = ledger.recordEvent(eventInput('1'));
    settleRow(ledger, row.id, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'Unexpected field' },
    });
    deadId = row.id;
    ledger.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [name, args, code] of [
    ['ledger', ['ledger'], 0],
    ['write-backs', ['write-backs'], 0],
    ['map', ['map', '--input', liveBirth, '--json'], 0],
    ['ledger retire-source', ['ledger', 'retire-source', 'gone'], 2], // its own refusal: no such source
  ] as const) {
    it(`${name} answers, without reading them`, async () => {
      const r = await runCli([...args, '--config', config]);
      assert.doesNotMatch(r.stderr, /configuration error|the file is empty/, r.stderr);
      assert.equal(r.code, code, r.stderr || r.stdout);
    });
  }

  it('dismiss closes a dead row', async () => {
    const r = await runCli(['dismiss', String(deadId), '--reason', 'duplicate', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Dismissed 1 row\\(s\\): ${deadId}`));
  });

  for (const [name, args, key] of [
    ['sync', ['sync', '--once'], 'opencrvs.clientSecretFile'],
    ['replay', ['replay', '--dead'], 'opencrvs.clientSecretFile'],
    // It calls the EMR, never OpenCRVS: the source's token is what it stops at.
    ['subscriptions', ['subscriptions', '--bridge-url', 'http://bridge.local'], 'sources[0].auth.tokenFile'],
  ] as const) {
    it(`${name} still refuses an empty secret file it would use (exit 2)`, async () => {
      const r = await runCli([...args, '--config', config]);
      assert.equal(r.code, 2, r.stderr || r.stdout);
      assert.ok(r.stderr.includes(`configuration error: ${config}: ${key}: the file is empty`), r.stderr);
    });
  }

  it('doctor reports it as its failed config check (exit 1)', async () => {
    const r = await runCli(['doctor', '--config', config]);
    assert.equal(r.code, 1, r.stderr || r.stdout);
    assert.match(r.stdout, /config.*opencrvs\.clientSecretFile: the file is empty/);
  });
});

// The same promise with the secrets given as `${NAME}` in a shell where the variables are not set (an
// operator's own shell beside the container's): an unset variable in a secret key is a secret not read.
describe('commands that call nobody, with the secrets’ environment variables unset', () => {
  const names = ['BRIDGE_TEST_UNSET_OCRVS', 'BRIDGE_TEST_UNSET_EMR', 'BRIDGE_TEST_UNSET_ADMIN'];
  let dir: string;
  let config: string;
  let deadId: number;
  before(() => {
    for (const name of names) assert.equal(process.env[name], undefined, `${name} is set in the test's environment`);
    dir = mkdtempSync(join(tmpdir(), 'local-unset-'));
    config = join(dir, 'bridge.yaml');
    writeFileSync(
      config,
      [
        'opencrvs:',
        '  domain: farajaland.example.org',
        '  clientId: bridge',
        `  clientSecret: \${${names[0]}}`,
        `store: { path: ${JSON.stringify(join(dir, 'bridge.db'))} }`,
        'admin:',
        `  token: \${${names[2]}}`,
        'routing: { defaultOffice: 0be1dc9b-5c8b-4d20-a88c-08cafc71c99a }',
        'sources:',
        '  - id: emr',
        '    kind: fhir',
        '    baseUrl: http://127.0.0.1:9/fhir',
        `    auth: { type: bearer, token: "\${${names[1]}}" }`,
        '    poll: { since: "2026-01-01" }',
        '',
      ].join('\n'),
    );
    const ledger = openLedger(join(dir, 'bridge.db'));
    const { row } = ledger.recordEvent(eventInput('1'));
    settleRow(ledger, row.id, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'Unexpected field' },
    });
    deadId = row.id;
    ledger.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [name, args] of [
    ['ledger', ['ledger']],
    ['write-backs', ['write-backs']],
    ['map', ['map', '--input', liveBirth, '--json']],
  ] as const) {
    it(`${name} answers without them`, async () => {
      const r = await runCli([...args, '--config', config]);
      assert.doesNotMatch(r.stderr, /configuration error|is not set/, r.stderr);
      assert.equal(r.code, 0, r.stderr || r.stdout);
    });
  }

  it('dismiss closes a dead row', async () => {
    const r = await runCli(['dismiss', String(deadId), '--reason', 'duplicate', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Dismissed 1 row\\(s\\): ${deadId}`));
  });

  for (const [name, args, key, variable] of [
    ['sync', ['sync', '--once'], 'opencrvs.clientSecret', names[0]],
    // Replay beside serve authenticates with the real admin token; alone it calls OpenCRVS.
    ['replay', ['replay', '--dead'], 'opencrvs.clientSecret', names[0]],
    ['subscriptions', ['subscriptions', '--bridge-url', 'http://bridge.local'], 'sources[0].auth.token', names[1]],
  ] as const) {
    it(`${name} still refuses the unset variable of a secret it would use (exit 2)`, async () => {
      const r = await runCli([...args, '--config', config]);
      assert.equal(r.code, 2, r.stderr || r.stdout);
      assert.ok(
        r.stderr.includes(`configuration error: ${config}: ${key}: environment variable ${variable} is not set`),
        r.stderr,
      );
    });
  }

  it('doctor fails its config check naming the variable, and still checks the store (exit 1)', async () => {
    const r = await runCli(['doctor', '--config', config]);
    assert.equal(r.code, 1, r.stderr || r.stdout);
    assert.match(
      r.stdout,
      new RegExp(`^✖ config: .*opencrvs\\.clientSecret: environment variable ${names[0]} is not set`, 'm'),
    );
    assert.match(r.stdout, /^✔ store: .*bridge\.db is writable/m);
    assert.match(r.stdout, /^✔ mappings emr:/m);
    for (const check of ['source emr', 'opencrvs token', 'routing'])
      assert.match(r.stdout, new RegExp(`^- ${check}: not checked: a secret it needs did not load`, 'm'));
  });
});
