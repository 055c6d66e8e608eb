// Configurations that notify a record twice or by the order of a list, refused by the commands that load
// the sources' mappings (validate, sync, doctor) with the key paths to edit. Nothing needs to answer: each
// command stops before it calls OpenCRVS or a source.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packagePaths } from '../../src/config/index.js';
import { closedPort } from '../support/ports.js';
import { runCliSync } from './helpers/cli-sync.js';

let dir: string;
let port: number;

function writeConfig(name: string, sources: unknown[]): string {
  const file = join(dir, name);
  const config = {
    opencrvs: {
      tokenUrl: `http://127.0.0.1:${port}/auth/token`,
      eventsUrl: `http://127.0.0.1:${port}/events`,
      clientId: 'bridge',
      clientSecret: 'bridge-secret-0001',
    },
    store: { path: join(dir, `${name}.db`) },
    sources,
    routing: { defaultOffice: 'LHUYvwY2Aq1' },
  };
  writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is YAML
  return file;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'source-overlap-'));
  port = await closedPort();
  // A site's adapted copy of the shipped birth mapping, under its own id (one more birth-weight code).
  const shipped = readFileSync(join(packagePaths.mappings, 'birth.fhir.yaml'), 'utf8');
  writeFileSync(join(dir, 'birth.yaml'), shipped.replace(/^id: birth\.fhir$/m, 'id: birth.site'));
  // The shipped DHIS2 birth mapping for a second programme of the same server (an immunisation programme
  // that enrolls the same children).
  const dhis2Birth = readFileSync(join(packagePaths.mappings, 'birth.dhis2.yaml'), 'utf8');
  writeFileSync(
    join(dir, 'birth-epi.yaml'),
    dhis2Birth
      .replace(/^id: birth\.dhis2$/m, 'id: birth.epi')
      .replace('program: [IpHINAT79UW]', 'program: [SbxEpiProg1]'),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('two mappings of one event type on one source', () => {
  it('are refused by validate, sync and doctor, naming sources[i].mappings and both files', () => {
    const config = writeConfig('two-births.yaml', [
      {
        id: 'ndola-emr',
        kind: 'fhir',
        baseUrl: `http://127.0.0.1:${port}/fhir`,
        mappings: ['./birth.yaml', 'birth.fhir'],
      },
    ]);
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 2, validate.stdout + validate.stderr);
    assert.match(
      validate.stdout,
      /error sources\[0\]\.mappings: names two birth mappings, birth\.site \(.*birth\.yaml\) and birth\.fhir \(.*birth\.fhir\.yaml\)/,
    );
    assert.match(validate.stdout, /Edit one mapping/);

    const sync = runCliSync(['sync', '--once', '--config', config]);
    assert.equal(sync.code, 2, sync.stdout + sync.stderr);
    assert.match(sync.stderr, /configuration error: sources\[0\]\.mappings: names two birth mappings/);

    const doctor = runCliSync(['doctor', '--config', config]);
    assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /✖ sources: sources\[0\]\.mappings: names two birth mappings/);
  });

  it('a birth and a death mapping on one source pass', () => {
    const config = writeConfig('one-each.yaml', [
      {
        id: 'ndola-emr',
        kind: 'fhir',
        baseUrl: `http://127.0.0.1:${port}/fhir`,
        mappings: ['./birth.yaml', 'death.fhir'],
      },
    ]);
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);
  });
});

describe('two sources reading the same records', () => {
  const fhir = (id: string, path: string, mappings?: string[]) => ({
    id,
    kind: 'fhir',
    baseUrl: `http://127.0.0.1:${port}${path}`,
    ...(mappings ? { mappings } : {}),
  });
  const dhis2 = (id: string, baseUrl: string, settings: Record<string, unknown>, mappings?: string[]) => ({
    id,
    kind: 'dhis2',
    baseUrl: `http://127.0.0.1:${port}${baseUrl}`,
    auth: { type: 'pat', token: 'd2pat_0123456789abcdef' },
    dhis2: settings,
    ...(mappings ? { mappings } : {}),
  });

  it('one FHIR server, both mapping births: refused with both key paths by validate, sync and doctor', () => {
    // The same base URL written twice differently: the host's case and a trailing slash change nothing.
    const config = writeConfig('same-emr.yaml', [
      { ...fhir('ndola-emr', ''), baseUrl: `http://localhost:${port}/fhir` },
      { ...fhir('ndola-emr-2', ''), baseUrl: `http://LocalHost:${port}/fhir/` },
    ]);
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 2, validate.stdout + validate.stderr);
    assert.match(
      validate.stdout,
      /error sources\[1\]\.baseUrl: reads the same FHIR server as sources\[0\] \("ndola-emr", sources\[0\]\.baseUrl\) and both map birth and death events: .*register every one twice/,
    );
    const sync = runCliSync(['sync', '--once', '--config', config]);
    assert.equal(sync.code, 2, sync.stdout + sync.stderr);
    assert.match(sync.stderr, /configuration error: sources\[1\]\.baseUrl: reads the same FHIR server as sources\[0\]/);
    const doctor = runCliSync(['doctor', '--config', config]);
    assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /✖ sources: sources\[1\]\.baseUrl: reads the same FHIR server/);
  });

  it('one FHIR server under an address the other lists in alsoKnownAs, both mapping births: refused', () => {
    const config = writeConfig('aliased-emr.yaml', [
      { ...fhir('ndola-emr', '/fhir'), alsoKnownAs: [`http://localhost:${port}/fhir`] },
      { ...fhir('ndola-emr-2', ''), baseUrl: `http://LOCALHOST:${port}/fhir/` },
    ]);
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 2, validate.stdout + validate.stderr);
    assert.match(
      validate.stdout,
      // The key that showed them one server, not baseUrl, which differs.
      /error sources\[1\]\.baseUrl: reads the same FHIR server as sources\[0\] \("ndola-emr", sources\[0\]\.alsoKnownAs\[0\]\)/,
    );
  });

  it('two EMRs that both write under one internal name (a docker-compose default) are two servers: pass', () => {
    const internal = 'http://openmrs:8080/openmrs/ws/fhir2/R4';
    const config = writeConfig('shared-alias.yaml', [
      { ...fhir('ndola-emr', '/ndola/fhir'), alsoKnownAs: [internal] },
      { ...fhir('kabwe-emr', '/kabwe/fhir'), alsoKnownAs: [internal] },
    ]);
    const run = runCliSync(['validate', '--config', config]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
  });

  it('one FHIR server split by event type, or two servers, pass', () => {
    const split = writeConfig('split.yaml', [
      fhir('ndola-births', '/fhir', ['birth.fhir']),
      fhir('ndola-deaths', '/fhir', ['death.fhir']),
    ]);
    const splitRun = runCliSync(['validate', '--config', split]);
    assert.equal(splitRun.code, 0, splitRun.stdout + splitRun.stderr);
    const two = writeConfig('two-servers.yaml', [fhir('ndola-emr', '/ndola/fhir'), fhir('kabwe-emr', '/kabwe/fhir')]);
    const twoRun = runCliSync(['validate', '--config', two]);
    assert.equal(twoRun.code, 0, twoRun.stdout + twoRun.stderr);
  });

  it('one DHIS2 programme over the same org units is refused; other programmes or disjoint org units pass', () => {
    const same = writeConfig('same-programme.yaml', [
      dhis2('hmis-a', '', { program: 'IpHINAT79UW', orgUnits: ['ImspTQPwCqd'] }),
      dhis2('hmis-b', '/api', { program: 'IpHINAT79UW' }),
    ]);
    const refused = runCliSync(['validate', '--config', same]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(
      refused.stdout,
      /error sources\[1\]\.baseUrl: reads the same DHIS2 programme IpHINAT79UW as sources\[0\]/,
    );
    // The usual remedy for one programme, a server split by district, is said first.
    assert.match(
      refused.stdout,
      /register every one twice\. Give them disjoint org units \(sources\[0\]\.dhis2\.orgUnits, sources\[1\]\.dhis2\.orgUnits: .*\), map birth in one of them only \(sources\[0\]\.mappings, sources\[1\]\.mappings\), or make them one source/,
    );

    const districts = writeConfig('districts.yaml', [
      dhis2('hmis-north', '', { program: 'IpHINAT79UW', orgUnits: ['ImspTQPwCqd'] }),
      dhis2('hmis-south', '/api', { program: 'IpHINAT79UW', orgUnits: ['O6uvpzGd5pu'] }),
    ]);
    const split = runCliSync(['validate', '--config', districts]);
    assert.equal(split.code, 0, split.stdout + split.stderr);
    const programmes = writeConfig('programmes.yaml', [
      dhis2('hmis-births', '', { program: 'IpHINAT79UW' }),
      // Each takes the shipped mapping of its programme (birth.dhis2, death.dhis2): no mappings given.
      dhis2('hmis-other', '', { program: 'SbxDthProg1' }),
    ]);
    const other = runCliSync(['validate', '--config', programmes]);
    assert.equal(other.code, 0, other.stdout + other.stderr);
  });

  it('two DHIS2 programmes of one server, both mapping births: refused by validate, sync and doctor, whatever their org units', () => {
    // A tracked entity is one record across programmes: a child enrolled in both would be sent by each.
    const config = writeConfig('two-birth-programmes.yaml', [
      dhis2('hmis-births', '', { program: 'IpHINAT79UW', orgUnits: ['ImspTQPwCqd'] }, ['birth.dhis2']),
      dhis2('hmis-epi', '/api', { program: 'SbxEpiProg1', orgUnits: ['O6uvpzGd5pu'] }, ['./birth-epi.yaml']),
    ]);
    const said =
      /sources\[1\]\.baseUrl: reads the same DHIS2 server as sources\[0\] \("hmis-births", sources\[0\]\.baseUrl\) and both map birth events, of the tracked entities of sources\[0\]\.dhis2\.program IpHINAT79UW and sources\[1\]\.dhis2\.program SbxEpiProg1: a tracked entity is one record in every programme .*register it twice\. Map birth in one of them only \(sources\[0\]\.mappings, sources\[1\]\.mappings\)/;
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 2, validate.stdout + validate.stderr);
    assert.match(validate.stdout, new RegExp(`error ${said.source}`));
    const sync = runCliSync(['sync', '--once', '--config', config]);
    assert.equal(sync.code, 2, sync.stdout + sync.stderr);
    assert.match(sync.stderr, new RegExp(`configuration error: ${said.source}`));
    const doctor = runCliSync(['doctor', '--config', config]);
    assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, new RegExp(`✖ sources: ${said.source}`));
  });

  it('two DHIS2 sources of one server filtered to different tracked entity types, both mapping births: pass', () => {
    // A tracked entity has one type: the two cannot read the same one, whatever their programmes.
    const typed = (program: string, trackedEntityType?: string) => ({
      program,
      ...(trackedEntityType ? { trackedEntityType } : {}),
    });
    const config = writeConfig('two-types.yaml', [
      dhis2('hmis-births', '', typed('IpHINAT79UW', 'nEenWmSyUEp'), ['birth.dhis2']),
      dhis2('hmis-epi', '/api', typed('SbxEpiProg1', 'MotherTEtyp'), ['./birth-epi.yaml']),
    ]);
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);

    // One source without the filter reads every type, and the same type is the same records: refused.
    for (const [name, epiType] of [
      ['one-type-unset.yaml', undefined],
      ['same-type.yaml', 'nEenWmSyUEp'],
    ] as const) {
      const refused = writeConfig(name, [
        dhis2('hmis-births', '', typed('IpHINAT79UW', 'nEenWmSyUEp'), ['birth.dhis2']),
        dhis2('hmis-epi', '/api', typed('SbxEpiProg1', epiType), ['./birth-epi.yaml']),
      ]);
      const run = runCliSync(['validate', '--config', refused]);
      assert.equal(run.code, 2, `${name}: ${run.stdout}${run.stderr}`);
      assert.match(run.stdout, /error sources\[1\]\.baseUrl: reads the same DHIS2 server as sources\[0\]/);
    }
  });

  it('two DHIS2 programmes of one server each given both shipped mappings notify each its own event type: pass', () => {
    // birth.dhis2 tests the Child Programme, death.dhis2 the death programme: each source can match one.
    const config = writeConfig('programmes-both-mappings.yaml', [
      dhis2('hmis-births', '', { program: 'IpHINAT79UW' }, ['birth.dhis2', 'death.dhis2']),
      dhis2('hmis-deaths', '', { program: 'SbxDthProg1' }, ['birth.dhis2', 'death.dhis2']),
    ]);
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);
    assert.match(validate.stdout, /warn {2}sources\[1\]\.mappings\[0\] \(birth\.dhis2\) tests codes\.program/);
  });
});

describe('a DHIS2 source whose mappings read another programme', () => {
  const source = (mappings: string[]) => ({
    id: 'ndola-hmis',
    kind: 'dhis2',
    baseUrl: `http://127.0.0.1:${port}`,
    auth: { type: 'pat', token: 'd2pat_0123456789abcdef' },
    dhis2: { program: 'SbxDthProg1' },
    mappings,
  });

  it('none of them: warned by validate and doctor, naming the mapping and the programme', () => {
    const config = writeConfig('other-programme.yaml', [source(['birth.dhis2'])]);
    const said =
      /no mapping of source "ndola-hmis" seems able to match sources\[0\]\.dhis2\.program SbxDthProg1: sources\[0\]\.mappings\[0\] \(birth\.dhis2\) tests codes\.program \[IpHINAT79UW\]/;
    // A warning, not a refusal: the reading of a trigger cannot follow every FHIRPath form, and a
    // configuration that works would stop at start. It used to pass in silence.
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);
    assert.match(validate.stdout, new RegExp(`warn {2}${said.source}`));
    const doctor = runCliSync(['doctor', '--config', config]);
    assert.match(doctor.stdout, new RegExp(`! mappings ndola-hmis: ${said.source}`));
  });

  it('some of them: validate passes with a warning naming sources[i].mappings[j]', () => {
    const config = writeConfig('some-other-programme.yaml', [source(['birth.dhis2', 'death.dhis2'])]);
    const validate = runCliSync(['validate', '--config', config]);
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);
    assert.match(
      validate.stdout,
      /warn {2}sources\[0\]\.mappings\[0\] \(birth\.dhis2\) tests codes\.program \[IpHINAT79UW\], not sources\[0\]\.dhis2\.program SbxDthProg1/,
    );
  });
});
