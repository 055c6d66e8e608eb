// A NUMBER field filled by the default `number` (or `integer`) conversion from a Quantity that carries a
// unit: taking its value would send a birth weight of 2500 g as 2500 to a field in kg. And a Quantity with
// a comparator, which is a bound, not a value, whatever reads it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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

describe('a Quantity with a comparator', () => {
  const bound = (field: string) =>
    `${field}: left out: the source gives a bound (a Quantity with a comparator), not a value`;

  it('is left out of a number or integer field with a warning naming the field, with a unit or without', async () => {
    for (const as of ['number', 'integer']) {
      const set = loadMappings({
        files: [
          write(`${ANY_PATIENT_BIRTH}context:
  observations:
    search: Observation
    params: { subject: '{%subjectRef}' }
fields:
  child.name: '%subject.name'
  child.weightAtBirth: { from: "%observations.where(code.coding.code = '8339-4').value", as: ${as} }
`),
        ],
        routing,
      });
      // With a unit the record would be invalid without the comparator: the bound is said first.
      for (const valueQuantity of [
        { value: 3, comparator: '>' },
        { value: 2517, comparator: '<', code: 'g' },
      ]) {
        const r = await mapInput(set, birth({ valueQuantity }));
        assert.ok(r.status === 'mapped', JSON.stringify(r));
        assert.equal(r.declaration['child.weightAtBirth'], undefined);
        const warnings = r.warnings.filter((w) => w.startsWith('child.'));
        assert.deepEqual(warnings, [bound('child.weightAtBirth')], `${as} ${JSON.stringify(valueQuantity)}`);
      }
      const exact = await mapInput(set, birth({ valueQuantity: { value: 3 } }));
      assert.ok(exact.status === 'mapped', JSON.stringify(exact));
      assert.equal(exact.declaration['child.weightAtBirth'], 3);
      assert.deepEqual(
        exact.warnings.filter((w) => w.startsWith('child.')),
        [],
      );
    }
  });

  it("is no age: the deceased's age '>= 90 a' gives way to the years between the dates", async () => {
    type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
    const death = JSON.parse(
      readFileSync(new URL('../fixtures/fhir/openmrs/openmrs-death-bundle.json', import.meta.url), 'utf8'),
    ) as Entries;
    const deceased = death.entry.find((e) => e.resource.resourceType === 'Patient')?.resource;
    assert.ok(deceased);
    deceased.birthDate = '1930'; // an estimated year: the age is sent instead of a date
    const age = (valueQuantity: Record<string, unknown>) => ({
      resource: {
        resourceType: 'Observation',
        id: 'age',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '39016-1' }] },
        subject: { reference: `Patient/${String(deceased.id)}` },
        valueQuantity: { system: 'http://unitsofmeasure.org', code: 'a', ...valueQuantity },
      },
    });
    const deaths = loadMappings({ names: ['death.fhir'], routing });
    death.entry.push(age({ value: 90 }));
    const exact = await mapInput(deaths, death);
    assert.ok(exact.status === 'mapped', JSON.stringify(exact));
    assert.deepEqual(exact.declaration['deceased.age'], { age: 90, asOfDateRef: 'eventDetails.date' });
    death.entry[death.entry.length - 1] = age({ value: 90, comparator: '>=' });
    const r = await mapInput(deaths, death);
    assert.ok(r.status === 'mapped', JSON.stringify(r));
    assert.deepEqual(r.declaration['deceased.age'], { age: 2024 - 1930, asOfDateRef: 'eventDetails.date' });
  });
});

describe("a VRDR death's age and intervals, by their unit", () => {
  type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
  const deaths = loadMappings({ names: ['death.fhir'], routing });
  const SNOMED = 'http://snomed.info/sct';
  // The HL7 VRDR example: died 2020-11-12, aged 42 ('a'); a birth date of a year alone (an estimate) has
  // the age sent instead of it, from the age observation, else the years between the dates. The example
  // gives its date of death only in the partial-date extension, which the years are not counted from: the
  // decedent's deceasedDateTime gives it whole.
  const vrdr = (birthYear: string) => {
    const bundle = JSON.parse(
      readFileSync(
        new URL('../fixtures/fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json', import.meta.url),
        'utf8',
      ),
    ) as Entries;
    const byId = (id: string) => {
      const found = bundle.entry.find((e) => e.resource.id === id)?.resource;
      assert.ok(found, id);
      return found;
    };
    byId('Decedent-Example1').birthDate = birthYear;
    byId('Decedent-Example1').deceasedDateTime = '2020-11-12T16:39:40-05:00';
    return { bundle, age: byId('DecedentAge-Example1'), line1: byId('CauseOfDeathPart1-Example1') };
  };

  it('leaves out an age without a unit: the years between the dates are sent, else a warning naming the field', async () => {
    for (const valueQuantity of [{ value: 6 }, { value: 6, system: 'http://unitsofmeasure.org', code: '1' }]) {
      const { bundle, age } = vrdr('1978');
      age.valueQuantity = valueQuantity; // an infant's 6 (days? months?) whose unit was dropped
      const r = await mapInput(deaths, bundle);
      assert.ok(r.status === 'mapped', JSON.stringify(r));
      assert.deepEqual(
        r.declaration['deceased.age'],
        { age: 2020 - 1978, asOfDateRef: 'eventDetails.date' },
        JSON.stringify(valueQuantity),
      );
    }
    // With no dates to count from, the age is not sent at all, and the warning says why, without the value.
    const { bundle, age } = vrdr('1978');
    age.valueQuantity = { value: 6 };
    const decedent = bundle.entry.find((e) => e.resource.id === 'Decedent-Example1')?.resource;
    assert.ok(decedent);
    delete decedent.birthDate;
    const r = await mapInput(deaths, bundle);
    assert.ok(r.status === 'mapped', JSON.stringify(r));
    assert.equal(r.declaration['deceased.age'], undefined);
    assert.deepEqual(
      r.warnings.filter((w) => w.startsWith('deceased.age')),
      ['deceased.age: left out: the age has no unit (a, mo, wk, d, h, min)'],
    );
  });

  it('reads the unit text beside a code in another system (SNOMED CT year, month)', async () => {
    // Born 1970 by the estimate, the dates would say 50: the age observation is the one sent.
    for (const [valueQuantity, years] of [
      [{ value: 42, system: SNOMED, code: '258707000', unit: 'a' }, 42],
      [{ value: 42, system: SNOMED, code: '258707000', unit: 'years' }, 42],
      [{ value: 6, system: SNOMED, code: '258706009', unit: 'mo' }, 0],
    ] as const) {
      const { bundle, age } = vrdr('1970');
      age.valueQuantity = valueQuantity;
      const r = await mapInput(deaths, bundle);
      assert.ok(r.status === 'mapped', JSON.stringify(r));
      assert.deepEqual(r.declaration['deceased.age'], { age: years, asOfDateRef: 'eventDetails.date' });
    }
    // A UCUM code is still the unit, whatever the text beside it; one that is no duration is an error.
    const { bundle, age } = vrdr('1970');
    age.valueQuantity = { value: 42, system: 'http://unitsofmeasure.org', code: 'kg', unit: 'a' };
    const r = await mapInput(deaths, bundle);
    assert.ok(r.status === 'invalid', JSON.stringify(r));
    assert.equal(r.errors[0]?.field, 'deceased.age');
    assert.match(r.errors[0]?.message ?? '', /UCUM unit 'kg' is not a duration unit/);
  });

  it("reads an onset-to-death interval's unit text beside a code in another system (SNOMED CT hour)", async () => {
    const { bundle, line1 } = vrdr('1978-03-12');
    const components = line1.component as Array<Record<string, unknown>>;
    const interval = components.find((c) => JSON.stringify(c.code).includes('69440-6'));
    assert.ok(interval);
    delete interval.valueString; // "4 hours"
    interval.valueQuantity = { value: 4, system: SNOMED, code: '258702006', unit: 'h' };
    const r = await mapInput(deaths, bundle);
    assert.ok(r.status === 'mapped', JSON.stringify(r));
    assert.deepEqual(r.declaration['causeOfDeathDetails.causeOfDeathA.interval'], { numericValue: 4, unit: 'Hours' });
  });
});
