// The shipped birth mappings on real fixtures (test/fixtures/*/PROVENANCE.md), changed where a test says:
// the type of birth when the EMR gives a count as a Quantity.
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
// HL7 BFDR's Baby G Quinn: multipleBirthInteger 1, plurality 2 (73773-4 on the mother), 2500 g.
const BFDR = 'fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json';

describe('the type of birth', () => {
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
