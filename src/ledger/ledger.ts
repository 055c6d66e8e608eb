// openLedger: the composition of the ledger's parts over one SQLite connection.
import { type Logger, silentLogger } from '../observability/logger.js';
import { startCheckpointer } from './checkpointer.js';
import { createContextReads } from './context-reads.js';
import { ledgerIdOf, openDatabase, relaxed, watchFileIdentity } from './db.js';
import { countDeadRows } from './deaths.js';
import { createInbox } from './inbox.js';
import { createLocationAnswers } from './location-answers.js';
import { createOutbox } from './outbox.js';
import { createPendingChecks } from './pending-checks.js';
import { upgradeGuard } from './process-lease.js';
import { createQueries } from './queries.js';
import { createRecorder } from './record.js';
import { createSlowRecords } from './slow-records.js';
import { createLedgerSources } from './sources.js';
import { HOLD_META_KEY, type Ledger, type LedgerOptions } from './types.js';
import { countUpdatesAfterNotification } from './updates-after-notification.js';
import { watched, writeHealth } from './write-health.js';

const HOUR_MS = 3_600_000;
/** StoreSettings.payloadRetentionHours defaults to a week: time to look into a surprise, then forget. */
const DEFAULT_RETENTION_HOURS = 168;
/** Payloads dropped per purge statement: a few ms of the event loop each (Ledger.purgePayloads). */
export const PURGE_CHUNK_ROWS = 500;

/**
 * Opens (creating and migrating as needed) the ledger at `path`. WAL, `synchronous=FULL`,
 * `busy_timeout`, numbered migrations recorded in `schema_migrations`. One connection per process is
 * enough (better-sqlite3 is synchronous); other processes (CLI, a second worker) may open the same file.
 */
export function openLedger(path: string, options: LedgerOptions = {}): Ledger {
  const logger: Logger = (options.logger ?? silentLogger).child({ component: 'ledger' });
  const now = options.now ?? Date.now;
  const retentionMs = (options.payloadRetentionHours ?? DEFAULT_RETENTION_HOURS) * HOUR_MS;
  // An exclusive open knows no other process has the file open: no lease can be live.
  const guard = options.exclusive
    ? undefined
    : upgradeGuard(path, options.lease && { command: options.lease.command, logger: options.lease.logger ?? logger });
  const db = openDatabase(path, {
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    logger,
    inspectOnly: options.inspectOnly,
    exclusive: options.exclusive,
    guard,
    onMigrated: options.onMigrated,
    onCreated: options.onCreated,
  });
  const lease = guard?.lease();
  options.onOpen?.(db);
  const contextReads = createContextReads(db, now);
  const recorder = createRecorder(db, now, (options.settleSeconds ?? 0) * 1000, contextReads);
  const outbox = createOutbox(db);
  const queries = createQueries(db);
  const pendingChecks = createPendingChecks(db);
  const health = writeHealth(db, now, options.freeSpace);
  const checkpointer = options.backgroundCheckpoints
    ? // The root logger: a child of `logger` would write `component` twice on each line.
      startCheckpointer(db, {
        logger: options.logger ?? silentLogger,
        onFailure: (code, message) => health.fail(code, message),
      })
    : undefined;
  const ledgerId = ledgerIdOf(db);
  const deadRows = options.countDeadRows ? countDeadRows(db) : () => [];
  const updates = options.countUpdatesAfterNotification ? countUpdatesAfterNotification(db, logger) : undefined;
  const fileIdentity = watchFileIdentity(path, { ledgerId });

  // Every call watched: a storage error any user of the ledger meets (a delivery, a poll, the inbox) is
  // what /readyz `store` reports (write-health.ts).
  const parts: Ledger = {
    path,
    inbox: watched(createInbox(db), health),
    sources: watched(createLedgerSources(db), health),
    locationAnswers: watched(createLocationAnswers(db), health),
    slowRecords: watched(createSlowRecords(db), health),
    recordEvent: recorder.recordEvent,
    recordSkipped: recorder.recordSkipped,
    cancelUnsent: recorder.cancelUnsent,
    recordInvalid: recorder.recordInvalid,
    contextReaders: contextReads.readers,
    contextReadRefs: contextReads.refs,
    transaction: <T>(fn: () => T, options?: { reconciled?: boolean }): T =>
      options?.reconciled ? relaxed(db, () => db.transaction(fn).immediate()) : db.transaction(fn).immediate(),
    getCursor: queries.getCursor,
    cursorMovedAt: queries.cursorMovedAt,
    firstSeenAt: queries.firstSeenAt,
    skippedReasons: queries.skippedReasons,
    setCursor: (sourceId, name, value) => queries.setCursor(sourceId, name, value, now()),
    get: queries.get,
    findByKey: queries.findByKey,
    list: (filter = {}) => queries.list(filter),
    counts: queries.counts,
    oldestWaitingQueuedAt: queries.oldestWaitingQueuedAt,
    deadExcept: queries.deadExcept,
    attempts: queries.attempts,
    mappingWarnings: queries.mappingWarnings,
    setMappingWarnings: queries.setMappingWarnings,
    ownerOf: queries.ownerOf,
    readBy: queries.readBy,
    noteReadBy: queries.noteReadBy,
    replay: (ids) => queries.replay(ids, now()),
    retryNow: (ids) => queries.retryNow(ids, now()),
    dismiss: (ids, reason) => queries.dismiss(ids, reason, now()),
    undismiss: (ids) => queries.undismiss(ids, now()),
    getMeta: queries.getMeta,
    setMeta: (key, value) => queries.setMeta(key, value, now()),
    getHold: queries.getHold,
    setHold: (hold) => queries.setMeta(HOLD_META_KEY, hold ? JSON.stringify(hold) : null, now()),
    purgePayloads: (at = now(), limit = PURGE_CHUNK_ROWS) => queries.purgePayloads(at - retentionMs, limit),
    claimDue: (workerId, limit, at = now()) => outbox.claimDue(workerId, limit, at),
    claimRow: (id, workerId, at = now()) => outbox.claimRow(id, workerId, at),
    claimIfDue: (id, workerId, at = now()) => outbox.claimIfDue(id, workerId, at),
    recordCreated: (id, eventId, trackingId) => outbox.recordCreated(id, eventId, trackingId, now()),
    recordSingleCall: (id) => outbox.recordSingleCall(id, now()),
    settle: (input) => outbox.settle(input, now()),
    handBack: (ids, workerId) => outbox.handBack(ids, workerId, now()),
    deferForRecheck: (ids, workerId, leaseMs) => {
      const at = now();
      return outbox.deferForRecheck(ids, workerId, at + leaseMs, at);
    },
    markRechecked: (rows) => outbox.markRechecked(rows, now()),
    withdrawClaimed: (id, workerId, reason) => outbox.withdrawClaimed(id, workerId, reason, now()),
    withdrawnReason: outbox.withdrawnReason,
    notifyInDoubt: outbox.notifyInDoubt,
    notifyMayStand: outbox.notifyMayStand,
    notifySentSince: outbox.notifySentSince,
    confirmationFailedSince: outbox.confirmationFailedSince,
    holdsLock: outbox.holdsLock,
    takeBackUnfinished: (ids, workerId, options = {}) => {
      const at = now();
      const why = options.reason
        ? {
            message: options.reason,
            retryAt: at + (options.retryInMs ?? 0),
            ...(options.kind ? { kind: options.kind } : {}),
            ...(options.dead ? { dead: true } : {}),
          }
        : undefined;
      return outbox.takeBackUnfinished(ids, workerId, at, options.singleCall === true, why);
    },
    resetStaleLocks: (olderThanMs, at = now(), options = {}) =>
      outbox.resetStaleLocks(olderThanMs, at, options.singleCall === true),
    renewLocks: (ids, workerId, at = now()) => outbox.renewLocks(ids, workerId, at),
    resetLocksOf: (prefix, isGone, options = {}) =>
      outbox.resetLocksOf(prefix, isGone, now(), options.singleCall === true),
    nextDueAt: outbox.nextDueAt,
    outstanding: outbox.outstanding,
    duePendingChecks: (limit, at = now()) => pendingChecks.due(limit, at),
    recordPendingCheck: (input) => pendingChecks.record(input, now()),
    nextPendingCheckAt: pendingChecks.nextDueAt,
    fileProblem: () => fileIdentity.problem(),
    writeFailure: () => health.current(),
    proveWritable: () => health.proveWritable(),
    ledgerId,
    deadRows,
    updatesAfterNotification: () => updates?.counts() ?? [],
    close: () => {
      checkpointer?.stop();
      // Before the connection closes: the lease is a row of this ledger.
      if (db.open) lease?.release();
      if (db.open) db.close();
    },
  };
  // deadRows reads this connection's TEMP table, never the ledger file (a corrupt ledger still answers it), so
  // its failure would say nothing of the store; the writes that feed it are watched, as is counts(), read
  // before it at each scrape.
  const unwatched = new Set<string>([
    'close',
    'fileProblem',
    'writeFailure',
    'proveWritable',
    'deadRows',
    'updatesAfterNotification',
  ]);
  const ledger: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parts)) {
    const call = typeof value === 'function' && !unwatched.has(key) ? health.watch(value) : value;
    // An update after notification is logged once the call that recorded it has committed (whichever:
    // a poll's commit, a settle, a withdrawal), not by each of them.
    ledger[key] =
      updates && typeof call === 'function'
        ? (...args: unknown[]) => {
            const out = (call as (...a: unknown[]) => unknown)(...args);
            updates.logNew();
            return out;
          }
        : call;
  }
  return ledger as unknown as Ledger;
}
