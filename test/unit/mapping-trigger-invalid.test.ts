// trigger.invalid: a record that looks like the event but whose data cannot show it is kept as invalid,
// with the rule's reason, instead of being dropped as "no evidence". First the format (compile, order,
// schema), then the shipped birth mapping's rule for a birth date without its day (OpenMRS estimates),
// then that record through the pipeline into a real ledger.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assembleContext } from '../../src/mapping/context.js';
import { bundleFetcher, loadMappings, type MapResult, mapInput, type Resource } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { SourcePipeline } from '../../src/sources/pipeline.js';
import { tempLedger } from './ledger-helpers.js';
import { mappingFiles } from './mapping-files.js';

const { write, loadError } = mappingFiles('mapping-trigger-invalid');
const routing = { defaultOffice: 'office-1', facilities: {} };

const RULES = `eventType: birth
source: fhir
subject: { type: Patient }
trigger:
  unless:
    - reason: stillbirth
      if: "%subject.gender = 'unknown'"
    - reason: inactive
      if: '%subject.active = false'
      withEvidence: true
  invalid:
    - reason: no birth date
      if: '%subject.birthDate.empty()'
  when:
    - evidence: a birth date
      if: '%subject.birthDate.exists()'
    - evidence: a document (needs no date)
      if: '%subject.identifier.exists()'
fields:
  child.name: '%subject.name'
`;

describe('trigger.invalid in a mapping file', () => {
  const set = loadMappings({ files: [write(RULES)], routing });
  const id = set.mappings[0]?.id ?? '';
  const map = async (patient: Record<string, unknown>) => {
    const subject = { resourceType: 'Patient', id: 'p', name: [{ family: 'Doe', given: ['Ann'] }], ...patient };
    return set.mapSubjectDetailed(id, 'Patient/p', bundleFetcher([subject as Resource]));
  };

  it('keeps a record without evidence that it matches as invalid with the reason; evidence that needs no date maps it', async () => {
    assert.equal(set.mappings[0]?.invalid.length, 1);
    const { result, excluded, noEvidence } = await map({});
    // The records it was read from are fingerprinted, as a mapped one's (ledger/record.ts compares them).
    const { sourceFingerprint, ...rest } = result as Extract<typeof result, { status: 'invalid' }>;
    assert.match(sourceFingerprint?.() ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(rest, {
      status: 'invalid',
      mappingId: id,
      eventType: 'birth',
      subjectRef: 'Patient/p',
      sourceRef: 'Patient/p',
      errors: [{ field: 'trigger', message: 'no birth date' }],
    });
    assert.equal(excluded, undefined);
    assert.equal(noEvidence, undefined);
    assert.equal((await map({ birthDate: '2024-05-10' })).result.status, 'mapped');
    assert.equal((await map({ identifier: [{ value: 'doc-1' }] })).result.status, 'mapped');
  });

  it('comes after the exclusions: those checked first, and those checked with the evidence', async () => {
    assert.equal((await map({})).result.status, 'invalid', 'without them, the rule holds');
    const stillbirth = await map({ gender: 'unknown' });
    assert.ok(stillbirth.result.status === 'skipped' && stillbirth.excluded, JSON.stringify(stillbirth));
    assert.equal(stillbirth.result.reason, 'stillbirth');
    // A record merged away is skipped as such: no one corrects the birth date of a duplicate.
    const inactive = await map({ active: false });
    assert.ok(inactive.result.status === 'skipped' && inactive.excluded, JSON.stringify(inactive));
    assert.equal(inactive.result.reason, 'inactive');
  });

  it('refuses an unknown key in an invalid rule, and names the rule of a bad expression', () => {
    const key = loadError(RULES.replace("if: '%subject.birthDate.empty()'", "if: 'true'\n      withEvidence: true"));
    assert.equal(key.path, 'trigger.invalid[0].withEvidence');
    assert.match(key.message, /unknown key/);
    const missing = loadError(RULES.replace('    - reason: no birth date\n', '    - '));
    assert.equal(missing.path, 'trigger.invalid[0].reason');
    const element = loadError(RULES.replace('%subject.birthDate.empty()', '%subject.birthdate.empty()'));
    assert.equal(element.path, 'trigger.invalid[0].if');
    assert.match(element.message, /Patient has no element 'birthdate'/);
  });
});

const birth = loadMappings({ names: ['birth.fhir'], routing });

describe('the shipped birth mapping on a birth date without its day', () => {
  /** A newborn (or not) and what else the EMR recorded about it. */
  const record = (birthDate: string, ...others: Array<Record<string, unknown>>) => ({
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      { resource: { resourceType: 'Patient', id: 'baby', birthDate, gender: 'female', name: [{ family: 'Banda' }] } },
      ...others.map((r, i) => ({ resource: { id: `r${i}`, status: 'finished', ...r } })),
    ],
  });
  const encounter = (start: string) => ({
    resourceType: 'Encounter',
    subject: { reference: 'Patient/baby' },
    period: { start },
  });
  const reasonOf = (r: MapResult) => {
    assert.ok(r.status === 'invalid', JSON.stringify(r));
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]?.field, 'trigger');
    return r.errors[0]?.message ?? '';
  };

  it('keeps a year-month newborn with an encounter that month as invalid, with a reason that holds no data', async () => {
    const reason = reasonOf(await mapInput(birth, record('2024-06', encounter('2024-06-28T09:00:00+02:00'))));
    assert.match(reason, /^birth date has no day \(year and month only\): the birth cannot be dated; correct /);
    assert.doesNotMatch(reason, /\d/, 'no date in the reason');
    // The same child with its full birth date is a birth.
    const full = await mapInput(birth, record('2024-06-27', encounter('2024-06-28T09:00:00+02:00')));
    assert.equal(full.status, 'mapped', JSON.stringify(full));
    assert.equal(full.status === 'mapped' && full.declaration['child.dob'], '2024-06-27');
  });

  const weight = {
    resourceType: 'Observation',
    status: 'final',
    subject: { reference: 'Patient/baby' },
    code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] },
    effectiveDateTime: '2024-06-03',
    valueQuantity: { value: 3100, unit: 'g', system: 'http://unitsofmeasure.org', code: 'g' },
  };
  const mother = {
    resourceType: 'RelatedPerson',
    meta: { lastUpdated: '2024-06-12T08:00:00+02:00' },
    patient: { reference: 'Patient/baby' },
    relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH' }] }],
  };

  it('notifies a year-month newborn whose evidence needs no date (a birth document), child.dob left out', async () => {
    const document = {
      resourceType: 'Composition',
      subject: { reference: 'Patient/baby' },
      type: { coding: [{ system: 'http://loinc.org', code: '68998-4' }] },
      date: '2024-06-28',
      title: 'Live birth report',
      author: [{ display: 'clinic' }],
    };
    const result = await mapInput(birth, record('2024-06', encounter('2024-06-28T09:00:00+02:00'), document));
    assert.equal(result.status, 'mapped', JSON.stringify(result));
    assert.equal(result.status === 'mapped' && result.declaration['child.dob'], undefined);
  });

  it('takes a newborn measurement or a mother linked that month as the sign of a birth too', async () => {
    reasonOf(await mapInput(birth, record('2024-06', weight)));
    reasonOf(await mapInput(birth, record('2024-06', mother)));
  });

  it("gives fhirpath.js's answer on the fast path, which it never leaves", async () => {
    const [mapping] = birth.mappings;
    const rule = mapping?.invalid[0]?.expr;
    assert.ok(mapping && rule?.fast);
    const signs = [encounter('2024-06-28T09:00:00+02:00'), weight, mother];
    for (const birthDate of ['2024-06', '2024-07', '2024-06-27', '2024', '1950-06']) {
      const out = await assembleContext(mapping, 'Patient/baby', bundleFetcher(record(birthDate, ...signs)));
      assert.ok('context' in out);
      const { subject, vars } = out.context;
      const reference = rule.evaluateReference(subject, vars);
      assert.deepEqual(rule.evaluate(subject, vars), reference, birthDate);
      assert.equal(reference[0] === true, birthDate === '2024-06', birthDate);
    }
    assert.equal(rule.fallbacks, 0);
  });

  it('leaves no row for an adult or an older child with an estimated birth date, nor for a year alone', async () => {
    const now = new Date().toISOString();
    // Each beside the same record with an encounter in the birth month, which is kept as invalid.
    const cases = [
      ['an adult seen now', '1950-06', now, '1950-06-15'],
      ['a child seen the month after', '2024-06', '2024-07-01T09:00:00+02:00', '2024-06-30T09:00:00+02:00'],
      ['a child seen the month before', '2024-06', '2024-05-31T09:00:00+02:00', '2024-06-01T09:00:00+02:00'],
      ['a year alone', '2024', '2024-06-28T09:00:00+02:00', undefined],
    ] as const;
    for (const [what, birthDate, seen, sameMonth] of cases) {
      const bundle = record(birthDate, encounter(seen));
      const { result, excluded } = await birth.mapSubjectDetailed('birth.fhir', 'Patient/baby', bundleFetcher(bundle));
      assert.ok(result.status === 'skipped', `${what}: ${JSON.stringify(result)}`);
      assert.match(result.reason, /^no birth evidence/, what);
      assert.notEqual(excluded, true, `${what}: not an exclusion either (no ledger row)`);
      const control = sameMonth ? record(birthDate, encounter(sameMonth)) : record('2024-06', encounter(seen));
      reasonOf(await mapInput(birth, control));
    }
  });

  it('skips a merged duplicate as merged: no one corrects the birth date of a record merged away', async () => {
    const bundle = record('2024-06', encounter('2024-06-28T09:00:00+02:00'));
    const patient = bundle.entry[0]?.resource as Record<string, unknown>;
    patient.link = [{ other: { reference: 'Patient/surviving-record' }, type: 'replaced-by' }];
    const merged = await mapInput(birth, bundle);
    assert.ok(merged.status === 'skipped', JSON.stringify(merged));
    assert.match(merged.reason, /^merged into another record/);
  });
});

describe('a birth kept as invalid by a trigger rule, in the ledger', () => {
  it('is a dead row with the reason until the EMR corrects it; the correction requeues that row', async () => {
    const { ledger, cleanup } = tempLedger();
    try {
      const pipeline = new SourcePipeline({ sourceId: 'emr', mappings: birth, ledger, logger: silentLogger });
      const child = { resourceType: 'Patient', id: 'baby', birthDate: '2024-06', name: [{ family: 'Banda' }] };
      const encounter = {
        resourceType: 'Encounter',
        id: 'enc',
        status: 'finished',
        subject: { reference: 'Patient/baby' },
        period: { start: '2024-06-27T09:00:00+02:00' },
      };
      const pass = async (patient: Record<string, unknown>) => {
        const resources = [patient, encounter] as Resource[];
        const { results } = await pipeline.evaluate(resources, bundleFetcher(resources));
        return pipeline.commit(results);
      };

      assert.equal((await pass(child)).invalid, 1);
      const dead = ledger.findByKey('emr', 'birth', 'Patient/baby');
      assert.ok(dead);
      assert.equal(dead.state, 'dead');
      assert.equal(dead.payload, null);
      assert.deepEqual(
        { kind: dead.lastError?.kind, classification: dead.lastError?.classification },
        { kind: 'mapping', classification: 'permanent' },
      );
      assert.match(dead.lastError?.message ?? '', /^trigger: birth date has no day \(year and month only\)/);

      const corrected = await pass({ ...child, birthDate: '2024-06-26', meta: { versionId: '2' } });
      assert.equal(corrected.mapped.replaced, 1);
      const row = ledger.findByKey('emr', 'birth', 'Patient/baby');
      assert.ok(row);
      assert.equal(row.id, dead.id, 'the same row');
      assert.equal(row.state, 'pending');
      assert.equal(row.lastError, null);
      assert.equal(row.sourceRef, 'Encounter/enc');
      assert.equal(row.payload?.declaration['child.dob'], '2024-06-26');
      assert.equal(row.requeues, 1);
    } finally {
      cleanup();
    }
  });
});
