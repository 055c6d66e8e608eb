import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outageWatch, unreached } from '../../src/delivery/outage.js';

const failure = (kind: string, status?: number) => ({
  error: { classification: 'retryable' as const, kind, message: 'x', ...(status ? { status } : {}) },
});

describe('outage watch', () => {
  it('tells calls that never reached OpenCRVS from its answers', () => {
    assert.deepEqual(
      [
        failure('network'),
        failure('timeout'),
        failure('server', 502),
        failure('server', 503),
        failure('server', 504),
        failure('server', 500),
        failure('rate-limited', 429),
        failure('confirmation-failed', 500),
      ].map(unreached),
      [true, true, true, true, true, false, false, false],
    );
  });

  it('holds after three rows fail unreached with no answer for a minute; one row failing again and again does not', () => {
    let clock = 0;
    const watch = outageWatch(60_000, () => clock);
    assert.equal(watch.unreached(1), false);
    assert.equal(watch.unreached(1), false);
    assert.equal(watch.unreached(1), false, 'the same row: its own problem, perhaps');
    assert.equal(watch.unreached(2), false);
    assert.equal(watch.unreached(3), false, 'not silent for long yet: flaky, perhaps');
    clock = 60_000;
    assert.equal(watch.unreached(3), true);
    assert.equal(watch.unreached(1), true, 'still out of reach');
  });

  it('an answer from OpenCRVS ends the run, and the silence starts again from it', () => {
    let clock = 0;
    const watch = outageWatch(60_000, () => clock);
    watch.unreached(1);
    watch.unreached(2);
    clock = 50_000;
    watch.reached();
    clock = 100_000;
    assert.equal(watch.unreached(3), false);
    assert.equal(watch.unreached(4), false);
    assert.equal(watch.unreached(5), false, '50 s since the answer');
    clock = 110_000;
    assert.equal(watch.unreached(5), true);
  });
});
