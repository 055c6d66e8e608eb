// Deterministic OpenCRVS transactionIds: the same source event always yields the same ids, on every
// retry, after every crash and on every machine, so OpenCRVS's idempotency on transactionId makes a
// resend harmless (docs/opencrvs-api.md, "Idempotency": OpenCRVS runs no duplicate detection on
// notifications).
import { v5 as uuidv5 } from 'uuid';
import { DISMISSED_PREFIX } from './types.js';

/**
 * The project's UUIDv5 namespace. Generated once for opencrvs-bridge; it must never change, or every
 * event still in flight would get new transactionIds (and could be created twice).
 */
export const TRANSACTION_NAMESPACE = '3f0b7c52-8d6e-4f7a-9a51-2c4e1b7d9e63';

export interface TransactionIds {
  /** Used by single-call create-and-notify (`POST /events/notify`). */
  base: string;
  create: string;
  notify: string;
}

export function transactionIdsFor(sourceId: string, eventType: string, subjectKey: string): TransactionIds {
  const base = uuidv5(`${sourceId}\n${eventType}\n${subjectKey}`, TRANSACTION_NAMESPACE);
  // OpenCRVS keys the create step of `POST /events/notify` as `<transactionId>:create` itself, which is
  // exactly our two-step create id: switching delivery modes finds the same event instead of a new one.
  return { base, create: `${base}:create`, notify: notifyTransactionId(base, 0) };
}

/**
 * The NOTIFY transactionId of a requeue generation: `<base>:notify`, then `<base>:notify:r<n>` for the
 * n-th requeue of a dead row (NEXT_NOTIFY_GENERATION writes the same in SQL).
 */
export function notifyTransactionId(base: string, generation: number): string {
  return generation === 0 ? `${base}:notify` : `${base}:notify:r${generation}`;
}

/**
 * A requeued row starts over: the error that ended it stays in its attempts, not on the row, where a
 * pending row showing it looked like a replay that had failed.
 */
const CLEARED_ERROR = `last_error_classification = NULL, last_error_kind = NULL, last_error_status = NULL,
  last_error_message = NULL`;

/**
 * A row that died: dead, or dismissed by an operator (dismiss closes dead rows only, and a changed record
 * brings one back to the queue, record.ts).
 */
const DIED = `(state = 'dead' OR (state = 'skipped' AND skip_reason LIKE '${DISMISSED_PREFIX}:%'))`;

/**
 * SQL for the SET clause of every statement that puts a row back in the queue: a row that died gets the
 * next NOTIFY generation (`<base>:notify:r<n>`), any other row keeps its id. OpenCRVS answers a
 * repeated transactionId with the event as it stands, so a NOTIFY that was Rejected (or refused with
 * a 400) could never succeed under its old id. The create id never changes: create stays idempotent
 * and finds the same event. SQLite evaluates every SET expression on the old row values.
 */
export const NEXT_NOTIFY_GENERATION = `
  ${CLEARED_ERROR},
  requeues = requeues + (CASE WHEN ${DIED} THEN 1 ELSE 0 END),
  notify_transaction_id = CASE WHEN ${DIED}
    THEN base_transaction_id || ':notify:r' || (requeues + 1) ELSE notify_transaction_id END,
  ${forgetLostEvent('event_id')}, ${forgetLostEvent('tracking_id')}`;

/**
 * A row that died on "Event not found" (OpenCRVS restored from a backup older than the event, or the
 * event deleted) forgets that event: the stored id would be notified, and refused, for ever. Requeued,
 * it goes through create again, which (idempotent on the create transactionId) gives back the same
 * event if OpenCRVS still has it, and a new one if not.
 */
function forgetLostEvent(column: 'event_id' | 'tracking_id'): string {
  return `${column} = CASE WHEN ${DIED} AND last_error_kind = 'not-found' THEN NULL ELSE ${column} END`;
}
