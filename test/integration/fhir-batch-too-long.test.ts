// A FHIR server, or a proxy in front of it, that refuses a request for its length: nginx and Jetty answer
// 414 past their URL limit. The batched reads and context searches (`Patient?_id=a,b,…`,
// `Encounter?subject=Patient/a,Patient/b,…`) are then asked in smaller batches, as for a timeout, and the
// size kept for the next passes. Before, every page asked the largest batch again, was refused again, and
// left its records to a search or read each.
//
// A FHIR server's own 400 (an OperationOutcome) is not kept as the server's limit on its own: it may as well
// be about one value of the list (an id the server will not take), one record's. The batch is asked again in halves, so that value ends up alone and fails
// there, its record's own failure, while the other records stay batched. A list refused whose halves are
// both answered named no such value: its length was refused, and the half's length is kept (not from a
// half that failed otherwise). Before, the 400 stepped the
// batches down to single records, for an hour, for every record of the source. Only a server that takes
// no comma list for a reference parameter at all (400 for a list of two whose records it answers each on
// its own) has that search asked for each record on its own, for an hour; lists refused because values of
// them are, however many, are not taken for that. Against the FHIR sandbox behind the fault proxy.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadMappings, type MappingSet, mapSubject } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { startHarness } from './helpers/bridge-harness.js';
import { answerJson, type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';
import { comparable } from './helpers/map-results.js';
import { sourceSettings } from './helpers/source-settings.js';

const BIRTHS = 60;
/**
 * The proxy's URL limit: the searches of 50 records (1.6 KB and more) are past it, their batches of 10 (under
 * 1.2 KB: the observation searches carry the mappings' code lists) and the subjects' read of 50 by _id (1.1 KB)
 * are not.
 */
const URL_LIMIT = 1400;

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

/** The list sizes halving a refused list of `n` values asks, down to lists of two. */
const halvings = (n: number): number[] =>
  n < 2 ? [] : [n, ...halvings(Math.ceil(n / 2)), ...halvings(Math.floor(n / 2))];

/** A FHIR server's 400 for a value it will not take. */
const invalidValue = () =>
  answerJson(400, {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'invalid', diagnostics: 'Invalid resource id' }],
  });

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
      sourceSettings(baseUrl, { timeoutMs: 10_000, mappings: ['birth.fhir', 'death.fhir'] }),
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
    for (const s of subjects) results.push(comparable(await mapSubject(set, s.mappingId, s.subjectRef, fetcher)));
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
      // Each search refused at 50, then asked 10 at a time: batches of 10 answer every subject, none is
      // searched or read alone.
      const searches = new Set(refused.map((a) => a.search));
      for (const search of ['Encounter', 'RelatedPerson', 'Observation']) assert.ok(searches.has(search), search);
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
      // Asked in halves down to two records (a 400 may be for one value, or the length), then no more lists:
      // the chunks of 50 and of 10 (60 births) each halved to the end.
      const sizes = (values: number[]) => [...new Set(values)].sort((a, b) => b - a);
      assert.deepEqual(sizes(lists.map((a) => a.values)), sizes([...halvings(50), ...halvings(10)]));

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

  it('asks a batch refused with 400 for one value of it in halves: that record alone fails, the others stay batched', async () => {
    // What a pass of these subjects asks the server with nothing refused: its mothers are read one by one,
    // as mapEach maps one subject at a time.
    const plain = newClient();
    let usual: number;
    try {
      usual = (await mapped(plain)).seen.length;
    } finally {
      plain.close();
    }
    // The server will not take one child's id, wherever it is named: its `_id` reads, its searches.
    const bad = 'demo-birth-7-child';
    proxy.rules.push((req) => (decodeURIComponent(req.url ?? '').includes(bad) ? invalidValue() : undefined));
    const client = newClient();
    try {
      for (const pass of ['first', 'next']) {
        const batched = new CachingFetcher(client);
        await batched.prefetch(set, subjects);
        const actual: unknown[] = [];
        const failed: string[] = [];
        for (const [i, s] of subjects.entries()) {
          try {
            actual.push(comparable(await mapSubject(set, s.mappingId, s.subjectRef, batched)));
          } catch (err) {
            failed.push(s.subjectRef);
            assert.match(String(err), /HTTP 400/);
            actual.push(expected[i]);
          }
        }
        const seen = asked();
        assert.deepEqual(actual, expected, `${pass} pass: every other subject mapped as without the proxy`);
        assert.deepEqual(new Set(failed), new Set([`Patient/${bad}`]), `${pass} pass: only the refused record fails`);
        const shown = (list: Asked[]) => list.map((a) => `${a.search} of ${a.values}→${a.status}`).join(', ');
        const refused = seen.filter((a) => a.status === 400 && a.values > 1);
        // The other half of each list refused is answered as a batch; a single record's only below a list
        // of two or three. Asked per record instead, the 7 searches and the `_id` read would each cost 59
        // requests more (before: some 280 more than with nothing refused, and 450 the next pass).
        const alone = seen.filter((a) => a.values === 1 && a.status === 200);
        assert.ok(alone.length <= refused.length, `${pass} pass: searched alone: ${shown(alone)}`);
        assert.ok(
          seen.length - usual < 2 * BIRTHS,
          `${pass} pass: ${seen.length} requests, ${usual} with nothing refused`,
        );
        // Each batch naming it refused, then the half naming it, down to the id alone: never a step down (10).
        assert.ok(
          refused.some((a) => a.values === 50) && refused.every((a) => halvings(50).includes(a.values)),
          `${pass} pass: the batches naming it, then their halves naming it: ${shown(refused)}`,
        );
      }
    } finally {
      client.close();
    }
  });

  it('does not take two values refused with 400, one in each half of a small batch, for a server that refuses lists', async () => {
    // Every list of such a batch is refused (each half names one of them), none answered: before, that was
    // taken for a server that refuses any list, and every record read and searched on its own for an hour.
    for (const { size, bad } of [
      { size: 4, bad: [0, 2] },
      { size: 6, bad: [0, 3] },
    ]) {
      const page = (from: number) =>
        Array.from({ length: size }, (_, i) => ({
          mappingId: 'birth.fhir',
          subjectRef: `Patient/demo-birth-${from + i}-child`,
        }));
      const refusedIds = bad.map((i) => `demo-birth-${i}-child`);
      proxy.rules.length = 0;
      proxy.rules.push((req) => {
        const url = decodeURIComponent(req.url ?? '');
        return refusedIds.some((id) => url.includes(`${id}&`) || url.includes(`${id},`) || url.endsWith(id))
          ? invalidValue()
          : undefined;
      });
      const client = newClient();
      try {
        const first = new CachingFetcher(client);
        await first.prefetch(set, page(0));
        for (const s of page(0)) await mapSubject(set, s.mappingId, s.subjectRef, first).catch(() => undefined);
        const seen = asked();
        const shown = (list: Asked[]) => list.map((a) => `${a.search} of ${a.values}→${a.status}`).join(', ');
        const lists = seen.filter((a) => a.values > 1);
        assert.ok(
          lists.length > 0 && lists.every((a) => a.status === 400),
          `batch of ${size}: every list refused: ${shown(lists)}`,
        );

        // The next page names neither: its subjects are read, and their context searched, as lists.
        const next = new CachingFetcher(client);
        await next.prefetch(set, page(20));
        const nextSeen = asked();
        const answered = nextSeen.filter((a) => a.values === size && a.status === 200);
        assert.ok(
          answered.some((a) => a.search === 'Patient'),
          `batch of ${size}, next page: the subjects read by _id together: ${shown(nextSeen)}`,
        );
        assert.ok(
          answered.some((a) => a.search === 'Encounter'),
          `batch of ${size}, next page: their encounters searched together: ${shown(nextSeen)}`,
        );
      } finally {
        client.close();
      }
    }
  });

  /** A FHIR server's 400 for a list past its length (HAPI refused an `_id` list of about 35 ids so). */
  const tooManyValues = () =>
    answerJson(400, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'too-costly', diagnostics: 'Too many values' }],
    });

  it('keeps the length of a list refused with 400 whose halves both answer, and still ends a refused value alone', async () => {
    // Lists of more than 30 values refused for their length; one child's id refused wherever it is named. It
    // is in the batches of 10 (60 births: 50 and 10), so the lists of 50 name no refused value.
    const bad = 'demo-birth-55-child';
    proxy.rules.push((req) => {
      const url = decodeURIComponent(req.url ?? '');
      if (url.includes(bad)) return invalidValue();
      return valuesOf(new URL(url, 'http://proxy').searchParams) > 30 ? tooManyValues() : undefined;
    });
    const client = newClient();
    try {
      for (const pass of ['first', 'next']) {
        const batched = new CachingFetcher(client);
        await batched.prefetch(set, subjects);
        const actual: unknown[] = [];
        const failed: string[] = [];
        for (const [i, s] of subjects.entries()) {
          try {
            actual.push(comparable(await mapSubject(set, s.mappingId, s.subjectRef, batched)));
          } catch (err) {
            failed.push(s.subjectRef);
            assert.match(String(err), /HTTP 400/);
            actual.push(expected[i]);
          }
        }
        const seen = asked();
        const shown = (list: Asked[]) => list.map((a) => `${a.search} of ${a.values}→${a.status}`).join(', ');
        assert.deepEqual(actual, expected, `${pass} pass: every other subject mapped as without the proxy`);
        assert.deepEqual(new Set(failed), new Set([`Patient/${bad}`]), `${pass} pass: only the refused record fails`);
        const tooLong = seen.filter((a) => a.values > 30);
        if (pass === 'first')
          assert.ok(
            tooLong.length > 0 && tooLong.every((a) => a.values === 50 && a.status === 400),
            `first pass: the lists of 50 refused: ${shown(tooLong)}`,
          );
        // The halves' length kept for each search and the `_id` read: nothing asked past it again.
        else assert.deepEqual(shown(tooLong), '', 'next pass: no list longer than the halves answered');
        const answered = seen.filter((a) => a.values > 1 && a.status === 200);
        assert.ok(
          answered.some((a) => a.values === 25 && a.search === 'Patient') &&
            answered.some((a) => a.values === 25 && a.search === 'Encounter'),
          `${pass} pass: the others asked in lists of 25: ${shown(answered)}`,
        );
        // The refused value still ends alone: its lists of 10 refused, then halved down to it.
        const refusedForIt = seen.filter((a) => a.status === 400 && a.values > 1 && a.values <= 30);
        assert.ok(
          refusedForIt.length > 0 && refusedForIt.every((a) => halvings(10).includes(a.values)),
          `${pass} pass: the lists naming the refused value: ${shown(refusedForIt)}`,
        );
      }
    } finally {
      client.close();
    }
  });

  it('keeps no length from a list refused with 400 whose half fails otherwise (503)', async () => {
    // Lists of more than 30 values refused with 400; any shorter list naming one child fails with the FHIR
    // server's 503 (restarting, say). That half shows nothing about the length the server takes.
    const flaky = 'demo-birth-3-child';
    const failing = answerJson(503, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'transient', diagnostics: 'Service unavailable' }],
    });
    proxy.rules.push((req) => {
      const url = decodeURIComponent(req.url ?? '');
      const values = valuesOf(new URL(url, 'http://proxy').searchParams);
      if (values > 30) return tooManyValues();
      return values > 1 && url.includes(flaky) ? failing : undefined;
    });
    const client = newClient();
    try {
      const first = await mapped(client);
      assert.deepEqual(first.actual, expected, 'every subject mapped as without the proxy');
      const shown = (list: Asked[]) => list.map((a) => `${a.search} of ${a.values}→${a.status}`).join(', ');
      assert.ok(
        first.seen.some((a) => a.values === 25 && a.status === 503),
        `a half failed: ${shown(first.seen.filter((a) => a.values > 1))}`,
      );
      assert.ok(
        first.seen.some((a) => a.values === 25 && a.status === 200),
        'the other half answered',
      );
      // Nothing kept: the next pass asks the lists of 50 again, and they are refused again.
      const second = await mapped(client);
      assert.deepEqual(second.actual, expected);
      const refused = second.seen.filter((a) => a.values === 50 && a.status === 400).map((a) => a.search);
      assert.ok(
        refused.includes('Patient') && refused.includes('Encounter'),
        `next pass: the lists of 50 asked again: ${shown(second.seen.filter((a) => a.values > 1))}`,
      );
    } finally {
      client.close();
    }
  });
});

describe('FHIR source: one reference the server refuses with 400, in a pass', () => {
  it("holds that record's birth dead, delivers the others, and keeps asking the other references batched", async () => {
    const proxy = await startFaultProxy();
    let path = '';
    const h = await startHarness({
      source: {
        baseUrl: (sandbox) => {
          proxy.target = sandbox;
          path = new URL(sandbox).pathname.replace(/\/+$/, '');
          return `${proxy.url}${path}`;
        },
      },
    });
    try {
      // Birth 2's mother: the server will not take her id as an id (her read, an `_id` list naming her).
      const bad = 'e2e-birth-2-mother';
      const readsBad = (url: string) =>
        url.startsWith(`${path}/Patient/${bad}`) || (url.startsWith(`${path}/Patient?_id=`) && url.includes(bad));
      proxy.rules.push((req) => (readsBad(decodeURIComponent(req.url ?? '')) ? invalidValue() : undefined));
      /** The mothers' reads since the last call: each read alone (200), and the `_id` lists refused. */
      const motherReads = () => {
        const seen = proxy.seen.splice(0).map(({ url, status }) => ({ url: decodeURIComponent(url), status }));
        return {
          alone: seen.filter((s) => /\/Patient\/e2e-birth-\d+-mother$/.test(s.url) && s.status === 200).length,
          listsRefused: seen.filter((s) => /\/Patient\?_id=[^&]*,/.test(s.url) && s.status === 400).length,
          listsAnswered: seen.filter((s) => /\/Patient\?_id=[^&]*mother,[^&]*mother/.test(s.url) && s.status === 200)
            .length,
        };
      };

      await h.writeBirths(0, 6);
      const firstPass = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
      assert.deepEqual(firstPass.failedSources, [], JSON.stringify(firstPass.sourceErrors));
      await h.waitFor('five births delivered', () => h.rows().filter((r) => r.state === 'delivered').length === 5);
      const dead = h.rows().filter((r) => r.state === 'dead');
      assert.deepEqual(
        dead.map((r) => [r.subjectKey, r.lastError?.kind]),
        [['Patient/e2e-birth-2-child', 'source-read']],
        'only the birth naming the refused mother is held dead, as a record the source would not serve',
      );
      assert.match(dead[0]?.lastError?.message ?? '', /HTTP 400/);
      const first = motherReads();
      assert.ok(first.listsRefused > 0, 'the mothers asked together were refused');

      // The next births' mothers are read together again: the 400 was not kept as a limit of the server's.
      await h.writeBirths(6, 6);
      assert.deepEqual((await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 })).failedSources, []);
      await h.waitFor('eleven births delivered', () => h.rows().filter((r) => r.state === 'delivered').length === 11);
      const next = motherReads();
      assert.ok(next.listsAnswered > 0, `the next mothers read together: ${JSON.stringify(next)}`);
      // A mother read alone only as the other half of a list of two or three refused (naming birth 2's
      // again, should the pass read it again); before, each mother was read alone for the next hour.
      assert.ok(next.alone <= next.listsRefused, `mothers read alone: ${JSON.stringify(next)}`);
      assert.equal((await h.events()).length, 11, 'one OpenCRVS event per birth delivered');
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
