// Nothing personal and nothing secret in what the bridge writes: the whole demo runs at debug level
// (so every log call fires) and everything on stdout and stderr is scanned for every name, birth and
// death date, identifier, address and phone of the seeded records, for the OpenCRVS client secret and
// for tokens. A bridge driven by full-resource subscription notifications is scanned the same way.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DestinationStream } from 'pino';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth, generateDeath } from '../../src/sandbox/demo/generate.js';
import { demoSeed } from '../../src/sandbox/demo/seed.js';
import { ATTRIBUTES, buildDemoChildProgramme } from '../../src/sandbox/dhis2/index.js';
import { startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { CHILD_NODE_FLAGS, childModule } from '../support/child-source.js';

const cli = childModule('cli.ts');
const DAY_MS = 86_400_000;
// LOINC 81956-5: date and time of death (an Observation in the VRDR examples).
const DEATH_DATE_CODE = '81956-5';

interface Sensitive {
  /** Names, identifier values, address lines, postcodes, phones, emails: matched as whole words. */
  words: Set<string>;
  /** YYYY-MM-DD birth and death dates. */
  dates: Set<string>;
  /** Resource ids: not personal data, but some embed a family name (`patient-child-babyg-quinn`). */
  resourceIds: Set<string>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function records(value: unknown): Record<string, unknown>[] {
  return (Array.isArray(value) ? value : [value]).filter(isRecord);
}

function codes(value: unknown): string[] {
  return isRecord(value) ? records(value.coding).flatMap((c) => (typeof c.code === 'string' ? [c.code] : [])) : [];
}

/** Walks resources (and Bundles) collecting what must never be logged. */
function collectSensitive(resources: unknown[]): Sensitive {
  const found: Sensitive = { words: new Set(), dates: new Set(), resourceIds: new Set() };
  const date = (value: unknown) => {
    if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value)) found.dates.add(value.slice(0, 10));
  };
  const visit = (node: unknown, resourceType?: string): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, resourceType);
      return;
    }
    if (!isRecord(node)) return;
    const type = typeof node.resourceType === 'string' ? node.resourceType : resourceType;
    if (typeof node.resourceType === 'string' && typeof node.id === 'string') found.resourceIds.add(node.id);
    for (const [key, value] of Object.entries(node)) {
      if (key === 'name' && type !== 'Location' && type !== 'Organization') {
        for (const name of records(value)) {
          // A one-letter initial would match everywhere; every longer part is scanned.
          for (const part of [...strings(name.given), name.family, name.text]) {
            if (typeof part === 'string' && part.length > 1) found.words.add(part);
          }
        }
      }
      if (key === 'birthDate' || key === 'deceasedDateTime') date(value);
      if (key === 'valueDateTime' && type === 'Observation' && codes(node.code).includes(DEATH_DATE_CODE)) date(value);
      if (key === 'identifier')
        for (const id of records(value)) if (typeof id.value === 'string') found.words.add(id.value);
      if (key === 'telecom') for (const t of records(value)) if (typeof t.value === 'string') found.words.add(t.value);
      if (key === 'address') {
        for (const address of records(value)) {
          for (const line of strings(address.line)) found.words.add(line);
          if (typeof address.postalCode === 'string') found.words.add(address.postalCode);
        }
      }
      visit(value, type);
    }
  };
  visit(resources);
  return found;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every leak in `output`, as `kind "value": …context…` (empty = clean). */
function findLeaks(output: string, sensitive: Sensitive, secrets: string[]): string[] {
  // Resource ids are allowed (the demo summary prints source references): blank them out first, longest
  // first, so `babyg-quinn` in an id is not taken for the family name.
  let text = output;
  for (const id of [...sensitive.resourceIds].sort((a, b) => b.length - a.length)) text = text.split(id).join('<id>');
  const leaks: string[] = [];
  const report = (kind: string, pattern: RegExp) => {
    for (const match of text.matchAll(pattern)) {
      const at = match.index ?? 0;
      leaks.push(`${kind} ${JSON.stringify(match[0])}: …${text.slice(Math.max(0, at - 60), at + 60)}…`);
    }
  };
  for (const word of sensitive.words)
    report('personal data', new RegExp(`(?<![\\w-])${escapeRegExp(word)}(?![\\w-])`, 'g'));
  const now = Date.now();
  for (const day of sensitive.dates) {
    // A date within two days of now could be today's log timestamps: then only a bare date (not an ISO
    // timestamp's date part) counts. Seeded demo dates are fixed, so this only matters by coincidence.
    const near = Math.abs(Date.parse(`${day}T12:00:00Z`) - now) < 2 * DAY_MS;
    report('date', new RegExp(near ? `${escapeRegExp(day)}(?!T)` : escapeRegExp(day), 'g'));
  }
  for (const secret of secrets) report('secret', new RegExp(escapeRegExp(secret), 'g'));
  report('token', /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g);
  report('credential', /(?:Bearer|Basic|ApiToken)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}/g);
  report('query secret', /client_secret=(?!\[redacted\])[^&\s"]+/g);
  return leaks;
}

function runDemo(): Promise<{ code: number | null; output: string }> {
  const entry = `import { main } from ${JSON.stringify(cli)}; process.exitCode = await main(['node', 'opencrvs-bridge', 'demo', '--exit', '--port', '0', '--admin-port', '0']);`;
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'debug' };
  delete env.BRIDGE_CONFIG;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', entry], { env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function jsonLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('logs without personal data or secrets', () => {
  it('the whole demo at debug level writes no seeded name, date, identifier, client secret or token', async () => {
    const { code, output } = await runDemo();
    assert.equal(code, 0, output.slice(-2000));
    const lines = jsonLines(output);
    // The scan means something only if the run logged a lot, debug included, and delivered.
    assert.ok(lines.length >= 50, `only ${lines.length} log lines`);
    assert.ok(lines.some((l) => l.level === 'debug'));
    assert.match(output, /result: every expected event was delivered/);
    const sensitive = collectSensitive(demoSeed());
    // The demo's DHIS2 records too (same generator and seed as the demo; names and ids are fixed by
    // the seed, dates of birth are relative to now and so only names, ids and addresses are scanned).
    for (const entity of buildDemoChildProgramme({ births: 3, deaths: 2, seed: 1 })) {
      for (const attribute of entity.attributes ?? []) {
        const personal: string[] = [
          ATTRIBUTES.firstName,
          ATTRIBUTES.lastName,
          ATTRIBUTES.nationalId,
          ATTRIBUTES.address,
        ];
        if (personal.includes(attribute.attribute) && attribute.value && attribute.value.length > 1) {
          sensitive.words.add(attribute.value);
        }
      }
    }
    assert.ok(sensitive.words.size > 30 && sensitive.dates.size > 10, 'the seed yields values to scan for');
    // The scanner itself finds what it looks for (and lets resource ids through).
    const planted = '{"msg":"Jada Quinn born 2019-02-12","ref":"Patient/patient-child-babyg-quinn"}';
    assert.equal(findLeaks(planted, sensitive, []).length, 3);
    assert.deepEqual(findLeaks(output, sensitive, ['sandbox-secret']), []);
  });

  it('a bridge fed full-resource subscription notifications logs none of them', async () => {
    const written: string[] = [];
    const destination: DestinationStream = {
      write(chunk: string) {
        written.push(chunk);
      },
    };
    const logger = createLogger({ level: 'debug', destination });
    const clientSecret = 'subscription-run-client-secret';
    const hookSecret = 'subscription-hook-bearer-secret';
    const sim = await startOpenCrvsSimulator({ port: 0, clientSecret, logger });
    const dir = mkdtempSync(join(tmpdir(), 'logs-subscription-'));
    // A port that was free a moment ago: the bridge's config must name the sandbox before it starts.
    const fhirPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const config = configFromObject({
      opencrvs: { tokenUrl: sim.tokenUrl, eventsUrl: sim.eventsUrl, clientId: sim.clientId, clientSecret },
      store: { path: join(dir, 'bridge.db') },
      http: { host: '127.0.0.1', port: 0 },
      delivery: { baseDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 20 },
      sources: [
        {
          id: 'emr',
          kind: 'fhir',
          baseUrl: `http://127.0.0.1:${fhirPort}/fhir`,
          poll: { enabled: false },
          subscription: { secret: hookSecret },
        },
      ],
      routing: {
        defaultOffice: 'LHUYvwY2Aq1',
        facilities: {
          'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
          'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
        },
      },
    });
    const bridge = new Bridge(config, { logger, schedule: false });
    const records = [
      ...[0, 1, 2].flatMap((i) => generateBirth(i, { prefix: 'sub' })),
      ...generateDeath(0, { prefix: 'sub' }),
    ];
    try {
      await bridge.start();
      const fhir = await startFhirSandbox({
        port: fhirPort,
        seed: DEMO_FACILITIES.map(facilityLocation),
        notify: {
          url: `http://127.0.0.1:${bridge.httpPort}/fhir-subscription/emr`,
          style: 'hapi-payload',
          headers: { Authorization: `Bearer ${hookSecret}` },
        },
        logger,
      });
      try {
        for (const resource of records) await fhir.upsert(resource);
        await fhir.emitter?.flush();
        const deadline = Date.now() + 30_000;
        while ((await sim.control.events()).length < 4) {
          assert.ok(Date.now() < deadline, 'timed out waiting for 4 OpenCRVS events');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        // The readiness and metrics routes log too.
        await fetch(`http://127.0.0.1:${bridge.httpPort}/readyz`, { signal: AbortSignal.timeout(10_000) });
        // A record id in a refused notification's path (some EMRs use the MRN as resource id), where the
        // source id or the resource type goes, and in a path that is no route of the bridge's (an EMR given
        // the wrong base URL).
        for (const [method, path] of [
          ['PUT', '/fhir-subscription/emr/Patient/XMRNC30'],
          ['DELETE', '/fhir-subscription/emr/Patient/XMRNC30'],
          ['POST', '/fhir-subscription/XMRNC30'],
          ['PUT', '/fhir-subscription/emr/XMRNC/1'],
          ['PUT', '/Patient/XMRNC30'],
          ['GET', '/fhir-subscription/emr/Patient/XMRNC30/_history/1'],
        ] as const) {
          const answer = await fetch(`http://127.0.0.1:${bridge.httpPort}${path}`, {
            method,
            headers: { Authorization: 'Bearer wrong-secret', 'Content-Type': 'application/fhir+json' },
            body: method === 'PUT' ? '{"resourceType":"Patient","id":"XMRNC30"}' : undefined,
            signal: AbortSignal.timeout(10_000),
          });
          await answer.arrayBuffer();
        }
      } finally {
        await bridge.stop();
        await fhir.close();
      }
    } finally {
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    }
    const output = written.join('');
    assert.ok(jsonLines(output).length >= 20, 'the run logged');
    // Request lines name the whole path, mount prefix included (/fhir-subscription/emr/…, not /emr/…).
    const paths = jsonLines(output)
      .filter((l) => l.msg === 'request')
      .map((l) => String(l.path));
    assert.ok(paths.includes('/readyz'), paths.join(' '));
    // The route, not the record: the resource ids the notifications named are not in them.
    assert.ok(paths.includes('/fhir-subscription/emr/Patient/{id}'), paths.join(' '));
    const requests = jsonLines(output).filter((l) => l.msg === 'request');
    for (const id of collectSensitive(records).resourceIds) {
      assert.ok(!paths.some((p) => p.includes(id)), `${id} in ${paths.join(' ')}`);
    }
    assert.doesNotMatch(output, /XMRNC/);
    const refused = requests.filter((l) => l.status === 401);
    assert.deepEqual(
      refused.map((l) => `${String(l.method)} ${String(l.path)}`),
      [
        'PUT /fhir-subscription/emr/Patient/{id}',
        'DELETE /fhir-subscription/emr/Patient/{id}',
        // An unknown source is answered as a wrong secret (its id is not logged either).
        'POST /fhir-subscription/{source}',
        'PUT /fhir-subscription/emr/{type}/{id}',
        'GET /fhir-subscription/{unknown}',
      ],
    );
    assert.ok(
      requests.some((l) => l.method === 'PUT' && l.path === '/{unknown}' && l.status === 404),
      paths.join(' '),
    );
    const sensitive = collectSensitive(records);
    assert.deepEqual(findLeaks(output, sensitive, [clientSecret, hookSecret]), []);
  });
});
