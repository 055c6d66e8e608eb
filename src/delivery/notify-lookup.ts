// What OpenCRVS holds of a row's NOTIFYs, read from the event's actions without sending a declaration:
// the create call is idempotent on the row's create transactionId and answers with the event, its actions
// included (a health client may not read events, `record.read`). Used to settle a withdrawal under way
// (withdraw.ts) and to learn the country configuration's later decision (pending-check.ts).
import { canonicalJson, type LedgerRow, notifyTransactionId } from '../ledger/index.js';
import { isOpenCrvsError } from '../opencrvs/errors.js';
import { readNotifyOutcome } from '../opencrvs/outcome.js';
import type { Declaration, EventAction, EventDocument, OpenCrvsApi } from '../opencrvs/types.js';

export interface NotifyFinding {
  event: EventDocument;
  /** Accepted under one of the row's NOTIFY transactionIds (any generation, or a single call's). */
  accepted: boolean;
  /** Requested, not decided yet. */
  pending: boolean;
  /** Rejected by the country configuration. */
  rejected: boolean;
  /** What the standing (accepted or pending) NOTIFYs declared, and at which office, as OpenCRVS returns them. */
  copies: Array<{ declaration?: Declaration; office?: string }>;
  /**
   * Another OpenCRVS client whose NOTIFY stands in the event: a bridge with the same source id (the same
   * transactionIds) whose single call found this event not yet notified. Its NOTIFYs are not the row's,
   * whatever their transactionIds, and the event takes no other NOTIFY.
   */
  foreign?: { client: string };
}

/**
 * The event as it stands (idempotent create, unless the caller has just had it from one), and what became
 * of each NOTIFY the row may have sent.
 */
export async function findOurNotifies(api: OpenCrvsApi, row: LedgerRow, known?: EventDocument): Promise<NotifyFinding> {
  const event =
    known ??
    (await api.createEvent({
      type: row.eventType,
      transactionId: row.createTransactionId,
      createdAtLocation: row.payload?.office ?? row.office ?? '',
      ownNotify: rowNotifyId(row),
    }));
  const finding: NotifyFinding = { event, accepted: false, pending: false, rejected: false, copies: [] };
  const { ours, theirs } = splitByMaker(api, event);
  const foreign = standingOf(theirs);
  if (foreign) finding.foreign = foreign;
  // An event with no NOTIFY of ours (every first attempt: the create has just made it) holds none under any
  // of the row's ids: readNotifyOutcome would throw for each, an error built (its stack captured) to be dropped.
  if (!ours.actions.some((action) => action.type === 'NOTIFY')) return finding;
  for (const transactionId of notifyTransactionIds(row, ours)) {
    try {
      const found = readNotifyOutcome(ours, transactionId, 'notification lookup');
      if (found.outcome === 'accepted') finding.accepted = true;
      else finding.pending = true;
      const requested = ours.actions.find(
        (a) => a.type === 'NOTIFY' && a.status === 'Requested' && a.transactionId === transactionId,
      );
      if (requested)
        finding.copies.push({
          ...(requested.declaration ? { declaration: requested.declaration } : {}),
          ...(requested.createdAtLocation ? { office: requested.createdAtLocation } : {}),
        });
    } catch (err) {
      if (!isOpenCrvsError(err)) throw err;
      // Rejected, or no NOTIFY under this id.
      if (err.kind === 'rejected') finding.rejected = true;
    }
  }
  return finding;
}

/**
 * The event's NOTIFYs this bridge made (`ours`), and those another OpenCRVS client made (`theirs`): the
 * requests by their maker (api.otherClientOf), each with the decisions on it (`originalActionId`), made by
 * the country configuration. `ours` keeps the event's other actions.
 */
function splitByMaker(api: OpenCrvsApi, event: EventDocument): { ours: EventDocument; theirs: EventDocument } {
  const theirIds = new Set(
    event.actions
      .filter((a) => a.type === 'NOTIFY' && a.originalActionId === undefined && api.otherClientOf?.(a) !== undefined)
      .map((a) => a.id),
  );
  if (theirIds.size === 0) return { ours: event, theirs: { ...event, actions: [] } };
  const isTheirs = (a: EventAction) =>
    a.type === 'NOTIFY' &&
    (theirIds.has(a.id) || (a.originalActionId !== undefined && theirIds.has(a.originalActionId)));
  return {
    ours: { ...event, actions: event.actions.filter((a) => !isTheirs(a)) },
    theirs: { ...event, actions: event.actions.filter(isTheirs) },
  };
}

/** Another client's NOTIFY that stands (accepted, or pending a decision), and whose it is. */
function standingOf(theirs: EventDocument): { client: string } | undefined {
  for (const request of theirs.actions) {
    if (request.originalActionId !== undefined || request.createdBy === undefined) continue;
    try {
      readNotifyOutcome(theirs, request.transactionId, 'notification lookup');
      return { client: request.createdBy };
    } catch (err) {
      if (!isOpenCrvsError(err)) throw err;
    }
  }
  return undefined;
}

/** Whether a NOTIFY transactionId is one the row may have sent under (see notifyTransactionIds). */
export function rowNotifyId(row: LedgerRow): (transactionId: string) => boolean {
  const earlier = Array.from({ length: row.requeues }, (_, i) => notifyTransactionId(row.baseTransactionId, i));
  const ids = new Set([row.notifyTransactionId, ...earlier, row.baseTransactionId]);
  const ours = notifyTransactionId(row.baseTransactionId, 0);
  return (id) => ids.has(id) || id === ours || id.startsWith(`${ours}:r`);
}

/**
 * Two-step NOTIFYs carry the row's notify transactionId, a single call the base one; a replayed row sent
 * its earlier NOTIFYs under the earlier generations (`<base>:notify`, `…:notify:r1`…), and one of those
 * may have reached OpenCRVS with its answer lost before the row died. So may a generation later than the
 * row knows: a ledger lost or restored from a backup starts the row over at generation 0, while OpenCRVS
 * holds the NOTIFY a replay sent under `…:notify:r1`. Every NOTIFY of the event under the row's base is
 * the row's (transactionIds are derived from the source record, and OpenCRVS keys them across events).
 */
function notifyTransactionIds(row: LedgerRow, event: EventDocument): string[] {
  const earlier = Array.from({ length: row.requeues }, (_, i) => notifyTransactionId(row.baseTransactionId, i));
  const ids = new Set([row.notifyTransactionId, ...earlier, row.baseTransactionId]);
  const ours = notifyTransactionId(row.baseTransactionId, 0);
  for (const action of event.actions) {
    const id = action.transactionId;
    if (action.type === 'NOTIFY' && (id === ours || id.startsWith(`${ours}:r`))) ids.add(id);
  }
  return [...ids];
}

/** A NOTIFY of the row that stands (accepted, or pending a decision): what it gives, else undefined. */
export function standingNotify(
  found: NotifyFinding,
): { outcome: 'accepted' | 'pending'; eventId: string; trackingId: string } | undefined {
  if (!found.accepted && !found.pending) return undefined;
  return {
    outcome: found.accepted ? 'accepted' : 'pending',
    eventId: found.event.id,
    trackingId: found.event.trackingId,
  };
}

/**
 * Whether what OpenCRVS holds is another copy than the row's payload: a NOTIFY of an earlier generation
 * stood, and the row has since taken a newer version (a dead row requeued by a corrected record, or mapped
 * again to another office after its first closed: ledger/record.ts). A declaration or office OpenCRVS does
 * not return counts as the same: only a difference seen is reported.
 */
export function holdsOtherCopy(found: NotifyFinding, payload: { declaration: Declaration; office: string }): boolean {
  if (found.copies.length === 0) return false;
  const ours = canonicalJson(payload.declaration);
  return !found.copies.some(
    (held) =>
      (held.declaration === undefined || canonicalJson(held.declaration) === ours) &&
      (held.office === undefined || held.office === payload.office),
  );
}
