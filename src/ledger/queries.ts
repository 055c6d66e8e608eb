// Reading the ledger (CLI, admin UI, health), cursors, meta, replay and the payload purge.
import type { Db } from './db.js';
import { QUEUED_NOW } from './in-doubt.js';
import { type SqlAttemptRow, type SqlLedgerRow, toAttemptRow, toLedgerRow } from './rows.js';
import { NEXT_NOTIFY_GENERATION } from './transaction-ids.js';
import {
  type AttemptRow,
  DISMISSED_PREFIX,
  type DismissResult,
  HOLD_META_KEY,
  type HoldState,
  isDismissed,
  LEDGER_STATES,
  type LedgerRow,
  type LedgerState,
  type ListFilter,
  type ReplayResult,
  type UndismissResult,
} from './types.js';

/** `list()` without a limit returns at most this many rows: every read stays bounded. */
export const DEFAULT_LIST_LIMIT = 1000;

export interface Queries {
  get(id: number): LedgerRow | undefined;
  findByKey(sourceId: string, eventType: string, subjectKey: string): LedgerRow | undefined;
  list(filter: ListFilter): LedgerRow[];
  counts(): Array<{ state: LedgerState; eventType: string; count: number }>;
  oldestWaitingQueuedAt(): number | undefined;
  deadExcept(ids: readonly number[]): number;
  attempts(id: number): AttemptRow[];
  getCursor(sourceId: string, name: string): string | undefined;
  cursorMovedAt(sourceId: string, name: string): number | undefined;
  firstSeenAt(sourceId: string): number | undefined;
  skippedReasons(sourceId: string, containing: string): Array<{ reason: string; count: number }>;
  setCursor(sourceId: string, name: string, value: string, now: number): void;
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string | null, now: number): void;
  getHold(): HoldState | undefined;
  replay(ids: number[] | 'dead', now: number): ReplayResult;
  retryNow(ids: readonly number[], now: number): number[];
  dismiss(ids: number[], reason: string, now: number): DismissResult;
  undismiss(ids: number[], now: number): UndismissResult;
  purgePayloads(cutoff: number, limit: number): number;
  mappingWarnings(id: number): string[];
  setMappingWarnings(id: number, warnings: readonly string[]): void;
  ownerOf(sourceId: string, others: readonly string[], eventType: string, subjectKey: string): string | undefined;
  readBy(id: number): string | undefined;
  noteReadBy(id: number, sourceId: string): void;
}

/** At most this many warnings per row, each cut to MAX_WARNING_LENGTH: a mapping cannot fill the ledger. */
const MAX_WARNINGS = 20;
const MAX_WARNING_LENGTH = 300;

function isState(value: string): value is LedgerState {
  return (LEDGER_STATES as readonly string[]).includes(value);
}

/**
 * The ids of the rows whose subject is @find, through the natural key (source_id, event_type, subject_key):
 * one seek per source and event type the ledger holds, which are found by a loose scan (a seek each), so
 * no index of the subject alone is needed (migration 031 dropped it: one index entry less per recorded
 * event). CROSS JOIN keeps the few pairs as the outer loop; left to itself SQLite walked the whole key.
 */
const SUBJECT_ROWS_SQL = `WITH RECURSIVE
    src(s) AS (
      SELECT MIN(source_id) FROM ledger_rows
      UNION ALL SELECT (SELECT MIN(source_id) FROM ledger_rows WHERE source_id > src.s) FROM src WHERE src.s IS NOT NULL),
    pairs(s, e) AS (
      SELECT s, (SELECT MIN(event_type) FROM ledger_rows WHERE source_id = src.s) FROM src WHERE src.s IS NOT NULL
      UNION ALL SELECT s, (SELECT MIN(event_type) FROM ledger_rows WHERE source_id = pairs.s AND event_type > pairs.e)
        FROM pairs WHERE pairs.e IS NOT NULL)
    SELECT r.id FROM pairs k CROSS JOIN ledger_rows r
    WHERE k.e IS NOT NULL AND r.source_id = k.s AND r.event_type = k.e AND r.subject_key = @find`;

/**
 * The WHERE term of `ListFilter.find`. A reference is matched exactly, through the natural key (the
 * subject: SUBJECT_ROWS_SQL) and the lookup indexes of migration 006 (the source resource, the tracking ID). A bare id is compared with the id part of each key (keys are `Type/id`, and ids hold no
 * '/'): exact and case-sensitive like FHIR ids, but it reads the table, which is fine for an operator's
 * one-off lookup. A tracking ID is OpenCRVS's, all capitals and digits (`[0-9A-Z]{6}` in v2, capitals in
 * v1 too), read aloud or typed from a certificate in any case: matched as given or in capitals, both
 * through the tracking index.
 */
/** `emr:Patient/1`, as the ledger table prints a row's source: that source, and that reference. */
const SOURCE_PREFIXED = /^([A-Za-z0-9_.-]+):([A-Z][A-Za-z]+\/.+)$/;

/** `#19`, as `sync` and the hold messages name a ledger row. */
const ROW_ID = /^#(\d{1,15})$/;

function findClause(text: string, params: Record<string, string | number>): string {
  params.find = text.trim();
  const rowId = ROW_ID.exec(params.find);
  if (rowId?.[1]) {
    params.findRowId = Number(rowId[1]);
    return 'id = @findRowId';
  }
  const prefixed = SOURCE_PREFIXED.exec(params.find);
  if (prefixed?.[1] && prefixed[2]) {
    params.findSource = prefixed[1];
    params.find = prefixed[2];
    // The source kept out of the index choice (`+`): by it, the planner read every row of the source.
    return `((id IN (${SUBJECT_ROWS_SQL}) OR source_ref = @find) AND +source_id = @findSource)`;
  }
  if (params.find.includes('/')) return `(id IN (${SUBJECT_ROWS_SQL}) OR source_ref = @find OR tracking_id = @find)`;
  params.findTracking = params.find.toUpperCase();
  const idPart = (column: string) => `substr(${column}, instr(${column}, '/') + 1) = @find`;
  return `(${idPart('subject_key')} OR ${idPart('source_ref')} OR tracking_id IN (@find, @findTracking))`;
}

/**
 * One chunk of the payload purge, by its own partial index: left to itself SQLite took the state index and
 * read every delivered row's delivered_at (0.6 s at a million rows, every 10 minutes). At most @limit rows:
 * a ledger never purged before (or a retention lowered) purged 210,600 payloads in one statement, which
 * held the event loop 2.4 s and grew the WAL to 300 MB in that one transaction.
 */
export const PURGE_SQL = `
  UPDATE ledger_rows SET payload = NULL WHERE id IN (
    SELECT id FROM ledger_rows INDEXED BY ledger_rows_purge
    WHERE payload IS NOT NULL AND state IN ('delivered', 'delivered-pending') AND delivered_at <= @cutoff
    LIMIT @limit)`;

/**
 * A time bound (`since`, `until`) met by fewer rows than this is read through the index on the last
 * update (migration 021): at most this many rows looked up and sorted by id, a few milliseconds. One met
 * by more is left to the walk newest first, which a wide bound does not make long: the newest rows meet it.
 */
export const TIME_INDEX_MAX_ROWS = 1000;

/** The time bound and the cursor, as both the probe and the list read them. */
function timeTerms(filter: ListFilter, params: Record<string, string | number>, column: string): string[] {
  const where: string[] = [];
  if (filter.since !== undefined) {
    where.push(`${column} >= @since`);
    params.since = filter.since;
  }
  if (filter.until !== undefined) {
    where.push(`${column} <= @until`);
    params.until = filter.until;
  }
  if (filter.before !== undefined) {
    where.push('id < @before');
    params.before = filter.before;
  }
  return where;
}

/**
 * How many rows (up to TIME_INDEX_MAX_ROWS) the filter's time bound holds below its cursor, from the index
 * alone (it carries the row id): whether `list()` reads the bound through that index.
 */
export function timeProbeQuery(filter: ListFilter): { sql: string; params: Record<string, string | number> } {
  const params: Record<string, string | number> = { cap: TIME_INDEX_MAX_ROWS };
  const where = timeTerms(filter, params, 'updated_at');
  const sql = `SELECT COUNT(*) FROM (SELECT 1 FROM ledger_rows INDEXED BY ledger_rows_updated
    WHERE ${where.join(' AND ')} LIMIT @cap)`;
  return { sql, params };
}

/** The newest row (the largest id) in the filter's time bound, below its cursor, from the index alone. */
export function timeNewestQuery(filter: ListFilter): { sql: string; params: Record<string, string | number> } {
  const params: Record<string, string | number> = {};
  const where = timeTerms(filter, params, 'updated_at');
  const sql = `SELECT MAX(id) FROM ledger_rows INDEXED BY ledger_rows_updated WHERE ${where.join(' AND ')}`;
  return { sql, params };
}

/**
 * `list()`'s statement. With a lookup (`find`) only its indexes are to be used: without statistics SQLite
 * may prefer the state index and walk every delivered row, so a unary + keeps the other columns' indexes
 * out of the plan. Without one, a state filter reads (state, id) newest first (migration 010), the source
 * filtering what it reads as before: a state asked for (dead, failed) is mostly the rarer of the two, and
 * walking a large source for its few dead rows would read the whole source. A source alone reads
 * (source_id, id) newest first (migration 020). Neither is ever the natural key (source_id, event_type,
 * subject_key), which sorts every row of the source to return the newest page. `byTime`: a time bound
 * few rows meet is read through its own index (migration 021) instead, its rows sorted by id; `upTo`: the
 * newest row in a bound many meet, where the walk starts (an `until` is met by the oldest rows). `before`
 * (the cursor) starts any of these walks at that id, where `offset` reads and drops the rows before.
 */
export function listQuery(
  filter: ListFilter,
  options: { byTime?: boolean; upTo?: number } = {},
): { sql: string; params: Record<string, string | number> } {
  const where: string[] = [];
  const params: Record<string, string | number> = {};
  const by = (column: string) => (filter.find === undefined ? column : `+${column}`);
  if (filter.find !== undefined) where.push(findClause(filter.find, params));
  if (filter.states && filter.states.length > 0) {
    const names = filter.states.map((state, i) => {
      params[`s${i}`] = state;
      return `@s${i}`;
    });
    where.push(`${by('state')} IN (${names.join(', ')})`);
  }
  // No index: read as the walk goes (a listing is bounded by its limit; such rows are few).
  if (filter.updatedAfterNotification) where.push('updates_after_notification > 0');
  if (filter.eventType !== undefined) {
    where.push(`${by('event_type')} = @eventType`);
    params.eventType = filter.eventType;
  }
  if (filter.sourceId !== undefined) {
    const stated = filter.find !== undefined || (filter.states !== undefined && filter.states.length > 0);
    where.push(`${stated ? '+' : ''}source_id = @sourceId`);
    params.sourceId = filter.sourceId;
  }
  // Through the index on the last update only when told (byTime): else `+` keeps it out of the plan.
  where.push(...timeTerms(filter, params, options.byTime ? 'updated_at' : '+updated_at'));
  if (options.upTo !== undefined) {
    where.push('id <= @upTo');
    params.upTo = options.upTo;
  }
  params.limit = Math.max(0, Math.floor(filter.limit ?? DEFAULT_LIST_LIMIT));
  params.offset = Math.max(0, Math.floor(filter.offset ?? 0));
  const table = options.byTime ? 'ledger_rows INDEXED BY ledger_rows_updated' : 'ledger_rows';
  const sql = `SELECT * FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY id DESC LIMIT @limit OFFSET @offset`;
  return { sql, params };
}

/**
 * The oldest waiting row's queued_at: the first entry of the due rows' index (migration 028), and the rows
 * being delivered (a few per worker) through ledger_rows_state_id, ~2 µs in all. The index is named: without
 * statistics SQLite prefers ledger_rows_state_id (state, id), whose entries lack queued_at, and read every
 * waiting row from the table, ~40 ms at 45,000 waiting (an outage). Its WHERE is the index's own, as SQLite
 * uses a partial index only for a query that implies it. MIN() of no rows is NULL, and MIN() skips a NULL.
 */
export const OLDEST_WAITING_SQL = `SELECT MIN(at) FROM (
    SELECT MIN(queued_at) AS at FROM ledger_rows INDEXED BY ledger_rows_waiting_queued WHERE state IN ('pending', 'failed')
    UNION ALL
    SELECT MIN(queued_at) FROM ledger_rows INDEXED BY ledger_rows_state_id WHERE state = 'delivering')`;

export function createQueries(db: Db): Queries {
  const byId = db.prepare<[number], SqlLedgerRow>('SELECT * FROM ledger_rows WHERE id = ?');
  const byKey = db.prepare<[string, string, string], SqlLedgerRow>(
    'SELECT * FROM ledger_rows WHERE source_id = ? AND event_type = ? AND subject_key = ?',
  );
  const counts = db.prepare<[], { state: string; event_type: string; n: number }>(
    'SELECT state, event_type, COUNT(*) AS n FROM ledger_rows GROUP BY state, event_type ORDER BY state, event_type',
  );
  const oldestWaiting = db.prepare<[], number | null>(OLDEST_WAITING_SQL).pluck();
  const attempts = db.prepare<[number], SqlAttemptRow>('SELECT * FROM ledger_attempts WHERE row_id = ? ORDER BY id');
  const getCursor = db.prepare<[string, string], { value: string }>(
    'SELECT value FROM cursors WHERE source_id = ? AND name = ?',
  );
  const cursorMovedAt = db.prepare<[string, string], { updated_at: number }>(
    'SELECT updated_at FROM cursors WHERE source_id = ? AND name = ?',
  );
  // The source's first row by id (the ledger_rows_source_id index): one index step, however many it has.
  const firstSeenAt = db
    .prepare<[string], number>('SELECT first_seen_at FROM ledger_rows WHERE source_id = ? ORDER BY id LIMIT 1')
    .pluck();
  // Skip reasons are a handful of sentences per source (the go-live's, a mapping's), so grouped they are few.
  const skippedReasons = db.prepare<[string, string], { reason: string; count: number }>(`
    SELECT skip_reason AS reason, COUNT(*) AS count FROM ledger_rows
    WHERE source_id = ? AND state = 'skipped' AND instr(skip_reason, ?) > 0
    GROUP BY skip_reason`);
  const setCursor = db.prepare(`
    INSERT INTO cursors (source_id, name, value, updated_at) VALUES (@sourceId, @name, @value, @now)
    ON CONFLICT (source_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);
  const getMeta = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const setMeta = db.prepare(`
    INSERT INTO meta (key, value, updated_at) VALUES (@key, @value, @now)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);
  const deleteMeta = db.prepare('DELETE FROM meta WHERE key = ?');
  // Through the (state, id) index, the ids an ephemeral table: a few ms for 10,000 of them.
  const deadExcept = db
    .prepare<[string], number>(
      `SELECT COUNT(*) FROM ledger_rows WHERE state = 'dead' AND id NOT IN (SELECT value FROM json_each(?))`,
    )
    .pluck();
  const deadIds = db.prepare<[], { id: number }>(`SELECT id FROM ledger_rows WHERE state = 'dead' ORDER BY id`);
  const requeue = db.prepare(`
    UPDATE ledger_rows SET state = 'pending', attempts = 0, next_run_at = @now, ${QUEUED_NOW}, rechecked_at = NULL,
      payload = @payload, payload_hash = @payloadHash, office = @office, facility = @facility, updated_at = @now,
      ${NEXT_NOTIFY_GENERATION}
    WHERE id = @id AND state = 'dead'`);
  const purge = db.prepare(PURGE_SQL);
  // A lookup (`find`) has indexes of its own, and matches a row or two.
  const timePlan = (filter: ListFilter): { byTime?: boolean; upTo?: number } => {
    if (filter.find !== undefined || (filter.since === undefined && filter.until === undefined)) return {};
    const probe = timeProbeQuery(filter);
    const count = db.prepare<Record<string, number | string>, number>(probe.sql).pluck().get(probe.params) ?? 0;
    if (count < TIME_INDEX_MAX_ROWS) return { byTime: true };
    // Many rows in the bound. `until` is met by the oldest rows, which a walk newest first reaches last:
    // it starts at the newest row in the bound instead, read from the index alone.
    if (filter.until === undefined) return {};
    const newest = timeNewestQuery(filter);
    const upTo = db.prepare<Record<string, number | string>, number | null>(newest.sql).pluck().get(newest.params);
    return typeof upTo === 'number' ? { upTo } : {};
  };

  const replay = db.transaction((ids: number[] | 'dead', now: number) => {
    const result: ReplayResult = { requeued: [], skipped: [] };
    const targets = ids === 'dead' ? deadIds.all().map((r) => r.id) : ids;
    for (const id of targets) {
      const found = byId.get(id);
      if (!found) {
        result.skipped.push({ id, reason: 'no such row' });
        continue;
      }
      const row = toLedgerRow(found);
      if (row.state !== 'dead') {
        result.skipped.push({ id, reason: `state is ${row.state}, not dead` });
        continue;
      }
      const payload = row.payload;
      if (!payload) {
        result.skipped.push({ id, reason: 'no payload to send: the source record must be mapped again' });
        continue;
      }
      requeue.run({
        id,
        now,
        payload: JSON.stringify(payload),
        payloadHash: row.payloadHash,
        office: payload.office,
        facility: payload.facility ?? null,
      });
      result.requeued.push(id);
    }
    return result;
  });

  // Only the time: the row keeps its attempts, its payload and its notify transactionId generation, so the
  // retry is the one its backoff would have made (an earlier NOTIFY in doubt is resent as it was), sooner.
  // The claim takes a due row in one statement, whoever is first: one attempt, as after the backoff.
  const dueNow = db
    .prepare<{ id: number; now: number }, number>(`
      UPDATE ledger_rows SET next_run_at = @now, updated_at = @now
      WHERE id = @id AND state = 'failed' AND next_run_at > @now RETURNING id`)
    .pluck();
  const retryNow = db.transaction((ids: readonly number[], now: number) =>
    ids.flatMap((id) => dueNow.get({ id, now }) ?? []),
  );

  // The payload goes (nothing will send it); its hash stays, so the same record seen again stays dismissed.
  const dismissDead = db.prepare(`
    UPDATE ledger_rows SET state = 'skipped', skip_reason = @reason, payload = NULL, updated_at = @now
    WHERE id = @id AND state = 'dead'`);
  const dismiss = db.transaction((ids: number[], reason: string, now: number) => {
    const result: DismissResult = { dismissed: [], refused: [] };
    for (const id of ids) {
      const found = byId.get(id);
      if (!found) result.refused.push({ id, reason: 'no such row' });
      else if (found.state !== 'dead') result.refused.push({ id, reason: `state is ${found.state}, not dead` });
      else if (dismissDead.run({ id, now, reason: `${DISMISSED_PREFIX}: ${reason}` }).changes === 1)
        result.dismissed.push(id);
    }
    return result;
  });

  // Dead as dismiss found it: dismiss touched only the state, the reason and the payload.
  const undismissRow = db.prepare(`
    UPDATE ledger_rows SET state = 'dead', skip_reason = NULL, updated_at = @now
    WHERE id = @id AND state = 'skipped' AND skip_reason LIKE @prefix`);
  const undismiss = db.transaction((ids: number[], now: number) => {
    const result: UndismissResult = { restored: [], refused: [] };
    for (const id of ids) {
      const found = byId.get(id);
      if (!found) result.refused.push({ id, reason: 'no such row' });
      else if (found.state !== 'skipped') result.refused.push({ id, reason: `state is ${found.state}, not dismissed` });
      else if (!isDismissed(found.skip_reason))
        result.refused.push({ id, reason: 'skipped by the bridge, not dismissed by an operator' });
      else if (undismissRow.run({ id, now, prefix: `${DISMISSED_PREFIX}:%` }).changes === 1) result.restored.push(id);
    }
    return result;
  });

  const warningsOf = db
    .prepare<[number], string | null>('SELECT mapping_warnings FROM ledger_rows WHERE id = ?')
    .pluck();
  const setWarnings = db.prepare('UPDATE ledger_rows SET mapping_warnings = ? WHERE id = ?');

  // The own source first, then the oldest row among the others (one recorded twice before this rule).
  const ownerByKey = db
    .prepare<[string, string, string, string], string>(
      `SELECT source_id FROM ledger_rows WHERE event_type = ? AND subject_key = ?
         AND source_id IN (SELECT value FROM json_each(?)) ORDER BY source_id = ? DESC, id LIMIT 1`,
    )
    .pluck();
  const readByOf = db.prepare<[number], string | null>('SELECT read_by_source FROM ledger_rows WHERE id = ?').pluck();
  const setReadBy = db.prepare('UPDATE ledger_rows SET read_by_source = ? WHERE id = ? AND read_by_source IS NOT ?');

  return {
    ownerOf: (sourceId, others, eventType, subjectKey) =>
      ownerByKey.get(eventType, subjectKey, JSON.stringify([sourceId, ...others]), sourceId),
    readBy: (id) => readByOf.get(id) ?? undefined,
    noteReadBy: (id, sourceId) => void setReadBy.run(sourceId, id, sourceId),
    mappingWarnings: (id) => {
      const text = warningsOf.get(id);
      if (!text) return [];
      const parsed: unknown = JSON.parse(text);
      return Array.isArray(parsed) ? parsed.filter((w): w is string => typeof w === 'string') : [];
    },
    setMappingWarnings: (id, warnings) => {
      const kept = warnings
        .slice(0, MAX_WARNINGS)
        .map((w) => (w.length > MAX_WARNING_LENGTH ? `${w.slice(0, MAX_WARNING_LENGTH - 1)}…` : w));
      setWarnings.run(kept.length > 0 ? JSON.stringify(kept) : null, id);
    },
    get: (id) => {
      const row = byId.get(id);
      return row ? toLedgerRow(row) : undefined;
    },
    findByKey: (sourceId, eventType, subjectKey) => {
      const row = byKey.get(sourceId, eventType, subjectKey);
      return row ? toLedgerRow(row) : undefined;
    },
    list: (filter) => {
      const { sql, params } = listQuery(filter, timePlan(filter));
      return db.prepare<Record<string, string | number>, SqlLedgerRow>(sql).all(params).map(toLedgerRow);
    },
    deadExcept: (ids) => deadExcept.get(JSON.stringify(ids)) ?? 0,
    oldestWaitingQueuedAt: () => oldestWaiting.get() ?? undefined,
    counts: () =>
      counts.all().flatMap((r) => (isState(r.state) ? [{ state: r.state, eventType: r.event_type, count: r.n }] : [])),
    attempts: (id) => attempts.all(id).map(toAttemptRow),
    getCursor: (sourceId, name) => getCursor.get(sourceId, name)?.value,
    cursorMovedAt: (sourceId, name) => cursorMovedAt.get(sourceId, name)?.updated_at,
    firstSeenAt: (sourceId) => firstSeenAt.get(sourceId) ?? undefined,
    skippedReasons: (sourceId, containing) => skippedReasons.all(sourceId, containing),
    setCursor: (sourceId, name, value, now) => {
      setCursor.run({ sourceId, name, value, now });
    },
    getMeta: (key) => getMeta.get(key)?.value,
    setMeta: (key, value, now) => {
      if (value === null) deleteMeta.run(key);
      else setMeta.run({ key, value, now });
    },
    getHold: () => parseHold(getMeta.get(HOLD_META_KEY)?.value),
    replay: (ids, now) => replay.immediate(ids, now),
    retryNow: (ids, now) => retryNow.immediate(ids, now),
    dismiss: (ids, reason, now) => dismiss.immediate(ids, reason, now),
    undismiss: (ids, now) => undismiss.immediate(ids, now),
    purgePayloads: (cutoff, limit) => purge.run({ cutoff, limit: Math.max(0, Math.floor(limit)) }).changes,
  };
}

export function parseHold(text: string | undefined): HoldState | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record: Record<string, unknown> = { ...value };
  if (typeof record.reason !== 'string' || typeof record.since !== 'number') return undefined;
  const hold: HoldState = {
    reason: record.reason,
    since: record.since,
    kind: typeof record.kind === 'string' ? record.kind : 'unknown',
  };
  if (typeof record.status === 'number') hold.status = record.status;
  if (typeof record.rowId === 'number') hold.rowId = record.rowId;
  if (record.outage === true) hold.outage = true;
  if (typeof record.office === 'string') hold.office = record.office;
  if (Array.isArray(record.routingKeys)) {
    const keys = record.routingKeys.filter((k): k is string => typeof k === 'string');
    if (keys.length > 0) hold.routingKeys = keys;
  }
  return hold;
}
