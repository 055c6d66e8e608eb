// `doctor` against the DHIS2 simulator's metadata: a write-back data element or attribute that is no place
// for the tracking id fails, naming the key and why. The review's case: `writeBack.attribute` naming the
// National identifier (a programme attribute the birth mapping reads), which validate and doctor passed and
// sync then overwrote.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatReport, runDoctor } from '../../src/doctor/index.js';
import {
  ATTRIBUTES,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  startDhis2Simulator,
  TRACKED_ENTITY_TYPE_PERSON,
} from '../../src/sandbox/dhis2/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';

const dir = mkdtempSync(join(tmpdir(), 'doctor-writeback-'));
let opencrvs: OpenCrvsSimulator;
let dhis2: Dhis2Simulator;

before(async () => {
  opencrvs = await startOpenCrvsSimulator({ port: 0 });
  dhis2 = await startDhis2Simulator({ port: 0 });
});

after(async () => {
  await Promise.all([opencrvs.close(), dhis2.close()]);
  rmSync(dir, { recursive: true, force: true });
});

/** Doctor's `metadata` line of each source: the Child Programme with the shipped birth mapping, and this writeBack. */
async function metadataLines(
  writeBacks: Record<string, Record<string, unknown>>,
  dhis2Of: Record<string, Record<string, unknown>> = {},
) {
  const sources = Object.entries(writeBacks).map(([id, writeBack]) => ({
    id,
    kind: 'dhis2',
    baseUrl: dhis2.baseUrl,
    auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
    // Each its own org unit: sources of one programme must not read the same records.
    dhis2: dhis2Of[id] ?? { program: 'IpHINAT79UW', orgUnits: [`Ou${id.padEnd(9, 'x')}`.slice(0, 11)] },
    mappings: ['birth.dhis2'],
    writeBack,
  }));
  const file = join(dir, `bridge-${Object.keys(writeBacks).join('-')}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      opencrvs: {
        tokenUrl: opencrvs.tokenUrl,
        eventsUrl: opencrvs.eventsUrl,
        clientId: opencrvs.clientId,
        clientSecret: opencrvs.clientSecret,
      },
      store: { path: join(dir, 'bridge.db') },
      sources,
      routing: { defaultOffice: 'LHUYvwY2Aq1' },
    }),
  );
  const report = await runDoctor({ file, env: {} });
  const line = (id: string) => report.checks.find((c) => c.name === `source ${id} metadata`);
  return { report, line };
}

describe('doctor: the DHIS2 write-back target', () => {
  it('fails a programme attribute the mapping reads (the national id), passes a TEXT attribute of the type', async () => {
    const { report, line } = await metadataLines({
      nationalid: { attribute: ATTRIBUTES.nationalId },
      tracking: { attribute: ATTRIBUTES.trackingId },
      firstname: { attribute: ATTRIBUTES.firstName },
    });
    const text = formatReport(report);
    assert.equal(line('tracking')?.status, 'ok', text);
    assert.match(line('tracking')?.detail ?? '', /with the write-back target/);
    assert.equal(line('nationalid')?.status, 'fail', text);
    const [notOfType, read, ...more] = (line('nationalid')?.detail ?? '').split('; ');
    assert.equal(
      notOfType,
      `sources[0].writeBack.attribute ${ATTRIBUTES.nationalId} is not an attribute of the tracked entity type ` +
        "nEenWmSyUEp of programme IpHINAT79UW (a programme attribute, or another type's): use a TEXT attribute " +
        'of the type, made for the tracking id',
    );
    assert.match(
      read ?? '',
      new RegExp(
        `^sources\\[0\\]\\.writeBack\\.attribute ${ATTRIBUTES.nationalId} is read by mapping birth\\.dhis2 ` +
          "\\(\\S*birth\\.dhis2\\.yaml\\) codes\\.nationalId: it holds the record's own data, no place for the " +
          'tracking id',
      ),
    );
    assert.deepEqual(more, [], 'nothing else: the value type is TEXT');
    // An attribute of the type, TEXT, but the child's first name.
    assert.equal(line('firstname')?.status, 'fail', text);
    assert.match(
      line('firstname')?.detail ?? '',
      new RegExp(
        `^sources\\[2\\]\\.writeBack\\.attribute ${ATTRIBUTES.firstName} is read by mapping birth\\.dhis2 .*codes\\.firstName:`,
      ),
    );
    assert.equal(report.ok, false);
  });

  it('fails a data element that is not TEXT, or that the mapping reads', async () => {
    const { report, line } = await metadataLines({
      tracking: { dataElement: BIRTH_DATA_ELEMENTS.trackingId, programStage: BIRTH_STAGE },
      bcg: { dataElement: BIRTH_DATA_ELEMENTS.bcgDose, programStage: BIRTH_STAGE },
      weight: { dataElement: BIRTH_DATA_ELEMENTS.weightGrams, programStage: BIRTH_STAGE },
    });
    const text = formatReport(report);
    assert.equal(line('tracking')?.status, 'ok', text);
    assert.equal(line('bcg')?.status, 'fail', text);
    assert.equal(
      line('bcg')?.detail,
      `sources[1].writeBack.dataElement ${BIRTH_DATA_ELEMENTS.bcgDose} has value type BOOLEAN: the tracking id ` +
        'needs a TEXT one, made for it',
    );
    assert.equal(line('weight')?.status, 'fail', text);
    assert.match(
      line('weight')?.detail ?? '',
      /has value type NUMBER: .*; .* is read by mapping birth\.dhis2 .*codes\.birthWeightGrams:/,
    );
  });
});

describe('doctor: the DHIS2 tracked entity type', () => {
  it("polls with dhis2.trackedEntityType (never sent beside the programme), and fails one not the programme's", async () => {
    const target = { attribute: ATTRIBUTES.trackingId };
    // Two sources of one programme and server, told apart by their types only (sources/overlap.ts).
    const { report, line } = await metadataLines(
      { person: target, other: target },
      {
        person: { program: 'IpHINAT79UW', trackedEntityType: TRACKED_ENTITY_TYPE_PERSON },
        other: { program: 'IpHINAT79UW', trackedEntityType: 'SbxOtherTyp' },
      },
    );
    const text = formatReport(report);
    // DHIS2 answers a list given programme and type 409: the poll line would fail for both.
    for (const id of ['person', 'other'])
      assert.equal(report.checks.find((c) => c.name === `source ${id} poll`)?.status, 'ok', text);
    assert.equal(line('person')?.status, 'ok', text);
    assert.equal(line('other')?.status, 'fail', text);
    assert.equal(
      line('other')?.detail,
      `sources[1].dhis2.trackedEntityType SbxOtherTyp is not the tracked entity type of programme IpHINAT79UW (${TRACKED_ENTITY_TYPE_PERSON}), the only type it enrols: the source would read nothing (set ${TRACKED_ENTITY_TYPE_PERSON}, or remove the key)`,
    );
  });
});
