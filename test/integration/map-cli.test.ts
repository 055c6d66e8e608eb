// The `map` and `validate` commands, run as a separate process the way an integration engineer runs them.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCliSync } from './helpers/cli-sync.js';

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'map-cli-'));

const run = runCliSync;

const config = join(dir, 'bridge.yaml');
writeFileSync(
  config,
  `opencrvs:
  domain: farajaland.example.org
  clientId: bridge
  clientSecret: s3cret
routing:
  defaultOffice: 0be1dc9b-5c8b-4d20-a88c-08cafc71c99a
  facilities:
    "Location/location-south-hospital": { facility: d89c1114-eddc-4dca-8352-4d2105c876f8 }
`,
);
const liveBirth = fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json');

describe('opencrvs-bridge map', () => {
  it('prints exactly one JSON object for a mapped birth and exits 0', () => {
    const r = run(['map', '--input', liveBirth, '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'mapped');
    assert.equal(out.eventType, 'birth');
    assert.equal(out.declaration['child.dob'], '2019-02-12');
    assert.equal(out.declaration['child.weightAtBirth'], 2.5);
    assert.deepEqual(
      { office: out.routing.office, facility: out.routing.facility },
      { office: '0be1dc9b-5c8b-4d20-a88c-08cafc71c99a', facility: 'd89c1114-eddc-4dca-8352-4d2105c876f8' },
    );
    assert.ok(Array.isArray(out.warnings));
  });

  it('reports an invalid record (no office) with field and message, exit 1', () => {
    const r = run(['map', '--input', liveBirth, '--json']);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'invalid');
    assert.equal(out.errors[0].field, 'createdAtLocation');
  });

  it('reports a fetal death as skipped with its reason, exit 0', () => {
    const r = run(['map', '--input', fixture('fhir/bfdr/Bundle-bundle-provider-fetal-death-not-named.json'), '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'skipped');
    assert.match(out.reason, /fetal death/);
  });

  it('says, when a lone patient shows no event, that the input lacks its context and how to give it', () => {
    const child = fileURLToPath(
      new URL('../../examples/demo/fhir/Patient-patient-child-babyg-quinn.json', import.meta.url),
    );
    const r = run(['map', '--input', child, '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'skipped');
    assert.match(out.reason, /no birth evidence/);
    assert.match(out.hint, /^the input holds only the Patient, not the records the mappings find the event in/);
    assert.match(out.hint, /give a Bundle with them .*map --ref Patient\/<id> --config FILE$/);
    const plain = run(['map', '--input', child, '--config', config]);
    assert.match(plain.stdout, /^SKIPPED .*\n {2}hint: the input holds only the Patient/);
    // A bundle that holds the context and still shows no event gets no such hint.
    const fetal = run([
      'map',
      '--input',
      fixture('fhir/bfdr/Bundle-bundle-provider-fetal-death-not-named.json'),
      '--json',
    ]);
    assert.equal(JSON.parse(fetal.stdout).hint, undefined);
  });

  it('uses only the mapping given with --mapping', () => {
    const synthea = fixture('fhir/synthea/Garrett_Thompson_5a72e290-8102-4c8a-84f7-f838387508b2.json');
    const birth = fileURLToPath(new URL('../../mappings/birth.fhir.yaml', import.meta.url));
    const r = run(['map', '--input', synthea, '--mapping', birth, '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).eventType, 'birth');
  });

  it('prints a readable report without --json', () => {
    const r = run(['map', '--input', fixture('opencrvs-v1/v1.8.0-to-v1.9.x__create-death-notification-min.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^MAPPED death \(death\.fhir, Patient\//);
    assert.match(r.stdout, /office: +0be1dc9b-5c8b-4d20-a88c-08cafc71c99a/);
    assert.match(r.stdout, /eventDetails\.date = "2021-11-12"/);
  });

  it("with --source, maps in that source's time zone; sources in two zones without it get a note", () => {
    // A death at 22:30 UTC: the 7th in Lusaka (UTC+2), the 6th in Accra (UTC+0).
    const death = join(dir, 'death-utc.json');
    writeFileSync(
      death,
      JSON.stringify({
        resourceType: 'Patient',
        id: 'late',
        name: [{ given: ['Adam'], family: 'John' }],
        gender: 'male',
        birthDate: '2004-08-12',
        deceasedDateTime: '2024-03-06T22:30:00Z',
      }),
    );
    const zoned = join(dir, 'two-zones.yaml');
    writeFileSync(
      zoned,
      `${readFileSync(config, 'utf8')}sources:
  - { id: lusaka, kind: fhir, baseUrl: http://emr-a.example/fhir, timeZone: Africa/Lusaka }
  - { id: accra, kind: fhir, baseUrl: http://emr-b.example/fhir, timeZone: Africa/Accra }
`,
    );
    const dateOf = (args: string[]) => {
      const r = run(['map', '--input', death, '--config', zoned, '--mapping', 'death.fhir', '--json', ...args]);
      return { date: JSON.parse(r.stdout).declaration?.['eventDetails.date'], stderr: r.stderr, code: r.code };
    };
    assert.equal(dateOf(['--source', 'lusaka']).date, '2024-03-07');
    assert.equal(dateOf(['--source', 'accra']).date, '2024-03-06');
    const plain = dateOf([]);
    assert.match(plain.stderr, /different time zones \(Africa\/Lusaka, Africa\/Accra\).*--source ID/);
    const unknown = run(['map', '--input', death, '--config', zoned, '--source', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--source nope: no such source in the configuration \(lusaka, accra\)/);
  });

  it("answers an event dated before the configured source's go-live as serve records it: skipped", () => {
    // A VRDR death whose death-date observation (what OpenCRVS is told) is before the go-live, the
    // patient's deceasedDateTime after it: the go-live follows the date the mapping sends.
    const death = join(dir, 'death-vrdr.json');
    const patient = { resourceType: 'Patient', id: 'vrdr', gender: 'male', birthDate: '1950-01-01' };
    writeFileSync(
      death,
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          { ...patient, name: [{ given: ['Adam'], family: 'John' }], deceasedDateTime: '2025-03-01' },
          {
            resourceType: 'Observation',
            id: 'vrdr-death-date',
            status: 'final',
            subject: { reference: 'Patient/vrdr' },
            code: { coding: [{ system: 'http://loinc.org', code: '81956-5' }] },
            valueDateTime: '2024-06-02T10:00:00Z',
          },
        ].map((resource) => ({ resource })),
      }),
    );
    const source = (id: string, since: string) =>
      `  - { id: ${id}, kind: fhir, baseUrl: http://${id}.example/fhir, poll: { since: '${since}' } }\n`;
    const live = join(dir, 'live.yaml');
    writeFileSync(live, `${readFileSync(config, 'utf8')}sources:\n${source('emr', '2025-01-01')}`);
    const skipped = run(['map', '--input', death, '--config', live, '--json']);
    assert.equal(skipped.code, 0, skipped.stderr);
    const out = JSON.parse(skipped.stdout);
    assert.equal(out.status, 'skipped');
    assert.equal(out.reason, "died before the source's go-live 2025-01-01: registered otherwise");
    assert.match(out.hint, /^serve records it so and sends nothing/);
    const birth = run(['map', '--input', liveBirth, '--config', live]);
    assert.match(birth.stdout, /^SKIPPED \(birth\.fhir, .*\): born before the source's go-live 2025-01-01/);

    // Of two sources, without --source: the mapping's answer, and a note naming the one that skips it.
    const two = join(dir, 'two-go-lives.yaml');
    writeFileSync(
      two,
      `${readFileSync(config, 'utf8')}sources:\n${source('early', '2019-01-01')}${source('late', '2025-01-01')}`,
    );
    const noted = run(['map', '--input', death, '--config', two, '--json']);
    assert.equal(JSON.parse(noted.stdout).status, 'mapped');
    assert.match(noted.stderr, /^Note: late \(go-live 2025-01-01\) would not send this death: dated 2024-06-02/m);
    assert.doesNotMatch(noted.stderr, /early/);
    assert.equal(
      JSON.parse(run(['map', '--input', death, '--config', two, '--source', 'late', '--json']).stdout).status,
      'skipped',
    );
  });

  it('exits 2 on usage, input and mapping load errors', () => {
    assert.equal(run(['map', '--json']).code, 2);
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, 'hello');
    assert.equal(run(['map', '--input', notJson]).code, 2);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      "eventType: birth\nsource: fhir\nsubject: { type: Patient }\ntrigger: { when: [{ evidence: x, if: 'true' }] }\nfields:\n  child.nmae: '%subject.name'\n",
    );
    const r = run(['map', '--input', liveBirth, '--mapping', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:6: fields\['child\.nmae'\]: unknown field id/);
    // --json promises one JSON object on standard output: a problem is one too.
    const json = run(['map', '--input', notJson, '--json']);
    assert.equal(json.code, 2);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout)), ['status', 'error']);
    assert.equal(JSON.parse(json.stdout).status, 'error');
  });

  it('with --json, prints a configuration error as the one JSON object too, still exit 2', () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(
      broken,
      'opencrvs:\n  domain: farajaland.example.org\n  clientId: bridge\n  clientSecret: s3cret\nhttp:\n  port: many\n',
    );
    for (const file of [broken, join(dir, 'no-such-config.yaml')]) {
      const r = run(['map', '--input', liveBirth, '--config', file, '--json']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^configuration error: /, 'the human message stays on standard error');
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual(Object.keys(out), ['status', 'error'], r.stdout);
      assert.equal(out.status, 'error');
      assert.equal(out.error, r.stderr.trim(), 'the same message');
      assert.doesNotMatch(r.stdout, /s3cret/);
    }
    // Without --json, standard output stays empty.
    const plain = run(['map', '--input', liveBirth, '--config', broken]);
    assert.equal(plain.code, 2);
    assert.equal(plain.stdout, '');
  });

  it('takes a shipped mapping by its name, as sources[].mappings do', () => {
    const r = run(['map', '--input', liveBirth, '--mapping', 'birth.fhir', '--json']);
    // Mapped by it (invalid only for want of an office: no --config, so no routing).
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).mappingId, 'birth.fhir');
  });
});

describe("a site's own mapping, named by path in the config", () => {
  const site = join(dir, 'site');
  mkdirSync(join(site, 'mappings'), { recursive: true });
  const shipped = readFileSync(new URL('../../mappings/birth.fhir.yaml', import.meta.url), 'utf8');
  // The site's copy: its own id, and the birth weight left out, so its output differs from the shipped one.
  const own = shipped
    .replace(/^id: birth\.fhir$/m, 'id: site.birth')
    .replace(/^ {2}child\.weightAtBirth:\n(?: {4}.*\n)+/m, '');
  writeFileSync(join(site, 'mappings', 'birth.yaml'), own);
  const siteConfig = join(site, 'bridge.yaml');
  writeFileSync(
    siteConfig,
    `opencrvs: { domain: farajaland.example.org, clientId: bridge, clientSecret: s3cret }
routing: { defaultOffice: 0be1dc9b-5c8b-4d20-a88c-08cafc71c99a }
sources:
  - id: emr
    kind: fhir
    baseUrl: https://emr.example.org/fhir
    mappings: [./mappings/birth.yaml, death.fhir]
`,
  );

  it('is checked by validate --config, from any working directory', () => {
    const r = run(['validate', '--config', siteConfig]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok +site\.birth \(\S+mappings\/birth\.yaml; birth from fhir/m);
    assert.match(r.stdout, /^ok +death\.fhir/m);
  });

  it('kept under the shipped id beside the shipped file, is refused by validate as serve refuses it', () => {
    const copy = join(site, 'mappings', 'birth-same-id.yaml');
    writeFileSync(copy, shipped);
    const sameId = join(site, 'same-id.yaml');
    writeFileSync(
      sameId,
      readFileSync(siteConfig, 'utf8').replace(
        'mappings: [./mappings/birth.yaml, death.fhir]',
        'mappings: [./mappings/birth-same-id.yaml, birth.fhir, death.fhir]',
      ),
    );
    const r = run(['validate', '--config', sameId]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    // Each file alone is fine (two ok lines for birth.fhir, told apart by their paths)…
    assert.match(r.stdout, /^ok +birth\.fhir \(\S+birth-same-id\.yaml;/m);
    // …but not the set serve loads for the source.
    assert.match(
      r.stdout,
      /^error sources\[emr\]\.mappings: .*birth\.fhir\.yaml: id: mapping id birth\.fhir is already used by \S+birth-same-id\.yaml/m,
    );
  });

  it('is what map --config dry-runs (as serve would send), not the shipped one', () => {
    const r = run(['map', '--input', liveBirth, '--config', siteConfig, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.mappingId, 'site.birth');
    assert.equal(out.declaration['child.weightAtBirth'], undefined, "the site's copy sends no weight");
  });
});

describe('opencrvs-bridge validate', () => {
  it('without a config, checks every shipped mapping, one line each, and says a site copy needs --config', () => {
    const r = run(['validate']);
    assert.equal(r.code, 0, r.stderr);
    const [note, ...lines] = r.stdout.trim().split('\n');
    assert.match(note ?? '', /^note +no configuration .*checking the shipped mappings.*checked with --config/);
    assert.equal(lines.length, 4);
    assert.match(
      lines[0] ?? '',
      /^ok +birth\.dhis2 \(\S+birth\.dhis2\.yaml; birth from dhis2, OpenCRVS farajaland v2\.0\)/,
    );
    assert.match(
      lines[1] ?? '',
      /^ok +birth\.fhir \(\S+birth\.fhir\.yaml; birth from fhir, OpenCRVS farajaland v2\.0\)/,
    );
    assert.match(lines[2] ?? '', /^ok +death\.dhis2/);
    assert.match(lines[3] ?? '', /^ok +death\.fhir/);
  });

  it('exits 2 when the config names a mapping that does not exist', () => {
    const withSource = join(dir, 'with-source.yaml');
    writeFileSync(
      withSource,
      `opencrvs: { domain: farajaland.example.org, clientId: bridge, clientSecret: s3cret }
sources:
  - id: emr
    kind: fhir
    baseUrl: https://emr.example.org/fhir
    mappings: [birth.fhir, burial.fhir]
`,
    );
    const r = run(['validate', '--config', withSource]);
    assert.equal(r.code, 2);
    // Refused with the configuration, by key path, before any mapping is compiled.
    assert.match(
      r.stdout + r.stderr,
      /sources\[0\]\.mappings\[1\]: no mapping named "burial\.fhir" \(there are: .*birth\.fhir/,
    );
  });

  it('exits 2 when a source names a mapping written for the other kind of source, as sync and serve refuse it', () => {
    const mixed = join(dir, 'mixed-kinds.yaml');
    writeFileSync(
      mixed,
      `opencrvs: { domain: farajaland.example.org, clientId: bridge, clientSecret: s3cret }
sources:
  - id: dhis2-births
    kind: dhis2
    baseUrl: https://dhis2.example.org
    auth: { type: basic, username: admin, password: district }
    mappings: [birth.fhir]
`,
    );
    const r = run(['validate', '--config', mixed]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^error .*birth\.fhir\.yaml: source: a mapping for fhir sources, named by source dhis2-births \(kind dhis2\): name birth\.dhis2, death\.dhis2/m,
    );
  });
});
