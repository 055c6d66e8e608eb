// The delivery worker's recheck (delivery's SourceRecheck) over every source that can evaluate a subject
// again: rows that waited are read and evaluated at their source once more, just before their first
// send, as a notification about them would be. What a source's runner records (a withdrawal, a new
// payload, a skip) goes through that source's pipeline; the worker sends what is left.
import { RecheckNotReady } from '../delivery/types.js';
import type { LedgerRow } from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';

/**
 * Evaluates these subjects (`Patient/1`, `TrackedEntity/x`) of one source again and records the outcome.
 * A subject that cannot be read or evaluated (its context searches timed out, say) fails the call, but
 * only after what the other subjects' reads show is recorded: the worker then sends the rows as they
 * stand, and a withdrawal or correction of a subject read fine must be in the ledger by then, not lost
 * with the batch. The same across sources: each is rechecked, whichever fails.
 */
export type SubjectRecheck = (subjectKeys: string[]) => Promise<void>;

export function sourcesRecheck(
  bySource: ReadonlyMap<string, SubjectRecheck>,
  ledger: { get(id: number): LedgerRow | undefined },
  logger: Logger,
): { appliesTo(row: LedgerRow): boolean; run(rows: LedgerRow[]): Promise<void> } {
  const log = logger.child({ component: 'recheck' });
  return {
    appliesTo: (row) => bySource.has(row.sourceId),
    async run(rows) {
      const subjects = new Map<string, Set<string>>();
      for (const row of rows) {
        const set = subjects.get(row.sourceId) ?? new Set<string>();
        set.add(row.subjectKey);
        subjects.set(row.sourceId, set);
      }
      // Side by side, and every one to its end: one source that fails (an EMR down) must neither keep
      // another's rows from being read (they would go out unchecked with the fallback) nor delay them.
      const sourceIds = [...subjects.keys()];
      const settled = await Promise.allSettled(
        [...subjects].map(async ([sourceId, keys]) => bySource.get(sourceId)?.([...keys])),
      );
      const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
      const notReady = new Map<string, RecheckNotReady>();
      sourceIds.forEach((sourceId, i) => {
        const outcome = settled[i];
        if (outcome?.status === 'rejected' && outcome.reason instanceof RecheckNotReady)
          notReady.set(sourceId, outcome.reason);
      });
      // The rows that wait: a not-ready source's, or only its named subjects' (RecheckNotReady.subjectKeys).
      const waits = (row: LedgerRow): boolean => {
        const reason = notReady.get(row.sourceId);
        return reason !== undefined && (reason.subjectKeys?.includes(row.subjectKey) ?? true);
      };
      // Counts only: which records were withdrawn is in the ledger, not in logs.
      const withdrawn = rows.filter((row) => ledger.get(row.id)?.state === 'skipped').length;
      log.info(
        { rows: rows.length, withdrawn, failedSources: failures.length },
        'waiting rows rechecked at their source before sending',
      );
      if (failures.length === 0) return;
      // Rows that must wait (RecheckNotReady: a proxy's page, routing not resolved) are that source's alone:
      // another source's rows go, rechecked (or as recorded, if their source failed otherwise).
      const first = failures.find((err) => err instanceof RecheckNotReady);
      if (!first) throw failures[0];
      throw new RecheckNotReady(first.message, {
        rowIds: rows.filter(waits).map((row) => row.id),
        otherFailure:
          failures.find((err) => !(err instanceof RecheckNotReady)) ??
          [...notReady.values()].find((reason) => reason.otherFailure !== undefined)?.otherFailure,
      });
    },
  };
}
