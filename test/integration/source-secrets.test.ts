// A source's secrets (OAuth2 client secret and the tokens obtained with it, a DHIS2 personal access
// token, the subscription receiver's bearer and HMAC secrets) reach nothing the bridge writes or shows,
// over HTTP against a local server that does its worst: a token endpoint that hands out a token the
// runtime refuses to send (its error quotes the header value) or refuses the client echoing the posted
// form, a FHIR server and a DHIS2 server whose 400, 500 and 401 answers echo the credentials and the body.
// Scanned: the log at debug level, the source status (admin API, /readyz, /healthz), every ledger table,
// and what `sync`, `doctor` and `subscriptions --apply` print (the last two quote a working server that
// echoes what it is sent).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { runCli } from './helpers/bridge-cli.js';
import { simulatorOpenCrvs } from './helpers/bridge-harness.js';

const CLIENT_SECRET = 'emr-client-secret-5Hq';
/** The runtime refuses a header holding a line break, and its error quotes the value. */
const BROKEN_TOKEN = 'opaque-first-half\nhidden-second-half-31';
const ECHOED_TOKEN = 'opaque-echoed-token-8Kd2';
const PAT = 'd2pat_tracker-secret-token-77';
const BEARER_TOKEN = 'bearer-config-token-3Xy';
const HOOK_SECRET = 'hook-bearer-secret-4Lm';
const HMAC_SECRET = 'hook-hmac-secret-9Qz';
const ADMIN_TOKEN = 'admin-token-for-the-scan';
const SECRETS = [
  CLIENT_SECRET,
  'opaque-first-half',
  'hidden-second-half-31',
  ECHOED_TOKEN,
  PAT,
  BEARER_TOKEN,
  HOOK_SECRET,
  HMAC_SECRET,
];

const NOTIFICATION = readFileSync(
  new URL('../fixtures/subscriptions/r4-backport-notification-id-only.json', import.meta.url),
  'utf8',
);

/** Every secret found in `text`, with some context. */
function leaks(text: string): string[] {
  return SECRETS.flatMap((secret) => {
    const at = text.indexOf(secret);
    return at < 0 ? [] : [`${secret}: …${text.slice(Math.max(0, at - 80), at + 80)}…`];
  });
}

/** What the working FHIR server lists: the types the shipped mappings watch or search as context (Task), and Subscription. */
const LISTED = ['Composition', 'Encounter', 'Observation', 'Patient', 'RelatedPerson', 'Task', 'Subscription'];

/** The token endpoint, FHIR server and DHIS2 server of the sources, all hostile. */
function startHostileServer(): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const path = req.url ?? '/';
      const authorization = req.headers.authorization ?? '';
      const bare = authorization.replace(/^\S+\s+/, '');
      if (path === '/token') {
        const form = new URLSearchParams(body);
        const client = form.get('client_id');
        if (client === 'broken') return json(200, { access_token: BROKEN_TOKEN, expires_in: 300 });
        if (client === 'echo') return json(200, { access_token: ECHOED_TOKEN, expires_in: 300 });
        return json(401, {
          error: 'invalid_client',
          error_description: `client_secret ${form.get('client_secret')} is not valid`,
          received: body,
        });
      }
      // A FHIR server that works, and quotes what it is sent where the bridge prints its words: the
      // software name (doctor) and the statuses of a transaction's entries (subscriptions --apply).
      if (path === '/capable-fhir/metadata') {
        return json(200, {
          resourceType: 'CapabilityStatement',
          fhirVersion: '4.0.1',
          software: { name: `Echo for ${bare}` },
          rest: [
            { mode: 'server', searchParam: [{ name: '_lastUpdated' }], resource: LISTED.map((type) => ({ type })) },
          ],
        });
      }
      if (path.startsWith('/capable-fhir')) {
        if (req.method === 'POST') {
          const entries = Array.from({ length: 6 }, () => ({ response: { status: `400 cannot store ${body}` } }));
          return json(200, { resourceType: 'Bundle', type: 'transaction-response', entry: entries });
        }
        if (path.includes('?')) return json(200, { resourceType: 'Bundle', type: 'searchset', entry: [] });
        return json(404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
      }
      if (path.startsWith('/fhir/')) {
        // Searches refused outright (400, not retried: the passes stay short), reads with a 500.
        return json(path.includes('?') ? 400 : 500, {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'exception', diagnostics: `refused ${bare} (${authorization}): ${body}` }],
        });
      }
      return json(401, { httpStatus: 'Unauthorized', message: `Invalid token ${bare}`, header: authorization });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

let hostile: { server: Server; base: string };
let sim: OpenCrvsSimulator;
let dir: string;

function configObject(storePath: string, options: { capable?: boolean } = {}): Record<string, unknown> {
  const oauth2 = (clientId: string) => ({
    type: 'oauth2',
    tokenUrl: `${hostile.base}/token`,
    clientId,
    clientSecret: CLIENT_SECRET,
  });
  const fhir = (id: string, clientId: string) => ({
    id,
    kind: 'fhir',
    // A base of its own: sources reading one server with the same mappings are refused (they would notify
    // every record twice), and the hostile server answers everything under /fhir/ alike.
    baseUrl: `${hostile.base}/fhir/${id}`,
    timeoutMs: 2000,
    poll: { sinceDays: 1 },
    auth: oauth2(clientId),
  });
  return {
    opencrvs: simulatorOpenCrvs(sim),
    store: { path: storePath },
    http: { host: '127.0.0.1', port: 0 },
    admin: { token: ADMIN_TOKEN, port: 0 },
    sources: [
      ...(options.capable
        ? [
            {
              id: 'emr-capable',
              kind: 'fhir',
              baseUrl: `${hostile.base}/capable-fhir`,
              timeoutMs: 2000,
              poll: { sinceDays: 1 },
              auth: { type: 'bearer', token: BEARER_TOKEN },
              subscription: { secret: HOOK_SECRET, hmacSecret: HMAC_SECRET },
            },
          ]
        : []),
      fhir('emr-broken', 'broken'),
      { ...fhir('emr-echo', 'echo'), subscription: { secret: HOOK_SECRET, hmacSecret: HMAC_SECRET } },
      fhir('emr-refused', 'refused'),
      {
        id: 'tracker',
        kind: 'dhis2',
        baseUrl: `${hostile.base}/dhis2`,
        timeoutMs: 2000,
        poll: { sinceDays: 1 },
        auth: { type: 'pat', token: PAT },
      },
    ],
    routing: {
      defaultOffice: 'LHUYvwY2Aq1',
      facilities: { 'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' } },
    },
  };
}

/** Every row of every table of the ledger, as text. */
function ledgerText(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
    return tables.map(({ name }) => JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all())).join('\n');
  } finally {
    db.close();
  }
}

before(async () => {
  hostile = await startHostileServer();
  sim = await startOpenCrvsSimulator({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'source-secrets-'));
});

after(async () => {
  hostile.server.closeAllConnections();
  await new Promise((resolve) => hostile.server.close(resolve));
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('source secrets against hostile source servers', () => {
  it('reach no log line, source status, readiness answer or ledger table of a running bridge', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
    const storePath = join(dir, 'running.db');
    const bridge = new Bridge(configFromObject(configObject(storePath)), { logger, schedule: false, worker: false });
    const shown: string[] = [];
    try {
      await bridge.start();
      const base = `http://127.0.0.1:${bridge.httpPort}`;
      // A notification the bridge must read the source for: that read fails, and the inbox keeps why.
      const notified = await fetch(`${base}/fhir-subscription/emr-echo`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${HOOK_SECRET}`,
          'x-signature': createHmac('sha256', HMAC_SECRET).update(NOTIFICATION).digest('hex'),
          'content-type': 'application/fhir+json',
        },
        body: NOTIFICATION,
      });
      assert.equal(notified.status, 200, await notified.text());
      const summary = await bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(summary.failedSources.sort(), ['emr-broken', 'emr-echo', 'emr-refused', 'tracker']);
      shown.push(JSON.stringify(summary));
      const deadline = Date.now() + 20_000;
      while (!ledgerText(storePath).includes('read Encounter failed')) {
        assert.ok(Date.now() < deadline, 'the failed read of the notified Encounter is kept in the inbox');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const statuses = bridge.sourceStatuses();
      assert.ok(
        statuses.every((status) => status.lastError),
        JSON.stringify(statuses),
      );
      shown.push(JSON.stringify(statuses));
      const admin = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
      const adminBase = `http://127.0.0.1:${bridge.adminPort}`;
      for (const url of [`${base}/readyz`, `${base}/healthz`, `${adminBase}/admin/api/summary`]) {
        const answer = await fetch(url, admin);
        shown.push(await answer.text());
      }
      assert.match(shown.join('\n'), /source:emr-broken/);
    } finally {
      await bridge.stop();
    }
    const logged = lines.join('');
    assert.match(logged, /access_token that cannot be sent in a header/, 'the refused token is named, not quoted');
    assert.deepEqual(leaks(logged), [], 'log');
    assert.deepEqual(leaks(shown.join('\n')), [], 'source status, readiness, admin API');
    assert.deepEqual(leaks(ledgerText(storePath)), [], 'ledger');
  });

  it('are printed by neither sync (its log included), doctor nor subscriptions --apply', async () => {
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, JSON.stringify(configObject(join(dir, 'cli.db'), { capable: true }))); // JSON is YAML
    const debug = { LOG_LEVEL: 'debug' };
    const sync = await runCli(['sync', '--once', '--config', file], debug);
    assert.equal(sync.code, 1, sync.stderr);
    assert.match(
      sync.stdout,
      /sources that could not be polled:\n {2}emr-broken: .*\n {2}emr-echo: .*\n {2}emr-refused: .*\n {2}tracker: /,
    );
    assert.match(sync.stderr, /access_token that cannot be sent in a header/, 'the refused token is named, not quoted');
    const doctor = await runCli(['doctor', '--config', file], debug);
    assert.equal(doctor.code, 1, doctor.stderr);
    assert.match(doctor.stdout, /source emr-refused/);
    assert.match(
      doctor.stdout,
      /capable-fhir \(Echo for \[redacted\], FHIR 4\.0\.1\)/,
      'the server is quoted, scrubbed',
    );
    const subscriptions = await runCli(
      [
        'subscriptions',
        '--config',
        file,
        '--source',
        'emr-capable',
        '--style',
        'medplum',
        '--bridge-url',
        'https://bridge.example',
        '--apply',
      ],
      debug,
    );
    assert.equal(subscriptions.code, 0, subscriptions.stderr);
    assert.match(subscriptions.stdout, /400 cannot store/, "the server's answer is printed, scrubbed");
    for (const [name, run] of Object.entries({ sync, doctor, subscriptions })) {
      assert.deepEqual(leaks(`${run.stdout}\n${run.stderr}`), [], name);
    }
  });
});
