// `map --ref Type/id`: the dry run on a record read live from the configured source, as a separate process
// against the FHIR sandbox (behind a proxy that wants the source's bearer token and records every call)
// seeded with the demo birth, and against the DHIS2 simulator. Nothing is sent and no ledger is opened.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Resource as FhirResource } from '@medplum/fhirtypes';
import { stringify } from 'yaml';
import type { Resource } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  BIRTH_DATA_ELEMENTS,
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  ORG_UNITS,
  startDhis2Simulator,
  TRACKED_ENTITY_TYPE_PERSON,
} from '../../src/sandbox/dhis2/index.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { closedPort } from '../support/ports.js';
import { runCli } from './helpers/bridge-cli.js';
import { demoEntities, enrolledIn } from './helpers/dhis2-harness.js';
import { answerJson, type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

const DEMO = fileURLToPath(new URL('../../examples/demo/fhir/', import.meta.url));
const demo: Resource[] = readdirSync(DEMO)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(DEMO, f), 'utf8')) as Resource);
const CHILD = 'Patient/patient-child-babyg-quinn';
const TOKEN = 'emr-t0ken-for-the-bridge';
const OFFICE = '0be1dc9b-5c8b-4d20-a88c-08cafc71c99a';
const FACILITY = 'd89c1114-eddc-4dca-8352-4d2105c876f8';
/** What the demo birth holds that must never reach standard error: names, the birth date, the MRN, its ids. */
const PERSONAL = /Quinn|Jada|James|2019-02-12|9932702|babyg/i;

describe('opencrvs-bridge map --ref (FHIR)', () => {
  let sandbox: FhirSandbox;
  let proxy: FaultProxy;
  let dir: string;
  let config: string;
  let ledger: string;

  /** A config reading the sandbox through the proxy with the token from a file; OpenCRVS nowhere reachable. */
  function writeConfig(name: string, sources: Array<Record<string, unknown>>): string {
    const file = join(dir, name);
    writeFileSync(
      file,
      stringify({
        // A secret file that does not exist: map calls no OpenCRVS, so it must not read it.
        opencrvs: { domain: 'farajaland.example.org', clientId: 'bridge', clientSecretFile: join(dir, 'missing') },
        store: { path: ledger },
        routing: { defaultOffice: OFFICE, facilities: { 'Location/location-south-hospital': { facility: FACILITY } } },
        sources,
      }),
    );
    return file;
  }

  const emr = (extra: Record<string, unknown> = {}) => ({
    id: 'emr',
    kind: 'fhir',
    baseUrl: `${proxy.url}/fhir`,
    timeoutMs: 5000,
    auth: { type: 'bearer', tokenFile: join(dir, 'token') },
    mappings: ['birth.fhir', 'death.fhir'],
    ...extra,
  });

  before(async () => {
    sandbox = await startFhirSandbox({ port: 0, seed: demo, logger: silentLogger });
    proxy = await startFaultProxy();
    proxy.target = sandbox.baseUrl;
    // The EMR wants the source's token: a call without it is refused as a FHIR server refuses it.
    proxy.rules.push((req) =>
      req.headers.authorization === `Bearer ${TOKEN}`
        ? undefined
        : answerJson(401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] }),
    );
    dir = mkdtempSync(join(tmpdir(), 'map-ref-'));
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    ledger = join(dir, 'bridge.db');
    config = writeConfig('bridge.yaml', [emr()]);
  });
  after(async () => {
    await proxy?.close();
    await sandbox?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads the record and its context with the source auth and prints what map --input prints for them', async () => {
    proxy.seen.length = 0;
    const r = await runCli(['map', '--ref', CHILD, '--config', config, '--json'], { LOG_LEVEL: 'debug' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'mapped', r.stdout);
    assert.equal(out.eventType, 'birth');
    assert.equal(out.subjectRef, CHILD);
    assert.equal(out.declaration['child.dob'], '2019-02-12');
    assert.deepEqual(
      { office: out.routing.office, facility: out.routing.facility },
      { office: OFFICE, facility: FACILITY },
    );

    // The context came from the source: the child, and searches by it (its encounter, observations, mother).
    assert.ok(proxy.seen.length > 1, JSON.stringify(proxy.seen));
    // Only reads, each with the token (the proxy refuses one without it); the demo names a Practitioner it lacks.
    assert.ok(
      proxy.seen.every((call) => call.method === 'GET' && call.status !== 401),
      JSON.stringify(proxy.seen),
    );
    assert.ok(proxy.seen.some((call) => /^\/fhir\/Encounter\?.*subject=/.test(decodeURIComponent(call.url))));

    // The birth's records (the demo's deaths left out) given as a Bundle to map --input: the same payload.
    const birth = demo.filter((r) => /babyg-quinn|jada-ann-quinn|james-brandon-quinn|south-hospital/.test(r.id ?? ''));
    const bundle = join(dir, 'bundle.json');
    writeFileSync(
      bundle,
      JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: birth.map((resource) => ({ resource })) }),
    );
    const input = await runCli(['map', '--input', bundle, '--config', config, '--json']);
    assert.equal(input.code, 0, input.stderr);
    assert.deepEqual(out, JSON.parse(input.stdout));

    // Nothing of the record on standard error (logs at debug included); no ledger opened or created.
    assert.doesNotMatch(r.stderr, PERSONAL);
    assert.equal(existsSync(ledger), false, 'map --ref opened no ledger');
  });

  it('prints the readable report without --json, and maps the patient an Encounter is about', async () => {
    const plain = await runCli(['map', '--ref', CHILD, '--config', config]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^MAPPED birth \(birth\.fhir, Patient\/patient-child-babyg-quinn\)/);
    assert.match(plain.stdout, /child\.dob = "2019-02-12"/);
    const encounter = await runCli([
      'map',
      '--ref',
      'Encounter/encounter-birth-babyg-quinn',
      '--config',
      config,
      '--json',
    ]);
    assert.equal(encounter.code, 0, encounter.stderr);
    assert.equal(JSON.parse(encounter.stdout).subjectRef, CHILD);
    assert.equal(existsSync(ledger), false);
  });

  it("answers a birth dated before the source's go-live as skipped, as serve records it", async () => {
    const live = writeConfig('live.yaml', [emr({ poll: { since: '2025-01-01' } })]);
    const r = await runCli(['map', '--ref', CHILD, '--config', live]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^SKIPPED \(birth\.fhir, Patient\/patient-child-babyg-quinn\): born before the source's go-live 2025-01-01: registered otherwise\n {2}hint: serve records it so/,
    );
    assert.equal(existsSync(ledger), false);

    // Its birth date an estimate (year and month, as OpenMRS sends one): invalid, which serve records
    // skipped all the same, as a birth of before the go-live's month.
    const child = demo.find((r) => `${r.resourceType}/${r.id}` === CHILD) as unknown as FhirResource;
    const estimated: Record<string, unknown> = { ...child, birthDate: '2019-02' };
    delete estimated._birthDate;
    await sandbox.upsert(estimated as unknown as FhirResource);
    try {
      const partial = await runCli(['map', '--ref', CHILD, '--config', live]);
      assert.equal(partial.code, 0, partial.stderr);
      assert.match(
        partial.stdout,
        /^SKIPPED \(birth\.fhir, Patient\/patient-child-babyg-quinn\): born before the source's go-live 2025-01-01: registered otherwise\n/,
      );
    } finally {
      await sandbox.upsert(child);
    }
  });

  it('says a record the source does not have clearly, without its id, and exits 2', async () => {
    const r = await runCli(['map', '--ref', 'Patient/babyg-nobody', '--config', config], { LOG_LEVEL: 'debug' });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /--ref: source emr has no such Patient \(not found, or deleted\)/);
    assert.doesNotMatch(r.stderr, PERSONAL);
    const json = await runCli(['map', '--ref', 'Patient/babyg-nobody', '--config', config, '--json']);
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stdout).status, 'error');
    for (const bad of ['Patient', 'NoSuchType/1', 'Patient/a/b'])
      assert.equal((await runCli(['map', '--ref', bad, '--config', config])).code, 2, bad);
    assert.equal(existsSync(ledger), false);
  });

  it("uses the source's auth: a token the EMR refuses fails with the call and its status, exit 2", async () => {
    writeFileSync(join(dir, 'wrong-token'), 'not-the-token\n');
    const wrong = writeConfig('wrong-token.yaml', [
      emr({ auth: { type: 'bearer', tokenFile: join(dir, 'wrong-token') } }),
    ]);
    const r = await runCli(['map', '--ref', CHILD, '--config', wrong]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--ref: source emr could not be read.*HTTP 401/);
    assert.doesNotMatch(r.stderr, PERSONAL);
    assert.doesNotMatch(r.stderr, /not-the-token/);
  });

  it('says which context read failed and how, without the record, and exits 2 with nothing printed as mapped', async () => {
    const failing = (req: { url?: string }) =>
      req.url?.startsWith('/fhir/RelatedPerson')
        ? answerJson(500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] })
        : undefined;
    proxy.rules.unshift(failing);
    try {
      const r = await runCli(['map', '--ref', CHILD, '--config', config, '--json'], { LOG_LEVEL: 'debug' });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /--ref: source emr could not be read \(context '\w+'\): .*HTTP 500/);
      assert.doesNotMatch(r.stderr, PERSONAL);
      assert.equal(JSON.parse(r.stdout).status, 'error');
    } finally {
      proxy.rules.splice(proxy.rules.indexOf(failing), 1);
    }
  });

  it('with several sources, asks which one with --source, then reads that one', async () => {
    const other = await closedPort();
    const two = writeConfig('two.yaml', [
      { id: 'elsewhere', kind: 'fhir', baseUrl: `http://127.0.0.1:${other}/fhir` },
      emr(),
    ]);
    const unnamed = await runCli(['map', '--ref', CHILD, '--config', two]);
    assert.equal(unnamed.code, 2);
    assert.match(unnamed.stderr, /--ref: say which source to read with --source \(elsewhere, emr\)/);
    const named = await runCli(['map', '--ref', CHILD, '--config', two, '--source', 'emr', '--json']);
    assert.equal(named.code, 0, named.stderr);
    assert.equal(JSON.parse(named.stdout).status, 'mapped');
    const noConfig = await runCli(['map', '--ref', CHILD]);
    assert.equal(noConfig.code, 2);
    assert.match(noConfig.stderr, /--ref needs a configuration/);
    const both = await runCli(['map', '--ref', CHILD, '--input', join(dir, 'bundle.json'), '--config', config]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /not both/);
  });
});

describe('opencrvs-bridge map --ref (DHIS2)', () => {
  let dhis2: Dhis2Simulator;
  let dir: string;
  let config: string;
  const entities = demoEntities(1, 0);
  const [child] = enrolledIn(entities, CHILD_PROGRAMME);

  before(async () => {
    dhis2 = await startDhis2Simulator({ port: 0, seed: entities });
    dir = mkdtempSync(join(tmpdir(), 'map-ref-dhis2-'));
    config = join(dir, 'bridge.yaml');
    writeFileSync(
      config,
      stringify({
        opencrvs: { domain: 'farajaland.example.org', clientId: 'bridge', clientSecret: 's3cret' },
        store: { path: join(dir, 'bridge.db') },
        routing: { defaultOffice: OFFICE },
        sources: [
          {
            id: 'dhis2-births',
            kind: 'dhis2',
            baseUrl: dhis2.baseUrl,
            auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
            timeoutMs: 5000,
            dhis2: { program: CHILD_PROGRAMME },
            mappings: ['birth.dhis2'],
          },
        ],
      }),
    );
  });
  after(async () => {
    await dhis2?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('maps a tracked entity, or the one an event belongs to, read from DHIS2', async () => {
    assert.ok(child);
    const ref = `TrackedEntity/${child.trackedEntity}`;
    const r = await runCli(['map', '--ref', ref, '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'mapped', r.stdout);
    assert.equal(out.eventType, 'birth');
    assert.equal(out.subjectRef, ref);
    assert.equal(out.routing.office, OFFICE);
    const event = child.enrollments?.[0]?.events?.find((e) =>
      e.dataValues?.some((v) => v.dataElement === BIRTH_DATA_ELEMENTS.weightGrams),
    );
    assert.ok(event?.event, 'the demo birth has its birth event');
    const byEvent = await runCli(['map', '--ref', `Event/${event.event}`, '--config', config, '--json']);
    assert.equal(byEvent.code, 0, byEvent.stderr);
    assert.deepEqual(JSON.parse(byEvent.stdout), out);
    assert.equal(existsSync(join(dir, 'bridge.db')), false);

    // Read by uid, a record outside the org units the source polls would map all the same: it is said.
    assert.doesNotMatch(r.stderr, /outside what source/);
    const owner = child.enrollments?.[0]?.orgUnit ?? child.orgUnit;
    const elsewhere = owner === ORG_UNITS.gbenikoroMchp ? ORG_UNITS.ngelehunChc : ORG_UNITS.gbenikoroMchp;
    const scoped = (units: string[]) => {
      const file = join(dir, `scoped-${units.join('-')}.yaml`);
      const yaml = readFileSync(config, 'utf8').replace(
        `program: ${CHILD_PROGRAMME}`,
        `program: ${CHILD_PROGRAMME}\n      orgUnits: [${units.join(', ')}]\n      orgUnitMode: DESCENDANTS`,
      );
      assert.notEqual(yaml, readFileSync(config, 'utf8'));
      writeFileSync(file, yaml);
      return file;
    };
    const outside = await runCli(['map', '--ref', ref, '--config', scoped([elsewhere]), '--json']);
    assert.equal(outside.code, 0, outside.stderr);
    assert.deepEqual(JSON.parse(outside.stdout), out);
    assert.match(
      outside.stderr,
      /this tracked entity is outside what source dhis2-births polls .*serve would not read it/,
    );
    const inside = await runCli(['map', '--ref', ref, '--config', scoped([ORG_UNITS.sierraLeone]), '--json']);
    assert.equal(inside.code, 0, inside.stderr);
    assert.doesNotMatch(inside.stderr, /outside what source/);
    // So is one of another tracked entity type than the source's (the child is a Person): told by the bridge,
    // as the poller tells it, since DHIS2 answers a list given the programme and a type 409.
    assert.equal(child.trackedEntityType, TRACKED_ENTITY_TYPE_PERSON);
    const typed = join(dir, 'typed.yaml');
    writeFileSync(
      typed,
      readFileSync(config, 'utf8').replace(
        `program: ${CHILD_PROGRAMME}`,
        `program: ${CHILD_PROGRAMME}\n      trackedEntityType: SbxOtherTyp`,
      ),
    );
    const ofOther = await runCli(['map', '--ref', ref, '--config', typed, '--json']);
    assert.equal(ofOther.code, 0, ofOther.stderr);
    assert.match(ofOther.stderr, /this tracked entity is outside what source dhis2-births polls .*trackedEntityType/);

    // The mother is read through her child's relationship, never polled: not enrolled is what is said of her,
    // with or without org units in the source (not that she is outside them).
    const mother = child.relationships?.[0]?.to?.trackedEntity?.trackedEntity;
    assert.ok(
      mother &&
        mother !== child.trackedEntity &&
        !enrolledIn(entities, CHILD_PROGRAMME).some((te) => te.trackedEntity === mother),
    );
    for (const file of [config, scoped([ORG_UNITS.sierraLeone])]) {
      const her = await runCli(['map', '--ref', `TrackedEntity/${mother}`, '--config', file, '--json']);
      assert.match(
        her.stderr,
        new RegExp(
          `this tracked entity is not enrolled in programme ${CHILD_PROGRAMME}, the one source dhis2-births polls .*serve would not read it`,
        ),
        her.stderr,
      );
      assert.doesNotMatch(her.stderr, /outside what source/);
    }

    const missing = await runCli(['map', '--ref', 'TrackedEntity/Aaaaaaaaaa1', '--config', config]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /source dhis2-births has no such TrackedEntity in program/);
    const patient = await runCli(['map', '--ref', CHILD, '--config', config]);
    assert.equal(patient.code, 2);
    assert.match(patient.stderr, /a DHIS2 source takes TrackedEntity\/<uid> or Event\/<uid>, not Patient/);
  });
});
