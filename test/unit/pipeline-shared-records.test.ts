// Sources that read the same records (one DHIS2 server and programme split by org unit between sources):
// what one of them reads of a record another already holds a row for is recorded on that row, never on a
// row of its own (which would send the record again under transaction ids of its own).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import type { MappingSet, MapResult } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { sourcesSharingRecords, writeBacksOnServer } from '../../src/sources/overlap.js';
import { type Evaluation, SourcePipeline } from '../../src/sources/pipeline.js';

const SUBJECT = 'TrackedEntity/child1';

function mapped(office: string, hash: string): Evaluation {
  const result: MapResult = {
    status: 'mapped',
    mappingId: 'birth.dhis2',
    eventType: 'birth',
    subjectRef: SUBJECT,
    sourceRef: 'Event/ev1',
    payloadHash: hash,
    declaration: { 'child.name': 'x' },
    routing: { office, via: 'test' },
    warnings: [],
  };
  return { result, excluded: false };
}

function pipeline(ledger: Ledger, sourceId: string, sharesRecordsWith?: string[]): SourcePipeline {
  return new SourcePipeline({
    sourceId,
    mappings: {} as MappingSet,
    ledger,
    logger: silentLogger,
    ...(sharesRecordsWith ? { sharesRecordsWith } : {}),
  });
}

async function withLedger(run: (ledger: Ledger) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-shared-'));
  const ledger = openLedger(join(dir, 'bridge.db'));
  try {
    await run(ledger);
  } finally {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SourcePipeline: sources that read the same records', () => {
  it("records a record another source holds on that source's row, and notes who read it", async () => {
    await withLedger((ledger) => {
      pipeline(ledger, 'dhis2-bo', ['dhis2-west']).commit([mapped('office-bo', 'h1')]);
      const report = pipeline(ledger, 'dhis2-west', ['dhis2-bo']).commit([mapped('office-west', 'h2')]);
      assert.equal(report.mapped.replaced, 1, 'the waiting row takes the newer version');
      const rows = ledger.list({ limit: 10 });
      assert.deepEqual(
        rows.map((r) => [r.sourceId, r.office]),
        [['dhis2-bo', 'office-west']],
      );
      assert.equal(ledger.readBy(rows[0]?.id ?? 0), 'dhis2-west');
      // Its own row, once it has one, stays its own (a record it holds is never moved to another source).
      pipeline(ledger, 'dhis2-bo', ['dhis2-west']).commit([mapped('office-bo', 'h3')]);
      assert.equal(ledger.list({ limit: 10 }).length, 1);
    });
  });

  it('leaves sources that do not share records apart', async () => {
    await withLedger((ledger) => {
      pipeline(ledger, 'dhis2-bo').commit([mapped('office-bo', 'h1')]);
      pipeline(ledger, 'dhis2-deaths', ['dhis2-other']).commit([mapped('office-x', 'h2')]);
      assert.deepEqual(
        ledger
          .list({ limit: 10 })
          .map((r) => r.sourceId)
          .sort(),
        ['dhis2-bo', 'dhis2-deaths'],
      );
    });
  });
});

describe('sourcesSharingRecords', () => {
  const dhis2 = (id: string, baseUrl: string, program: string, orgUnits?: string[]) =>
    ({
      id,
      kind: 'dhis2',
      baseUrl,
      dhis2: { program, ...(orgUnits ? { orgUnits } : {}) },
    }) as unknown as SourceSettings;

  it('pairs DHIS2 sources of one server and programme, whatever their org units and URL spelling', () => {
    const shared = sourcesSharingRecords([
      dhis2('bo', 'https://dhis2.example.org', 'IpHINAT79UW', ['O6uvpzGd5pu']),
      dhis2('west', 'https://DHIS2.example.org/api/', 'IpHINAT79UW', ['y77LiPqLMoq']),
      dhis2('deaths', 'https://dhis2.example.org', 'SbxDthProg1'),
      dhis2('elsewhere', 'https://other.example.org', 'IpHINAT79UW'),
      { id: 'emr', kind: 'fhir', baseUrl: 'https://dhis2.example.org' } as unknown as SourceSettings,
    ]);
    assert.deepEqual(Object.fromEntries(shared), { bo: ['west'], west: ['bo'] });
  });
});

describe('writeBacksOnServer: DHIS2', () => {
  const dhis2 = (id: string, baseUrl: string, writeBack?: Record<string, string>) =>
    ({ id, kind: 'dhis2', baseUrl, ...(writeBack ? { writeBack } : {}) }) as unknown as SourceSettings;

  it('gives each DHIS2 source the other write-backs of its server, whatever their programme and URL spelling', () => {
    const births = { dataElement: 'uf3svrmp8Oj', programStage: 'A03MvHHogjR' };
    const deaths = { attribute: 'SbxTrkIdAtt' };
    const onServer = writeBacksOnServer([
      dhis2('births', 'https://dhis2.example.org', births),
      dhis2('deaths', 'https://DHIS2.example.org/api/', deaths),
      dhis2('silent', 'https://dhis2.example.org'),
      dhis2('elsewhere', 'https://other.example.org', { dataElement: 'OtherTrkId1' }),
      {
        id: 'emr',
        kind: 'fhir',
        baseUrl: 'https://dhis2.example.org',
        writeBack: { identifierSystem: 'x' },
      } as unknown as SourceSettings,
    ]);
    assert.deepEqual(Object.fromEntries(onServer), {
      births: [deaths],
      deaths: [births],
      silent: [births, deaths],
    });
  });
});

describe('writeBacksOnServer: FHIR', () => {
  const fhir = (id: string, baseUrl: string, more: Record<string, unknown> = {}) =>
    ({ id, kind: 'fhir', baseUrl, ...more }) as unknown as SourceSettings;

  it('gives each FHIR source the other write-backs of its server, by baseUrl or an alsoKnownAs, never alias to alias', () => {
    const births = { identifierSystem: 'urn:births' };
    const deaths = { identifierSystem: 'urn:deaths', target: 'task' };
    const alias = { identifierSystem: 'urn:alias' };
    const onServer = writeBacksOnServer([
      fhir('births', 'https://emr.example.org/fhir', { writeBack: births }),
      fhir('deaths', 'https://EMR.example.org:443/fhir/', { writeBack: deaths }),
      // Names the EMR's address among its own: one server.
      fhir('alias', 'http://10.0.0.5:8080/fhir', { writeBack: alias, alsoKnownAs: ['https://emr.example.org/fhir'] }),
      // Another hospital that shares only an alias with `alias`: not its server.
      fhir('other', 'https://other.example.org/fhir', {
        writeBack: { identifierSystem: 'urn:other' },
        alsoKnownAs: ['http://openmrs:8080/fhir'],
      }),
      fhir('compose', 'https://third.example.org/fhir', { alsoKnownAs: ['http://openmrs:8080/fhir'] }),
      {
        id: 'hmis',
        kind: 'dhis2',
        baseUrl: 'https://emr.example.org/fhir',
        writeBack: { dataElement: 'uf3svrmp8Oj' },
      } as unknown as SourceSettings,
    ]);
    assert.deepEqual(Object.fromEntries(onServer), {
      births: [deaths, alias],
      deaths: [births, alias],
      alias: [births, deaths],
    });
  });
});
