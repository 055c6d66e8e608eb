import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRetry, type RetryPolicy, retryPolicyFrom } from '../../src/delivery/retry-policy.js';

const policy: RetryPolicy = { baseDelayMs: 2000, maxDelayMs: 60_000, maxAttempts: 10, maxAgeMs: 24 * 3_600_000 };
const T0 = 1_700_000_000_000;
const retryable = { classification: 'retryable' as const };
const fixed = (r: number) => () => r;

function delayFor(attempts: number, r: number, retryAfterMs?: number): number {
  const decision = decideRetry(
    { attempts, firstSeenAt: T0, now: T0 + 1000, error: { ...retryable, retryAfterMs } },
    policy,
    fixed(r),
  );
  assert.equal(decision.action, 'retry');
  return decision.action === 'retry' ? decision.delayMs : -1;
}

describe('retry policy', () => {
  it('doubles the delay from the base with each attempt, jittered within the upper half', () => {
    // random = 1 gives the full backoff, 0 gives half of it.
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => delayFor(n, 1)),
      [2000, 4000, 8000, 16000, 32000],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => delayFor(n, 0)),
      [1000, 2000, 4000, 8000, 16000],
    );
    assert.equal(delayFor(3, 0.5), 6000);
  });

  it('caps the backoff at maxDelayMs', () => {
    assert.equal(delayFor(6, 1), 60_000);
    assert.equal(delayFor(9, 1), 60_000);
    assert.equal(delayFor(9, 0), 30_000);
  });

  it('honours Retry-After as a floor, even above the cap, but not when the backoff is longer', () => {
    assert.equal(delayFor(1, 0, 30_000), 30_000);
    assert.equal(delayFor(9, 1, 90_000), 90_000);
    assert.equal(delayFor(4, 1, 1000), 16_000);
  });

  it('gives up with the attempt count once maxAttempts is reached', () => {
    const decision = decideRetry({ attempts: 10, firstSeenAt: T0, now: T0, error: retryable }, policy, fixed(0));
    assert.equal(decision.action, 'dead');
    assert.match(decision.action === 'dead' ? decision.reason : '', /10 attempts/);
    assert.equal(
      decideRetry({ attempts: 9, firstSeenAt: T0, now: T0, error: retryable }, policy, fixed(0)).action,
      'retry',
    );
  });

  it('a failure that never reached OpenCRVS ends the budget by age, not by count', () => {
    const unreached = { ...retryable, unreached: true };
    assert.deepEqual(decideRetry({ attempts: 40, firstSeenAt: T0, now: T0, error: unreached }, policy, fixed(1)), {
      action: 'retry',
      delayMs: 60_000,
    });
    const deadline = T0 + policy.maxAgeMs;
    assert.equal(
      decideRetry({ attempts: 40, firstSeenAt: T0, now: deadline, error: unreached }, policy, fixed(1)).action,
      'dead',
    );
  });

  it('a backoff reaching past the maximum age gets one last try at the deadline, then the row dies', () => {
    const deadline = T0 + policy.maxAgeMs;
    const now = deadline - 5000;
    // attempt 3 with random 1: 8 s > 5 s left → tried at the deadline; with random 0: 4 s fits → waited out.
    assert.deepEqual(decideRetry({ attempts: 3, firstSeenAt: T0, now, error: retryable }, policy, fixed(1)), {
      action: 'retry',
      delayMs: 5000,
    });
    assert.deepEqual(decideRetry({ attempts: 3, firstSeenAt: T0, now, error: retryable }, policy, fixed(0)), {
      action: 'retry',
      delayMs: 4000,
    });
    // At its capped backoff, failing 10 s before the deadline (a failure that never reached OpenCRVS, so
    // no count ends it): not dead at once with time left, but tried at the deadline.
    const unreached = { ...retryable, unreached: true };
    const late = deadline - 10_000;
    assert.deepEqual(decideRetry({ attempts: 30, firstSeenAt: T0, now: late, error: unreached }, policy, fixed(1)), {
      action: 'retry',
      delayMs: 10_000,
    });
    // That try, failing the same way, has nothing left; nor has one that fails later still.
    for (const at of [deadline, deadline + 1]) {
      const decision = decideRetry({ attempts: 31, firstSeenAt: T0, now: at, error: unreached }, policy, fixed(0));
      assert.equal(decision.action, 'dead');
      assert.match(decision.action === 'dead' ? decision.reason : '', /max age reached/);
    }
  });

  it('a Retry-After reaching past the maximum age gets one last try at the deadline, then the row dies', () => {
    const deadline = T0 + policy.maxAgeMs;
    const now = deadline - 60_000;
    const busy = { ...retryable, retryAfterMs: 3_600_000 };
    // The backoff (8 s) fits in the minute left; the hour asked does not: tried at the deadline.
    assert.deepEqual(decideRetry({ attempts: 3, firstSeenAt: T0, now, error: busy }, policy, fixed(1)), {
      action: 'retry',
      delayMs: 60_000,
    });
    // That try, failing the same way, has nothing left.
    assert.equal(
      decideRetry({ attempts: 4, firstSeenAt: T0, now: deadline, error: busy }, policy, fixed(1)).action,
      'dead',
    );
    // As when the backoff itself would not fit before it: tried at the deadline all the same.
    const late = deadline - 5000;
    assert.deepEqual(decideRetry({ attempts: 3, firstSeenAt: T0, now: late, error: busy }, policy, fixed(1)), {
      action: 'retry',
      delayMs: 5000,
    });
    // A Retry-After within the deadline is waited out whole, as before.
    assert.deepEqual(
      decideRetry(
        { attempts: 3, firstSeenAt: T0, now, error: { ...retryable, retryAfterMs: 30_000 } },
        policy,
        fixed(1),
      ),
      { action: 'retry', delayMs: 30_000 },
    );
  });

  it('sends permanent errors to dead at once and holds for operator errors, whatever the budget', () => {
    assert.equal(
      decideRetry({ attempts: 1, firstSeenAt: T0, now: T0, error: { classification: 'permanent' } }, policy, fixed(0))
        .action,
      'dead',
    );
    assert.equal(
      decideRetry({ attempts: 99, firstSeenAt: T0, now: T0, error: { classification: 'operator' } }, policy, fixed(0))
        .action,
      'hold',
    );
  });

  it('reads the policy from delivery settings in hours', () => {
    assert.equal(
      retryPolicyFrom({ baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 3, maxAgeHours: 1.5 }).maxAgeMs,
      5_400_000,
    );
  });
});
