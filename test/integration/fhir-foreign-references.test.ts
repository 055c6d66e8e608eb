// An absolute reference names its server: `http://mpi.example.org/fhir/Patient/123` (a mother held in a
// master patient index) is not the EMR's `Patient/123`, which may be another person. Reduced to
// `Patient/123` and read from the source, that other record's name and birth date went into the
// declaration. Such a reference is now read only under the source's own baseUrl; any other is not
// followed, and the result says so (the server's origin only). An EMR that writes its own records under
// another address of itself (`http://openmrs:8080/…` behind `https://emr.hospital.org/…`) lists that base
// in sources[].alsoKnownAs: references under it are read as its own. Against the FHIR sandbox behind the
// fault proxy, which records every request, and through the whole bridge to the OpenCRVS simulator.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { loadMappings, type MapResult, mapSubject } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import {
  eventsBySubject,
  type Harness,
  notifiedDeclaration,
  SOURCE_ID,
  startHarness,
} from './helpers/bridge-harness.js';
import { type FhirBehindProxy, startFhirBehindProxy } from './helpers/fhir-proxy.js';

const MPI = 'http://mpi.example.org';
/** Another address of the EMR itself, as OpenMRS behind a TLS proxy writes its references: never called. */
const ALIAS = 'http://openmrs:8080/openmrs/ws/fhir2/R4';

/** The warning for a reference to `origin` not followed, from a live source (its hint names the source). */
function notFollowed(origin: string, source = 'emr'): string {
  return (
    `context 'maternityPatients': a reference to a record on another server (${origin}) was not followed; ` +
    `if that is this EMR under another address, add its FHIR base URL to sources[].alsoKnownAs of source ${source}`
  );
}
/** The EMR's own Patient with the id the other server's mother has: someone else, by name. */
const NOT_THE_MOTHER = 'Notthemother';

/**
 * Birth `n` of `prefix` whose mother is known only as the maternity encounter's subject (no RelatedPerson),
 * referenced as `motherRef(id)`; the EMR's Patient of that id is named NOT_THE_MOTHER.
 */
function birthWithMotherAt(n: number, motherRef: (id: string) => string, prefix = 'demo'): Resource[] {
  return generateBirth(n, { prefix }).flatMap((resource): Resource[] => {
    if (resource.resourceType === 'RelatedPerson') return [];
    if (resource.resourceType === 'Patient' && resource.id === `${prefix}-birth-${n}-mother`)
      return [{ ...resource, name: [{ use: 'official', family: NOT_THE_MOTHER, given: ['Ruth'] }] }];
    if (resource.resourceType === 'Encounter' && resource.id === `${prefix}-birth-${n}-maternity`)
      return [{ ...resource, subject: { reference: motherRef(`${prefix}-birth-${n}-mother`) } }];
    return [resource];
  });
}

function motherFamily(result: MapResult): unknown {
  assert.equal(result.status, 'mapped', JSON.stringify(result));
  return (result.declaration['mother.name'] as { surname?: string } | undefined)?.surname;
}

describe('absolute references to another server (live FHIR source)', () => {
  let setup: FhirBehindProxy;
  const set = loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } });
  // Filled in once the proxy's address is known (the source's baseUrl).
  const seeds: Array<(base: string) => Resource[]> = [
    () => birthWithMotherAt(0, (id) => `${MPI}/fhir/Patient/${id}`),
    // The source's own base, as the EMR writes it: read as before.
    (base) => birthWithMotherAt(1, (id) => `${base}/Patient/${id}`),
    // Same host and port, another base path: another server.
    (base) => birthWithMotherAt(2, (id) => `${new URL(base).origin}/other-fhir/Patient/${id}`),
  ];

  before(async () => {
    // The proxy's address is the source's baseUrl: known only once it listens, so the seed is written after.
    setup = await startFhirBehindProxy({ timeoutMs: 5000 });
    for (const seed of seeds) for (const resource of seed(setup.client.baseUrl)) await setup.sandbox.upsert(resource);
  });
  after(async () => {
    await setup?.close();
  });
  beforeEach(() => {
    setup.proxy.seen.length = 0;
  });

  const asked = (id: string) => setup.proxy.seen.map((request) => request.url ?? '').filter((url) => url.includes(id));

  it('reads an absolute reference under the source baseUrl, as a relative one', async () => {
    const result = await mapSubject(set, 'birth.fhir', 'Patient/demo-birth-1-child', new CachingFetcher(setup.client));
    assert.equal(motherFamily(result), NOT_THE_MOTHER);
    assert.ok(asked('demo-birth-1-mother').length > 0, 'the mother was read from the source');
    assert.ok(result.status === 'mapped');
    assert.ok(!result.warnings.some((w) => /another server/.test(w)), JSON.stringify(result.warnings));
  });

  it('asks the source nothing for another server’s record, maps without it, and says so', async () => {
    for (const [n, origin] of [
      [0, MPI],
      [2, new URL(setup.client.baseUrl).origin],
    ] as const) {
      setup.proxy.seen.length = 0;
      const result = await mapSubject(
        set,
        'birth.fhir',
        `Patient/demo-birth-${n}-child`,
        new CachingFetcher(setup.client),
      );
      assert.equal(motherFamily(result), undefined, 'no name from the source’s Patient of the same id');
      assert.ok(result.status === 'mapped');
      assert.equal(result.declaration['mother.dob'], undefined);
      assert.ok(setup.proxy.seen.length > 0, 'the record itself was read');
      assert.deepEqual(asked(`demo-birth-${n}-mother`), []);
      assert.ok(result.warnings.includes(notFollowed(origin)), JSON.stringify(result.warnings));
      assert.ok(!JSON.stringify(result.warnings).includes(`demo-birth-${n}-mother`), 'no record id in a warning');
    }
  });
});

describe('absolute references under another address of the source (sources[].alsoKnownAs)', () => {
  let setup: FhirBehindProxy;
  /** The same source without alsoKnownAs, on the same proxy. */
  let plain: FhirSourceClient;
  const set = loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } });

  before(async () => {
    // The alias written as an operator may: a trailing slash, the host in capitals.
    setup = await startFhirBehindProxy({
      timeoutMs: 5000,
      source: { alsoKnownAs: ['http://OPENMRS:8080/openmrs/ws/fhir2/R4/'] },
    });
    plain = new FhirSourceClient({ ...setup.source, alsoKnownAs: undefined }, { logger: silentLogger });
    for (const resource of [
      ...birthWithMotherAt(3, (id) => `${ALIAS}/Patient/${id}/_history/2`),
      // The alias's host under another path: not the EMR.
      ...birthWithMotherAt(4, (id) => `http://openmrs:8080/other/fhir/Patient/${id}`),
    ])
      await setup.sandbox.upsert(resource);
  });
  after(async () => {
    plain?.close();
    await setup?.close();
  });
  beforeEach(() => {
    setup.proxy.seen.length = 0;
  });

  const asked = (id: string) => setup.proxy.seen.map((request) => request.url ?? '').filter((url) => url.includes(id));

  it('reads a reference under an alias from the source, as a relative one', async () => {
    const result = await mapSubject(set, 'birth.fhir', 'Patient/demo-birth-3-child', new CachingFetcher(setup.client));
    assert.equal(motherFamily(result), NOT_THE_MOTHER);
    assert.ok(asked('demo-birth-3-mother').length > 0, 'the mother was read from the source');
    assert.ok(result.status === 'mapped');
    assert.ok(!result.warnings.some((w) => /another server/.test(w)), JSON.stringify(result.warnings));
  });

  it('leaves it out, asking nothing, with the hint, when alsoKnownAs does not name that base', async () => {
    for (const [n, fetcher] of [
      [3, new CachingFetcher(plain)],
      [4, new CachingFetcher(setup.client)],
    ] as const) {
      setup.proxy.seen.length = 0;
      const result = await mapSubject(set, 'birth.fhir', `Patient/demo-birth-${n}-child`, fetcher);
      assert.equal(motherFamily(result), undefined, `birth ${n}`);
      assert.ok(result.status === 'mapped');
      assert.ok(setup.proxy.seen.length > 0, 'the record itself was read');
      assert.deepEqual(asked(`demo-birth-${n}-mother`), []);
      assert.deepEqual(
        result.warnings.filter((w) => /another server/.test(w)),
        [notFollowed('http://openmrs:8080')],
      );
    }
  });
});

describe('absolute references to another server (the bridge, to OpenCRVS)', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  // The pass reads the EMR's Patients as subjects of their own (the mother's too): what it asks is counted
  // above, on the fetcher alone. Here: what reaches OpenCRVS and the ledger, through the pipeline's fetchers.
  it('notifies the birth without the other server’s mother, keeps the warning with the row, reads its own', async () => {
    const base = h.config.sources[0]?.baseUrl;
    assert.ok(base);
    for (const r of [
      ...birthWithMotherAt(0, (id) => `${MPI}/fhir/Patient/${id}`, 'e2e'),
      ...birthWithMotherAt(1, (id) => `${base}/Patient/${id}`, 'e2e'),
    ])
      await h.fhir.upsert(r);
    const sync = await h.bridge.syncOnce();
    assert.ok(sync.ok, JSON.stringify(sync.rows.map((r) => [r.state, r.lastError])));
    await h.waitForEvents(2);
    const events = await eventsBySubject(h);
    const surname = (child: string) => {
      const event = events.get(child);
      assert.ok(event, `${child} notified`);
      return (notifiedDeclaration(event)['mother.name'] as { surname?: string } | undefined)?.surname;
    };
    assert.equal(surname('Patient/e2e-birth-0-child'), undefined);
    assert.equal(surname('Patient/e2e-birth-1-child'), NOT_THE_MOTHER);

    const row = h.rows().find((r) => r.subjectKey === 'Patient/e2e-birth-0-child');
    assert.ok(row);
    const warnings = h.bridge.ledger.mappingWarnings(row.id);
    assert.ok(warnings.includes(notFollowed(MPI, SOURCE_ID)), JSON.stringify(warnings));
  });
});

describe('absolute references under another address of the source (the bridge, to OpenCRVS)', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ source: { alsoKnownAs: [ALIAS] } });
  });
  after(async () => {
    await h?.close();
  });

  it('notifies the birth with the mother read under the alias, and one under an unlisted base without her', async () => {
    for (const r of [
      ...birthWithMotherAt(0, (id) => `${ALIAS}/Patient/${id}`, 'aka'),
      ...birthWithMotherAt(1, (id) => `https://emr.hospital.org/openmrs/ws/fhir2/R4/Patient/${id}`, 'aka'),
    ])
      await h.fhir.upsert(r);
    const sync = await h.bridge.syncOnce();
    assert.ok(sync.ok, JSON.stringify(sync.rows.map((r) => [r.state, r.lastError])));
    await h.waitForEvents(2);
    const events = await eventsBySubject(h);
    const mother = (child: string) => {
      const event = events.get(child);
      assert.ok(event, `${child} notified`);
      const declaration = notifiedDeclaration(event);
      return [(declaration['mother.name'] as { surname?: string } | undefined)?.surname, declaration['mother.dob']];
    };
    const [surname, dob] = mother('Patient/aka-birth-0-child');
    assert.equal(surname, NOT_THE_MOTHER);
    assert.equal(typeof dob, 'string', 'the mother’s birth date came with her');
    assert.deepEqual(mother('Patient/aka-birth-1-child'), [undefined, undefined]);

    const warningsOf = (child: string) => {
      const row = h.rows().find((r) => r.subjectKey === child);
      assert.ok(row, child);
      return h.bridge.ledger.mappingWarnings(row.id).filter((w) => /another server/.test(w));
    };
    assert.deepEqual(warningsOf('Patient/aka-birth-0-child'), []);
    assert.deepEqual(warningsOf('Patient/aka-birth-1-child'), [notFollowed('https://emr.hospital.org', SOURCE_ID)]);
  });
});
