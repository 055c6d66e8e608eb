import type { Logger } from '../observability/logger.js';
import type { PassReport } from './pipeline.js';

/** What the admin page, readiness and metrics read about a source's polling (no personal data). */
export interface PollerStatus {
  lastPollStartedAt?: number;
  lastPollFinishedAt?: number;
  lastError?: string;
  consecutiveFailures: number;
  watermarks: Record<string, string | undefined>;
  lastReport?: PassReport;
}

export interface CursorStore {
  getCursor(sourceId: string, name: string): string | undefined;
  setCursor(sourceId: string, name: string, value: string): void;
}

/** Where `poll.sinceDays` keeps the start it chose, so a restart before the first page keeps it too. */
export const FIRST_SYNC_CURSOR = 'first-sync-start';

const DAY_MS = 86_400_000;

/**
 * Where a source with no watermark yet starts (an ISO date-time), or undefined for its whole history:
 * `poll.since` as given, or `poll.sinceDays` before the first poll. The latter is stored on first use:
 * computed afresh each time, a first sync that failed and resumed later would quietly move its start.
 */
export function firstSyncStart(
  poll: { since?: string; sinceDays?: number },
  cursors: CursorStore,
  sourceId: string,
  now: number = Date.now(),
): string | undefined {
  if (poll.since !== undefined) return poll.since;
  if (poll.sinceDays === undefined) return undefined;
  const kept = cursors.getCursor(sourceId, FIRST_SYNC_CURSOR);
  if (kept) return kept;
  const start = new Date(now - poll.sinceDays * DAY_MS).toISOString();
  cursors.setCursor(sourceId, FIRST_SYNC_CURSOR, start);
  return start;
}

/**
 * Runs one poll pass with the bookkeeping every source shares: start and finish times, the failure
 * count readiness looks at, the last report, and one log line either way. A failed pass rethrows;
 * its watermark was never committed, so the next pass starts where this one did.
 */
export async function trackedPass(
  status: PollerStatus,
  log: Logger,
  run: () => Promise<{ report: PassReport; reads: number }>,
): Promise<PassReport> {
  status.lastPollStartedAt = Date.now();
  try {
    const { report, reads } = await run();
    status.consecutiveFailures = 0;
    status.lastError = undefined;
    status.lastReport = report;
    log.info(
      {
        resources: report.resources,
        subjects: report.subjects,
        ...report.mapped,
        skipped: report.skipped,
        invalid: report.invalid,
        reads,
      },
      'poll pass done',
    );
    return report;
  } catch (err) {
    status.consecutiveFailures++;
    status.lastError = err instanceof Error ? err.message : String(err);
    log.warn({ err, failures: status.consecutiveFailures }, 'poll pass failed; the watermark stays where it was');
    throw err;
  } finally {
    status.lastPollFinishedAt = Date.now();
  }
}
