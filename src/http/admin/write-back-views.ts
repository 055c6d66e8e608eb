// What the admin API shows of a write-back job. All of it is operational data: ledger row and source ids,
// the OpenCRVS tracking id (not personal data), counts, times, and the last error, which the write-back
// targets build from the call's name, HTTP status, resource references and DHIS2 error codes only, never
// a response body (see src/sources/writeback/types.ts); the store keeps at most 500 characters of it.
import type { WriteBackJobRecord, WriteBackQueueView, WriteBackStateName } from './types.js';

export interface WriteBackJobView {
  /** The ledger row (its detail: `GET /admin/api/events/{rowId}`). */
  rowId: number;
  sourceId: string;
  outcome: WriteBackStateName;
  /** Attempts in the current budget, counted when an attempt starts. */
  attempts: number;
  /** When a pending job runs next; null once it is done. */
  nextAttemptAt: number | null;
  /** Why the job failed or was abandoned; null once written (see note). */
  lastError: string | null;
  /**
   * On a written job (or one the source held already): what the write left beside the id, e.g. another
   * tracking id of the FHIR identifier system (a duplicate registration?). Null when there is nothing to say.
   */
  note: string | null;
  /** Where the id is written (the source's writeBack settings now); null when it has none configured. */
  target: string | null;
  /** The tracking id the job writes (written, once done). */
  trackingId: string;
  /**
   * The tracking ids the job had before (the row delivered again under a new one), oldest first, at most
   * 20: they may be on the record, written by this job; the DHIS2 target replaces them.
   */
  earlierTrackingIds: string[];
  createdAt: number;
  updatedAt: number;
  doneAt: number | null;
}

export interface WriteBackSummary {
  /** False when no source writes tracking ids back (nothing else is filled in then). */
  enabled: boolean;
  /** Sources with write-back configured. */
  sources: string[];
  byOutcome: Record<WriteBackStateName, number>;
  counts: Array<{ sourceId: string; outcome: WriteBackStateName; count: number }>;
}

export function writeBackView(job: WriteBackJobRecord): WriteBackJobView {
  const outcome = job.doneAt === null ? 'pending' : (job.outcome ?? 'pending');
  return {
    rowId: job.rowId,
    sourceId: job.sourceId,
    outcome,
    attempts: job.attempts,
    // A done job keeps the lease time of its last claim in the table: meaningless to an operator.
    nextAttemptAt: outcome === 'pending' ? job.nextAttemptAt : null,
    lastError: job.lastError,
    note: job.note ?? null,
    target: job.target ?? null,
    trackingId: job.trackingId,
    earlierTrackingIds: [...(job.earlierTrackingIds ?? [])],
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    doneAt: job.doneAt,
  };
}

function zeroes(): Record<WriteBackStateName, number> {
  return { pending: 0, written: 0, already: 0, abandoned: 0 };
}

export function writeBackSummary(queue: WriteBackQueueView | undefined): WriteBackSummary {
  if (!queue) return { enabled: false, sources: [], byOutcome: zeroes(), counts: [] };
  const byOutcome = zeroes();
  const counts = queue.counts().map(({ sourceId, state, count }) => ({ sourceId, outcome: state, count }));
  for (const { outcome, count } of counts) byOutcome[outcome] += count;
  return { enabled: true, sources: queue.sourceIds(), byOutcome, counts };
}
