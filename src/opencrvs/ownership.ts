// Whether the event OpenCRVS answered a create with is this client's. OpenCRVS keeps one event per
// (transactionId, event type) across all its clients and answers a repeated create with the event that
// holds it (docs/opencrvs-api.md, Idempotency). The bridge derives transactionIds from the source id and
// the record's id in its source, so a second bridge using the same source id (two hospitals whose EMRs
// both number patients 1, 2, 3) is answered with the first one's events: its births would be recorded
// delivered, under another hospital's tracking ids, and never reach OpenCRVS. The event's CREATE action
// names its creator (`createdBy`, the creating client's token `sub`), which tells the two apart.
import { OpenCrvsError } from './errors.js';
import type { EventAction, EventDocument } from './types.js';

/**
 * The OpenCRVS clients this bridge has been: the one it uses now, earlier ones the ledger remembers (the
 * client was replaced: its events stay this bridge's own), and those configured.
 */
export interface OwnClients {
  has(clientId: string): boolean;
  /** Called with the `sub` of every token a call is made with, before the call. */
  add(clientId: string): void;
}

/**
 * The client that made `action`, when it is known and is neither `subject` (the token's) nor an earlier
 * client of this bridge (`own`); undefined when it is this bridge's, or when either side is unknown.
 */
export function otherClientOf(
  action: Pick<EventAction, 'createdBy'>,
  subject: string | undefined,
  own?: OwnClients,
): string | undefined {
  const creator = action.createdBy;
  if (!subject || !creator || creator === subject || own?.has(creator)) return undefined;
  return creator;
}

/**
 * Throws a permanent `foreign-event` error when the CREATE action under `createTransactionId` was made by
 * another client than `subject` and than any earlier client of this bridge (`own`). Says nothing when
 * either is unknown (a token without `sub`, an answer without `createdBy`): nothing can be told then, and
 * the event is taken as ours, as before.
 *
 * `ownNotify`: the caller's NOTIFY transactionIds. Another client's event that holds a NOTIFY this bridge
 * made under one of them is not refused: a single call (`POST /events/notify`, keyed `<tx>:create`) finds
 * an event another bridge created and not yet notified, and stores this bridge's declaration in it. That
 * declaration is in OpenCRVS, in that event; refused, the row would read "holds nothing" and be sent again.
 * Returns the other client then (undefined when the event is this bridge's own).
 */
export function refuseForeignEvent(
  event: EventDocument,
  createTransactionId: string,
  subject: string | undefined,
  operation: string,
  own?: OwnClients,
  ownNotify?: (transactionId: string) => boolean,
): string | undefined {
  const create = event.actions.find((a) => a.type === 'CREATE' && a.transactionId === createTransactionId);
  const creator = create && otherClientOf(create, subject, own);
  if (!creator) return undefined;
  const holdsOurs =
    ownNotify !== undefined &&
    event.actions.some(
      (a) =>
        a.type === 'NOTIFY' &&
        a.createdBy !== undefined &&
        ownNotify(a.transactionId) &&
        otherClientOf(a, subject, own) === undefined,
    );
  if (holdsOurs) return creator;
  throw new OpenCrvsError({
    kind: 'foreign-event',
    classification: 'permanent',
    message: `the event under transaction id ${createTransactionId} was created by another OpenCRVS client (${creator}), not by this one (${subject})`,
    operation,
  });
}
