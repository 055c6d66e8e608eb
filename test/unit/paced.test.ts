// observability/paced.ts: a costly query asked in a loop takes a bounded share of the event loop, and a
// cheap one is always run afresh.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { paced } from '../../src/observability/paced.js';

/**
 * paced() times its runs by performance.now(), here a clock that moves only when a run "takes" time: on a
 * loaded machine the real one also moved while the test was not running (a cheap run seen as costly, an
 * answer older than its 10 ms between two calls back to back).
 */
let clock = 0;
/** A synchronous run that takes `ms` (as a GROUP BY over a large ledger holds the loop). */
function busyFor(ms: number): void {
  clock += ms;
}
beforeEach(() => {
  clock = 1_000;
  mock.method(performance, 'now', () => clock);
});
afterEach(() => mock.restoreAll());

describe('paced', () => {
  it('reuses a costly answer: asked 40 times back to back, a 20 ms query runs once', () => {
    let runs = 0;
    const counts = paced(
      () => {
        busyFor(20);
        return ++runs;
      },
      { share: 0.02, maxAgeMs: 15_000 },
    );
    const answers = Array.from({ length: 40 }, () => counts());
    assert.equal(runs, 1);
    assert.deepEqual(new Set(answers), new Set([1]));
  });

  it('runs a cheap query afresh every time, so a small ledger never shows stale counts', () => {
    let runs = 0;
    const counts = paced(
      () => {
        busyFor(1);
        return ++runs;
      },
      { share: 0.02, maxAgeMs: 15_000 },
    );
    assert.deepEqual([counts(), counts(), counts()], [1, 2, 3]);
  });

  it('keeps an answer no longer than maxAgeMs', () => {
    let runs = 0;
    const counts = paced(
      () => {
        busyFor(6);
        return ++runs;
      },
      { share: 0.02, maxAgeMs: 10 },
    );
    counts();
    counts();
    assert.equal(runs, 1, 'kept within its age');
    clock += 15;
    counts();
    assert.equal(runs, 2, 'run again once older than maxAgeMs');
  });

  it('answers afresh after reset(), as after an operator replays dead rows', () => {
    let runs = 0;
    const counts = paced(
      () => {
        busyFor(6);
        return ++runs;
      },
      { share: 0.02, maxAgeMs: 15_000 },
    );
    assert.equal(counts(), 1);
    assert.equal(counts(), 1);
    counts.reset();
    assert.equal(counts(), 2);
  });
});
