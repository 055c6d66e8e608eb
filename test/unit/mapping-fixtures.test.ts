// The default FHIR mappings on real third-party data (test/fixtures/*/PROVENANCE.md). Every expected value
// below was read from the fixture files, not from the engine's output.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  bundleFetcher,
  loadMappings,
  type MappedResult,
  type MapResult,
  mapInput,
  mapSubject,
} from '../../src/mapping/index.js';

function fixture(path: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8'));
}

function mapped(result: MapResult): MappedResult {
  assert.equal(result.status, 'mapped', JSON.stringify(result));
  return result as MappedResult;
}

const routing = { defaultOffice: 'default-office', facilities: {} };
const all = loadMappings({ routing });
const birthOnly = loadMappings({ names: ['birth.fhir'], routing });
// The CIEL source's FHIR URL OpenMRS sites configure through the Initializer module (its fhir.md).

describe('BFDR live birth report (HL7 BFDR IG example, Baby G Quinn)', () => {
  const bundle = fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json');

  it('maps the child, the birth weight in kg, plurality, attendant and both parents', async () => {
    const r = mapped(await mapInput(all, bundle));
    assert.equal(r.eventType, 'birth');
    assert.equal(r.subjectRef, 'Patient/patient-child-babyg-quinn');
    assert.equal(r.sourceRef, 'Composition/composition-provider-live-birth-babyg-quinn');
    const d = r.declaration;
    assert.deepEqual(d['child.name'], { firstname: 'Baby', middlename: 'G', surname: 'Quinn' });
    assert.equal(d['child.gender'], 'female');
    assert.equal(d['child.dob'], '2019-02-12');
    assert.equal(d['child.weightAtBirth'], 2.5); // Observation 8339-4: 2500 g
    assert.equal(d['child.birthType'], 'TWIN'); // 73773-4 on the mother, focus = child: 2 live births
    assert.equal(d['child.attendantAtBirth'], 'PHYSICIAN'); // attendant qualification SNOMED 76231001 (osteopath)
    assert.deepEqual(d['mother.name'], { firstname: 'Jada', middlename: 'Ann', surname: 'Quinn' });
    assert.equal(d['mother.dob'], '1985-01-15');
    assert.deepEqual(d['father.name'], { firstname: 'James', middlename: 'Brandon', surname: 'Quinn' });
    assert.equal(d['father.dob'], '1972-11-24');
    // Her home address (not the billing one), country 'US' as alpha-2: another country's street details.
    assert.deepEqual(d['mother.address'], {
      country: 'USA',
      addressType: 'INTERNATIONAL',
      streetLevelDetails: {
        state: 'UT',
        district2: 'Salt Lake',
        cityOrTown: 'Salt Lake City',
        addressLine1: '1875 West Morton Avenue',
        postcodeOrZip: '84116',
      },
    });
    // Observations on the child: education by code (57712-2 mother, 87300-0 father: POSTG, doctoral), the
    // present job (11341-5) by its role extension (MTH Carpenter, FTH Lawyer).
    assert.equal(d['mother.educationalAttainment'], 'FIRST_STAGE_TERTIARY_ISCED_5');
    assert.equal(d['father.educationalAttainment'], 'FIRST_STAGE_TERTIARY_ISCED_5');
    assert.equal(d['mother.occupation'], 'Carpenter');
    assert.equal(d['father.occupation'], 'Lawyer');
  });

  it('leaves out an education level the form has no option for (UNK), with a warning, not the record', async () => {
    const copy = structuredClone(bundle) as { entry: { resource: Record<string, unknown> }[] };
    const education = copy.entry.find((e) => e.resource.id === 'observation-parent-education-level-jada-ann-quinn');
    assert.ok(education, 'the fixture has the mother education observation');
    education.resource.valueCodeableConcept = {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor', code: 'UNK' }],
    };
    const r = mapped(await mapInput(birthOnly, copy));
    assert.equal(r.declaration['mother.educationalAttainment'], undefined);
    assert.equal(r.declaration['father.educationalAttainment'], 'FIRST_STAGE_TERTIARY_ISCED_5');
    assert.ok(
      r.warnings.some((w) => w.startsWith('mother.educationalAttainment')),
      r.warnings.join('\n'),
    );
  });

  // BFDR 2.0 ValueSet-birth-attendant-titles (also the VR Common Library's), as published by HL7:
  // every title an EMR following the IG can send must reach the form, except OTH and UNK.
  const BFDR_ATTENDANT_TITLES: [string, string | undefined][] = [
    ['http://snomed.info/sct|112247003', 'PHYSICIAN'], // Medical Doctor
    ['http://snomed.info/sct|76231001', 'PHYSICIAN'], // Osteopath
    ['http://snomed.info/sct|445521000124102', 'MIDWIFE'], // Advanced Practice Midwife
    ['http://snomed.info/sct|445531000124104', 'TRADITIONAL_BIRTH_ATTENDANT'], // Lay Midwife
    ['http://terminology.hl7.org/CodeSystem/v3-NullFlavor|OTH', undefined],
    ['http://terminology.hl7.org/CodeSystem/v3-NullFlavor|UNK', undefined],
  ];
  for (const [coding, expected] of BFDR_ATTENDANT_TITLES) {
    it(`maps the BFDR birth attendant title ${coding} to ${expected ?? 'nothing'}`, async () => {
      const copy = structuredClone(bundle) as { entry: { resource: Record<string, unknown> }[] };
      const [system, code] = coding.split('|');
      const practitioner = copy.entry.find((e) => e.resource.id === 'practitioner-vital-records-avery-jones');
      assert.ok(practitioner, 'the fixture has the attendant Practitioner');
      practitioner.resource.qualification = [{ code: { coding: [{ system, code }] } }];
      const r = mapped(await mapInput(birthOnly, copy));
      assert.equal(r.declaration['child.attendantAtBirth'], expected);
    });
  }

  it('routes by the birth Location, by reference or by its NPI identifier', async () => {
    const byRef = loadMappings({
      names: ['birth.fhir'],
      routing: { facilities: { 'Location/location-south-hospital': { office: 'office-a', facility: 'fac-a' } } },
    });
    const r = mapped(await mapInput(byRef, bundle));
    assert.equal(r.routing.office, 'office-a');
    assert.equal(r.routing.facility, 'fac-a');
    assert.equal(r.routing.sourceLocation, 'Location/location-south-hospital');
    assert.equal(r.declaration['child.birthLocation'], 'fac-a');
    assert.equal(r.declaration['child.birthLocationId'], 'fac-a');
    assert.equal(r.declaration['child.placeOfBirth'], 'HEALTH_FACILITY');

    const byIdentifier = loadMappings({
      names: ['birth.fhir'],
      routing: { facilities: { 'http://hl7.org/fhir/sid/us-npi|116441967701': { office: 'office-b' } } },
    });
    const r2 = mapped(await mapInput(byIdentifier, bundle));
    assert.equal(r2.routing.office, 'office-b');
    assert.equal(r2.declaration['child.birthLocation'], undefined, 'no facility: the route names only an office');
  });

  it('routes by a bare Location id as the docs allow, and a change of office changes the payload hash', async () => {
    const byBareId = loadMappings({
      names: ['birth.fhir'],
      routing: { facilities: { 'location-south-hospital': { office: 'office-c' } } },
    });
    const bare = mapped(await mapInput(byBareId, bundle));
    assert.equal(bare.routing.office, 'office-c');
    // The same record under another office must not look unchanged: the ledger would keep the old office.
    const other = loadMappings({
      names: ['birth.fhir'],
      routing: { facilities: { 'location-south-hospital': { office: 'office-d' } } },
    });
    const moved = mapped(await mapInput(other, bundle));
    assert.deepEqual(moved.declaration, bare.declaration);
    assert.notEqual(moved.payloadHash, bare.payloadHash);
  });

  it('takes the first route the record matches, in the order the mapping tries its keys', async () => {
    const both = loadMappings({
      names: ['birth.fhir'],
      routing: {
        facilities: {
          'http://hl7.org/fhir/sid/us-npi|116441967701': { office: 'office-by-identifier' },
          'Location/location-south-hospital': { office: 'office-by-reference' },
        },
      },
    });
    const r = mapped(await mapInput(both, bundle));
    assert.equal(r.routing.office, 'office-by-reference', 'the Location reference is tried before its identifier');
  });

  it('is invalid without any office, and says how to fix it', async () => {
    const noRouting = loadMappings({ names: ['birth.fhir'] });
    const r = await mapInput(noRouting, bundle);
    assert.equal(r.status, 'invalid');
    assert.ok(r.status === 'invalid');
    assert.equal(r.errors[0]?.field, 'createdAtLocation');
    assert.match(r.errors[0]?.message ?? '', /routing\.facilities.*routing\.defaultOffice/);
  });

  it('uses the resolved OpenCRVS ids for the office and the facility fields when a resolver is given', async () => {
    const set = loadMappings({
      names: ['birth.fhir'],
      routing: { facilities: { 'Location/location-south-hospital': { office: 'HQ', facility: 'EXT-1' } } },
    });
    const ids: Record<string, string> = {
      HQ: 'a0000000-0000-4000-8000-000000000001',
      'EXT-1': 'b0000000-0000-4000-8000-000000000002',
    };
    const r = mapped(await mapInput(set, bundle, { resolveLocation: (ref) => ids[ref] }));
    assert.equal(r.routing.office, ids.HQ);
    assert.equal(r.declaration['child.birthLocation'], ids['EXT-1']);
    assert.equal(r.declaration['child.birthLocationId'], ids['EXT-1']);
    assert.ok(!r.warnings.some((w) => /as configured/.test(w)));
  });
});

describe('fetal deaths are never live births', () => {
  it('skips the BFDR fetal death report with the reason', async () => {
    const r = await mapInput(all, fixture('fhir/bfdr/Bundle-bundle-provider-fetal-death-not-named.json'));
    assert.equal(r.status, 'skipped');
    assert.ok(r.status === 'skipped');
    assert.match(r.reason, /fetal death/);
  });

  it('skips the fetus Patient alone (profile and fetal-death extension), for births and deaths', async () => {
    const fetus = fixture('fhir/bfdr/Patient-patient-decedent-fetus-not-named.json');
    const fetcher = bundleFetcher([fetus]);
    for (const id of ['birth.fhir', 'death.fhir']) {
      const r = await mapSubject(all, id, 'Patient/patient-decedent-fetus-not-named', fetcher);
      assert.equal(r.status, 'skipped');
      assert.ok(r.status === 'skipped');
      assert.match(r.reason, /fetal death/);
    }
  });

  it('skips a fetus identified only by the fetal-death extension on deceasedBoolean', async () => {
    const fetus = fixture('fhir/bfdr/Patient-patient-decedent-fetus-not-named.json') as Record<string, unknown>;
    const r = await mapInput(birthOnly, [{ ...fetus, meta: undefined }]);
    assert.equal(r.status, 'skipped');
    assert.ok(r.status === 'skipped');
    assert.match(r.reason, /fetal-death extension/);
  });
});

describe('VRDR death certificate (HL7 VRDR IG example)', () => {
  it('maps the decedent, the date of death from the DeathDate observation and the manner of death', async () => {
    const r = mapped(await mapInput(all, fixture('fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json')));
    assert.equal(r.eventType, 'death');
    assert.equal(r.sourceRef, 'Observation/DeathDate-Example1');
    const d = r.declaration;
    assert.deepEqual(d['deceased.name'], { firstname: 'Madelyn', surname: 'Patel' });
    assert.equal(d['deceased.gender'], 'female');
    assert.equal(d['deceased.dob'], '1978-03-12');
    // valueDateTime is absent; the partial-date extension has year 2020, month 11, day 12
    assert.equal(d['eventDetails.date'], '2020-11-12');
    assert.equal(d['eventDetails.mannerOfDeath'], 'MANNER_NATURAL'); // SNOMED 38605008
    assert.equal(d['eventDetails.placeOfDeath'], 'HEALTH_FACILITY'); // SNOMED 16983000 death in hospital
    assert.equal(d['deceased.maritalStatus'], 'SINGLE'); // v3 MaritalStatus S
    assert.equal(r.routing.sourceLocation, 'Location/DeathLocation-Example1');
    // The certified cause, line by line: part 1 line 1 "Cardiopulmonary arrest" (4 hours), line 2
    // "Eclampsia" (3 months), part 2 "hypertensive heart disease"; each as "Other" with the text.
    const other = { label: 'Other', value: 'OTHER' };
    assert.equal(d['eventDetails.sourceCauseDeath'], 'PHYSICIAN');
    assert.deepEqual(d['causeOfDeathDetails.causeOfDeathA.symptom.one'], other);
    assert.equal(d['causeOfDeathDetails.causeOfDeathA.symptom.one.other'], 'Cardiopulmonary arrest');
    assert.deepEqual(d['causeOfDeathDetails.causeOfDeathA.interval'], { numericValue: 4, unit: 'Hours' });
    assert.deepEqual(d['causeOfDeathDetails.causeOfDeathB.symptom.one'], other);
    assert.equal(d['causeOfDeathDetails.causeOfDeathB.symptom.one.other'], 'Eclampsia');
    assert.deepEqual(d['causeOfDeathDetails.causeOfDeathB.interval'], { numericValue: 3, unit: 'Months' });
    assert.equal(d['causeOfDeathDetails.causeOfDeathC.symptom.one'], undefined);
    assert.deepEqual(d['causeOfDeathDetails.causeOfDeathOther.symptom.one'], other);
    assert.equal(d['causeOfDeathDetails.causeOfDeathOther.symptom.one.other'], 'hypertensive heart disease');
  });

  it('sends a cause without a line number as the immediate cause, its semicolons as commas', async () => {
    const bundle = fixture('fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json') as {
      entry: { resource: Record<string, unknown> }[];
    };
    bundle.entry = bundle.entry.filter((e) => e.resource.id !== 'CauseOfDeathPart1-Example2');
    const line1 = bundle.entry.find((e) => e.resource.id === 'CauseOfDeathPart1-Example1')?.resource;
    assert.ok(line1);
    line1.component = [];
    line1.valueCodeableConcept = { text: 'Sepsis; pneumonia' };
    const d = mapped(await mapInput(all, bundle)).declaration;
    assert.equal(d['causeOfDeathDetails.causeOfDeathA.symptom.one.other'], 'Sepsis, pneumonia');
    assert.equal(d['causeOfDeathDetails.causeOfDeathA.interval'], undefined);
    assert.equal(d['causeOfDeathDetails.causeOfDeathB.symptom.one'], undefined);
  });

  it('sends no cause fields to a v1.9 form, which has none (the mapping keys end in ?)', async () => {
    const v19 = loadMappings({ version: '1.9', routing });
    const d = mapped(
      await mapInput(v19, fixture('fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json')),
    ).declaration;
    assert.equal(d['eventDetails.causeOfDeathEstablished'], true);
    assert.deepEqual(
      Object.keys(d).filter((k) => k.startsWith('causeOfDeathDetails.')),
      [],
    );
  });
});

describe('values the data gives but cannot be used as they are', () => {
  type Entry = { resource: Record<string, unknown> };
  const vrdr = () => fixture('fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json') as { entry: Entry[] };
  const byId = (bundle: { entry: Entry[] }, id: string) => {
    const found = bundle.entry.find((e) => e.resource.id === id)?.resource;
    assert.ok(found, id);
    return found;
  };

  it('a date of death only partial in the VRDR observation is taken whole from the next source that has it', async () => {
    const bundle = vrdr();
    const observation = byId(bundle, 'DeathDate-Example1');
    delete observation._valueDateTime;
    observation.valueDateTime = '2020-11';
    const partialOnly = mapped(await mapInput(all, bundle));
    assert.equal(partialOnly.declaration['eventDetails.date'], undefined);
    assert.ok(
      partialOnly.warnings.some((w) => /eventDetails\.date: .*not complete/.test(w)),
      partialOnly.warnings.join('; '),
    );
    byId(bundle, 'Decedent-Example1').deceasedDateTime = '2020-11-12T16:39:40-05:00';
    const completed = mapped(await mapInput(all, bundle));
    assert.equal(completed.declaration['eventDetails.date'], '2020-11-12');
    assert.ok(!completed.warnings.some((w) => /eventDetails\.date/.test(w)));
  });

  it('a code no value map knows (marital status C, manner UNK) leaves that field out with a warning, not the record', async () => {
    const bundle = vrdr();
    const decedent = byId(bundle, 'Decedent-Example1');
    decedent.maritalStatus = {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'C' }],
    };
    const manner = bundle.entry.find(
      (e) => JSON.stringify(e.resource.code ?? {}).includes('69449-7'), // VRDR manner of death
    )?.resource;
    assert.ok(manner);
    manner.valueCodeableConcept = {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor', code: 'UNK' }],
    };
    const r = mapped(await mapInput(all, bundle));
    assert.equal(r.declaration['deceased.maritalStatus'], undefined);
    assert.equal(r.declaration['eventDetails.mannerOfDeath'], undefined);
    assert.deepEqual(
      r.warnings.filter((w) => /value map (maritalStatus|manner) leaves this value out/.test(w)).length,
      2,
    );
    assert.deepEqual(r.declaration['deceased.name'], { firstname: 'Madelyn', surname: 'Patel' });
  });
});

describe('a place of event the source states', () => {
  it('a death the certificate places at home sends no facility, even when its location has a route', async () => {
    const bundle = fixture('fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json') as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    const routed = loadMappings({
      names: ['death.fhir'],
      routing: {
        defaultOffice: 'default-office',
        facilities: { 'Location/DeathLocation-Example1': { office: 'o-1', facility: 'f-1' } },
      },
    });
    const atHospital = mapped(await mapInput(routed, structuredClone(bundle)));
    assert.equal(atHospital.declaration['eventDetails.deathLocation'], 'f-1');
    const text = JSON.stringify(bundle).replace('"16983000"', '"440081000124100"'); // death in hospital → in home
    const atHome = mapped(await mapInput(routed, JSON.parse(text)));
    assert.equal(atHome.declaration['eventDetails.placeOfDeath'], 'DECEASED_USUAL_RESIDENCE');
    assert.equal(atHome.declaration['eventDetails.deathLocation'], undefined);
    assert.equal(atHome.routing.office, 'o-1', 'the office is still the one of the place that reported it');
    assert.equal(atHospital.routing.facility, 'f-1');
    assert.equal(atHome.routing.facility, undefined, 'nor in the payload beside the declaration');
    assert.ok(atHome.warnings.some((w) => /placeOfDeath is DECEASED_USUAL_RESIDENCE in the source/.test(w)));
  });
});

describe('a source that writes its date-times in UTC (sources[].timeZone)', () => {
  // The OpenMRS birth: born 2024-05-14 (Patient.birthDate), its encounter written with +03:00.
  type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
  const utcBirth = () => {
    const bundle = structuredClone(fixture('fhir/openmrs/openmrs-birth-bundle.json')) as Entries;
    const encounter = bundle.entry.find((e) => e.resource.resourceType === 'Encounter')?.resource;
    assert.ok(encounter);
    encounter.period = { start: '2024-05-13T22:10:00Z' }; // 01:10 on the 14th in Nairobi (+03:00)
    return bundle;
  };

  it('reads them in the zone: a birth encounter stored in UTC falls on the birth day', async () => {
    const nairobi = loadMappings({ names: ['birth.fhir'], routing, timeZone: 'Africa/Nairobi' });
    const r = mapped(await mapInput(nairobi, utcBirth()));
    assert.equal(r.declaration['child.dob'], '2024-05-14');
  });

  it('finds the birth without the zone too: read as written its encounter starts the day before, still evidence', async () => {
    const asWritten = mapped(await mapInput(birthOnly, utcBirth()));
    assert.equal(asWritten.declaration['child.dob'], '2024-05-14');
    // Two days before is no birth encounter: an adult's visit the day before a birthday stays no birth.
    const early = utcBirth();
    const encounter = early.entry.find((e) => e.resource.resourceType === 'Encounter')?.resource;
    assert.ok(encounter);
    encounter.period = { start: '2024-05-12T10:00:00Z' };
    const observations = early.entry.filter((e) => e.resource.resourceType !== 'Observation');
    assert.equal((await mapInput(birthOnly, { ...early, entry: observations })).status, 'skipped');
  });

  it('dates a death stored in UTC on the local calendar', async () => {
    const bundle = structuredClone(fixture('fhir/openmrs/openmrs-death-bundle.json')) as Entries;
    const deceased = bundle.entry.find((e) => e.resource.resourceType === 'Patient')?.resource;
    assert.ok(deceased);
    deceased.deceasedDateTime = '2024-03-05T22:15:00Z'; // 01:15 on the 6th in Nairobi
    const nairobi = loadMappings({ names: ['death.fhir'], routing, timeZone: 'Africa/Nairobi' });
    assert.equal(mapped(await mapInput(nairobi, bundle)).declaration['eventDetails.date'], '2024-03-06');
    assert.equal(mapped(await mapInput(all, bundle)).declaration['eventDetails.date'], '2024-03-05', 'no zone');
  });
});

describe('a dry run of an input that is no event', () => {
  it("names every mapping's reason, not only the first mapping's", async () => {
    const r = await mapInput(all, { resourceType: 'Patient', id: 'adult', birthDate: '1980-01-01' });
    assert.ok(r.status === 'skipped', JSON.stringify(r));
    assert.match(r.reason, /birth\.fhir: no birth evidence/);
    assert.match(r.reason, /death\.fhir: no death evidence/);
  });
});

describe('the mother-link evidence', () => {
  const linked = (birthDate: string) => ({
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      { resource: { resourceType: 'Patient', id: 'baby', birthDate, gender: 'female', name: [{ family: 'Banda' }] } },
      {
        resource: {
          resourceType: 'RelatedPerson',
          id: 'mum',
          meta: { lastUpdated: '2026-03-10T08:00:00+02:00' },
          patient: { reference: 'Patient/baby' },
          relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH' }] }],
          name: [{ family: 'Banda', given: ['Ruth'] }],
        },
      },
    ],
  });

  it('holds for a link made on the birth day up to 28 days later, not for a birth date after the link', async () => {
    assert.equal(
      mapped(await mapInput(birthOnly, linked('2026-03-09'))).evidence,
      'mother linked within 28 days of the birth (RelatedPerson GESTM/MTH/NMTH)',
    );
    assert.equal((await mapInput(birthOnly, linked('2026-02-01'))).status, 'skipped', '37 days before the link');
    const future = await mapInput(birthOnly, linked('2099-03-04')); // a typo: not a birth linked now
    assert.ok(future.status === 'skipped', JSON.stringify(future));
    assert.match(future.reason, /^no birth evidence/);
  });
});

describe('Synthea patients', () => {
  it('a deceased child maps as a death dated from deceasedDateTime (its own calendar date)', async () => {
    const r = mapped(
      await mapInput(all, fixture('fhir/synthea/Garrett_Thompson_5a72e290-8102-4c8a-84f7-f838387508b2.json')),
    );
    assert.equal(r.eventType, 'death');
    assert.deepEqual(r.declaration['deceased.name'], { firstname: 'Garrett', surname: 'Thompson' });
    assert.equal(r.declaration['deceased.gender'], 'male');
    assert.equal(r.declaration['deceased.dob'], '1972-03-30');
    assert.equal(r.declaration['eventDetails.date'], '1973-07-19'); // 1973-07-19T11:50:40+00:00
    // Its first encounter is on its birth day, so it is also a birth: the dry run says so.
    assert.ok(r.warnings.some((w) => w.includes('birth.fhir')));
  });

  it('a young child whose first encounter is on its birth day maps as a birth, weight from that day', async () => {
    const bundle = fixture('fhir/synthea/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json');
    const r = mapped(await mapInput(all, bundle));
    assert.equal(r.eventType, 'birth');
    assert.match(r.evidence ?? '', /encounter/);
    assert.deepEqual(r.declaration['child.name'], { firstname: 'Luigi', surname: 'Wiegand' });
    assert.equal(r.declaration['child.gender'], 'male');
    assert.equal(r.declaration['child.dob'], '2020-10-20');
    assert.equal(r.declaration['child.weightAtBirth'], 3.254); // 29463-7 on 2020-10-20: 3.2540948513714594 kg
    assert.equal(r.declaration['child.birthType'], 'SINGLE'); // multipleBirthBoolean false
    assert.equal(r.routing.sourceLocation, 'Organization/8b58cdd1-3d79-3126-8fe0-da2c54d6805c');
  });

  it('a patient whose encounters are decades after the birth is not a birth', async () => {
    const bundle = fixture('fhir/synthea/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json') as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    const older = structuredClone(bundle);
    const patient = older.entry.find((e) => e.resource.resourceType === 'Patient');
    assert.ok(patient);
    patient.resource.birthDate = '1985-10-20';
    const r = await mapInput(birthOnly, older);
    assert.equal(r.status, 'skipped');
  });
});

describe('records the EMR merged into another or marked inactive', () => {
  type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
  const withPatient = (path: string, id: string, change: Record<string, unknown>) => {
    const bundle = structuredClone(fixture(path)) as Entries;
    const patient = bundle.entry.find((e) => e.resource.resourceType === 'Patient' && e.resource.id === id);
    assert.ok(patient, `the fixture has Patient/${id}`);
    Object.assign(patient.resource, change);
    return bundle;
  };
  const merged = { link: [{ other: { reference: 'Patient/surviving-record' }, type: 'replaced-by' }] };
  const cases = [
    ['birth', 'fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json', 'patient-child-babyg-quinn'],
    ['death', 'fhir/openmrs/openmrs-death-bundle.json', '0b42f99b-776e-4388-8f6f-84357ae2a8fb'],
  ] as const;
  for (const [event, path, id] of cases) {
    it(`skips a ${event} whose patient was merged into another record, or is inactive, with the reason`, async () => {
      assert.equal((await mapInput(all, withPatient(path, id, {}))).status, 'mapped', 'the record as published maps');
      const gone = await mapInput(all, withPatient(path, id, merged));
      assert.ok(gone.status === 'skipped', JSON.stringify(gone));
      assert.match(gone.reason, /^merged into another record/);
      const inactive = await mapInput(all, withPatient(path, id, { active: false }));
      assert.ok(inactive.status === 'skipped', JSON.stringify(inactive));
      assert.match(inactive.reason, /^inactive record/);
    });
  }

  it('checks them only for records that are an event: an inactive adult is just no birth', async () => {
    const adult = {
      resourceType: 'Patient',
      id: 'merged-adult',
      active: false,
      birthDate: '1980-01-01',
      gender: 'female',
    };
    const fetcher = bundleFetcher([adult]);
    for (const id of ['birth.fhir', 'death.fhir']) {
      const { result, excluded } = await all.mapSubjectDetailed(id, 'Patient/merged-adult', fetcher);
      assert.ok(result.status === 'skipped', JSON.stringify(result));
      assert.match(result.reason, /^no (birth|death) evidence/);
      assert.notEqual(excluded, true, 'not an exclusion: the ledger records nothing for it');
    }
  });
});

describe('resources the EMR marked entered in error', () => {
  type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
  it('are no evidence: a newborn whose encounter and weight were entered in error is no birth', async () => {
    const bundle = structuredClone(fixture('fhir/openmrs/openmrs-birth-bundle.json')) as Entries;
    assert.equal((await mapInput(birthOnly, bundle)).status, 'mapped');
    for (const { resource } of bundle.entry) {
      if (resource.resourceType === 'Encounter' || resource.resourceType === 'Observation') {
        resource.status = 'entered-in-error';
      }
      if (resource.resourceType === 'RelatedPerson') resource.active = false;
    }
    const r = await mapInput(birthOnly, bundle);
    assert.ok(r.status === 'skipped', JSON.stringify(r));
    assert.match(r.reason, /no birth/);
  });

  it('are no evidence: a death date observation entered in error is no death', async () => {
    const observation = structuredClone(fixture('fhir/vrdr/Bundle-DeathCertificateDocument-Example1.json')) as Entries;
    const deathDate = observation.entry.find(
      (e) => e.resource.resourceType === 'Observation' && JSON.stringify(e.resource.code).includes('81956-5'),
    );
    const decedent = observation.entry.find((e) => e.resource.resourceType === 'Patient');
    assert.ok(deathDate && decedent);
    const alone = { resourceType: 'Bundle', type: 'collection', entry: [decedent, deathDate] };
    assert.equal((await mapInput(all, alone)).status, 'mapped');
    deathDate.resource.status = 'entered-in-error';
    const r = await mapInput(all, alone);
    assert.notEqual(r.status, 'mapped', JSON.stringify(r));
  });
});

describe('OpenMRS-shaped records', () => {
  describe('a stillborn registered as a Patient, its outcome a CIEL concept (openmrs-stillbirth-bundle.json)', () => {
    type Bundle = { entry: { resource: Record<string, unknown> }[] };
    const stillbirth = () => structuredClone(fixture('fhir/openmrs/openmrs-stillbirth-bundle.json')) as Bundle;
    const outcome = (b: Bundle) => b.entry.find((e) => e.resource.resourceType === 'Observation')?.resource;
    const deathOnly = loadMappings({ names: ['death.fhir'], routing });

    it('is neither a live birth nor a death, from the UUID coding OpenMRS always sends, with or without a CIEL one', async () => {
      const uuidOnly = stillbirth();
      const cielOnly = stillbirth();
      for (const b of [uuidOnly, cielOnly]) {
        const obs = outcome(b);
        assert.ok(obs);
        const codings = (c: unknown) => (c as { coding: { system?: string }[] }).coding;
        const keep = (c: { system?: string }) => (b === uuidOnly ? !c.system : !!c.system);
        (obs.code as { coding: unknown[] }).coding = codings(obs.code).filter(keep);
        (obs.valueCodeableConcept as { coding: unknown[] }).coding = codings(obs.valueCodeableConcept).filter(keep);
      }
      for (const b of [stillbirth(), uuidOnly]) {
        const birth = await mapInput(birthOnly, b);
        assert.equal(birth.status, 'skipped', JSON.stringify(birth));
        assert.match((birth as { reason: string }).reason, /fetal death \(stillbirth\)/);
        const death = await mapInput(deathOnly, b);
        assert.equal(death.status, 'skipped', JSON.stringify(death));
        assert.match((death as { reason: string }).reason, /fetal death \(stillbirth\)/);
      }
      // A CIEL system URL alone is no OpenMRS coding: the shipped code list, asked of the EMR in one
      // `code=` list, stays short (a site adds its own codes: docs/mappings.md "Common changes").
      assert.notEqual((await mapInput(birthOnly, cielOnly)).status, 'skipped');
    });

    it('a live birth outcome (CIEL 151849) on the same record is a birth: the answer decides, not the question', async () => {
      const b = stillbirth();
      const child = b.entry.find((e) => e.resource.resourceType === 'Patient')?.resource;
      const obs = outcome(b);
      assert.ok(child && obs);
      delete child.deceasedDateTime;
      obs.valueCodeableConcept = { coding: [{ code: '151849AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] };
      assert.equal(mapped(await mapInput(birthOnly, b)).eventType, 'birth');
    });
  });

  it('an Apgar score (CIEL 1504) taken at birth is the evidence of a birth', async () => {
    const bundle = structuredClone(fixture('fhir/openmrs/openmrs-birth-bundle.json')) as {
      entry: { resource: Record<string, unknown> }[];
    };
    // Without its encounter and with no mother's role, only a newborn measurement can show the birth.
    bundle.entry = bundle.entry.filter(
      (e) => e.resource.resourceType === 'Patient' || e.resource.resourceType === 'Observation',
    );
    const weight = bundle.entry.find((e) => e.resource.resourceType === 'Observation')?.resource;
    assert.ok(weight);
    assert.equal((await mapInput(birthOnly, bundle)).status, 'skipped', 'a body weight alone is no evidence');
    weight.code = { coding: [{ code: '1504AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] };
    weight.valueQuantity = { value: 8 };
    const r = mapped(await mapInput(birthOnly, bundle));
    assert.match(r.evidence ?? '', /newborn measurement/);
  });

  it('a patient with deceasedDateTime maps as a death on the local calendar date', async () => {
    const r = mapped(await mapInput(all, fixture('fhir/openmrs/openmrs-death-bundle.json')));
    assert.equal(r.eventType, 'death');
    assert.deepEqual(r.declaration['deceased.name'], { firstname: 'Adam', surname: 'John' });
    assert.equal(r.declaration['deceased.gender'], 'male');
    assert.equal(r.declaration['deceased.dob'], '2004-08-12');
    // 2024-03-06T01:15:00+03:00 is 2024-03-05 in UTC; the death happened on the 6th where it happened
    assert.equal(r.declaration['eventDetails.date'], '2024-03-06');
    assert.equal(r.sourceVersion, '1709676900000');
    assert.equal(r.routing.sourceLocation, 'Location/8d6c993e-c2cc-11de-8d13-0010c6dffd0f');
    // OpenMRS writes the country as free text ('Uganda'): read as its alpha-3 code, the address is kept.
    assert.deepEqual(r.declaration['deceased.address'], {
      country: 'UGA',
      addressType: 'INTERNATIONAL',
      streetLevelDetails: { state: 'Mukono', cityOrTown: 'Kampala' },
    });
  });

  it('the place of death is the facility of an encounter the patient was still in, not of a visit that ended alive', async () => {
    const location = 'Location/8d6c993e-c2cc-11de-8d13-0010c6dffd0f';
    const routed = loadMappings({
      names: ['death.fhir'],
      routing: { defaultOffice: 'default-office', facilities: { [location]: { office: 'o-1', facility: 'f-1' } } },
    });
    type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
    const withEncounter = (change: Record<string, unknown>) => {
      const bundle = structuredClone(fixture('fhir/openmrs/openmrs-death-bundle.json')) as Entries;
      const encounter = bundle.entry.find((e) => e.resource.resourceType === 'Encounter')?.resource;
      assert.ok(encounter);
      Object.assign(encounter, change);
      return bundle;
    };
    // Started the day before the death (2024-03-06 01:15 +03:00) and still open: the death happened there.
    const open = mapped(await mapInput(routed, withEncounter({})));
    assert.equal(open.declaration['eventDetails.placeOfDeath'], 'HEALTH_FACILITY');
    assert.equal(open.declaration['eventDetails.deathLocation'], 'f-1');
    for (const [what, change] of [
      ['ended the day before', { period: { start: '2024-03-05T09:00:00+03:00', end: '2024-03-05T09:30:00+03:00' } }],
      ['discharged home', { hospitalization: { dischargeDisposition: { coding: [{ code: 'home' }] } } }],
    ] as const) {
      const r = mapped(await mapInput(routed, withEncounter(change)));
      assert.equal(r.declaration['eventDetails.placeOfDeath'], undefined, what);
      assert.equal(r.declaration['eventDetails.deathLocation'], undefined, what);
      assert.equal(r.routing.office, 'default-office', what);
    }
  });

  it('a newborn with an encounter on its birth day maps as a birth; the mother is the woman linked to it', async () => {
    const set = loadMappings({
      routing: {
        facilities: { 'Location/8d6c993e-c2cc-11de-8d13-0010c6dffd0f': { office: 'off-1', facility: 'fac-1' } },
      },
    });
    const r = mapped(await mapInput(set, fixture('fhir/openmrs/openmrs-birth-bundle.json')));
    assert.equal(r.eventType, 'birth');
    assert.deepEqual(r.declaration['child.name'], { firstname: 'Amani', surname: 'John' });
    assert.equal(r.declaration['child.gender'], 'female');
    assert.equal(r.declaration['child.dob'], '2024-05-14');
    assert.equal(r.declaration['child.weightAtBirth'], 3.1); // concept 5089AAAA… (no system), 3.1 kg
    assert.deepEqual(r.declaration['mother.name'], { firstname: 'Grace', surname: 'John' });
    assert.equal(r.declaration['mother.dob'], '1998-02-03');
    assert.equal(r.routing.office, 'off-1');
    assert.equal(r.declaration['child.birthLocation'], 'fac-1');
  });

  it('takes as the OpenMRS mother only a woman old enough to be one, and only when one fits', async () => {
    type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
    const set = loadMappings({ names: ['birth.fhir'], routing });
    // OpenMRS links the family too, with no relationship either: a sister (born 2019, the child 2024-05-14).
    const withWomen = (...women: Array<Record<string, unknown>>) => {
      const bundle = structuredClone(fixture('fhir/openmrs/openmrs-birth-bundle.json')) as Entries;
      const at = bundle.entry.findIndex((e) => e.resource.resourceType === 'RelatedPerson');
      const patient = bundle.entry[at]?.resource.patient;
      // Listed before the mother, as the sister in the reviewer's record was.
      bundle.entry.splice(
        at,
        0,
        ...women.map((w, i) => ({
          resource: { resourceType: 'RelatedPerson', id: `rp-${i}`, patient, gender: 'female', ...w },
        })),
      );
      return bundle;
    };
    const MOTHER_LEFT_OUT = /^mother left out: 2 or more women linked to the child, none marked as mother/;
    const sister = mapped(await mapInput(set, withWomen({ name: [{ given: ['Ruth'] }], birthDate: '2019-01-20' })));
    assert.deepEqual(sister.declaration['mother.name'], { firstname: 'Grace', surname: 'John' });
    assert.equal(sister.declaration['mother.dob'], '1998-02-03');
    assert.ok(!sister.warnings.some((w) => MOTHER_LEFT_OUT.test(w)), sister.warnings.join('; '));
    // Born 11 years and 364 days before the child: still no mother; a date not known: a candidate.
    const young = mapped(await mapInput(set, withWomen({ name: [{ given: ['Ruth'] }], birthDate: '2012-05-15' })));
    assert.deepEqual(young.declaration['mother.name'], { firstname: 'Grace', surname: 'John' });
    // Two women who could both be the mother (an aunt, a grandmother of unknown age): neither is taken.
    for (const other of [{ birthDate: '1970-03-01' }, { birthDate: '2012-05-14' }, {}]) {
      const two = mapped(await mapInput(set, withWomen({ name: [{ given: ['Ruth'] }], ...other })));
      assert.equal(two.declaration['mother.name'], undefined, JSON.stringify(other));
      assert.equal(two.declaration['mother.dob'], undefined, JSON.stringify(other));
      // Left out with a word, kept with the ledger row as the mapping's other warnings are; no name in it.
      const said = two.warnings.filter((w) => MOTHER_LEFT_OUT.test(w));
      assert.equal(said.length, 1, two.warnings.join('; '));
      assert.doesNotMatch(said.join(), /Ruth|Grace|John|19|20/);
    }
    // Marked as the mother, she is taken whoever else is linked: nothing to say.
    const marked = withWomen({ name: [{ given: ['Ruth'] }] });
    const grace = marked.entry.find((e) => e.resource.resourceType === 'RelatedPerson' && e.resource.id !== 'rp-0');
    assert.ok(grace);
    grace.resource.relationship = [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH' }] },
    ];
    const withMother = mapped(await mapInput(set, marked));
    assert.deepEqual(withMother.declaration['mother.name'], { firstname: 'Grace', surname: 'John' });
    assert.ok(!withMother.warnings.some((w) => MOTHER_LEFT_OUT.test(w)), withMother.warnings.join('; '));
  });

  it("reads the mother's own Patient behind the OpenMRS RelatedPerson for what the RelatedPerson lacks", async () => {
    const bundle = fixture('fhir/openmrs/openmrs-birth-bundle.json') as {
      entry: { resource: Record<string, unknown> }[];
    };
    const related = bundle.entry.find((e) => e.resource.resourceType === 'RelatedPerson')?.resource;
    assert.ok(related);
    delete related.birthDate; // OpenMRS keeps the mother's details on her Patient (same uuid as her Person)
    const person = String((related.identifier as { value: string }[])[0]?.value).replace('Person/', '');
    bundle.entry.push({
      resource: {
        resourceType: 'Patient',
        id: person,
        gender: 'female',
        birthDate: '1998-02-03',
        address: [{ use: 'home', city: 'Ilanga', country: 'FAR' }],
      },
    });
    const r = mapped(await mapInput(loadMappings({ names: ['birth.fhir'], routing }), bundle));
    assert.equal(r.declaration['mother.dob'], '1998-02-03');
    assert.deepEqual(r.declaration['mother.address'], {
      country: 'FAR',
      addressType: 'DOMESTIC',
      streetLevelDetails: { town: 'Ilanga' },
    });
  });

  it("reads the mother's country as OpenMRS writes it, a name: the home country's, another, or one unknown", async () => {
    const withCountry = (country: string) => {
      const bundle = structuredClone(fixture('fhir/openmrs/openmrs-birth-bundle.json')) as {
        entry: { resource: Record<string, unknown> }[];
      };
      const related = bundle.entry.find((e) => e.resource.resourceType === 'RelatedPerson')?.resource;
      assert.ok(related);
      related.address = [{ city: 'Ilanga', country }];
      return bundle;
    };
    const set = loadMappings({ names: ['birth.fhir'], routing });
    const home = mapped(await mapInput(set, withCountry('Farajaland')));
    assert.deepEqual(home.declaration['mother.address'], {
      country: 'FAR',
      addressType: 'DOMESTIC',
      streetLevelDetails: { town: 'Ilanga' },
    });
    const abroad = mapped(await mapInput(set, withCountry('Zambia')));
    assert.deepEqual(abroad.declaration['mother.address'], {
      country: 'ZMB',
      addressType: 'INTERNATIONAL',
      streetLevelDetails: { cityOrTown: 'Ilanga' },
    });
    const unknown = mapped(await mapInput(set, withCountry('Ilanga Road')));
    assert.equal(unknown.declaration['mother.address'], undefined);
    assert.ok(
      unknown.warnings.includes(
        'mother.address: address left out: country, free text (not shown), is neither an ISO 3166 code nor a country name the bridge knows',
      ),
      unknown.warnings.join('\n'),
    );
  });

  it('an estimated year on the RelatedPerson and a full date on her Patient: the date, with no age beside it', async () => {
    const bundle = fixture('fhir/openmrs/openmrs-birth-bundle.json') as {
      entry: { resource: Record<string, unknown> }[];
    };
    const related = bundle.entry.find((e) => e.resource.resourceType === 'RelatedPerson')?.resource;
    assert.ok(related);
    related.birthDate = '1990';
    const person = String((related.identifier as { value: string }[])[0]?.value).replace('Person/', '');
    bundle.entry.push({ resource: { resourceType: 'Patient', id: person, gender: 'female', birthDate: '1990-04-12' } });
    const d = mapped(await mapInput(loadMappings({ names: ['birth.fhir'], routing }), bundle)).declaration;
    // The form hides the date of birth when dobUnknown is set: all three together contradicted each other.
    assert.equal(d['mother.dob'], '1990-04-12');
    assert.equal(d['mother.dobUnknown'], undefined);
    assert.equal(d['mother.age'], undefined);
  });

  it('an estimated birth date, which OpenMRS sends as a year, gives an age instead of a birth date', async () => {
    type Entries = { entry: Array<{ resource: Record<string, unknown> }> };
    const birth = structuredClone(fixture('fhir/openmrs/openmrs-birth-bundle.json')) as Entries;
    const mother = birth.entry.find((e) => e.resource.resourceType === 'RelatedPerson')?.resource;
    assert.ok(mother);
    mother.birthDate = '1990'; // BirthDateTranslatorImpl: estimated, over 5 years old → year precision
    const b = mapped(await mapInput(all, birth)).declaration;
    assert.equal(b['mother.dob'], undefined);
    assert.equal(b['mother.dobUnknown'], true);
    assert.deepEqual(b['mother.age'], { age: 2024 - 1990, asOfDateRef: 'child.dob' }); // child born 2024-05-14

    const death = structuredClone(fixture('fhir/openmrs/openmrs-death-bundle.json')) as Entries;
    const deceased = death.entry.find((e) => e.resource.resourceType === 'Patient')?.resource;
    assert.ok(deceased);
    deceased.birthDate = '1950';
    const d = mapped(await mapInput(all, death)).declaration;
    assert.equal(d['deceased.dobUnknown'], true);
    assert.deepEqual(d['deceased.age'], { age: 2024 - 1950, asOfDateRef: 'eventDetails.date' }); // died 2024-03-06

    // A child of 5 or under has its estimated birth date sent as year-month: the months count. Born in
    // June 1950, died in March 2024: 73, where the years alone said 74; born December 2023: 0, not 1.
    // An age observation recorded as unknown (VRDR unit UNK) gives way to the years between the dates.
    death.entry.push({
      resource: {
        resourceType: 'Observation',
        id: 'age-unknown',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '39016-1' }] },
        subject: { reference: `Patient/${String(deceased.id)}` },
        valueQuantity: { value: 999, system: 'http://unitsofmeasure.org', code: 'UNK' },
      },
    });
    const unknownAge = mapped(await mapInput(all, death)).declaration;
    assert.deepEqual(unknownAge['deceased.age'], { age: 2024 - 1950, asOfDateRef: 'eventDetails.date' });
    death.entry.pop();

    deceased.birthDate = '1950-06';
    const months = mapped(await mapInput(all, death)).declaration;
    assert.deepEqual(months['deceased.age'], { age: 73, asOfDateRef: 'eventDetails.date' });
    deceased.birthDate = '2023-12';
    const infant = mapped(await mapInput(all, death)).declaration;
    assert.deepEqual(infant['deceased.age'], { age: 0, asOfDateRef: 'eventDetails.date' });
    mother.birthDate = '1990-12';
    const december = mapped(await mapInput(all, birth)).declaration;
    assert.deepEqual(december['mother.age'], { age: 33, asOfDateRef: 'child.dob' });
  });

  it('deceasedBoolean false is not a death, and not an exclusion to record either', async () => {
    const r = await mapInput(
      loadMappings({ names: ['death.fhir'], routing }),
      fixture('fhir/openmrs/openmrs-birth-bundle.json'),
    );
    assert.equal(r.status, 'skipped');
    assert.ok(r.status === 'skipped');
    assert.match(r.reason, /no death evidence/);
    const set = loadMappings({ names: ['death.fhir'], routing });
    const fetcher = bundleFetcher(fixture('fhir/openmrs/openmrs-birth-bundle.json'));
    const alive = fetcher.resources.find((res) => res.resourceType === 'Patient' && 'deceasedBoolean' in res);
    assert.ok(alive?.id);
    const detailed = await set.mapSubjectDetailed('death.fhir', `Patient/${alive.id}`, fetcher);
    assert.equal(detailed.result.status, 'skipped');
    assert.notEqual(detailed.excluded, true);
  });
});

describe('OpenCRVS v1 notification bundles', () => {
  it('maps the v1 birth notification; the Task regLastOffice is the office, the encounter location the facility', async () => {
    const r = mapped(
      await mapInput(loadMappings({}), fixture('opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json')),
    );
    assert.equal(r.eventType, 'birth');
    const d = r.declaration;
    assert.deepEqual(d['child.name'], { firstname: 'Child', surname: 'Min' });
    assert.equal(d['child.gender'], 'male');
    assert.equal(d['child.dob'], '2022-06-29');
    assert.equal(d['child.birthType'], 'SINGLE');
    assert.deepEqual(d['mother.name'], { firstname: 'Mom', surname: 'Ratke' });
    assert.equal(d['mother.dob'], '2002-06-29');
    assert.deepEqual(d['father.name'], { firstname: 'Dad', surname: 'Ratke' });
    assert.equal(d['informant.relation'], 'MOTHER');
    assert.deepEqual(d['mother.address'], {
      country: 'FAR',
      addressType: 'DOMESTIC',
      administrativeArea: 'c24c0b72-11b5-4c1a-bbb7-61112fa6f481',
      streetLevelDetails: { town: 'Meghnan', zipCode: '52275' },
    });
    // patient-nationality code FAR on both parents; the father's address as given for him.
    assert.deepEqual([d['mother.nationality'], d['father.nationality']], ['FAR', 'FAR']);
    assert.equal((d['father.address'] as { addressType?: string } | undefined)?.addressType, 'DOMESTIC');
    assert.equal(r.routing.office, '0be1dc9b-5c8b-4d20-a88c-08cafc71c99a');
    assert.equal(r.routing.facility, 'd89c1114-eddc-4dca-8352-4d2105c876f8');
    assert.equal(d['child.birthLocation'], 'd89c1114-eddc-4dca-8352-4d2105c876f8');
    assert.ok(!r.warnings.some((w) => /subjects in this input/.test(w)), 'mother and father are not births');
  });

  it("sends the parents' occupation and education from the v1 Patient extensions", async () => {
    // The minimal fixture has none; OpenCRVS v1 writes them on the parent's Patient as
    // extension/patient-occupation and extension/educational-attainment (valueString, ISCED codes).
    const bundle = fixture('opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json') as {
      entry: { resource: { resourceType: string; name?: { given?: string[] }[]; extension?: unknown[] } }[];
    };
    const parent = (given: string) => {
      const found = bundle.entry.find(
        (e) => e.resource.resourceType === 'Patient' && e.resource.name?.[0]?.given?.[0] === given,
      );
      assert.ok(found, `the fixture has ${given}`);
      return found.resource;
    };
    const extensions = (occupation: string, education: string) => [
      { url: 'http://opencrvs.org/specs/extension/patient-occupation', valueString: occupation },
      { url: 'http://opencrvs.org/specs/extension/educational-attainment', valueString: education },
    ];
    const mom = parent('Mom');
    mom.extension = [...(mom.extension ?? []), ...extensions('Housewife', 'NO_SCHOOLING')];
    const dad = parent('Dad');
    dad.extension = [...(dad.extension ?? []), ...extensions('Consultant', 'UPPER_SECONDARY_ISCED_3')];
    const d = mapped(await mapInput(loadMappings({}), bundle)).declaration;
    assert.equal(d['mother.occupation'], 'Housewife');
    assert.equal(d['mother.educationalAttainment'], 'NO_SCHOOLING');
    assert.equal(d['father.occupation'], 'Consultant');
    // Farajaland's form has no upper-secondary option: its "Secondary" is POST_SECONDARY_ISCED_4.
    assert.equal(d['father.educationalAttainment'], 'POST_SECONDARY_ISCED_4');
  });

  it('maps the v1 death notification (the deceased is found through the document section)', async () => {
    const r = mapped(
      await mapInput(loadMappings({}), fixture('opencrvs-v1/v1.8.0-to-v1.9.x__create-death-notification-min.json')),
    );
    assert.equal(r.eventType, 'death');
    assert.deepEqual(r.declaration['deceased.name'], { firstname: 'Salam', surname: 'Ahmed' });
    assert.equal(r.declaration['deceased.gender'], 'male');
    assert.equal(r.declaration['deceased.dob'], '1975-12-12');
    assert.equal(r.declaration['eventDetails.date'], '2021-11-12');
    assert.equal(r.declaration['informant.relation'], 'SPOUSE');
    // The informant is the spouse: its details (the Patient the informant RelatedPerson points to) fill spouse.*.
    assert.deepEqual(r.declaration['spouse.name'], { firstname: 'Anjum', surname: 'Begum' });
    assert.equal(r.declaration['spouse.dob'], '1985-12-12');
    assert.deepEqual([r.declaration['deceased.nationality'], r.declaration['spouse.nationality']], ['FAR', 'FAR']);
    assert.equal((r.declaration['spouse.address'] as { country?: string } | undefined)?.country, 'FAR');
    // The form shows the spouse's own address only when it is not the deceased's.
    assert.equal(r.declaration['spouse.addressSameAs'], 'NO');
    assert.equal(r.routing.office, '0be1dc9b-5c8b-4d20-a88c-08cafc71c99a');
    assert.equal(r.declaration['eventDetails.deathLocation'], 'd89c1114-eddc-4dca-8352-4d2105c876f8');
  });

  it('a route in the config wins over the office named by the Task', async () => {
    const set = loadMappings({
      routing: { facilities: { 'Location/d89c1114-eddc-4dca-8352-4d2105c876f8': { office: 'routed-office' } } },
    });
    const r = mapped(await mapInput(set, fixture('opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json')));
    assert.equal(r.routing.office, 'routed-office');
  });

  it("a route's facility wins over the facility the record names; without one the record's is kept", async () => {
    const named = 'd89c1114-eddc-4dca-8352-4d2105c876f8'; // the v1 encounter's Location
    const input = () => fixture('opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json');
    const routed = loadMappings({
      routing: { facilities: { [`Location/${named}`]: { office: 'routed-office', facility: 'routed-facility' } } },
    });
    const r = mapped(await mapInput(routed, input()));
    assert.equal(r.routing.facility, 'routed-facility');
    assert.equal(r.declaration['child.birthLocation'], 'routed-facility');
    assert.match(r.routing.via, /facility from the route/);
    const officeOnly = loadMappings({
      routing: { facilities: { [`Location/${named}`]: { office: 'routed-office' } } },
    });
    const kept = mapped(await mapInput(officeOnly, input()));
    assert.equal(kept.routing.facility, named);
    assert.match(kept.routing.via, /facility named by the source record/);
  });
});

describe('a facility the record names while OpenCRVS cannot be asked about it', () => {
  const named = 'd89c1114-eddc-4dca-8352-4d2105c876f8'; // the v1 encounter's Location
  const input = (facility = named) =>
    JSON.parse(
      readFileSync(
        new URL('../fixtures/opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json', import.meta.url),
        'utf8',
      ).replaceAll(named, facility),
    );
  const office = (ref: string, type: string) => (type === 'CRVS_OFFICE' ? ref : undefined);

  it('is mapped all the same: a UUID as given, marked unchecked, hashed as a lookup finding it would', async () => {
    const lookups: string[][] = [];
    const unasked = mapped(
      await mapInput(loadMappings({}), input(), {
        resolveLocation: office,
        lookupLocations: async (refs) => {
          lookups.push(refs);
          return refs; // none answered
        },
      }),
    );
    assert.deepEqual(lookups, [[named]]);
    assert.equal(unasked.routing.facility, named);
    assert.equal(unasked.routing.facilityUnchecked, named);
    assert.equal(unasked.declaration['child.birthLocation'], named);
    assert.ok(unasked.warnings.some((w) => w.includes(`facility '${named}' could not be looked up in OpenCRVS`)));
    const checked = mapped(
      await mapInput(loadMappings({}), input(), { resolveLocation: (ref) => ref, lookupLocations: async () => [] }),
    );
    assert.equal(checked.routing.facilityUnchecked, undefined);
    assert.equal(unasked.payloadHash, checked.payloadHash, 'the same payload once checked: no new version');
  });

  it('is left out, marked unchecked, when it is no UUID (its id cannot be guessed)', async () => {
    const r = mapped(
      await mapInput(loadMappings({}), input('HF_12'), {
        resolveLocation: office,
        lookupLocations: async (refs) => refs,
      }),
    );
    assert.equal(r.routing.facilityUnchecked, 'HF_12');
    assert.equal(r.routing.facility, undefined);
    assert.equal(r.declaration['child.birthLocation'], undefined);
  });
});

describe('per-record errors', () => {
  it('a present value that cannot be converted makes the record invalid, naming field and expression, not the data', async () => {
    const bundle = fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json') as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    const weight = bundle.entry.find((e) => e.resource.id === 'observation-birth-weight-babyg-quinn');
    assert.ok(weight);
    weight.resource.valueQuantity = { value: 2500, unit: 'cm' };
    const r = await mapInput(all, bundle);
    assert.equal(r.status, 'invalid');
    assert.ok(r.status === 'invalid');
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]?.field, 'child.weightAtBirth');
    assert.match(
      r.errors[0]?.message ?? '',
      /'cm' is not a mass unit .*from %observations\.where\(code\.coded\('birthWeight'\)\)\.value/,
    );
    assert.ok(!r.errors[0]?.message.includes('2500'));
  });

  it("takes the child's date of birth from the birthTime extension when birthDate carries no value", async () => {
    const bundle = fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json') as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    const child = bundle.entry.find((e) => e.resource.id === 'patient-child-babyg-quinn')?.resource;
    assert.ok(child);
    delete child.birthDate;
    const birthTime = 'http://hl7.org/fhir/StructureDefinition/patient-birthTime';
    child._birthDate = { extension: [{ url: birthTime, valueDateTime: '2019-02-13T01:30:00+02:00' }] };
    const r = mapped(await mapInput(all, bundle));
    assert.equal(r.declaration['child.dob'], '2019-02-13', "the time's own date, not the encounter's (the 12th)");
  });

  it("an impossible birth date is an error, not replaced by the next source's date (the encounter's)", async () => {
    // The BFDR document is the birth evidence here; the birth encounter's start would be the fallback.
    const bundle = fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json') as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    const child = bundle.entry.find((e) => e.resource.id === 'patient-child-babyg-quinn')?.resource;
    assert.ok(child);
    child.birthDate = '2019-02-30';
    // The birth encounter is still found (its window reads 02-30 as 03-02), so a fallback is there to take.
    const encounter = bundle.entry.find((e) => e.resource.id === 'encounter-birth-babyg-quinn')?.resource;
    assert.ok(encounter);
    encounter.period = { start: '2019-03-01T13:00:00-07:00' };
    const r = await mapInput(all, bundle);
    assert.equal(r.status, 'invalid');
    assert.ok(r.status === 'invalid');
    assert.deepEqual(r.errors, [
      { field: 'child.dob', message: 'source value is not a valid calendar date (from %subject.birthDate)' },
    ]);
  });
});

describe('payload hash', () => {
  it('is stable across re-mapping the same record and changes when the data changes', async () => {
    const bundle = fixture('fhir/openmrs/openmrs-death-bundle.json') as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    const a = mapped(await mapInput(all, bundle));
    const b = mapped(await mapInput(all, structuredClone(bundle)));
    assert.equal(a.payloadHash, b.payloadHash);
    const changed = structuredClone(bundle);
    const patient = changed.entry[0];
    assert.ok(patient);
    patient.resource.deceasedDateTime = '2024-03-07T10:00:00+03:00';
    const c = mapped(await mapInput(all, changed));
    assert.notEqual(c.payloadHash, a.payloadHash);
  });
});
