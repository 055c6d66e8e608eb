// EMAIL values: the bridge must refuse what OpenCRVS refuses (zod's pattern), or the NOTIFY fails after the
// create and the whole event with it; an address it would refuse is left out with a warning.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadMappings, type MapResult, mapInput } from '../../src/mapping/index.js';
import { fieldValueProblem, loadFormProfile } from '../../src/mapping/profile.js';
import { hasValidShape } from '../../src/sandbox/opencrvs/value-shapes.js';
import { ANY_PATIENT_BIRTH, mappingFiles } from './mapping-files.js';

const REFUSED = ['grace.john@clinic.c', 'a@b.c', 'jane@clinic.org.1', 'ja!ne@example.com', 'jane.@example.com'];
const ACCEPTED = ['jane.doe@example.com', "o'neil+birth@clinic-1.example.org", 'A_B@EXAMPLE.ORG'];

describe('an email address', () => {
  const field = loadFormProfile('farajaland', '2.0', 'birth').fields.get('informant.email');
  assert.ok(field);

  it('is checked by the bridge as the OpenCRVS simulator checks it (zod email)', () => {
    for (const value of [...REFUSED, ...ACCEPTED]) {
      const simulator = hasValidShape('EMAIL', value);
      assert.equal(simulator, ACCEPTED.includes(value), `simulator: ${value}`);
      assert.equal(fieldValueProblem(field, value) === undefined, simulator, `bridge: ${value}`);
    }
    assert.match(fieldValueProblem(field, 'a@b.c') ?? '', /not an email address OpenCRVS accepts/);
  });

  it('that OpenCRVS would refuse is left out with a warning, not the value, and the record maps', async () => {
    const { write } = mappingFiles('email');
    const set = loadMappings({
      files: [
        write(`${ANY_PATIENT_BIRTH}fields:
  child.name: '%subject.name'
  informant.email:
    from: ["%subject.telecom.where(system = 'email').value", "%subject.contact.telecom.where(system = 'email').value"]
`),
      ],
      routing: { defaultOffice: 'office-1', facilities: {} },
    });
    const patient = (email: string, fallback?: string) => ({
      resourceType: 'Patient',
      id: 'c1',
      name: [{ given: ['Amani'] }],
      telecom: [{ system: 'email', value: email }],
      ...(fallback ? { contact: [{ telecom: [{ system: 'email', value: fallback }] }] } : {}),
    });
    for (const email of REFUSED) {
      const r: MapResult = await mapInput(set, patient(email));
      assert.ok(r.status === 'mapped', JSON.stringify(r));
      assert.equal(r.declaration['informant.email'], undefined);
      const warning = r.warnings.find((w) => w.startsWith('informant.email'));
      assert.match(warning ?? '', /not an email address OpenCRVS accepts/);
      assert.ok(!warning?.includes(email), warning);
    }
    // The next source is tried, as for a partial date.
    const r = await mapInput(set, patient('a@b.c', 'jane.doe@example.com'));
    assert.ok(r.status === 'mapped', JSON.stringify(r));
    assert.equal(r.declaration['informant.email'], 'jane.doe@example.com');
  });
});
