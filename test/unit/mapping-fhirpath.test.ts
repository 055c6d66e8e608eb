// The fast FHIRPath path must give what fhirpath.js gives: checked on every expression of the default
// mappings against every fixture context, and on targeted cases (choice types, primitive extensions, dates).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, mock } from 'node:test';
import fhirpath from 'fhirpath';
import { assembleContext } from '../../src/mapping/context.js';
import { ExpressionCompiler, ExpressionRuntimeError, withoutValues } from '../../src/mapping/fhirpath/expr.js';
import {
  buildCodeSet,
  calendarDate,
  daysBetween,
  utcInZone,
  yearsBetween,
} from '../../src/mapping/fhirpath/functions.js';
import { bundleFetcher, loadMappings } from '../../src/mapping/index.js';

const FIXTURES = [
  'fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json',
  'fhir/bfdr/Bundle-bundle-provider-fetal-death-not-named.json',
  'fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json',
  'fhir/synthea/Garrett_Thompson_5a72e290-8102-4c8a-84f7-f838387508b2.json',
  'fhir/synthea/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json',
  'fhir/openmrs/openmrs-birth-bundle.json',
  'fhir/openmrs/openmrs-death-bundle.json',
  'fhir/openmrs/openmrs-stillbirth-bundle.json', // the CIEL birth outcome: and/or decided by either side
  'opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json',
  'opencrvs-v1/v1.8.0-to-v1.9.x__create-death-notification-min.json',
];

function fixture(path: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8'));
}

describe('fast FHIRPath path', () => {
  it('compiles every expression of the default mappings', () => {
    for (const m of loadMappings({}).mappings) {
      const slow = m.expressions.filter((e) => !e.fast).map((e) => e.text);
      assert.deepEqual(slow, [], `${m.id} has expressions outside the fast subset`);
    }
  });

  it('agrees with fhirpath.js on every mapping expression over every fixture', async () => {
    const set = loadMappings({});
    let compared = 0;
    for (const path of FIXTURES) {
      const fetcher = bundleFetcher(fixture(path));
      for (const mapping of set.mappings) {
        for (const r of fetcher.resources.filter((x) => x.resourceType === mapping.subjectType)) {
          const out = await assembleContext(mapping, `Patient/${r.id}`, fetcher);
          assert.ok('context' in out);
          const { subject, vars } = out.context;
          for (const e of mapping.expressions) {
            assert.deepEqual(
              e.evaluate(subject, vars),
              e.evaluateReference(subject, vars),
              `${path} ${mapping.id}: ${e.text}`,
            );
            compared += 1;
          }
        }
      }
    }
    assert.ok(compared > 1000, `compared ${compared}`);
    // …and the comparisons exercised the fast path itself: no call was handed back to fhirpath.js.
    const fellBack = set.mappings.flatMap((m) => m.expressions.filter((e) => e.fallbacks > 0).map((e) => e.text));
    assert.deepEqual(fellBack, []);
  });

  const codeSets = new Map([
    ['mother', buildCodeSet(['http://terminology.hl7.org/CodeSystem/v3-RoleCode|MTH', 'GESTM'])],
  ]);
  const fast = new ExpressionCompiler('fhir', codeSets);
  const vars = new Set(['p', 'o', 'rp', 'e']);
  const env = {
    p: {
      resourceType: 'Patient',
      id: 'p1',
      birthDate: '2019-02-12',
      _birthDate: {
        extension: [
          {
            url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime',
            valueDateTime: '2019-02-12T13:00:00-07:00',
          },
        ],
      },
      deceasedBoolean: true,
      _deceasedBoolean: { extension: [{ url: 'http://x/Extension-patient-fetal-death-vr', valueBoolean: true }] },
      name: [{ given: ['A', 'B'], _given: [null, { extension: [{ url: 'u', valueString: 'x' }] }], family: 'C' }],
    },
    o: {
      resourceType: 'Observation',
      note: [{ text: 'Sepsis; pneumonia; renal failure' }],
      _valueDateTime: { extension: [{ url: 'partial', extension: [{ url: 'year', valueUnsignedInt: 2020 }] }] },
    },
    rp: [
      {
        resourceType: 'RelatedPerson',
        relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH' }] }],
      },
      { resourceType: 'RelatedPerson', relationship: [{ coding: [{ system: 'http://other', code: 'MTH' }] }] },
      { resourceType: 'RelatedPerson', relationship: [{ coding: [{ code: 'GESTM' }] }] },
    ],
    e: [{ resourceType: 'Encounter', period: { start: '2019-02-14T23:00:00-05:00' } }],
  };
  const cases = [
    "%p.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
    "%p.deceased.extension.where(url.contains('fetal-death') and value = true).exists()",
    '%p.deceasedBoolean = true',
    '%p.birthDate',
    "%p.birthDate = '2019-02-12'",
    '%p.name.given',
    '%p.name.given.extension.value',
    '%o.value',
    '%o.value.exists()',
    "%o.value.extension('partial').extension('year').value",
    "%rp.where(relationship.coded('mother')).count()",
    '%e.where(period.start.daysAfter(%p.birthDate) <= 3).exists()',
    '%e.period.start.daysAfter(%p.birthDate)',
    "%e.period.start.yearsAfter('2018-03')",
    '%p.birthDate.yearsAfter(%o.value)',
    "%p.ref() | 'x' | 'x'",
    'Patient.name.family | Observation.name.family',
    "iif(%p.gender.exists(), 'has', 'none')",
    "%p.name.given.first() + ' ' + %p.name.family",
    "%p.name.select(given.first() & '-' & family)",
    '%p.multipleBirth.exists().not()',
    "%o.note.text.replace(';', ',')",
    "%o.note.text.replace('; ', ' - ')",
    "%p.gender.replace(';', ',')",
    // and/or with an operand that cannot fail, skipped when the other decides: the same truth tables.
    "%rp.where(relationship.coded('mother') and relationship.coded('mother').not()).count()",
    "%rp.where(relationship.coded('mother') or gender.exists()).count()",
    "%rp.where(gender.exists() or relationship.coded('mother')).count()",
    "%rp.where(relationship.coded('mother') and relationship.coding.code = 'MTH').count()",
    "%rp.where(relationship.coding.code = 'MTH' or relationship.coded('mother')).count()",
    "%rp.select(relationship.coded('mother') and (relationship.coding.system = 'http://other'))",
    "%rp.select(relationship.coded('mother') or (relationship.coding.system = 'http://other'))",
  ];
  for (const expr of cases) {
    it(`gives fhirpath.js's answer for ${expr}`, () => {
      const compiled = fast.compile(expr, vars);
      assert.deepEqual(compiled.evaluate(env.p, env), compiled.evaluateReference(env.p, env));
    });
  }

  it("leaves fhirpath.js's compile to the first call that needs it: loading mappings parsed each text twice", () => {
    const compileCalls = mock.method(fhirpath, 'compile');
    try {
      const compiled = fast.compile('%p.name.given', vars);
      assert.equal(compiled.fast, true);
      assert.deepEqual(compiled.evaluate(env.p, env), ['A', 'B']);
      assert.equal(compileCalls.mock.callCount(), 0);
      assert.deepEqual(compiled.evaluateReference(env.p, env), ['A', 'B']);
      assert.deepEqual(compiled.evaluateReference(env.p, env), ['A', 'B']);
      assert.equal(compileCalls.mock.callCount(), 1);
      // A text fhirpath.js cannot parse still fails when compiled, not at its first call.
      assert.throws(() => fast.compile('%p.name.given(', vars), /FHIRPath does not compile/);
    } finally {
      compileCalls.mock.restore();
    }
  });

  it("runs replace() on the fast path (the death mapping's cause text), all occurrences replaced", () => {
    const compiled = fast.compile("%o.note.text.replace(';', ',')", vars);
    assert.equal(compiled.fast, true);
    assert.deepEqual(compiled.evaluate(env.p, env), ['Sepsis, pneumonia, renal failure']);
  });

  it("fails on a record's data without quoting it: the message is kept in the ledger", () => {
    const names = {
      resourceType: 'Patient',
      name: [{ given: ['Amani', 'Neema'], family: 'Wanjiru' }],
      birthDate: '1990-03-03',
    };
    for (const expr of [
      '%n.name.given.substring(1)',
      "%n.name.given.startsWith('A')",
      '%n.name.given + %n.birthDate',
    ]) {
      const compiled = fast.compile(expr, new Set(['n']));
      assert.throws(
        () => compiled.evaluate(names, { n: names }),
        (err: Error) => {
          assert.ok(err instanceof ExpressionRuntimeError, String(err));
          assert.ok(err.message.includes(expr), 'names the expression');
          for (const value of ['Amani', 'Neema', 'Wanjiru', '1990'])
            assert.ok(!err.message.includes(value), err.message);
          return true;
        },
      );
    }
  });

  it('scrubs values that hold a newline or a quote, which fhirpath.js does not escape', () => {
    for (const message of [
      'InequalityExpression: Type of "Amani Juma\nPlot 7" (String) did not match type of "x" (FP_Type)',
      'Type of ""Bob" Banda" (String) did not match type of "3" (FP_Type)',
      'Expected singleton on right side of contains, got ["Amani", 1990',
      // fhirpath.js quotes nothing here (Patient.address.line.first() * 2 on a site's own mapping).
      'Cannot convert Plot 7 Kabwata Road to a number',
    ]) {
      const out = withoutValues(message);
      for (const value of ['Amani', 'Juma', 'Plot', 'Bob', 'Banda', '1990', 'Kabwata']) {
        assert.ok(!out.includes(value), out);
      }
    }
  });

  it('scrubs a value that cannot be converted up to the last " to <type>", whatever the value holds', () => {
    // An address such as "Road to Kabwata" holds " to " itself: cutting at the first one left the rest.
    for (const [value, type] of [
      ['Road to Kabwata 12', 'a number'],
      ['Plot 7, off Road to Kabwata; near the market to an office', 'a decimal'],
      ['Amani Juma\nRoad to Kabwata', 'Decimal'],
      ['House "to" Kabwata to a number', 'an integer'],
    ] as const) {
      const out = withoutValues(`Cannot convert ${value} to ${type}`);
      assert.equal(out, `Cannot convert … to ${type}`);
    }
  });

  it('scrubs a value that repeats "Cannot convert " reading it once, not again from each', () => {
    // Read again from each, 64 kB took 0.25 s of the event loop and 256 kB about 4 s; once, milliseconds.
    const value = `Amani ${'Cannot convert '.repeat(17_476)}`;
    const started = performance.now();
    assert.equal(withoutValues(`Cannot convert ${value}`), `Cannot convert ${value}`, 'no " to <type>": kept');
    assert.equal(withoutValues(`Cannot convert ${value} to an integer`), 'Cannot convert … to an integer');
    assert.ok(performance.now() - started < 1_000, `${(performance.now() - started).toFixed(0)} ms`);
  });

  it('reads what a criterion asks of the context once per evaluation, anew in the next one', () => {
    // `%p.birthDate` is computed once for all the items of a where(): never carried over to another record.
    const compiled = fast.compile(
      '%two.where(period.start.daysAfter(%p.birthDate) <= 3).count()',
      new Set([...vars, 'two']),
    );
    const two = [{ period: { start: '2019-02-14' } }, { period: { start: '2019-02-20' } }];
    assert.deepEqual(compiled.evaluate(env.p, { ...env, two }), [1]);
    assert.deepEqual(compiled.evaluate(env.p, { ...env, two, p: { ...env.p, birthDate: '2019-02-18' } }), [2]);
    assert.deepEqual(compiled.evaluate(env.p, { ...env, two, p: { ...env.p, birthDate: '2019-03-18' } }), [2]);
    // Several birth dates fail on every evaluation, as they did before the first one was kept.
    const several = { ...env, two, p: [env.p, env.p] };
    for (let i = 0; i < 2; i++) assert.throws(() => compiled.evaluate(env.p, several), ExpressionRuntimeError);
    assert.deepEqual(compiled.evaluate(env.p, { ...env, two }), [1]);
    assert.equal(compiled.fallbacks, 0);
  });

  it('fails when daysAfter(), yearsAfter() or calendarDate() gets several dates, on both engines', () => {
    // Two encounters: answering empty made `%e.period.start.daysAfter(…) <= 3` miss the birth silently.
    const two = [
      { resourceType: 'Encounter', period: { start: '2019-02-14T23:00:00-05:00' } },
      { resourceType: 'Encounter', period: { start: '2019-02-20' } },
    ];
    const slow = new ExpressionCompiler('fhir', codeSets, false);
    const cases: Array<[string, string]> = [
      ['%two.period.start.daysAfter(%p.birthDate) <= 3', 'daysAfter() needs one date as its input'],
      ["%two.period.start.yearsAfter('2018-03')", 'yearsAfter() needs one date as its input'],
      ['%p.birthDate.daysAfter(%two.period.start)', 'daysAfter() needs one date as its argument'],
      ['%two.period.start.calendarDate()', 'calendarDate() needs one date as its input'],
    ];
    for (const [expr, message] of cases) {
      for (const compiler of [fast, slow]) {
        const compiled = compiler.compile(expr, new Set([...vars, 'two']));
        assert.throws(
          () => compiled.evaluate(env.p, { ...env, two }),
          (err: Error) => {
            assert.ok(err instanceof ExpressionRuntimeError, String(err));
            assert.ok(err.message.includes(message), err.message);
            assert.ok(err.message.includes('choose one with where() or first()'), err.message);
            return true;
          },
        );
      }
      // Chosen with first(), it answers.
      const first = fast.compile(expr.replace('.start', '.start.first()'), new Set([...vars, 'two']));
      assert.equal(first.evaluate(env.p, { ...env, two }).length, 1, expr);
    }
  });

  it('reads the other operand of and/or only when the one that cannot fail does not decide', () => {
    // The stillbirth rule asks every observation `code.coded(…) and value.coded(…)`: the value, a choice
    // element found by a scan of the keys, is read only of an observation with the birth outcome's code.
    let valueReads = 0;
    const observation = (code: string) => ({
      resourceType: 'Observation',
      code: { coding: [{ code }] },
      get valueCodeableConcept() {
        valueReads += 1;
        return { coding: [{ code: 'STILL' }] };
      },
    });
    const sets = new Map([
      ['outcome', buildCodeSet(['OUTCOME'])],
      ['fetal', buildCodeSet(['FETAL', 'STILL'])],
    ]);
    const compiler = new ExpressionCompiler('fhir', sets);
    const rule = compiler.compile(
      "%obs.where(code.coded('fetal') or (code.coded('outcome') and value.coded('fetal'))).exists()",
      new Set(['obs']),
    );
    assert.deepEqual(rule.evaluate({}, { obs: [observation('WEIGHT'), observation('APGAR')] }), [false]);
    assert.equal(valueReads, 0);
    assert.deepEqual(rule.evaluate({}, { obs: [observation('WEIGHT'), observation('OUTCOME')] }), [true]);
    assert.equal(valueReads, 1);
    // An operand that may fail is always evaluated, as fhirpath.js does: its error is the record's.
    const two = [
      { resourceType: 'Encounter', period: { start: '2019-02-14' } },
      { resourceType: 'Encounter', period: { start: '2019-02-20' } },
    ];
    for (const expr of [
      "%rp.where(relationship.coded('mother') or %two.period.start.daysAfter(%p.birthDate) <= 3)",
      "%rp.where(%two.period.start.daysAfter(%p.birthDate) <= 3 and relationship.coded('nothing-here').not())",
    ]) {
      const compiled = fast.compile(expr.replace('nothing-here', 'mother'), new Set([...vars, 'two']));
      assert.throws(() => compiled.evaluate(env.p, { ...env, two }), ExpressionRuntimeError, expr);
      assert.throws(() => compiled.evaluateReference(env.p, { ...env, two }), expr);
    }
  });

  it('implements coded(), daysAfter() and ref() as documented', () => {
    const ev = (e: string) => fast.compile(e, vars).evaluate(env.p, env);
    assert.deepEqual(ev("%rp.where(relationship.coded('mother')).count()"), [2]); // system|code, or bare code
    assert.deepEqual(ev('%e.period.start.daysAfter(%p.birthDate)'), [2]); // calendar dates as written
    assert.deepEqual(ev('%p.ref()'), ['Patient/p1']);
  });
});

describe('UTC date-times in a source time zone', () => {
  it('reads only UTC date-times in the zone; other offsets and dates keep their written date', () => {
    assert.equal(utcInZone('2024-05-10T22:30:00Z', 'Africa/Lusaka'), '2024-05-11', '00:30 on the 11th at +02:00');
    assert.equal(utcInZone('2024-05-10T21:30:00.000+00:00', 'Africa/Lusaka'), '2024-05-10');
    assert.equal(utcInZone('2024-05-10T22:30Z', 'America/Lima'), '2024-05-10', '17:30 at -05:00');
    assert.equal(utcInZone('2024-05-10T23:30:00+03:00', 'Africa/Lusaka'), undefined, 'an offset as written');
    assert.equal(utcInZone('2024-05-10', 'Africa/Lusaka'), undefined, 'a date is a date');
    assert.equal(utcInZone('2024-05-10T22:30:00Z', undefined), undefined, 'no zone: as written');
    assert.equal(calendarDate('2024-05-10T22:30:00Z', 'Asia/Dhaka'), '2024-05-11');
    assert.equal(calendarDate('2024-05-10T22:30:00Z'), '2024-05-10');
    assert.equal(daysBetween('2024-05-10', '2024-05-09T21:45:00Z', 'Africa/Nairobi'), 0);
    assert.equal(daysBetween('2024-05-10', '2024-05-09T21:45:00Z'), -1);
  });

  it('gives the same answers on the fast path and in fhirpath.js', () => {
    const zoned = new ExpressionCompiler('fhir', new Map(), true, 'Africa/Nairobi');
    const reference = new ExpressionCompiler('fhir', new Map(), false, 'Africa/Nairobi');
    const root = { resourceType: 'Encounter', period: { start: '2024-05-09T21:45:00Z' } };
    const vars = { birth: '2024-05-10' };
    for (const text of [
      'period.start.daysAfter(%birth)',
      'period.start.calendarDate()',
      'period.start.yearsAfter(%birth)',
    ]) {
      const names = new Set(['birth']);
      const fastOut = zoned.compile(text, names).evaluate(root, vars);
      assert.deepEqual(fastOut, reference.compile(text, names).evaluate(root, vars), text);
    }
    assert.deepEqual(zoned.compile('period.start.daysAfter(%birth)', new Set(['birth'])).evaluate(root, vars), [0]);
  });

  // FHIRPath N1 5.2.1: items whose criteria is false are not included. fhirpath.js 5.1.1 kept the items
  // whose criteria was a boolean read from the data and false; the fast path left them out.
  it('leaves out the items whose where()/exists() criteria is a false read from the data, on either engine', () => {
    const names = new Set(['items']);
    const flags = {
      items: [
        { resourceType: 'RelatedPerson', id: 'a', active: false },
        { id: 'b', active: true },
      ],
    };
    // A value that is no boolean (a string) sends the fast path's call to fhirpath.js, for the whole expression.
    const mixed = { items: [...flags.items, { id: 'c', active: 'yes' }, { id: 'd' }] };
    for (const source of ['fhir', 'dhis2'] as const) {
      const fastPath = new ExpressionCompiler(source, new Map());
      const reference = new ExpressionCompiler(source, new Map(), false);
      for (const [text, data, expected] of [
        ['%items.where(active).id', flags, ['b']],
        ['%items.where(active).id', mixed, ['b', 'c']],
        ['%items.exists(active)', { items: flags.items.slice(0, 1) }, [false]],
        ['%items.where(active.not()).id', flags, ['a']],
      ] as const) {
        const compiled = fastPath.compile(text, names);
        assert.equal(compiled.fast, true, text);
        const at = `${source}: ${text} on ${JSON.stringify(data)}`;
        assert.deepEqual(compiled.evaluate({}, data), expected, `fast path, ${at}`);
        assert.deepEqual(compiled.evaluateReference({}, data), expected, `fhirpath.js, ${at}`);
        assert.deepEqual(reference.compile(text, names).evaluate({}, data), expected, `without the fast path, ${at}`);
      }
    }
  });
});

describe('daysBetween (daysAfter)', () => {
  it('counts calendar days between the dates as written, and refuses what is not a full date', () => {
    assert.equal(daysBetween('2019-02-12', '2019-02-15T01:00:00+14:00'), 3, 'the local date, not the instant');
    assert.equal(daysBetween('2019-02-15', '2019-02-12'), -3);
    assert.equal(daysBetween('2024-02-28', '2024-03-01'), 2, 'a leap year');
    assert.equal(daysBetween('1969-12-31', '1970-01-01'), 1);
    assert.equal(daysBetween({ start: '2019-02-12T10:00:00Z' }, '2019-02-13'), 1, "a Period's start");
    for (const bad of ['2019-02', '2019-02-12X', '2019/02/12', '20190212', '2019-0a-12', '', 12, null, {}]) {
      assert.equal(daysBetween(bad, '2019-02-12'), undefined, String(bad));
      assert.equal(daysBetween('2019-02-12', bad), undefined, String(bad));
    }
  });

  it('counts days by arithmetic exactly as Date.UTC does, its roll-overs and 1900s years included', () => {
    // Every month 00–99 of years across the Gregorian rules (1600, 1700, 1900, 2000, 2100), and 0000–0099,
    // which Date.UTC reads as 1900–1999; a day enters linearly, so its end values suffice.
    const years = [0, 1, 4, 99, 100, 101, 400, 1600, 1700, 1899, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 9999];
    for (const year of years) {
      for (let month = 0; month <= 99; month++) {
        for (const day of [0, 1, 28, 29, 30, 31, 99]) {
          const text = `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
          assert.equal(daysBetween('1970-01-01', text), Date.UTC(year, month - 1, day) / 86_400_000, text);
        }
      }
    }
  });
});

describe('yearsBetween (yearsAfter)', () => {
  it('counts completed years with the precision both dates have', () => {
    assert.equal(yearsBetween('2023-12', '2024-01-10'), 0, 'an infant: the month tells it was under one');
    assert.equal(yearsBetween('1950-06', '2024-03-06'), 73);
    assert.equal(yearsBetween('1950-03', '2024-03-06'), 74, 'the same month: the day is not known, the years are');
    assert.equal(yearsBetween('1990-12-15', '2024-12-14'), 33, 'the day before the birthday');
    assert.equal(yearsBetween('1990-12-15', '2024-12-15'), 34, 'on the birthday');
    assert.equal(yearsBetween('2004-02-29', '2023-02-28'), 18, 'a leap-day birthday not yet reached');
    assert.equal(yearsBetween('1950', '2024-03-06'), 74, 'a year alone: the difference of the years');
    assert.equal(yearsBetween('1950-06-01', '2024-03-06T23:30:00Z', 'Africa/Lusaka'), 73);
    assert.equal(yearsBetween('2000-01-01', '2023-12-31T23:30:00Z', 'Africa/Lusaka'), 24, 'the zone makes it the 1st');
    assert.equal(yearsBetween({ start: '2000-05-01T10:00:00Z' }, '2024-05-01'), 24, "a Period's start");
    for (const bad of ['', '24', 'May 2024', 12, null, {}]) assert.equal(yearsBetween(bad, '2024-01-01'), undefined);
  });
});
