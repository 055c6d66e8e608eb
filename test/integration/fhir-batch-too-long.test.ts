// A FHIR server, or a proxy in front of it, that refuses a request for its length: nginx and Jetty answer
// 414 past their URL limit, Tomcat 400, and a FHIR server 400 for too many values. The batched reads and
// context searches (`Patient?_id=a,b,…`, `Encounter?subject=Patient/a,Patient/b,…`) are then asked in
// smaller batches, as for a timeout, and the size kept for the next passes. Before, every page asked the
// largest batch again, was refused again, and left its records to a search or read each.
//
// A server that takes no comma list for a reference parameter at all (400 however short the list) has
// that search asked for each record on its own, for an hour, once the smallest batch is refused too.
// Against the FHIR sandbox behind the fault proxy.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadMappings, type MappingSet, mapSubject } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { answerJson, type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

const BIRTHS = 60;
/** The proxy's URL limit: batches of 50 records (1.1 KB and more) are past it, batches of 10 (under 1 KB) are not. */
const URL_LIMIT = 1024;

/** nginx's answer to a URL past `large_client_header_buffers`. */
const uriTooLong = () => (res: ServerResponse) => {
  res.writeHead(414, { 'content-type': 'text/html' });
  res.end(
    '<html><head><title>414 Request-URI Too Large</title></head><body><center><h1>414 Request-URI Too Large</h1></center><hr><center>nginx</center></body></html>',
  );
};

/** What the proxy saw of one request: its resource type, the values of its list (the records, or the ids). */
interface Asked {
  search: string;
  values: number;
  status: number | undefined;
}

/** The values of the request's reference list (`Patient/…`) or `_id` list: 0 for a plain read. */
function valuesOf(query: URLSearchParams): number {
  for (const [name, value] of query) if (name === '_id' || value.startsWith('Patient/')) return value.split(',').length;
  return 0;
}

describe('FHIR source: batched calls refused as too long are asked smaller', () => {
  let sandbox: FhirSandbox;
  let proxy: FaultProxy;
  let path: string;
  let set: MappingSet;
  const subjects: Array<{ mappingId: string; subjectRef: string }> = [];
  let expected: unknown[];

  before(async () => {
    const seed = Array.from({ length: BIRTHS }, (_, i) => generateBirth(i)).flat();
    sandbox = await startFhirSandbox({ port: 0, seed, logger: silentLogger });
    proxy = await startFaultProxy();
    proxy.target = sandbox.baseUrl;
    path = new URL(sandbox.baseUrl).pathname.replace(/\/+$/, '');
    set = loadMappings({ names: ['birth.fhir', 'death.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } });
    for (const mappingId of ['birth.fhir', 'death.fhir'])
      for (let i = 0; i < BIRTHS; i++) subjects.push({ mappingId, subjectRef: `Patient/demo-birth-${i}-child` });
    // Each subject mapped from its own searches, straight from the sandbox.
    const direct = newClient(sandbox.baseUrl);
    expected = await mapEach(new CachingFetcher(direct));
    direct.close();
  });
  after(async () => {
    await proxy?.close();
    await sandbox?.close();
  });
  beforeEach(() => {
    proxy.seen.length = 0;
    proxy.rules.length = 0;
  });

  /** A client of its own: the sizes a source's batches are asked at are kept per client. */
  function newClient(baseUrl = `${proxy.url}${path}`): FhirSourceClient {
    return new FhirSourceClient(
      {
        id: 'emr',
        kind: 'fhir',
        baseUrl,
        auth: { type: 'none' },
        timeoutMs: 10_000,
        poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 30, pageSize: 100 },
        mappings: ['birth.fhir', 'death.fhir'],
      },
      { logger: silentLogger },
    );
  }

  /** The searches the proxy saw since the last call, by resource type and list size. */
  function asked(): Asked[] {
    const seen = proxy.seen.splice(0).map(({ url, status }) => {
      const parsed = new URL(url, 'http://proxy');
      const type = parsed.pathname.slice(path.length + 1);
      return { search: type, values: valuesOf(parsed.searchParams), status };
    });
    return seen;
  }

  const mapEach = async (fetcher: CachingFetcher) => {
    const results = [];
    for (const s of subjects) results.push(await mapSubject(set, s.mappingId, s.subjectRef, fetcher));
    return results;
  };

  /** Every subject mapped through a fetcher that prefetched them; and the requests the proxy saw. */
  async function mapped(client: FhirSourceClient) {
    const batched = new CachingFetcher(client);
    await batched.prefetch(set, subjects);
    return { actual: await mapEach(batched), seen: asked() };
  }

  it('asks batches a proxy refuses with 414 for their length smaller, and keeps that size for the next passes', async () => {
    proxy.rules.push((req: IncomingMessage) => ((req.url ?? '').length > URL_LIMIT ? uriTooLong() : undefined));
    const client = newClient();
    try {
      const first = await mapped(client);
      assert.deepEqual(first.actual, expected, 'every subject mapped as without the proxy');
      const refused = first.seen.filter((a) => a.status === 414);
      assert.ok(refused.length > 0, 'the largest batches were refused');
      assert.ok(
        refused.every((a) => a.values === 50),
        `refused: ${refused.map((a) => `${a.search} of ${a.values}`).join(', ')}`,
      );
      // Each search (and the subjects' read by _id) refused at 50, then asked 10 at a time: batches of 10
      // answer every subject, none is searched or read alone.
      const searches = new Set(first.seen.filter((a) => a.values > 1).map((a) => a.search));
      for (const search of searches) {
        const of = first.seen.filter((a) => a.search === search && a.values > 1);
        const answered = of.filter((a) => a.status === 200);
        assert.ok(
          answered.every((a) => a.values === 10),
          `${search}: ${of.map((a) => `${a.values}→${a.status}`).join(', ')}`,
        );
      }
      const answeredIn = (search: string) =>
        first.seen
          .filter((a) => a.search === search && a.values > 1 && a.status === 200)
          .reduce((n, a) => n + a.values, 0);
      assert.equal(answeredIn('Encounter'), BIRTHS, 'every subject in the batches of 10 of each search');
      assert.equal(answeredIn('RelatedPerson'), BIRTHS);
      const alone = first.seen.filter((a) => a.values === 1 && a.status === 200);
      assert.deepEqual(alone, [], 'no subject searched or read alone');

      // The next pass asks 10 at once: nothing refused again.
      const second = await mapped(client);
      assert.deepEqual(second.actual, expected);
      assert.deepEqual(
        second.seen.filter((a) => a.status === 414),
        [],
        'no batch refused in the next pass',
      );
      assert.ok(second.seen.some((a) => a.values === 10 && a.status === 200));
    } finally {
      client.close();
    }
  });

  it('asks each record on its own, for the next passes too, from a server that refuses any reference list with 400', async () => {
    const notSupported = answerJson(400, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'not-supported', diagnostics: 'Multiple values are not supported here' }],
    });
    const listed = (req: IncomingMessage) =>
      [...new URL(req.url ?? '/', 'http://proxy').searchParams].some(
        ([name, value]) => name !== '_id' && value.startsWith('Patient/') && value.includes(','),
      );
    proxy.rules.push((req) => (listed(req) ? notSupported : undefined));
    const client = newClient();
    try {
      const first = await mapped(client);
      assert.deepEqual(first.actual, expected, 'every subject mapped as without the proxy');
      const lists = first.seen.filter((a) => a.values > 1 && a.search !== 'Patient');
      assert.ok(lists.length > 0);
      assert.ok(
        lists.every((a) => a.status === 400),
        'every reference list refused',
      );
      // Asked smaller down to two records (a 400 may be for the length), then no more lists.
      assert.deepEqual(
        [...new Set(lists.map((a) => a.values))].sort((a, b) => b - a),
        [50, 10, 2],
      );

      const second = await mapped(client);
      assert.deepEqual(second.actual, expected);
      assert.deepEqual(
        second.seen.filter((a) => a.values > 1 && a.search !== 'Patient'),
        [],
        'the next pass asks no reference list',
      );
      assert.ok(
        second.seen.some((a) => a.values === 1 && a.status === 200),
        "each record's own searches",
      );
    } finally {
      client.close();
    }
  });
});
