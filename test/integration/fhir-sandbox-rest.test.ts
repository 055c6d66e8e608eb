import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FhirSandbox, startFhirSandbox, startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';

const FHIR_JSON = { 'Content-Type': 'application/fhir+json' };

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary FHIR JSON and assert on it field by field
type Json = Record<string, any>;

async function call(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...(init.body === undefined ? {} : FHIR_JSON), ...init.headers },
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

/** Follows `next` links exactly as given; returns every entry's resource and each page's Bundle. */
async function pageThrough(firstUrl: string): Promise<{ resources: Json[]; pages: Json[] }> {
  const resources: Json[] = [];
  const pages: Json[] = [];
  let url: string | undefined = firstUrl;
  while (url) {
    const { status, body } = await call(url);
    assert.equal(status, 200);
    pages.push(body);
    for (const entry of body.entry ?? []) resources.push(entry.resource);
    url = body.link.find((l: Json) => l.relation === 'next')?.url;
    assert.ok(pages.length < 1000, 'paging does not end');
  }
  return { resources, pages };
}

describe('FHIR sandbox REST', () => {
  let sandbox: FhirSandbox;
  before(async () => {
    sandbox = await startFhirSandbox({ port: 0 });
  });
  after(() => sandbox.close());

  it('creates with a server id, version 1 and lastUpdated, and answers with ETag, Last-Modified and Location', async () => {
    const { status, headers, body } = await call(`${sandbox.baseUrl}/Patient`, {
      method: 'POST',
      body: { resourceType: 'Patient', id: 'client-chosen', gender: 'female', meta: { versionId: '99' } },
    });
    assert.equal(status, 201);
    assert.notEqual(body.id, 'client-chosen');
    assert.equal(body.meta.versionId, '1');
    assert.ok(!Number.isNaN(Date.parse(body.meta.lastUpdated)));
    assert.equal(headers.get('etag'), 'W/"1"');
    assert.equal(headers.get('last-modified'), new Date(body.meta.lastUpdated).toUTCString());
    assert.equal(headers.get('location'), `${sandbox.baseUrl}/Patient/${body.id}/_history/1`);
    assert.match(headers.get('content-type') ?? '', /application\/fhir\+json/);

    const read = await call(`${sandbox.baseUrl}/Patient/${body.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.headers.get('etag'), 'W/"1"');
    assert.deepEqual(read.body, body);
  });

  it('refuses an update whose If-Match is stale with 412 and keeps the stored version', async () => {
    const created = await sandbox.upsert({ resourceType: 'Patient', id: 'if-match', gender: 'male' });
    const ok = await call(`${sandbox.baseUrl}/Patient/if-match`, {
      method: 'PUT',
      headers: { 'If-Match': 'W/"1"' },
      body: { ...created, gender: 'female' },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.meta.versionId, '2');
    assert.equal(ok.headers.get('etag'), 'W/"2"');

    const stale = await call(`${sandbox.baseUrl}/Patient/if-match`, {
      method: 'PUT',
      headers: { 'If-Match': 'W/"1"' },
      body: { ...created, gender: 'other' },
    });
    assert.equal(stale.status, 412);
    assert.equal(stale.body.resourceType, 'OperationOutcome');
    const read = await call(`${sandbox.baseUrl}/Patient/if-match`);
    assert.equal(read.body.gender, 'female');
    assert.equal(read.body.meta.versionId, '2');
    const v1 = await call(`${sandbox.baseUrl}/Patient/if-match/_history/1`);
    assert.equal(v1.body.gender, 'male');
  });

  it('creates on PUT to an unknown id (201) and continues version numbers after a delete', async () => {
    const put = await call(`${sandbox.baseUrl}/Patient/put-create`, {
      method: 'PUT',
      body: { resourceType: 'Patient', id: 'put-create' },
    });
    assert.equal(put.status, 201);
    assert.equal(put.body.meta.versionId, '1');
    const del = await call(`${sandbox.baseUrl}/Patient/put-create`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await call(`${sandbox.baseUrl}/Patient/put-create`)).status, 404);
    const again = await call(`${sandbox.baseUrl}/Patient/put-create`, {
      method: 'PUT',
      body: { resourceType: 'Patient', id: 'put-create' },
    });
    assert.equal(again.body.meta.versionId, '3');
  });

  it('serves the history of a deleted resource, newest first, as HAPI does: the deletion, then each version', async () => {
    const url = `${sandbox.baseUrl}/Observation/history-deleted`;
    for (const value of [1, 2]) {
      const put = await call(url, {
        method: 'PUT',
        body: { resourceType: 'Observation', id: 'history-deleted', status: 'final', valueInteger: value },
      });
      assert.ok(put.status < 300, `PUT: HTTP ${put.status}`);
    }
    assert.equal((await call(url, { method: 'DELETE' })).status, 200);
    assert.equal((await call(url)).status, 404);
    // Read twice: the order must not depend on how often it was read (MemoryRepository's reverses in place).
    for (let read = 0; read < 2; read++) {
      const { status, body } = await call(`${url}/_history`);
      assert.equal(status, 200);
      assert.equal(body.type, 'history');
      assert.equal(body.total, 3);
      const entries = body.entry as Json[];
      assert.deepEqual(
        entries.map((e) => [e.request.method, e.response.etag, e.resource?.valueInteger]),
        [
          ['DELETE', 'W/"3"', undefined],
          ['PUT', 'W/"2"', 2],
          ['POST', 'W/"1"', 1],
        ],
      );
    }
    const page = await call(`${url}/_history?_count=2`);
    assert.deepEqual(
      (page.body.entry as Json[]).map((e) => e.response.etag),
      ['W/"3"', 'W/"2"'],
    );
    assert.equal((await call(`${url}/_history/2`)).body.valueInteger, 2, 'vread of a version before the delete');
    assert.equal((await call(`${url}/_history/3`)).status, 410, 'vread of the deletion');
    assert.equal((await call(`${sandbox.baseUrl}/Observation/never-there/_history`)).status, 404);
  });

  it('forgets the versions a rolled-back transaction wrote from the history', async () => {
    await sandbox.upsert({ resourceType: 'Patient', id: 'history-rollback', gender: 'male' });
    const failed = await call(sandbox.baseUrl, {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            resource: { resourceType: 'Patient', id: 'history-rollback', gender: 'female' },
            request: { method: 'PUT', url: 'Patient/history-rollback' },
          },
          { resource: { resourceType: 'Patient' }, request: { method: 'PUT', url: 'Patient/bad id!' } },
        ],
      },
    });
    assert.ok(failed.status >= 400, `the transaction must fail: HTTP ${failed.status}`);
    const { body } = await call(`${sandbox.baseUrl}/Patient/history-rollback/_history`);
    assert.deepEqual(
      (body.entry as Json[]).map((e) => [e.response.etag, e.resource.gender]),
      [['W/"1"', 'male']],
    );
  });
  it('answers 304 to a read whose If-None-Match is the current ETag', async () => {
    await sandbox.upsert({ resourceType: 'Patient', id: 'cached' });
    const res = await fetch(`${sandbox.baseUrl}/Patient/cached`, { headers: { 'If-None-Match': 'W/"1"' } });
    assert.equal(res.status, 304);
  });

  it('accepts application/json as well as application/fhir+json', async () => {
    const res = await call(`${sandbox.baseUrl}/Patient`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: { resourceType: 'Patient', gender: 'unknown' },
    });
    assert.equal(res.status, 201);
  });

  it('reports errors as OperationOutcome with a fitting status', async () => {
    const cases: [string, { method?: string; body?: unknown; headers?: Record<string, string> }, number][] = [
      [`${sandbox.baseUrl}/NotAType/1`, {}, 404],
      [`${sandbox.baseUrl}/Patient/does-not-exist`, {}, 404],
      [`${sandbox.baseUrl}/Patient?no-such-param=1`, {}, 400],
      [`${sandbox.baseUrl}/Patient?_lastUpdated=ge2024-13-99`, {}, 400],
      [`${sandbox.baseUrl}/Patient?_cursor=garbage`, {}, 400],
      [`${sandbox.baseUrl}/Patient`, { method: 'POST', body: '{not json' }, 400],
      [
        `${sandbox.baseUrl}/Patient`,
        { method: 'POST', body: '<Patient/>', headers: { 'Content-Type': 'application/fhir+xml' } },
        415,
      ],
      [`${sandbox.baseUrl}/Patient/x`, { method: 'PUT', body: { resourceType: 'Observation', id: 'x' } }, 400],
    ];
    for (const [url, init, status] of cases) {
      const res = await call(url, init);
      assert.equal(res.status, status, `${init.method ?? 'GET'} ${url}`);
      assert.equal(res.body.resourceType, 'OperationOutcome', url);
    }
  });

  it('serves a CapabilityStatement at /metadata', async () => {
    const { status, body } = await call(`${sandbox.baseUrl}/metadata`);
    assert.equal(status, 200);
    assert.equal(body.fhirVersion, '4.0.1');
    assert.ok(body.rest[0].resource.some((r: Json) => r.type === 'Patient'));
  });
});

describe('FHIR sandbox search paging', () => {
  let sandbox: FhirSandbox;
  let now = Date.parse('2025-03-01T08:00:00.000Z');
  before(async () => {
    // A frozen clock that tests move by hand: many writes share one lastUpdated (ties).
    sandbox = await startFhirSandboxWith({ port: 0 }, { clock: () => now });
  });
  after(() => sandbox.close());

  it('pages with opaque next links, followed exactly, without duplicates or misses, even when all lastUpdated tie', async () => {
    for (let i = 0; i < 57; i++)
      await sandbox.upsert({ resourceType: 'Encounter', id: `tie-${i}`, status: 'finished', class: { code: 'IMP' } });
    const { resources, pages } = await pageThrough(`${sandbox.baseUrl}/Encounter?_sort=_lastUpdated&_count=10`);
    assert.equal(pages.length, 6);
    assert.equal(resources.length, 57);
    assert.equal(new Set(resources.map((r) => r.id)).size, 57);
    assert.equal(new Set(resources.map((r) => r.meta.lastUpdated)).size, 1, 'the test needs ties');
    for (const page of pages) {
      assert.equal(page.type, 'searchset');
      assert.equal(page.total, 57);
      assert.ok(page.link.find((l: Json) => l.relation === 'self').url.startsWith(`${sandbox.baseUrl}/Encounter?`));
    }
    assert.equal(
      pages.at(-1)?.link.find((l: Json) => l.relation === 'next'),
      undefined,
    );
  });

  it('honours _lastUpdated=ge/gt/lt at millisecond and second precision, with Z or an offset', async () => {
    const at = (iso: string) => {
      now = Date.parse(iso);
    };
    at('2025-04-01T10:00:00.000Z');
    await sandbox.upsert({ resourceType: 'Location', id: 'loc-a', name: 'A' });
    at('2025-04-01T10:00:00.500Z');
    await sandbox.upsert({ resourceType: 'Location', id: 'loc-b', name: 'B' });
    at('2025-04-01T10:00:01.000Z');
    await sandbox.upsert({ resourceType: 'Location', id: 'loc-c', name: 'C' });
    const ids = async (query: string) =>
      (await pageThrough(`${sandbox.baseUrl}/Location?${query}&_sort=_lastUpdated`)).resources.map((r) => r.id);
    assert.deepEqual(await ids('_lastUpdated=ge2025-04-01T10:00:00.500Z'), ['loc-b', 'loc-c']);
    assert.deepEqual(await ids('_lastUpdated=ge2025-04-01T10:00:00Z'), ['loc-a', 'loc-b', 'loc-c']);
    assert.deepEqual(await ids('_lastUpdated=gt2025-04-01T10:00:00Z'), ['loc-c']);
    assert.deepEqual(await ids('_lastUpdated=lt2025-04-01T10:00:00.500Z'), ['loc-a']);
    assert.deepEqual(await ids(`_lastUpdated=${encodeURIComponent('ge2025-04-01T12:00:00.500+02:00')}`), [
      'loc-b',
      'loc-c',
    ]);
    // An unencoded '+' arrives as a space; the sandbox reads it as meant.
    assert.deepEqual(await ids('_lastUpdated=ge2025-04-01T12:00:00.500+02:00'), ['loc-b', 'loc-c']);
    assert.deepEqual(await ids('_lastUpdated=ge2025-04-01T10:00:00Z&_lastUpdated=lt2025-04-01T10:00:01Z'), [
      'loc-a',
      'loc-b',
    ]);
    assert.deepEqual(await ids('_lastUpdated=ge2025-04-02'), []);
  });

  it('stamps the searchset with the server time of the search in Bundle.meta.lastUpdated', async () => {
    now = Date.parse('2025-05-05T05:05:05.555Z');
    const { body } = await call(`${sandbox.baseUrl}/Location?_count=1`);
    assert.equal(body.meta.lastUpdated, '2025-05-05T05:05:05.555Z');
  });

  it('shows a resource updated while a client pages again on a later page instead of skipping another one', async () => {
    now = Date.parse('2025-06-01T00:00:00.000Z');
    for (let i = 0; i < 30; i++) await sandbox.upsert({ resourceType: 'Device', id: `dev-${i}` });
    const first = await call(`${sandbox.baseUrl}/Device?_sort=_lastUpdated&_count=10`);
    const seen = first.body.entry.map((e: Json) => e.resource.id);
    // dev-0 (already seen) changes: with offset paging every later page would shift by one.
    now += 1000;
    await sandbox.upsert({ resourceType: 'Device', id: 'dev-0', status: 'active' });
    const rest = await pageThrough(first.body.link.find((l: Json) => l.relation === 'next').url);
    const all = [...seen, ...rest.resources.map((r) => r.id)];
    assert.equal(all.length, 31);
    assert.equal(new Set(all).size, 30);
    assert.equal(rest.resources.at(-1)?.id, 'dev-0');
    assert.equal(rest.resources.at(-1)?.meta.versionId, '2');
  });

  it('pages newest first with _sort=-_lastUpdated', async () => {
    const start = Date.parse('2025-07-01T00:00:00.000Z');
    for (let i = 0; i < 12; i++) {
      now = start + i * 1000;
      await sandbox.upsert({ resourceType: 'Medication', id: `med-${i}` });
    }
    const { resources } = await pageThrough(`${sandbox.baseUrl}/Medication?_sort=-_lastUpdated&_count=5`);
    assert.deepEqual(
      resources.map((r) => r.id),
      Array.from({ length: 12 }, (_, i) => `med-${11 - i}`),
    );
  });

  it('pages sorted by another parameter with _count, and _summary=count gives only the total', async () => {
    for (const [id, birthDate] of [
      ['b3', '2021-03-03'],
      ['b1', '2021-01-01'],
      ['b2', '2021-02-02'],
    ]) {
      await sandbox.upsert({ resourceType: 'Patient', id, birthDate });
    }
    const { resources } = await pageThrough(
      `${sandbox.baseUrl}/Patient?birthdate=ge2021-01-01&_sort=birthdate&_count=2`,
    );
    assert.deepEqual(
      resources.map((r) => r.id),
      ['b1', 'b2', 'b3'],
    );
    const summary = await call(`${sandbox.baseUrl}/Patient?birthdate=ge2021-01-01&_summary=count`);
    assert.equal(summary.body.total, 3);
    assert.equal(summary.body.entry, undefined);
  });
});

describe('FHIR sandbox search semantics', () => {
  let sandbox: FhirSandbox;
  before(async () => {
    sandbox = await startFhirSandbox({
      port: 0,
      seed: [
        { resourceType: 'Patient', id: 'girl', gender: 'female', name: [{ family: 'Joanne' }] },
        { resourceType: 'Patient', id: 'boy', gender: 'male', name: [{ family: 'Banda' }] },
        { resourceType: 'Patient', id: 'mother', gender: 'female' },
        {
          resourceType: 'Observation',
          id: 'weight',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8339-4' }] },
          subject: { reference: 'Patient/girl' },
        },
        {
          resourceType: 'RelatedPerson',
          id: 'rp',
          patient: { reference: 'Patient/girl' },
          relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH' }] }],
        },
      ],
    });
  });
  after(() => sandbox.close());

  const ids = async (query: string) =>
    (await pageThrough(`${sandbox.baseUrl}/${query}`)).resources.map((r) => r.id).sort();

  it('matches token codes exactly: gender=male does not match female (Medplum 4.5.2)', async () => {
    assert.deepEqual(await ids('Patient?gender=male'), ['boy']);
    assert.deepEqual(await ids('Patient?gender=female'), ['girl', 'mother']);
    assert.deepEqual(await ids('Observation?code=http://loinc.org|8339-4'), ['weight']);
    assert.deepEqual(await ids('Observation?code=8339'), []);
  });

  it('matches string parameters as substrings (a Medplum in-memory quirk; FHIR says starts-with)', async () => {
    assert.deepEqual(await ids('Patient?name=ann'), ['girl']);
  });

  it('finds resources by reference in every spelling', async () => {
    assert.deepEqual(await ids('Observation?subject=Patient/girl'), ['weight']);
    assert.deepEqual(await ids('Observation?patient=girl'), ['weight']);
    assert.deepEqual(await ids(`Observation?subject=${sandbox.baseUrl}/Patient/girl`), ['weight']);
    assert.deepEqual(await ids('RelatedPerson?patient=Patient/boy'), []);
  });

  it('adds _include and _revinclude targets with search mode include', async () => {
    const inc = await call(`${sandbox.baseUrl}/Observation?_id=weight&_include=Observation:subject`);
    assert.deepEqual(
      inc.body.entry.map((e: Json) => [e.resource.id, e.search.mode]),
      [
        ['weight', 'match'],
        ['girl', 'include'],
      ],
    );
    const rev = await call(`${sandbox.baseUrl}/Patient?_id=girl&_revinclude=RelatedPerson:patient`);
    assert.deepEqual(
      rev.body.entry.map((e: Json) => e.resource.id),
      ['girl', 'rp'],
    );
  });

  it('creates conditionally: a second If-None-Exist create returns the existing resource', async () => {
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: 'MRN-1' }] };
    const headers = { 'If-None-Exist': 'identifier=urn:mrn|MRN-1' };
    const first = await call(`${sandbox.baseUrl}/Patient`, { method: 'POST', body, headers });
    const second = await call(`${sandbox.baseUrl}/Patient`, { method: 'POST', body, headers });
    assert.equal(first.status, 201);
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
  });

  it('keeps only the named elements with _elements and marks them SUBSETTED', async () => {
    const { body } = await call(`${sandbox.baseUrl}/Patient?_id=boy&_elements=gender`);
    const patient = body.entry[0].resource;
    assert.equal(patient.gender, 'male');
    assert.equal(patient.name, undefined);
    assert.equal(patient.meta.tag[0].code, 'SUBSETTED');
  });
});

describe('FHIR sandbox reference searches', () => {
  let sandbox: FhirSandbox;
  const observation = (id: string, subject: string, code: string) => ({
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: subject },
  });
  before(async () => {
    sandbox = await startFhirSandbox({
      port: 0,
      seed: [
        {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: Array.from({ length: 12 }, (_, i) => ({
            resource: observation(
              `o${i}`,
              i % 3 === 0 ? `https://emr.example.org/fhir/Patient/m${i % 4}` : `Patient/m${i % 4}`,
              i % 2 ? '8339-4' : '8302-2',
            ),
            request: { method: 'PUT', url: `Observation/o${i}` },
          })),
        },
      ],
    });
  });
  after(() => sandbox.close());

  const ids = async (query: string) => (await pageThrough(`${sandbox.baseUrl}/${query}`)).resources.map((r) => r.id);

  it('pages a batch of references combined with a token list through next links, and follows later writes', async () => {
    const query = 'Observation?subject=Patient/m1,m2&code=http://loinc.org|8339-4,http://loinc.org|1-1&_count=2';
    assert.deepEqual(await ids(query), ['o1', 'o5', 'o9']);
    // A transaction moves o5 to another patient and o2 into the batch; a delete drops o9.
    const moved = await call(sandbox.baseUrl, {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: observation('o5', 'Patient/m3', '8339-4'), request: { method: 'PUT', url: 'Observation/o5' } },
          { resource: observation('o2', 'Patient/m2', '8339-4'), request: { method: 'PUT', url: 'Observation/o2' } },
        ],
      },
    });
    assert.equal(moved.status, 200);
    assert.equal((await call(`${sandbox.baseUrl}/Observation/o9`, { method: 'DELETE' })).status, 200);
    assert.deepEqual(await ids(query), ['o1', 'o2']);
    assert.deepEqual(await ids('Observation?subject=Patient/m3&_count=1'), ['o3', 'o7', 'o11', 'o5']);
    const total = await call(`${sandbox.baseUrl}/Observation?_id=o1,o2,o5,o9&subject=m2,m1&_count=1`);
    assert.equal(total.body.total, 2);
  });
});
