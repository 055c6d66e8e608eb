import type { Logger } from '../../observability/logger.js';
import type { InboxStore } from './inbox.js';
import {
  authenticateNotification,
  type IncomingNotification,
  type NotificationAuth,
  NotificationError,
  parseNotification,
} from './notification.js';

export interface ReceiverSource {
  id: string;
  auth: NotificationAuth;
  /** The source is polled as well: a notification lost to a power cut is found by the next pass. */
  polled?: boolean;
}

export interface ReceiverRequest extends IncomingNotification {
  sourceId: string;
  authorization?: string;
  signature?: string;
}

export type ReceiverOutcome = { status: number; stored?: number; kind: string };

/**
 * The subscription receiver without a web framework: authenticate (before parsing), parse, store
 * durably, then answer. Handshakes and heartbeats are stored too (the processor uses them for gap
 * detection) and answered 2xx like everything else.
 */
export class SubscriptionReceiver {
  private readonly sources = new Map<string, ReceiverSource>();
  private readonly log: Logger;

  constructor(
    sources: ReceiverSource[],
    private readonly inbox: InboxStore,
    logger: Logger,
    private readonly onStored?: (sourceId: string) => void,
  ) {
    for (const source of sources) this.sources.set(source.id, source);
    this.log = logger.child({ component: 'subscription-receiver' });
  }

  hasSource(sourceId: string): boolean {
    return this.sources.has(sourceId);
  }

  /**
   * What can be refused before the body is read: an unknown source, and a wrong bearer secret (the HMAC
   * needs the body). Keeps an unauthenticated sender from making the bridge read a megabyte per request.
   */
  refuseEarly(sourceId: string, authorization: string | undefined): void {
    const source = this.sources.get(sourceId);
    if (!source) throw new NotificationError(404, 'not-found', 'unknown source');
    if (source.auth.secret !== undefined)
      authenticateNotification({ secret: source.auth.secret }, { authorization }, Buffer.alloc(0));
  }

  /** Throws NotificationError for anything refused (the HTTP layer turns it into an OperationOutcome). */
  receive(request: ReceiverRequest, now = Date.now()): ReceiverOutcome {
    const source = this.sources.get(request.sourceId);
    if (!source) throw new NotificationError(404, 'not-found', 'unknown source');
    authenticateNotification(source.auth, request, request.rawBody);
    const notification = parseNotification(request);
    const stored = this.inbox.add(source.id, notification, now, source.polled === true);
    this.log.debug({ source: source.id, kind: notification.kind, inboxId: stored }, 'notification stored');
    this.onStored?.(source.id);
    return { status: 200, stored, kind: notification.kind };
  }
}
