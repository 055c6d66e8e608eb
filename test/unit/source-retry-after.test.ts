import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callTries, MAX_SOURCE_BACKOFF_MS, nextTryDelay } from '../../src/sources/shared/retry-after.js';

describe("a source call's next try (sources[].retry)", () => {
  it('waits the doubled backoff, or what a Retry-After within the timeout asks if longer', () => {
    assert.equal(nextTryDelay(1_000, undefined, 15_000), 1_000);
    assert.equal(nextTryDelay(1_000, 5_000, 15_000), 5_000);
    assert.equal(nextTryDelay(4_000, 2_000, 15_000), 4_000);
  });

  it('tries no more when a Retry-After asks past the timeout', () => {
    assert.equal(nextTryDelay(1_000, 20_000, 15_000), undefined);
  });

  it('never waits more than a minute of backoff, however far attempts double baseDelayMs', () => {
    // The schema's most: 10 attempts from 60 s; before the last try, 60 s × 2^8 doubled.
    assert.equal(MAX_SOURCE_BACKOFF_MS, 60_000);
    assert.equal(nextTryDelay(60_000 * 2 ** 8, undefined, 15_000), 60_000);
    assert.equal(nextTryDelay(500 * 2 ** 8, undefined, 15_000), 60_000);
    // The server's own ask, within the timeout, is still honoured past it.
    assert.equal(nextTryDelay(60_000 * 2 ** 8, 90_000, 120_000), 90_000);
  });
});

describe("a source client's tries per call", () => {
  it("takes the caller's own, else the source's sources[].retry, else 3 tries from 500 ms", () => {
    assert.deepEqual(callTries({}, undefined), { attempts: 3, retryBaseMs: 500 });
    assert.deepEqual(callTries({}, { attempts: 2, baseDelayMs: 10 }), { attempts: 2, retryBaseMs: 10 });
    // doctor asks once whatever the source's setting.
    assert.deepEqual(callTries({ attempts: 1 }, { attempts: 5, baseDelayMs: 10 }), { attempts: 1, retryBaseMs: 10 });
  });
});
