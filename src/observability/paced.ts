// A query whose cost grows with the data (a GROUP BY over the whole ledger), asked by callers who may
// ask often and need not be authenticated (a /metrics scrape, every open admin tab). better-sqlite3 runs
// it on the event loop, where it delays notifications' acknowledgements and health checks. A review
// measured 0.25 s per count at 2 million rows and /healthz answering in 5–10 s under a scrape loop.

/** Below this a run is not worth reusing: a small ledger's counts are always fresh. */
const WORTH_KEEPING_MS = 5;

/**
 * Reuses `run`'s answer for `1/share − 1` times as long as it took (at most `maxAgeMs`), so however
 * often it is asked it takes at most about `share` of the loop. A run under 5 ms is not reused.
 * `reset()` drops a kept answer: after an operator's action the next one is fresh.
 */
export function paced<T>(run: () => T, options: { share: number; maxAgeMs: number }): (() => T) & { reset(): void } {
  let answer: { value: T; until: number } | undefined;
  const ask = () => {
    const start = performance.now();
    if (answer && start < answer.until) return answer.value;
    const value = run();
    const end = performance.now();
    const took = end - start;
    answer =
      took < WORTH_KEEPING_MS
        ? undefined
        : { value, until: end + Math.min(options.maxAgeMs, took * (1 / options.share - 1)) };
    return value;
  };
  const reset = () => {
    answer = undefined;
  };
  return Object.assign(ask, { reset });
}
