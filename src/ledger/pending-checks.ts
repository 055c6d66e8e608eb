// Delivered-pending rows: their NOTIFY was answered "Requested", and the country configuration accepts
// or rejects it later without telling anyone. The worker asks again (delivery/pending-check.ts); this
// is what it reads and writes. Only a row still delivered-pending under the same notify transactionId
// is written: a replay or a second process may have moved it on meanwhile.
import { type Db, relaxed } from './db.js';
import { endsDoubt, FORGET_HELD_BACK_SQL } from './in-doubt.js';
import { errorColumns, LEDGER_ROW_COLUMNS, ledgerRowFromValues } from './rows.js';
import type { DuePendingCheck, LedgerRow, PendingCheckInput } from './types.js';

export interface PendingChecks {
  due(limit: number, now: number): DuePendingCheck[];
  /** The row as written, or undefined when it is no longer the delivered-pending row that was asked about. */
  record(input: PendingCheckInput, now: number): LedgerRow | undefined;
  /** When the next check is due, or undefined when no row waits for a decision. */
  nextDueAt(): number | undefined;
}

export function createPendingChecks(db: Db): PendingChecks {
  // `LIMIT +@limit`: a bare bound LIMIT is compiled again at every run (db.ts).
  const due = db
    .prepare<{ now: number; limit: number }, unknown[]>(`
      SELECT ${LEDGER_ROW_COLUMNS}, pending_checks
      FROM ledger_rows r INDEXED BY ledger_rows_pending_check
      WHERE state = 'delivered-pending' AND pending_check_at <= @now
      ORDER BY pending_check_at LIMIT +@limit`)
    .raw();
  const reread = db.prepare<[number], unknown[]>(`SELECT ${LEDGER_ROW_COLUMNS} FROM ledger_rows WHERE id = ?`).raw();
  const nextDue = db.prepare<[], { at: number | null }>(
    `SELECT MIN(pending_check_at) AS at FROM ledger_rows WHERE state = 'delivered-pending'`,
  );
  const stillPending = db.prepare<{ id: number; tx: string; at: number | null; now: number }>(`
    UPDATE ledger_rows SET pending_check_at = @at, pending_checks = pending_checks + 1
    WHERE id = @id AND state = 'delivered-pending' AND notify_transaction_id = @tx`);
  const decided = db.prepare<Record<string, unknown>>(`
    UPDATE ledger_rows SET state = @state, pending_check_at = NULL, pending_checks = pending_checks + 1,
      last_error_classification = @errClassification, last_error_kind = @errKind,
      last_error_status = @errStatus, last_error_message = @errMessage, updated_at = @now
    WHERE id = @id AND state = 'delivered-pending' AND notify_transaction_id = @tx`);
  const forgetHeldBackHash = db.prepare(FORGET_HELD_BACK_SQL);
  // The decision is part of the row's history: an attempt row (the same attempt, decided later).
  const audit = db.prepare(`
    INSERT INTO ledger_attempts (row_id, attempt, worker_id, step, outcome, started_at, finished_at,
      error_classification, error_kind, error_status, error_message, next_run_at, copy_hash)
    SELECT id, attempts, @workerId, @step, @state, @startedAt, @now,
      @errClassification, @errKind, @errStatus, @errMessage, NULL, @copyHash
    FROM ledger_rows WHERE id = @id`);
  // The copy the NOTIFY being decided carried, kept with its pending answer (outbox.ts): the row's payload
  // may be purged by now, or be a version OpenCRVS never had (an earlier NOTIFY stood, `olderCopy`: then
  // NO_COPY_NAMED, hash.ts, which the rejection keeps too). None for an answer recorded before migration 019.
  const pendingCopy = db
    .prepare<[number], string | null>(`SELECT copy_hash FROM ledger_attempts
      WHERE row_id = ? AND outcome = 'delivered-pending' ORDER BY id DESC LIMIT 1`)
    .pluck();

  const decide = db.transaction((input: PendingCheckInput, now: number): unknown[] | undefined => {
    const { result } = input;
    if (result.outcome === 'delivered-pending') {
      stillPending.run({ id: input.id, tx: input.notifyTransactionId, at: result.nextCheckAt, now });
      return undefined;
    }
    const err = errorColumns(result.outcome === 'dead' ? result.error : null);
    const params = {
      id: input.id,
      tx: input.notifyTransactionId,
      state: result.outcome,
      errClassification: err.classification,
      errKind: err.kind,
      errStatus: err.status,
      errMessage: err.message,
      now,
    };
    if (decided.run(params).changes === 0) return undefined;
    const rejected = result.outcome === 'dead' && endsDoubt(result.error);
    // The copy rejected, kept with the decision (migration 019; record.ts reads it).
    const copyHash = rejected ? (pendingCopy.get(input.id) ?? null) : null;
    audit.run({ ...params, workerId: input.workerId, step: input.step, startedAt: input.startedAt, copyHash });
    if (rejected) forgetHeldBackHash.run(input.id);
    return reread.get(input.id); // after the audit and the hash: the row as it now stands
  });

  return {
    due: (limit, now) =>
      due.all({ now, limit: Math.max(0, Math.floor(limit)) }).map((values) => {
        const checks = values.at(-1);
        return { row: ledgerRowFromValues(values.slice(0, -1)), checks: typeof checks === 'number' ? checks : 0 };
      }),
    record: (input, now) => {
      const row = relaxed(db, () => decide.immediate(input, now));
      return row ? ledgerRowFromValues(row) : undefined;
    },
    nextDueAt: () => nextDue.get()?.at ?? undefined,
  };
}
