// The shipped FHIR mappings against a server that answers as OpenMRS FHIR2 does (the FHIR sandbox's
// `emulate: 'openmrs'`): no Composition (404 "Unknown resource type"), no Observation?focus= nor
// RelatedPerson?patient= (400 not-supported), and a CapabilityStatement that lists neither. Before, every
// Patient's context failed on the Composition search: a dead row for each, and every pass failed. Only the
// server's "not supported" makes a search empty: a 5xx, or a 400 about a value, still fails it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { HttpFailure, outcomeOf } from '../../src/sandbox/fhir/http-util.js';
import { type FhirSandbox, startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { TYPE_EXTENSION } from '../../src/sandbox/fhir/openmrs-rest.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import {
  assertDeliveredOnce,
  eventsBySubject,
  type Harness,
  notifiedDeclaration,
  startHarness,
} from './helpers/bridge-harness.js';
import { sourceSettings } from './helpers/source-settings.js';

describe('FHIR source that answers as OpenMRS FHIR2', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ fhirEmulate: 'openmrs' });
  });
  after(async () => {
    await h?.close();
  });

  it('delivers births and deaths with the shipped mappings, each once, and passes', async () => {
    await h.writeBirths(0, 2);
    await h.writeDeaths(0, 1);
    const first = await h.bridge.syncOnce();
    assert.ok(first.ok, `sync ok: ${JSON.stringify(first.rows.map((r) => [r.state, r.lastError]))}`);
    await assertDeliveredOnce(h, 3);
    const types = [...(await eventsBySubject(h)).values()].map((event) => event.type).sort();
    assert.deepEqual(types, ['birth', 'birth', 'death']);
    const again = await h.bridge.syncOnce();
    assert.ok(again.ok);
    assert.equal(again.report.mapped.inserted, 0);
  });

  // As FHIR2 shows an OpenMRS "Parent/Child" relationship: a RelatedPerson with the child as patient, no
  // relationship code, an identifier naming the mother's Person; and no encounter of the mother's: an OpenMRS
  // encounter's partOf is its visit, whose patient is the encounter's own.
  it('reaches the mother through the RelatedPerson listing, since the server takes no RelatedPerson?patient=', async () => {
    // Born days ago: relations are listed for recent births only.
    const startDate = new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10);
    const resources = generateBirth(7, { prefix: 'omrs', startDate }).flatMap((r): Resource[] => {
      if (r.resourceType === 'Encounter') return r.partOf ? [{ ...r, partOf: undefined }] : [];
      if (r.resourceType !== 'RelatedPerson') return [r];
      const { relationship: _unrecorded, ...person } = r;
      return [{ ...person, identifier: [{ system: 'RelatedPerson', value: 'Person/omrs-birth-7-mother' }] }];
    });
    for (const r of resources) await h.fhir.upsert(r);
    assert.ok((await h.bridge.syncOnce()).ok);
    const event = (await eventsBySubject(h)).get('Patient/omrs-birth-7-child');
    assert.ok(event, 'the birth reached OpenCRVS');
    const mother = resources.find((r): r is Patient => r.id === 'omrs-birth-7-mother');
    const declaration = notifiedDeclaration(event);
    assert.deepEqual(declaration['mother.name'], {
      firstname: mother?.name?.[0]?.given?.[0],
      surname: mother?.name?.[0]?.family,
    });
    // From her own Patient, read through the RelatedPerson's identifier (it carries no birth date here).
    assert.equal(declaration['mother.dob'], mother?.birthDate);
  });
});

/** A person linked to the child as person A, as FHIR2 shows it: untyped; `type` is the REST listing's (default Parent/Child). */
interface Link {
  id: string;
  gender: 'female' | 'male';
  given: string;
  type?: string;
}

/**
 * A birth of days ago as OpenMRS FHIR2 serves it: no encounter partOf, and one RelatedPerson per link, with no
 * relationship code and an identifier naming its Person (the mother's is her Patient, `<prefix>-birth-<i>-mother`).
 */
function openmrsBirth(i: number, prefix: string, links: Link[]): Resource[] {
  const startDate = new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10);
  const child = `${prefix}-birth-${i}-child`;
  const records = generateBirth(i, { prefix, startDate }).flatMap((r): Resource[] => {
    if (r.resourceType === 'Encounter') return r.partOf ? [{ ...r, partOf: undefined }] : [];
    return r.resourceType === 'RelatedPerson' ? [] : [r];
  });
  const related = links.map(
    (link): Resource => ({
      resourceType: 'RelatedPerson',
      id: link.id,
      patient: { reference: `Patient/${child}` },
      gender: link.gender,
      name: [{ family: 'Banda', given: [link.given] }],
      identifier: [
        {
          system: 'RelatedPerson',
          value: `Person/${link.id === `${prefix}-${i}-mother` ? `${prefix}-birth-${i}-mother` : link.id}`,
        },
      ],
      ...(link.type ? { extension: [{ url: TYPE_EXTENSION, valueString: link.type }] } : {}),
    }),
  );
  return [...records, ...related];
}

// sources[].openmrs: the types FHIR2 leaves out, read from OpenMRS's REST relationship listing over HTTP.
describe('OpenMRS source with relationship types from its REST API (sources[].openmrs)', () => {
  let h: Harness;
  const restFailsFor = new Set<string>();
  const restMissingFor = new Set<string>();
  const restAsked = new Map<string, number>();
  /** The query of the bridge's last listing per person, as sent. */
  const restQueries = new Map<string, string>();
  before(async () => {
    h = await startHarness({
      fhirEmulate: 'openmrs',
      source: { openmrsRest: true },
      fhirPaging: {
        beforeRest: (_path, query) => {
          const person = query.get('person') ?? '';
          restAsked.set(person, (restAsked.get(person) ?? 0) + 1);
          restQueries.set(person, query.toString());
          if (restFailsFor.has(query.get('person') ?? ''))
            throw new HttpFailure(500, outcomeOf('exception', 'database unavailable'));
          // As a FHIR server answers a path it does not serve (a restUrl naming the FHIR2 base): a FHIR 404.
          if (restMissingFor.has(query.get('person') ?? ''))
            throw new HttpFailure(404, outcomeOf('not-found', 'Unknown resource type relationship'));
        },
      },
    });
  });
  after(async () => {
    await h?.close();
  });

  const declarationOf = async (child: string) => {
    const event = (await eventsBySubject(h)).get(`Patient/${child}`);
    assert.ok(event, `${child} reached OpenCRVS`);
    return notifiedDeclaration(event);
  };

  it('takes the woman linked as Parent for the mother, the man as father, and not a clinician woman also linked', async () => {
    const links: Link[] = [
      { id: 'rest-21-mother', gender: 'female', given: 'Neema' },
      { id: 'rest-21-father', gender: 'male', given: 'Jabari' },
      { id: 'rest-21-midwife', gender: 'female', given: 'Rehema', type: 'Doctor' },
    ];
    for (const r of openmrsBirth(21, 'rest', links)) await h.fhir.upsert(r);
    const sync = await h.bridge.syncOnce();
    assert.ok(sync.ok, JSON.stringify(sync.rows.map((r) => [r.state, r.lastError])));
    const declaration = await declarationOf('rest-birth-21-child');
    // Untyped, two women linked left the mother out, and no father was ever sent.
    assert.equal((declaration['mother.name'] as { firstname?: string })?.firstname, 'Neema');
    assert.equal((declaration['father.name'] as { firstname?: string })?.firstname, 'Jabari');
    // Once for the birth in its pass, although the pass met it on several pages (Patient, RelatedPerson…).
    assert.equal(restAsked.get('rest-birth-21-child'), 1);
    // Typed from the lean answer the bridge asks for (the sandbox answers only the properties named): the
    // same listing asked again holds no name, birth date nor address of anyone linked (`v=full`'s do).
    const restUrl = new URL('/ws/rest/v1', h.fhir.baseUrl).href;
    const answer = await fetch(`${restUrl}/relationship?${restQueries.get('rest-birth-21-child')}`);
    assert.equal(answer.status, 200);
    const text = await answer.text();
    for (const personal of ['Neema', 'Jabari', 'Rehema', 'Banda', 'display', 'birthdate', 'Address'])
      assert.ok(!text.includes(personal), `${personal} in ${text}`);
    const results = (JSON.parse(text) as { results: Record<string, unknown>[] }).results;
    assert.deepEqual(Object.keys(results[0] ?? {}).sort(), [
      'personA',
      'personB',
      'relationshipType',
      'uuid',
      'voided',
    ]);
  });

  it('does not take a clinician, the one woman linked, for the mother', async () => {
    const links: Link[] = [{ id: 'rest-22-doctor', gender: 'female', given: 'Upendo', type: 'Doctor' }];
    for (const r of openmrsBirth(22, 'rest', links)) await h.fhir.upsert(r);
    assert.ok((await h.bridge.syncOnce()).ok);
    const declaration = await declarationOf('rest-birth-22-child');
    assert.equal(declaration['mother.name'], undefined, JSON.stringify(declaration['mother.name']));
  });

  it('sets the birth aside when the REST listing fails, rather than take the one woman linked untyped', async () => {
    restFailsFor.add('rest-birth-23-child');
    const links: Link[] = [{ id: 'rest-23-aunt', gender: 'female', given: 'Subira', type: 'Aunt' }];
    for (const r of openmrsBirth(23, 'rest', links)) await h.fhir.upsert(r);
    const sync = await h.bridge.syncOnce();
    assert.equal(sync.ok, false);
    const row = h.rows().find((r) => r.subjectKey === 'Patient/rest-birth-23-child');
    assert.equal(row?.state, 'dead');
    assert.equal(row?.lastError?.kind, 'source-read');
    assert.match(row?.lastError?.message ?? '', /OpenMRS REST relationship listing failed: HTTP 500/);
    assert.equal((await eventsBySubject(h)).get('Patient/rest-birth-23-child'), undefined);
    // Replayed once the listing answers: delivered, and the aunt is still no mother.
    restFailsFor.clear();
    await h.bridge.replay([row?.id ?? 0]);
    await h.waitFor('the replayed birth delivered', () =>
      h.rows().some((r) => r.subjectKey === 'Patient/rest-birth-23-child' && r.state === 'delivered'),
    );
    assert.equal((await declarationOf('rest-birth-23-child'))['mother.name'], undefined);
  });
  it('fails the pass when the REST listing answers 404 with a FHIR body, setting no birth aside', async () => {
    restMissingFor.add('rest-birth-24-child');
    const links: Link[] = [{ id: 'rest-24-mother', gender: 'female', given: 'Zawadi' }];
    for (const r of openmrsBirth(24, 'rest', links)) await h.fhir.upsert(r);
    const sync = await h.bridge.syncOnce();
    assert.equal(sync.ok, false);
    // A configuration's fault, not the birth's: nothing dead for it (taken for one record's, the birth and
    // the child's death evaluation were both set aside as dead), to be read again once the listing answers.
    const rows = h.rows().filter((r) => r.subjectKey === 'Patient/rest-birth-24-child');
    assert.deepEqual(
      rows.filter((r) => r.state === 'dead').map((r) => [r.eventType, r.lastError?.message]),
      [],
    );
    restMissingFor.clear();
    assert.ok((await h.bridge.syncOnce()).ok);
    assert.equal(
      ((await declarationOf('rest-birth-24-child'))['mother.name'] as { firstname?: string })?.firstname,
      'Zawadi',
    );
  });
});

describe('context searches of an OpenMRS-like server', () => {
  let sandbox: FhirSandbox;
  let client: FhirSourceClient;
  let relationSearches = 0;
  const relationRanges: string[] = [];
  let refuseListing = false;
  const warnings: string[] = [];
  before(async () => {
    sandbox = await startFhirSandboxWith(
      { port: 0, emulate: 'openmrs', logger: silentLogger },
      {
        beforeSearch: (type, query) => {
          if (type === 'RelatedPerson') {
            relationSearches++;
            relationRanges.push(query.getAll('_lastUpdated').join('&'));
          }
          if (type === 'RelatedPerson' && refuseListing)
            throw new HttpFailure(400, outcomeOf('not-supported', '_lastUpdated is not supported'));
          if (type === 'Encounter') throw new HttpFailure(503, outcomeOf('transient', 'database unavailable'));
          if (query.get('date') === 'never') throw new HttpFailure(400, outcomeOf('invalid', 'bad date'));
        },
      },
    );
    client = new FhirSourceClient(sourceSettings(sandbox.baseUrl, { mappings: ['birth.fhir'] }), {
      logger: createLogger({ level: 'warn', destination: { write: (line: string) => warnings.push(line) } }),
      attempts: 1,
    });
  });
  after(async () => {
    client?.close();
    await sandbox?.close();
  });

  it('finds nothing where the server does not serve the search, and fails where it fails', async () => {
    const fetcher = new CachingFetcher(client);
    assert.deepEqual(await fetcher.search('Composition', { subject: 'Patient/a' }), []);
    assert.deepEqual(await fetcher.search('Observation', { focus: 'Patient/a', code: 'x' }), []);
    assert.deepEqual(await fetcher.search('Observation', { focus: 'Patient/b', code: 'x' }), []);
    // Composition not asked at all (its CapabilityStatement), the focus search once (its 400 not-supported).
    assert.equal(fetcher.reads, 1);
    const status = (code: number) => (err: unknown) => err instanceof FhirSourceError && err.status === code;
    await assert.rejects(fetcher.search('Encounter', { subject: 'Patient/a' }), status(503));
    await assert.rejects(fetcher.search('Observation', { subject: 'Patient/a', date: 'never' }), status(400));
  });

  it("lists relations once for a pass's births, oldest first, not once per birth date", async () => {
    const born = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
    const children = { older: born(9), younger: born(2) };
    for (const [id, birthDate] of Object.entries(children)) {
      await sandbox.upsert({ resourceType: 'Patient', id, birthDate });
      await sandbox.upsert({
        resourceType: 'RelatedPerson',
        id: `${id}-mother`,
        patient: { reference: `Patient/${id}` },
      });
    }
    relationSearches = 0;
    const fetcher = new CachingFetcher(client);
    const mothers = async (id: string) =>
      (await fetcher.search('RelatedPerson', { patient: `Patient/${id}` })).map((r) => r.id);
    assert.deepEqual(await mothers('older'), ['older-mother']);
    assert.deepEqual(await mothers('younger'), ['younger-mother'], 'from the older birth listing');
    // `patient=` not asked (the CapabilityStatement declares no such parameter): one listing for both.
    assert.equal(relationSearches, 1);
  });

  it('says a REST listing answered 404 names sources[].openmrs.restUrl, not a proxy in front of the FHIR server', async () => {
    const wrong = new FhirSourceClient(
      sourceSettings(sandbox.baseUrl, { openmrs: { restUrl: new URL('/openmrs/ws/rest/v1', sandbox.baseUrl).href } }),
      { logger: silentLogger, attempts: 1 },
    );
    try {
      await assert.rejects(
        new CachingFetcher(wrong).search('RelatedPerson', { patient: 'Patient/older' }),
        (err: unknown) =>
          err instanceof FhirSourceError &&
          err.status === 404 &&
          /OpenMRS REST relationship listing failed: HTTP 404: no OpenMRS REST relationship resource at sources\[\]\.openmrs\.restUrl/.test(
            err.message,
          ),
      );
    } finally {
      wrong.close();
    }
  });

  it('lists relations for births newest first at about the cost of oldest first: only the older gap is asked', async () => {
    const born = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
    const ages = [3, 6, 12, 20];
    for (const days of ages) {
      await sandbox.upsert({ resourceType: 'Patient', id: `desc-${days}`, birthDate: born(days) });
      await sandbox.upsert({
        resourceType: 'RelatedPerson',
        id: `desc-${days}-mother`,
        patient: { reference: `Patient/desc-${days}` },
      });
    }
    // Others' relationships, recorded since: each listing from a birth holds them, in 3 pages of 100.
    for (let i = 0; i < 220; i++)
      await sandbox.upsert({
        resourceType: 'RelatedPerson',
        id: `desc-other-${i}`,
        patient: { reference: 'Patient/x' },
      });
    relationSearches = 0;
    relationRanges.length = 0;
    const fetcher = new CachingFetcher(client);
    for (const days of ages)
      assert.deepEqual(
        (await fetcher.search('RelatedPerson', { patient: `Patient/desc-${days}` })).map((r) => r.id),
        [`desc-${days}-mother`],
      );
    // The newest birth's listing (3 pages), then one range per older birth, up to the day the one held
    // starts; each birth its own listing read the 3 pages again (12).
    assert.equal(relationSearches, 3 + ages.length - 1);
    // Each from the day before its birth.
    assert.deepEqual(relationRanges.slice(3), [
      `ge${born(7)}&lt${born(4)}`,
      `ge${born(13)}&lt${born(7)}`,
      `ge${born(21)}&lt${born(13)}`,
    ]);
    // Mapped side by side, as a pass's lanes map a page: one listing, from the oldest birth's day.
    relationSearches = 0;
    const sideBySide = new CachingFetcher(client);
    const found = await Promise.all(
      ages.map(async (days) => (await sideBySide.search('RelatedPerson', { patient: `Patient/desc-${days}` })).length),
    );
    assert.deepEqual(found, [1, 1, 1, 1]);
    assert.equal(relationSearches, 3);
  });

  it('says a refused listing leaves the mother out, not that RelatedPerson is no longer polled', async () => {
    refuseListing = true;
    warnings.length = 0; // the earlier tests' (the `patient=` search refused)
    const fetcher = new CachingFetcher(client);
    assert.deepEqual(await fetcher.search('RelatedPerson', { patient: 'Patient/younger' }), []);
    const said = warnings.map((line) => JSON.parse(line).msg as string).filter((msg) => msg.includes('RelatedPerson'));
    assert.equal(said.length, 1, said.join('\n'));
    assert.match(
      said[0] ?? '',
      /does not serve a RelatedPerson listing by _lastUpdated .*births are notified without the mother; RelatedPerson is still polled/,
    );
    assert.doesNotMatch(said[0] ?? '', /is not polled/);
  });
});
