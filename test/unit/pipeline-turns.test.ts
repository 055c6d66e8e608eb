// The mapping lanes share the event loop's turns (util/turn-budget.ts): a batch of subjects whose reads
// answer from a warm cache is mapped over several turns, no more than the budget's worth in each, so a
// subscription acknowledgement waits for one turn's work, not the batch's; the results are as before.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { openLedger } from '../../src/ledger/index.js';
import { bundleFetcher, loadMappings, type Resource, type ResourceFetcher } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { SourcePipeline } from '../../src/sources/pipeline.js';
import { TurnBudget } from '../../src/util/turn-budget.js';

const mappings = loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } });
const births = Array.from({ length: 20 }, (_, i) => generateBirth(i, { prefix: 't' }) as unknown as Resource[]);
const children = births.map((resources) => resources.find((r) => r.id?.endsWith('-child')) as Resource);

/** Evaluates the 20 births; each call to the source (a warm cache, answering at once) takes 1 ms of `clock`. */
async function evaluate(budgetMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-turns-'));
  const ledger = openLedger(join(dir, 'bridge.db'));
  try {
    const all = bundleFetcher({
      resourceType: 'Bundle',
      type: 'collection',
      entry: births.flat().map((resource) => ({ resource })),
    });
    let clock = 0;
    let calls = 0;
    const fetcher: ResourceFetcher = {
      read: (type, id) => {
        clock += 1;
        calls++;
        return all.read(type, id);
      },
      search: (type, params) => {
        clock += 1;
        calls++;
        return all.search(type, params);
      },
    };
    const pipeline = new SourcePipeline({
      sourceId: 'emr',
      mappings,
      ledger,
      logger: silentLogger,
      mapOptions: () => ({ resolveLocation: (ref) => ref }),
      turns: new TurnBudget(budgetMs, () => clock),
    });
    // Calls made by the end of each turn: an immediate that queues itself again runs once in each check phase.
    const perTurn: number[] = [];
    let evaluating = true;
    let counted = 0;
    const probed = new Promise<void>((resolve) => {
      const probe = () => {
        perTurn.push(calls - counted);
        counted = calls;
        if (evaluating) setImmediate(probe);
        else resolve();
      };
      setImmediate(probe);
    });
    const { results } = await pipeline.evaluate(children, fetcher);
    evaluating = false;
    await probed;
    // As JSON: a result carries its source fingerprint as a function, computed when asked.
    return {
      results: JSON.parse(JSON.stringify(results.map((r) => r.result))),
      calls,
      perTurn: perTurn.filter((n) => n > 0),
    };
  } finally {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

it('SourcePipeline: the lanes map a warm batch over several turns, within the budget each, with the same results', async () => {
  const unbounded = await evaluate(Number.POSITIVE_INFINITY);
  const budgeted = await evaluate(4);
  assert.equal(budgeted.results.length, 20);
  assert.deepEqual(budgeted.results, unbounded.results);
  assert.equal(budgeted.calls, unbounded.calls);
  // Unbounded, the 64 lanes map the 20 births (200 calls) in one turn; within 4 ms, a turn takes the
  // budget's calls, give or take the one that ran past it.
  assert.ok(Math.max(...unbounded.perTurn) > 40, `unbounded: ${unbounded.perTurn}`);
  assert.ok(Math.max(...budgeted.perTurn) <= 5, `budgeted: ${budgeted.perTurn}`);
  assert.ok(budgeted.perTurn.length >= budgeted.calls / 5, `budgeted: ${budgeted.perTurn}`);
});
