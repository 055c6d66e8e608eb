// The shipped birth mappings on real fixtures (test/fixtures/*/PROVENANCE.md), changed where a test says:
// the type of birth when the EMR gives only the birth order (multipleBirthInteger) or a count as a
// Quantity.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadMappings, type MappedResult, type MapResult, mapInput } from '../../src/mapping/index.js';

type Resource = Record<string, unknown>;
type Bundle = { entry: Array<{ resource: Resource }> };

function fixture(path: string): Bundle {
  return JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8')) as Bundle;
}

function mapped(result: MapResult): MappedResult {
  assert.equal(result.status, 'mapped', JSON.stringify(result));
  return result as MappedResult;
}

function byId(bundle: Bundle, id: string): Resource {
  const found = bundle.entry.find((e) => e.resource.id === id)?.resource;
  assert.ok(found, `the fixture has ${id}`);
  return found;
}

const routing = { defaultOffice: 'default-office', facilities: {} };
const births = loadMappings({ names: ['birth.fhir'], routing });
const warningsOf = (r: MappedResult, field: string) => r.warnings.filter((w) => w.startsWith(`${field}:`));

// Synthea's Luigi Wiegand: a birth by its birth-day encounter, multipleBirthBoolean false (SINGLE).
const SYNTHEA = 'fhir/synthea/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json';
const LUIGI = '1ae0605d-e5b8-4d6d-a96d-c93dcbd57e06';
// HL7 BFDR's Baby G Quinn: multipleBirthInteger 1, plurality 2 (73773-4 on the mother), 2500 g.
const BFDR = 'fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json';

describe('the type of birth', () => {
  const withMultipleBirth = (multipleBirth: Resource) => {
    const bundle = fixture(SYNTHEA);
    const child = byId(bundle, LUIGI);
    assert.equal(child.multipleBirthBoolean, false);
    delete child.multipleBirthBoolean;
    Object.assign(child, multipleBirth);
    return bundle;
  };

  it('is not guessed from a birth order of 2 to 4 (twin? triplet?): left out, with a warning', async () => {
    for (const order of [2, 3, 4]) {
      const r = mapped(await mapInput(births, withMultipleBirth({ multipleBirthInteger: order })));
      assert.equal(r.declaration['child.birthType'], undefined, `order ${order}`);
      assert.equal(warningsOf(r, 'child.birthType').length, 1, r.warnings.join('\n'));
      assert.equal(r.declaration['child.dob'], '2020-10-20', 'the rest of the record is sent');
    }
  });

  it('is a higher multiple delivery for the fifth-born or later, one of at least five', async () => {
    for (const order of [5, 7, 12]) {
      const r = mapped(await mapInput(births, withMultipleBirth({ multipleBirthInteger: order })));
      assert.equal(r.declaration['child.birthType'], 'HIGHER_MULTIPLE_DELIVERY', `order ${order}`);
      assert.deepEqual(warningsOf(r, 'child.birthType'), []);
    }
  });

  it('says nothing for a first-born, which a single birth may carry too, and nothing is no warning', async () => {
    for (const multipleBirth of [{ multipleBirthInteger: 1 }, {}]) {
      const r = mapped(await mapInput(births, withMultipleBirth(multipleBirth)));
      assert.equal(r.declaration['child.birthType'], undefined);
      assert.deepEqual(warningsOf(r, 'child.birthType'), []);
    }
  });

  it('takes a multiple birth of unknown size (multipleBirthBoolean true) as one: left out, with a warning', async () => {
    const r = mapped(await mapInput(births, withMultipleBirth({ multipleBirthBoolean: true })));
    assert.equal(r.declaration['child.birthType'], undefined);
    assert.equal(warningsOf(r, 'child.birthType').length, 1);
  });

  it('takes the count of live births over the birth order (BFDR: plurality 2 beside order 1)', async () => {
    const bundle = fixture(BFDR);
    assert.equal(byId(bundle, 'patient-child-babyg-quinn').multipleBirthInteger, 1);
    byId(bundle, 'patient-child-babyg-quinn').multipleBirthInteger = 3; // the third-born of... twins?
    const r = mapped(await mapInput(births, bundle));
    assert.equal(r.declaration['child.birthType'], 'TWIN');
  });

  it("reads a count sent as a Quantity by its number, not by its UCUM unit '1'", async () => {
    const bundle = fixture(BFDR);
    const plurality = byId(bundle, 'observation-number-live-births-this-delivery-jada-ann-quinn');
    assert.equal(plurality.valueInteger, 2);
    delete plurality.valueInteger;
    plurality.valueQuantity = { value: 2, system: 'http://unitsofmeasure.org', code: '1' };
    assert.equal(mapped(await mapInput(births, bundle)).declaration['child.birthType'], 'TWIN');
    plurality.valueQuantity = { value: 3, unit: 'births', system: 'http://unitsofmeasure.org', code: '{births}' };
    assert.equal(mapped(await mapInput(births, bundle)).declaration['child.birthType'], 'TRIPLET');
  });
});
