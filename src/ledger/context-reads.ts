// The records a row's last mapping reached other than through a search keyed on its subject (migration 023):
// the mother's own Patient, the maternity encounter. A change to one names no subject, so a poll asks here
// for the rows that read it, to map their subjects again (sources/pipeline.ts, subjectsOf). Written with the
// reading it comes from, in the transaction that records it (record.ts).
import type { Db } from './db.js';
import { DISMISSED_PREFIX } from './types.js';

/** A row that read a record, as the pipeline maps it again. */
export interface ContextReader {
  eventType: string;
  subjectKey: string;
  mappingId: string | null;
}

/**
 * Refs kept per row at most, whatever a caller passes: the mapping keeps no more than its read budget (50
 * by default, MappingSet.contextReads), so this only bounds a caller that did not.
 */
export const MAX_CONTEXT_READS_PER_ROW = 200;

/**
 * The states the window applies to: a row settled (delivered, or skipped). One still to be sent or dead
 * (waiting, perhaps for the very correction of its mother's record that makes it valid, or that OpenCRVS
 * refused it for) stays a reader however long it waits: updated_at does not move while it waits.
 */
const SETTLED_STATES = "('delivered', 'delivered-pending', 'skipped')";

/**
 * The rows that read a record: an index seek on (source_id, ref), the rows by id (a test reads its plan), in
 * row order without a sort, so the caller stops after its limit having read no further. No `LIMIT @limit`:
 * SQLite (3.53, as better-sqlite3 builds it) plans with a bound LIMIT's value, so a statement binding one
 * is compiled again at each run: ~15 µs a call where the seek takes ~2, and a poll calls it for each record
 * it reads (sources/pipeline.ts, subjectsOf), 12,000 times for 2,000 births of the e2e bench.
 * Not a row an operator dismissed (isDismissed: the skip reason is the only mark a dismissal leaves): mapped
 * again for a change of the mother's Patient (her address, years on), its payload differs, and record.ts
 * would requeue it, sending the duplicate the person dismissed. A change its own records show (the child,
 * a record naming it) still brings it back. A dead row is a reader: the change may be what fixes it. Nor a
 * settled row untouched for CONTEXT_READ_WINDOW_DAYS, as for the DHIS2 mothers' reading (refs): a mother's move
 * years after a birth is no correction of it, and would ask an operator to change the registration.
 */
export const CONTEXT_READERS_SQL = `
  SELECT r.event_type AS eventType, r.subject_key AS subjectKey, r.mapping_id AS mappingId
  FROM context_reads c JOIN ledger_rows r ON r.id = c.row_id
  WHERE c.source_id = @sourceId AND c.ref = @ref
    AND NOT (r.state = 'skipped' AND substr(r.skip_reason, 1, ${DISMISSED_PREFIX.length + 1}) = '${DISMISSED_PREFIX}:')
    AND (r.updated_at >= @since OR r.state NOT IN ${SETTLED_STATES})
  ORDER BY c.row_id`;

/**
 * How long a row's context reads are asked for after it last changed (ledger_rows.updated_at: recorded,
 * mapped again, sent, or its state changed): a year. A poll that reads them in batches (the DHIS2 mothers)
 * asks its source for every ref in every reading, so without a bound its cost grows with the ledger's whole
 * history. A row delivered or skipped and untouched for a year: a correction to its mother alone no longer
 * maps it again (one still to be sent, or dead, stays: SETTLED_STATES). A change to the child's own record still does, and `sync --once
 * --since DATE` reads it, and her, anew.
 */
export const CONTEXT_READ_WINDOW_DAYS = 365;
const DAY_MS = 86_400_000;

/** The earliest `updated_at` of a settled row whose context reads count at `at` (ms): `at` less the window. */
export function contextReadWindowStart(at: number): number {
  return at - CONTEXT_READ_WINDOW_DAYS * DAY_MS;
}

/**
 * The distinct refs `source_id` read of one type (`prefix` .. `upper`, the prefix's range), after `after` in
 * ref order, read by a row updated since `since` (CONTEXT_READ_WINDOW_DAYS): a range scan of the same index,
 * no sort, each entry's row found by its id (a test reads its plan). Not driven from ledger_rows_updated: a
 * year of rows of every source, joined and sorted in each call (up to 20 a pass), would cost more than one
 * walk of this source's refs a reading. The walk passes the refs of older rows; what DHIS2 is asked no longer
 * grows with them. Nor a row an operator dismissed, as for CONTEXT_READERS_SQL: none of them would be mapped
 * again for her change, so asking DHIS2 for her is a wasted read.
 */
export const CONTEXT_READ_REFS_SQL = `
  SELECT DISTINCT c.ref FROM context_reads c
  WHERE c.source_id = @sourceId AND c.ref > @after AND c.ref >= @prefix AND c.ref < @upper
    AND EXISTS (SELECT 1 FROM ledger_rows r WHERE r.id = c.row_id
      AND NOT (r.state = 'skipped' AND substr(r.skip_reason, 1, ${DISMISSED_PREFIX.length + 1}) = '${DISMISSED_PREFIX}:')
      AND (r.updated_at >= @since OR r.state NOT IN ${SETTLED_STATES}))
  ORDER BY c.ref LIMIT @limit`;

export interface ContextReads {
  /**
   * Makes `refs` (`Type/id`, as `sourceId` read them) the row's set. `fresh`: the row was inserted by this
   * transaction and holds none yet. The same set again (the commonest reading, a record read again unchanged)
   * writes nothing.
   */
  keep(rowId: number, sourceId: string, refs: readonly string[], fresh: boolean): void;
  /**
   * Up to `limit` rows whose set holds `ref` as `sourceId` read it, the oldest first; none dismissed, none
   * untouched for CONTEXT_READ_WINDOW_DAYS.
   */
  readers(sourceId: string, ref: string, limit: number): ContextReader[];
  /**
   * Up to `limit` distinct refs starting with `prefix` (`TrackedEntity/`) that `sourceId` read, after `after`
   * in ref order (a keyset: the last one returned, or '' for the first), by a row updated in the last
   * CONTEXT_READ_WINDOW_DAYS: the records a poll that does not list them reads in batches
   * (sources/dhis2/poller.ts, the mothers). `since` (ms) replaces now less that window: a reading that runs
   * for long asks from when it began, not from each batch's now.
   */
  refs(sourceId: string, prefix: string, after: string, limit: number, since?: number): string[];
}

export function createContextReads(db: Db, now: () => number): ContextReads {
  const current = db.prepare<[number], { ref: string; source_id: string }>(
    'SELECT ref, source_id FROM context_reads WHERE row_id = ?',
  );
  const drop = db.prepare<[number]>('DELETE FROM context_reads WHERE row_id = ?');
  const add = db.prepare<{ rowId: number; ref: string; sourceId: string }>(
    'INSERT OR IGNORE INTO context_reads (row_id, ref, source_id) VALUES (@rowId, @ref, @sourceId)',
  );
  const readers = db.prepare<{ sourceId: string; ref: string; since: number }, ContextReader>(CONTEXT_READERS_SQL);
  const since = () => contextReadWindowStart(now());
  const refs = db
    .prepare<{ sourceId: string; after: string; prefix: string; upper: string; since: number; limit: number }, string>(
      CONTEXT_READ_REFS_SQL,
    )
    .pluck();

  return {
    keep(rowId, sourceId, refs, fresh) {
      const kept = refs.length > MAX_CONTEXT_READS_PER_ROW ? refs.slice(0, MAX_CONTEXT_READS_PER_ROW) : refs;
      if (!fresh) {
        const before = current.all(rowId);
        const wanted = new Set(kept);
        if (before.length === wanted.size && before.every((r) => r.source_id === sourceId && wanted.has(r.ref))) return;
        if (before.length > 0) drop.run(rowId);
      }
      for (const ref of kept) add.run({ rowId, ref, sourceId });
    },
    readers(sourceId, ref, limit) {
      const most = Math.max(0, Math.floor(limit));
      const out: ContextReader[] = [];
      if (most === 0) return out;
      // Leaving the loop resets the statement: the rows past the limit are never read.
      for (const reader of readers.iterate({ sourceId, ref, since: since() })) {
        out.push(reader);
        if (out.length >= most) break;
      }
      return out;
    },
    refs: (sourceId, prefix, after, limit, from) =>
      prefix === ''
        ? []
        : refs.all({
            sourceId,
            after,
            prefix,
            upper: upperOf(prefix),
            since: from ?? since(),
            limit: Math.max(0, Math.floor(limit)),
          }),
  };
}

/** The first string after every string that starts with `prefix` (its last character one code unit up). */
function upperOf(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
