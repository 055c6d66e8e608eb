// A record a subject's context needs that the source will not serve (a 403 for the mother's Patient, a
// 500 it keeps giving) fails that subject only: a dead ledger row naming what could not be read, the
// other subjects recorded as usual. A failure of the source itself (the probe fails too, a 401, no
// answer) still fails the whole evaluation with the source's own error, so the caller's pass fails.
// FHIR and DHIS2 sources share this path (SourcePipeline.evaluate over assembleContext).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { bundleFetcher, loadMappings, type Resource, type ResourceFetcher } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { SLOW_RECORD_STRIKE_GAP_MS, SourcePipeline } from '../../src/sources/pipeline.js';

const mappings = loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } });
const births = [0, 1, 2].map((i) => generateBirth(i, { prefix: 'u' }) as unknown as Resource[]);
const children = births.map((resources) => resources.find((r) => r.id?.endsWith('-child')) as Resource);
const unreadMother = 'Patient/u-birth-1-mother';

/** The EMR as a bundle, refusing reads of one resource with `error`. */
function emr(error: () => Error): ResourceFetcher {
  const all = bundleFetcher({
    resourceType: 'Bundle',
    type: 'collection',
    entry: births.flat().map((resource) => ({ resource })),
  });
  return {
    read: (type, id) => (`${type}/${id}` === unreadMother ? Promise.reject(error()) : all.read(type, id)),
    search: (type, params) => all.search(type, params),
  };
}

async function withLedger(run: (ledger: Ledger) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-unreadable-'));
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
  probe?: (subjectRef: string | undefined) => Promise<void>,
  probed: string[] = [],
  clock?: { now: () => number; wallClock: () => number },
) {
  return new SourcePipeline({
    sourceId: 'emr',
    mappings,
    ledger,
    logger: silentLogger,
    mapOptions: () => ({ resolveLocation: (ref) => ref }),
    ...(clock ? { now: clock.now, wallClock: clock.wallClock } : {}),
    ...(probe
      ? {
          probe: async (subjectRef) => {
            probed.push(subjectRef ?? '(source)');
            await probe(subjectRef);
          },
        }
      : {}),
  });
}

describe('SourcePipeline: a context record the source will not serve', () => {
  for (const status of [403, 500]) {
    it(`(HTTP ${status}) keeps that birth as a dead row naming the record; the others are recorded`, async () => {
      await withLedger(async (ledger) => {
        const probed: string[] = [];
        const pipeline = pipelineOf(ledger, async () => undefined, probed);
        const fetcher = emr(() => new FhirSourceError(`read Patient failed: HTTP ${status}`, status, status >= 500));
        const { results } = await pipeline.evaluate(children, fetcher);
        const report = pipeline.commit(results);
        assert.equal(report.mapped.inserted, 2);
        assert.equal(report.invalid, 1);
        assert.deepEqual(probed, ['Patient/u-birth-1-child'], 'the subject read the way the mother was');
        const row = ledger.list({ limit: 10 }).find((r) => r.subjectKey === 'Patient/u-birth-1-child');
        assert.equal(row?.state, 'dead');
        assert.equal(row.lastError?.kind, 'source-read');
        assert.match(row.lastError?.message ?? '', new RegExp(`${unreadMother}.*could not be read.*HTTP ${status}`));
        assert.doesNotMatch(row.lastError?.message ?? '', /Banda|MRN/, 'no personal data');
      });
    });
  }

  it('fails the evaluation with the source error when the probe fails too (the source is down)', async () => {
    await withLedger(async (ledger) => {
      const pipeline = pipelineOf(ledger, async () => {
        throw new FhirSourceError('read Patient failed: HTTP 503', 503, true);
      });
      const fetcher = emr(() => new FhirSourceError('read Patient failed: HTTP 503', 503, true));
      await assert.rejects(pipeline.evaluate(children, fetcher), (err: unknown) => err instanceof FhirSourceError);
    });
  });

  it('fails the evaluation on a refused credential or no answer, without probing', async () => {
    for (const error of [
      () => new FhirSourceError('read Patient failed: HTTP 401', 401, true),
      () => new FhirSourceError('read Patient failed: timeout', undefined, true),
      // A gateway that gave up waiting (nginx's proxy_read_timeout shorter than sources[].timeoutMs), marked
      // as the client marks it: no answer in time, not a refusal of this record.
      () => Object.assign(new FhirSourceError('read Patient failed: HTTP 504', 504, true), { timedOut: true }),
    ]) {
      await withLedger(async (ledger) => {
        const probed: string[] = [];
        const pipeline = pipelineOf(ledger, async () => undefined, probed);
        await assert.rejects(pipeline.evaluate(children, emr(error)), (err: unknown) => err instanceof FhirSourceError);
        assert.deepEqual(probed, []);
      });
    }
  });
});

// A record whose context the source cannot search in time (a patient with a history too large for
// sources[].timeoutMs) while it answers the other records: after a few separate evaluations, spread over
// time, it is kept dead so the records behind it go on. A source too slow for everything, or a busy moment,
// still fails the evaluation, every time.
describe('SourcePipeline: a record whose context reads get no answer in time', () => {
  const slowChild = 'Patient/u-birth-1-child';
  // Ten records: the fewest of which one may time out as a slow record.
  const tenBirths = Array.from({ length: 10 }, (_, i) => generateBirth(i, { prefix: 'u' }) as unknown as Resource[]);
  const tenChildren = tenBirths.map((resources) => resources.find((r) => r.id?.endsWith('-child')) as Resource);

  /** No answer in time: the client's deadline ran out, or a gateway in front of the EMR answered 504. */
  function timeout(type = 'Patient', gateway = false): FhirSourceError {
    const err = gateway
      ? new FhirSourceError(`search ${type} failed: HTTP 504`, 504, true)
      : new FhirSourceError(
          `search ${type} failed: timeout: no answer within 1000 ms (raise sources[].timeoutMs of source emr)`,
          undefined,
          true,
        );
    err.timedOut = true; // as FhirSourceClient marks both
    return err;
  }

  /** A new fetcher (as each poll pass has), whose searches for `slow` subjects time out. */
  function slowEmr(slow: (params: Record<string, string>) => boolean, gateway = false): ResourceFetcher {
    const all = bundleFetcher({
      resourceType: 'Bundle',
      type: 'collection',
      entry: tenBirths.flat().map((resource) => ({ resource })),
    });
    return {
      read: (type, id) => all.read(type, id),
      search: (type, params) => (slow(params) ? Promise.reject(timeout(type, gateway)) : all.search(type, params)),
    };
  }
  const onlyOne = (params: Record<string, string>) => Object.values(params).includes(slowChild);

  /** Clocks the test moves: the pipeline's `now` (monotonic) and its wall clock, together as time passes. */
  function fakeClock() {
    let at = 1_000_000;
    let wall = Date.parse('2026-03-02T08:00:00Z');
    return {
      now: () => at,
      wallClock: () => wall,
      advance: (ms: number) => {
        at += ms;
        wall += ms;
      },
      /** The wall clock put forward (or back), as NTP or an operator does: the monotonic one goes on. */
      setWall: (ms: number) => {
        wall += ms;
      },
    };
  }

  for (const gateway of [false, true]) {
    it(`fails its evaluations until it has timed out in three, minutes apart, then keeps it dead and records the others${gateway ? " (a gateway's 504)" : ''}`, async () => {
      await withLedger(async (ledger) => {
        const probed: string[] = [];
        const clock = fakeClock();
        const pipeline = pipelineOf(ledger, async () => undefined, probed, clock);
        const failure = gateway ? /^search \w+ failed: HTTP 504$/ : /^search \w+ failed: timeout/;
        for (let pass = 1; pass <= 2; pass++) {
          const fetcher = slowEmr(onlyOne, gateway);
          await assert.rejects(pipeline.evaluate(tenChildren, fetcher), { message: failure });
          // The same fetcher again (another resource type's page of that pass): not another strike.
          await assert.rejects(pipeline.evaluate(tenChildren, fetcher), { message: failure });
          clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
        }
        assert.deepEqual(ledger.list({ limit: 10 }), [], 'nothing recorded while the page fails');
        const { results } = await pipeline.evaluate(tenChildren, slowEmr(onlyOne, gateway));
        const report = pipeline.commit(results);
        assert.equal(report.mapped.inserted, 9);
        assert.equal(report.invalid, 1);
        assert.ok(probed.every((ref) => ref === slowChild));
        const row = ledger.list({ limit: 20 }).find((r) => r.subjectKey === slowChild);
        assert.equal(row?.state, 'dead');
        assert.equal(row.lastError?.kind, 'source-read');
        assert.match(
          row.lastError?.message ?? '',
          new RegExp(
            `^context: (\\w+) search \\(context '.+'\\) could not be read: search \\1 failed: ${gateway ? 'HTTP 504' : 'timeout: .*raise sources\\[\\]\\.timeoutMs.*'}; no answer in time in 3 reads at least 5 minutes apart while the source answered the other records, so only this record waits: replay it once the source answers \\1 search in time$`,
          ),
        );
        assert.doesNotMatch(row.lastError?.message ?? '', /Banda|MRN|u-birth/, 'no personal data');
        // Read in time again: mapped, and counted from nothing.
        const recovered = await pipeline.evaluate(
          [tenChildren[1] as Resource],
          slowEmr(() => false),
        );
        assert.equal(recovered.results[0]?.result.status, 'mapped');
      });
    });
  }

  it('counts no strike for evaluations close together: an inbox round retried, a busy moment', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      const pipeline = pipelineOf(ledger, async () => undefined, [], clock);
      // A pass, then an inbox round and its retries 1 s and 2 s later, each through a new fetcher: one strike.
      for (let round = 1; round <= 4; round++) {
        await assert.rejects(pipeline.evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(1_000);
      }
      // Just short of the gap after the first: still one strike.
      clock.advance(SLOW_RECORD_STRIKE_GAP_MS - 5_000);
      await assert.rejects(pipeline.evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
      // The gap after the first strike: the second; the next pass, a minute later, counts for nothing.
      clock.advance(2_000);
      await assert.rejects(pipeline.evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
      clock.advance(60_000);
      await assert.rejects(pipeline.evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
      assert.deepEqual(ledger.list({ limit: 10 }), []);
      // The gap after the second strike: the third, and the record is kept dead.
      clock.advance(SLOW_RECORD_STRIKE_GAP_MS - 60_000);
      const { results } = await pipeline.evaluate(tenChildren, slowEmr(onlyOne));
      assert.equal(pipeline.commit(results).invalid, 1);
    });
  });

  it('counts no strike in an evaluation of fewer than ten records: whether the source answers others is not known', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      const probed: string[] = [];
      const pipeline = pipelineOf(ledger, async () => undefined, probed, clock);
      // An inbox round of two notifications; a recheck of nine rows: one in two, one in nine, timed out.
      for (const records of [tenChildren.slice(0, 2), tenChildren.slice(0, 9)])
        for (let round = 1; round <= 4; round++) {
          await assert.rejects(pipeline.evaluate(records, slowEmr(onlyOne)), { message: /timeout/ });
          clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
        }
      assert.deepEqual(probed, [], 'not held for the others: failed at once');
      assert.deepEqual(ledger.list({ limit: 10 }), []);
      // None of those counted: ten records, one timed out, need three strikes from here.
      for (let pass = 1; pass <= 2; pass++) {
        await assert.rejects(pipeline.evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      }
      const { results } = await pipeline.evaluate(tenChildren, slowEmr(onlyOne));
      assert.equal(pipeline.commit(results).invalid, 1);
    });
  });

  it('fails every evaluation of a source too slow for every record, and keeps no record dead', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      const pipeline = pipelineOf(ledger, async () => undefined, [], clock);
      for (let pass = 1; pass <= 5; pass++) {
        await assert.rejects(
          pipeline.evaluate(
            tenChildren,
            slowEmr(() => true),
          ),
          { message: /timeout/ },
        );
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      }
      assert.deepEqual(ledger.list({ limit: 10 }), []);
    });
  });

  it('fails every evaluation while the probe gets no answer either, and alone (nothing else read)', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      const down = pipelineOf(
        ledger,
        async () => {
          throw timeout();
        },
        [],
        clock,
      );
      for (let pass = 1; pass <= 4; pass++) {
        await assert.rejects(down.evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      }
      const alone = pipelineOf(ledger, async () => undefined, [], clock);
      for (let pass = 1; pass <= 4; pass++) {
        await assert.rejects(alone.evaluate([tenChildren[1] as Resource], slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      }
      assert.deepEqual(ledger.list({ limit: 10 }), []);
    });
  });

  it('counts strikes across pipelines on one ledger (a restart, each `sync --once`), and forgets them once it is read in time', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      // Each evaluation by a pipeline of its own, as each `sync --once` is a process of its own.
      const restarted = () => pipelineOf(ledger, async () => undefined, [], clock);
      await assert.rejects(restarted().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
      clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      await assert.rejects(restarted().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
      // At once after, in yet another process: too soon, by the wall clock the ledger keeps.
      await assert.rejects(restarted().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
      clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      const third = restarted();
      const { results } = await third.evaluate(tenChildren, slowEmr(onlyOne));
      assert.equal(third.commit(results).invalid, 1, 'kept dead at the third strike');
      // Read in time (a replay once the source answers): its strikes are forgotten, in the ledger too.
      const recovered = await restarted().evaluate(
        [tenChildren[1] as Resource],
        slowEmr(() => false),
      );
      assert.equal(recovered.results[0]?.result.status, 'mapped');
      // Slow again later: the next process counts from nothing, so the evaluation fails as a first strike.
      clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      await assert.rejects(restarted().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
    });
  });

  it('counts no strike sooner within one process when the wall clock is put forward', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      const pipeline = pipelineOf(ledger, async () => undefined, [], clock);
      const evaluation = () => pipeline.evaluate(tenChildren, slowEmr(onlyOne));
      await assert.rejects(evaluation(), { message: /timeout/ }); // the first strike
      for (let strike = 2; strike <= 3; strike++) {
        // A minute later, the wall clock put two hours forward (NTP, an operator): the monotonic clock
        // says a minute, so no strike.
        clock.advance(60_000);
        clock.setWall(2 * 60 * 60_000);
        await assert.rejects(evaluation(), { message: /timeout/ }, `no strike ${strike} a minute after the last`);
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS - 60_000);
        if (strike === 2) await assert.rejects(evaluation(), { message: /timeout/ });
      }
      const { results } = await evaluation();
      assert.equal(pipeline.commit(results).invalid, 1, 'the third strike, the gap after the second');
    });
  });

  for (const restarts of [false, true])
    it(`counts the next strike the gap after the wall clock was put back, not when it is back${restarts ? ' (across processes)' : ''}`, async () => {
      await withLedger(async (ledger) => {
        const clock = fakeClock();
        const one = pipelineOf(ledger, async () => undefined, [], clock);
        const pipeline = () => (restarts ? pipelineOf(ledger, async () => undefined, [], clock) : one);
        await assert.rejects(pipeline().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        // The wall clock put a day back: the last strike is "tomorrow" by it. Not a strike (the gap has not
        // passed by the wall clock), and the next waits the gap from now, not a day.
        clock.setWall(-24 * 60 * 60_000);
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
        await assert.rejects(pipeline().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
        await assert.rejects(pipeline().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
        const last = pipeline();
        const { results } = await last.evaluate(tenChildren, slowEmr(onlyOne));
        assert.equal(last.commit(results).invalid, 1, 'the third strike');
      });
    });

  it('forgets strikes a week old: the record counts from nothing', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      const restarted = () => pipelineOf(ledger, async () => undefined, [], clock);
      for (let pass = 1; pass <= 2; pass++) {
        await assert.rejects(restarted().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      }
      clock.advance(8 * 24 * 60 * 60_000);
      for (let pass = 1; pass <= 2; pass++) {
        await assert.rejects(restarted().evaluate(tenChildren, slowEmr(onlyOne)), { message: /timeout/ });
        clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
      }
      const last = restarted();
      const { results } = await last.evaluate(tenChildren, slowEmr(onlyOne));
      assert.equal(last.commit(results).invalid, 1);
    });
  });

  it('in a partial evaluation (a recheck) names it as failed, not the others, until it is kept dead', async () => {
    await withLedger(async (ledger) => {
      const clock = fakeClock();
      const pipeline = pipelineOf(ledger, async () => undefined, [], clock);
      for (let evaluation = 1; evaluation <= 3; evaluation++) {
        if (evaluation > 1) clock.advance(SLOW_RECORD_STRIKE_GAP_MS);
        const fetcher = slowEmr(onlyOne);
        const { results, failures } = await pipeline.evaluate(tenChildren, fetcher, undefined, { partial: true });
        const slow = results.filter((r) => r.result.subjectRef === slowChild).map((r) => r.result.status);
        assert.equal(results.length - slow.length, 9, `evaluation ${evaluation}: the other nine`);
        if (evaluation < 3) {
          assert.deepEqual(slow, []);
          assert.deepEqual(
            failures?.map((f) => f.subjectRef),
            [slowChild],
          );
        } else {
          assert.deepEqual(slow, ['invalid'], 'kept dead at the third strike');
          assert.deepEqual(failures, []);
        }
      }
    });
  });
});

// A recheck or a notification evaluates with `partial`: a subject whose reads fail is named in `failures`
// and left out of the results, and the other subjects' results are returned to be recorded, where a
// poll pass (no `partial`) fails as a whole so its watermark holds.
describe('SourcePipeline: a partial evaluation (a recheck, a notification)', () => {
  const failedChild = 'Patient/u-birth-1-child';

  it("returns the others' results and names the subject whose context read failed for the source (a 429)", async () => {
    await withLedger(async (ledger) => {
      const probed: string[] = [];
      const pipeline = pipelineOf(ledger, async () => undefined, probed);
      const fetcher = emr(() => new FhirSourceError('read Patient failed: HTTP 429', 429, true));
      await assert.rejects(pipeline.evaluate(children, fetcher), { message: /HTTP 429/ }, 'a pass fails as a whole');
      const { results, failures } = await pipeline.evaluate(children, fetcher, undefined, { partial: true });
      assert.deepEqual(
        results.map((r) => [r.result.subjectRef, r.result.status]),
        [
          ['Patient/u-birth-0-child', 'mapped'],
          ['Patient/u-birth-2-child', 'mapped'],
        ],
      );
      assert.deepEqual(
        failures?.map((f) => [f.subjectRef, f.error instanceof FhirSourceError && f.error.status]),
        [[failedChild, 429]],
      );
      assert.deepEqual(probed, [], 'a rate limit is the source, not the record');
    });
  });
});
