// What to do after a failed attempt: a pure function of the attempt count, the row's age, the error's
// classification and a random number, so tests can assert the actual delays.
import type { ErrorClassification } from '../opencrvs/errors.js';

export interface RetryPolicy {
  /** Delay before the 2nd attempt (before jitter); doubles with each attempt. */
  baseDelayMs: number;
  /** Cap of the doubled delay (before a Retry-After floor). */
  maxDelayMs: number;
  /** Attempts in one budget, the failing one included; at this count a retryable error is final. */
  maxAttempts: number;
  /** The budget's age limit, from the row's `queuedAt`: no retry is scheduled past it. */
  maxAgeMs: number;
}

export interface RetryInput {
  /** Attempts made so far, the one that just failed included (counted at claim): the backoff grows with them. */
  attempts: number;
  /**
   * Of `attempts`, those that count toward `maxAttempts`: all but the earlier failures that never reached
   * OpenCRVS (LedgerRow.unreachedAttempts). Judged on every attempt, seven failed calls of a weekend's
   * flaky gateway and then one 500 made a row dead at once with a limit of 5. Default: `attempts`.
   */
  counted?: number;
  /** Start of the retry budget (the row's `queuedAt`: first recorded, replayed or requeued). */
  firstSeenAt: number;
  now: number;
  /**
   * `unreached`: the call never reached OpenCRVS (network, timeout, a gateway's 502–504: outage.ts). Such
   * failures say nothing about the row, so they end its budget by age only, not by count.
   */
  error: { classification: ErrorClassification; retryAfterMs?: number; unreached?: boolean };
}

export type RetryDecision =
  | { action: 'retry'; delayMs: number }
  | { action: 'dead'; reason: string }
  | { action: 'hold'; reason: string };

/**
 * - `operator` → hold (the whole queue waits for a human; the attempt is not burned);
 * - `permanent` → dead at once;
 * - `retryable` → dead when `maxAttempts` is reached (not by a failure that never reached OpenCRVS: an
 *   outage of a weekend would kill the whole backlog) or `maxAgeMs` is (the failure at or past it);
 *   otherwise retry after `min(maxDelayMs, baseDelayMs · 2^(attempts−1))` with "equal jitter" (a
 *   uniform draw in the upper half of that delay, so retries of many rows that failed together spread
 *   out but never come back sooner than half the backoff), raised to `Retry-After` when the server
 *   asked for longer (a floor: it knows when it will be back; the cap does not override it), but never
 *   past `maxAgeMs`: a delay reaching past it gets one last try at the deadline instead.
 *
 * With the defaults (base 2 s, cap 1 h, 25 attempts) the delays are about 2 s, 4 s, 8 s … 34 min, then
 * 1 h: the 25th attempt comes about 7–14 hours after the first, well inside the default one-week age limit.
 */
export function decideRetry(input: RetryInput, policy: RetryPolicy, random: () => number): RetryDecision {
  const { classification } = input.error;
  if (classification === 'operator') return { action: 'hold', reason: 'needs an operator' };
  if (classification === 'permanent') return { action: 'dead', reason: 'permanent error' };
  const counted = input.counted ?? input.attempts;
  if (counted >= policy.maxAttempts && !input.error.unreached) {
    const uncounted = input.attempts - counted;
    const more = uncounted > 0 ? `; ${uncounted} more did not reach OpenCRVS` : '';
    return { action: 'dead', reason: `gave up after ${counted} attempts (maxAttempts ${policy.maxAttempts}${more})` };
  }
  const exponent = Math.max(0, input.attempts - 1);
  // 2^exponent overflows to Infinity long before it matters; min() keeps it finite.
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(exponent, 52));
  const r = Math.min(Math.max(random(), 0), 1);
  const jittered = Math.round(backoff / 2 + (backoff / 2) * r);
  const retryAfterMs = Math.ceil(input.error.retryAfterMs ?? 0);
  const delayMs = Math.max(jittered, retryAfterMs);
  const deadline = input.firstSeenAt + policy.maxAgeMs;
  if (input.now + delayMs > deadline) {
    // Past it, by the backoff or by the server's Retry-After: one last try at the deadline, sooner than
    // either asks. Dead at once, the row lost the time its budget still had (a row at its capped backoff,
    // failing seconds before the deadline, lost up to maxDelayMs). The try at the deadline has no time
    // left, and dies if it fails.
    if (input.now < deadline) return { action: 'retry', delayMs: deadline - input.now };
    const ageHours = Math.round(((input.now - input.firstSeenAt) / 3_600_000) * 10) / 10;
    return { action: 'dead', reason: `gave up after ${input.attempts} attempts over ${ageHours} h (max age reached)` };
  }
  return { action: 'retry', delayMs };
}

/** The policy from DeliverySettings (hours to milliseconds). */
export function retryPolicyFrom(settings: {
  baseDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
  maxAgeHours: number;
}): RetryPolicy {
  return {
    baseDelayMs: settings.baseDelayMs,
    maxDelayMs: settings.maxDelayMs,
    maxAttempts: settings.maxAttempts,
    maxAgeMs: settings.maxAgeHours * 3_600_000,
  };
}
