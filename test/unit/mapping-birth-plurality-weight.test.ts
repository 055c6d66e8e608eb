// The shipped birth mappings on real fixtures (test/fixtures/*/PROVENANCE.md), changed where a test says:
// the type of birth when the EMR gives only the birth order (multipleBirthInteger) or a count as a
// Quantity, and birth weights in the wrong unit or out of all plausibility.
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

const BOUND = (field: string) =>
  `${field}: left out: the source gives a bound (a Quantity with a comparator), not a value`;
const NOT_A_COUNT = 'child.birthType: not a count of births in one delivery from 1 to 9: type of birth left out';

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
      // What an engineer needs to see in the ledger, not "value map plurality leaves this value out".
      assert.deepEqual(warningsOf(r, 'child.birthType'), [
        `child.birthType: multiple birth of unknown size (birth order ${order}): type of birth left out`,
      ]);
      assert.equal(r.declaration['child.dob'], '2020-10-20', 'the rest of the record is sent');
    }
  });

  it('is a higher multiple delivery for the fifth- to ninth-born, one of at least five', async () => {
    for (const order of [5, 7, 9]) {
      const r = mapped(await mapInput(births, withMultipleBirth({ multipleBirthInteger: order })));
      assert.equal(r.declaration['child.birthType'], 'HIGHER_MULTIPLE_DELIVERY', `order ${order}`);
      assert.deepEqual(warningsOf(r, 'child.birthType'), []);
    }
  });

  it('leaves out a birth order of 10 or more, as it does a count of 10 or more (none is on record)', async () => {
    for (const order of [10, 12, 99]) {
      const r = mapped(await mapInput(births, withMultipleBirth({ multipleBirthInteger: order })));
      assert.equal(r.declaration['child.birthType'], undefined, `order ${order}`);
      assert.deepEqual(warningsOf(r, 'child.birthType'), [NOT_A_COUNT]);
      assert.equal(r.declaration['child.dob'], '2020-10-20', 'the rest of the record is sent');
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
    assert.deepEqual(warningsOf(r, 'child.birthType'), [
      'child.birthType: multiple birth of unknown size: type of birth left out',
    ]);
  });

  it('takes the count of live births over the birth order (BFDR: plurality 2 beside order 1)', async () => {
    const bundle = fixture(BFDR);
    assert.equal(byId(bundle, 'patient-child-babyg-quinn').multipleBirthInteger, 1);
    byId(bundle, 'patient-child-babyg-quinn').multipleBirthInteger = 3; // the third-born of... twins?
    const r = mapped(await mapInput(births, bundle));
    assert.equal(r.declaration['child.birthType'], 'TWIN');
  });

  const withLiveBirths = (count: number, multipleBirthInteger = 1) => {
    const bundle = fixture(BFDR);
    const plurality = byId(bundle, 'observation-number-live-births-this-delivery-jada-ann-quinn');
    assert.equal(plurality.valueInteger, 2);
    plurality.valueInteger = count;
    byId(bundle, 'patient-child-babyg-quinn').multipleBirthInteger = multipleBirthInteger;
    return bundle;
  };

  it('gives each count of live births its option: 1 to 4 by name, 5 to 9 a higher multiple delivery', async () => {
    const expected = ['SINGLE', 'TWIN', 'TRIPLET', 'QUADRUPLET', ...Array(5).fill('HIGHER_MULTIPLE_DELIVERY')];
    for (const [i, birthType] of expected.entries()) {
      const r = mapped(await mapInput(births, withLiveBirths(i + 1)));
      assert.equal(r.declaration['child.birthType'], birthType, `count ${i + 1}`);
      assert.deepEqual(warningsOf(r, 'child.birthType'), []);
    }
  });

  it('leaves out a count of 10 or more (IJE 99 "unknown", a typo), with a warning', async () => {
    for (const count of [10, 12, 99]) {
      const r = mapped(await mapInput(births, withLiveBirths(count)));
      assert.equal(r.declaration['child.birthType'], undefined, `count ${count}`);
      assert.deepEqual(warningsOf(r, 'child.birthType'), [NOT_A_COUNT]);
      assert.ok(!r.warnings.some((w) => w.includes(String(count))), 'the value is not said');
    }
  });

  it('reads a birth order as it reads a count of as many births: the same option or none, from 5 up', async () => {
    for (let n = 5; n <= 12; n++) {
      const byCount = mapped(await mapInput(births, withLiveBirths(n)));
      const byOrder = mapped(await mapInput(births, withMultipleBirth({ multipleBirthInteger: n })));
      assert.equal(byOrder.declaration['child.birthType'], byCount.declaration['child.birthType'], `${n}`);
      assert.deepEqual(warningsOf(byOrder, 'child.birthType'), warningsOf(byCount, 'child.birthType'), `${n}`);
    }
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

  it('leaves out a count given as a bound (>= 4 is no QUADRUPLET), with a warning naming only the field', async () => {
    const bundle = fixture(BFDR);
    const plurality = byId(bundle, 'observation-number-live-births-this-delivery-jada-ann-quinn');
    delete plurality.valueInteger;
    for (const comparator of ['<', '<=', '>=', '>', 'ad']) {
      plurality.valueQuantity = { value: 4, comparator, system: 'http://unitsofmeasure.org', code: '{births}' };
      const r = mapped(await mapInput(births, bundle));
      assert.equal(r.declaration['child.birthType'], undefined, comparator);
      assert.deepEqual(warningsOf(r, 'child.birthType'), [BOUND('child.birthType')], comparator);
    }
    plurality.valueQuantity = { value: 4, system: 'http://unitsofmeasure.org', code: '{births}' };
    assert.equal(mapped(await mapInput(births, bundle)).declaration['child.birthType'], 'QUADRUPLET');
  });
});

describe('the birth weight', () => {
  const withWeight = (valueQuantity: Resource) => {
    const bundle = fixture(BFDR);
    const weight = byId(bundle, 'observation-birth-weight-babyg-quinn');
    assert.deepEqual(weight.valueQuantity, { value: 2500, system: 'http://unitsofmeasure.org', code: 'g' });
    weight.valueQuantity = valueQuantity;
    return bundle;
  };
  const ucum = (value: number, code: string, unit?: string) => ({
    value,
    system: 'http://unitsofmeasure.org',
    code,
    ...(unit ? { unit } : {}),
  });

  it('converts every UCUM mass unit to kilograms', async () => {
    for (const [quantity, kg] of [
      [ucum(2500, 'g'), 2.5],
      [ucum(2.5, 'kg'), 2.5],
      [ucum(2_500_000, 'mg'), 2.5],
      [ucum(5.5, '[lb_av]'), 2.495],
      [ucum(88, '[oz_av]'), 2.495],
    ] as const) {
      const r = mapped(await mapInput(births, withWeight(quantity)));
      assert.equal(r.declaration['child.weightAtBirth'], kg, JSON.stringify(quantity));
      assert.deepEqual(warningsOf(r, 'child.weightAtBirth'), []);
    }
  });

  it('leaves out an implausible weight (a wrong unit, a decimal point) with a warning, not the record', async () => {
    for (const quantity of [
      ucum(2.5, 'g'), // kilograms entered under grams: 0.0025 kg
      ucum(0.2, 'g'),
      ucum(2500, 'kg'), // grams entered under kilograms
      ucum(35, 'kg'), // 3.5 kg, its decimal point lost
      { value: 3500, unit: 'kg' },
    ]) {
      const r = mapped(await mapInput(births, withWeight(quantity)));
      assert.equal(r.declaration['child.weightAtBirth'], undefined, JSON.stringify(quantity));
      const [warning, ...more] = warningsOf(r, 'child.weightAtBirth');
      assert.deepEqual(more, []);
      assert.match(
        warning ?? '',
        /^child\.weightAtBirth: left out: outside the range the mapping allows \(0\.1 to 6\)/,
      );
      assert.ok(!/2\.5|0\.2|2500|35|3500|0\.0025/.test(warning ?? ''), `the value is not said: ${warning}`);
      assert.equal(r.declaration['child.birthType'], 'TWIN', 'the rest of the record is sent');
    }
  });

  it('leaves out a weight given as a bound (< 2500 g), with a warning naming only the field', async () => {
    for (const comparator of ['<', '<=', '>=', '>', 'ad']) {
      const r = mapped(await mapInput(births, withWeight({ ...ucum(2500, 'g'), comparator })));
      assert.equal(r.declaration['child.weightAtBirth'], undefined, comparator);
      assert.deepEqual(warningsOf(r, 'child.weightAtBirth'), [BOUND('child.weightAtBirth')], comparator);
      assert.ok(!r.warnings.some((w) => w.includes('2500')), 'the value is not said');
      assert.equal(r.declaration['child.birthType'], 'TWIN', 'the rest of the record is sent');
    }
    // The same weight without a comparator (an empty one is none) is sent as it is.
    for (const quantity of [ucum(2500, 'g'), { ...ucum(2500, 'g'), comparator: '' }]) {
      const r = mapped(await mapInput(births, withWeight(quantity)));
      assert.equal(r.declaration['child.weightAtBirth'], 2.5);
      assert.deepEqual(warningsOf(r, 'child.weightAtBirth'), []);
    }
  });

  it('takes a later source for a birth weight given as a bound, as for a partial date', async () => {
    // Luigi's weight comes from a body weight (29463-7) on his birth day: 3.254 kg.
    const bundle = fixture(SYNTHEA);
    bundle.entry.push({
      resource: {
        resourceType: 'Observation',
        id: 'birth-weight-bound',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] },
        subject: { reference: `urn:uuid:${LUIGI}` },
        effectiveDateTime: '2020-10-20T10:00:00+00:00',
        valueQuantity: { ...ucum(4, 'kg'), comparator: '<' },
      },
    });
    const r = mapped(await mapInput(births, bundle));
    assert.equal(r.declaration['child.weightAtBirth'], 3.254);
    assert.deepEqual(warningsOf(r, 'child.weightAtBirth'), []);
  });

  it('keeps the weights at the ends of the range', async () => {
    for (const [quantity, kg] of [
      [ucum(100, 'g'), 0.1],
      [ucum(6, 'kg'), 6],
    ] as const) {
      assert.equal(mapped(await mapInput(births, withWeight(quantity))).declaration['child.weightAtBirth'], kg);
    }
  });

  it("reads a UCUM code, not the unit text beside it: 'cm' is no mass whatever the text says", async () => {
    const r = await mapInput(births, withWeight(ucum(2.5, 'cm', 'kg')));
    assert.ok(r.status === 'invalid', JSON.stringify(r));
    assert.equal(r.errors[0]?.field, 'child.weightAtBirth');
    assert.match(r.errors[0]?.message ?? '', /UCUM unit 'cm' is not a mass unit/);
  });

  it("reads an EMR's own spelling under the UCUM system as the mass it names ('lbs', 'gm', 'Kilograms')", async () => {
    for (const [quantity, kg] of [
      [ucum(6.8, 'lbs'), 3.084],
      [ucum(3200, 'gm', 'grams'), 3.2],
      [ucum(3.2, 'Kilograms'), 3.2],
    ] as const) {
      const r = await mapInput(births, withWeight(quantity));
      assert.equal(mapped(r).declaration['child.weightAtBirth'], kg, JSON.stringify(quantity));
    }
  });

  it('an implausible birth weight is not replaced by a body weight of the same day', async () => {
    // Luigi's weight comes from a body weight (29463-7) on his birth day: 3.254 kg.
    const bundle = fixture(SYNTHEA);
    assert.equal(mapped(await mapInput(births, bundle)).declaration['child.weightAtBirth'], 3.254);
    bundle.entry.push({
      resource: {
        resourceType: 'Observation',
        id: 'birth-weight-in-wrong-unit',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] },
        subject: { reference: `urn:uuid:${LUIGI}` },
        effectiveDateTime: '2020-10-20T10:00:00+00:00',
        valueQuantity: ucum(3254, 'kg'),
      },
    });
    const r = mapped(await mapInput(births, bundle));
    assert.equal(r.declaration['child.weightAtBirth'], undefined);
    assert.equal(warningsOf(r, 'child.weightAtBirth').length, 1, r.warnings.join('\n'));
  });
});
