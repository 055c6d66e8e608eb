// When a failed write-back runs again: a pure function, so the delays can be tested as numbers.

/**
 * Exponential backoff from `baseDelayMs`, capped at `maxDelayMs`, with up to 20 % jitter below the value so
 * jobs that failed together (the source was down) do not all return at once. With the defaults (5 s base,
 * 1 h cap, 12 attempts) the 11 waits add up to about 2.4 hours before a job is abandoned.
 */
export function writeBackDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number): number {
  const exponential = baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(maxDelayMs, exponential);
  return Math.max(1, Math.round(capped * (1 - 0.2 * random())));
}
