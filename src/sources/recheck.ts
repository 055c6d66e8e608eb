// The delivery worker's recheck (delivery's SourceRecheck) over every source that can evaluate a subject
// again: rows that waited are read and evaluated at their source once more, just before their first
// send, as a notification about them would be. What a source's runner records (a withdrawal, a new
// payload, a skip) goes through that source's pipeline; the worker sends what is left.
import type { LedgerRow } from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';

/**
 * Evaluates these subjects (`Patient/1`, `TrackedEntity/x`) of one source again and records the outcome.
 * A subject that cannot be read fails the call, but only after what the other subjects' reads show is
 * recorded: the worker then sends the rows as they stand, and a withdrawal or correction of a subject
 * read fine must be in the ledger by then, not lost with the batch.
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
      for (const [sourceId, keys] of subjects) await bySource.get(sourceId)?.([...keys]);
      // Counts only: which records were withdrawn is in the ledger, not in logs.
      const withdrawn = rows.filter((row) => ledger.get(row.id)?.state === 'skipped').length;
      log.info({ rows: rows.length, withdrawn }, 'waiting rows rechecked at their source before sending');
    },
  };
}
