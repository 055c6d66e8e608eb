// The outbox side of the ledger: claiming due rows, recording progress, releasing them. Every write
// that ends an attempt checks `locked_by`, so a worker whose lock was reset as stale (and whose row
// another worker may now hold) cannot overwrite the newer attempt.
import { type Db, relaxed } from './db.js';
import { NO_COPY_NAMED, sentCopyHash } from './hash.js';
import {
  endsDoubt,
  FORGET_HELD_BACK_SQL,
  failedAttemptInDoubt,
  QUEUED_NOW,
  ROW_CONFIRMATION_FAILED_SQL,
  ROW_IN_DOUBT_SQL,
  ROW_NOTIFY_MAY_STAND_SQL,
  ROW_NOTIFY_SENT_SQL,
} from './in-doubt.js';
import {
  errorColumns,
  LEDGER_ROW_COLUMNS,
  LEDGER_ROW_COLUMNS_NO_PAYLOAD,
  ledgerRowFromValues,
  type SqlLedgerRow,
} from './rows.js';
import { NEXT_NOTIFY_GENERATION } from './transaction-ids.js';
import type { LedgerError, LedgerPayload, LedgerRow, SettleInput } from './types.js';

export interface Outbox {
  claimDue(workerId: string, limit: number, now: number): LedgerRow[];
  claimRow(id: number, workerId: string, now: number): LedgerRow | undefined;
  claimIfDue(id: number, workerId: string, now: number): LedgerRow | undefined;
  recordCreated(id: number, eventId: string, trackingId: string, now: number): void;
  recordSingleCall(id: number, now: number): void;
  /** The row as settled, or undefined when this worker no longer holds the lock (nothing written). */
  settle(input: SettleInput, now: number): LedgerRow | undefined;
  handBack(ids: number[], workerId: string, now: number): number;
  deferForRecheck(ids: number[], workerId: string, until: number, now: number): number;
  withdrawClaimed(id: number, workerId: string, reason: string, now: number): LedgerRow | undefined;
  withdrawnReason(id: number): string | null;
  notifyInDoubt(id: number): boolean;
  notifyMayStand(id: number): boolean;
  notifySentSince(id: number, since: 'queued' | 'ever'): boolean;
  confirmationFailedSince(id: number, since: 'queued' | 'ever'): boolean;
  holdsLock(id: number, workerId: string, attempts: number): boolean;
  takeBackUnfinished(ids: number[], workerId: string, now: number, singleCall: boolean, why?: TakeBackReason): number;
  markRechecked(rows: ReadonlyArray<{ id: number; nextRunAt: number }>, now: number): number;
  resetStaleLocks(olderThanMs: number, now: number, singleCall: boolean): number;
  renewLocks(ids: readonly number[], workerId: string, now: number): number;
  resetLocksOf(prefix: string, isGone: (lockedBy: string) => boolean, now: number, singleCall: boolean): number;
  nextDueAt(): number | undefined;
  outstanding(): number;
}

/** Why own rows are taken back (takeBackUnfinished), when not the drain deadline. */
export interface TakeBackReason {
  message: string;
  retryAt: number;
  /** The error kind recorded: `stale-lock` unless said. */
  kind?: string;
  /** The row ends dead instead of due at `retryAt`. */
  dead?: boolean;
}

/**
 * The call that carried the declaration refused the copy itself: a 400, a 413 (too large) or a 422, which a
 * newer version may pass. Not a 403, 404 or 409: those are about the client or the event, and a newer copy
 * meets them alike; nor the other statuses the classifier files as `bad-request` (405, 410, 414, 431, 451:
 * about the endpoint or a proxy, not the copy).
 */
const COPY_REFUSALS: ReadonlySet<number> = new Set([400, 413, 422]);

function refusedDeclaration(step: string, error: LedgerError): boolean {
  if (step !== 'notify' && step !== 'createAndNotify') return false;
  return error.status !== undefined && COPY_REFUSALS.has(error.status);
}

/** 1 when the settled attempt never reached OpenCRVS and is not counted toward maxAttempts (unreachedAttempts). */
function unreachedFlag(settlement: SettleInput['settlement']): 0 | 1 {
  return 'unreached' in settlement && settlement.unreached ? 1 : 0;
}

export function createOutbox(db: Db): Outbox {
  // Claiming takes the write lock first (an immediate transaction), then reads the first due ids from
  // the partial index `ledger_rows_due` and updates each by primary key: two workers (even in two
  // processes) can never claim the same row, since SQLite runs writers one at a time, and the state
  // guard on the update would refuse a row claimed since anyway. One `UPDATE … WHERE id IN (SELECT …)
  // RETURNING *` did the same in one statement but cost several times the CPU (SQLite materialises
  // the subquery and the returned rows, ~3 kB of payload each, before handing them over).
  // Whole rows come back as arrays of LEDGER_ROW_COLUMNS (`raw()`), see rows.ts for why. `LIMIT +?`:
  // SQLite compiles a statement with a bare bound LIMIT again at every run, here every claim (db.ts).
  const dueIds = db
    .prepare<[number, number], number>(`
      SELECT id FROM ledger_rows INDEXED BY ledger_rows_due
      WHERE state IN ('pending', 'failed') AND next_run_at <= ?
      ORDER BY next_run_at, id LIMIT +?`)
    .pluck();
  const claimDueRow = db
    .prepare<{ id: number; workerId: string; now: number }, unknown[]>(`
      UPDATE ledger_rows SET state = 'delivering', locked_by = @workerId, locked_at = @now,
        attempts = attempts + 1, updated_at = @now
      WHERE id = @id AND state IN ('pending', 'failed') AND next_run_at <= @now
      RETURNING ${LEDGER_ROW_COLUMNS}`)
    .raw();
  const claimRow = db
    .prepare<{ id: number; workerId: string; now: number }, unknown[]>(`
      UPDATE ledger_rows SET state = 'delivering', locked_by = @workerId, locked_at = @now,
        attempts = attempts + 1, updated_at = @now
      WHERE id = @id AND state IN ('pending', 'failed')
      RETURNING ${LEDGER_ROW_COLUMNS}`)
    .raw();
  // Not conditional on the lock: the event id belongs to our deterministic transactionId whoever asked.
  // updated_at stays the claim's: the attempt's settle (or a lock taken back) moves it moments later, and
  // leaving it keeps this write, run before every NOTIFY, to the row and the tracking-id index (WAL pages).
  const recordCreated = db.prepare(`
    UPDATE ledger_rows SET event_id = @eventId, tracking_id = @trackingId
    WHERE id = @id AND (event_id IS NULL OR event_id = @eventId)`);
  // Not conditional on the lock either: a single call begun by a worker that lost it may be stored all the same.
  // With the row's last recorded attempt (migration 024), which takeBack compares, not the clock.
  const recordSingleCall = db.prepare(`
    UPDATE ledger_rows SET single_call_at = @now,
      single_call_after = COALESCE((SELECT MAX(a.id) FROM ledger_attempts a WHERE a.row_id = @id), 0)
    WHERE id = @id`);
  // Only the columns settle decides with: `SELECT *` would also copy out the payload (~3 kB).
  const lockedRow = db.prepare<
    { id: number; workerId: string; attempts: number | null },
    Pick<
      SqlLedgerRow,
      | 'id'
      | 'attempts'
      | 'next_run_at'
      | 'payload_hash'
      | 'withdrawn_reason'
      | 'updated_after_notification_at'
      | 'event_id'
      | 'tracking_id'
    > & { replaced_in_flight: number; has_payload: number; updated_after_attempt: number | null; last_attempt: number }
  >(
    `SELECT id, attempts, next_run_at, payload_hash, withdrawn_reason, updated_after_notification_at, event_id, tracking_id,
       in_flight_payload IS NOT NULL AS replaced_in_flight, payload IS NOT NULL AS has_payload, updated_after_attempt,
       COALESCE((SELECT MAX(a.id) FROM ledger_attempts a WHERE a.row_id = ledger_rows.id), 0) AS last_attempt
     FROM ledger_rows
     WHERE id = @id AND locked_by = @workerId AND state = 'delivering' AND (@attempts IS NULL OR attempts = @attempts)`,
  );
  // Both return the settled row, which the worker reports: cheaper than reading it again afterwards.
  // Delivered: four statements, for two choices. The ids are set only when the row does not hold them
  // already (two-step stored them before the NOTIFY): SQLite rewrites an index entry for any value assigned
  // to its column, the same too, one more WAL page (the tracking-id index) per delivery. The payload is returned only when
  // it may differ from the copy the worker claimed (a newer version replaced it): else that copy, which the
  // worker holds parsed, is the row's, and copying out ~3 kB of JSON to parse it again is the settle's
  // largest cost after its commit.
  const deliveredSql = (setIds: boolean, payload: boolean) => `
    UPDATE ledger_rows SET state = @state, ${setIds ? 'event_id = @eventId, tracking_id = @trackingId, ' : ''}delivered_at = @now,
      locked_by = NULL, locked_at = NULL, in_flight_payload = NULL, last_error_classification = NULL, last_error_kind = NULL,
      last_error_status = NULL, last_error_message = NULL, updated_at = @now,
      updated_after_notification_at = CASE WHEN @newer THEN @now ELSE updated_after_notification_at END,
      updated_after_attempt = CASE WHEN @newer THEN @lastAttempt ELSE updated_after_attempt END,
      updates_after_notification = updates_after_notification + @newer,
      pending_check_at = @checkAt, pending_checks = 0
    WHERE id = @id
    RETURNING ${payload ? LEDGER_ROW_COLUMNS : LEDGER_ROW_COLUMNS_NO_PAYLOAD}`;
  const deliveredForms = {
    idsAndPayload: db.prepare<Record<string, unknown>, unknown[]>(deliveredSql(true, true)).raw(),
    ids: db.prepare<Record<string, unknown>, unknown[]>(deliveredSql(true, false)).raw(),
    payload: db.prepare<Record<string, unknown>, unknown[]>(deliveredSql(false, true)).raw(),
    neither: db.prepare<Record<string, unknown>, unknown[]>(deliveredSql(false, false)).raw(),
  };
  const delivered = (setIds: boolean, payload: boolean) =>
    setIds
      ? payload
        ? deliveredForms.idsAndPayload
        : deliveredForms.ids
      : payload
        ? deliveredForms.payload
        : deliveredForms.neither;
  const failed = db
    .prepare<Record<string, unknown>, unknown[]>(`
    UPDATE ledger_rows SET state = @state, next_run_at = @nextRunAt, locked_by = NULL, locked_at = NULL,
      in_flight_payload = NULL,
      attempts = attempts - @uncount, unreached_attempts = unreached_attempts + @unreached,
      last_error_classification = @errClassification, last_error_kind = @errKind,
      last_error_status = @errStatus, last_error_message = @errMessage, updated_at = @now
    WHERE id = @id
    RETURNING ${LEDGER_ROW_COLUMNS}`)
    .raw();
  const forgetHeldBackHash = db.prepare(FORGET_HELD_BACK_SQL);
  // A copy rejected by the country configuration while a newer version replaced it: the newer one goes
  // out under the next notify transactionId (the rejected NOTIFY is stored under this one), as a
  // correction recorded after the rejection would (record.ts). Run on the row just settled dead.
  const requeueNewer = db
    .prepare<Record<string, unknown>, unknown[]>(`
    UPDATE ledger_rows SET state = 'pending', attempts = 0, next_run_at = @now, ${QUEUED_NOW}, updated_at = @now,
      ${NEXT_NOTIFY_GENERATION}
    WHERE id = @id AND state = 'dead'
    RETURNING ${LEDGER_ROW_COLUMNS}`)
    .raw();
  const audit = db.prepare(`
    INSERT INTO ledger_attempts (row_id, attempt, worker_id, step, outcome, started_at, finished_at,
      error_classification, error_kind, error_status, error_message, next_run_at, copy_hash, unreached)
    VALUES (@id, @attempt, @workerId, @step, @outcome, @startedAt, @now,
      @errClassification, @errKind, @errStatus, @errMessage, @nextRunAt, @copyHash, @unreached)`);
  // The copy the attempt sent, for a caller that did not pass it: the one set aside when a newer version (or
  // an invalid reading) replaced it in flight, else the payload, which a version counted in doubt leaves.
  const claimedCopyOf = db
    .prepare<[number], string | null>('SELECT COALESCE(in_flight_payload, payload) FROM ledger_rows WHERE id = ?')
    .pluck();
  // A newer version replaced the payload while this attempt sent the claimed copy, which OpenCRVS now
  // holds or may hold under the row's notify transactionId (in-doubt.ts): the row keeps that copy, to
  // say what was delivered and to resend exactly it; the newer hash stays, so it is not counted twice.
  const keepClaimedCopy = db.prepare('UPDATE ledger_rows SET payload = @payload WHERE id = @id');
  const earlierInDoubt = db.prepare<[number], number>(ROW_IN_DOUBT_SQL).pluck();
  const notifySent = db.prepare<{ id: number; ever: number }, number>(ROW_NOTIFY_SENT_SQL).pluck();
  const mayStand = db.prepare<[number], number>(ROW_NOTIFY_MAY_STAND_SQL).pluck();
  const confirmationFailed = db.prepare<{ id: number; ever: number }, number>(ROW_CONFIRMATION_FAILED_SQL).pluck();
  const keepClaimedInDoubt = db.prepare(`
    UPDATE ledger_rows SET payload = @payload, updated_after_notification_at = @now,
      updated_after_attempt = @lastAttempt, updates_after_notification = updates_after_notification + 1
    WHERE id = @id`);
  // Handed back rows were never sent: the attempt is not counted, and they keep their place in line.
  // A row to be confirmed at the source first is handed back the same way, but not due again until
  // `until` (the recheck's lease): the recheck may replace its payload or withdraw it meanwhile, which
  // it can only do to an unclaimed row, and a crash during the recheck leaves the row due after the lease.
  // A plain hand-back passes no `until`: the row keeps its place in line.
  const unclaim = db.prepare(`
    UPDATE ledger_rows SET state = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
      attempts = MAX(attempts - 1, 0), locked_by = NULL, locked_at = NULL, in_flight_payload = NULL,
      next_run_at = COALESCE(@until, next_run_at), updated_at = @now
    WHERE id = @id AND locked_by = @workerId AND state = 'delivering'`);
  // A claim is its holder and its attempt number: a stale lock taken back keeps the count, so the same
  // worker claiming the row again holds a different claim than the attempt it left running.
  const claimOf = db.prepare<[number], { locked_by: string | null; attempts: number }>(
    `SELECT locked_by, attempts FROM ledger_rows WHERE id = ? AND state = 'delivering'`,
  );
  const withdrawnReasonOf = db
    .prepare<[number], string | null>('SELECT withdrawn_reason FROM ledger_rows WHERE id = ?')
    .pluck();
  // A withdrawn row the worker found not notified in OpenCRVS: skipped, with what it found; unless the
  // record came back meanwhile (a new version clears the withdrawal).
  const withdrawClaimed = db
    .prepare<{ id: number; workerId: string; reason: string; now: number }, unknown[]>(`
      UPDATE ledger_rows SET state = 'skipped', skip_reason = @reason, withdrawn_reason = NULL, payload = NULL,
        payload_hash = NULL, attempts = MAX(attempts - 1, 0), locked_by = NULL, locked_at = NULL,
        in_flight_payload = NULL, updated_at = @now
      WHERE id = @id AND locked_by = @workerId AND state = 'delivering' AND withdrawn_reason IS NOT NULL
      RETURNING ${LEDGER_ROW_COLUMNS}`)
    .raw();
  // Confirmed: due at once, in the place in line it had when claimed (its own next_run_at, not now),
  // unless the recheck withdrew or delivered-marked it. At the back of the line, a backlog longer than
  // the recheck threshold aged every row past it again before its turn: rechecked for ever, never sent.
  const markRechecked = db.prepare(`
    UPDATE ledger_rows SET rechecked_at = @now, next_run_at = MIN(next_run_at, @nextRunAt, @now), updated_at = @now
    WHERE id = @id AND state IN ('pending', 'failed')`);
  const markAllRechecked = db.transaction((rows: ReadonlyArray<{ id: number; nextRunAt: number }>, now: number) => {
    let n = 0;
    for (const row of rows) n += markRechecked.run({ id: row.id, nextRunAt: row.nextRunAt, now }).changes;
    return n;
  });
  // A lock taken back means its worker died or hung mid-attempt: the attempt may have reached OpenCRVS,
  // so it stays counted. It is recorded as `interrupted` when its NOTIFY may be in OpenCRVS: the event
  // id was stored (two-step stores it before the NOTIFY), or a single call may have run (no event id
  // until it answers); a newer version of the record then becomes an update after notification
  // (in-doubt.ts). Otherwise it got no further than create. The row is due at once; the deterministic
  // transactionIds make the resend safe.
  const renewLock = db.prepare(
    `UPDATE ledger_rows SET locked_at = @now WHERE id = @id AND locked_by = @workerId AND state = 'delivering'`,
  );
  const staleRows = db.prepare<{ cutoff: number }, { id: number; locked_by: string }>(
    `SELECT id, locked_by FROM ledger_rows WHERE state = 'delivering' AND locked_at <= @cutoff`,
  );
  const lockedWithPrefix = db.prepare<{ prefix: string }, { id: number; locked_by: string }>(
    `SELECT id, locked_by FROM ledger_rows
       WHERE state = 'delivering' AND substr(locked_by, 1, length(@prefix)) = @prefix`,
  );
  // The attempt's NOTIFY may have gone out: two-step stores the event id before it, a single call stores
  // none, and marks the row as it begins with the row's last recorded attempt (migration 024): with none
  // recorded since, it was this one's, whatever mode the process taking the lock back runs in. By attempt
  // ids, not by the clock: a clock stepped back since the last attempt made a call under way look older
  // than it. A mark made before 024 (single_call_at alone) is compared by the clock, as it was; an attempt
  // begun by a bridge older than any mark is judged by the mode (a requeued row takes the two-step path, send.ts).
  const mayBeStored = db
    .prepare<{ id: number; singleCall: number }, number>(
      `SELECT event_id IS NOT NULL OR (@singleCall AND requeues = 0)
         OR CASE WHEN single_call_after IS NOT NULL
           THEN single_call_after >= COALESCE((SELECT MAX(a.id) FROM ledger_attempts a WHERE a.row_id = r.id), 0)
           ELSE COALESCE(single_call_at >= (SELECT MAX(a.finished_at) FROM ledger_attempts a WHERE a.row_id = r.id),
             single_call_at IS NOT NULL) END
       FROM ledger_rows r WHERE r.id = @id`,
    )
    .pluck();
  const lastAttemptOf = db
    .prepare<[number], number>('SELECT COALESCE(MAX(id), 0) FROM ledger_attempts WHERE row_id = ?')
    .pluck();
  // `dead`: an attempt that crashed on a bug with its retry budget spent (delivery/worker.ts) ends the row,
  // as settle would; else the row is due at `retryAt`.
  const interrupted = db.prepare(`
    INSERT INTO ledger_attempts (row_id, attempt, worker_id, step, outcome, started_at, finished_at,
      error_classification, error_kind, error_status, error_message, next_run_at)
    SELECT id, attempts, locked_by, CASE WHEN @mayBeOut THEN 'interrupted' ELSE 'create' END,
      CASE WHEN @dead THEN 'dead' ELSE 'retry' END, locked_at, @now, 'retryable', @kind, NULL, @message,
      CASE WHEN @dead THEN NULL ELSE @retryAt END
    FROM ledger_rows WHERE id = @id AND state = 'delivering' AND locked_by = @lockedBy`);
  // An interrupted attempt (its NOTIFY may be in OpenCRVS) during which a newer version replaced the payload:
  // the row goes back to the copy that was in flight, and the newer version is an update after
  // notification, as when an answer was lost (in-doubt.ts). Its hash stays: seen again, no second update.
  const unlockTakenBack = db.prepare(`
    UPDATE ledger_rows SET state = CASE WHEN @dead THEN 'dead' ELSE 'failed' END, locked_by = NULL,
      locked_at = NULL, next_run_at = CASE WHEN @dead THEN next_run_at ELSE @retryAt END,
      last_error_classification = 'retryable', last_error_kind = @kind, last_error_status = NULL,
      last_error_message = @message, updated_at = @now,
      payload = CASE WHEN @mayBeOut AND in_flight_payload IS NOT NULL THEN in_flight_payload ELSE payload END,
      updated_after_notification_at = CASE WHEN @mayBeOut AND in_flight_payload IS NOT NULL THEN @now
        ELSE updated_after_notification_at END,
      updated_after_attempt = CASE WHEN @mayBeOut AND in_flight_payload IS NOT NULL THEN @lastAttempt
        ELSE updated_after_attempt END,
      updates_after_notification = updates_after_notification
        + (CASE WHEN @mayBeOut AND in_flight_payload IS NOT NULL THEN 1 ELSE 0 END),
      in_flight_payload = NULL
    WHERE id = @id AND state = 'delivering' AND locked_by = @lockedBy`);
  const takeBack = (
    row: { id: number; locked_by: string },
    now: number,
    singleCall: boolean,
    { message, retryAt = now, kind = 'stale-lock', dead = false }: Partial<TakeBackReason> & { message: string },
  ): number => {
    const mayBeOut = mayBeStored.get({ id: row.id, singleCall: singleCall ? 1 : 0 }) ? 1 : 0;
    // A newer version counted (unlockTakenBack) marks the attempt before the one recorded here (in-doubt.ts).
    const lastAttempt = lastAttemptOf.get(row.id) ?? 0;
    const params = {
      id: row.id,
      lockedBy: row.locked_by,
      message,
      now,
      mayBeOut,
      retryAt,
      kind,
      dead: dead ? 1 : 0,
      lastAttempt,
    };
    interrupted.run(params);
    return unlockTakenBack.run(params).changes;
  };
  const resetStaleAll = db.transaction((cutoff: number, now: number, singleCall: boolean): number => {
    let n = 0;
    for (const row of staleRows.all({ cutoff })) {
      n += takeBack(row, now, singleCall, { message: 'the worker holding this row stopped (lock expired); resending' });
    }
    return n;
  });
  // A stopping worker's own attempts still running at its drain deadline, or one that crashed (a ledger
  // write refused: disk full; or a bug): taken back like a dead worker's (recorded, the copy in flight
  // restored if its NOTIFY may have gone out), not handed back as unstarted.
  const takeBackOwn = db.transaction(
    (
      ids: number[],
      workerId: string,
      now: number,
      singleCall: boolean,
      why: Partial<TakeBackReason> & { message: string },
    ): number => {
      let n = 0;
      for (const id of ids) {
        if (claimOf.get(id)?.locked_by === workerId) n += takeBack({ id, locked_by: workerId }, now, singleCall, why);
      }
      return n;
    },
  );
  const resetLocksOfAll = db.transaction(
    (prefix: string, isGone: (lockedBy: string) => boolean, now: number, singleCall: boolean): number => {
      let n = 0;
      for (const row of lockedWithPrefix.all({ prefix })) {
        // The process that held it is known to be gone (see resetLocksOf): at once, not after the timeout.
        if (isGone(row.locked_by)) {
          const message = 'the process holding this row stopped before it finished (restarted); resending';
          n += takeBack(row, now, singleCall, { message });
        }
      }
      return n;
    },
  );
  const nextDue = db.prepare<[], { at: number | null }>(
    `SELECT MIN(next_run_at) AS at FROM ledger_rows WHERE state IN ('pending', 'failed')`,
  );
  const outstanding = db.prepare<[], { n: number }>(
    `SELECT COUNT(*) AS n FROM ledger_rows WHERE state IN ('pending', 'failed', 'delivering')`,
  );

  const claimedCopyHash = (input: SettleInput, id: number): string | null => {
    const stored = input.claimedPayload ? undefined : claimedCopyOf.get(id);
    const copy = input.claimedPayload ?? (stored ? (JSON.parse(stored) as LedgerPayload) : undefined);
    return copy ? sentCopyHash(copy) : null;
  };

  const settle = db.transaction(
    (input: SettleInput, now: number): { values: unknown[]; claimedIsPayload: boolean } | undefined => {
      const row = lockedRow.get({ id: input.id, workerId: input.workerId, attempts: input.claimedAttempts ?? null });
      if (!row) return undefined;
      const { settlement } = input;
      let error: LedgerError | null = null;
      let nextRunAt: number | null = null;
      let settled: unknown[] | undefined;
      let copyHash: string | null = null;
      let resendNewer = false;
      let claimedIsPayload = false;
      const newerVersion = input.claimedPayloadHash !== row.payload_hash;
      const replaced = newerVersion && input.claimedPayload !== undefined;
      // Already counted: a version that came during this attempt while an earlier NOTIFY of the row was in
      // doubt is an update after notification at once (record.ts), its payload never replaced. By attempt ids
      // (migration 026), not the clock: a clock stepped back during the attempt made the count look older
      // than the attempt, and the version was counted again. No attempt recorded since the count, and the
      // NOTIFY still in doubt: the count was this attempt's, or came before it while the copy it resends was
      // in doubt, when the hash it claimed carries the version (any other met since is counted too). Not a
      // count an earlier generation made: a row requeued after a withdrawal the worker settled (no attempt
      // recorded) has nothing in doubt. A count made before 026 is judged by the clock, as it was.
      const counted =
        row.updated_after_attempt !== null
          ? row.updated_after_attempt >= row.last_attempt && Boolean(earlierInDoubt.get(row.id))
          : row.updated_after_notification_at !== null && row.updated_after_notification_at >= input.startedAt;
      if (!('error' in settlement)) {
        // Decided later (a pending check), perhaps after the payload is purged: what was sent is kept now.
        // Not when OpenCRVS holds an earlier NOTIFY than this copy: which copy that was, the row does not know,
        // and says so (a NULL would be taken for an answer recorded before migration 019).
        if (settlement.outcome === 'delivered-pending')
          copyHash = settlement.olderCopy ? NO_COPY_NAMED : claimedCopyHash(input, row.id);
        if (replaced) keepClaimedCopy.run({ id: row.id, payload: JSON.stringify(input.claimedPayload) });
        // Newer: a version the claimed copy does not carry, or a withdrawal by the source meanwhile.
        const newer = (newerVersion && !counted) || row.withdrawn_reason !== null || settlement.olderCopy ? 1 : 0;
        const setIds = row.event_id !== settlement.eventId || row.tracking_id !== settlement.trackingId;
        // The claimed copy is the row's payload when the hash did not move, the worker passed that copy, and
        // the row still holds one (a reading back on a rejected copy clears it: record.ts setAsideForRejected).
        claimedIsPayload = !newerVersion && input.claimedPayload !== undefined && row.has_payload === 1;
        settled = delivered(setIds, !claimedIsPayload).get({
          id: row.id,
          state: settlement.outcome,
          eventId: settlement.eventId,
          trackingId: settlement.trackingId,
          newer,
          lastAttempt: row.last_attempt,
          // A pending NOTIFY is asked about again from then on (delivery/pending-check.ts).
          checkAt: settlement.outcome === 'delivered-pending' ? (settlement.checkAt ?? now) : null,
          now,
        });
      } else {
        error = settlement.error;
        // In doubt by this attempt, or by an earlier one whose NOTIFY this attempt was resending; unless
        // this attempt's answer shows what OpenCRVS holds (a rejection).
        const ended = endsDoubt(error);
        // What OpenCRVS rejected, kept with the attempt (migration 019): read again as that copy, the record
        // leaves the row dead (record.ts). Before `failed` below, which drops the copy set aside.
        if (ended) copyHash = claimedCopyHash(input, row.id);
        const doubt = !ended && (failedAttemptInDoubt(input.step, error) || Boolean(earlierInDoubt.get(row.id)));
        // A newer version, never tried, replaced the copy this attempt sent (not counted as an update after
        // notification): kept aside while in doubt, else sent next when the copy was refused or rejected.
        const newerWaiting = replaced && !counted;
        if (newerWaiting && doubt)
          keepClaimedInDoubt.run({
            id: row.id,
            payload: JSON.stringify(input.claimedPayload),
            lastAttempt: row.last_attempt,
            now,
          });
        // A declaration refused for its copy (a 400, a 413…): the newer one goes next. Only without doubt: then nothing is stored
        // under this transactionId, and the refused copy was not.
        const tryNewer =
          settlement.outcome === 'dead' && newerWaiting && !doubt && refusedDeclaration(input.step, error);
        if (ended) forgetHeldBackHash.run(row.id);
        const err = errorColumns(error);
        const held = settlement.outcome === 'held';
        nextRunAt =
          settlement.outcome === 'retry' ? settlement.nextRunAt : held ? row.next_run_at : tryNewer ? now : null;
        settled = failed.get({
          id: row.id,
          state: settlement.outcome === 'dead' && !tryNewer ? 'dead' : held && row.attempts <= 1 ? 'pending' : 'failed',
          nextRunAt: nextRunAt ?? row.next_run_at,
          uncount: held ? 1 : 0,
          unreached: unreachedFlag(settlement),
          errClassification: err.classification,
          errKind: err.kind,
          errStatus: err.status,
          errMessage: err.message,
          now,
        });
        // Rejected (the doubt it ends says OpenCRVS decided on the copy sent): the newer one is sent next,
        // under the next generation. Only when its payload did replace the copy in flight (a version counted
        // in doubt changes the hash alone), and the source has not withdrawn the record since. Not when what
        // replaced it was an invalid reading (record.ts, setAsideInFlight): nothing waits to be sent, and the
        // row stays dead with the rejection, as it would have had the reading come after it.
        resendNewer =
          settlement.outcome === 'dead' &&
          ended &&
          newerWaiting &&
          row.replaced_in_flight === 1 &&
          row.has_payload === 1 &&
          row.withdrawn_reason === null;
      }
      const err = errorColumns(error);
      audit.run({
        id: row.id,
        attempt: row.attempts,
        workerId: input.workerId,
        step: input.step,
        outcome: settlement.outcome,
        startedAt: input.startedAt,
        now,
        errClassification: err.classification,
        errKind: err.kind,
        errStatus: err.status,
        errMessage: err.message,
        nextRunAt: settlement.outcome === 'retry' ? nextRunAt : null,
        copyHash,
        // The attempt's part of the row's unreached_attempts (migration 032): its list says which counted.
        unreached: unreachedFlag(settlement),
      });
      // After the attempt is recorded: the requeue's generation starts after it (in-doubt.ts, QUEUED_NOW).
      if (resendNewer) settled = requeueNewer.get({ id: row.id, now }) ?? settled;
      return settled && { values: settled, claimedIsPayload };
    },
  );

  const claimDueAll = db.transaction((workerId: string, limit: number, now: number): unknown[][] => {
    const rows: unknown[][] = [];
    for (const id of dueIds.all(now, limit)) {
      const row = claimDueRow.get({ id, workerId, now });
      if (row) rows.push(row);
    }
    return rows;
  });

  /** Runs `statement` once per id (with `params`) in one transaction; returns the rows it changed. */
  const eachId = db.transaction(
    (statement: { run(params: Record<string, unknown>): { changes: number } }, ids: number[], params: object) => {
      let n = 0;
      for (const id of ids) n += statement.run({ ...params, id }).changes;
      return n;
    },
  );

  return {
    claimDue: (workerId, limit, now) => {
      const n = Math.max(0, Math.floor(limit));
      return n === 0 ? [] : relaxed(db, () => claimDueAll.immediate(workerId, n, now)).map(ledgerRowFromValues);
    },
    claimRow: (id, workerId, now) => {
      const row = relaxed(db, () => claimRow.get({ id, workerId, now }));
      return row ? ledgerRowFromValues(row) : undefined;
    },
    claimIfDue: (id, workerId, now) => {
      const row = relaxed(db, () => claimDueRow.get({ id, workerId, now }));
      return row ? ledgerRowFromValues(row) : undefined;
    },
    recordCreated: (id, eventId, trackingId, now) => {
      relaxed(db, () => recordCreated.run({ id, eventId, trackingId, now }));
    },
    recordSingleCall: (id, now) => {
      relaxed(db, () => recordSingleCall.run({ id, now }));
    },
    settle: (input, now) => {
      const settled = relaxed(db, () => settle.immediate(input, now));
      if (!settled) return undefined;
      const row = ledgerRowFromValues(settled.values);
      return settled.claimedIsPayload ? { ...row, payload: input.claimedPayload ?? null } : row;
    },
    handBack: (ids, workerId, now) =>
      ids.length === 0 ? 0 : relaxed(db, () => eachId.immediate(unclaim, ids, { workerId, until: null, now })),
    deferForRecheck: (ids, workerId, until, now) =>
      ids.length === 0 ? 0 : relaxed(db, () => eachId.immediate(unclaim, ids, { workerId, until, now })),
    markRechecked: (rows, now) => (rows.length === 0 ? 0 : relaxed(db, () => markAllRechecked.immediate(rows, now))),
    withdrawnReason: (id) => withdrawnReasonOf.get(id) ?? null,
    notifyInDoubt: (id) => Boolean(earlierInDoubt.get(id)),
    notifyMayStand: (id) => Boolean(mayStand.get(id)),
    notifySentSince: (id, since) => Boolean(notifySent.get({ id, ever: since === 'ever' ? 1 : 0 })),
    confirmationFailedSince: (id, since) => Boolean(confirmationFailed.get({ id, ever: since === 'ever' ? 1 : 0 })),
    holdsLock: (id, workerId, attempts) => {
      const claim = claimOf.get(id);
      return claim?.locked_by === workerId && claim.attempts === attempts;
    },
    takeBackUnfinished: (ids, workerId, now, singleCall, why) => {
      if (ids.length === 0) return 0;
      const reason = why ?? { message: 'the worker stopped before this attempt finished (drain deadline); resending' };
      return relaxed(db, () => takeBackOwn.immediate(ids, workerId, now, singleCall, reason));
    },
    withdrawClaimed: (id, workerId, reason, now) => {
      const row = withdrawClaimed.get({ id, workerId, reason, now });
      return row ? ledgerRowFromValues(row) : undefined;
    },
    resetLocksOf: (prefix, isGone, now, singleCall) =>
      relaxed(db, () => resetLocksOfAll.immediate(prefix, isGone, now, singleCall)),
    renewLocks: (ids, workerId, now) =>
      ids.length === 0 ? 0 : relaxed(db, () => eachId.immediate(renewLock, [...ids], { workerId, now })),
    resetStaleLocks: (olderThanMs, now, singleCall) =>
      relaxed(db, () => resetStaleAll.immediate(now - olderThanMs, now, singleCall)),
    nextDueAt: () => nextDue.get()?.at ?? undefined,
    outstanding: () => outstanding.get()?.n ?? 0,
  };
}
