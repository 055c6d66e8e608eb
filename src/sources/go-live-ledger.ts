// `poll.since` is the source's go-live (go-live.ts): an event dated before it that the ledger does not hold
// is recorded skipped, never notified. Before that it was only where a first sync started, read no more
// once a watermark existed, and the docs told operators restoring a backup to set it to the backup's time
// and leave it. Such a value, later than the source in fact ran from, now skips in silence every birth and
// death dated between that is entered late. The ledger knows when the source ran: said at start and by doctor.
import type { SourceSettings } from '../config/types.js';
import type { Ledger } from '../ledger/index.js';
import { GO_LIVE_SKIP_MARK, goLiveDate, skippedBeforeGoLive } from './go-live.js';
import { FIRST_SYNC_CURSOR } from './pass.js';

export interface GoLiveAfterLedger {
  sourceId: string;
  /** `poll.since`'s date and the earliest date the ledger shows the source ran from (`YYYY-MM-DD`). */
  since: string;
  ranFrom: string;
  message: string;
}

/** Each source whose `poll.since` is later than the day the ledger shows it ran from. */
export function goLiveLaterThanLedger(
  sources: readonly Pick<SourceSettings, 'id' | 'poll'>[],
  ledger: Pick<Ledger, 'getCursor' | 'firstSeenAt'>,
): GoLiveAfterLedger[] {
  const found: GoLiveAfterLedger[] = [];
  for (const source of sources) {
    const since = goLiveDate(source.poll.since);
    if (since === undefined) continue;
    const evidence: Array<{ date: string; what: string }> = [];
    // The start `poll.sinceDays` chose, before poll.since replaced it.
    const chosen = goLiveDate(ledger.getCursor(source.id, FIRST_SYNC_CURSOR));
    if (chosen !== undefined) evidence.push({ date: chosen, what: 'the first sync start poll.sinceDays chose' });
    const firstSeen = ledger.firstSeenAt(source.id);
    if (firstSeen !== undefined)
      evidence.push({ date: new Date(firstSeen).toISOString().slice(0, 10), what: 'its first recorded event' });
    const earliest = evidence.sort((a, b) => a.date.localeCompare(b.date))[0];
    if (earliest === undefined || earliest.date >= since) continue;
    found.push({
      sourceId: source.id,
      since,
      ranFrom: earliest.date,
      message:
        `sources[${source.id}].poll.since (${since}) is later than ${earliest.date}, when the ledger shows this source ` +
        `already ran (${earliest.what}): births and deaths dated between ${earliest.date} and ${since} that the ledger ` +
        "does not hold yet (entered late) are recorded skipped, as before the source's go-live, and never notified. " +
        'poll.since is the go-live, read on every pass, not only where a first sync starts: set it back to the ' +
        `source's real go-live (${earliest.date} or earlier; docs/deployment.md, "Before the first sync")`,
    });
  }
  return found;
}

export interface GoLiveRemoved {
  sourceId: string;
  /** Rows skipped as before a go-live, and the latest go-live they were skipped against (`YYYY-MM-DD`). */
  skipped: number;
  goLive: string;
  message: string;
}

/**
 * Each source that has no go-live now (neither `poll.since` nor `poll.sinceDays`) while the ledger holds rows
 * skipped as before one. A go-live moved earlier is said by the pass that sends such rows (SourcePipeline's
 * `goLiveSkipsSent`), but a `poll.since` removed (a configuration rewritten, a key lost in a merge) turns
 * the go-live off with nothing said until then: the births registered on paper before it go out as late
 * declarations as their records change. Said at every start while it holds, so a removal is seen before.
 */
export function goLiveRemoved(
  sources: readonly Pick<SourceSettings, 'id' | 'poll'>[],
  ledger: Pick<Ledger, 'skippedReasons'>,
): GoLiveRemoved[] {
  const found: GoLiveRemoved[] = [];
  for (const source of sources) {
    if (source.poll.since !== undefined || source.poll.sinceDays !== undefined) continue;
    let skipped = 0;
    let goLive: string | undefined;
    // The reasons beforeGoLive wrote, told by the parser the pass uses (not a mapping's reason that quotes it).
    for (const { reason, count } of ledger.skippedReasons(source.id, GO_LIVE_SKIP_MARK)) {
      const date = skippedBeforeGoLive(reason);
      if (date === undefined) continue;
      skipped += count;
      if (goLive === undefined || date > goLive) goLive = date;
    }
    if (goLive === undefined) continue;
    found.push({
      sourceId: source.id,
      skipped,
      goLive,
      message:
        `sources[${source.id}] has no go-live (neither poll.since nor poll.sinceDays), but the ledger holds ${skipped} ` +
        `row(s) skipped as before its go-live ${goLive}: each is now sent to OpenCRVS as a new (late) declaration ` +
        'when its record is read again (a change at the source, a notification, sync --once --since). If poll.since ' +
        `was removed by mistake, set it back to ${goLive} and restart before the next poll; if a back-fill is meant, ` +
        'nothing to do (docs/runbook.md, "Go-live removed")',
    });
  }
  return found;
}
