import type { ResourceFetcher } from '../mapping/index.js';
import type { Logger } from '../observability/logger.js';
import { RepeatedFailure } from '../observability/repeated-failure.js';
import type { Evaluation, PassReport, SourcePipeline } from './pipeline.js';

/** What the admin page, readiness and metrics read about a source's polling (no personal data). */
export interface PollerStatus {
  lastPollStartedAt?: number;
  lastPollFinishedAt?: number;
  lastError?: string;
  consecutiveFailures: number;
  watermarks: Record<string, string | undefined>;
  lastReport?: PassReport;
  /** The last time a stored watermark was found far ahead of the source's own clock and moved back. */
  clockBehind?: ClockBehind;
}

/** A watermark moved back to the source's clock (rewoundWatermark); times as the source writes them. */
export interface ClockBehind {
  /** This machine's epoch ms. */
  at: number;
  resourceType: string;
  /** The watermark as it was stored. */
  watermark: string;
  /** The source's own time then. */
  serverTime: string;
  /** The watermark it was moved back to. */
  movedTo: string;
}

export interface CursorStore {
  getCursor(sourceId: string, name: string): string | undefined;
  setCursor(sourceId: string, name: string, value: string): void;
  /** When the cursor was last written (this machine's epoch ms); without it, see rewoundWatermark. */
  cursorMovedAt?(sourceId: string, name: string): number | undefined;
  /** When the ledger first recorded a row of the source (epoch ms); without it, see firstSyncStart. */
  firstSeenAt?(sourceId: string): number | undefined;
}

/**
 * Where the watermark goes back to when the stored one is ahead of the source's own time by more than the
 * overlap, or undefined when it is not. That happens when the EMR moved to a server whose clock is behind,
 * a clock that ran ahead was put right, or DHIS2 moved to another time zone: a search from the watermark
 * then finds only records stamped in the future, and every birth recorded until the source's clock caught
 * up (an hour, a year) would never be read while every pass said ok. The clamp at commit (the watermark
 * never passes the server's time) cannot help: the watermark was stored before.
 *
 * Not to the source's time less the overlap: what the source recorded between the bridge's last read and
 * now, stamped by its new clock, would be left behind. The watermark goes back by as long again as this
 * machine's clock says passed since it was last moved (`movedAt`), so the re-read reaches where the bridge
 * stopped, whatever the source's clock did meanwhile; with no `movedAt`, to the source's time. Reading
 * again is safe: ledger keys and transaction ids are deterministic, and a version already recorded is
 * recorded unchanged (nothing is sent twice).
 */
export function rewoundWatermark(input: {
  watermark: number;
  serverTime: number;
  overlapSeconds: number;
  movedAt?: number;
  now?: number;
}): number | undefined {
  const { watermark, serverTime, overlapSeconds, movedAt } = input;
  // Also false for an unreadable time (NaN): nothing is moved on a guess.
  if (!(watermark - overlapSeconds * 1000 > serverTime)) return undefined;
  const since = movedAt === undefined ? 0 : Math.max(0, (input.now ?? Date.now()) - movedAt);
  return serverTime - since;
}

/** How one pass is asked to read. */
export interface PassOptions {
  /**
   * Read from here too (`sync --once --since`), where the watermark is later: records a mapping or a
   * source filter widened since they were read, or that a restored ledger does not know. The watermark
   * never moves back, and a record read again keeps its row and its transactionIds: nothing is sent twice.
   */
  from?: string;
}

/** How a poller writes and compares the times of its source (ISO instants, or DHIS2's naive times). */
export interface SourceTimes {
  /** A date or date-time as `poll.since` and `sync --since` give it, written as the poller's starts are. */
  toSource(value: string): string | undefined;
  earlierOf(a: string | undefined, b: string): string;
  laterOf(a: string | undefined, b: string | undefined): string | undefined;
}

/**
 * The start of a pass asked to read from `from` too: the earlier of the two, so it never skips what the
 * pass would read anyway (a source's whole history, undefined, stays that). Never before the source's
 * go-live (`poll.since`, or the start `sinceDays` chose): a boundary the operator chose, whatever the
 * date asked (births before it were registered otherwise).
 */
export function readFromEarlier(
  start: string | undefined,
  from: string | undefined,
  goLive: () => string | undefined,
  times: SourceTimes,
): string | undefined {
  const asked = from === undefined ? undefined : times.toSource(from);
  if (start === undefined || asked === undefined) return start;
  // Looked up only for a pass asked to read again: `sinceDays` stores the start it chose on first use.
  const live = goLive();
  const bounded = live === undefined ? asked : times.laterOf(asked, times.toSource(live));
  return bounded === undefined ? start : times.earlierOf(start, bounded);
}

/**
 * Where a pass that read from an earlier date stopped short of the results' end (its page budget, a
 * deadline, shutdown) while still behind where a usual pass starts: the watermark does not carry such a
 * pass's progress, so its caller goes on from here (`sync --since`). Undefined when it reached the end or
 * got to where the usual pass starts (the next pass reads on from the watermark).
 */
export function rereadStop(
  ended: boolean,
  bound: string | undefined,
  usual: string | undefined,
  times: SourceTimes,
): string | undefined {
  if (ended || bound === undefined || usual === undefined) return undefined;
  return times.earlierOf(bound, usual) === bound && bound !== usual ? bound : undefined;
}

/**
 * Most versions (type, id, versionId) a poller remembers as mapped. They are forgotten once older than the
 * overlap, but an overlap of a day (its maximum) on a busy EMR can hold a day of versions: past this many
 * the oldest go first. One forgotten so and read again in the overlap is only mapped again, and the ledger
 * records it as unchanged (the same payload).
 */
export const SEEN_VERSIONS_MAX = 100_000;

/**
 * Remembers `key`, a version mapped whose time (lastUpdated, updatedAt) is `at` ms, as the newest of `seen`;
 * past `max`, the oldest remembered goes to make room for it, but never one of the same time, nor a member of
 * the run of equal timestamps being read (its time `runAt`, the poller's bound): such a run is complete only
 * once a reading of it finds every member remembered (run-readings.ts), so a run longer than `max` is kept
 * whole. Records after the run on its last page would otherwise push its members out, and the next reading
 * find them new, reading after reading until the run is given up, every pass.
 *
 * One goes for each one remembered, never more: a run kept whole is forgotten as later versions come (or
 * with the overlap, prune), not all at once for the first of them. `seen` thus holds at most `max` plus the
 * longest run kept whole and what its last page held after it.
 */
export function rememberSeen(
  seen: Map<string, number>,
  key: string,
  at: number,
  max = SEEN_VERSIONS_MAX,
  runAt?: number,
): void {
  seen.delete(key);
  const oldest = seen.entries().next();
  // Only the oldest is looked at (no search past a run kept whole): one protected waits for the next call.
  if (seen.size >= max && !oldest.done && oldest.value[1] !== at && oldest.value[1] !== runAt)
    seen.delete(oldest.value[0]);
  seen.set(key, at);
}

/** Where `poll.sinceDays` keeps the start it chose, so a restart before the first page keeps it too. */
export const FIRST_SYNC_CURSOR = 'first-sync-start';

const DAY_MS = 86_400_000;

/**
 * Where a source with no watermark yet starts (an ISO date-time), or undefined for its whole history:
 * `poll.since` as given, or `poll.sinceDays` before the first poll. The latter is stored on first use:
 * computed afresh each time, a first sync that failed and resumed later would quietly move its start.
 * It is also the go-live (go-live.ts), asked of a source that has run too: one given `sinceDays` after
 * it went live (none stored) counts the days from its first recorded row, not from today, which would
 * skip as "before the go-live" every birth of the days between entered late.
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
  const ranFrom = cursors.firstSeenAt?.(sourceId);
  const start = new Date(Math.min(now, ranFrom ?? now) - poll.sinceDays * DAY_MS).toISOString();
  cursors.setCursor(sourceId, FIRST_SYNC_CURSOR, start);
  return start;
}

/**
 * Commits a page's results with the watermark `reach` (`commit`, with `whole` false for a later move
 * of the watermark alone). A result another evaluation overtook is not recorded but read again at once
 * (SourcePipeline.overtakes); until that reread has recorded the record, the watermark goes no further
 * than the page's `oldest` record, so a crash meanwhile leaves the page to be read again. False when the
 * reread failed: the pass then holds its watermark at `oldest` and does not remember the page's
 * versions, so the next pass reads the page again.
 */
export async function commitInOrder(
  pipeline: SourcePipeline,
  fetcher: ResourceFetcher,
  page: { results: Evaluation[]; reach: string | undefined; oldest: () => string | undefined },
  earlierOf: (a: string, b: string) => string,
  commit: (results: Evaluation[], reach: string | undefined, whole: boolean) => void,
): Promise<boolean> {
  const { results, reach } = page;
  if (!pipeline.overtakes(results)) {
    commit(results, reach, true);
    return true;
  }
  const oldest = page.oldest();
  const held = reach !== undefined && oldest !== undefined ? earlierOf(reach, oldest) : reach;
  commit(results, held, true);
  if (!(await pipeline.settled(fetcher))) return false;
  if (reach !== held && reach !== undefined) commit([], reach, false);
  return true;
}

/**
 * The log of one poller's failed passes; each poller (so each source: its logger names it) has its own.
 * A source down for hours on a schedule of seconds, or a ledger on a full disk, wrote a line with a stack
 * at every pass: the first failure is still logged at once, then the same one at most once a minute with
 * `repeats`, and one line when a pass succeeds again. Readiness and metrics still count every pass.
 */
export function passFailures(log: Logger, now?: () => number): RepeatedFailure {
  return new RepeatedFailure(log, 'poll pass failed; the watermark stays where it was', {
    level: 'warn',
    ...(now ? { now } : {}),
  });
}

/**
 * Runs one poll pass with the bookkeeping every source shares: start and finish times, the failure
 * count readiness looks at (every failed pass counts), the last report, and the log: a line for each pass
 * done, a failed one through the poller's `failures` (passFailures). A failed pass rethrows; its watermark
 * was never committed, so the next pass starts where this one did. A pass the poller's stop() cut short
 * (`stopped`) is no success: after failed passes, "poll passes succeed again" at shutdown would be untrue.
 */
export async function trackedPass(
  status: PollerStatus,
  log: Logger,
  failures: RepeatedFailure,
  run: () => Promise<{ report: PassReport; reads: number; stopped: boolean }>,
): Promise<PassReport> {
  status.lastPollStartedAt = Date.now();
  try {
    const { report, reads, stopped } = await run();
    status.lastReport = report;
    if (!stopped) {
      status.consecutiveFailures = 0;
      status.lastError = undefined;
      failures.recovered('poll passes succeed again');
    }
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
    failures.failed(err, { failures: status.consecutiveFailures });
    throw err;
  } finally {
    status.lastPollFinishedAt = Date.now();
  }
}
