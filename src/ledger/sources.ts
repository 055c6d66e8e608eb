// The source ids the ledger holds history under, and the two ways an operator accounts for one that is no
// longer configured: retired (removed for good) or renamed (the history moves to the new id). A source's
// transactionIds are derived from its id (transaction-ids.ts), so a source that reappears under another id
// without its history sends every record again as new OpenCRVS events.

import type { Db } from './db.js';
import { IN_DOUBT_ATTEMPT_SQL } from './in-doubt.js';
import { transactionIdsFor } from './transaction-ids.js';

/** What the ledger holds under one source id. */
export interface SourceHistory {
  rows: number;
  cursors: number;
  /** Notifications stored for it, processed or not. */
  notifications: number;
  writeBacks: number;
  /** Meta keys scoped to it (see sourceMetaKeys). */
  metaKeys: number;
}

export interface SourceRenameResult {
  moved: SourceHistory;
  /**
   * Dead rows refused because their transactionId was another OpenCRVS client's (`foreign-event`), or whose
   * event another client notified (`foreign-notify`), given the ids of the new source id: OpenCRVS holds
   * nothing of theirs, so `replay --dead` can send them now.
   */
  newTransactionIds: number;
}

export interface LedgerSources {
  /** Source ids with rows, cursors or unprocessed notifications, sorted. */
  recordedIds(): string[];
  history(sourceId: string): SourceHistory;
  /** Retired source ids and when they were retired (ms since the epoch). */
  retired(): Map<string, number>;
  /** Marks `sourceId` removed for good: its history stays, and a start without it is not refused. */
  retire(sourceId: string, now: number): void;
  /**
   * Moves everything recorded under `from` to `to`, rows keeping their transactionIds (nothing is sent
   * again). Throws SourceIdError when `from` holds nothing or `to` already has rows or cursors.
   */
  rename(from: string, to: string, now: number): SourceRenameResult;
}

/** A rename or retirement that cannot be done as asked; the message says why and what to do. */
export class SourceIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceIdError';
  }
}

/** The meta key that retires a source id; the value is when (ms). */
export const RETIRED_META_PREFIX = 'source.retired:';

/**
 * The ledger's convention for meta keys that belong to a source: the id is the key's second
 * colon-separated part (`writeBack.enabledAt:<id>`, `subscription:<id>:eventNumber:…`). A rename moves
 * every such key, so a part of the bridge that keeps per-source state in meta follows this shape.
 */
export function sourceMetaKeys(keys: readonly string[], sourceId: string): string[] {
  return keys.filter((key) => key.split(':')[1] === sourceId);
}

/** The dead rows whose transactionId another OpenCRVS client had used (delivery/attempt.ts). */
const FOREIGN_EVENT_KIND = 'foreign-event';
/** The dead rows whose own event another OpenCRVS client's NOTIFY went into (delivery/attempt.ts). */
const FOREIGN_NOTIFY_KIND = 'foreign-notify';

export function createLedgerSources(db: Db): LedgerSources {
  // A loose index scan over (source_id, …): one index seek per distinct id, whatever the number of rows.
  const rowIds = db
    .prepare<[], string>(`
      WITH RECURSIVE ids(id) AS (
        SELECT (SELECT MIN(source_id) FROM ledger_rows)
        UNION ALL
        SELECT (SELECT MIN(source_id) FROM ledger_rows WHERE source_id > ids.id) FROM ids WHERE ids.id IS NOT NULL
      )
      SELECT id FROM ids WHERE id IS NOT NULL`)
    .pluck();
  const cursorIds = db.prepare<[], string>('SELECT DISTINCT source_id FROM cursors').pluck();
  const waitingInboxIds = db
    .prepare<[], string>('SELECT DISTINCT source_id FROM inbox WHERE processed_at IS NULL')
    .pluck();
  const count = (table: string) =>
    db.prepare<[string], number>(`SELECT COUNT(*) FROM ${table} WHERE source_id = ?`).pluck();
  const counts = {
    rows: count('ledger_rows'),
    cursors: count('cursors'),
    notifications: count('inbox'),
    writeBacks: count('write_backs'),
  };
  const metaKeys = db.prepare<[], string>('SELECT key FROM meta').pluck();
  // The prefix holds no LIKE wildcard ('_' or '%'); what follows it is matched by the '%'.
  const retiredKeys = db.prepare<[], { key: string; value: string }>(
    `SELECT key, value FROM meta WHERE key LIKE '${RETIRED_META_PREFIX}%'`,
  );
  const setMeta = db.prepare(`
    INSERT INTO meta (key, value, updated_at) VALUES (@key, @value, @now)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);
  const deleteMeta = db.prepare('DELETE FROM meta WHERE key = ?');
  const renameMeta = db.prepare('UPDATE meta SET key = @to, updated_at = @now WHERE key = @from');
  const move = (table: string) => db.prepare(`UPDATE ${table} SET source_id = @to WHERE source_id = @from`);
  const moves = [
    move('ledger_rows'),
    move('cursors'),
    move('inbox'),
    move('write_backs'),
    move('slow_records'),
    // What the source read for its rows (migration 023): a poll under the new id asks by it.
    move('context_reads'),
  ];
  // Slow records' strikes (slow-records.ts) move with the source; any under `to` are of a source that
  // recorded nothing, and would collide with the moved ones.
  const dropStrikes = db.prepare<[string]>('DELETE FROM slow_records WHERE source_id = ?');
  // `foreign-event`: no event, and no NOTIFY in doubt (a single call answered with another client's event
  // is refused only when that event holds none of the row's: opencrvs/ownership.ts). `foreign-notify`: the
  // row's event holds another client's NOTIFY and, when the row went dead, none of the row's, and takes no
  // other: its earlier NOTIFYs in doubt were not stored, and the event is forgotten with the old ids.
  const foreignRows = db.prepare<[string], { id: number; event_type: string; subject_key: string }>(`
    SELECT id, event_type, subject_key FROM ledger_rows r
    WHERE source_id = ? AND state = 'dead' AND (
      (last_error_kind = '${FOREIGN_EVENT_KIND}' AND event_id IS NULL
        AND NOT EXISTS (SELECT 1 FROM ledger_attempts a WHERE a.row_id = r.id AND ${IN_DOUBT_ATTEMPT_SQL}))
      OR last_error_kind = '${FOREIGN_NOTIFY_KIND}')`);
  const newIds = db.prepare(`
    UPDATE ledger_rows SET base_transaction_id = @base, create_transaction_id = @create,
      notify_transaction_id = @notify, requeues = 0, event_id = NULL, tracking_id = NULL, updated_at = @now
    WHERE id = @id`);

  const history = (sourceId: string): SourceHistory => ({
    rows: counts.rows.get(sourceId) ?? 0,
    cursors: counts.cursors.get(sourceId) ?? 0,
    notifications: counts.notifications.get(sourceId) ?? 0,
    writeBacks: counts.writeBacks.get(sourceId) ?? 0,
    metaKeys: sourceMetaKeys(metaKeys.all(), sourceId).filter((key) => !key.startsWith(RETIRED_META_PREFIX)).length,
  });

  const rename = db.transaction((from: string, to: string, now: number): SourceRenameResult => {
    if (from === to) throw new SourceIdError(`"${from}" is already the source's id`);
    const moved = history(from);
    if (moved.rows + moved.cursors + moved.notifications + moved.writeBacks + moved.metaKeys === 0)
      throw new SourceIdError(`the ledger holds nothing under source id "${from}"`);
    const onto = history(to);
    if (onto.rows + onto.cursors > 0)
      throw new SourceIdError(
        `source id "${to}" already has history in the ledger (${onto.rows} events, ${onto.cursors} cursors): ` +
          'renaming onto it would merge two sources; choose an id the ledger does not hold',
      );
    // Rows that died on another client's transactionId or event hold nothing in OpenCRVS: they take the
    // ids of their new key, which no other bridge uses once `to` is unique, and a replay sends them. Not a
    // row with a NOTIFY (or single call) that may be in OpenCRVS: it was answered as this bridge's once,
    // so the "other client" is this bridge's own earlier one (opencrvs.previousClientIds), and new ids
    // would register the birth a second time.
    const foreign = foreignRows.all(from);
    for (const row of foreign) {
      const ids = transactionIdsFor(to, row.event_type, row.subject_key);
      newIds.run({ id: row.id, base: ids.base, create: ids.create, notify: ids.notify, now });
    }
    dropStrikes.run(to);
    for (const statement of moves) statement.run({ from, to });
    deleteMeta.run(`${RETIRED_META_PREFIX}${from}`);
    deleteMeta.run(`${RETIRED_META_PREFIX}${to}`);
    const keys = metaKeys.all();
    for (const key of sourceMetaKeys(keys, from)) {
      const parts = key.split(':');
      parts[1] = to;
      const target = parts.join(':');
      // What `to` holds is a source that never recorded anything (no rows, no cursors): the history wins.
      deleteMeta.run(target);
      renameMeta.run({ from: key, to: target, now });
    }
    return { moved, newTransactionIds: foreign.length };
  });

  return {
    recordedIds: () => [...new Set([...rowIds.all(), ...cursorIds.all(), ...waitingInboxIds.all()])].sort(),
    history,
    retired: () =>
      new Map(retiredKeys.all().map((r) => [r.key.slice(RETIRED_META_PREFIX.length), Number(r.value)] as const)),
    retire: (sourceId, now) => {
      setMeta.run({ key: `${RETIRED_META_PREFIX}${sourceId}`, value: String(now), now });
    },
    rename: (from, to, now) => rename.immediate(from, to, now),
  };
}
