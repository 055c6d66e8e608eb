// What happened to a NOTIFY is in the event's actions, not in the HTTP status: OpenCRVS answers 200
// even when the country configuration rejected the action (docs/opencrvs-api.md, "The answer of a NOTIFY").
import { OpenCrvsError } from './errors.js';
import type { EventAction, EventDocument, NotifyResult } from './types.js';

/**
 * `accepted`: a NOTIFY with our transactionId is Accepted, or an Accepted action points at our
 * Requested one through `originalActionId`; `pending`: only our Requested NOTIFY is there.
 * A Rejected one is thrown as a permanent error (NotifyRejected).
 */
export function readNotifyOutcome(event: EventDocument, transactionId: string, operation: string): NotifyResult {
  const notifies = event.actions.filter((action) => action.type === 'NOTIFY');
  const ours = notifies.filter((action) => action.transactionId === transactionId);
  const requestedIds = new Set(ours.filter((a) => a.status === 'Requested').map((a) => a.id));
  const related = (action: EventAction) =>
    action.transactionId === transactionId ||
    (typeof action.originalActionId === 'string' && requestedIds.has(action.originalActionId));

  const rejected = notifies.find((action) => action.status === 'Rejected' && related(action));
  if (rejected) throw new NotifyRejected(event, rejected.id, operation);
  const base = { event, eventId: event.id, trackingId: event.trackingId };
  if (notifies.some((action) => action.status === 'Accepted' && related(action)))
    return { outcome: 'accepted', ...base };
  if (requestedIds.size > 0) return { outcome: 'pending', ...base };
  // Retryable, like every unexpected answer: a replay of the same transactionId reads the event again.
  throw new OpenCrvsError({
    kind: 'invalid-response',
    classification: 'retryable',
    message: 'the answer holds no NOTIFY action with our transactionId',
    operation,
  });
}

/**
 * The country configuration rejected the NOTIFY under this transactionId. `event` is the event OpenCRVS
 * answered with, every action of it: another NOTIFY of the same record (another requeue generation) may
 * stand beside the rejected one, which the caller can read without asking again. Never logged (personal
 * data): the logger keeps an error's status fields only (observability/redact.ts).
 */
export class NotifyRejected extends OpenCrvsError {
  readonly event: EventDocument;

  constructor(event: EventDocument, actionId: string, operation: string) {
    super({
      kind: 'rejected',
      classification: 'permanent',
      message: 'the country configuration rejected the NOTIFY action',
      operation,
      body: { eventId: event.id, trackingId: event.trackingId, actionId },
    });
    this.event = event;
  }
}
