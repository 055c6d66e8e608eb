// DHIS2 source parts without a server: naive timestamps, tracker JSON as mapping input (real docs payloads
// and simulator exports), the response schemas and the poll filter.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/index.js';
import { assembleContext } from '../../src/mapping/context.js';
import { dhis2TrackedEntities } from '../../src/mapping/dhis2-input.js';
import { dhis2InputFetcher, loadMappings, mapInput } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  DHIS2_DEFAULTS,
  Dhis2Client,
  dhis2SettingsOf,
  isOfTrackedEntityType,
  trackedEntityFilter,
} from '../../src/sources/dhis2/index.js';
import { isTrackedEntityPage, isTrackerEvent } from '../../src/sources/dhis2/schemas.js';
import { laterOf, minusSeconds, naiveMillis, plusMillis } from '../../src/sources/dhis2/time.js';
import { writeBackSourceFor } from '../../src/sources/writeback/index.js';

const fixture = (path: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/dhis2/${path}`, import.meta.url), 'utf8'));

const ROUTING = {
  defaultOffice: 'LHUYvwY2Aq1',
  facilities: {
    DiszpKrYNg8: { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
    y77LiPqLMoq: { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
  },
};
const mappings = () => loadMappings({ names: ['birth.dhis2', 'death.dhis2'], routing: ROUTING });

describe('DHIS2 timestamps', () => {
  it('shifts zone-less times as wall-clock values and keeps the export format', () => {
    assert.equal(minusSeconds('2026-10-15T00:00:10.022', 30), '2026-10-14T23:59:40.022');
    assert.equal(minusSeconds('2026-10-15 08:00', 60), '2026-10-15T07:59:00.000');
    assert.equal(minusSeconds('2026-10-15T08:00:00.123456', 1), '2026-10-15T07:59:59.123');
    assert.equal(minusSeconds('not a date', 1), undefined);
  });

  it('adds milliseconds in the form given: naive stays naive, a zoned time stays the same instant', () => {
    assert.equal(plusMillis('2026-01-05T08:00:00.000', 1), '2026-01-05T08:00:00.001');
    assert.equal(plusMillis('2026-12-31T23:59:59.999', 1), '2027-01-01T00:00:00.000');
    assert.equal(plusMillis('2026-01-05T08:00:00.123456', 1), '2026-01-05T08:00:00.124');
    assert.equal(plusMillis('2026-01-05T08:00:00.000+01:00', 1), '2026-01-05T07:00:00.001Z');
    assert.equal(plusMillis('not a date', 1), undefined);
  });

  it('orders by time, not by text, and lets a parseable value win over garbage', () => {
    assert.equal(laterOf('2026-10-15T09:00:00.000', '2026-10-15T10:00:00.000'), '2026-10-15T10:00:00.000');
    assert.equal(laterOf('2026-10-15T10:00:00.5', '2026-10-15T10:00:00.45'), '2026-10-15T10:00:00.5');
    assert.equal(laterOf(undefined, '2026-10-15'), '2026-10-15');
    assert.equal(laterOf('2026-10-15', 'garbage'), '2026-10-15');
    assert.equal(naiveMillis('2026-10-15T10:00:00Z'), Date.parse('2026-10-15T10:00:00Z'));
  });
});

describe('DHIS2 responses are validated before use', () => {
  it('accepts the documented list responses of 2.41 and a paging=false list', () => {
    assert.ok(isTrackedEntityPage(fixture('dhis2-docs/GET_api_tracker_trackedEntities__list_response.json')));
    assert.ok(isTrackedEntityPage(fixture('bridge/deceased-trackedEntities-page.json')));
    assert.ok(isTrackedEntityPage({ instances: [], page: 1, pageSize: 50 }), '2.40 envelope');
    assert.ok(isTrackerEvent(fixture('bridge/birth-event.json')));
  });

  it('refuses a body that is not a tracker list, or one with malformed values', () => {
    assert.equal(isTrackedEntityPage({ httpStatus: 'OK' }), false);
    assert.equal(isTrackedEntityPage({ trackedEntities: [{ attributes: [] }] }), false, 'no uid');
    assert.equal(
      isTrackedEntityPage({ trackedEntities: [{ trackedEntity: 'a', attributes: [{ attribute: 'x', value: 3 }] }] }),
      false,
    );
  });
});

describe('DHIS2 source configuration', () => {
  const base = { opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'token' } };
  const source = (extra: Record<string, unknown>) => ({
    ...base,
    sources: [{ id: 'd', kind: 'dhis2', baseUrl: 'http://dhis2.example.org', ...extra }],
  });

  it('fills the demo Child Programme defaults, its shipped mapping and the write-back defaults', () => {
    const config = configFromObject(
      source({ dhis2: { orgUnits: ['DiszpKrYNg8'] }, writeBack: { dataElement: 'uf3svrmp8Oj' } }),
    );
    const [s] = config.sources;
    assert.ok(s);
    // Only the shipped mapping of the Child Programme: death.dhis2 reads another programme (SbxDthProg1).
    assert.deepEqual(s.mappings, ['birth.dhis2']);
    assert.deepEqual(s.dhis2, { program: 'IpHINAT79UW', fields: '*', orgUnits: ['DiszpKrYNg8'] });
    assert.equal(s.writeBack?.enabled, true);
    assert.equal(s.writeBack?.maxAttempts, 12);
    assert.deepEqual(dhis2SettingsOf({ ...s, dhis2: undefined }), DHIS2_DEFAULTS);
  });

  it('names the key of a malformed uid or an unknown setting', () => {
    assert.throws(() => configFromObject(source({ dhis2: { program: 'not-a-uid' } })), /sources\[0\]\.dhis2\.program/);
    assert.throws(
      () => configFromObject(source({ dhis2: { programme: 'IpHINAT79UW' } })),
      /sources\[0\]\.dhis2\.programme: unknown key/,
    );
    assert.throws(() => configFromObject(source({ auth: { type: 'pat' } })), /sources\[0\]\.auth\.token/);
  });

  it('refuses a write-back that is both a data element and an attribute, or DHIS2 keys on a FHIR source', () => {
    const both = configFromObject(source({ writeBack: { dataElement: 'uf3svrmp8Oj', attribute: 'w75KJ2mc4zz' } }));
    const [s] = both.sources;
    assert.ok(s);
    const dhis2 = new Dhis2Client(s, { logger: silentLogger });
    assert.throws(() => writeBackSourceFor(s, { dhis2 }), /dataElement or writeBack.attribute, not both/);
    // Refused with the configuration, by key path.
    const fhirSource = {
      id: 'f',
      kind: 'fhir',
      baseUrl: 'http://emr.example.org/fhir',
      writeBack: { dataElement: 'uf3svrmp8Oj' },
    };
    assert.throws(() => configFromObject({ ...base, sources: [fhirSource] }), /sources\[0\]\.writeBack\.dataElement/);
    assert.equal(writeBackSourceFor({ ...s, writeBack: undefined }, { dhis2 }), undefined);
  });
});

describe('DHIS2 poll filter', () => {
  it('defaults to the demo Child Programme with every field, and passes org unit settings through', () => {
    assert.deepEqual(trackedEntityFilter(DHIS2_DEFAULTS), { program: 'IpHINAT79UW', fields: '*' });
    assert.deepEqual(
      trackedEntityFilter({ ...DHIS2_DEFAULTS, orgUnits: ['DiszpKrYNg8', 'y77LiPqLMoq'], orgUnitMode: 'DESCENDANTS' }),
      { program: 'IpHINAT79UW', fields: '*', orgUnits: 'DiszpKrYNg8,y77LiPqLMoq', orgUnitMode: 'DESCENDANTS' },
    );
  });

  it('never sends trackedEntityType beside the programme (DHIS2 refuses both), and keeps that type itself', () => {
    const typed = { ...DHIS2_DEFAULTS, trackedEntityType: 'nEenWmSyUEp' };
    assert.deepEqual(trackedEntityFilter(typed), { program: 'IpHINAT79UW', fields: '*' });
    assert.equal(isOfTrackedEntityType(typed, { trackedEntityType: 'nEenWmSyUEp' }), true);
    assert.equal(isOfTrackedEntityType(typed, { trackedEntityType: 'MCPQUTHX1Ze' }), false);
    assert.equal(isOfTrackedEntityType(DHIS2_DEFAULTS, { trackedEntityType: 'MCPQUTHX1Ze' }), true);
  });
});

describe('DHIS2 tracker JSON as mapping input', () => {
  it('recognises a tracked entity, a list page, an event, and leaves FHIR alone', () => {
    assert.equal(dhis2TrackedEntities(fixture('bridge/child-trackedEntity.json'))?.length, 1);
    assert.equal(dhis2TrackedEntities(fixture('bridge/deceased-trackedEntities-page.json'))?.length, 1);
    assert.equal(dhis2TrackedEntities(fixture('bridge/birth-event.json'))?.length, 1);
    assert.equal(dhis2TrackedEntities({ resourceType: 'Patient', id: 'p' }), undefined);
    assert.equal(dhis2TrackedEntities([{ resourceType: 'Patient', id: 'p' }]), undefined);
  });

  it('maps an import payload, whose tracked entities have no uid yet, under a placeholder uid', async () => {
    const payload = fixture('dhis2-docs/POST_api_tracker__nested_payload_child_programme.json');
    assert.deepEqual(
      dhis2TrackedEntities(payload)?.map((te) => te.trackedEntity),
      ['import-payload-1'],
    );
    const result = await mapInput(mappings(), payload);
    assert.notEqual(result.status, 'skipped', JSON.stringify(result));
    assert.equal(result.status === 'skipped' ? undefined : result.subjectRef, 'TrackedEntity/import-payload-1');
  });

  it('an event without a tracked entity (event program) is refused with a reason', () => {
    assert.throws(
      () => dhis2TrackedEntities(fixture('dhis2-docs/GET_api_tracker_events__list_response.json')),
      /DHIS2 input: .*only tracker \(registration\) programs/,
    );
  });

  it('maps a child of the demo Child Programme with its mother from the embedded relationship', async () => {
    const result = await mapInput(mappings(), fixture('bridge/child-trackedEntity.json'));
    assert.equal(result.status, 'mapped');
    assert.ok(result.status === 'mapped');
    assert.equal(result.mappingId, 'birth.dhis2');
    assert.equal(result.subjectRef, 'TrackedEntity/jryxKhLJz0X');
    assert.equal(result.sourceRef, 'Event/D0i0Yxbe0EG');
    assert.equal(result.sourceVersion, '2026-10-15T11:58:00.000');
    const d = result.declaration;
    assert.ok(d['child.name'] && typeof d['child.name'] === 'object');
    assert.ok(d['mother.name'] && typeof d['mother.name'] === 'object', 'mother through the relationship');
    assert.equal(d['child.dob'], '2026-09-30');
    assert.equal(d['child.weightAtBirth'], 2.886, 'grams to kilograms');
    assert.equal(d['child.birthLocation'], 'R2i8nqg83Y0', 'facility routed by org unit');
    assert.equal(d['child.placeOfBirth'], 'HEALTH_FACILITY');
    assert.equal(result.routing.office, 'DC5stjQ45n3');
    assert.ok(!JSON.stringify(d).includes('uf3svrmp8Oj'), 'the write-back data element feeds nothing');
  });

  it('leaves out a birth weight in the grams element that is no weight in grams (kilograms typed there)', async () => {
    const trackedEntity = fixture('bridge/child-trackedEntity.json');
    const text = JSON.stringify(trackedEntity);
    assert.ok(text.includes('"dataElement":"UXz7xuGCEhU","value":"2886"'), 'the fixture weighs 2886 g');
    const result = await mapInput(
      mappings(),
      JSON.parse(
        text.replace('"dataElement":"UXz7xuGCEhU","value":"2886"', '"dataElement":"UXz7xuGCEhU","value":"2.886"'),
      ),
    );
    assert.ok(result.status === 'mapped', JSON.stringify(result));
    assert.equal(result.declaration['child.weightAtBirth'], undefined);
    assert.equal(result.declaration['child.dob'], '2026-09-30', 'the rest of the record is sent');
    const warnings = result.warnings.filter((w) => w.startsWith('child.weightAtBirth'));
    assert.equal(warnings.length, 1, result.warnings.join('\n'));
    assert.match(warnings[0] ?? '', /outside the range the mapping allows \(0\.1 to 6\)/);
  });

  // A TEXT data element holds whatever was typed. A weight that is not a plain number was dropped silently.
  it('reads a decimal comma in the grams element as a decimal point; leaves out other text with a warning, never the value', async () => {
    const text = JSON.stringify(fixture('bridge/child-trackedEntity.json'));
    const weighing = async (value: string) => {
      const result = await mapInput(
        mappings(),
        JSON.parse(
          text.replace(
            '"dataElement":"UXz7xuGCEhU","value":"2886"',
            `"dataElement":"UXz7xuGCEhU","value":${JSON.stringify(value)}`,
          ),
        ),
      );
      assert.ok(result.status === 'mapped', JSON.stringify(result));
      const warnings = result.warnings.filter((w) => w.startsWith('child.weightAtBirth'));
      for (const w of warnings) assert.ok(!w.includes(value), 'the warning never quotes the value');
      return { kg: result.declaration['child.weightAtBirth'], warnings, dob: result.declaration['child.dob'] };
    };
    assert.deepEqual(await weighing('3250,5'), { kg: 3.2505, warnings: [], dob: '2026-09-30' });
    assert.deepEqual(await weighing(' 2886 '), { kg: 2.886, warnings: [], dob: '2026-09-30' });
    // Kilograms with a decimal comma; a thousands separator (never guessed); text that is no number.
    for (const value of ['3,2', '3,200', '3.2 kg', 'about 3 kilos']) {
      const { kg, warnings, dob } = await weighing(value);
      assert.equal(kg, undefined, value);
      assert.equal(dob, '2026-09-30', 'the rest of the record is sent');
      assert.equal(warnings.length, 1, `${value}: ${warnings.join('; ')}`);
      assert.match(warnings[0] ?? '', /outside the range the mapping allows \(0\.1 to 6\)/);
    }
    assert.deepEqual(
      await weighing(''),
      { kg: undefined, warnings: [], dob: '2026-09-30' },
      'a blank value is no weight',
    );
  });

  it("reads the mother's programme attributes (National identifier) under her enrollment, as DHIS2 lists them", async () => {
    // Read without a programme, DHIS2 puts only the tracked entity type's attributes (names) at the top
    // (docs: GET /api/tracker/trackedEntities/{uid}); her ANC enrollment carries the programme's.
    const input = structuredClone(fixture('bridge/child-trackedEntity.json')) as {
      relationships: { to: { trackedEntity: Record<string, unknown> } }[];
    };
    const mother = input.relationships[0]?.to.trackedEntity;
    assert.ok(mother);
    mother.enrollments = [
      {
        enrollment: 'SbxEnrAnc01',
        program: 'WQUKCDEnq8z',
        attributes: [
          { attribute: 'w75KJ2mc4zz', value: 'Adama' },
          { attribute: 'AuPLng5hLbE', value: '4417620091' },
        ],
      },
    ];
    const result = await mapInput(mappings(), input);
    assert.ok(result.status === 'mapped', JSON.stringify(result));
    assert.equal(result.declaration['mother.nid'], '4417620091');
    assert.equal(result.declaration['mother.idType'], 'NATIONAL_ID');
    assert.deepEqual(result.declaration['mother.name'], { firstname: 'Adama', surname: 'Kargbo' });
  });

  it('gives no ID type where the national identifier was cleared to an empty value', async () => {
    const input = structuredClone(fixture('bridge/child-trackedEntity.json')) as {
      relationships: { to: { trackedEntity: Record<string, unknown> } }[];
    };
    const mother = input.relationships[0]?.to.trackedEntity;
    assert.ok(mother);
    mother.enrollments = [
      { enrollment: 'SbxEnrAnc01', program: 'WQUKCDEnq8z', attributes: [{ attribute: 'AuPLng5hLbE', value: '' }] },
    ];
    const result = await mapInput(mappings(), input);
    assert.ok(result.status === 'mapped', JSON.stringify(result));
    assert.equal(result.declaration['mother.nid'], undefined);
    assert.equal(result.declaration['mother.idType'], undefined, 'no ID type without the ID');
  });

  it('skips a deactivated tracked entity with the reason, births and deaths alike', async () => {
    for (const file of ['bridge/child-trackedEntity.json', 'bridge/deceased-trackedEntities-page.json']) {
      const input = structuredClone(fixture(file)) as {
        inactive?: boolean;
        trackedEntities?: Array<{ inactive?: boolean }>;
      };
      for (const te of input.trackedEntities ?? [input]) te.inactive = true;
      const result = await mapInput(mappings(), input);
      assert.ok(result.status === 'skipped', JSON.stringify(result));
      assert.match(result.reason, /^inactive tracked entity/);
    }
  });

  it('maps a death from a list page, with the option codes through the value map', async () => {
    const result = await mapInput(mappings(), fixture('bridge/deceased-trackedEntities-page.json'));
    assert.ok(result.status === 'mapped', JSON.stringify(result));
    assert.equal(result.mappingId, 'death.dhis2');
    assert.equal(result.declaration['eventDetails.mannerOfDeath'], 'MANNER_NATURAL');
    assert.equal(result.declaration['deceased.idType'], 'NATIONAL_ID');
    assert.equal(result.declaration['eventDetails.causeOfDeathEstablished'], true);
  });

  it('takes a value DHIS2 kept as "" (cleared) as absent, not as a malformed one', async () => {
    const page = fixture('bridge/deceased-trackedEntities-page.json') as { trackedEntities: unknown[] };
    const text = JSON.stringify(page);
    const date = /"dataElement":"SbxDeDthDat","value":"([^"]+)"/.exec(text);
    assert.ok(date, 'the fixture has a date of death');
    const dob = /"attribute":"SbxAttrDob1","value":"([^"]+)"/.exec(text);
    assert.ok(dob, 'the fixture has a date of birth');
    const cleared = JSON.parse(
      text
        .replace(date[0], '"dataElement":"SbxDeDthDat","value":""')
        .replace(dob[0], '"attribute":"SbxAttrDob1","value":""'),
    );
    const result = await mapInput(mappings(), cleared);
    assert.ok(result.status === 'mapped', JSON.stringify(result));
    assert.match(String(result.declaration['eventDetails.date']), /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(result.declaration['deceased.dob'], undefined, 'a cleared birth date: no date, not an error');
  });

  it('maps a lone birth event (no attributes: no names, the event date as the date of birth)', async () => {
    const result = await mapInput(mappings(), fixture('bridge/birth-event.json'));
    assert.ok(result.status === 'mapped', JSON.stringify(result));
    assert.equal(result.declaration['child.dob'], '2026-09-30');
    assert.equal(result.declaration['child.name'], undefined);
  });

  it('a documented Child Programme person with only a scheduled postnatal visit is no birth evidence', async () => {
    const result = await mapInput(
      loadMappings({ names: ['birth.dhis2'], routing: ROUTING }),
      fixture('dhis2-docs/GET_api_tracker_trackedEntities_uid__single_response_child_programme.json'),
    );
    assert.equal(result.status, 'skipped');
    assert.ok(result.status === 'skipped');
    assert.match(result.reason, /no birth evidence/);
  });

  it('the in-memory fetcher reads related people embedded in relationships, and nothing by search', async () => {
    const fetcher = dhis2InputFetcher(fixture('bridge/child-trackedEntity.json'));
    assert.ok(fetcher);
    assert.equal(fetcher.resources.length, 1);
    const child = fetcher.resources[0];
    const rel = Reflect.get(child ?? {}, 'relationships');
    const motherUid = Array.isArray(rel) ? rel[0]?.to?.trackedEntity?.trackedEntity : undefined;
    assert.equal((await fetcher.read('TrackedEntity', motherUid))?.resourceType, 'TrackedEntity');
    assert.deepEqual(await fetcher.search('TrackedEntity', {}), []);
  });
});

describe('DHIS2 mapping expressions', () => {
  it('the fast evaluator agrees with fhirpath.js on every DHIS2 mapping expression, without falling back', async () => {
    const set = mappings();
    let compared = 0;
    for (const path of [
      'bridge/child-trackedEntity.json',
      'bridge/deceased-trackedEntities-page.json',
      'bridge/birth-event.json',
      'dhis2-docs/GET_api_tracker_trackedEntities_uid__single_response_child_programme.json',
      'dhis2-docs/GET_api_tracker_trackedEntities__list_response.json',
    ]) {
      const fetcher = dhis2InputFetcher(fixture(path));
      assert.ok(fetcher, path);
      for (const mapping of set.mappings) {
        assert.equal(mapping.source, 'dhis2');
        for (const r of fetcher.resources) {
          const out = await assembleContext(mapping, `TrackedEntity/${r.id}`, fetcher);
          assert.ok('context' in out);
          const { subject, vars } = out.context;
          for (const e of mapping.expressions) {
            assert.ok(e.fast, `${mapping.id}: ${e.text} is in the fast subset`);
            assert.deepEqual(
              e.evaluate(subject, vars),
              e.evaluateReference(subject, vars),
              `${path} ${mapping.id}: ${e.text}`,
            );
            compared++;
          }
        }
      }
    }
    assert.ok(compared > 100, `compared ${compared}`);
    const fellBack = set.mappings.flatMap((m) => m.expressions.filter((e) => e.fallbacks > 0).map((e) => e.text));
    assert.deepEqual(fellBack, []);
  });
});
