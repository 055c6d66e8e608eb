// The write-back queue (table write_backs, migration 003) on its own connection to the ledger file. Its
// own connection, because the Ledger API is the delivery outbox and knows nothing of write-backs; the
// ledger opens (and migrates) the file first. Nothing here writes ledger_rows: a write-back never
// changes a row's delivery state.
import Database from 'better-sqlite3';

export type WriteBackOutcome = 'written' | 'already' | 'abandoned';
/** A job's state as operators see it: `pending` (not done: due, leased or waiting for its backoff) or its outcome. */
export type WriteBackState = 'pending' | WriteBackOutcome;
export const WRITE_BACK_STATES: readonly WriteBackState[] = ['pending', 'written', 'already', 'abandoned'];

/** What `search()` selects; newest ledger row first, like the ledger's own list. */
export interface WriteBackFilter {
  states?: WriteBackState[];
  sourceId?: string;
  limit?: number;
  offset?: number;
}

export interface WriteBackItem {
  rowId: number;
  sourceId: string;
  trackingId: string;
  /**
   * The tracking ids this job had before it restarted for the current one (the row delivered again after
   * OpenCRVS lost the event), oldest first, at most MAX_EARLIER_TRACKING_IDS: the bridge's own values for
   * this row, which the DHIS2 target replaces where it would leave any other value alone.
   */
  earlierTrackingIds: string[];
  /** Counted at claim time: the attempt now running is included. */
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  /**
   * On a written job (or one the source held already): what the write left beside the id, e.g. another
   * tracking id on the record (migration 029; before it, kept in last_error). Null when there is nothing to say.
   */
  note: string | null;
  outcome: WriteBackOutcome | null;
  doneAt: number | null;
  createdAt: number;
  updatedAt: number;
}

interface SqlItem {
  row_id: number;
  source_id: string;
  tracking_id: string;
  earlier_tracking_ids: string | null;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  note: string | null;
  outcome: string | null;
  done_at: number | null;
  created_at: number;
  updated_at: number;
}

function outcomeOf(value: string | null): WriteBackOutcome | null {
  return value === 'written' || value === 'already' || value === 'abandoned' ? value : null;
}

/** The stored JSON array of earlier tracking ids; anything else (NULL, a damaged value) as none. */
function earlierOf(value: string | null): string[] {
  if (value === null) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}

function toItem(row: SqlItem): WriteBackItem {
  return {
    rowId: row.row_id,
    sourceId: row.source_id,
    trackingId: row.tracking_id,
    earlierTrackingIds: earlierOf(row.earlier_tracking_ids),
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    note: row.note,
    outcome: outcomeOf(row.outcome),
    doneAt: row.done_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * A job as claimDue handed it out. The claim is its lease (nextAttemptAt as claimed), its attempt count
 * and its tracking id: a claim whose lease ran out and that another run or process claimed since (the
 * lease and the count moved), or a job restarted for a new tracking id meanwhile, is no longer this one,
 * and its holder records nothing (as the delivery ledger checks `locked_by` and the attempt).
 */
export type WriteBackClaim = Pick<WriteBackItem, 'rowId' | 'nextAttemptAt' | 'attempts' | 'trackingId'>;

const THIS_CLAIM = `row_id = @rowId AND done_at IS NULL AND next_attempt_at = @leasedUntil AND attempts = @attempts
  AND tracking_id = @trackingId`;

function claimParams(claim: WriteBackClaim) {
  return {
    rowId: claim.rowId,
    leasedUntil: claim.nextAttemptAt,
    attempts: claim.attempts,
    trackingId: claim.trackingId,
  };
}

const MAX_ERROR_LENGTH = 500;
/**
 * Earlier tracking ids a job keeps: each is one more delivery of the row after OpenCRVS lost it, which
 * happens once in a while, not in a loop; the oldest are forgotten past this.
 */
export const MAX_EARLIER_TRACKING_IDS = 20;
/** `search()` without a limit returns at most this many jobs: every read stays bounded. */
const DEFAULT_SEARCH_LIMIT = 100;

export class WriteBackStore {
  private readonly db: Database.Database;
  private readonly stmt;

  /** `readOnly`: for a look at an existing ledger (the `ledger` command), which must write nothing. */
  constructor(path: string, options: { busyTimeoutMs?: number; readOnly?: boolean } = {}) {
    if (path === ':memory:') throw new Error('write-back needs a ledger file (store.path), not an in-memory ledger');
    this.db = new Database(path, options.readOnly ? { readonly: true, fileMustExist: true } : {});
    if (!options.readOnly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
    }
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    const db = this.db;
    this.stmt = {
      // A new tracking id for the same row (a replayed, re-created event) restarts the job, remembering the
      // one it replaces (see enqueue); the same one is a no-op.
      insert: db.prepare(`
        INSERT INTO write_backs (row_id, source_id, tracking_id, next_attempt_at, created_at, updated_at)
        VALUES (@rowId, @sourceId, @trackingId, @now, @now, @now)
        ON CONFLICT (row_id) DO NOTHING`),
      restart: db.prepare(`
        UPDATE write_backs SET tracking_id = @trackingId, earlier_tracking_ids = @earlier, attempts = 0,
          next_attempt_at = @now, last_error = NULL, note = NULL, outcome = NULL, done_at = NULL,
          updated_at = @now
        WHERE row_id = @rowId AND tracking_id = @seenTrackingId`),
      // `LIMIT +?`: a bare bound LIMIT is compiled again at every run (ledger/db.ts).
      due: db.prepare<[number, number], SqlItem>(
        'SELECT * FROM write_backs WHERE done_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at, row_id LIMIT +?',
      ),
      claim: db.prepare(`
        UPDATE write_backs SET attempts = attempts + 1, next_attempt_at = @leaseUntil, updated_at = @now
        WHERE row_id = @rowId AND done_at IS NULL AND next_attempt_at = @seenNextAttemptAt`),
      get: db.prepare<[number], SqlItem>('SELECT * FROM write_backs WHERE row_id = ?'),
      // These three end an attempt, and only while the claim is still this one's (see WriteBackClaim).
      done: db.prepare(`
        UPDATE write_backs SET done_at = @now, outcome = @outcome, last_error = @error, note = @note,
          updated_at = @now
        WHERE ${THIS_CLAIM}`),
      release: db.prepare(`
        UPDATE write_backs SET attempts = attempts - 1, next_attempt_at = @now, updated_at = @now
        WHERE ${THIS_CLAIM}`),
      retry: db.prepare(`
        UPDATE write_backs SET next_attempt_at = @nextAttemptAt, last_error = @error, updated_at = @now
        WHERE ${THIS_CLAIM}`),
      list: db.prepare<[number], SqlItem>('SELECT * FROM write_backs ORDER BY row_id DESC LIMIT ?'),
      waiting: db.prepare<[], { n: number; next: number | null }>(
        'SELECT COUNT(*) AS n, MIN(next_attempt_at) AS next FROM write_backs WHERE done_at IS NULL',
      ),
      // Grouped by the stored columns (outcome is NULL exactly while done_at is), so the index
      // write_backs_outcome (migration 005) covers it instead of a scan of the table.
      counts: db.prepare<[], { source_id: string; outcome: string | null; n: number }>(
        'SELECT source_id, outcome, COUNT(*) AS n FROM write_backs GROUP BY source_id, outcome',
      ),
      // The error is kept: it says why the job was abandoned until the next attempt replaces it.
      requeue: db.prepare(`
        UPDATE write_backs SET attempts = 0, next_attempt_at = @now, outcome = NULL, done_at = NULL, updated_at = @now
        WHERE row_id = @rowId AND outcome = 'abandoned'`),
    };
  }

  /**
   * Idempotent: true when a job was created (or restarted for a new tracking id). A restart keeps the
   * tracking id it replaces among the job's earlier ones: the source may hold it, written by this job.
   */
  enqueue(rowId: number, sourceId: string, trackingId: string, now: number): boolean {
    return this.db
      .transaction(() => {
        if (this.stmt.insert.run({ rowId, sourceId, trackingId, now }).changes === 1) return true;
        const job = this.stmt.get.get(rowId);
        if (!job || job.tracking_id === trackingId) return false;
        const earlier = [
          ...earlierOf(job.earlier_tracking_ids).filter((id) => id !== job.tracking_id && id !== trackingId),
          job.tracking_id,
        ].slice(-MAX_EARLIER_TRACKING_IDS);
        const params = { rowId, trackingId, earlier: JSON.stringify(earlier), now, seenTrackingId: job.tracking_id };
        return this.stmt.restart.run(params).changes === 1;
      })
      .immediate();
  }

  /**
   * Claims up to `limit` jobs due by `dueBy` (default `now`): the attempt is counted and the job leased
   * until `now + leaseMs`, so a process that dies mid-write leaves it to be retried when the lease runs
   * out. A job another process claimed first (its next_attempt_at moved) is not returned.
   */
  claimDue(limit: number, now: number, leaseMs: number, dueBy = now): WriteBackItem[] {
    return this.db
      .transaction(() =>
        this.stmt.due.all(dueBy, limit).flatMap((row) => {
          const claimed = this.stmt.claim.run({
            rowId: row.row_id,
            leaseUntil: now + leaseMs,
            now,
            seenNextAttemptAt: row.next_attempt_at,
          });
          const item = claimed.changes === 1 ? this.stmt.get.get(row.row_id) : undefined;
          return item ? [toItem(item)] : [];
        }),
      )
      .immediate();
  }

  /**
   * The claimed job's outcome, with why it was abandoned (`error`) or what a write left beside the id
   * (`note`). False, and nothing recorded, when the claim is no longer this one.
   */
  done(claim: WriteBackClaim, outcome: WriteBackOutcome, now: number, error?: string, note?: string): boolean {
    const bounded = (text: string | undefined) => (text ? text.slice(0, MAX_ERROR_LENGTH) : null);
    const params = { ...claimParams(claim), outcome, now, error: bounded(error), note: bounded(note) };
    return this.stmt.done.run(params).changes === 1;
  }

  /**
   * Hands a claimed job back as if it had not been claimed: its attempt uncounted, its last error as it
   * was, due again now. For an attempt the bridge cut off itself (stopping, a pass's deadline): the
   * source did not fail it. A job claimed again since, or done, is left alone. True when the job was
   * handed back.
   */
  release(claim: WriteBackClaim, now: number): boolean {
    return this.stmt.release.run({ ...claimParams(claim), now }).changes === 1;
  }

  /** The claimed job due again at `nextAttemptAt`. False, and nothing recorded, when the claim is no longer this one. */
  retry(claim: WriteBackClaim, nextAttemptAt: number, error: string, now: number): boolean {
    const params = { ...claimParams(claim), nextAttemptAt, error: error.slice(0, MAX_ERROR_LENGTH), now };
    return this.stmt.retry.run(params).changes === 1;
  }

  get(rowId: number): WriteBackItem | undefined {
    const row = this.stmt.get.get(rowId);
    return row ? toItem(row) : undefined;
  }

  list(limit = 1000): WriteBackItem[] {
    return this.stmt.list.all(limit).map(toItem);
  }

  /** Jobs by state and source, newest ledger row first (the admin API pages through it with limit + offset). */
  search(filter: WriteBackFilter = {}): WriteBackItem[] {
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    const states = filter.states ?? [];
    if (states.length > 0) {
      // Pending is "not done" (the claim query's own test), not a stored outcome.
      const either: string[] = states.includes('pending') ? ['done_at IS NULL'] : [];
      const outcomes = states.filter((state) => state !== 'pending');
      outcomes.forEach((outcome, i) => {
        params[`o${i}`] = outcome;
      });
      if (outcomes.length > 0) either.push(`outcome IN (${outcomes.map((_, i) => `@o${i}`).join(', ')})`);
      where.push(`(${either.join(' OR ')})`);
    }
    if (filter.sourceId !== undefined) {
      where.push('source_id = @sourceId');
      params.sourceId = filter.sourceId;
    }
    params.limit = Math.max(0, Math.floor(filter.limit ?? DEFAULT_SEARCH_LIMIT));
    params.offset = Math.max(0, Math.floor(filter.offset ?? 0));
    // ORDER BY the primary key walks it backwards and stops at the limit: no sort over the whole table.
    const sql = `SELECT * FROM write_backs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY row_id DESC LIMIT @limit OFFSET @offset`;
    return this.db.prepare<Record<string, string | number>, SqlItem>(sql).all(params).map(toItem);
  }

  /** How many jobs each source has in each state. */
  counts(): Array<{ sourceId: string; state: WriteBackState; count: number }> {
    return this.stmt.counts.all().flatMap((row) => {
      const state = row.outcome === null ? 'pending' : outcomeOf(row.outcome);
      return state ? [{ sourceId: row.source_id, state, count: row.n }] : [];
    });
  }

  /**
   * An abandoned job due again now with a fresh budget (attempts 0), its last error kept until the next
   * attempt. False when the job is not abandoned (pending, written, already, or no such job).
   */
  requeue(rowId: number, now: number): boolean {
    return this.stmt.requeue.run({ rowId, now }).changes === 1;
  }

  /** Jobs not done, and the earliest time one is due. */
  waiting(): { count: number; nextAt: number | undefined } {
    const row = this.stmt.waiting.get();
    return { count: row?.n ?? 0, nextAt: row?.next ?? undefined };
  }

  /**
   * Delivered rows of these sources (accepted, not pending), delivered since `since`, with a tracking id
   * and no write-back job: the jobs a process killed between "delivered" and "enqueued" never created.
   */
  missing(sourceId: string, since: number, limit: number): Array<{ rowId: number; trackingId: string }> {
    return this.db
      .prepare<[string, number, number], { id: number; tracking_id: string }>(
        `SELECT r.id, r.tracking_id FROM ledger_rows r
         WHERE r.source_id = ? AND r.state = 'delivered' AND r.tracking_id IS NOT NULL
           AND r.delivered_at >= ? AND NOT EXISTS (SELECT 1 FROM write_backs w WHERE w.row_id = r.id)
         ORDER BY r.id LIMIT ?`,
      )
      .all(sourceId, since, limit)
      .map((r) => ({ rowId: r.id, trackingId: r.tracking_id }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
