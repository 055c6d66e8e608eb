// `opencrvs-bridge doctor` against the running simulators: all green on a good configuration, and one
// clear failing line for each thing an engineer typically gets wrong. The CLI runs as a separate
// process (exit codes, output); the finer cases call runDoctor in-process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Subscription } from '@medplum/fhirtypes';
import Database from 'better-sqlite3';
import { formatReport, runDoctor } from '../../src/doctor/index.js';
import { checkFhirSource } from '../../src/doctor/source-checks.js';
import { migrate } from '../../src/ledger/db.js';
import { openLedger } from '../../src/ledger/index.js';
import { MIGRATIONS } from '../../src/ledger/migrations/index.js';
import { PROCESS_LEASE_META } from '../../src/ledger/process-lease.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  DEATH_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2ScopedUser,
  type Dhis2Simulator,
  ORG_UNITS,
  startDhis2Simulator,
} from '../../src/sandbox/dhis2/index.js';
import { HttpFailure, outcomeOf } from '../../src/sandbox/fhir/http-util.js';
import { type FhirSandbox, startFhirSandbox, startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { subscriptionBundle } from '../../src/sources/fhir/subscriptions.js';
import { CHILD_NODE_FLAGS, childModule } from '../support/child-source.js';
import { closedPort as findClosedPort } from '../support/ports.js';
import { dhis2Error, forbiddenPage, startFaultProxy } from './helpers/fault-proxy.js';
import { sourceSettings } from './helpers/source-settings.js';

const cli = childModule('cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'doctor-cli-'));

let opencrvs: OpenCrvsSimulator;
let fhir: FhirSandbox;
let dhis2: Dhis2Simulator;
let closedPort: number;

/** A DHIS2 user of the whole country with whom the death programme's data is shared, not the Child Programme's. */
const DEATHS_CLERK: Dhis2ScopedUser = {
  username: 'deaths-clerk',
  password: 'Deaths-Clerk-1',
  organisationUnits: [ORG_UNITS.sierraLeone],
  programs: [DEATH_PROGRAMME],
};

function configObject(overrides: { clientSecret?: string; clientId?: string; routing?: unknown; sources?: unknown }) {
  return {
    opencrvs: {
      tokenUrl: opencrvs.tokenUrl,
      eventsUrl: opencrvs.eventsUrl,
      clientId: overrides.clientId ?? opencrvs.clientId,
      clientSecret: overrides.clientSecret ?? opencrvs.clientSecret,
    },
    store: { path: join(dir, 'bridge.db') },
    sources: overrides.sources ?? [{ id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl }],
    routing: overrides.routing ?? {
      defaultOffice: 'LHUYvwY2Aq1',
      facilities: { 'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' } },
    },
  };
}

let fileCount = 0;
function writeConfig(value: unknown): string {
  fileCount += 1;
  const file = join(dir, `bridge-${fileCount}.yaml`);
  writeFileSync(file, JSON.stringify(value, null, 2)); // JSON is YAML
  return file;
}

/** Spawned asynchronously: the simulators answer from this process's event loop. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const entry = `import { main } from ${JSON.stringify(cli)}; process.exitCode = await main(['node', 'opencrvs-bridge', ...JSON.parse(process.env.CLI_ARGS)]);`;
  const env: NodeJS.ProcessEnv = { ...process.env, CLI_ARGS: JSON.stringify(args), LOG_LEVEL: 'silent' };
  delete env.BRIDGE_CONFIG;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', entry], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** doctor's events line for a 1.9 configuration whose server has no 1.9 notify route (a 2.0 server). */
const VERSION_19_EVENTS =
  /^http:\/\/127\.0\.0\.1:\d+\/api\/events answers as an events API, but not at POST http:[^ ]*\/api\/events\/events\/notifications, where OpenCRVS 1\.9 takes notifications \(.*HTTP 404\): is opencrvs\.version \('1\.9'\) the server's\?/;

function failing(report: { checks: Array<{ name: string; status: string; detail: string }> }) {
  return report.checks.filter((c) => c.status === 'fail');
}

before(async () => {
  opencrvs = await startOpenCrvsSimulator({ port: 0 });
  fhir = await startFhirSandbox({ port: 0 });
  dhis2 = await startDhis2Simulator({ port: 0, users: [DEATHS_CLERK] });
  closedPort = await findClosedPort();
});

after(async () => {
  await Promise.all([opencrvs.close(), fhir.close(), dhis2.close()]);
});

describe('opencrvs-bridge doctor (CLI)', () => {
  it('passes every check against the running simulators and exits 0', async () => {
    openLedger(join(dir, 'bridge.db')).close(); // as the first serve leaves it: no ledger is a warning
    const r = await runCli(['doctor', '--config', writeConfig(configObject({}))]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n').filter(Boolean);
    for (const name of [
      'config',
      'store',
      'mappings emr',
      'source emr',
      'opencrvs token',
      'opencrvs scopes',
      'routing',
    ])
      assert.ok(
        lines.some((l) => l.startsWith(`✔ ${name}:`)),
        `no passing line for ${name}:\n${r.stdout}`,
      );
    assert.ok(!lines.some((l) => l.startsWith('✖')), r.stdout);
    // The sandbox echoes its search, _sort included, in its self link: nothing to say about sorting.
    assert.ok(!lines.some((l) => l.startsWith('! source emr:')), r.stdout);
    assert.ok(!r.stdout.includes(opencrvs.clientSecret), 'the client secret is printed');
    // Passed, with the warnings (the example source id, a first sync from the start) counted under it.
    const warned = lines.filter((l) => l.startsWith('! ')).length;
    assert.ok(warned > 0, r.stdout);
    assert.equal(lines.at(-1), `all checks passed, ${warned} warnings (!) to read`);
  });

  it('exits 1 with the failing check named when the client secret is wrong, without printing it', async () => {
    const secret = 'wrong-secret-d0c70r';
    const r = await runCli(['doctor', '--json', '--config', writeConfig(configObject({ clientSecret: secret }))]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, false);
    const token = report.checks.find((c: { name: string }) => c.name === 'opencrvs token');
    assert.equal(token.status, 'fail');
    assert.match(token.detail, /HTTP 401/);
    assert.equal(report.checks.find((c: { name: string }) => c.name === 'routing').status, 'skip');
    // Listed as not run, not left out: the reader sees what was not checked.
    assert.equal(report.checks.find((c: { name: string }) => c.name === 'opencrvs scopes')?.status, 'skip');
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the wrong secret is printed');
  });

  it('still checks the store and the held queue when a secret file is empty (a rotation), and exits 1', async () => {
    // The OpenCRVS secret file emptied mid-rotation, delivery held meanwhile: the held queue is what to see.
    const store = { path: join(dir, 'rotation.db') };
    const ledger = openLedger(store.path);
    ledger.setHold({ reason: 'unauthorized (HTTP 401): bad client', since: 0, kind: 'unauthorized', rowId: 3 });
    ledger.close();
    writeFileSync(join(dir, 'ocrvs-secret'), '');
    const base = configObject({});
    const { clientSecret: _, ...opencrvsWithoutSecret } = base.opencrvs;
    const file = writeConfig({
      ...base,
      store,
      opencrvs: { ...opencrvsWithoutSecret, clientSecretFile: 'ocrvs-secret' },
    });
    const r = await runCli(['doctor', '--config', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^✖ config: .*opencrvs\.clientSecretFile: the file is empty/m);
    assert.match(r.stdout, /^✔ store: .*rotation\.db is writable/m);
    assert.match(r.stdout, /^✖ queue: delivery is held since 1970-01-01T00:00:00.000Z: unauthorized/m);
    assert.match(r.stdout, /^✔ mappings emr:/m);
    // The source's own secrets (none here) loaded: it is checked live; OpenCRVS cannot be without its secret.
    assert.match(r.stdout, /^✔ source emr:/m);
    for (const name of ['opencrvs token', 'opencrvs scopes', 'routing'])
      assert.match(r.stdout, new RegExp(`^- ${name}: not checked: a secret it needs did not load`, 'm'));
    assert.ok(!r.stdout.includes(opencrvs.clientSecret), 'the client secret is printed');
  });

  it("still checks OpenCRVS when only the admin page's token did not load (its variable not exported here)", async () => {
    // examples/bridge.yaml takes it from BRIDGE_ADMIN_TOKEN: a newcomer who has not exported it yet was told
    // that OpenCRVS's checks lacked "a secret it needs", which loaded.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax
    const admin = { token: '${DOCTOR_TEST_UNSET_ADMIN_TOKEN}' };
    const report = await runDoctor({ file: writeConfig({ ...configObject({}), admin }), env: {} });
    assert.equal(report.ok, false);
    assert.deepEqual(
      failing(report).map((c) => `${c.name}: ${c.detail}`),
      [
        `config: ${join(dir, `bridge-${fileCount}.yaml`)}: admin.token: environment variable DOCTOR_TEST_UNSET_ADMIN_TOKEN is not set`,
      ],
      formatReport(report),
    );
    for (const name of ['source emr', 'opencrvs token', 'opencrvs scopes', 'routing'])
      assert.equal(report.checks.find((c) => c.name === name)?.status, 'ok', `${name}\n${formatReport(report)}`);
  });

  it("still checks OpenCRVS and the sources when the admin page's token from the environment is too short", async () => {
    // BRIDGE_ADMIN_TOKEN=x exported to try the example: the admin page's token is refused (serve would stop), and
    // said as the config check's failure; no other check uses it.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax
    const admin = { token: '${DOCTOR_TEST_SHORT_ADMIN_TOKEN}' };
    const file = writeConfig({ ...configObject({}), admin });
    const report = await runDoctor({ file, env: { DOCTOR_TEST_SHORT_ADMIN_TOKEN: 'x' } });
    assert.equal(report.ok, false);
    assert.deepEqual(
      failing(report).map((c) => `${c.name}: ${c.detail}`),
      [
        `config: ${file}: admin.token: must NOT have fewer than 16 characters (it comes from the environment variable DOCTOR_TEST_SHORT_ADMIN_TOKEN)`,
      ],
      formatReport(report),
    );
    for (const name of ['source emr', 'opencrvs token', 'opencrvs scopes', 'routing'])
      assert.equal(report.checks.find((c) => c.name === name)?.status, 'ok', `${name}\n${formatReport(report)}`);
  });

  it("checks OpenCRVS and the sources when a subscription's secret is not here, and passes as sync with --for sync", async () => {
    // A host given only what `sync --once` presents (a CronJob: OpenCRVS's secret and the sources' auth): the
    // admin token and the subscription's secret, which only serve's listeners check, are not set here.
    const file = writeConfig({
      ...configObject({
        sources: [
          {
            id: 'emr',
            kind: 'fhir',
            baseUrl: fhir.baseUrl,
            // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax
            subscription: { secret: '${DOCTOR_TEST_UNSET_SUBSCRIPTION_SECRET}' },
          },
        ],
      }),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax
      admin: { token: '${DOCTOR_TEST_UNSET_ADMIN_TOKEN}' },
      store: { path: join(dir, 'sync-host.db') },
    });
    // As serve: its config check fails (serve would stop), and the checks that use no such secret all run.
    const asServe = await runDoctor({ file, env: {} });
    assert.deepEqual(
      failing(asServe).map((c) => c.name),
      ['config'],
      formatReport(asServe),
    );
    for (const name of ['source emr', 'opencrvs token', 'opencrvs scopes', 'routing'])
      assert.equal(asServe.checks.find((c) => c.name === name)?.status, 'ok', `${name}\n${formatReport(asServe)}`);
    // serve's receiver is what the Subscriptions on the server call: checked (none there yet).
    assert.match(
      asServe.checks.find((c) => c.name === 'source emr' && c.detail.includes('/fhir-subscription/emr'))?.detail ?? '',
      /no Subscription on the server notifies \/fhir-subscription\/emr/,
      formatReport(asServe),
    );
    // As sync: nothing to fail or warn about in those secrets, exit 0.
    const r = await runCli(['doctor', '--for', 'sync', '--config', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^✔ config: .* read as sync reads it \(admin\.token and the subscriptions' secrets not read\)$/m,
    );
    assert.doesNotMatch(r.stdout, /DOCTOR_TEST_UNSET|admin\.token:|subscription\.secret/);
    // No notification reaches sync: the subscription's checks are said as not run, and why, not warned of.
    assert.match(
      r.stdout,
      /^- source emr subscription: not checked: sync opens no receiver, so no notification reaches it; .*\(doctor without --for sync\)$/m,
    );
    assert.doesNotMatch(r.stdout, /fhir-subscription|Subscription on the server|history-instance for/);
    assert.match(r.stdout, /^✔ opencrvs token: /m);
    assert.match(r.stdout, /^✔ routing: /m);
  });

  it("exits 1 naming sources[i].auth when DHIS2 shows the programme's metadata to its user but not its data", async () => {
    // DHIS2 shares a programme's metadata and its data apart: the user reads /api/programs/<uid>, and 2.42+
    // answers the poller's list 403 "User has no access to program". Doctor passed; every poll then failed.
    const clerk = {
      id: 'hmis',
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth: { type: 'basic', username: DEATHS_CLERK.username, password: DEATHS_CLERK.password },
      dhis2: { program: 'IpHINAT79UW' },
      mappings: ['birth.dhis2'],
    };
    const r = await runCli(['doctor', '--json', '--config', writeConfig(configObject({ sources: [clerk] }))]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(
      failing(report).map((c) => c.name),
      ['source hmis poll'],
      'the refused list is the one failure',
    );
    assert.match(
      failing(report)[0]?.detail ?? '',
      /^sources\[0\]\.auth: DHIS2 does not share the data of programme IpHINAT79UW with this user \(HTTP 403 "User has no access to program"\)/,
    );
    assert.match(failing(report)[0]?.detail ?? '', /programme's sharing/);
    // Its metadata is readable, and said so: the two lines together tell metadata from data sharing.
    const metadata = report.checks.find((c: { name: string }) => c.name === 'source hmis metadata');
    assert.equal(metadata?.status, 'ok');
    assert.ok(!r.stdout.includes(DEATHS_CLERK.password), 'the password is printed');

    // The programme it is shared: the same list answers.
    const deaths = { ...clerk, dhis2: { program: DEATH_PROGRAMME }, mappings: ['death.dhis2'] };
    const shared = await runCli(['doctor', '--json', '--config', writeConfig(configObject({ sources: [deaths] }))]);
    const sharedReport = JSON.parse(shared.stdout);
    assert.deepEqual(failing(sharedReport), [], shared.stdout);
    const poll = sharedReport.checks.find((c: { name: string }) => c.name === 'source hmis poll');
    assert.equal(poll?.status, 'ok', shared.stdout);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
  });

  it('exits 1 with the key path of an invalid configuration', async () => {
    const bad = { ...configObject({}), http: { port: 'eighty' } };
    const r = await runCli(['doctor', '--config', writeConfig(bad)]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^✖ config: .*http\.port: must be integer/m);
  });
});

describe('doctor checks', () => {
  it('names an unknown office externalId with its config key path', async () => {
    const routing = { defaultOffice: 'NoSuchOffice1' };
    const report = await runDoctor({ file: writeConfig(configObject({ routing })), env: {} });
    assert.equal(report.ok, false);
    assert.deepEqual(
      failing(report).map((c) => `${c.name}: ${c.detail}`),
      ['routing: routing.defaultOffice: location NoSuchOffice1 is not a location of this OpenCRVS deployment'],
    );
  });

  it('names opencrvs.eventsUrl, once, when the location lookups themselves fail (a wrong events URL)', async () => {
    const config = configObject({});
    // With a query, which may carry a key: the line shows the URL as every other doctor line does, without it.
    config.opencrvs.eventsUrl = `${opencrvs.eventsUrl.replace(/\/events$/, '/event')}?key=not-for-output`;
    const report = await runDoctor({ file: writeConfig(config), env: {} });
    const routing = failing(report).filter((c) => c.name === 'routing');
    assert.equal(routing.length, 1, JSON.stringify(routing));
    assert.match(
      routing[0]?.detail ?? '',
      /location lookups fail \(.*404.*\): is opencrvs\.eventsUrl \(http:\/\/127\.0\.0\.1:\d+\/api\/event\) the events API/,
    );
    assert.doesNotMatch(formatReport(report), /not-for-output/);
  });

  it('on OpenCRVS 1.9, checks that opencrvs.eventsUrl is the events API (its routing check asks the gateway)', async () => {
    const sim = await startOpenCrvsSimulator({ port: 0, version: '1.9' });
    try {
      const config = (eventsUrl: string) => {
        const base = configObject({});
        return {
          ...base,
          opencrvs: {
            ...base.opencrvs,
            version: '1.9',
            tokenUrl: sim.tokenUrl,
            eventsUrl,
            clientId: sim.clientId,
            clientSecret: sim.clientSecret,
          },
        };
      };
      const good = await runDoctor({ file: writeConfig(config(sim.eventsUrl)), env: {} });
      assert.equal(good.checks.find((c) => c.name === 'opencrvs events')?.status, 'ok', formatReport(good));
      assert.deepEqual(failing(good), [], formatReport(good));

      // The review's configuration: routing passes (1.9 lists locations on the gateway), the events URL does not.
      const wrong = await runDoctor({ file: writeConfig(config(`${sim.eventsUrl}/v1`)), env: {} });
      assert.equal(wrong.ok, false, formatReport(wrong));
      assert.deepEqual(
        failing(wrong).map((c) => c.name),
        ['opencrvs events'],
        formatReport(wrong),
      );
      assert.match(
        failing(wrong)[0]?.detail ?? '',
        /^opencrvs\.eventsUrl \(http:\/\/127\.0\.0\.1:\d+\/api\/events\/v1\) is not the events API \(Not found, HTTP 404\)/,
      );
      assert.equal(wrong.checks.find((c) => c.name === 'routing')?.status, 'ok', formatReport(wrong));
    } finally {
      await sim.close();
    }
  });

  it('refuses a health facility configured as an office (wrong location type)', async () => {
    const routing = { facilities: { 'Location/a': { office: 't0qT1Vh8qi3', facility: 'R2i8nqg83Y0' } } };
    const report = await runDoctor({ file: writeConfig(configObject({ routing })), env: {} });
    const lines = failing(report).map((c) => c.detail);
    assert.deepEqual(lines, [
      "routing.facilities['Location/a'].office: location t0qT1Vh8qi3 is a HEALTH_FACILITY, not a CRVS_OFFICE",
    ]);
  });

  it('reports an unreachable FHIR source and still runs the OpenCRVS checks', async () => {
    const sources = [{ id: 'gone', kind: 'fhir', baseUrl: `http://127.0.0.1:${closedPort}/fhir` }];
    const report = await runDoctor({ file: writeConfig(configObject({ sources })), env: {} });
    const failed = failing(report);
    assert.equal(failed.length, 1, formatReport(report));
    assert.equal(failed[0]?.name, 'source gone');
    assert.match(
      failed[0]?.detail ?? '',
      /cannot read the CapabilityStatement \(capabilities failed: network error \(ECONNREFUSED\)\)/,
    );
    assert.equal(report.checks.find((c) => c.name === 'routing')?.status, 'ok');
  });

  it('says to check the base path when <baseUrl>/metadata is a 404 (the server is there, its FHIR API elsewhere)', async () => {
    const sources = [{ id: 'misplaced', kind: 'fhir', baseUrl: `${new URL(fhir.baseUrl).origin}/openmrs` }];
    const report = await runDoctor({ file: writeConfig(configObject({ sources })), env: {} });
    const [failed] = failing(report);
    assert.equal(failed?.name, 'source misplaced', formatReport(report));
    assert.match(failed?.detail ?? '', /cannot read the CapabilityStatement \(.*404.*\); check the base path/);
    assert.match(failed?.detail ?? '', /HAPI: …\/fhir, OpenMRS: …\/openmrs\/ws\/fhir2\/R4/);
  });

  it('says to check the base path when <baseUrl>/metadata answers 200 but no CapabilityStatement (an app fallback)', async () => {
    // A web app at the wrong base path answers every unknown path with its index page, or some JSON.
    const answers: Record<string, { type: string; body: string }> = {
      '/app/metadata': { type: 'text/html; charset=utf-8', body: '<!doctype html><html><body>App</body></html>' },
      '/api/metadata': { type: 'application/json', body: '{"status":"ok"}' },
    };
    const server = createServer((req, res) => {
      const answer = answers[new URL(req.url ?? '/', 'http://x').pathname];
      res.writeHead(200, { 'content-type': answer?.type ?? 'text/html' });
      res.end(answer?.body ?? '<html></html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const path of ['/app', '/api']) {
        const sources = [{ id: 'misplaced', kind: 'fhir', baseUrl: `${origin}${path}` }];
        const report = await runDoctor({ file: writeConfig(configObject({ sources })), env: {} });
        const [failed] = failing(report);
        assert.equal(failed?.name, 'source misplaced', formatReport(report));
        assert.match(
          failed?.detail ?? '',
          /; check the base path of sources\[\]\.baseUrl: <baseUrl>\/metadata must answer/,
          path,
        );
        assert.match(failed?.detail ?? '', /HAPI: …\/fhir, OpenMRS: …\/openmrs\/ws\/fhir2\/R4/, path);
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports missing scopes for an event type the mappings produce', async () => {
    await opencrvs.control.addClient({
      clientId: 'births-only',
      clientSecret: 'births-only-secret',
      scopes: ['type=record.create&event=birth', 'type=record.notify&event=birth'],
    });
    const config = configObject({ clientId: 'births-only', clientSecret: 'births-only-secret' });
    const report = await runDoctor({ file: writeConfig(config), env: {} });
    const scopes = report.checks.find((c) => c.name === 'opencrvs scopes');
    assert.equal(scopes?.status, 'fail');
    assert.equal(
      scopes?.detail,
      'the token lacks record.create for death, record.notify for death (OpenCRVS v2.0 scope format)',
    );
  });

  it("names opencrvs.version when the server is the other version (its scopes' format, its location 404)", async () => {
    // 1.9 configured against this 2.0 server: its scopes once read as granted, and the routing line blamed eventsUrl.
    const as19 = configObject({});
    const report19 = await runDoctor({
      file: writeConfig({ ...as19, opencrvs: { ...as19.opencrvs, version: '1.9' } }),
      env: {},
    });
    const failed19 = failing(report19);
    assert.deepEqual(
      failed19.map((c) => c.name),
      ['opencrvs scopes', 'opencrvs events', 'routing'],
      formatReport(report19),
    );
    assert.equal(
      failed19[0]?.detail,
      "the token's scopes are in OpenCRVS v2.0 format: set opencrvs.version: '2.0' (it is '1.9')",
    );
    assert.match(failed19[1]?.detail ?? '', VERSION_19_EVENTS);
    assert.match(
      failed19[2]?.detail ?? '',
      /^location lookups fail \(listLocations: HTTP 404: [^)]*\): is opencrvs\.eventsUrl \(http:[^)]*\/api\/events\) the events API, .*, and opencrvs\.version \('1\.9'\) the server's\?$/,
    );

    // 2.0 configured against a 1.9 server: the grants were named as missing "in v2.0 format".
    const v19 = await startOpenCrvsSimulator({ port: 0, version: '1.9' });
    try {
      const config = {
        ...configObject({}),
        opencrvs: {
          tokenUrl: v19.tokenUrl,
          eventsUrl: v19.eventsUrl,
          clientId: v19.clientId,
          clientSecret: v19.clientSecret,
        },
      };
      const report = await runDoctor({ file: writeConfig(config), env: {} });
      const failed = failing(report);
      assert.deepEqual(
        failed.map((c) => c.name),
        ['opencrvs scopes', 'routing'],
        formatReport(report),
      );
      assert.equal(
        failed[0]?.detail,
        "the token's scopes are in OpenCRVS v1.9 format: set opencrvs.version: '1.9' (it is '2.0')",
      );
      assert.match(
        failed[1]?.detail ?? '',
        /^location lookups fail \(listLocations: HTTP 404: [^)]*\): is opencrvs\.eventsUrl \(http:[^)]*\/api\/events\) the events API, .*, and opencrvs\.version \('2\.0'\) the server's\?$/,
      );
    } finally {
      await v19.close();
    }
  });

  it("fails the events probe of a 1.9 configuration against a 2.0 server even when the token's scopes cannot tell", async () => {
    // Grants in both formats (scopeFormat names no version): the scopes line passes on 1.9's, and the events
    // API answers the create as 1.9's does; only 1.9's notify route, which 2.0 has not, shows the version.
    await opencrvs.control.addClient({
      clientId: 'both-formats',
      clientSecret: 'both-formats-secret',
      scopes: [
        'record.create[event=birth|death]',
        'record.notify[event=birth|death]',
        'type=record.create&event=birth,death',
        'type=record.notify&event=birth,death',
      ],
    });
    const base = configObject({ clientId: 'both-formats', clientSecret: 'both-formats-secret' });
    const report = await runDoctor({
      file: writeConfig({ ...base, opencrvs: { ...base.opencrvs, version: '1.9' } }),
      env: {},
    });
    assert.equal(report.checks.find((c) => c.name === 'opencrvs scopes')?.status, 'ok', formatReport(report));
    const events = report.checks.find((c) => c.name === 'opencrvs events');
    assert.equal(events?.status, 'fail', formatReport(report));
    assert.match(events?.detail ?? '', VERSION_19_EVENTS);
  });

  it("checks that the server's Subscriptions notify the receiver, for every watched type", async () => {
    const sources = [{ id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl, subscription: { secret: 'sub-secret-000001' } }];
    const file = writeConfig(configObject({ sources }));
    const note = async () => {
      const report = await runDoctor({ file, env: {} });
      assert.equal(report.ok, true, `warnings only: ${formatReport(report)}`);
      assert.equal(report.checks.filter((c) => c.detail.includes('without secret')).length, 0);
      const found = report.checks.find((c) => c.name === 'source emr' && c.detail.includes('/fhir-subscription/emr'));
      assert.ok(found, formatReport(report));
      return found;
    };
    const none = await note();
    assert.equal(none.status, 'warn');
    assert.match(none.detail, /no Subscription on the server notifies \/fhir-subscription\/emr: create them/);

    // Only Patient is subscribed: the other watched types are named.
    const secrets = { secret: 'sub-secret-000001' };
    const post = async (types: string[]) => {
      const bundle = subscriptionBundle({
        sourceId: 'emr',
        bridgeUrl: 'https://bridge.example',
        types,
        style: 'hapi-payload',
        secrets,
      });
      const res = await fetch(fhir.baseUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(bundle),
      });
      assert.equal(res.status, 200, await res.text());
    };
    await post(['Patient']);
    const partial = await note();
    assert.equal(partial.status, 'warn');
    assert.match(
      partial.detail,
      /^1 Subscription on the server notifies \/fhir-subscription\/emr; none for Composition, Encounter/,
    );

    // The types a change to which can name a birth or death: not the v1 Task, found only by its
    // Composition (a Subscription to it would bring notifications that map nothing).
    const watched = ['Composition', 'Encounter', 'Observation', 'Patient', 'RelatedPerson'];
    await post(watched);
    const all = await note();
    assert.equal(all.status, 'ok', all.detail);
    assert.equal(
      all.detail,
      `5 Subscriptions on the server notify /fhir-subscription/emr, covering ${watched.join(', ')}`,
    );
    // The probes are of the same types as the poller's searches.
    const probes = (await runDoctor({ file, env: {} })).checks.find((c) => c.detail.includes('read work for'));
    assert.match(probes?.detail ?? '', new RegExp(`read work for ${watched.join(', ')}$`));

    // A Subscription the server gave up on is named.
    const listed = (await (
      await fetch(`${fhir.baseUrl}/Subscription?criteria=Patient%3F`)
    ).json()) as Bundle<Subscription>;
    const patientSub = listed.entry?.[0]?.resource;
    assert.ok(patientSub?.id);
    const put = await fetch(`${fhir.baseUrl}/Subscription/${patientSub.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ ...patientSub, status: 'error' }),
    });
    assert.equal(put.status, 200, await put.text());
    const failing = await note();
    assert.equal(failing.status, 'warn');
    assert.match(failing.detail, new RegExp(`Subscription/${patientSub.id} \\(Patient\\?\\) is error`));

    const open = [{ id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl, subscription: {} }];
    const openReport = await runDoctor({ file: writeConfig(configObject({ sources: open })), env: {} });
    const warning = openReport.checks.find((c) => c.name === 'source emr' && c.detail.includes('without secret'));
    assert.equal(warning?.status, 'warn', formatReport(openReport));
    assert.equal(openReport.ok, true, 'a warning, not a failure');

    const signed = [
      { id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl, subscription: { hmacSecret: 'sub-hmac-signing-key-0001' } },
    ];
    const signedReport = await runDoctor({ file: writeConfig(configObject({ sources: signed })), env: {} });
    const bodyOnly = signedReport.checks.find(
      (c) => c.name === 'source emr' && c.detail.includes('hmacSecret but no secret'),
    );
    assert.equal(bodyOnly?.status, 'warn', formatReport(signedReport));
  });

  it('passes an OpenMRS-like server, naming the mapping contexts it does not serve, and says to poll it', async () => {
    // Its REST API (sources[].openmrs) refuses what `refuse` names, as OpenMRS refuses a user a privilege.
    let refuse: ((path: string) => HttpFailure | undefined) | undefined;
    const restPaths: string[] = [];
    const openmrs = await startFhirSandboxWith(
      { port: 0, emulate: 'openmrs' },
      {
        beforeRest: (path, query) => {
          restPaths.push(`${path}?${query}`);
          const refused = refuse?.(path);
          if (refused) throw refused;
        },
      },
    );
    try {
      const restUrl = openmrs.openmrsRestUrl ?? '';
      const sources = [
        {
          id: 'emr',
          kind: 'fhir',
          baseUrl: openmrs.baseUrl,
          subscription: { secret: 'sub-secret-000001' },
          openmrs: { restUrl },
        },
      ];
      const report = await runDoctor({ file: writeConfig(configObject({ sources })), env: {} });
      assert.deepEqual(failing(report), [], formatReport(report));
      const rest = report.checks.find((c) => c.name === 'source emr openmrs');
      assert.equal(rest?.status, 'ok', formatReport(report));
      assert.match(rest.detail, /holds "Get People" and "Get Relationships"/);
      // Of a person no one has: the listing and a read by uuid, nothing of anyone's.
      assert.equal(restPaths.length, 2, restPaths.join('\n'));
      const person = new URLSearchParams(restPaths[0]?.split('?')[1]).get('person') ?? '';
      assert.match(person, /^[0-9a-f-]{36}$/);
      assert.equal(restPaths[1]?.split('?')[0], `relationship/${person}`);

      // Each privilege the user lacks, and a wrong restUrl, fails the source with what to change.
      const settings = { ...sourceSettings(openmrs.baseUrl), openmrs: { restUrl } };
      const restLine = async (restSettings = settings) =>
        (await checkFhirSource(restSettings, [])).find((c) => c.name === 'source emr openmrs');
      const forbidden = () => new HttpFailure(403, outcomeOf('forbidden', 'Privileges required'));
      refuse = (path) => (path === 'relationship' ? forbidden() : undefined);
      assert.match((await restLine())?.detail ?? '', /HTTP 403: the OpenMRS user lacks the privilege "Get People"/);
      refuse = (path) => (path.startsWith('relationship/') ? forbidden() : undefined);
      const noRelationships = await restLine();
      assert.equal(noRelationships?.status, 'fail');
      assert.match(noRelationships.detail, /HTTP 403: the OpenMRS user lacks the privilege "Get Relationships"/);
      refuse = (path) =>
        path === 'relationship' ? new HttpFailure(401, outcomeOf('login', 'User is not logged in')) : undefined;
      assert.match(
        (await restLine())?.detail ?? '',
        /HTTP 401: the REST API refused the credentials of sources\[\]\.auth/,
      );
      refuse = undefined;
      const wrong = await restLine({
        ...settings,
        openmrs: { restUrl: `${new URL(restUrl).origin}/openmrs/ws/rest/v1` },
      });
      assert.equal(wrong?.status, 'fail');
      assert.match(
        wrong.detail,
        /HTTP 404: no OpenMRS REST relationship resource there .*sources\[\]\.openmrs\.restUrl wrong/,
      );
      const lines = report.checks.filter((c) => c.name === 'source emr');
      assert.ok(
        lines.some(
          (c) => c.status === 'ok' && /read work for Encounter, Observation, Patient, RelatedPerson$/.test(c.detail),
        ),
        formatReport(report),
      );
      const off = lines.find((c) => c.detail.includes('does not serve'));
      assert.equal(off?.status, 'warn', formatReport(report));
      assert.match(
        off.detail,
        /^mapping contexts the server does not serve, taken as empty: .*death\.fhir listedIn \(Composition\); birth\.fhir documents \(Composition\)/,
      );
      assert.match(off.detail, /birth\.fhir recordedMotherObservations \(Observation: focus\)/);
      // Its relations are listed instead (relations-listing.ts): not said to be left out.
      const undeclared = off.detail.split('. ').find((sentence) => sentence.startsWith('Search parameters'));
      assert.match(undeclared ?? '', /birth\.fhir recordedMotherObservations/);
      assert.doesNotMatch(undeclared ?? '', /linkedPersons/);
      assert.match(
        off.detail,
        /RelatedPerson\?patient= is not declared, for [^:]*birth\.fhir linkedPersons[^:]*: .* born up to 366 days ago are read from the RelatedPerson listing by _lastUpdated instead/,
      );
      assert.doesNotMatch(off.detail, /mother is left out/, 'the sandbox declares _lastUpdated for RelatedPerson');
      const subscription = lines.find((c) => c.detail.includes('lists no Subscription'));
      assert.match(subscription?.detail ?? formatReport(report), /poll it/);
    } finally {
      await openmrs.close();
    }
  });

  it('warns, as serve does at start, of a subscription an EMR on another machine cannot deliver to a loopback http.host', async () => {
    // The EMR is not reached (a name that resolves nowhere): the warning needs the configuration alone.
    const sources = [
      {
        id: 'emr',
        kind: 'fhir',
        baseUrl: 'http://emr.invalid/fhir',
        timeoutMs: 1000,
        subscription: { secret: 'sub-secret-000001' },
      },
    ];
    const unreachable = (report: { checks: Array<{ name: string; status: string; detail: string }> }) =>
      report.checks.filter((c) => c.detail.startsWith('subscription configured but http.host is'));
    const onLoopback = await runDoctor({
      file: writeConfig({ ...configObject({ sources }), http: { host: '127.0.0.1', port: 8081 } }),
      env: {},
    });
    const [line, ...more] = unreachable(onLoopback);
    assert.deepEqual([line?.name, line?.status, more.length], ['source emr', 'warn', 0], formatReport(onLoopback));
    assert.match(line?.detail ?? '', /http\.host is 127\.0\.0\.1: .* cannot reach \/fhir-subscription\/emr/);

    const everywhere = await runDoctor({
      file: writeConfig({ ...configObject({ sources }), http: { host: '0.0.0.0', port: 8081 } }),
      env: {},
    });
    assert.deepEqual(unreachable(everywhere), [], formatReport(everywhere));
    // An EMR on this machine (the sandboxes) reaches a loopback listener.
    const local = [{ id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl, subscription: { secret: 'sub-secret-000001' } }];
    const beside = await runDoctor({
      file: writeConfig({ ...configObject({ sources: local }), http: { host: '127.0.0.1', port: 8081 } }),
      env: {},
    });
    assert.deepEqual(unreachable(beside), [], formatReport(beside));
  });

  it('checks a DHIS2 source with its configured auth', async () => {
    const good = {
      id: 'hmis',
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
    };
    const bad = {
      id: 'hmis-bad',
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth: { type: 'basic', username: 'admin', password: 'nope' },
    };
    const report = await runDoctor({ file: writeConfig(configObject({ sources: [good, bad] })), env: {} });
    const line = (name: string) => report.checks.find((c) => c.name === name);
    assert.equal(line('source hmis')?.status, 'ok', formatReport(report));
    assert.match(line('source hmis')?.detail ?? '', /DHIS2 \S+ reachable/);
    assert.equal(line('source hmis-bad')?.status, 'fail');
    assert.match(line('source hmis-bad')?.detail ?? '', /HTTP 401, the configured basic auth was refused/);
    assert.ok(!formatReport(report).includes(DEFAULT_SANDBOX_AUTH.pat));
    assert.equal(line('source hmis metadata')?.status, 'ok', formatReport(report));
    assert.match(line('source hmis metadata')?.detail ?? '', /programme IpHINAT79UW \(Child Programme\) found/);
  });

  it("tells a proxy's or firewall's 403 in front of DHIS2 from DHIS2 refusing the credentials", async () => {
    const proxy = await startFaultProxy();
    try {
      proxy.target = dhis2.baseUrl;
      const info = (req: IncomingMessage) => req.url?.startsWith('/api/system/info') === true;
      const source = {
        id: 'hmis',
        kind: 'dhis2',
        baseUrl: proxy.url,
        auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
      };
      const file = writeConfig(configObject({ sources: [source] }));
      const check = async () =>
        (await runDoctor({ file, env: {} })).checks.find((c) => c.name === 'source hmis') ?? assert.fail('no line');

      proxy.rules.push((req) => (info(req) ? forbiddenPage() : undefined));
      const walled = await check();
      assert.equal(walled.status, 'fail');
      assert.match(walled.detail, /HTTP 403 from something in front of DHIS2 \(a proxy or firewall/);
      assert.doesNotMatch(walled.detail, /auth was refused/, 'the credentials are not blamed');

      // DHIS2's own 403 (its WebMessage) is still a refused credential.
      proxy.rules.length = 0;
      proxy.rules.push((req) => (info(req) ? dhis2Error(403, 'Access denied') : undefined));
      const refused = await check();
      assert.equal(refused.status, 'fail');
      assert.match(refused.detail, /HTTP 403, the configured pat auth was refused/);
    } finally {
      await proxy.close();
    }
  });

  it("says what refused the poller's list of tracked entities when DHIS2 answers its metadata", async () => {
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    // An org unit DHIS2 does not have: 400 "Organisation unit does not exist" to every poll.
    const district = {
      id: 'district',
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth,
      dhis2: { orgUnits: ['AbCdEfGhIj1'] },
    };
    const unknownUnit = await runDoctor({ file: writeConfig(configObject({ sources: [district] })), env: {} });
    const unitLine = unknownUnit.checks.find((c) => c.name === 'source district poll');
    assert.equal(unitLine?.status, 'fail', formatReport(unknownUnit));
    assert.equal(
      unitLine?.detail,
      `the poller's list of tracked entities (sources[0].dhis2: program, orgUnits, fields) failed: list tracked entities failed: HTTP 400: DHIS2 said "Organisation unit does not exist: AbCdEfGhIj1" (check sources[].dhis2 of source district: program, orgUnits)`,
    );
    assert.equal(unknownUnit.checks.find((c) => c.name === 'source district metadata')?.status, 'ok');

    // A firewall in front of DHIS2 that lets system/info and metadata through but not the tracker API.
    const proxy = await startFaultProxy();
    try {
      proxy.target = dhis2.baseUrl;
      proxy.rules.push((req) => (req.url?.startsWith('/api/tracker/') ? forbiddenPage() : undefined));
      const walled = { id: 'walled', kind: 'dhis2', baseUrl: proxy.url, auth };
      const report = await runDoctor({ file: writeConfig(configObject({ sources: [walled] })), env: {} });
      const line = report.checks.find((c) => c.name === 'source walled poll');
      assert.equal(line?.status, 'fail', formatReport(report));
      assert.match(
        line?.detail ?? '',
        /HTTP 403 \(not a DHIS2 answer: something in front of DHIS2 .*a proxy or firewall/,
      );
      assert.doesNotMatch(line?.detail ?? '', /sources\[0\]\.auth|credentials/, 'the credentials are not blamed');
    } finally {
      await proxy.close();
    }
  });

  it('names the DHIS2 setting whose uid DHIS2 does not know, and accepts a baseUrl ending in /api', async () => {
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    const typo = {
      id: 'typo',
      kind: 'dhis2',
      baseUrl: `${dhis2.baseUrl}/api`,
      auth,
      dhis2: { program: 'IpHINAT79UX' },
    };
    const stage = {
      id: 'stage',
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth,
      writeBack: { dataElement: 'uf3svrmp8Oj', programStage: 'SbxDthStage' },
    };
    const element = {
      id: 'element',
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth,
      writeBack: { dataElement: 'uf3svrmp8Xx' },
    };
    const report = await runDoctor({ file: writeConfig(configObject({ sources: [typo, stage, element] })), env: {} });
    const line = (name: string) => report.checks.find((c) => c.name === name);
    assert.equal(line('source typo')?.status, 'ok', formatReport(report));
    assert.equal(line('source typo metadata')?.status, 'fail');
    assert.match(
      line('source typo metadata')?.detail ?? '',
      /^sources\[0\]\.dhis2\.program IpHINAT79UX: no such programme/,
    );
    assert.match(
      line('source stage metadata')?.detail ?? '',
      /^sources\[1\]\.writeBack\.programStage SbxDthStage is not a stage of programme IpHINAT79UW/,
    );
    assert.match(
      line('source element metadata')?.detail ?? '',
      /^sources\[2\]\.writeBack\.dataElement uf3svrmp8Xx: no such data element/,
    );
    assert.equal(report.ok, false);
  });

  it("fails a write-back data element that is not one of writeBack.programStage's (or of any stage without one)", async () => {
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    const source = (id: string, writeBack: Record<string, unknown>) => ({
      id,
      kind: 'dhis2',
      baseUrl: dhis2.baseUrl,
      auth,
      writeBack,
    });
    const report = await runDoctor({
      file: writeConfig(
        configObject({
          sources: [
            // The Child Programme's tracking id, on the Birth stage: as the demo has it.
            source('right', { dataElement: 'uf3svrmp8Oj', programStage: 'A03MvHHogjR' }),
            // The Baby Postnatal stage has no such data element.
            source('postnatal', { dataElement: 'uf3svrmp8Oj', programStage: 'ZzYYXq4fJie' }),
            // The death programme's tracking id: a data element DHIS2 has, of no Child Programme stage.
            source('nostage', { dataElement: 'SbxDeTrkId1' }),
          ],
        }),
      ),
      env: {},
    });
    const line = (name: string) => report.checks.find((c) => c.name === name);
    assert.equal(line('source right metadata')?.status, 'ok', formatReport(report));
    assert.equal(line('source postnatal metadata')?.status, 'fail');
    assert.equal(
      line('source postnatal metadata')?.detail,
      'sources[1].writeBack.dataElement uf3svrmp8Oj is not a data element of sources[1].writeBack.programStage ' +
        'ZzYYXq4fJie: DHIS2 would refuse every write of the tracking id there (E1305)',
    );
    assert.equal(line('source nostage metadata')?.status, 'fail');
    assert.match(
      line('source nostage metadata')?.detail ?? '',
      /^sources\[2\]\.writeBack\.dataElement SbxDeTrkId1 is a data element of no stage of programme IpHINAT79UW: .*set sources\[2\]\.writeBack\.programStage/,
    );
    assert.equal(report.ok, false);
  });

  it("warns about a DHIS2 source whose mappings cannot match its programme, fails one its programme's stages cannot", async () => {
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    const line = (report: Awaited<ReturnType<typeof runDoctor>>, name: string) =>
      report.checks.find((c) => c.name === name);
    // The review's case: the death programme polled with the birth mapping. Doctor said "all checks passed".
    const deaths = { id: 'hmis', kind: 'dhis2', baseUrl: dhis2.baseUrl, auth, dhis2: { program: 'SbxDthProg1' } };
    const crossed = await runDoctor({
      file: writeConfig(configObject({ sources: [{ ...deaths, mappings: ['birth.dhis2'] }] })),
      env: {},
    });
    // A warning (the reading of a trigger cannot follow every FHIRPath form): before, nothing at all.
    const crossedWarning = crossed.checks.find((c) => c.name === 'mappings hmis' && c.status === 'warn');
    assert.match(
      crossedWarning?.detail ?? '',
      /^no mapping of source "hmis" seems able to match sources\[0\]\.dhis2\.program SbxDthProg1: sources\[0\]\.mappings\[0\] \(birth\.dhis2\) tests codes\.program \[IpHINAT79UW\]/,
      formatReport(crossed),
    );

    // Both shipped mappings on the Child Programme: the death one is a warning, not a failure.
    const both = await runDoctor({
      file: writeConfig(
        configObject({
          sources: [{ ...deaths, dhis2: { program: 'IpHINAT79UW' }, mappings: ['birth.dhis2', 'death.dhis2'] }],
        }),
      ),
      env: {},
    });
    const warned = both.checks.filter((c) => c.name === 'mappings hmis' && c.status === 'warn');
    assert.equal(warned.length, 1, formatReport(both));
    assert.match(
      warned[0]?.detail ?? '',
      /^sources\[0\]\.mappings\[1\] \(death\.dhis2\) tests codes\.program \[SbxDthProg1\], not sources\[0\]\.dhis2\.program IpHINAT79UW/,
    );

    // No mappings given: the shipped one of the programme polled, whose stage DHIS2 has.
    const defaults = await runDoctor({ file: writeConfig(configObject({ sources: [deaths] })), env: {} });
    assert.match(line(defaults, 'mappings hmis')?.detail ?? '', /^death\.dhis2 valid .*\(events: death\)/);
    assert.equal(line(defaults, 'source hmis metadata')?.status, 'ok', formatReport(defaults));
    assert.match(line(defaults, 'source hmis metadata')?.detail ?? '', /with the stages of death\.dhis2/);

    // A site's copy whose birth stage is another programme's: the right programme, and still never a birth.
    const shipped = readFileSync(new URL('../../mappings/birth.dhis2.yaml', import.meta.url), 'utf8');
    const copy = join(dir, 'birth.wrong-stage.yaml');
    writeFileSync(
      copy,
      shipped
        .replace(/^id: birth\.dhis2$/m, 'id: birth.site')
        .replace('birthStage: [A03MvHHogjR]', 'birthStage: [SbxDthStage]'),
    );
    const births = { ...deaths, dhis2: { program: 'IpHINAT79UW' }, mappings: [copy] };
    const staged = await runDoctor({ file: writeConfig(configObject({ sources: [births] })), env: {} });
    assert.equal(staged.ok, false, formatReport(staged));
    assert.equal(line(staged, 'source hmis metadata')?.status, 'fail');
    assert.match(
      line(staged, 'source hmis metadata')?.detail ?? '',
      /mapping birth\.site \(sources\[0\]\.mappings\) codes\.birthStage \[SbxDthStage\]: no stage of programme IpHINAT79UW \(its stages: A03MvHHogjR Birth, \S+ Baby Postnatal\), so it never notifies a birth/,
    );
  });

  it("passes stage sets as coded() reads them, judging only the subject's own events", async () => {
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    const shipped = readFileSync(new URL('../../mappings/birth.dhis2.yaml', import.meta.url), 'utf8');
    const doctorOn = async (name: string, text: string) => {
      const copy = join(dir, `${name}.yaml`);
      writeFileSync(copy, text.replace(/^id: birth\.dhis2$/m, `id: ${name}`));
      const source = { id: 'hmis', kind: 'dhis2', baseUrl: dhis2.baseUrl, auth, mappings: [copy] };
      const report = await runDoctor({ file: writeConfig(configObject({ sources: [source] })), env: {} });
      return report.checks.find((c) => c.name === 'source hmis metadata');
    };
    // The birth stage written `system|uid`: coded() matches the event's plain stage uid by it.
    const system = await doctorOn(
      'birth.system-stage',
      shipped.replace('birthStage: [A03MvHHogjR]', "birthStage: ['dhis2|A03MvHHogjR']"),
    );
    assert.equal(system?.status, 'ok', system?.detail);
    assert.match(system?.detail ?? '', /with the stages of birth\.system-stage/);
    // The only stage test is on the mother's events, which are in her own programme, not the one polled.
    const mother = await doctorOn(
      'birth.mother-stage',
      shipped
        .replace("programStage.coded('birthStage') and ", '')
        .replace('birthStage: [A03MvHHogjR]', 'ancStage: [AncStage001]')
        .replace(
          /^trigger:$/m,
          `  ancVisit:\n    value: "%mother.enrollments.events.where(programStage.coded('ancStage')).first()"\ntrigger:`,
        ),
    );
    assert.equal(mother?.status, 'ok', mother?.detail);
  });

  it('warns about attribute and data element uids a mapping reads of the subject that the programme does not have', async () => {
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    const metadata = async (sources: unknown[]) => {
      const report = await runDoctor({ file: writeConfig(configObject({ sources })), env: {} });
      return { report, lines: report.checks.filter((c) => c.name === 'source hmis metadata') };
    };
    // The shipped mappings, each on its programme: every uid they read of the subject is the programme's.
    for (const program of ['IpHINAT79UW', 'SbxDthProg1']) {
      const shipped = await metadata([{ id: 'hmis', kind: 'dhis2', baseUrl: dhis2.baseUrl, auth, dhis2: { program } }]);
      assert.deepEqual(
        shipped.lines.map((c) => c.status),
        ['ok'],
        formatReport(shipped.report),
      );
    }

    // A site's copy with a typo in an attribute and a data element, another programme's attribute (the death
    // programme's date of birth, read as the sex under the child's enrollment), and a bogus uid only the
    // mother is read by.
    const shipped = readFileSync(new URL('../../mappings/birth.dhis2.yaml', import.meta.url), 'utf8');
    const copy = join(dir, 'birth.typos.yaml');
    writeFileSync(
      copy,
      shipped
        .replace(/^id: birth\.dhis2$/m, 'id: birth.typos')
        .replace('firstName: [w75KJ2mc4zz]', 'firstName: [w75KJ2mc4zX]')
        .replace('birthWeightGrams: [UXz7xuGCEhU]', "birthWeightGrams: ['dhis2|UXz7xuGCEhX', UXz7xuGCEhU]")
        .replace('nationalId: [AuPLng5hLbE]', 'nationalId: [MotherOnly1]')
        .replace('gender: [cejWyOfXge6]', 'enrolledGender: [SbxAttrDob1]')
        .replace(
          "%subject.attributes.where(attribute.coded('gender')).value",
          "%enrollment.attributes.where(attribute.coded('enrolledGender')).value",
        ),
    );
    const typos = await metadata([{ id: 'hmis', kind: 'dhis2', baseUrl: dhis2.baseUrl, auth, mappings: [copy] }]);
    assert.deepEqual(
      typos.lines.map((c) => c.status),
      ['ok', 'warn'],
      formatReport(typos.report),
    );
    const warning = typos.lines[1]?.detail ?? '';
    assert.ok(
      warning.includes(
        `mapping birth.typos (${copy}) codes.firstName [w75KJ2mc4zX]: no attribute of programme IpHINAT79UW or of its tracked entity type`,
      ),
      warning,
    );
    assert.ok(warning.includes('codes.enrolledGender [SbxAttrDob1]: no attribute of programme IpHINAT79UW'), warning);
    // Only the entry DHIS2 lacks, as written; the set's other uid is the stage's.
    assert.ok(
      warning.includes(
        'codes.birthWeightGrams [dhis2|UXz7xuGCEhX]: no data element of a stage of programme IpHINAT79UW',
      ),
      warning,
    );
    assert.doesNotMatch(warning, /MotherOnly1|codes\.nationalId|codes\.lastName|UXz7xuGCEhU\]/);
    assert.equal(typos.report.ok, true, 'a warning, not a failure');
  });

  it('fails a mother relationship type DHIS2 does not have, naming the mapping file and its key', async () => {
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    const shipped = readFileSync(new URL('../../mappings/birth.dhis2.yaml', import.meta.url), 'utf8');
    const metadata = async (motherRelationship: string) => {
      const copy = join(dir, `birth.rel-${motherRelationship.replace(/\W/g, '')}.yaml`);
      writeFileSync(
        copy,
        shipped
          .replace(/^id: birth\.dhis2$/m, 'id: birth.site')
          .replace('motherRelationship: [SbxRelChMot]', `motherRelationship: ${motherRelationship}`),
      );
      assert.notEqual(readFileSync(copy, 'utf8'), shipped);
      const sources = [{ id: 'hmis', kind: 'dhis2', baseUrl: dhis2.baseUrl, auth, mappings: [copy] }];
      const report = await runDoctor({ file: writeConfig(configObject({ sources })), env: {} });
      return { copy, report, lines: report.checks.filter((c) => c.name === 'source hmis metadata') };
    };
    // A type the server does not have (one copied from the sandbox, or mistyped): no birth would have a mother.
    const wrong = await metadata('[RelChMot001]');
    assert.deepEqual(
      wrong.lines.map((c) => c.status),
      ['fail'],
      formatReport(wrong.report),
    );
    const detail = wrong.lines[0]?.detail ?? '';
    assert.ok(
      detail.startsWith(
        `mapping birth.site (${wrong.copy}) codes.motherRelationship [RelChMot001]: no such relationship type in DHIS2, so `,
      ),
      detail,
    );
    assert.match(detail, /\(the mother\) is never there: .*GET \/api\/relationshipTypes/);
    assert.equal(wrong.report.ok, false);
    // Beside one it has (an old uid kept with the new): a warning naming only the missing one.
    const partly = await metadata('[RelChMot001, SbxRelChMot]');
    assert.deepEqual(
      partly.lines.map((c) => c.status),
      ['ok', 'warn'],
      formatReport(partly.report),
    );
    assert.match(
      partly.lines[1]?.detail ?? '',
      /codes\.motherRelationship \[RelChMot001\]: no such relationship type in DHIS2$/,
    );
    assert.equal(partly.report.ok, true, 'a warning, not a failure');
  });

  it("creates no ledger where there is none, and warns naming the full path of a relative store.path (from the config's folder)", async (t) => {
    // A relative store.path is read from the configuration file's folder (dir), not from the working
    // directory: doctor names the file it looked at, creates none (it used to create an empty one and pass).
    const store = { path: './not-yet.db' };
    assert.notEqual(process.cwd(), dir);
    const report = await runDoctor({ file: writeConfig({ ...configObject({}), store }), env: {} });
    const line = report.checks.find((c) => c.name === 'store');
    assert.equal(line?.status, 'warn', formatReport(report));
    assert.ok(
      line?.detail.startsWith(
        `${join(dir, 'not-yet.db')}: no ledger there (doctor created none); serve or sync creates it (the directory is writable). If the bridge has run before, this is not its ledger: give store.path as the absolute path of the one it has`,
      ),
      line?.detail,
    );
    assert.ok(!existsSync(join(dir, 'not-yet.db')), 'doctor created a ledger');
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.includes('not-yet')),
      [],
      'nothing left beside it',
    );
    assert.equal(report.ok, true, 'a warning, not a failure');
    assert.match(formatReport(report), /^! store: /m);
    // The first sync warning is of the ledger serve would create there, and says so.
    assert.match(
      report.checks.find((c) => c.name === 'first sync emr')?.detail ?? '',
      new RegExp(`^no poll\\.since or poll\\.sinceDays and no ledger at ${join(dir, 'not-yet.db')} yet: every birth`),
    );
    // serve could not create one either: a failure.
    const nowhere = { path: join(dir, 'no-such-directory', 'bridge.db') };
    const missing = await runDoctor({ file: writeConfig({ ...configObject({}), store: nowhere }), env: {} });
    const failed = missing.checks.find((c) => c.name === 'store');
    assert.equal(failed?.status, 'fail', formatReport(missing));
    assert.match(
      failed?.detail ?? '',
      /no ledger there, and serve could not create it: that directory does not exist$/,
    );
    // No ledger opened, none that serve would create: nothing to say of a first sync (doctor run from another
    // directory than the bridge's after the upgrade said the whole history would be notified, of the wrong file).
    assert.deepEqual(
      missing.checks.filter((c) => c.name.startsWith('first sync')),
      [{ name: 'first sync emr', status: 'skip', detail: `not checked: no ledger at ${nowhere.path} (see store)` }],
      formatReport(missing),
    );
    // A ledger only at the old reading (relative to the working directory; the config a folder down, where
    // the same text names nothing): doctor checks that one, and says so.
    // Run from the ledger's folder: from the repository, a checkout deep enough lets `../` climb to the root,
    // where both readings name the same file.
    const old = join(dir, 'old-reading.db');
    openLedger(old).close();
    const file = join(dir, 'etc', 'bridge.yaml');
    mkdirSync(dirname(file));
    const cwd = process.cwd();
    process.chdir(dir);
    t.after(() => process.chdir(cwd));
    writeFileSync(file, JSON.stringify({ ...configObject({}), store: { path: relative(process.cwd(), old) } }));
    const kept = await runDoctor({ file, env: {} });
    // Compared as text, not as a RegExp built from the path: a temporary folder may hold `+`, `(` or `.`.
    const keptStore = kept.checks.find((c) => c.name === 'store')?.detail ?? '';
    assert.ok(keptStore.startsWith(`${old} is writable`), keptStore);
    const moved = kept.checks.find((c) => c.name === 'store path');
    assert.equal(moved?.status, 'warn', formatReport(kept));
    assert.ok(
      moved?.detail.includes(`using the ledger at ${old}, found relative to the working directory`),
      moved?.detail,
    );
  });

  it('fails store where a -wal is left without its ledger, as serve and sync refuse it, and creates nothing', async () => {
    // "no ledger yet, serve creates it" would be wrong: serve stops on it, and a ledger made there loses the -wal.
    const path = join(dir, 'stale-wal.db');
    writeFileSync(`${path}-wal`, 'commits not yet checkpointed');
    const report = await runDoctor({ file: writeConfig({ ...configObject({}), store: { path } }), env: {} });
    const store = report.checks.filter((c) => c.name === 'store');
    assert.deepEqual(
      store,
      [
        {
          name: 'store',
          status: 'fail',
          detail: `no ledger at ${path} (store.path), but its stale-wal.db-wal is there: the ledger was deleted or moved while a process had it open, or a restore copied the -wal alone. Restore stale-wal.db from the last backup (docs/deployment.md §8 "Backup and restore"; runbook: "Ledger gone, its -wal left"); to start a new, empty ledger instead, stop every bridge using it and remove stale-wal.db-wal and stale-wal.db-shm.`,
        },
      ],
      formatReport(report),
    );
    assert.equal(report.ok, false);
    assert.equal(existsSync(path), false, 'doctor created a ledger');
    assert.equal(readFileSync(`${path}-wal`, 'utf8'), 'commits not yet checkpointed');
  });

  it('warns before a first sync that would notify the whole history, until poll.since(Days) is set or rows exist', async () => {
    const store = { path: join(dir, 'first-sync.db') };
    const firstSync = (report: Awaited<ReturnType<typeof runDoctor>>) =>
      report.checks.filter((c) => c.name === 'first sync emr' && c.detail.startsWith('no poll.since'));
    const fresh = await runDoctor({ file: writeConfig({ ...configObject({}), store }), env: {} });
    assert.deepEqual(
      firstSync(fresh).map((c) => c.status),
      ['warn'],
      formatReport(fresh),
    );
    assert.equal(fresh.ok, true, 'a warning, not a failure');
    assert.match(firstSync(fresh)[0]?.detail ?? '', /set sources\[0\]\.poll\.sinceDays \(e\.g\. 30\)/);

    const sources = [{ id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl, poll: { since: '2026-11-01T00:00:00Z' } }];
    const withSince = await runDoctor({ file: writeConfig({ ...configObject({ sources }), store }), env: {} });
    assert.deepEqual(firstSync(withSince), [], formatReport(withSince));
    const lastDays = [{ ...sources[0], poll: { sinceDays: 30 } }];
    const withDays = await runDoctor({ file: writeConfig({ ...configObject({ sources: lastDays }), store }), env: {} });
    assert.deepEqual(firstSync(withDays), [], formatReport(withDays));

    // Once the bridge has recorded something from the source, the first sync is behind it.
    const ledger = openLedger(store.path);
    ledger.recordSkipped({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/x',
      sourceRef: 'Patient/x',
      reason: 'test',
    });
    ledger.close();
    const later = await runDoctor({ file: writeConfig({ ...configObject({}), store }), env: {} });
    assert.deepEqual(firstSync(later), [], formatReport(later));
  });

  it('warns about a source id copied from the examples, which another bridge may use too', async () => {
    const store = { path: join(dir, 'example-ids.db') };
    const generic = await runDoctor({ file: writeConfig({ ...configObject({}), store }), env: {} });
    const warning = generic.checks.find((c) => c.name === 'source id emr');
    assert.equal(warning?.status, 'warn', formatReport(generic));
    assert.match(warning?.detail ?? '', /"emr" is an example id: .*unique among every bridge sending to this OpenCRVS/);
    assert.equal(generic.ok, true, 'a warning, not a failure');
    // Worded for what the source's mappings notify: a deaths-only source has no births to lose.
    assert.match(warning?.detail ?? '', /would have its births and deaths taken for this one's/);
    const auth = { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat };
    const deathsOnly = [
      { id: 'dhis2-deaths', kind: 'dhis2', baseUrl: dhis2.baseUrl, auth, dhis2: { program: 'SbxDthProg1' } },
    ];
    const deaths = await runDoctor({ file: writeConfig({ ...configObject({ sources: deathsOnly }), store }), env: {} });
    const deathsWarning = deaths.checks.find((c) => c.name === 'source id dhis2-deaths');
    assert.match(deathsWarning?.detail ?? '', /would have its deaths taken for this one's/, formatReport(deaths));
    assert.equal(deaths.checks.indexOf(deathsWarning as never), 1, 'still right after the config check');

    const sources = [{ id: 'mansa-general-emr', kind: 'fhir', baseUrl: fhir.baseUrl }];
    const unique = await runDoctor({ file: writeConfig({ ...configObject({ sources }), store }), env: {} });
    assert.deepEqual(
      unique.checks.filter((c) => c.name.startsWith('source id')),
      [],
      formatReport(unique),
    );
  });

  it('says that it migrated an older ledger, as the upgrade check relies on (deployment.md §7)', async () => {
    const store = { path: join(dir, 'schema-8.db') };
    const db = new Database(store.path);
    db.pragma('journal_mode = WAL');
    migrate(db, MIGRATIONS.slice(0, 8), silentLogger, Date.now()); // the ledger of an older release
    db.close();
    const file = writeConfig({ ...configObject({}), store });
    const latest = Math.max(...MIGRATIONS.map((m) => m.version));
    const report = await runDoctor({ file, env: {} });
    const schema = report.checks.find((c) => c.name === 'ledger schema');
    assert.equal(schema?.status, 'warn', formatReport(report));
    assert.match(schema?.detail ?? '', new RegExp(`^migrated from schema 8 to ${latest}, as serve does at start: `));
    assert.match(schema?.detail ?? '', /a bridge older than this one now refuses this ledger/);
    const again = await runDoctor({ file, env: {} });
    assert.equal(
      again.checks.find((c) => c.name === 'ledger schema'),
      undefined,
      'current already: nothing to say',
    );
  });

  it("fails store on a corrupt ledger that opens and takes doctor's own write, saying to restore the backup", async () => {
    const store = { path: join(dir, 'corrupt.db') };
    openLedger(store.path).close();
    // An index page overwritten (a failing disk, a file copied over the running ledger): the meta table
    // doctor writes to is intact, and only the polls and deliveries that reach that page would fail.
    const db = new Database(store.path);
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    const root = Number(
      db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'ledger_rows_state'").pluck().get(),
    );
    db.close();
    const bytes = readFileSync(store.path);
    bytes.fill(0xee, (root - 1) * pageSize, root * pageSize);
    writeFileSync(store.path, bytes);
    const r = await runCli(['doctor', '--config', writeConfig({ ...configObject({}), store })]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const line = r.stdout.split('\n').find((l) => l.includes(' store: ')) ?? '';
    assert.match(line, /^✖ store: .*corrupt\.db: PRAGMA quick_check failed \(.*page \d+.*\): the ledger is corrupt: /);
    assert.match(
      line,
      /stop the bridge and restore the last backup \(docs\/deployment\.md §8 "Backup and restore"; runbook: "Ledger corrupt"\)$/,
    );
    // What a first sync would do is not read from a damaged ledger: said as not checked, not left out.
    assert.match(r.stdout, /^- first sync emr: not checked: the ledger at \S*corrupt\.db is damaged \(see store\)$/m);
    // A sound ledger passes it, and says how long it took.
    openLedger(join(dir, 'sound.db')).close();
    const sound = await runDoctor({
      file: writeConfig({ ...configObject({}), store: { path: join(dir, 'sound.db') } }),
      env: {},
    });
    assert.match(
      sound.checks.find((c) => c.name === 'store')?.detail ?? '',
      /is writable; PRAGMA quick_check ok \(\d+ MB in \d+\.\d s\)$/,
    );
  });

  it('says the first sync is not checked, and why, of a ledger left unopened beside the bridge that holds it', async (t) => {
    // The ledger of the release before, held by a running bridge elsewhere (its lease, renewed now; the file
    // open, as that bridge has it): doctor leaves it unmigrated and unread, so it cannot tell whether the
    // source's first sync is behind it.
    const path = join(dir, 'held-older.db');
    const db = new Database(path);
    t.after(() => db.close());
    db.pragma('journal_mode = WAL');
    migrate(db, MIGRATIONS.slice(0, -1), silentLogger, Date.now());
    const holder = { holder: 'other-pod:1:ns9-abcdef', command: 'serve', renewedAt: Date.now() };
    db.prepare('INSERT INTO meta (key, value, updated_at) VALUES (?, ?, ?)').run(
      PROCESS_LEASE_META,
      JSON.stringify(holder),
      Date.now(),
    );
    const report = await runDoctor({ file: writeConfig({ ...configObject({}), store: { path } }), env: {} });
    assert.match(report.checks.find((c) => c.name === 'store')?.detail ?? '', /another bridge process.*not checked$/);
    assert.deepEqual(
      report.checks.filter((c) => c.name.startsWith('first sync')),
      [
        {
          name: 'first sync emr',
          status: 'skip',
          detail: `not checked: the ledger at ${path} was left unopened (see store)`,
        },
      ],
      formatReport(report),
    );
  });

  it('skips a source whose own secret file is empty, and still checks the store', async () => {
    writeFileSync(join(dir, 'emr-token'), '');
    const file = writeConfig({
      ...configObject({}),
      store: { path: join(dir, 'source-secret.db') },
      sources: [{ id: 'emr', kind: 'fhir', baseUrl: fhir.baseUrl, auth: { type: 'bearer', tokenFile: 'emr-token' } }],
    });
    const report = await runDoctor({ file, env: {} });
    const status = (name: string) => report.checks.find((c) => c.name === name)?.status;
    assert.match(report.checks[0]?.detail ?? '', /sources\[0\]\.auth\.tokenFile: the file is empty/);
    assert.deepEqual(
      ['config', 'store', 'mappings emr', 'source emr', 'opencrvs token'].map(status),
      ['fail', 'warn', 'ok', 'skip', 'skip'],
      formatReport(report),
    );
    assert.equal(report.ok, false);
  });

  it('fails while delivery is held, naming the row that showed the problem', async () => {
    const store = { path: join(dir, 'held.db') };
    const file = writeConfig({ ...configObject({}), store });
    const ledger = openLedger(store.path);
    ledger.setHold({ reason: 'unauthorized (HTTP 401): bad client', since: 0, kind: 'unauthorized', rowId: 7 });
    ledger.close();
    const report = await runDoctor({ file, env: {} });
    const queue = report.checks.find((c) => c.name === 'queue');
    assert.equal(queue?.status, 'fail', formatReport(report));
    assert.match(
      queue?.detail ?? '',
      /held since 1970-01-01T00:00:00.000Z: unauthorized .*\(shown by row #7, which the probe tries again: ledger --find '#7'\)/,
    );
    assert.equal(report.ok, false, 'nothing is being delivered: not "all checks passed"');
    // No admin token: no admin page is served, so the line sends the reader to the ledger command instead.
    assert.match(queue?.detail ?? '', /; see `opencrvs-bridge ledger` \(the admin page is off\)$/);
    const withAdmin = writeConfig({
      ...configObject({}),
      store,
      admin: { token: 'doctor-admin-token-0123456789abcdef' },
    });
    const served = (await runDoctor({ file: withAdmin, env: {} })).checks.find((c) => c.name === 'queue');
    assert.match(served?.detail ?? '', /; see \/admin$/, JSON.stringify(served));
    // A host running only sync (a CronJob) serves no admin page, whatever admin.token says: the ledger command.
    const cron = (await runDoctor({ file: withAdmin, env: {}, for: 'sync' })).checks.find((c) => c.name === 'queue');
    assert.equal(cron?.status, 'fail');
    assert.match(
      cron?.detail ?? '',
      /; see `opencrvs-bridge ledger --status pending,failed` \(the hold and the rows waiting on it; sync serves no admin page\)$/,
      JSON.stringify(cron),
    );
  });

  it('sends the reader to /admin for an admin token from a file, even when a secret file did not load', async () => {
    const store = { path: join(dir, 'held-token-file.db') };
    const ledger = openLedger(store.path);
    ledger.setHold({ reason: 'unauthorized (HTTP 401): bad client', since: 0, kind: 'unauthorized', rowId: 7 });
    ledger.close();
    writeFileSync(join(dir, 'admin-token'), 'doctor-admin-token-from-a-file-0123\n');
    const queueOf = async (value: unknown) => {
      const report = await runDoctor({ file: writeConfig(value), env: {} });
      return { report, queue: report.checks.find((c) => c.name === 'queue') };
    };
    const admin = { tokenFile: 'admin-token' };
    const loaded = await queueOf({ ...configObject({}), store, admin });
    assert.equal(loaded.report.checks[0]?.status, 'ok', formatReport(loaded.report));
    assert.match(loaded.queue?.detail ?? '', /; see \/admin$/, formatReport(loaded.report));
    // The OpenCRVS secret file emptied mid-rotation: the configuration loads without its secret files,
    // the admin token's left unread, and serve (which read it at start) still serves the page.
    writeFileSync(join(dir, 'ocrvs-secret-held'), '');
    const { clientSecret: _, ...opencrvsWithoutSecret } = configObject({}).opencrvs;
    const opencrvsSecret = { ...opencrvsWithoutSecret, clientSecretFile: 'ocrvs-secret-held' };
    const rotating = await queueOf({ ...configObject({}), opencrvs: opencrvsSecret, store, admin });
    assert.match(rotating.report.checks[0]?.detail ?? '', /opencrvs\.clientSecretFile: the file is empty/);
    assert.equal(rotating.queue?.status, 'fail', formatReport(rotating.report));
    assert.match(rotating.queue?.detail ?? '', /; see \/admin$/, formatReport(rotating.report));
    // The admin token's own file emptied mid-rotation: serve keeps the token it read, and its page.
    writeFileSync(join(dir, 'admin-token-rotating'), '');
    const own = await queueOf({ ...configObject({}), store, admin: { tokenFile: 'admin-token-rotating' } });
    assert.match(own.report.checks[0]?.detail ?? '', /admin\.tokenFile: the file is empty/);
    assert.match(own.queue?.detail ?? '', /; see \/admin$/, formatReport(own.report));
    // The admin token from a variable this shell has not set: given all the same, as serve's is.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax
    const unset = { token: '${DOCTOR_TEST_UNSET_ADMIN_TOKEN}' };
    const fromEnv = await queueOf({ ...configObject({}), store, admin: unset });
    assert.match(
      fromEnv.report.checks[0]?.detail ?? '',
      /admin\.token: environment variable DOCTOR_TEST_UNSET_ADMIN_TOKEN is not set/,
    );
    assert.match(fromEnv.queue?.detail ?? '', /; see \/admin$/, formatReport(fromEnv.report));
  });
});
