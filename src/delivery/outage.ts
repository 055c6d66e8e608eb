// Whether OpenCRVS is out of reach for the whole queue, not for one row. Each row has its own retry
// budget, and during an outage every waiting birth spent it on calls that never reached OpenCRVS: after a
// night or a weekend the whole backlog was dead, waiting for someone to replay it. A failure that never
// reached OpenCRVS no longer ends a row's budget by its count (only by its age, retry-policy.ts), and
// when OpenCRVS has answered nothing for a while, several rows failing so meanwhile, the queue holds like
// for an operator problem: nothing more is spent, and the EMR is not asked to recheck rows that cannot be
// sent, until a probe gets through (worker.ts).
import type { ClassifiedFailure } from './errors.js';

/** Statuses a proxy or gateway answers when OpenCRVS behind it cannot be reached or is overloaded. */
const GATEWAY_STATUSES = new Set([502, 503, 504]);

/** Distinct rows whose calls fail unreached, with no answer between, before the queue holds. */
export const OUTAGE_ROWS = 3;

/**
 * A failure that says nothing about the row: the call did not reach OpenCRVS (or its upstream). A 408 is a
 * `timeout` (classify.ts) and so counts here: the server or a proxy closed the connection before it had the
 * whole request (RFC 9110 §15.5.9), so nothing was processed; like a reset, it is the path's trouble, not
 * the record's, and counted toward maxAttempts it would make rows dead for a slow link.
 */
export function unreached(failure: Pick<ClassifiedFailure, 'error'>): boolean {
  const { kind, status } = failure.error;
  if (kind === 'network' || kind === 'timeout') return true;
  return kind === 'server' && status !== undefined && GATEWAY_STATUSES.has(status);
}

export interface OutageWatch {
  /**
   * Records an unreached failure of `rowId`; true once OpenCRVS has answered nothing for `afterMs` and
   * several rows failed so meanwhile: hold the queue.
   */
  unreached(rowId: number): boolean;
  /** OpenCRVS answered a call (whatever the answer): the run of unreached failures ends. */
  reached(): void;
}

/**
 * `afterMs` (delivery.outageHoldSeconds): a gateway that fails one call in three is flaky, not out, and
 * holding would slow every birth to one try per probe; only a silence that long is an outage.
 */
export function outageWatch(afterMs: number, now: () => number, rows = OUTAGE_ROWS): OutageWatch {
  // Bounded by `rows`: only whether that many distinct rows failed matters.
  const failing = new Set<number>();
  let lastAnswerAt = now();
  return {
    unreached(rowId) {
      if (failing.size < rows) failing.add(rowId);
      return failing.size >= rows && now() - lastAnswerAt >= afterMs;
    },
    reached() {
      failing.clear();
      lastAnswerAt = now();
    },
  };
}
