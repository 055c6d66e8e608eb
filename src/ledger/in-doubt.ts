// When a NOTIFY (or single call) may be in OpenCRVS although its answer never came. Under the row's
// notify transactionId OpenCRVS keeps the first copy it stored and answers every resend with it, so from
// then on the row must keep, and resend, that copy: a newer version of the record is an update after
// notification, never a replacement the ledger would wrongly call delivered.

/**
 * Steps that send the declaration, and `interrupted`: an attempt whose lock was taken back after its
 * NOTIFY may have gone out (outbox.ts records one that cannot have got past create as `create`).
 */
export const DECLARATION_STEPS = ['notify', 'createAndNotify', 'interrupted'] as const;

/**
 * Refused before anything was stored: a rate limit (429), or no upstream to pass the request to (503,
 * from OpenCRVS's gateway or a proxy). Not 502: nginx answers it when the upstream died after reading
 * the request, perhaps after committing it. A 4xx or an operator error is a refusal too.
 */
const NEVER_PROCESSED_STATUSES = [429, 503] as const;

const DECLARATION_STEPS_SQL = DECLARATION_STEPS.map((s) => `'${s}'`).join(', ');

/** SQL over `ledger_attempts`: attempts whose declaration may be in OpenCRVS. */
export const IN_DOUBT_ATTEMPT_SQL = `step IN (${DECLARATION_STEPS_SQL})
  AND (error_classification IS NULL OR (error_classification = 'retryable'
    AND COALESCE(error_status, 0) NOT IN (${NEVER_PROCESSED_STATUSES.join(', ')})))`;

/**
 * A later answer that shows what OpenCRVS holds under the transactionId ends the doubt: the NOTIFY was
 * stored and rejected by the country configuration (at once, or decided later: a pending check). The
 * row is dead then, and a requeue sends under the next transactionId generation. A 400 does not end it:
 * OpenCRVS checks the location before it looks for the transactionId, and forms and locations change, so
 * a copy refused now may have been stored then (delivery/attempt.ts asks OpenCRVS before the row dies).
 */
export function endsDoubt(error: { kind: string } | null): boolean {
  return error?.kind === 'rejected';
}
const DOUBT_ENDING_SQL = `b.error_kind = 'rejected'`;

/** An attempt `a` of the row `?` in doubt, and not ended by a later one (endsDoubt). */
const ATTEMPT_IN_DOUBT_SQL = `a.row_id = ? AND ${IN_DOUBT_ATTEMPT_SQL}
    AND NOT EXISTS (SELECT 1 FROM ledger_attempts b WHERE b.row_id = a.row_id AND b.id > a.id
      AND ${DOUBT_ENDING_SQL})`;

/**
 * SET clause of every statement that queues a row anew (a replay, a requeue by a newer version; `@now`):
 * the attempts recorded after it are the current transactionId generation's (SINCE_QUEUED_SQL), and a new
 * retry budget begins: every statement that sets `attempts = 0` uses it (migration 030's count starts again).
 */
export const QUEUED_NOW = `queued_at = @now,
  queued_after_attempt = COALESCE((SELECT MAX(q.id) FROM ledger_attempts q WHERE q.row_id = ledger_rows.id), 0),
  unreached_attempts = 0`;

/**
 * Attempt `a` of row `r` was recorded since the row was last queued: after the attempt it was queued
 * after (migration 025). By attempt id, which only grows, not by the clock: a clock stepped back past a
 * requeue (an NTP correction, a VM restored) made that generation's attempts look older than it, and their
 * doubt was missed. A row last queued before 025 is judged by the clock, as it was.
 */
const SINCE_QUEUED_SQL = `CASE WHEN r.queued_after_attempt IS NOT NULL THEN a.id > r.queued_after_attempt
    ELSE a.started_at >= r.queued_at END`;

/**
 * One row's earlier attempts since it was last queued: is any of them in doubt, and not ended by a later
 * one (endsDoubt)? (`?` = the row id.) A requeue (a replay, a corrected dead row) starts a new notify
 * transactionId, which nothing has been sent under yet: attempts before it say nothing about it. What
 * the row sends next depends on this; whether OpenCRVS may hold the row at all, on ROW_NOTIFY_MAY_STAND_SQL.
 */
export const ROW_IN_DOUBT_SQL = `SELECT 1 FROM ledger_attempts a JOIN ledger_rows r ON r.id = a.row_id
  WHERE ${ATTEMPT_IN_DOUBT_SQL} AND ${SINCE_QUEUED_SQL}
  LIMIT 1`;

/**
 * Whether OpenCRVS may hold a NOTIFY of the row from any earlier attempt: of any transactionId generation
 * (a requeue does not take back what an earlier one stored), and either kind of call, as the attempt
 * recorded it (`step`), whatever `delivery.mode` says now; not ended by a later rejection (`?` = the row
 * id). Counted or not: an attempt an outage hold un-counts (outbox.ts) is kept here all the same. A row
 * for which this holds is never cancelled, skipped or declared "nothing was sent" without asking OpenCRVS
 * first (notify-lookup.ts): a withdrawal (record.ts, delivery/withdraw.ts), a check before the send that
 * would make it dead (delivery/attempt.ts: a closed office, a facility listed otherwise), a 400 to its
 * resend. Not what the
 * row resends (ROW_IN_DOUBT_SQL). A later generation's rejection ends an earlier one's doubt too: a requeued row looks
 * its earlier NOTIFYs up before it sends (delivery/send.ts), and OpenCRVS answers a NOTIFY of a notified
 * event with a 409, not a decision.
 */
export const ROW_NOTIFY_MAY_STAND_SQL = `SELECT 1 FROM ledger_attempts a WHERE ${ATTEMPT_IN_DOUBT_SQL} LIMIT 1`;

/** The same for the attempt being settled (a failed one: an answered one is no doubt). */
export function failedAttemptInDoubt(step: string, error: { classification: string; status?: number }): boolean {
  return (
    (DECLARATION_STEPS as readonly string[]).includes(step) &&
    error.classification === 'retryable' &&
    !(NEVER_PROCESSED_STATUSES as readonly number[]).includes(error.status ?? 0)
  );
}

/**
 * Whether any attempt of the row since it was last queued (`@ever` 0), or ever (1), sent, or may have sent,
 * its declaration, whatever came of it (`@id` = the row id): a retry that finds none asks OpenCRVS first
 * (delivery/send.ts). Read on the row's attempts index, never the whole history.
 */
export const ROW_NOTIFY_SENT_SQL = `SELECT 1 FROM ledger_attempts a JOIN ledger_rows r ON r.id = a.row_id
  WHERE a.row_id = @id AND (@ever OR ${SINCE_QUEUED_SQL}) AND a.step IN (${DECLARATION_STEPS_SQL})
  LIMIT 1`;

/**
 * Whether an attempt of the row since it was last queued (`@ever` 0), or ever (1), met a failed
 * country-configuration confirmation of its NOTIFY (error kind `confirmation-failed`; `@id` = the row id):
 * delivery/attempt.ts keeps such a row dead. Read on the row's attempts index, never the whole history.
 */
export const ROW_CONFIRMATION_FAILED_SQL = `SELECT 1 FROM ledger_attempts a JOIN ledger_rows r ON r.id = a.row_id
  WHERE a.row_id = @id AND (@ever OR ${SINCE_QUEUED_SQL}) AND a.error_kind = 'confirmation-failed'
  LIMIT 1`;

/**
 * SET clause of every statement that counts a version as an update after notification outside an attempt's
 * own settle or take-back (record.ts; `@now`): with the row's last recorded attempt (migration 026), which
 * FORGET_HELD_BACK_SQL and settle's `counted` (outbox.ts) compare, not the clock. Those two mark the attempt
 * before their own, which is recorded after the mark: the id a reading during that attempt would take.
 */
export const UPDATED_AFTER_NOTIFICATION_NOW = `updated_after_notification_at = @now,
  updated_after_attempt = COALESCE((SELECT MAX(u.id) FROM ledger_attempts u WHERE u.row_id = ledger_rows.id), 0)`;

/**
 * Run for a row when a rejection ends the doubt (`?` = the row id): a version seen meanwhile was recorded as an update
 * after notification, its hash kept and its payload not (record.ts). The hash no longer names what the
 * row holds, and the rejected copy is not what OpenCRVS will keep: forgotten, so that the next sighting
 * of the record (a poll, a replay's re-read) requeues the row with it instead of finding it "unchanged".
 * A sighting of exactly the rejected copy leaves the row dead: the attempt keeps its hash (record.ts).
 * "Meanwhile" is since the row was last queued, by attempt ids (migrations 025, 026): a clock stepped back
 * past the queueing made a version counted since look older, and the row kept it "unchanged" behind the
 * rejection, never sent. With no attempt between them, the count is taken to come after the queueing: a
 * row counts a version only once a NOTIFY of its generation was sent, and that attempt's own count marks
 * the attempt before it. (Not so for a row in doubt whose withdrawal a worker settled, which records no
 * attempt, and that a new version requeued: its hash forgotten, its next reading looks the rejected copy up
 * and leaves the row as it was, record.ts.) A count or a queueing marked before those migrations is judged
 * by the clock, as it was.
 */
export const FORGET_HELD_BACK_SQL = `UPDATE ledger_rows SET payload_hash = CASE
  WHEN CASE WHEN updated_after_attempt IS NOT NULL AND queued_after_attempt IS NOT NULL
    THEN updated_after_attempt >= queued_after_attempt
    ELSE updated_after_notification_at >= queued_at END THEN NULL
  ELSE payload_hash END WHERE id = ?`;
