// observability/paced.ts: a costly query asked in a loop takes a bounded share of the event loop, and a
// cheap one is always run afresh.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paced } from '../../src/observability/paced.js';

/** A synchronous run that takes about `ms` (as a GROUP BY over a large ledger does). */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: better-sqlite3 holds the loop the same way
  }
}

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
    const counts = paced(() => ++runs, { share: 0.02, maxAgeMs: 15_000 });
    assert.deepEqual([counts(), counts(), counts()], [1, 2, 3]);
  });

  it('keeps an answer no longer than maxAgeMs', async () => {
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
    await new Promise((resolve) => setTimeout(resolve, 15));
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
