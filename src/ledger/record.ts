// Recording source events: idempotent on the natural key (INSERT … ON CONFLICT DO NOTHING, then a
// re-select), so a poll page read twice, a redelivered subscription notification or two sources racing
// on one subject all end in one row. What a later version does depends on how far the row has got.
import type { ContextReads } from './context-reads.js';
import type { Db } from './db.js';
import { sentCopyHash } from './hash.js';
import { QUEUED_NOW, ROW_IN_DOUBT_SQL, ROW_NOTIFY_MAY_STAND_SQL, UPDATED_AFTER_NOTIFICATION_NOW } from './in-doubt.js';
import {
  errorColumns,
  LEDGER_ROW_COLUMNS_NO_PAYLOAD,
  ledgerRowFromValues,
  payloadFrom,
  type SqlLedgerRow,
  toLedgerRow,
} from './rows.js';
import { NEXT_NOTIFY_GENERATION, transactionIdsFor } from './transaction-ids.js';
import {
  isDismissed,
  type LedgerError,
  type LedgerPayload,
  type LedgerRow,
  type RecordChange,
  type RecordEventInput,
  type Recorded,
  type RecordedEvent,
  type RecordInvalidInput,
  type RecordSkippedInput,
} from './types.js';

type Clock = () => number;

/** Rows not sent yet: the newest version decides. Once delivered the OpenCRVS event stands. */
const UNSENT = ['pending', 'failed', 'dead'];
/** Unsent rows whose retry comes under the current transactionId generation. */
const WAITING = ['pending', 'failed'];
/** Rows whose event OpenCRVS holds: a later version is recorded as an update after notification. */
const DELIVERED = ['delivered', 'delivered-pending'];
/** Rows the source can still withdraw: not sent yet, or in flight (then only marked; see `withdraw`). */
const WITHDRAWABLE = [...UNSENT, 'delivering'];

export interface Recorder {
  recordEvent(input: RecordEventInput): RecordedEvent;
  recordSkipped(input: RecordSkippedInput): Recorded;
  cancelUnsent(input: RecordSkippedInput): LedgerRow | undefined;
  recordInvalid(input: RecordInvalidInput): Recorded;
}

/** The row as recorded, with the column only recording compares (migration 017). */
type SqlRecordedRow = SqlLedgerRow & { source_fingerprint: string | null };

interface KeyInput {
  sourceId: string;
  eventType: string;
  subjectKey: string;
}

/**
 * `settleMs`: a new event waits this long before its first delivery, so an EMR that writes a birth
 * resource by resource (child, then encounter, then weight) is complete before it is notified; later
 * versions within the wait replace the pending payload.
 */
export function createRecorder(db: Db, now: Clock, settleMs = 0, contextReads?: ContextReads): Recorder {
  // The inserted row comes back from the insert itself (nothing on a conflict): no second read of it, nor of
  // the payload just written, which the caller holds (insertRow).
  const insert = db
    .prepare<Record<string, unknown>, unknown[]>(`
    INSERT INTO ledger_rows (source_id, event_type, subject_key, source_ref, source_version, mapping_id, state,
      attempts, next_run_at, base_transaction_id, create_transaction_id, notify_transaction_id, office, facility,
      payload, payload_hash, last_error_classification, last_error_kind, last_error_status, last_error_message,
      first_seen_at, queued_at, queued_after_attempt, created_at, updated_at, skip_reason, source_fingerprint)
    VALUES (@sourceId, @eventType, @subjectKey, @sourceRef, @sourceVersion, @mappingId, @state,
      0, @runAt, @base, @create, @notify, @office, @facility,
      @payload, @payloadHash, @errClassification, @errKind, @errStatus, @errMessage,
      @seenAt, @now, 0, @now, @now, @skipReason, @sourceFingerprint)
    ON CONFLICT (source_id, event_type, subject_key) DO NOTHING
    RETURNING ${LEDGER_ROW_COLUMNS_NO_PAYLOAD}`)
    .raw();
  const byKey = db.prepare<[string, string, string], SqlRecordedRow>(
    'SELECT * FROM ledger_rows WHERE source_id = ? AND event_type = ? AND subject_key = ?',
  );
  const replacePayload = db.prepare(`
    UPDATE ledger_rows SET payload = @payload, payload_hash = @payloadHash, office = @office, facility = @facility,
      source_ref = @sourceRef, source_version = @sourceVersion, mapping_id = @mappingId, withdrawn_reason = NULL,
      source_fingerprint = @sourceFingerprint, updated_at = @now
    WHERE id = @id`);
  // In flight: the copy being sent is set aside first (once), for a lock taken back after its NOTIFY may
  // have gone out (outbox.ts). Settling the attempt drops it.
  const replaceInFlight = db.prepare(`
    UPDATE ledger_rows SET in_flight_payload = COALESCE(in_flight_payload, payload), payload = @payload,
      payload_hash = @payloadHash, office = @office, facility = @facility, source_ref = @sourceRef,
      source_version = @sourceVersion, mapping_id = @mappingId, withdrawn_reason = NULL,
      source_fingerprint = @sourceFingerprint, updated_at = @now
    WHERE id = @id`);
  // A NOTIFY of this row may already be in OpenCRVS (its answer was lost): the retry must replay exactly
  // what was sent, so a newer version is recorded as an update after notification, not sent.
  // The hash becomes the newer version's (as for a delivered row): seen again, it is no second update.
  const markUpdatedInDoubt = db.prepare(`
    UPDATE ledger_rows SET ${UPDATED_AFTER_NOTIFICATION_NOW},
      updates_after_notification = updates_after_notification + 1, payload_hash = @payloadHash,
      source_ref = @sourceRef, source_version = @sourceVersion, withdrawn_reason = NULL,
      source_fingerprint = @sourceFingerprint, updated_at = @now
    WHERE id = @id`);
  // The same in doubt, for a reading of the same source content mapped otherwise: not counted, but the
  // hash follows (the next reading is unchanged), and a withdrawal ends, as above: the source has it again.
  const restampInDoubt = db.prepare(`
    UPDATE ledger_rows SET payload_hash = @payloadHash, source_ref = @sourceRef, source_version = @sourceVersion,
      withdrawn_reason = NULL, source_fingerprint = @sourceFingerprint, updated_at = @now
    WHERE id = @id`);
  // A NOTIFY (or single call) that may have been stored by OpenCRVS: answered, failed in a way that can
  // follow a commit (500, 502, 504, a timeout, a dropped connection), or cut short by a process that
  // died (in-doubt.ts).
  const notifyAttempted = db.prepare<[number], number>(ROW_IN_DOUBT_SQL).pluck();
  // The same of any generation: what a requeue started anew says nothing of what an earlier one stored.
  const notifyMayStand = db.prepare<[number], number>(ROW_NOTIFY_MAY_STAND_SQL).pluck();
  // An invalid reading of such a row, or of a delivered one, whose source content is not what it was when
  // last read (see recordInvalid): an update after notification, as markUpdatedInDoubt and
  // markUpdatedAfterNotification count one. Payload, hash and state stay the copy's, which the retry
  // resends or OpenCRVS holds; the fingerprint follows, so that content read again (or an office closed and
  // reopened meanwhile) is no second update.
  const markInvalidChanged = db.prepare(`
    UPDATE ledger_rows SET ${UPDATED_AFTER_NOTIFICATION_NOW},
      updates_after_notification = updates_after_notification + 1, source_ref = @sourceRef,
      source_fingerprint = @sourceFingerprint, updated_at = @now
    WHERE id = @id`);
  // An invalid reading of changed content while a first attempt (no NOTIFY in doubt yet) sends the row: the
  // copy in flight is set aside, as a newer valid version's is (replaceInFlight), and the row holds nothing
  // to send. Delivered, settle keeps the copy and counts the change once (its hash moved); in doubt, it
  // keeps the copy and counts it; rejected, it stays dead (nothing newer waits); refused, failed or handed
  // back, the row has no payload and goes dead at its next attempt rather than send what the source no
  // longer says (outbox.ts, delivery/attempt.ts).
  const setAsideInFlight = db.prepare(`
    UPDATE ledger_rows SET in_flight_payload = COALESCE(in_flight_payload, payload), payload = NULL,
      payload_hash = NULL, source_ref = @sourceRef, withdrawn_reason = NULL, source_fingerprint = @sourceFingerprint,
      updated_at = @now
    WHERE id = @id`);
  const unwithdraw = db.prepare(`
    UPDATE ledger_rows SET withdrawn_reason = NULL, source_ref = @sourceRef, updated_at = @now WHERE id = @id`);
  const markWithdrawn = db.prepare(`
    UPDATE ledger_rows SET withdrawn_reason = @reason, source_ref = @sourceRef, updated_at = @now WHERE id = @id`);
  const requeue = db.prepare(`
    UPDATE ledger_rows SET state = 'pending', attempts = 0, next_run_at = @now, ${QUEUED_NOW}, skip_reason = NULL,
      withdrawn_reason = NULL,
      payload = @payload, payload_hash = @payloadHash, office = @office, facility = @facility,
      source_ref = @sourceRef, source_version = @sourceVersion, mapping_id = @mappingId,
      source_fingerprint = @sourceFingerprint, updated_at = @now,
      ${NEXT_NOTIFY_GENERATION}
    WHERE id = @id`);
  const markUpdatedAfterNotification = db.prepare(`
    UPDATE ledger_rows SET ${UPDATED_AFTER_NOTIFICATION_NOW},
      updates_after_notification = updates_after_notification + 1,
      payload_hash = @payloadHash, source_ref = @sourceRef, source_version = @sourceVersion,
      source_fingerprint = @sourceFingerprint, updated_at = @now
    WHERE id = @id`);
  // A delivered or dismissed row whose record is mapped otherwise (same source content, another payload), or
  // a dismissed one read again as a copy OpenCRVS rejected (see recordEvent): it stays as it is, its hash
  // now this reading's, so the next read is unchanged. The payload is untouched (a dismissed row has none; a
  // delivered one keeps what was sent), and so is updated_at (when it was dismissed: docs/admin.md).
  const restampMappedOtherwise = db.prepare(`
    UPDATE ledger_rows SET payload_hash = @payloadHash, source_ref = @sourceRef, source_version = @sourceVersion,
      mapping_id = @mappingId, source_fingerprint = @sourceFingerprint
    WHERE id = @id`);
  // The rejection of this copy (what OpenCRVS received of it: hash.ts) by an attempt of the row, under
  // any notify generation, the latest (migration 019). Read on the row's attempts index.
  const rejectionOf = db.prepare<
    { id: number; copy: string },
    { classification: string | null; kind: string | null; status: number | null; message: string | null }
  >(`SELECT error_classification AS classification, error_kind AS kind, error_status AS status,
       error_message AS message
     FROM ledger_attempts WHERE row_id = @id AND copy_hash = @copy AND error_kind = 'rejected'
     ORDER BY id DESC LIMIT 1`);
  type Rejection = NonNullable<ReturnType<typeof rejectionOf.get>>;
  // The row's latest rejection, when it names no copy: recorded before migration 019. Not one that says it
  // names none (NO_COPY_NAMED, hash.ts: a pending answer's decision on an earlier NOTIFY). See rejectedBefore019.
  const unnamedRejection = db.prepare<[number], Rejection & { attempt: number }>(`
    SELECT id AS attempt, error_classification AS classification, error_kind AS kind, error_status AS status,
      error_message AS message
    FROM (SELECT * FROM ledger_attempts WHERE row_id = ? AND error_kind = 'rejected' ORDER BY id DESC LIMIT 1)
    WHERE copy_hash IS NULL`);
  const nameRejectedCopy = db.prepare('UPDATE ledger_attempts SET copy_hash = @copy WHERE id = @attempt');
  const rejectionColumns = (rejection: Rejection) => ({
    errClassification: rejection.classification,
    errKind: rejection.kind,
    errStatus: rejection.status,
    errMessage: rejection.message,
  });
  // A row read again as a copy OpenCRVS rejected (see recordEvent): dead, holding that copy (a replay, an
  // operator's decision, sends it), saying why again: an invalid reading since, or a later copy's death, had
  // put its own error there. A dead row stays so; one waiting to be sent (requeued by a newer version) is
  // dead again, its retry budget and queued_at kept: nothing was sent under the generation the requeue
  // started (a NOTIFY in doubt is not replaced, above), and the next version's requeue starts another.
  const deadWithRejection = db.prepare(`
    UPDATE ledger_rows SET state = 'dead', payload = @payload, payload_hash = @payloadHash, office = @office,
      facility = @facility, source_ref = @sourceRef, source_version = @sourceVersion, mapping_id = @mappingId,
      withdrawn_reason = NULL, source_fingerprint = @sourceFingerprint, last_error_classification = @errClassification,
      last_error_kind = @errKind, last_error_status = @errStatus, last_error_message = @errMessage, updated_at = @now
    WHERE id = @id`);
  // The same read while the newer version is sent: the copy in flight is set aside, as for an invalid reading
  // (setAsideInFlight), and the row holds nothing to send, only the rejected copy's hash. Delivered, settle
  // keeps the copy sent and counts the change once (the hash moved); rejected, it stays dead (nothing newer
  // waits); refused, failed or handed back, it goes dead at its next attempt. The next reading of the
  // record, finding it dead with no payload, puts the rejected copy and its rejection back (deadWithRejection).
  const setAsideForRejected = db.prepare(`
    UPDATE ledger_rows SET in_flight_payload = COALESCE(in_flight_payload, payload), payload = NULL,
      payload_hash = @payloadHash, source_ref = @sourceRef, source_version = @sourceVersion, mapping_id = @mappingId,
      withdrawn_reason = NULL, source_fingerprint = @sourceFingerprint, updated_at = @now
    WHERE id = @id`);
  // The same payload read from content that moved (a change the mapping does not read), or a row recorded
  // before fingerprints were kept: the fingerprint follows, so a later mapping change compares with it.
  const noteFingerprint = db.prepare('UPDATE ledger_rows SET source_fingerprint = @sourceFingerprint WHERE id = @id');
  const skipRow = `
    UPDATE ledger_rows SET state = 'skipped', skip_reason = @reason, payload = NULL, payload_hash = NULL,
      source_ref = @sourceRef, updated_at = @now
    WHERE id = @id`;
  const markSkipped = db.prepare(skipRow);
  // Conditional on the state, so cancelUnsent needs no transaction of its own: it runs for every
  // non-event of a pass (inside the pass's transaction), and most find no row at all.
  const markUnsentSkipped = db.prepare(`${skipRow} AND state IN (${UNSENT.map((state) => `'${state}'`).join(', ')})`);
  const markInvalid = db.prepare(`
    UPDATE ledger_rows SET state = 'dead', payload = NULL, payload_hash = NULL, skip_reason = NULL,
      last_error_classification = @errClassification, last_error_kind = @errKind, last_error_status = NULL,
      last_error_message = @errMessage, mapping_id = @mappingId, source_ref = @sourceRef, updated_at = @now
    WHERE id = @id`);

  // Whether a reading is of the content the row was recorded from: both fingerprints known and equal.
  // The reading's is computed only when the row has one to compare it with.
  const sameContent = (existing: SqlRecordedRow, input: RecordEventInput): boolean =>
    existing.source_fingerprint !== null && existing.source_fingerprint === input.sourceFingerprint?.();

  // sameContent, or the row's fingerprint is the reading's as versions before took it (a DHIS2 source left
  // out its own write-back only, not the tracking ids the other sources of its server write back onto what it
  // reads: mapping/fingerprint.ts OwnWrites.ownOnly). For a dismissed row: one dismissed then and first read
  // again mapped otherwise would be taken for a changed record and sent; for a delivered one (or one whose
  // NOTIFY may be stored), counted an update after notification. Computed only when the reading's
  // own differs and the source has such other write-backs. A record that changed differs from both.
  const sameContentAnyRule = (existing: SqlRecordedRow, input: RecordEventInput): boolean =>
    sameContent(existing, input) || takenByEarlierRule(existing, input);

  // The row's fingerprint is the reading's as the rule before takes it (see sameContentAnyRule).
  const takenByEarlierRule = (existing: SqlRecordedRow, input: { ownOnlyFingerprint?: () => string }): boolean =>
    existing.source_fingerprint !== null && existing.source_fingerprint === input.ownOnlyFingerprint?.();

  // Whether a reading names content other than what the row was last read from (or the row names none).
  const movedContent = (existing: SqlRecordedRow, input: RecordEventInput): boolean => {
    const fingerprint = input.sourceFingerprint?.();
    return !!fingerprint && existing.source_fingerprint !== fingerprint;
  };

  // A row waiting to be sent again or being sent, whose NOTIFY (or single call) may already be stored by
  // OpenCRVS (notifyAttempted): its retry must resend that very copy.
  const notifyMayBeStored = (existing: SqlRecordedRow): boolean =>
    (WAITING.includes(existing.state) || existing.state === 'delivering') && !!notifyAttempted.get(existing.id);

  /**
   * A rejection recorded before migration 019 names no copy, so rejectionOf cannot find it. The rule that
   * stood before it still can: a dead row whose latest error is that rejection and whose hash was forgotten
   * (FORGET_HELD_BACK_SQL: a change was counted while the copy was in doubt, then that copy was resent and
   * rejected) holds the very copy OpenCRVS rejected. Read again as it, the attempt is given that copy's hash
   * (so an invalid reading dropping the payload later no longer loses it) and the row stays dead. Not a row
   * whose hash stayed: its payload may be a newer version set in place while the rejected copy was sent.
   * Nor a rejection recorded since that names no copy (NO_COPY_NAMED: OpenCRVS held an earlier NOTIFY than
   * the row's copy, `olderCopy`): the row then holds a version OpenCRVS never had, which goes out.
   */
  const rejectedBefore019 = (existing: SqlRecordedRow, copy: string): Rejection | undefined => {
    if (existing.payload_hash !== null || existing.payload === null || existing.last_error_kind !== 'rejected')
      return undefined;
    const rejection = unnamedRejection.get(existing.id);
    if (!rejection || sentCopyHash(JSON.parse(existing.payload) as LedgerPayload) !== copy) return undefined;
    nameRejectedCopy.run({ attempt: rejection.attempt, copy });
    return rejection;
  };

  /** A row an operator dismissed (`dismiss`): skipped with the dismissal's reason, its hash kept. */
  const dismissedRow = (existing: SqlRecordedRow): boolean =>
    existing.state === 'skipped' && isDismissed(existing.skip_reason);

  const reselect = (key: KeyInput): SqlRecordedRow => {
    const row = byKey.get(key.sourceId, key.eventType, key.subjectKey);
    if (!row) throw new Error('ledger row vanished inside its own transaction');
    return row;
  };

  const insertRow = (
    key: KeyInput,
    fields: {
      sourceRef: string;
      state: 'pending' | 'dead' | 'skipped';
      sourceVersion?: string | null;
      mappingId?: string | null;
      office?: string | null;
      facility?: string | null;
      payload?: string | null;
      payloadHash?: string | null;
      error?: LedgerError | null;
      skipReason?: string | null;
      seenAt?: number;
      sourceFingerprint?: string | null;
    },
    /** The payload `fields.payload` holds as JSON, for the row returned. */
    payloadObject: LedgerPayload | null = null,
  ): LedgerRow | undefined => {
    const at = now();
    const ids = transactionIdsFor(key.sourceId, key.eventType, key.subjectKey);
    const err = errorColumns(fields.error ?? null);
    const values = insert.get({
      ...key,
      sourceRef: fields.sourceRef,
      sourceVersion: fields.sourceVersion ?? null,
      mappingId: fields.mappingId ?? null,
      state: fields.state,
      now: at,
      runAt: at + settleMs,
      base: ids.base,
      create: ids.create,
      notify: ids.notify,
      office: fields.office ?? null,
      facility: fields.facility ?? null,
      payload: fields.payload ?? null,
      payloadHash: fields.payloadHash ?? null,
      errClassification: err.classification,
      errKind: err.kind,
      errStatus: err.status,
      errMessage: err.message,
      seenAt: fields.seenAt ?? at,
      skipReason: fields.skipReason ?? null,
      sourceFingerprint: fields.sourceFingerprint ?? null,
    });
    // As parsePayload would read it back: the same checks and shape, without the JSON round trip.
    return values && { ...ledgerRowFromValues(values), payload: payloadObject && payloadFrom(payloadObject) };
  };

  // The reading's context reads (migration 023) replace the row's, in the transaction that records it.
  const keepReads = (
    row: LedgerRow,
    input: { sourceId: string; contextReads?: readonly string[]; contextReadBy?: string },
    fresh: boolean,
  ): void => {
    if (contextReads && input.contextReads)
      contextReads.keep(row.id, input.contextReadBy ?? input.sourceId, input.contextReads, fresh);
  };

  const recordEvent = db.transaction((input: RecordEventInput): RecordedEvent => {
    // The reading's fingerprint costs about as much as the mapping's evaluation: computed only where it is
    // stored or compared, not for the commonest reading, a delivered row read again unchanged. So the row is
    // looked up before the insert, which stores it (no other writer comes between: the transaction is
    // immediate).
    const found = byKey.get(input.sourceId, input.eventType, input.subjectKey);
    const recorded = recordEventRow(input, found);
    keepReads(recorded.row, input, recorded.change === 'inserted');
    return found?.state === 'skipped' ? { ...recorded, skippedFor: found.skip_reason } : recorded;
  });

  const recordEventRow = (
    input: RecordEventInput,
    found: SqlRecordedRow | undefined,
  ): { row: LedgerRow; change: RecordChange } => {
    const payload = JSON.stringify(input.payload);
    const fields = {
      sourceRef: input.sourceRef,
      sourceVersion: input.sourceVersion ?? null,
      mappingId: input.mappingId ?? null,
      office: input.payload.office,
      facility: input.payload.facility ?? null,
      payload,
      payloadHash: input.payloadHash,
    };
    const fingerprint = (): string | null => input.sourceFingerprint?.() ?? null;
    let existing = found;
    if (!existing) {
      const inserted = insertRow(
        input,
        { ...fields, sourceFingerprint: fingerprint(), state: 'pending', seenAt: input.seenAt },
        input.payload,
      );
      if (inserted) return { row: inserted, change: 'inserted' };
      existing = reselect(input);
    }
    const id = existing.id;
    const at = now();
    const params = () => ({ ...fields, sourceFingerprint: fingerprint(), id, now: at });
    const same = existing.payload_hash === input.payloadHash;
    // A row waiting to be sent again (not in flight) whose NOTIFY may already be in OpenCRVS (see
    // markUpdatedInDoubt) keeps what it sent: its retry must resend exactly that. A single call (v1.9
    // createAndNotify) whose answer was lost leaves no event id, so the attempts decide. A row being sent
    // again after such a NOTIFY too: its worker resends the claimed copy, which settle keeps (outbox.ts),
    // so the newer version is counted here, once. Not a dead row: the requeue below starts the next
    // transactionId generation, whose first attempt asks OpenCRVS what the earlier ones left before it
    // sends anything (delivery/send.ts), so it may carry the newer version (a route to an office still
    // open, a corrected record).
    const inDoubt = !same && notifyMayBeStored(existing);
    if (inDoubt) {
      // Not when only the bridge moved (an upgrade, a mapping change, an office reopened that had made a
      // reading of this content invalid, already counted then): the source content is the same.
      if (sameContentAnyRule(existing, input)) {
        // A row in flight is left as it is: its settle compares hashes (outbox.ts), and a hash moved under
        // it would count this reading there. Its next reading finds it settled.
        if (existing.state !== 'delivering') restampInDoubt.run(params());
        return { row: toLedgerRow(reselect(input)), change: 'unchanged' };
      }
      markUpdatedInDoubt.run(params());
      return { row: toLedgerRow(reselect(input)), change: 'updated-after-notification' };
    }
    let change: RecordChange = 'unchanged';
    switch (existing.state) {
      case 'delivered':
      case 'delivered-pending':
        // Already notified: OpenCRVS has the event. Record that the source moved on; never send again.
        // Not when only the bridge moved (an upgrade, a mapping change): the source content is what it was
        // (its fingerprint), and counting it would ask someone to correct in OpenCRVS what did not change.
        if (!same && sameContentAnyRule(existing, input)) restampMappedOtherwise.run(params());
        else if (!same) {
          markUpdatedAfterNotification.run(params());
          change = 'updated-after-notification';
        } else if (existing.source_fingerprint === null && input.sourceFingerprint !== undefined) {
          // Delivered before fingerprints were kept: from now on a mapping change is told from a correction.
          noteFingerprint.run(params());
        }
        break;
      case 'pending':
      case 'failed':
      case 'delivering': {
        // Not yet delivered: the next attempt sends the newer payload. A worker holding the row keeps
        // sending the copy it claimed; `settle` compares hashes and, if that copy was delivered, records
        // this version as an update after notification (it was never sent) instead of losing it.
        // Not a row in flight whose content is the same (a mapping change alone): settle would count the
        // newer payload as an update after notification once the claimed copy is delivered. Its next
        // reading, once settled, replaces the payload if it still waits, or finds it delivered.
        // Nor a waiting row read as a copy OpenCRVS rejected (a version that requeued the dead row, then the
        // record back as it was): the source says again exactly what OpenCRVS decided on, so the row is dead
        // again, as the dead branch below leaves it. Sent, that copy would go out under the generation the
        // newer version started. Only an operator's replay sends it again (the row keeps no mark of one: a
        // replayed row whose record changes and comes back before it is sent is dead again, to replay again).
        // In flight, its worker keeps sending the copy it claimed, and nothing is left to send after it; that
        // row, left waiting with no payload (a retry), is dead again at its next reading of that copy.
        const lookUp = !same || (existing.payload === null && existing.state !== 'delivering');
        const rejection = lookUp ? rejectionOf.get({ id, copy: sentCopyHash(input.payload) }) : undefined;
        if (!same && existing.state === 'delivering' && sameContentAnyRule(existing, input)) {
          // The same content mapped otherwise while it is sent: see above.
        } else if (rejection) {
          if (existing.state === 'delivering') setAsideForRejected.run(params());
          else deadWithRejection.run({ ...params(), ...rejectionColumns(rejection) });
        } else if (!same) {
          (existing.state === 'delivering' ? replaceInFlight : replacePayload).run(params());
          change = 'replaced';
        } else if (existing.withdrawn_reason !== null) {
          // Withdrawn, then back as it was (a merge undone): deliver it after all.
          replacePayload.run(params());
        } else if (movedContent(existing, input)) {
          // The same payload from content that moved (the mother's phone, an encounter's status): the
          // fingerprint names what was read last, so that an invalid reading of this content (an office
          // closed since) is not taken for a change of the record (recordInvalid), and a row that dies and is
          // dismissed later keeps what was read last, not its first reading (an upgrade's reading mapped
          // otherwise would take the unchanged record for a correction).
          noteFingerprint.run(params());
        }
        break;
      }
      case 'dead':
      case 'skipped': {
        // A new version may be what fixes the row (a corrected record, or one that became notifiable):
        // it goes back to the queue with a fresh retry budget. The same payload again stays where it is,
        // and so does a row a person dismissed (its hash kept), seen again unchanged.
        const dismissed = dismissedRow(existing);
        // Read as a copy OpenCRVS rejected (the record changed meanwhile, then back; read invalid meanwhile,
        // or while that copy was sent; its hash forgotten when a change was counted in doubt): OpenCRVS
        // decided on that copy, so the row stays dead, as if the record had never changed, its hash this
        // reading's. Requeued, it would send the rejected copy once more under the next generation. Only a
        // reading the row does not already hold is looked up: the commonest, the same again, costs nothing.
        // A dismissed row too: the person decided on the row, OpenCRVS on that copy, and neither sends it.
        // Dismissed since (payload dropped, hash kept), it stays dismissed, its hash this reading's, as for
        // a reading mapped otherwise; only a version OpenCRVS has not decided on brings it back.
        const lookUp = existing.state === 'dead' ? !same || existing.payload === null : dismissed && !same;
        const copy = lookUp ? sentCopyHash(input.payload) : undefined;
        const rejection =
          copy !== undefined ? (rejectionOf.get({ id, copy }) ?? rejectedBefore019(existing, copy)) : undefined;
        // Dismissed, and the payload differs but the source content is what it was (its fingerprint was
        // recorded with the hash kept; taken by a version before, it may be as that version took it:
        // sameContentAnyRule): the bridge maps the same record otherwise (an upgrade, a mapping change). The
        // person's decision was about that record: it stays dismissed, now with this version's fingerprint.
        // Not a plain dead row: the bridge mapping it otherwise may be what fixes it (a payload OpenCRVS refused).
        if (
          dismissed &&
          ((!same && existing.payload_hash !== null && sameContentAnyRule(existing, input)) || rejection)
        ) {
          restampMappedOtherwise.run(params());
        } else if (rejection) {
          deadWithRejection.run({ ...params(), ...rejectionColumns(rejection) });
        } else if (!same || (existing.state === 'skipped' && !dismissed)) {
          requeue.run(params());
          change = 'replaced';
        } else if (existing.state === 'dead' && existing.payload === null) {
          // A dismissal undone (`undismiss`): dismiss dropped the payload and kept the hash. The row stays
          // dead, now with something to send, so that replaying it, which reads the record again, can.
          replacePayload.run(params());
        } else if (movedContent(existing, input)) {
          noteFingerprint.run(params());
        }
        break;
      }
    }
    return { row: toLedgerRow(reselect(input)), change };
  };

  // Runs for every record that is no event (most patients, under each mapping): a few columns, no payload.
  const stateByKey = db.prepare<
    [string, string, string],
    { id: number; state: string; event_id: string | null; withdrawn_reason: string | null }
  >(
    'SELECT id, state, event_id, withdrawn_reason FROM ledger_rows WHERE source_id = ? AND event_type = ? AND subject_key = ?',
  );

  /**
   * The source withdrew a row not delivered yet. One in flight, or whose OpenCRVS event exists (a NOTIFY
   * may have reached OpenCRVS with its answer lost), cannot just become skipped: the ledger would say
   * "not sent" of a registration OpenCRVS holds. It is marked, and the worker settles it once it knows.
   */
  const withdraw = (
    existing: { id: number; state: string; event_id: string | null; withdrawn_reason: string | null },
    input: RecordSkippedInput,
  ): 'marked' | 'already marked' | 'cancel' => {
    // Nothing left for OpenCRVS yet (no event, no NOTIFY or single call of any generation that may stand):
    // cancel outright. A single call stores no event id, and a requeue does not undo what it stored.
    if (existing.state !== 'delivering' && existing.event_id === null && !notifyMayStand.get(existing.id))
      return 'cancel';
    if (existing.withdrawn_reason === input.reason) return 'already marked';
    markWithdrawn.run({ id: existing.id, reason: input.reason, sourceRef: input.sourceRef, now: now() });
    return 'marked';
  };

  const cancelUnsent = (input: RecordSkippedInput): LedgerRow | undefined => {
    const existing = stateByKey.get(input.sourceId, input.eventType, input.subjectKey);
    if (!existing || !WITHDRAWABLE.includes(existing.state)) return undefined;
    const withdrawn = withdraw(existing, input);
    if (withdrawn === 'marked') return toLedgerRow(reselect(input));
    if (withdrawn === 'already marked') return undefined;
    const params = { id: existing.id, reason: input.reason, sourceRef: input.sourceRef, now: now() };
    return markUnsentSkipped.run(params).changes === 1 ? toLedgerRow(reselect(input)) : undefined;
  };

  const recordSkipped = db.transaction((input: RecordSkippedInput): Recorded => {
    const inserted = insertRow(input, { sourceRef: input.sourceRef, state: 'skipped', skipReason: input.reason });
    if (inserted) {
      return { row: inserted, changed: true };
    }
    const existing = reselect(input);
    // A later version that is no longer notifiable cancels a delivery that has not happened.
    const withdrawn = WITHDRAWABLE.includes(existing.state) ? withdraw(existing, input) : 'cancel';
    if (withdrawn !== 'cancel') return { row: toLedgerRow(reselect(input)), changed: withdrawn === 'marked' };
    // Not a row a person dismissed: a reading that is no event (an exclusion, a mapping change) says nothing
    // new of the record, and replacing the dismissal would drop its kept hash, so that the next valid reading
    // of the same record requeued it and sent what the person said not to (as recordInvalid).
    const dismissed = dismissedRow(existing);
    const cancellable = !dismissed && (UNSENT.includes(existing.state) || existing.state === 'skipped');
    const changed = cancellable && (existing.state !== 'skipped' || existing.skip_reason !== input.reason);
    if (changed) markSkipped.run({ id: existing.id, reason: input.reason, sourceRef: input.sourceRef, now: now() });
    return { row: toLedgerRow(reselect(input)), changed };
  });

  /**
   * An invalid reading of a row whose NOTIFY may be in OpenCRVS, or was delivered: it keeps its copy, and
   * says what the reading tells of the record. The mapping's errors cannot: a closed office or a mapping
   * change (config, not the record) gives other errors for the same record, and they name no payload a
   * later valid reading could be compared with. The source content's fingerprint can: a change since the
   * content last read (valid or not) is an update after notification, counted once however often it is
   * read again; the same content read again is nothing (nor, read valid later, is it: recordEvent finds
   * the same content). A row recorded before fingerprints were kept (migration 017) gets this one, and
   * counts from the next change on. Without a fingerprint (a record the context needs could not be read,
   * `source-read`, or a context that could not be assembled) the reading says nothing of the record.
   * With one it shows the record is in the source: a withdrawal of a row in doubt no longer holds, as for
   * a valid reading. A delivered row keeps its withdrawal, as recordEvent leaves it: settle counted it.
   */
  const keepNotified = (existing: SqlRecordedRow, input: RecordInvalidInput, error: LedgerError): Recorded => {
    const fingerprint = error.kind === 'mapping' ? input.sourceFingerprint?.() : undefined;
    if (fingerprint === undefined) return { row: toLedgerRow(existing), changed: false };
    const params = { id: existing.id, sourceRef: input.sourceRef, sourceFingerprint: fingerprint, now: now() };
    // The row's fingerprint taken by the rule before is the same content: noted anew.
    const earlierRule = takenByEarlierRule(existing, input);
    const counted = existing.source_fingerprint !== null && existing.source_fingerprint !== fingerprint && !earlierRule;
    if (counted) markInvalidChanged.run(params);
    else if (existing.source_fingerprint === null || earlierRule) noteFingerprint.run(params);
    const back = existing.withdrawn_reason !== null && !DELIVERED.includes(existing.state);
    if (back) unwithdraw.run(params);
    // Changed only when counted: a withdrawal ended by the same content read again is no news of the record
    // (recordEvent calls it unchanged too), and `sync` lists the row, not done, among the earlier ones.
    return { row: toLedgerRow(reselect(input)), changed: counted };
  };

  /**
   * An invalid reading of a row being sent whose NOTIFY cannot be in OpenCRVS yet (its first attempt, say).
   * Unrecorded, a delivery would leave the change uncounted and the fingerprint the old content's, and a
   * failed attempt would leave the stale copy to be resent. As in keepNotified, only a change of the
   * source content counts: the same content read invalid (an office closed while it is sent) is config,
   * and the attempt goes on as it is.
   */
  const invalidInFlight = (existing: SqlRecordedRow, input: RecordInvalidInput, error: LedgerError): Recorded => {
    const fingerprint = error.kind === 'mapping' ? input.sourceFingerprint?.() : undefined;
    if (fingerprint === undefined || existing.source_fingerprint === fingerprint)
      return { row: toLedgerRow(existing), changed: false };
    const params = { id: existing.id, sourceRef: input.sourceRef, sourceFingerprint: fingerprint, now: now() };
    if (existing.source_fingerprint === null || takenByEarlierRule(existing, input)) {
      noteFingerprint.run(params);
      return { row: toLedgerRow(existing), changed: false };
    }
    setAsideInFlight.run(params);
    return { row: toLedgerRow(reselect(input)), changed: true };
  };

  const recordInvalid = db.transaction((input: RecordInvalidInput): Recorded => {
    const recorded = recordInvalidRow(input);
    keepReads(recorded.row, input, recorded.inserted === true);
    return { row: recorded.row, changed: recorded.changed };
  });

  const recordInvalidRow = (input: RecordInvalidInput): Recorded & { inserted?: true } => {
    const error: LedgerError = {
      classification: 'permanent',
      kind: input.kind ?? 'mapping',
      message: input.errors.map((e) => `${e.field}: ${e.message}`).join('; ') || 'invalid mapping output',
    };
    const err = errorColumns(error);
    const inserted = insertRow(input, { sourceRef: input.sourceRef, mappingId: input.mappingId, state: 'dead', error });
    if (inserted) {
      return { row: inserted, changed: true, inserted: true };
    }
    const existing = reselect(input);
    // Not yet delivered: sending the older valid payload would send stale data, so the row becomes a
    // visible dead letter until a valid version arrives (recordEvent requeues it) or an operator replays.
    // Delivered: the OpenCRVS event stands, and a change of the record since is counted as a newer valid
    // version is (keepNotified). In flight, with no NOTIFY in doubt: the copy being sent is set aside when
    // the content changed (invalidInFlight).
    // Not a row whose NOTIFY may already be in OpenCRVS (answered, or failed in a way that can follow a
    // commit), waiting or being sent again, as in recordEvent: its retry must resend that very copy, which
    // OpenCRVS stored once or not at all, and dead with no payload it would be neither sent nor written
    // back, while OpenCRVS may hold the birth (a review: an office closed since makes the record invalid
    // when read again).
    if (notifyMayBeStored(existing) || DELIVERED.includes(existing.state)) return keepNotified(existing, input, error);
    if (existing.state === 'delivering') return invalidInFlight(existing, input, error);
    // A row a person dismissed has nothing to send either, and an invalid reading is no new content to
    // decide on (an office closed since, a mapping change): made dead, it would lose the dismissal, and the
    // next valid reading would requeue it and send what the person said not to. It stays as it is.
    const dismissed = dismissedRow(existing);
    const replaceable = ['pending', 'failed', 'dead', 'skipped'].includes(existing.state) && !dismissed;
    const alreadySame =
      existing.state === 'dead' && existing.last_error_message === err.message && existing.last_error_kind === err.kind;
    const changed = replaceable && !alreadySame;
    if (changed) {
      markInvalid.run({
        id: existing.id,
        errClassification: err.classification,
        errKind: err.kind,
        errMessage: err.message,
        mappingId: input.mappingId ?? existing.mapping_id,
        sourceRef: input.sourceRef,
        now: now(),
      });
    }
    return { row: toLedgerRow(reselect(input)), changed };
  };

  return {
    recordEvent: (input) => recordEvent.immediate(input),
    recordSkipped: (input) => recordSkipped.immediate(input),
    cancelUnsent,
    recordInvalid: (input) => recordInvalid.immediate(input),
  };
}
