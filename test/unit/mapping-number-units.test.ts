// A NUMBER field filled by the default `number` (or `integer`) conversion from a Quantity that carries a
// unit: taking its value would send a birth weight of 2500 g as 2500 to a field in kg.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadMappings, type MapResult, mapInput } from '../../src/mapping/index.js';
import { applyTransform } from '../../src/mapping/transforms/index.js';
import { ANY_PATIENT_BIRTH, mappingFiles } from './mapping-files.js';

const { write } = mappingFiles('number-units');
const routing = { defaultOffice: 'office-1', facilities: {} };

function birth(weight: Record<string, unknown>) {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      { resource: { resourceType: 'Patient', id: 'c1', birthDate: '2024-05-14', name: [{ given: ['Amani'] }] } },
      {
        resource: {
          resourceType: 'Observation',
          id: 'w1',
          status: 'final',
          subject: { reference: 'Patient/c1' },
          code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] },
          ...weight,
        },
      },
    ],
  };
}

describe('a Quantity with a unit given to number or integer', () => {
  const set = loadMappings({
    files: [
      write(`${ANY_PATIENT_BIRTH}context:
  observations:
    search: Observation
    params: { subject: '{%subjectRef}' }
fields:
  child.name: '%subject.name'
  child.weightAtBirth: "%observations.where(code.coding.code = '8339-4').value"
`),
    ],
    routing,
  });

  it('makes the record invalid, naming the field, the unit and as: kilograms, not the value', async () => {
    const r: MapResult = await mapInput(set, birth({ valueQuantity: { value: 2517, unit: 'g', code: 'g' } }));
    assert.equal(r.status, 'invalid', JSON.stringify(r));
    assert.ok(r.status === 'invalid');
    const [error] = r.errors;
    assert.equal(error?.field, 'child.weightAtBirth');
    assert.match(error?.message ?? '', /Quantity in 'g'.*as: number ignores units: use as: kilograms/);
    assert.ok(!error?.message.includes('2517'), error?.message);
  });

  it('names the unit text when there is no code, and suggests a conversion for a unit that is no mass', async () => {
    const r = await mapInput(set, birth({ valueQuantity: { value: 51, unit: 'cm' } }));
    assert.ok(r.status === 'invalid', JSON.stringify(r));
    assert.match(r.errors[0]?.message ?? '', /Quantity in 'cm', and as: number ignores units: use the conversion/);
  });

  it('still takes a Quantity without a unit, a dimensionless one, or a plain number', async () => {
    for (const weight of [
      { valueQuantity: { value: 3.1 } },
      { valueQuantity: { value: 3.1, system: 'http://unitsofmeasure.org', code: '1' } },
      { valueInteger: 3 },
    ]) {
      const r = await mapInput(set, birth(weight));
      assert.ok(r.status === 'mapped', JSON.stringify(r));
      assert.equal(r.declaration['child.weightAtBirth'], 'valueInteger' in weight ? 3 : 3.1);
    }
  });

  it('is an error for integer too, named as such', () => {
    const out = applyTransform('integer', [{ value: 2, unit: 'wk' }], {});
    assert.ok('error' in out);
    assert.match(out.error, /Quantity in 'wk', and as: integer ignores units/);
    assert.deepEqual(applyTransform('integer', [{ value: 2, code: '{births}' }], {}), { value: 2 });
  });
});
