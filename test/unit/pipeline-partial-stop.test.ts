// A partial evaluation (a recheck, an inbox re-read) evaluates every subject whatever another's read did,
// but stops asking the source once a failure shows the source itself is the problem (a proxy's page, the
// bridge stopping, a refused credential, three failures in a row that concern every call): the subjects
// not read are named as failed with that error. A failure that may concern one record stops nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { bundleFetcher, loadMappings, type Resource, type ResourceFetcher } from '../../src/mapping/index.js';
import { createLogger, type Logger, silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { SourcePipeline } from '../../src/sources/pipeline.js';

const mappings = loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } });
const births = Array.from({ length: 20 }, (_, i) => generateBirth(i, { prefix: 'p' }) as unknown as Resource[]);
const children = births.map((resources) => resources.find((r) => r.id?.endsWith('-child')) as Resource);
const childRef = (i: number) => `Patient/p-birth-${i}-child`;

/**
 * The EMR as a bundle, counting the calls asked of it; `fail` answers a call in place of the EMR (an error
 * to reject with, or undefined to let it through) as it is asked. Every call answers on a later turn, as a
 * server does.
 */
function emr(fail: (call: { type: string; ref?: string; params?: Record<string, string> }) => Error | undefined) {
  const all = bundleFetcher({
    resourceType: 'Bundle',
    type: 'collection',
    entry: births.flat().map((resource) => ({ resource })),
  });
  const counted = { calls: 0, subjectReads: new Set<string>() };
  const later = () => new Promise<void>((resolve) => setImmediate(resolve));
  const fetcher: ResourceFetcher = {
    read: async (type, id) => {
      counted.calls++;
      if (id.endsWith('-child')) counted.subjectReads.add(`${type}/${id}`);
      const error = fail({ type, ref: `${type}/${id}` });
      await later();
      if (error) throw error;
      return all.read(type, id);
    },
    search: async (type, params) => {
      counted.calls++;
      const error = fail({ type, params });
      await later();
      if (error) throw error;
      return all.search(type, params);
    },
  };
  return { fetcher, counted };
}

async function withLedger(run: (ledger: Ledger) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-partial-stop-'));
  const ledger = openLedger(join(dir, 'bridge.db'));
  try {
    await run(ledger);
  } finally {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function pipelineOf(
  ledger: Ledger,
  probe: (subjectRef: string | undefined) => Promise<void>,
  concurrency?: number,
  logger: Logger = silentLogger,
) {
  return new SourcePipeline({
    sourceId: 'emr',
    mappings,
    ledger,
    logger,
    mapOptions: () => ({ resolveLocation: (ref) => ref }),
    probe,
    ...(concurrency ? { concurrency } : {}),
  });
}

function timedOut(message: string, status?: number): FhirSourceError {
  const err = new FhirSourceError(message, status, true);
  err.timedOut = true; // as FhirSourceClient marks a deadline run out, or a gateway's 504
  return err;
}

describe('SourcePipeline: a partial evaluation stops for the source', () => {
  const lanes = 2;
  const down = [
    {
      kind: 'a proxy page (foreign)',
      stopAfter: 1,
      error: () => new FhirSourceError('read failed: HTTP 404', 404, true, { foreign: true }),
    },
    {
      kind: 'the bridge stopping (cut off)',
      stopAfter: 1,
      error: () => new FhirSourceError('read: the bridge is stopping', undefined, false, { cutOff: true }),
    },
    {
      kind: 'a refused credential (401)',
      stopAfter: 1,
      error: () => new FhirSourceError('read failed: HTTP 401', 401, false),
    },
    {
      kind: 'no answer (connection refused)',
      stopAfter: 3,
      error: () => new FhirSourceError('read failed: network error (ECONNREFUSED)', undefined, true),
    },
    { kind: 'a 503', stopAfter: 3, error: () => new FhirSourceError('read failed: HTTP 503', 503, true) },
    { kind: 'a 429', stopAfter: 3, error: () => new FhirSourceError('read failed: HTTP 429', 429, true) },
    // The first two (one in ten of twenty records) are held for the slow-record rule and count for nothing.
    { kind: 'timeouts', stopAfter: 2 + 3, error: () => timedOut('read failed: timeout: no answer within 1000 ms') },
  ];
  for (const { kind, stopAfter, error } of down) {
    it(`when every call fails with ${kind}: reads stop early, and every subject is named as failed with it`, async () => {
      await withLedger(async (ledger) => {
        const failing = error();
        const { fetcher, counted } = emr(() => error());
        const lines: string[] = [];
        const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
        // The probe fails the same way: the source is down, not one record.
        const pipeline = pipelineOf(ledger, async () => Promise.reject(error()), lanes, logger);
        const { results, failures } = await pipeline.evaluate(children, fetcher, undefined, { partial: true });
        assert.deepEqual(results, []);
        // Said as the source's failure, except where the bridge cut its own reads off (stopping).
        const said = lines.filter((line) => line.includes('the source failed in a way that concerns every call'));
        assert.equal(said.length, failing instanceof FhirSourceError && failing.cutOff ? 0 : 1, kind);
        assert.deepEqual(
          failures?.map((f) => f.subjectRef),
          children.map((_, i) => childRef(i)),
          'every subject, in order',
        );
        for (const { error: err } of failures ?? []) {
          assert.ok(err instanceof FhirSourceError, String(err));
          assert.equal(err.message, failing.message);
        }
        // Those that failed before it stopped, and those the other lane had started meanwhile: not twenty.
        assert.ok(
          counted.calls <= stopAfter + lanes - 1,
          `${counted.calls} calls for ${children.length} subjects (at most ${stopAfter + lanes - 1})`,
        );
      });
    });
  }

  it('asks nothing more for the subjects under way once a proxy answers (all lanes started at once)', async () => {
    await withLedger(async (ledger) => {
      // The default lanes (64): every subject has started, its own read asked. A proxy answers the first
      // Composition search at once, and every call after it; the subjects under way then ask nothing more
      // (each would go on to about ten context reads, each waiting out the client's tries).
      const proxy = () => new FhirSourceError('search Composition failed: HTTP 404', 404, true, { foreign: true });
      let proxied = false;
      const { fetcher: reads, counted } = emr(() => (proxied ? proxy() : undefined));
      const fetcher: ResourceFetcher = {
        read: (type, id) => reads.read(type, id),
        search: (type, params) => {
          if (proxied || type !== 'Composition') return reads.search(type, params);
          proxied = true;
          counted.calls++;
          return Promise.reject(proxy());
        },
      };
      const pipeline = pipelineOf(ledger, async () => undefined);
      const { results, failures } = await pipeline.evaluate(children, fetcher, undefined, { partial: true });
      assert.deepEqual(results, []);
      assert.equal(failures?.length, children.length);
      assert.ok(failures?.every((f) => f.error instanceof FhirSourceError && f.error.foreign));
      // The twenty subject reads and the one search the proxy answered.

      assert.equal(counted.calls, children.length + 1);
    });
  });

  it('evaluates every other subject around failures that concern one record, or too few in a row', async () => {
    await withLedger(async (ledger) => {
      // One lane, so the order is the subjects'. Each failure is of one child's mother (a context read).
      const mother = (i: number) => `Patient/p-birth-${i}-mother`;
      const failing = new Map<string, () => Error>([
        [mother(1), () => new FhirSourceError('read Patient failed: HTTP 429', 429, true)],
        // The source answers the probe of this child: its mother alone is what it will not serve (a dead row).
        [mother(2), () => new FhirSourceError('read Patient failed: HTTP 503', 503, true)],
        // The source refuses these mothers and answers the probe of neither child: failed, but a 403 may
        // concern one record, so they do not count towards three in a row.
        [mother(3), () => new FhirSourceError('read Patient failed: HTTP 403', 403, false)],
        [mother(4), () => new FhirSourceError('read Patient failed: HTTP 403', 403, false)],
        // Held for the slow-record rule (the source answers the others): counts for nothing either.
        [mother(5), () => timedOut('read Patient failed: timeout: no answer within 1000 ms')],
        [mother(6), () => new FhirSourceError('read Patient failed: network error (ECONNRESET)', undefined, true)],
        // A child read (7), then two more that concern every call: two in a row, not three.
        [mother(8), () => new FhirSourceError('read Patient failed: network error (ECONNREFUSED)', undefined, true)],
        [mother(9), () => new FhirSourceError('read Patient failed: HTTP 429', 429, true)],
      ]);
      const { fetcher, counted } = emr((call) => (call.ref ? failing.get(call.ref)?.() : undefined));
      const refused = new Set([childRef(3), childRef(4)]);
      const pipeline = pipelineOf(
        ledger,
        async (subjectRef) => {
          if (subjectRef && refused.has(subjectRef))
            throw new FhirSourceError('read Patient failed: HTTP 403', 403, false);
        },
        1,
      );
      const { results, failures } = await pipeline.evaluate(children, fetcher, undefined, { partial: true });
      assert.deepEqual(
        failures?.map((f) => f.subjectRef),
        [1, 3, 4, 5, 6, 8, 9].map(childRef),
      );
      assert.deepEqual(
        results.map((r) => [r.result.subjectRef, r.result.status]),
        [0, 2, 7, ...Array.from({ length: 10 }, (_, i) => 10 + i)].map((i) => [
          childRef(i),
          i === 2 ? 'invalid' : 'mapped',
        ]),
      );
      assert.equal(counted.subjectReads.size, children.length, 'every subject read');
    });
  });
});
