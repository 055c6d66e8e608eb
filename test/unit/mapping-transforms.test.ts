import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toOpenCrvsAddress } from '../../src/mapping/transforms/address.js';
import { toPlainDate } from '../../src/mapping/transforms/dates.js';
import { applyTransform } from '../../src/mapping/transforms/index.js';
import { toOpenCrvsName } from '../../src/mapping/transforms/names.js';
import { toDuration, toKilograms, toYears } from '../../src/mapping/transforms/units.js';
import { lookup, type ValueMap, valueMapOutput } from '../../src/mapping/transforms/values.js';

describe('names', () => {
  it('prefers the official name, then usual, then the first', () => {
    const names = [
      { use: 'maiden', given: ['Jada'], family: 'King' },
      { use: 'usual', given: ['J'], family: 'Q' },
      { use: 'official', given: ['Jada', 'Ann'], family: 'Quinn' },
    ];
    assert.deepEqual(toOpenCrvsName(names), { firstname: 'Jada', middlename: 'Ann', surname: 'Quinn' });
    assert.deepEqual(toOpenCrvsName(names.slice(0, 2)), { firstname: 'J', surname: 'Q' });
    assert.deepEqual(toOpenCrvsName(names.slice(0, 1)), { firstname: 'Jada', surname: 'King' });
  });

  it('passes over a former name (old, maiden) for a current one without a use, and over an old address', () => {
    const names = [
      { use: 'old', given: ['Name'], family: 'Old' },
      { given: ['Ruth'], family: 'Banda' },
    ];
    assert.deepEqual(toOpenCrvsName(names), { firstname: 'Ruth', surname: 'Banda' });
    assert.deepEqual(toOpenCrvsName(names.slice(0, 1)), { firstname: 'Name', surname: 'Old' }, 'if it is all there is');
    const addresses = [
      { use: 'old', city: 'Before', country: 'ZMB' },
      { use: 'work', city: 'Office', country: 'ZMB' },
    ];
    const out = toOpenCrvsAddress(addresses, 'FAR');
    assert.ok('value' in out);
    assert.match(JSON.stringify(out.value), /Office/);
  });

  it('puts every given name after the first into middlename', () => {
    assert.deepEqual(toOpenCrvsName([{ given: ['Amani', 'Baraka', 'Neema'], family: 'Juma' }]), {
      firstname: 'Amani',
      middlename: 'Baraka Neema',
      surname: 'Juma',
    });
  });

  it('splits a text-only name: first word, middle words, last word', () => {
    assert.deepEqual(toOpenCrvsName([{ text: '  Amani  Baraka Juma ' }]), {
      firstname: 'Amani',
      middlename: 'Baraka',
      surname: 'Juma',
    });
    assert.deepEqual(toOpenCrvsName([{ text: 'Madonna' }]), { firstname: 'Madonna' });
  });

  it('leaves out absent parts, and gives nothing for a name with no parts (a stillborn without a name)', () => {
    assert.deepEqual(toOpenCrvsName([{ family: 'Quinn' }]), { surname: 'Quinn' });
    assert.equal(toOpenCrvsName([{ use: 'official', _family: { extension: [] } }]), undefined);
    assert.equal(toOpenCrvsName([]), undefined);
  });
});

describe('dates', () => {
  it('keeps the calendar date written in a dateTime, whatever its offset (never shifted to UTC)', () => {
    assert.deepEqual(toPlainDate('2026-06-30T23:30:00-05:00'), { value: '2026-06-30' });
    assert.deepEqual(toPlainDate('2024-03-06T01:15:00+03:00'), { value: '2024-03-06' });
    assert.deepEqual(toPlainDate('2020-11-12T16:39:40.123Z'), { value: '2020-11-12' });
    assert.deepEqual(toPlainDate('2019-02-12'), { value: '2019-02-12' });
  });

  it('leaves out partial dates (year, year-month)', () => {
    assert.deepEqual(toPlainDate('2019'), { partial: true });
    assert.deepEqual(toPlainDate('2019-02'), { partial: true });
  });

  it('reads the VR partial-date extension only when year, month and day are all known', () => {
    const ext = (parts: Record<string, unknown>[]) => ({
      url: 'http://hl7.org/fhir/us/vr-common-library/StructureDefinition/Extension-partial-date-time-vr',
      extension: parts,
    });
    const full = ext([
      { url: 'day', valueUnsignedInt: 12 },
      { url: 'year', valueUnsignedInt: 2020 },
      { url: 'month', valueUnsignedInt: 11 },
    ]);
    assert.deepEqual(toPlainDate(full), { value: '2020-11-12' });
    const dayUnknown = ext([
      { url: 'year', valueUnsignedInt: 2020 },
      { url: 'month', valueUnsignedInt: 11 },
      {
        url: 'day',
        _valueUnsignedInt: {
          extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }],
        },
      },
    ]);
    assert.deepEqual(toPlainDate(dayUnknown), { partial: true });
  });

  it('is an error for a present value that is not a date', () => {
    assert.ok('error' in toPlainDate('2019-02-30'));
    assert.ok('error' in toPlainDate('12/02/2019'));
    assert.ok('error' in toPlainDate(42));
    // A malformed time makes the whole value malformed: the date before it is not to be trusted either.
    for (const bad of ['2024-05-13T25:99:00+02:00', '2024-05-13T24:00:00+02:00', '2024-05-13T10:00:00+25:00'])
      assert.deepEqual(toPlainDate(bad), { error: 'is not a FHIR date or dateTime' }, bad);
    assert.deepEqual(toPlainDate('2016-12-31T23:59:60Z'), { value: '2016-12-31' }, 'a leap second');
  });

  it('takes a Period as a date only when it starts and ends on one day (VRDR gives a range when unsure)', () => {
    const day = { start: '2024-03-05T08:00:00+02:00', end: '2024-03-05T09:30:00+02:00' };
    assert.deepEqual(toPlainDate(day), { value: '2024-03-05' });
    assert.deepEqual(toPlainDate({ start: '2024-02-20', end: '2024-03-05' }), {
      partial: true,
      reason: 'is a range of days, not one date',
    });
    for (const open of [{ start: '2024-02-20' }, { end: '2024-03-05' }])
      assert.deepEqual(toPlainDate(open), { partial: true, reason: 'is an open range of dates, not one date' });
    // UTC ends read in the zone: 23:30Z on the 4th is the 5th in Lusaka, the day the period started.
    const zoned = { start: '2024-03-05T00:10:00+02:00', end: '2024-03-04T23:30:00Z' };
    assert.deepEqual(toPlainDate(zoned, 'Africa/Lusaka'), { value: '2024-03-05' });
    assert.ok('error' in toPlainDate({ start: '2024-02-30', end: '2024-03-01' }));
    assert.deepEqual(applyTransform('date', [{ start: '2024-02-20', end: '2024-03-05' }], {}), {
      skip: 'the date is a range of days, not one date',
    });
  });

  it('the date transform leaves a partial date out with a warning', () => {
    const out = applyTransform('date', ['2019-02'], {});
    assert.ok('skip' in out && /not complete/.test(out.skip ?? ''));
  });
});

describe('units', () => {
  it('converts birth weights to kg, rounded to the gram', () => {
    assert.deepEqual(toKilograms({ value: 2500, system: 'http://unitsofmeasure.org', code: 'g' }), { value: 2.5 });
    assert.deepEqual(toKilograms({ value: 3.254094, code: 'kg' }), { value: 3.254 });
    assert.deepEqual(toKilograms({ value: 7.5, code: '[lb_av]' }), { value: 3.402 });
    assert.deepEqual(toKilograms({ value: 7.5, unit: 'lbs' }), { value: 3.402 });
    assert.deepEqual(toKilograms({ value: 112, code: '[oz_av]' }), { value: 3.175 });
    assert.deepEqual(toKilograms({ value: 3100, unit: 'grams' }), { value: 3.1 });
  });

  it('is an error for a non-mass unit or no unit, naming the unit only', () => {
    const cm = toKilograms({ value: 156, unit: 'cm' });
    assert.ok('error' in cm && /'cm'/.test(cm.error) && !cm.error.includes('156'));
    assert.ok('error' in toKilograms({ value: 3 }));
    assert.ok('error' in toKilograms(3));
  });

  it('converts ages to completed years', () => {
    assert.deepEqual(toYears({ value: 42, code: 'a' }), { value: 42 });
    assert.deepEqual(toYears({ value: 30, code: 'mo' }), { value: 2 });
    assert.deepEqual(toYears(34), { value: 34 });
    // Recorded as unknown: left out, so the age between the dates is used (VRDR unit UNK, no value).
    assert.deepEqual(toYears({ value: 999, code: 'UNK' }), { unknown: 'the age is recorded as unknown (UNK)' });
    assert.deepEqual(toYears({ code: 'a' }), { unknown: 'the age has no value' });
    assert.deepEqual(toYears({ value: 20, unit: 'yrs' }), { value: 20 });
    assert.ok('error' in toYears({ value: 20, code: 'kg' }), 'a unit that is no duration stays an error');
    // VRDR's UNK is a v3-NullFlavor code, not a UCUM one.
    const nullFlavor = 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor';
    assert.deepEqual(toYears({ value: 999, system: nullFlavor, code: 'UNK' }), {
      unknown: 'the age is recorded as unknown (UNK)',
    });
    // No unit: 6 may be days as well as years; left out, so the years between the dates are used.
    assert.deepEqual(toYears({ value: 6 }), { unknown: 'left out: the age has no unit (a, mo, wk, d, h, min)' });
    // A code in another system is no UCUM unit: the unit text beside it is read.
    const snomedYear = { system: 'http://snomed.info/sct', code: '258707000' };
    assert.deepEqual(toYears({ value: 42, ...snomedYear, unit: 'a' }), { value: 42 });
    assert.deepEqual(applyTransform('age', [{ value: 34, code: 'a' }], { asOfDateRef: 'child.dob' }), {
      value: { age: 34, asOfDateRef: 'child.dob' },
    });
  });

  it("reads a duration (VRDR's onset-to-death text, or a Quantity) as a number and the form's unit", () => {
    assert.deepEqual(toDuration('4 hours'), { value: { numericValue: 4, unit: 'Hours' } });
    assert.deepEqual(toDuration('3 Months'), { value: { numericValue: 3, unit: 'Months' } });
    assert.deepEqual(toDuration('10min'), { value: { numericValue: 10, unit: 'Minutes' } });
    assert.deepEqual(toDuration('1.5 yrs.'), { value: { numericValue: 1.5, unit: 'Years' } });
    assert.deepEqual(toDuration({ value: 2, code: 'wk' }), { value: { numericValue: 2, unit: 'Weeks' } });
    assert.deepEqual(toDuration({ value: 5, unit: 'days' }), { value: { numericValue: 5, unit: 'Days' } });
    // A code in another system (SNOMED CT hour) is no unit spelling: the unit text beside it is read.
    const snomedHour = { system: 'http://snomed.info/sct', code: '258702006' };
    assert.deepEqual(toDuration({ value: 4, ...snomedHour, unit: 'h' }), { value: { numericValue: 4, unit: 'Hours' } });
    // A UCUM code is the unit, whatever stale text is beside it.
    const ucumWeeks = { system: 'http://unitsofmeasure.org', code: 'wk', unit: 'days' };
    assert.deepEqual(toDuration({ value: 2, ...ucumWeeks }), { value: { numericValue: 2, unit: 'Weeks' } });
  });

  it('leaves out a duration that is free text or has no time unit, without quoting it', () => {
    for (const input of [
      'about a week',
      'unknown',
      '2 to 3 days',
      { value: 3, unit: 'cm' },
      { value: 'x', code: 'd' },
    ]) {
      const out = toDuration(input);
      assert.ok('skip' in out, JSON.stringify(input));
      assert.ok(!out.skip.includes('week') && !out.skip.includes('cm'), out.skip);
    }
    assert.deepEqual(applyTransform('duration', ['unknown'], {}), {
      skip: 'interval left out: is not a number with a duration unit (min, h, d, wk, mo, a)',
    });
  });
});

describe('value maps', () => {
  const manner: ValueMap = {
    name: 'manner',
    entries: new Map<string, unknown>([
      ['http://snomed.info/sct|38605008', 'MANNER_NATURAL'],
      ['7878000', 'MANNER_ACCIDENT'],
    ]),
  };

  it('maps a CodeableConcept by system|code, or by bare code in any system', () => {
    const natural = { coding: [{ system: 'http://snomed.info/sct', code: '38605008', display: 'Natural death' }] };
    assert.deepEqual(lookup(manner, [natural]), { value: 'MANNER_NATURAL' });
    assert.deepEqual(lookup(manner, [{ coding: [{ code: '7878000' }] }]), { value: 'MANNER_ACCIDENT' });
  });

  it('does not match a code from another system against a system|code key', () => {
    const out = lookup(manner, [{ coding: [{ system: 'http://other', code: '38605008' }] }]);
    assert.ok('unmapped' in out && out.unmapped.includes('http://other|38605008'));
  });

  it('maps plain values (gender, plurality counts, booleans) by their text', () => {
    const gender: ValueMap = {
      name: 'gender',
      entries: new Map([
        ['other', 'unknown'],
        ['female', 'female'],
      ]),
    };
    assert.deepEqual(lookup(gender, ['other']), { value: 'unknown' });
    const plurality: ValueMap = {
      name: 'p',
      entries: new Map<string, unknown>([
        ['2', 'TWIN'],
        ['false', 'SINGLE'],
      ]),
    };
    assert.deepEqual(lookup(plurality, [2]), { value: 'TWIN' });
    assert.deepEqual(lookup(plurality, [false]), { value: 'SINGLE' });
  });

  it('refuses items that map to different values, without naming them; equal outputs are one value', () => {
    const natural = { coding: [{ system: 'http://snomed.info/sct', code: '38605008' }] };
    const accident = { coding: [{ code: '7878000' }] };
    const out = lookup(manner, [natural, accident]);
    assert.ok('ambiguous' in out, JSON.stringify(out));
    assert.match(out.ambiguous, /value map manner maps to 2 different values: choose one with where\(\) or first\(\)/);
    assert.ok(!/38605008|7878000|MANNER/.test(out.ambiguous), out.ambiguous);
    assert.deepEqual(lookup(manner, [natural, natural]), { value: 'MANNER_NATURAL' });
    const twoKeys: ValueMap = {
      name: 'g',
      entries: new Map([
        ['M', { a: 1 }],
        ['male', { a: 1 }],
      ]),
    };
    assert.deepEqual(lookup(twoKeys, ['M', 'male']), { value: { a: 1 } });
    // One CodeableConcept's codings are one concept: its first known code decides, as before.
    assert.deepEqual(lookup(manner, [{ coding: [...natural.coding, ...accident.coding] }]), {
      value: 'MANNER_NATURAL',
    });
  });

  it("uses the '*' entry when nothing matched, and never echoes a free-text value", () => {
    const withFallback: ValueMap = { name: 'x', entries: new Map(), fallback: { value: null } };
    assert.deepEqual(lookup(withFallback, ['anything']), { value: null });
    const strict: ValueMap = { name: 'x', entries: new Map() };
    const out = lookup(strict, ['Jane Doe']);
    assert.ok('unmapped' in out && !out.unmapped.includes('Jane'));
  });
});

describe('addresses', () => {
  it("leaves out an address whose country is free text without quoting it (OpenMRS's country is free text)", () => {
    const out = toOpenCrvsAddress([{ line: ['Plot 14'], country: 'c/o Mary Tembo, Kabwe Road' }], 'FAR');
    assert.ok('skip' in out);
    assert.ok(!/Tembo|Kabwe/i.test(out.skip), out.skip);
    const code = toOpenCrvsAddress([{ country: 'XX' }], 'FAR');
    assert.ok('skip' in code && /'XX'/.test(code.skip), 'a 2-letter code is vocabulary and is named');
  });

  it('reads a country given as an alpha-2 code or an English name (any case, any accents) as its alpha-3 code', () => {
    const country = (given: string) => {
      const out = toOpenCrvsAddress([{ city: 'Town', country: given }], 'FAR', 'farajaland');
      return 'value' in out ? String(out.value.country) : out.skip;
    };
    assert.equal(country('Uganda'), 'UGA'); // as OpenMRS writes Address.country: free text
    assert.equal(country('UGANDA'), 'UGA');
    assert.equal(country('ug'), 'UGA');
    assert.equal(country('cote d’ivoire'), 'CIV');
    assert.equal(country('  Côte d’Ivoire '), 'CIV');
    assert.equal(country('United Republic of Tanzania'), 'TZA');
    assert.equal(country('UK'), 'GBR', 'no alpha-2 code, but a name the list gives');
    // Two countries are "Congo": neither is chosen.
    assert.match(country('Congo'), /free text \(not shown\)/);
    assert.match(country('Atlantis'), /free text \(not shown\)/);
  });

  it("knows the form's own country by the OpenCRVS country's name, which no ISO list has", () => {
    const out = toOpenCrvsAddress([{ city: 'Ilanga', state: 'Sulaka', country: 'Farajaland' }], 'FAR', 'farajaland');
    assert.deepEqual(out, {
      value: { country: 'FAR', addressType: 'DOMESTIC', streetLevelDetails: { town: 'Ilanga' } },
    });
    assert.ok('skip' in toOpenCrvsAddress([{ country: 'Farajaland' }], 'FAR'), 'without the name, it is unknown');
  });

  it('gives a DOMESTIC address with the administrative area when the district is an OpenCRVS UUID', () => {
    const out = toOpenCrvsAddress(
      [
        {
          line: ['', 'URBAN'],
          city: 'Meghnan',
          district: 'c24c0b72-11b5-4c1a-bbb7-61112fa6f481',
          postalCode: '52275',
          country: 'FAR',
        },
      ],
      'FAR',
    );
    assert.deepEqual(out, {
      value: {
        country: 'FAR',
        addressType: 'DOMESTIC',
        administrativeArea: 'c24c0b72-11b5-4c1a-bbb7-61112fa6f481',
        streetLevelDetails: { town: 'Meghnan', zipCode: '52275' },
      },
    });
  });

  it('gives an INTERNATIONAL address for another alpha-3 country, and leaves out one it cannot express', () => {
    const out = toOpenCrvsAddress([{ use: 'home', line: ['1 Main St'], city: 'Kampala', country: 'UGA' }], 'FAR');
    assert.deepEqual(out, {
      value: {
        country: 'UGA',
        addressType: 'INTERNATIONAL',
        streetLevelDetails: { cityOrTown: 'Kampala', addressLine1: '1 Main St' },
      },
    });
    assert.ok('skip' in toOpenCrvsAddress([{ city: 'Salt Lake City', country: 'XX' }], 'FAR'));
  });
});

describe('value maps read codes as loosely as the conversions read text and units', () => {
  const gender: ValueMap = {
    name: 'gender',
    entries: new Map([
      ['male', 'male'],
      ['female', 'female'],
    ]),
  };

  it('matches a code written with surrounding spaces or in another case (a DHIS2 option code MALE)', () => {
    assert.deepEqual(lookup(gender, ['MALE']), { value: 'male' });
    assert.deepEqual(lookup(gender, [' Female ']), { value: 'female' });
    assert.deepEqual(lookup(gender, [{ coding: [{ code: 'Male' }] }]), { value: 'male' });
    assert.deepEqual(applyTransform('text', [' Female '], {}), { value: 'Female' }); // as `as: text` reads it
  });

  it('prefers the exact key, and matches loosely no key that is ambiguous so', () => {
    const marital: ValueMap = {
      name: 'm',
      entries: new Map([
        ['M', 'MARRIED'],
        ['m', 'SINGLE'],
        ['Wi', 'WIDOWED'],
        ['WI', 'SINGLE'],
        ['D', 'DIVORCED'],
      ]),
    };
    assert.deepEqual(lookup(marital, ['m']), { value: 'SINGLE' });
    assert.deepEqual(lookup(marital, ['M']), { value: 'MARRIED' });
    assert.deepEqual(lookup(marital, [' M ']), { value: 'MARRIED' }); // the same key, spaces left aside
    assert.deepEqual(lookup(marital, ['d']), { value: 'DIVORCED' });
    // 'wi' is as close to 'Wi' as to 'WI', which give different values: no match, not the first written.
    assert.ok('unmapped' in lookup(marital, ['wi']));
  });

  it('reads a Quantity by its number when it has no unit, never by its unit code', () => {
    const plurality: ValueMap = {
      name: 'plurality',
      entries: new Map([
        ['1', 'SINGLE'],
        ['2', 'TWIN'],
      ]),
    };
    // UCUM's unity '1' is the Quantity's unit, not its value: two live births, not one.
    const ucumCount = { value: 2, system: 'http://unitsofmeasure.org', code: '1' };
    assert.deepEqual(lookup(plurality, [ucumCount]), { value: 'TWIN' });
    assert.deepEqual(lookup(plurality, [{ value: 2, unit: '{births}' }]), { value: 'TWIN' });
    assert.deepEqual(applyTransform('number', [ucumCount], {}), { value: 2 }); // as `as: number` reads it
    // A UCUM code is the unit, the text beside it its display: a count of births all the same.
    const displayed = { value: 2, unit: 'births', system: 'http://unitsofmeasure.org', code: '{births}' };
    assert.deepEqual(lookup(plurality, [displayed]), { value: 'TWIN' });
    assert.deepEqual(applyTransform('number', [displayed], {}), { value: 2 });
    const weight = lookup(plurality, [{ value: 1, system: 'http://unitsofmeasure.org', code: 'kg' }]);
    assert.ok('unmapped' in weight, JSON.stringify(weight));
    assert.match(weight.unmapped, /^a Quantity in 'kg' is not in value map plurality/);
    // A key 'kg' would not help: the message says how a Quantity is read instead.
    assert.doesNotMatch(weight.unmapped, /add it under valueMaps/);
    assert.match(weight.unmapped, /reads a Quantity only by its number, when it has no unit .*\.value\.value/);
    assert.match((lookup(plurality, ['9']) as { unmapped: string }).unmapped, /add it under valueMaps\.plurality/);
  });
});

describe('a value map entry that leaves the field out with its own warning ({ leaveOut: text })', () => {
  const plurality: ValueMap = {
    name: 'plurality',
    entries: new Map<string, unknown>([
      ['2', 'TWIN'],
      ['true', valueMapOutput({ leaveOut: 'multiple birth of unknown size: type of birth left out' })],
      ['unk', null],
    ]),
    fallback: { value: valueMapOutput({ leaveOut: 'not a count: type of birth left out' }) },
  };

  it('gives no value and the entry’s words, for a key and for the * entry', () => {
    assert.deepEqual(lookup(plurality, [true]), {
      value: null,
      warning: 'multiple birth of unknown size: type of birth left out',
    });
    assert.deepEqual(lookup(plurality, ['TRUE']), lookup(plurality, [true]), 'matched loosely as any key');
    assert.deepEqual(lookup(plurality, ['many']), { value: null, warning: 'not a count: type of birth left out' });
    assert.deepEqual(lookup(plurality, ['unk']), { value: null }, 'null keeps the generic warning');
  });

  it('is one outcome with null beside it, not two values, and is still a value beside an option', () => {
    assert.deepEqual(lookup(plurality, ['unk', true]), {
      value: null,
      warning: 'multiple birth of unknown size: type of birth left out',
    });
    assert.ok('ambiguous' in lookup(plurality, [2, true]));
  });
});
