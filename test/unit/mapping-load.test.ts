import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bundleFetcher, loadMappings, mapSubject, type Resource } from '../../src/mapping/index.js';
import { ANY_PATIENT_BIRTH, mappingFiles } from './mapping-files.js';

const { write, loadError } = mappingFiles('mapping-load');

const head = ANY_PATIENT_BIRTH;

describe('static checks at load', () => {
  it('loads the default mappings for Farajaland v2.0 and v1.9', () => {
    assert.deepEqual(
      loadMappings({})
        .mappings.map((m) => m.id)
        .sort(),
      ['birth.dhis2', 'birth.fhir', 'death.dhis2', 'death.fhir'],
    );
    assert.equal(loadMappings({ version: '1.9' }).mappings.length, 4);
  });

  it('rejects an unknown field id with file, line and key path', () => {
    const err = loadError(`${head}fields:\n  child.name: '%subject.name'\n  child.nmae: '%subject.name'\n`);
    assert.equal(err.path, "fields['child.nmae']");
    assert.equal(err.line, 10);
    assert.match(err.message, /unknown field id child\.nmae in the OpenCRVS farajaland v2\.0 birth form/);
    assert.match(err.message, /m\d+\.yaml:10: /);
  });

  it('names every field that does not load, not only the first', () => {
    const err = loadError(
      `${head}fields:\n  child.nmae: '%subject.name'\n  child.name: '%subject.name'\n  child.gendr: '%subject.gender'\n`,
    );
    assert.equal(err.path, "fields['child.nmae']", 'the first one is where the error points');
    assert.equal(err.line, 9);
    assert.match(err.message, /unknown field id child\.nmae/);
    assert.match(err.message, /\n {2}also line 11: fields\['child\.gendr'\]: unknown field id child\.gendr/);
  });

  it('rejects a value-map output that is not an option of the SELECT field', () => {
    const err = loadError(`${head}valueMaps:
  gender:
    male: male
    female: FEMALE
fields:
  child.gender: { from: '%subject.gender', map: gender }
`);
    assert.equal(err.path, 'valueMaps.gender.female');
    assert.equal(err.line, 11);
    assert.match(err.message, /"FEMALE" is not an option of child\.gender \(male, female, unknown\)/);
  });

  it('takes a value-map entry that leaves the field out with its own warning, and refuses one misspelt', () => {
    const plurality = (entry: string) => `${head}valueMaps:
  plurality:
    '2': TWIN
    'true': ${entry}
fields:
  child.birthType: { from: '%subject.multipleBirth', map: plurality }
`;
    assert.doesNotThrow(() =>
      loadMappings({ files: [write(plurality("{ leaveOut: 'multiple birth of unknown size' }"))] }),
    );
    for (const wrong of [
      "{ leaveout: 'x' }",
      "{ leaveOut: '' }",
      "{ leaveOut: 'x', value: TWIN }",
      '{ leaveOut: 2 }',
    ]) {
      const err = loadError(plurality(wrong));
      assert.match(err.path, /^valueMaps\.plurality/, wrong);
    }
  });

  it('rejects a SELECT or RADIO_GROUP field filled from the source without a value map', () => {
    // Loaded, it would make the first record with a code that is no option (gender `other`) invalid.
    const err = loadError(
      `${head}fields:\n  child.name: '%subject.name'\n  child.gender: { from: '%subject.gender' }\n`,
    );
    assert.equal(err.path, "fields['child.gender']");
    assert.equal(err.line, 10);
    assert.match(
      err.message,
      /SELECT field child\.gender has no value map: a code that is not one of its options \(male, female, unknown\)/,
    );
    assert.match(err.message, /add map: with a valueMaps table whose '\*' entry takes any other code/);
    const radio = loadError(`${head}fields:\n  father.addressSameAs: "%subject.contact.relationship.coding.code"\n`);
    assert.match(radio.message, /RADIO_GROUP field father\.addressSameAs has no value map/);
  });

  it('rejects a default that is not a valid option', () => {
    const err = loadError(`${head}fields:\n  child.placeOfBirth: { from: '%subject.x', default: HOSPITAL }\n`);
    assert.equal(err.path, "fields['child.placeOfBirth'].default");
    assert.match(err.message, /is not an option/);
  });

  it('rejects min and max but on a NUMBER field, min above max, and a constant outside them', () => {
    const field = (spec: string, id = 'child.weightAtBirth') => `${head}fields:\n  ${id}: { ${spec} }\n`;
    const onDate = loadError(field("from: '%subject.birthDate', min: 1", 'child.dob'));
    assert.equal(onDate.path, "fields['child.dob']");
    assert.match(onDate.message, /min and max apply to NUMBER fields, not DATE/);
    const reversed = loadError(field("from: '%subject.id', as: number, min: 6, max: 0.1"));
    assert.equal(reversed.path, "fields['child.weightAtBirth'].min");
    assert.match(reversed.message, /min 6 is above max 0\.1/);
    const constant = loadError(field('value: 35, max: 6'));
    assert.equal(constant.path, "fields['child.weightAtBirth'].value");
    assert.match(constant.message, /value 35 is outside this field's range \(at most 6\)/);
    const fallback = loadError(field("from: '%subject.id', as: number, default: 0, min: 0.1"));
    assert.match(fallback.message, /default 0 is outside this field's range \(at least 0\.1\)/);
    assert.doesNotThrow(() =>
      loadMappings({ files: [write(field("from: '%subject.id', as: number, default: 3, min: 0.1, max: 6"))] }),
    );
  });

  it('rejects a value-map output outside the range, as it does a constant', () => {
    // Loaded, every record with that code would lose its weight, the warning blaming the source's unit.
    const weights = (out: string) =>
      `${head}valueMaps:\n  w: { small: ${out}, usual: 3, '*': null }\nfields:\n  child.weightAtBirth: { from: '%subject.id', map: w, min: 0.1, max: 6 }\n`;
    const err = loadError(weights('0.05'));
    assert.equal(err.path, 'valueMaps.w.small');
    assert.match(err.message, /value map output 0\.05 is outside this field's range \(0\.1 to 6\)/);
    assert.doesNotThrow(() => loadMappings({ files: [write(weights('0.1'))] }));
  });

  it('rejects a conversion beside a value map, which would be ignored', () => {
    const err = loadError(
      `${head}valueMaps:\n  g: { male: male }\nfields:\n  child.gender: { from: '%subject.gender', map: g, as: kilograms }\n`,
    );
    assert.equal(err.path, "fields['child.gender'].as");
    assert.match(err.message, /give either as or map/);
  });

  it('rejects a transform that does not fit the field type', () => {
    const err = loadError(`${head}fields:\n  child.dob: { from: '%subject.name', as: name }\n`);
    assert.equal(err.path, "fields['child.dob'].as");
    assert.match(err.message, /transform 'name' cannot fill DATE field child\.dob/);
  });

  it('rejects FHIRPath that does not compile, an unknown variable or function, an unknown code set', () => {
    assert.match(loadError(`${head}fields:\n  child.name: '%subject.name.where('\n`).message, /does not compile/);
    const unknownVar = loadError(`${head}fields:\n  mother.name: '%mom.name'\n`);
    assert.equal(unknownVar.path, "fields['mother.name'].from");
    assert.match(unknownVar.message, /unknown variable %mom/);
    assert.match(
      loadError(`${head}fields:\n  child.name: '%subject.name.frist()'\n`).message,
      /unknown FHIRPath function frist/,
    );
    assert.match(
      loadError(`${head}fields:\n  child.dob: "%subject.birthDate.where(%subject.gender.coded('nope'))"\n`).message,
      /unknown code set 'nope'/,
    );
    const misspelt = loadError(
      `${head}codes:\n  birthWeight: [http://loinc.org|8339-4]\nfields:\n  child.dob: "%subject.birthDate.where(%subject.gender.coded('birthweight'))"\n`,
    );
    assert.match(misspelt.message, /unknown code set 'birthweight' \(did you mean birthWeight\?\)/);
  });

  it('names an unknown key of the file format with its line', () => {
    const err = loadError(`${head}feilds:\n  child.name: '%subject.name'\n`);
    assert.equal(err.path, 'feilds');
    assert.equal(err.line, 8);
    assert.match(err.message, /unknown key \(did you mean fields\?\)/);
    // Inside a field too: `form:` for `from:`.
    const field = loadError(`${head}fields:\n  child.name: { form: '%subject.name' }\n`);
    assert.match(field.message, /unknown key \(did you mean from\?\)/);
  });

  it('rejects a search parameter the in-memory fetcher cannot run, and an event type without a form', () => {
    const param = loadError(`${head}context:
  obs:
    search: Observation
    params: { 'value-quantity': 'gt3' }
fields:
  child.name: '%subject.name'
`);
    assert.equal(param.path, "context.obs.params['value-quantity']");
    assert.match(
      loadError(head.replace('birth', 'marriage') + "fields:\n  x.y: '%subject'\n").message,
      /no OpenCRVS form profile/,
    );
  });

  it('rejects a code set applied to what a search by code returned, when the search does not ask for its codes', () => {
    const mapping = (
      searched: string,
    ) => `${head.replace("    - evidence: any patient\n      if: '%subject.exists()'\n", '    - evidence: a weight\n      if: "%weighed.where(code.coded(\'weight\')).exists()"\n')}codes:
  weight: [http://loinc.org|8339-4, http://emr.example.org|BW]
  newborn: [http://loinc.org|8339-4]
context:
  found:
    search: Observation
    params: { subject: '{%subjectRef}', code: '{codes:${searched}}' }
  weighed:
    value: "%found.where(status != 'entered-in-error')"
fields:
  child.weightAtBirth:
    as: kilograms
    from: "%weighed.where(code.coded('weight')).value"
  child.name: "%subject.name.where(%found.where(code.coded('newborn')).exists())"
`;
    const err = loadError(mapping('newborn'));
    assert.equal(err.path, 'trigger.when[0].if');
    assert.match(
      err.message,
      /code set 'weight' is applied to %weighed, which holds only what the context search 'found' asked the EMR for, and its code parameter does not ask for http:\/\/emr\.example\.org\|BW: add weight to it/,
    );
    // Asked for, it loads; sets applied to anything else (component codes, other variables) are not checked.
    assert.doesNotThrow(() => loadMappings({ files: [write(mapping('newborn,weight'))] }));
  });

  it('rejects an element the FHIR type does not have, where the type is known (a typo would match nothing, ever)', () => {
    const trigger = loadError(
      head.replace("'%subject.exists()'", "'%subject.deceasedDatetime.exists()'") +
        "fields:\n  child.name: '%subject.name'\n",
    );
    assert.equal(trigger.path, 'trigger.when[0].if');
    assert.match(trigger.message, /Patient has no element 'deceasedDatetime' in FHIR R4/);
    const nested = loadError(`${head}context:
  stays:
    search: Encounter
    params: { subject: '{%subjectRef}' }
  first:
    value: "%stays.where(status != 'cancelled').first()"
fields:
  child.name: '%subject.name'
  child.dob: '%first.period.strat'
`);
    assert.equal(nested.path, "fields['child.dob'].from");
    assert.match(nested.message, /Period has no element 'strat'/);
    const read = loadError(`${head}context:
  place:
    type: Location
    read: "%subject.generalPractitioner.reference"
fields:
  child.name: '%subject.name'
  child.dob: '%place.adress.city'
`);
    assert.match(read.message, /Location has no element 'adress'/);
    // Choice elements by their typed name, elements of backbone elements, extensions: all fine.
    assert.doesNotThrow(() =>
      loadMappings({
        files: [
          write(
            `${head}fields:\n  child.name: "%subject.name.where(use = 'official')"\n  child.dob: "%subject.deceasedDateTime | %subject.link.where(type = 'seealso').other.reference | %subject.extension('x').valueString"\n`,
          ),
        ],
      }),
    );
  });

  it("rejects an element none of a variable's possible types has (fallbacks of two types, a union, iif)", () => {
    const mother = (use: string) => `${head}context:
  kin:
    search: RelatedPerson
    params: { patient: '{%subjectRef}' }
  mothers:
    type: Patient
    read: '%subject.link.other.reference'
  mother:
    value:
      - "%kin.where(relationship.exists()).first()"
      - "iif(%mothers.count() = 1, %mothers)"
fields:
  child.name: '%subject.name'
  mother.name: '${use}'
`;
    const typo = loadError(mother('%mother.nmae'));
    assert.equal(typo.path, "fields['mother.name'].from");
    assert.match(typo.message, /RelatedPerson and Patient have no element 'nmae'/);
    assert.match(loadError(mother('(%mother | %kin).telcom.value')).message, /have no element 'telcom'/);
    // An element either type has is fine; so is one only one of them has (the other gives nothing).
    assert.doesNotThrow(() => loadMappings({ files: [write(mother('%mother.name'))] }));
    assert.doesNotThrow(() => loadMappings({ files: [write(mother('%mother.relationship.text'))] }));
  });

  it('rejects a field the form shows only when another has a value, without that other field', () => {
    const err = loadError(`${head}fields:\n  child.name: '%subject.name'\n  mother.nid: '%subject.identifier.value'\n`);
    assert.equal(err.path, "fields['mother.nid']");
    assert.match(
      err.message,
      /mother\.nid is shown only when mother\.idType = NATIONAL_ID: fill mother\.idType too, or no registrar sees the value/,
    );
    assert.doesNotThrow(() =>
      loadMappings({
        files: [
          write(
            `${head}fields:\n  child.name: '%subject.name'\n  mother.idType: { value: NATIONAL_ID }\n  mother.nid: '%subject.identifier.value'\n`,
          ),
        ],
      }),
    );
  });

  it('rejects a field the form shows only when another has a value that field is never given', () => {
    // mother.idType is filled, but never with NATIONAL_ID: mother.nid would reach OpenCRVS hidden.
    const nid = (idType: string) =>
      `${head}valueMaps:\n  idTypes: { P: PASSPORT, B: BIRTH_REGISTRATION_NUMBER }\n  withOther: { P: PASSPORT, '*': NATIONAL_ID }\n  withNid: { P: PASSPORT, N: NATIONAL_ID, '*': null }\nfields:\n  child.name: '%subject.name'\n  mother.idType: ${idType}\n  mother.nid: '%subject.identifier.value'\n`;
    const constant = loadError(nid('{ value: PASSPORT }'));
    assert.equal(constant.path, "fields['mother.nid']");
    assert.equal(constant.line, 15);
    assert.match(
      constant.message,
      /mother\.nid is shown only when mother\.idType = NATIONAL_ID, but this mapping fills mother\.idType only with "PASSPORT", so no registrar would see mother\.nid: give mother\.idType the value NATIONAL_ID where mother\.nid has one .*, or leave mother\.nid out$/,
    );
    const mapped = loadError(nid("{ from: '%subject.identifier.system', map: idTypes }"));
    assert.equal(mapped.path, "fields['mother.nid']");
    assert.match(mapped.message, /fills mother\.idType only with "PASSPORT", "BIRTH_REGISTRATION_NUMBER", so/);
    // A value map that can give NATIONAL_ID (an entry, or its '*'), or a value known per record only: loaded.
    for (const idType of [
      "{ from: '%subject.identifier.system', map: withNid }",
      "{ from: '%subject.identifier.system', map: withOther }",
      '{ value: NATIONAL_ID, when: "%subject.identifier.exists()" }',
    ]) {
      assert.doesNotThrow(() => loadMappings({ files: [write(nid(idType))] }), idType);
    }
    assert.doesNotThrow(() =>
      loadMappings({
        files: [
          write(
            `${head}fields:\n  child.name: '%subject.name'\n  mother.dobUnknown: '%subject.birthDate.empty()'\n  mother.age: { from: '%subject.id', asOfDateRef: child.dob }\n`,
          ),
        ],
      }),
    );
    // A condition on an option's value (…symptom.one.value = OTHER, an AUTOCOMPLETE field's value).
    const death = head.replace('eventType: birth', 'eventType: death');
    const cause = (option: string) =>
      `${death}fields:\n  deceased.name: '%subject.name'\n  causeOfDeathDetails.causeOfDeathA.symptom.one: { value: ${option} }\n  causeOfDeathDetails.causeOfDeathA.symptom.one.other: '%subject.id'\n`;
    assert.match(
      loadError(cause('{ label: Cholera, value: A00 }')).message,
      /symptom\.one\.other is shown only when causeOfDeathDetails\.causeOfDeathA\.symptom\.one\.value = OTHER, but this mapping fills causeOfDeathDetails\.causeOfDeathA\.symptom\.one only with \{"label":"Cholera","value":"A00"\}/,
    );
    assert.doesNotThrow(() => loadMappings({ files: [write(cause('{ label: Other, value: OTHER }'))] }));
  });

  it('rejects a facility field the form shows only at a place of event routing never gives', () => {
    // child.birthLocation is shown only when child.placeOfBirth = HEALTH_FACILITY.
    const routed = (routing: string) => `${head}fields:\n  child.name: '%subject.name'\nrouting:\n${routing}`;
    const withoutPlace = loadError(routed('  facilityFields: [child.birthLocationId, child.birthLocation]\n'));
    assert.equal(withoutPlace.path, 'routing.facilityFields[1]');
    assert.match(
      withoutPlace.message,
      /child\.birthLocation is shown only when child\.placeOfBirth = HEALTH_FACILITY: give routing\.placeOfEvent: \{ field: child\.placeOfBirth, value: HEALTH_FACILITY \}, or no registrar sees the value/,
    );
    const elsewhere = loadError(
      routed('  facilityFields: [child.birthLocation]\n  placeOfEvent: { field: child.placeOfBirth, value: OTHER }\n'),
    );
    assert.equal(elsewhere.path, 'routing.facilityFields[0]');
    assert.match(
      elsewhere.message,
      /fills child\.placeOfBirth only with "OTHER", so no registrar would see child\.birthLocation/,
    );
    for (const routing of [
      '  facilityFields: [child.birthLocation, child.birthLocationId]\n  placeOfEvent: { field: child.placeOfBirth, value: HEALTH_FACILITY }\n',
      '  facilityFields: [child.birthLocationId]\n', // shown whatever the place
    ]) {
      assert.doesNotThrow(() => loadMappings({ files: [write(routed(routing))] }), routing);
    }
  });

  it('rejects a field the form never shows (child.nid: SHOW conditional never())', () => {
    const err = loadError(`${head}fields:\n  child.name: '%subject.name'\n  child.nid: '%subject.identifier.value'\n`);
    assert.equal(err.path, "fields['child.nid']");
    assert.match(err.message, /child\.nid is never shown by the farajaland v2\.0 form/);
  });

  it('rejects a presentational element and a facility field that is not a location', () => {
    assert.match(loadError(`${head}fields:\n  child.divider1: '%subject.id'\n`).message, /presentational/);
    const err = loadError(`${head}fields:\n  child.name: '%subject.name'\nrouting:\n  facilityFields: [child.dob]\n`);
    assert.equal(err.path, 'routing.facilityFields[0]');
  });

  it('names a key written twice and where it first appears', () => {
    const err = loadError(`${head}fields:\n  child.name: '%subject.name'\n  child.name: '%subject.name'\n`);
    assert.match(err.message, /m\d+\.yaml:10: not valid YAML: the key child\.name appears twice \(first on line 9\)/);
  });

  it('refuses a code YAML would change (01 → 1, 0815 → 815), naming where and how to quote it', () => {
    // Unquoted, 01 is the number 1: the EMR's code '01' would match nothing, or another code.
    const codes = loadError(`${head}codes:\n  local: [5916, '02', 0815]\nfields:\n  child.name: '%subject.name'\n`);
    assert.equal(codes.path, 'codes.local[2]');
    assert.equal(codes.line, 9);
    assert.match(
      codes.message,
      /m\d+\.yaml:9: codes\.local\[2\]: YAML reads the unquoted 0815 as '815'.*quote this code: '0815'$/,
    );
    const keys = loadError(`${head}valueMaps:
  gender:
    '02': female
    01: male
fields:
  child.gender: { from: '%subject.gender', map: gender }
`);
    assert.equal(keys.path, "valueMaps.gender['01']");
    assert.equal(keys.line, 11);
    assert.match(keys.message, /quote this code: '01'$/);
    for (const written of ['1.50', '1e3', 'True', 'null']) {
      const err = loadError(
        `${head}valueMaps:\n  m:\n    ${written}: SINGLE\nfields:\n  child.birthType: { from: '%subject.multipleBirthBoolean', map: m }\n`,
      );
      assert.match(err.message, new RegExp(`quote this code: '${written}'$`), written);
    }
  });

  it('takes an unquoted code whose text YAML keeps (5916, false)', () => {
    const set = loadMappings({
      files: [
        write(
          `${head}codes:\n  local: [5916, 12]\nvalueMaps:\n  m:\n    false: SINGLE\n    2: TWIN\nfields:\n  child.birthType: { from: '%subject.multipleBirthBoolean', map: m }\n`,
        ),
      ],
    });
    assert.equal(set.mappings.length, 1);
  });

  it('reports invalid YAML with its line', () => {
    const err = loadError(`${head}fields:\n  child.name: [unclosed\n`);
    assert.match(err.message, /not valid YAML/);
    assert.ok(err.line && err.line >= 9);
  });
});

describe('expressions that fail on a record at run time', () => {
  const routing = { defaultOffice: 'office-1', facilities: {} };
  const patient = (id: string, birthDate?: string): Resource =>
    ({
      resourceType: 'Patient',
      id,
      name: [{ family: 'Doe', given: ['Ann'] }],
      ...(birthDate ? { birthDate } : {}),
    }) as Resource;

  it('make that record invalid, naming the field and the expression; a record they do not fail on maps', async () => {
    const set = loadMappings({
      files: [write(`${head}fields:\n  child.name: '%subject.name'\n  child.dob: '%subject.birthDate + 1'\n`)],
      routing,
    });
    const id = set.mappings[0]?.id ?? '';
    const fetcher = bundleFetcher([patient('dated', '2024-05-10'), patient('undated')]);
    const failed = await mapSubject(set, id, 'Patient/dated', fetcher);
    assert.ok(failed.status === 'invalid', JSON.stringify(failed));
    assert.deepEqual(
      failed.errors.map((e) => e.field),
      ['child.dob'],
    );
    assert.match(
      failed.errors[0]?.message ?? '',
      /^expression failed on this record: .*\(in %subject\.birthDate \+ 1\)$/,
    );
    assert.equal((await mapSubject(set, id, 'Patient/undated', fetcher)).status, 'mapped');
  });

  it('make the record invalid when a trigger expression fails, and accept standard functions such as single()', async () => {
    const trigger = head.replace("'%subject.exists()'", "'%subject.birthDate.single() + 1 = %subject.birthDate'");
    const set = loadMappings({ files: [write(`${trigger}fields:\n  child.name: '%subject.name'\n`)], routing });
    const r = await mapSubject(
      set,
      set.mappings[0]?.id ?? '',
      'Patient/dated',
      bundleFetcher([patient('dated', '2024-05-10')]),
    );
    assert.ok(r.status === 'invalid', JSON.stringify(r));
    assert.equal(r.errors[0]?.field, 'trigger.when[0].if', 'where the expression is written');
    assert.match(r.errors[0]?.message ?? '', /single\(\) \+ 1/);
  });
});

describe('a field the form shows only when another has a value, on a record without that value', () => {
  it('is left out with a warning (no value in it), the rest of the record mapped', async () => {
    // The ID number comes before its type in the file: the check waits for every field.
    const set = loadMappings({
      files: [
        write(`${head}valueMaps:
  idType: { NI: NATIONAL_ID, PPN: PASSPORT, '*': null }
fields:
  child.name: '%subject.name'
  mother.nid: '%subject.identifier.first().value'
  mother.idType: { from: '%subject.identifier.first().type.coding.code', map: idType }
`),
      ],
      routing: { defaultOffice: 'office-1', facilities: {} },
    });
    const id = set.mappings[0]?.id ?? '';
    const child = (type: string): Resource =>
      ({
        resourceType: 'Patient',
        id: type,
        name: [{ family: 'Doe', given: ['Ann'] }],
        identifier: [{ type: { coding: [{ code: type }] }, value: 'A1990123' }],
      }) as Resource;
    const fetcher = bundleFetcher(['NI', 'PPN', 'MR'].map(child));

    const nationalId = await mapSubject(set, id, 'Patient/NI', fetcher);
    assert.ok(nationalId.status === 'mapped', JSON.stringify(nationalId));
    assert.equal(nationalId.declaration['mother.nid'], 'A1990123');
    assert.ok(!nationalId.warnings.some((w) => w.startsWith('mother.')), JSON.stringify(nationalId.warnings));

    // A passport number (PPN), and a type the value map leaves out (MR): no NATIONAL_ID, so no mother.nid.
    for (const type of ['PPN', 'MR']) {
      const r = await mapSubject(set, id, `Patient/${type}`, fetcher);
      assert.ok(r.status === 'mapped', JSON.stringify(r));
      assert.equal(r.declaration['mother.nid'], undefined, type);
      assert.equal(r.declaration['mother.idType'], type === 'PPN' ? 'PASSPORT' : undefined);
      const warning = r.warnings.find((w) => w.startsWith('mother.nid'));
      assert.equal(
        warning,
        'mother.nid: left out: the form shows it only when mother.idType = NATIONAL_ID, which this record does not give (no registrar would see it)',
      );
      assert.ok(!r.warnings.some((w) => w.includes('A1990123')), JSON.stringify(r.warnings));
    }
  });
});

describe('a facility field routing fills, on a record whose place of event the form would not show it at', () => {
  it('is left out with a warning, as a field of the mapping is, the rest of the record mapped', async () => {
    // The place of birth comes from the data (here: only for a child with a birth date), not from routing:
    // a routed facility beside no place of birth would reach OpenCRVS hidden.
    const set = loadMappings({
      files: [
        write(`${head}fields:
  child.name: '%subject.name'
  child.placeOfBirth: { value: HEALTH_FACILITY, when: '%subject.birthDate.exists()' }
routing:
  facilityKeys: ['%subject.managingOrganization.reference']
  facilityFields: [child.birthLocation, child.birthLocationId]
`),
      ],
      routing: {
        defaultOffice: 'office-1',
        facilities: { 'Organization/h1': { office: 'office-2', facility: 'fac-1' } },
      },
    });
    const id = set.mappings[0]?.id ?? '';
    const child = (patientId: string, birthDate?: string): Resource =>
      ({
        resourceType: 'Patient',
        id: patientId,
        name: [{ family: 'Doe', given: ['Ann'] }],
        managingOrganization: { reference: 'Organization/h1' },
        ...(birthDate ? { birthDate } : {}),
      }) as Resource;
    const fetcher = bundleFetcher([child('dated', '2024-05-14'), child('undated')]);

    const dated = await mapSubject(set, id, 'Patient/dated', fetcher);
    assert.ok(dated.status === 'mapped', JSON.stringify(dated));
    assert.equal(dated.declaration['child.placeOfBirth'], 'HEALTH_FACILITY');
    assert.equal(dated.declaration['child.birthLocation'], 'fac-1');
    assert.ok(!dated.warnings.some((w) => w.startsWith('child.')), JSON.stringify(dated.warnings));

    const undated = await mapSubject(set, id, 'Patient/undated', fetcher);
    assert.ok(undated.status === 'mapped', JSON.stringify(undated));
    assert.equal(undated.declaration['child.placeOfBirth'], undefined);
    assert.equal(undated.declaration['child.birthLocation'], undefined);
    assert.equal(undated.declaration['child.birthLocationId'], 'fac-1', 'a field the form always shows stays');
    assert.equal(undated.routing.office, 'office-2');
    assert.deepEqual(
      undated.warnings.filter((w) => w.startsWith('child.')),
      [
        'child.birthLocation: left out: the form shows it only when child.placeOfBirth = HEALTH_FACILITY, which this record does not give (no registrar would see it)',
      ],
    );
    assert.equal(undated.routing.facility, 'fac-1', 'child.birthLocationId names it');
  });

  it('takes the facility out of the routing too when every facility field is left out', async () => {
    const file = write(`${head}fields:
  child.name: '%subject.name'
  child.placeOfBirth: { value: HEALTH_FACILITY, when: '%subject.birthDate.exists()' }
routing:
  facilityKeys: ['%subject.managingOrganization.reference']
  facilityFields: [child.birthLocation]
`);
    const routed = (route: { office: string; facility?: string }) =>
      loadMappings({ files: [file], routing: { defaultOffice: 'office-1', facilities: { 'Organization/h1': route } } });
    const set = routed({ office: 'office-2', facility: 'fac-1' });
    const id = set.mappings[0]?.id ?? '';
    const patient = (patientId: string, birthDate?: string): Resource =>
      ({
        resourceType: 'Patient',
        id: patientId,
        name: [{ family: 'Doe' }],
        managingOrganization: { reference: 'Organization/h1' },
        ...(birthDate ? { birthDate } : {}),
      }) as Resource;
    const fetcher = bundleFetcher([patient('p'), patient('dated', '2024-05-14')]);
    // OpenCRVS could not confirm the routing table: its office and facility are marked for the worker.
    const unconfirmed = { resolveLocation: (ref: string) => ref, routingUnconfirmed: () => true };

    const dated = await mapSubject(set, id, 'Patient/dated', fetcher, unconfirmed);
    assert.ok(dated.status === 'mapped', JSON.stringify(dated));
    assert.equal(dated.declaration['child.birthLocation'], 'fac-1');
    assert.equal(dated.routing.facility, 'fac-1');
    assert.equal(dated.routing.facilityUnchecked, 'fac-1');

    const r = await mapSubject(set, id, 'Patient/p', fetcher, unconfirmed);
    assert.ok(r.status === 'mapped', JSON.stringify(r));
    assert.equal(r.declaration['child.birthLocation'], undefined);
    // No facility the declaration does not name: none for the worker to look up, none in the hash.
    assert.equal(r.routing.facility, undefined);
    assert.equal(r.routing.facilityUnchecked, undefined);
    assert.equal(r.routing.office, 'office-2');
    assert.equal(r.routing.officeUnchecked, 'office-2', 'the office is still checked before sending');
    const officeOnly = routed({ office: 'office-2' });
    const same = await mapSubject(officeOnly, id, 'Patient/p', fetcher, unconfirmed);
    assert.ok(same.status === 'mapped', JSON.stringify(same));
    assert.equal(r.payloadHash, same.payloadHash, 'the payload of a route without a facility');
  });
});

describe('an expression that gives several different values for a single-valued field', () => {
  it('sends the first and says so, naming the field and the expression, not the values', async () => {
    const set = loadMappings({
      files: [
        write(
          `${head}fields:\n  child.name: '%subject.name'\n  mother.idType: { value: NATIONAL_ID }\n  mother.nid: '%subject.identifier.value'\n`,
        ),
      ],
      routing: { defaultOffice: 'office-1', facilities: {} },
    });
    const child = {
      resourceType: 'Patient',
      id: 'c1',
      name: [{ family: 'Doe', given: ['Ann'] }],
      identifier: [
        { system: 'http://openmrs.example/id', value: '100HJ7-8' },
        { system: 'http://moh.example.org/nid', value: '1990123456' },
      ],
    } as Resource;
    const r = await mapSubject(set, set.mappings[0]?.id ?? '', 'Patient/c1', bundleFetcher([child]));
    assert.ok(r.status === 'mapped', JSON.stringify(r));
    assert.equal(r.declaration['mother.nid'], '100HJ7-8');
    const warning = r.warnings.find((w) => w.startsWith('mother.nid'));
    assert.equal(warning, 'mother.nid: %subject.identifier.value gave 2 different values; the first was sent');
    assert.ok(!r.warnings.some((w) => w.startsWith('child.name')), 'a name is built from all its parts');
  });
});

describe('a value-mapped field whose expression gives several codes', () => {
  it('makes the record invalid when they map to different values, naming the field, not the codes', async () => {
    const set = loadMappings({
      files: [
        write(`${head}valueMaps:
  attendant: { MD: PHYSICIAN, DO: PHYSICIAN, CNM: MIDWIFE, '*': null }
fields:
  child.name: '%subject.name'
  child.attendantAtBirth: { from: "%subject.extension('http://example.org/attendant').value", map: attendant }
`),
      ],
      routing: { defaultOffice: 'office-1', facilities: {} },
    });
    const id = set.mappings[0]?.id ?? '';
    const child = (...codes: string[]): Resource =>
      ({
        resourceType: 'Patient',
        id: codes.join('-'),
        name: [{ family: 'Doe', given: ['Ann'] }],
        extension: codes.map((valueCode) => ({ url: 'http://example.org/attendant', valueCode })),
      }) as Resource;
    const fetcher = bundleFetcher([child('MD', 'CNM'), child('MD', 'DO'), child('XX', 'CNM')]);

    // A physician and a midwife: which attended is the mapping's to say, not the EMR's order.
    const r = await mapSubject(set, id, 'Patient/MD-CNM', fetcher);
    assert.ok(r.status === 'invalid', JSON.stringify(r));
    assert.deepEqual(r.errors, [
      {
        field: 'child.attendantAtBirth',
        message:
          "source value is several codes that value map attendant maps to 2 different values: choose one with where() or first() (from %subject.extension('http://example.org/attendant').value)",
      },
    ]);
    // Two codes with one meaning, and a code the table does not name beside one it does: no ambiguity.
    const same = await mapSubject(set, id, 'Patient/MD-DO', fetcher);
    assert.ok(same.status === 'mapped', JSON.stringify(same));
    assert.equal(same.declaration['child.attendantAtBirth'], 'PHYSICIAN');
    const unknown = await mapSubject(set, id, 'Patient/XX-CNM', fetcher);
    assert.ok(unknown.status === 'mapped', JSON.stringify(unknown));
    assert.equal(unknown.declaration['child.attendantAtBirth'], 'MIDWIFE');
  });
});
