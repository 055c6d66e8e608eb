// Context assembly through an injected fetcher (what the live poller and `map --input` share), the
// in-memory bundle fetcher, and what the set tells a poller (watched types, subjects of a change).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  bundleFetcher,
  loadMappings,
  type MappedResult,
  mapSubject,
  normalizeReference,
  parseReference,
  type Resource,
  type ResourceFetcher,
  referencesOf,
  referenceUnderBase,
} from '../../src/mapping/index.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';

function fixture(path: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8'));
}

// The FHIR mappings only: a FHIR source polls FHIR resource types (DHIS2 mappings watch TrackedEntity).
const set = loadMappings({
  names: ['birth.fhir', 'death.fhir'],
  routing: { defaultOffice: 'office-1', facilities: {} },
});

/** Wraps a fetcher and counts the calls, as a live FHIR client would make them. */
function counting(inner: ResourceFetcher) {
  const calls: string[] = [];
  return {
    calls,
    fetcher: {
      read: (type: string, id: string) => {
        calls.push(`read ${type}/${id}`);
        return inner.read(type, id);
      },
      search: (type: string, params: Record<string, string>) => {
        calls.push(`search ${type} ${JSON.stringify(params)}`);
        return inner.search(type, params);
      },
    } satisfies ResourceFetcher,
  };
}

describe('bundleFetcher', () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001',
        resource: { resourceType: 'Patient', gender: 'female' },
      },
      {
        fullUrl: 'http://emr.example.org/fhir/Observation/o1',
        resource: {
          resourceType: 'Observation',
          id: 'o1',
          code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] },
          subject: { reference: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001' },
        },
      },
      {
        resource: {
          resourceType: 'Observation',
          id: 'o2',
          code: { coding: [{ code: '5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }] },
          subject: { reference: 'http://emr.example.org/fhir/Patient/aaaaaaaa-0000-4000-8000-000000000001' },
        },
      },
    ],
  };

  it('resolves urn:uuid, Type/id and absolute references to the same resource', async () => {
    const f = bundleFetcher(bundle);
    const byUrn = await f.read('', 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001');
    assert.equal(byUrn?.resourceType, 'Patient');
    assert.equal(await f.read('Patient', 'aaaaaaaa-0000-4000-8000-000000000001'), byUrn);
    assert.equal((await f.read('Observation', 'o1'))?.id, 'o1');
  });

  it('searches by reference whatever form the reference takes, and by code with or without a system', async () => {
    const f = bundleFetcher(bundle);
    const all = await f.search('Observation', { subject: 'Patient/aaaaaaaa-0000-4000-8000-000000000001' });
    assert.deepEqual(all.map((r) => r.id).sort(), ['o1', 'o2']);
    const coded = await f.search('Observation', {
      subject: 'Patient/aaaaaaaa-0000-4000-8000-000000000001',
      code: 'http://loinc.org|8339-4,5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    });
    assert.equal(coded.length, 2);
    assert.equal((await f.search('Observation', { code: 'http://other|8339-4' })).length, 0);
    await assert.rejects(f.search('Observation', { 'value-quantity': 'gt3' }), /does not support/);
  });
});

describe('context assembly', () => {
  it('reads each resource once per record and maps the same as the dry run', async () => {
    const { calls, fetcher } = counting(
      bundleFetcher(fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json')),
    );
    const r = await mapSubject(set, 'birth.fhir', 'Patient/patient-child-babyg-quinn', fetcher);
    assert.equal(r.status, 'mapped');
    assert.equal((r as MappedResult).declaration['child.weightAtBirth'], 2.5);
    assert.equal(new Set(calls).size, calls.length, `repeated fetches: ${calls.join(', ')}`);
    assert.ok(calls.length <= 20, `${calls.length} fetches`);
  });

  it('stops fetching at maxReads and says the context is incomplete', async () => {
    const { calls, fetcher } = counting(
      bundleFetcher(fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json')),
    );
    const r = await mapSubject(set, 'birth.fhir', 'Patient/patient-child-babyg-quinn', fetcher, { maxReads: 3 });
    assert.equal(calls.length, 3);
    assert.ok(r.status === 'mapped');
    assert.ok(r.warnings.some((w) => /context incomplete: more than 3 reads/.test(w)));
  });

  it('does not call a record no event when the read budget ran out before its evidence was read', async () => {
    const fetcher = bundleFetcher(fixture('fhir/openmrs/openmrs-birth-bundle.json'));
    const newborn = 'Patient/3c2f8b4e-9d41-4b7a-a6de-5b1f0c7e2a19'; // born 2024-05-14, evidence in its encounter
    assert.equal((await set.mapSubjectDetailed('birth.fhir', newborn, fetcher)).result.status, 'mapped');
    const starved = await set.mapSubjectDetailed('birth.fhir', newborn, fetcher, { maxReads: 1 });
    assert.ok(starved.result.status === 'skipped', JSON.stringify(starved.result));
    assert.notEqual(starved.noEvidence, true, 'an unsent row must not be withdrawn on a partial read');
    const full = await set.mapSubjectDetailed('death.fhir', newborn, fetcher);
    assert.equal(full.result.status, 'skipped');
    assert.equal(full.noEvidence, true, 'a complete context that shows no death');
  });

  it('reads no reference whose id is `.` or `..` (on a live server: the base itself, or its parent)', async () => {
    const bundle = readFileSync(
      new URL('../fixtures/fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json', import.meta.url),
      'utf8',
    )
      // The birth attendant, read by reference (the one context read of this bundle: searches bring the rest).
      .replaceAll('"Practitioner/practitioner-vital-records-avery-jones"', '"Practitioner/.."');
    const { calls, fetcher } = counting(bundleFetcher(JSON.parse(bundle)));
    assert.equal((await mapSubject(set, 'birth.fhir', 'Patient/patient-child-babyg-quinn', fetcher)).status, 'mapped');
    assert.ok(calls.includes('read Patient/patient-child-babyg-quinn'), calls.join(', '));
    await mapSubject(set, 'birth.fhir', 'Patient/..', fetcher);
    await mapSubject(set, 'birth.fhir', 'http://emr.example.org/fhir/Patient/./_history/1', fetcher);
    assert.deepEqual(
      calls.filter((call) => /\/\.\.?$/.test(call)),
      [],
    );
  });

  it('parses a reference only when its id is a FHIR id', () => {
    assert.deepEqual(parseReference('http://x/fhir/Patient/a.b-1/_history/2'), { type: 'Patient', id: 'a.b-1' });
    assert.deepEqual(parseReference('Patient/..a'), { type: 'Patient', id: '..a' });
    for (const ref of ['Patient/..', 'Patient/.', 'http://x/fhir/Patient/../_history/1', 'Patient/', 'Patient/a b'])
      assert.equal(parseReference(ref), undefined, ref);
    assert.equal(normalizeReference('Patient/..'), 'Patient/..', 'left as it is, naming nothing');
  });

  it('reads an absolute reference only under the base of the server it reads', () => {
    const base = 'https://emr.example.org/fhir/';
    for (const ref of [
      'https://emr.example.org/fhir/Patient/p1',
      'HTTPS://EMR.Example.ORG:443/fhir/Patient/p1/_history/3',
      'https://emr.example.org/fhir/Patient/p1?_format=json',
    ])
      assert.deepEqual(referenceUnderBase(ref, base), { type: 'Patient', id: 'p1' }, ref);
    assert.deepEqual(referenceUnderBase('http://emr:80/fhir/Patient/p1', 'http://EMR/fhir'), {
      type: 'Patient',
      id: 'p1',
    });
    for (const ref of [
      'http://mpi.example.org/fhir/Patient/p1',
      'http://emr.example.org/fhir/Patient/p1', // another scheme
      'https://emr.example.org:8443/fhir/Patient/p1',
      'https://emr.example.org/other/Patient/p1',
      'https://emr.example.org/fhir/tenant-2/Patient/p1',
      'https://emr.example.org/fhir2/Patient/p1',
      'https://emr.example.org/FHIR/Patient/p1', // paths are case-sensitive
      'https://emr.example.org/Patient/p1',
      'https://emr.example.org/fhir/../Patient/p1',
      'Patient/p1',
      'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001',
    ])
      assert.equal(referenceUnderBase(ref, base), undefined, ref);
  });

  it('reads an absolute reference under any of the bases of the server, and no other', () => {
    const own = referencesOf([
      'https://emr.hospital.org/openmrs/ws/fhir2/R4',
      'http://openmrs:8080/openmrs/ws/fhir2/R4/',
    ]);
    for (const ref of [
      'https://emr.hospital.org/openmrs/ws/fhir2/R4/Patient/p1',
      'http://OpenMRS:8080/openmrs/ws/fhir2/R4/Patient/p1/_history/2',
    ])
      assert.deepEqual(own(ref), { type: 'Patient', id: 'p1' }, ref);
    for (const ref of [
      'http://openmrs/openmrs/ws/fhir2/R4/Patient/p1', // the alias's host on another port
      'https://openmrs:8080/openmrs/ws/fhir2/R4/Patient/p1', // another scheme
      'http://emr.hospital.org/openmrs/ws/fhir2/R4/Patient/p1',
      'http://openmrs:8080/openmrs/ws/fhir2/Patient/p1',
      'http://mpi.example.org/fhir/Patient/p1',
    ])
      assert.equal(own(ref), undefined, ref);
  });

  describe('an absolute reference in a document (the BFDR example, entries under http://www.example.org/fhir)', () => {
    const MOTHER = 'Patient/patient-mother-jada-ann-quinn';
    const CHILD = 'Patient/patient-child-babyg-quinn';
    /** The example, its maternity encounter's subject (the mother) referenced as `ref`. */
    function document(ref: string, motherFullUrl?: string) {
      const bundle = fixture('fhir/bfdr/Bundle-bundle-provider-live-birth-babyg-quinn.json') as {
        entry: Array<{ fullUrl?: string; resource: Record<string, unknown> }>;
      };
      for (const entry of bundle.entry) {
        if (entry.resource.id === 'encounter-maternity-jada-ann-quinn') entry.resource.subject = { reference: ref };
        if (motherFullUrl && `Patient/${String(entry.resource.id)}` === MOTHER) entry.fullUrl = motherFullUrl;
      }
      return bundle;
    }
    const motherName = (r: Awaited<ReturnType<typeof mapSubject>>) => {
      assert.ok(r.status === 'mapped', JSON.stringify(r));
      return r.declaration['mother.name'];
    };
    const notFollowed = (origin: string) =>
      `context 'maternityPatients': a reference to a record on another server (${origin}) was not followed`;

    it("is read under the document's own base, in any case and with its default port", async () => {
      const asGiven = motherName(await mapSubject(set, 'birth.fhir', CHILD, bundleFetcher(document(MOTHER))));
      assert.ok(asGiven, 'the example names its mother');
      for (const ref of [
        `http://www.example.org/fhir/${MOTHER}`,
        `HTTP://WWW.Example.org:80/fhir/${MOTHER}/_history/1`,
      ]) {
        const r = await mapSubject(set, 'birth.fhir', CHILD, bundleFetcher(document(ref)));
        assert.deepEqual(motherName(r), asGiven, ref);
        assert.ok(r.status === 'mapped' && !r.warnings.some((w) => /another server/.test(w)), ref);
      }
    });

    it("is not read from the document when it names another server's record of the same Type/id", async () => {
      const r = await mapSubject(
        set,
        'birth.fhir',
        CHILD,
        bundleFetcher(document(`http://mpi.example.org/fhir/${MOTHER}`)),
      );
      assert.equal(motherName(r), undefined);
      assert.ok(r.status === 'mapped' && r.warnings.includes(notFollowed('http://mpi.example.org')), JSON.stringify(r));
      assert.ok(!JSON.stringify(r).includes('patient-mother-jada-ann-quinn'), 'no record id in the warning');
    });

    it('is read from the entry whose fullUrl it is: the document carries that server’s record', async () => {
      const mpi = `http://mpi.example.org/fhir/${MOTHER}`;
      const r = await mapSubject(set, 'birth.fhir', CHILD, bundleFetcher(document(mpi, mpi)));
      assert.ok(motherName(r));
      // Searched by an absolute reference to another server, the in-memory fetcher finds none of its own.
      const f = bundleFetcher(document(MOTHER));
      assert.ok((await f.search('Encounter', { subject: MOTHER })).length > 0);
      assert.deepEqual(await f.search('Encounter', { subject: `http://mpi.example.org/fhir/${MOTHER}` }), []);
      assert.ok((await f.search('Encounter', { subject: `http://www.example.org/fhir/${MOTHER}` })).length > 0);
    });
  });

  it('skips a subject that is not found', async () => {
    const r = await mapSubject(set, 'death.fhir', 'Patient/nope', bundleFetcher([]));
    assert.equal(r.status, 'skipped');
  });

  it('is invalid when the resolver does not know the office, and drops an unknown facility with a warning', async () => {
    const input = fixture('opencrvs-v1/v1.8.0-to-v1.9.x__create-death-notification-min.json');
    const subject = 'Patient/5c192954-d798-402f-a539-31aada34d005';
    const unknownOffice = await mapSubject(set, 'death.fhir', subject, bundleFetcher(input), {
      resolveLocation: () => undefined,
    });
    assert.equal(unknownOffice.status, 'invalid');
    assert.ok(unknownOffice.status === 'invalid' && unknownOffice.errors[0]?.field === 'createdAtLocation');
    const officeOnly = await mapSubject(set, 'death.fhir', subject, bundleFetcher(input), {
      resolveLocation: (ref, type) => (type === 'CRVS_OFFICE' ? `uuid-of-${ref}` : undefined),
    });
    assert.ok(officeOnly.status === 'mapped');
    assert.equal(officeOnly.routing.office, 'uuid-of-0be1dc9b-5c8b-4d20-a88c-08cafc71c99a');
    assert.equal(officeOnly.declaration['eventDetails.deathLocation'], undefined);
    assert.ok(officeOnly.warnings.some((w) => /not a known OpenCRVS health facility/.test(w)));
  });
});

describe('what a poller asks the mapping set', () => {
  it('lists the resource types to poll: those a change to which names a subject', () => {
    // Not Task: the shipped mappings search it by its Composition (focus), so a changed Task names no
    // subject (subjectsFor) and polling it would only read records that map nothing again.
    assert.deepEqual(set.watchedResourceTypes(), [
      'Composition',
      'Encounter',
      'Observation',
      'Patient',
      'RelatedPerson',
    ]);
    assert.deepEqual(
      set.subjectsFor({ resourceType: 'Task', id: 't', focus: { reference: 'Composition/c' } } as Resource),
      [],
    );
  });

  it('names the subjects a changed resource concerns', () => {
    const obs: Resource & Record<string, unknown> = {
      resourceType: 'Observation',
      id: 'o',
      subject: { reference: 'Patient/p1' },
    };
    assert.deepEqual(
      set
        .subjectsFor(obs)
        .map((s) => `${s.mappingId} ${s.subjectRef}`)
        .sort(),
      ['birth.fhir Patient/p1', 'death.fhir Patient/p1'],
    );
    assert.equal(set.subjectsFor({ resourceType: 'Patient', id: 'p2' }).length, 2);
    const rp: Resource & Record<string, unknown> = {
      resourceType: 'RelatedPerson',
      id: 'r',
      patient: { reference: 'Patient/child' },
    };
    assert.ok(set.subjectsFor(rp).some((s) => s.subjectRef === 'Patient/child'));
    const composition: Resource & Record<string, unknown> = {
      resourceType: 'Composition',
      id: 'c',
      section: [{ entry: [{ reference: 'Patient/dead' }, { reference: 'Observation/x' }] }],
    };
    assert.ok(set.subjectsFor(composition).every((s) => s.subjectRef === 'Patient/dead'));
    assert.deepEqual(set.subjectsFor({ resourceType: 'Location', id: 'l' }), []);
  });

  it('names the records the context reached other than by a search keyed on the subject, of the types polled', async () => {
    // A birth whose mother is known by her own Patient, read through the maternity encounter the birth
    // encounter is part of (no RelatedPerson).
    const resources = generateBirth(0, { prefix: 'ctx' }).filter((r) => r.resourceType !== 'RelatedPerson');
    const fetcher = bundleFetcher({
      resourceType: 'Bundle',
      type: 'collection',
      entry: resources.map((resource) => ({ resource })),
    });
    const { result, contextReads } = await set.mapSubjectDetailed('birth.fhir', 'Patient/ctx-birth-0-child', fetcher);
    assert.equal(result.status, 'mapped');
    // Not the child, nor its encounters and weight (found by searches keyed on it: they name it), nor the
    // birth Location (read, but no poll reads a Location).
    assert.deepEqual(contextReads, ['Encounter/ctx-birth-0-maternity', 'Patient/ctx-birth-0-mother']);
    // Within the read budget whatever the mapping reached.
    const capped = await set.mapSubjectDetailed('birth.fhir', 'Patient/ctx-birth-0-child', fetcher, { maxReads: 1 });
    assert.ok((capped.contextReads?.length ?? 0) <= 1);
    // No event: nothing to keep with a row.
    const mother = await set.mapSubjectDetailed('birth.fhir', 'Patient/ctx-birth-0-mother', fetcher);
    assert.equal(mother.result.status, 'skipped');
    assert.equal(mother.contextReads, undefined);
  });

  it("tells whether a linked resource's code lets a context search return it", () => {
    const observation = (system: string, code: string): Resource =>
      ({
        resourceType: 'Observation',
        id: 'o',
        subject: { reference: 'Patient/p1' },
        code: { coding: [{ system, code }] },
      }) as Resource;
    const searchable = (resource: Resource) =>
      Object.fromEntries(set.subjectsFor(resource).map((s) => [s.mappingId, s.searchable]));
    // A birth weight is in the birth mapping's observation search, not in any of the death mapping's.
    assert.deepEqual(searchable(observation('http://loinc.org', '8339-4')), {
      'birth.fhir': true,
      'death.fhir': false,
    });
    // Case does not decide it (a server may fold case); an unknown code is in neither.
    assert.equal(searchable(observation('HTTP://LOINC.ORG', '8339-4'))['birth.fhir'], true);
    assert.deepEqual(searchable(observation('http://loinc.org', '0000-0')), {
      'birth.fhir': false,
      'death.fhir': false,
    });
    // The subject itself is always in its own context.
    assert.ok(set.subjectsFor({ resourceType: 'Patient', id: 'p2' }).every((s) => s.searchable));
  });
});
