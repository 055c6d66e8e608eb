// Configurations that notify a record by the order of a list, refused by the commands that load the
// sources' mappings (validate, sync, doctor) with the key path to edit. Nothing needs to answer: each
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
