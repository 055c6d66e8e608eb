// The calls for one claimed row. Two-step (default): create with the row's create transactionId, store
// the event id in its own write, then notify: a crash between the two resumes at notify, and create is
// idempotent anyway. Single-call: `POST /events/notify` with the base transactionId.
import type { Ledger, LedgerPayload, LedgerRow } from '../ledger/index.js';
import type { EventDocument, OpenCrvsApi } from '../opencrvs/types.js';
import { findOurNotifies, holdsOtherCopy, rowNotifyId, standingNotify } from './notify-lookup.js';

export type SendMode = 'two-step' | 'single-call';

/** The source withdrew the record between this attempt's create and its notify. */
export class WithdrawnWhileSending extends Error {
  constructor() {
    super('withdrawn in the source while being sent; settled at the next attempt');
    this.name = 'WithdrawnWhileSending';
  }
}

/**
 * The row's event holds another OpenCRVS client's NOTIFY and none of the row's: a bridge with the same
 * source id (the same transactionIds) stored its own record there with a single call. This record is not
 * in OpenCRVS, and the event takes no other NOTIFY. Nothing personal: the event's tracking ID, the client.
 */
export class ForeignNotify extends Error {
  constructor(
    readonly trackingId: string,
    readonly client: string,
  ) {
    super(`event ${trackingId} holds a NOTIFY another OpenCRVS client (${client}) made, none of this row's`);
    this.name = 'ForeignNotify';
  }
}

/** The attempt's lock was taken back before its NOTIFY: nothing more is sent by it. */
export class LockLost extends Error {
  constructor() {
    super('lock taken back before the NOTIFY; not sent by this attempt');
    this.name = 'LockLost';
  }
}

export interface SendResult {
  outcome: 'accepted' | 'pending';
  eventId: string;
  trackingId: string;
  /** An earlier NOTIFY of the row stood, with another declaration than the row's (send.ts's lookup). */
  olderCopy?: boolean;
  /** Found by the lookup (an earlier NOTIFY that stands), not answered to a NOTIFY of this attempt. */
  standing?: boolean;
  /** See NotifyResult.intoEventOf: a single call stored the NOTIFY in that client's event. */
  intoEventOf?: string;
}

/** Which call is running; read after a failure to record where the attempt stopped. */
export interface SendProgress {
  step: 'create' | 'lookup' | 'notify' | 'createAndNotify';
}

export async function sendRow(
  api: OpenCrvsApi,
  ledger: Ledger,
  row: LedgerRow,
  payload: LedgerPayload,
  mode: SendMode,
  progress: SendProgress,
): Promise<SendResult> {
  // Once an event exists (a two-step create, or a mode switch) only the notify is left to do. A requeued
  // dead row also takes the two-step path: its NOTIFY needs the new transactionId generation, and the
  // create (keyed like single-call's own create step) finds the event the first attempt made.
  if (mode === 'single-call' && !row.eventId && row.requeues === 0) {
    progress.step = 'createAndNotify';
    // Before the call: a lock taken back mid-call must know it may be in OpenCRVS (outbox.ts, takeBack).
    ledger.recordSingleCall(row.id);
    return createAndNotify(api, row, payload);
  }
  const created = await ensureEvent(api, ledger, row, payload.office, progress);
  // The source may have withdrawn the record while the create was under way: no NOTIFY then. The next
  // attempt settles the row (withdraw.ts), with the event now known.
  if (!row.eventId && ledger.withdrawnReason(row.id) !== null) throw new WithdrawnWhileSending();
  // Look first (notify-lookup.ts) where OpenCRVS may hold a NOTIFY of the row that stands under another
  // transactionId than this one, which it would not take as a repeat: sending would notify the birth
  // twice. A requeued row sends under a new generation, and one of an earlier generation may be stored
  // (its answer lost before the row died). A single call whose answer was lost, before `delivery.mode`
  // became two-step, keyed its NOTIFY otherwise: so whenever the create has just answered with the event
  // (free to read). And a row that knows its event but has no NOTIFY attempt in this ledger: a ledger
  // restored from a backup taken between a create and its NOTIFY knows nothing of a replay's NOTIFY
  // made since (one idempotent create; a plain retry of this generation's NOTIFY needs none).
  if (row.requeues > 0 || created.event || !ledger.notifySentSince(row.id, 'queued')) {
    progress.step = 'lookup'; // sends nothing: a failure here leaves no doubt (in-doubt.ts)
    const found = await findOurNotifies(api, { ...row, eventId: created.eventId }, created.event);
    const standing = standingNotify(found);
    // OpenCRVS keeps that copy: a newer version the row took since is an update after notification.
    if (standing)
      return { ...standing, standing: true, ...(holdsOtherCopy(found, payload) ? { olderCopy: true } : {}) };
    // Sent, the NOTIFY would be refused (409) or, while the other is pending, stored beside it.
    if (found.foreign) throw new ForeignNotify(found.event.trackingId, found.foreign.client);
  }
  // Taken back meanwhile (a stop's drain deadline, a stale lock): the row is someone else's to send now.
  if (row.lockedBy !== null && !ledger.holdsLock(row.id, row.lockedBy, row.attempts)) throw new LockLost();
  progress.step = 'notify';
  return notify(api, row, payload, created.eventId);
}

/** The single call, under the row's base transactionId (its whole-call idempotency key). */
export async function createAndNotify(api: OpenCrvsApi, row: LedgerRow, payload: LedgerPayload): Promise<SendResult> {
  const result = await api.createAndNotify({
    eventType: row.eventType,
    transactionId: row.baseTransactionId,
    createdAtLocation: payload.office,
    declaration: payload.declaration,
    ...(payload.annotation ? { annotation: payload.annotation } : {}),
  });
  return {
    outcome: result.outcome,
    eventId: result.eventId,
    trackingId: result.trackingId,
    ...(result.intoEventOf ? { intoEventOf: result.intoEventOf } : {}),
  };
}

/** The NOTIFY of `eventId`, under the row's notify transactionId. */
export async function notify(
  api: OpenCrvsApi,
  row: LedgerRow,
  payload: LedgerPayload,
  eventId: string,
): Promise<SendResult> {
  const result = await api.notify({
    eventId,
    transactionId: row.notifyTransactionId,
    createdAtLocation: payload.office,
    declaration: payload.declaration,
    ...(payload.annotation ? { annotation: payload.annotation } : {}),
  });
  return { outcome: result.outcome, eventId: result.eventId, trackingId: result.trackingId };
}

/**
 * The row's OpenCRVS event: the stored one, or create it (idempotent on the create transactionId, which
 * is also the create step of a single-call: either mode finds the same event) and store it at once.
 */
export async function ensureEvent(
  api: OpenCrvsApi,
  ledger: Ledger,
  row: LedgerRow,
  office: string,
  progress: SendProgress,
): Promise<{ eventId: string; trackingId: string; event?: EventDocument }> {
  if (row.eventId && row.trackingId) return { eventId: row.eventId, trackingId: row.trackingId };
  progress.step = 'create';
  // A single call of the row's may have stored its NOTIFY in another bridge's event (ownership.ts): that
  // event is the row's then, and the lookup finds the NOTIFY there.
  const event = await api.createEvent({
    type: row.eventType,
    transactionId: row.createTransactionId,
    createdAtLocation: office,
    ownNotify: rowNotifyId(row),
  });
  ledger.recordCreated(row.id, event.id, event.trackingId);
  return { eventId: event.id, trackingId: event.trackingId, event };
}
