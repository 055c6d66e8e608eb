import { fixedSecret, type Secret } from '../../config/secret-files.js';
import { storeUnavailable } from '../../ledger/db.js';
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
  /**
   * A `Secret` follows its file (config/secret-files.ts): a rotated secret is accepted as soon as it is
   * read, and the one it replaced for a while longer (the EMR switches at its own time).
   */
  auth: { secret?: string | Secret; hmacSecret?: string | Secret };
  /** The source is polled as well: a notification lost to a power cut is found by the next pass. */
  polled?: boolean;
}

export interface ReceiverRequest extends IncomingNotification {
  sourceId: string;
  authorization?: string;
  signature?: string;
}

export type ReceiverOutcome = { status: number; stored?: number; kind: string };

/** What the inbox holds while it refuses notifications, and which limit it reached. */
export interface InboxFull {
  depth: number;
  bytes: number;
  limit: 'count' | 'bytes';
}

export interface InboxLimits {
  maxDepth?: number;
  maxBytes?: number;
}

/**
 * Notifications waiting to be processed past which the receiver answers 503 with Retry-After: a flood
 * (a bulk import that notifies per resource, a misconfigured Subscription) then waits at the EMR, which
 * retries, instead of filling the bridge's disk. Nothing is lost: refused notifications are resent, and a
 * source that also polls reconciles. Processing runs at about 1,000 a second, so this is minutes of work.
 */
export const MAX_INBOX_DEPTH = 100_000;
/**
 * Bytes of stored notifications waiting past which the receiver answers the same 503. The count alone
 * does not bound the disk: a notification is stored as what the bridge acts on (the resources it names),
 * so a full resource is some 60 bytes, but a backport Bundle naming many resources, or one by a very long
 * name, stores nearly its whole body: 100,000 at the 1 MB body limit are 100 GB (5 TB at the 50 MB most).
 * One notification may take the total past this, by at most the body limit.
 */
export const MAX_INBOX_BYTES = 256 * 1_048_576;
/**
 * Retry-After for a notification the inbox could not store (a full disk, an I/O error, a lock held): the
 * operator has to act, or the lock to be released; the EMR resends.
 */
export const STORE_UNAVAILABLE_RETRY_AFTER_SECONDS = 30;
// The inbox is counted at most this often; in between, each stored notification adds one (and its bytes).
const DEPTH_REFRESH_MS = 1_000;

type LiveAuth = { secret?: Secret; hmacSecret?: Secret };

const asSecret = (value: string | Secret | undefined): Secret | undefined =>
  typeof value === 'string' ? fixedSecret(value) : value;

/**
 * Checks `headers` against every value each secret accepts now (the current one, the one it replaced
 * during the overlap); throws the first refusal when none passes.
 */
function authenticateWith(auth: LiveAuth, headers: { authorization?: string; signature?: string }, rawBody: Buffer) {
  let refused: unknown;
  for (const secret of auth.secret?.accepted() ?? [undefined]) {
    for (const hmacSecret of auth.hmacSecret?.accepted() ?? [undefined]) {
      const one: NotificationAuth = {
        ...(secret !== undefined ? { secret } : {}),
        ...(hmacSecret !== undefined ? { hmacSecret } : {}),
      };
      try {
        authenticateNotification(one, headers, rawBody);
        return;
      } catch (err) {
        refused ??= err;
      }
    }
  }
  throw refused;
}

/** As authenticateWith; once refused, a secret rotated in its file since it was last looked at is read now. */
function authenticate(auth: LiveAuth, headers: { authorization?: string; signature?: string }, rawBody: Buffer) {
  try {
    authenticateWith(auth, headers, rawBody);
  } catch (err) {
    // Both looked at (each at most 4 times a second, so wrong secrets cost no more than that).
    const rotated = [auth.secret?.refresh(), auth.hmacSecret?.refresh()].includes(true);
    if (!rotated) throw err;
    authenticateWith(auth, headers, rawBody);
  }
}

/**
 * The subscription receiver without a web framework: authenticate (before parsing), parse, store
 * durably, then answer. Handshakes and heartbeats are stored too (the processor uses them for gap
 * detection) and answered 2xx like everything else.
 */
export class SubscriptionReceiver {
  private readonly sources = new Map<string, ReceiverSource & { live: LiveAuth }>();
  private readonly log: Logger;
  private depth = 0;
  private bytes = 0;
  private depthCountedAt = Number.NEGATIVE_INFINITY;
  private refused = 0;
  private refusedLoggedAt = Number.NEGATIVE_INFINITY;
  private unstored = 0;
  private unstoredLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(
    sources: ReceiverSource[],
    private readonly inbox: InboxStore,
    logger: Logger,
    private readonly onStored?: (sourceId: string) => void,
    private readonly limits: InboxLimits = {},
  ) {
    for (const source of sources) {
      const live = { secret: asSecret(source.auth.secret), hmacSecret: asSecret(source.auth.hmacSecret) };
      this.sources.set(source.id, { ...source, live });
    }
    this.log = logger.child({ component: 'subscription-receiver' });
  }

  hasSource(sourceId: string): boolean {
    return this.sources.has(sourceId);
  }

  /** True when `sourceId` has a bearer secret, checked (by refuseEarly) before its body is read. */
  checksBearerFirst(sourceId: string): boolean {
    return this.sources.get(sourceId)?.auth.secret !== undefined;
  }

  /**
   * What can be refused before the body is read: an unknown source, and a wrong bearer secret (the HMAC
   * needs the body). Keeps an unauthenticated sender from making the bridge read a megabyte per request.
   */
  refuseEarly(sourceId: string, authorization: string | undefined): void {
    const source = this.sources.get(sourceId);
    if (!source) throw new NotificationError(404, 'not-found', 'unknown source');
    if (source.live.secret !== undefined)
      authenticate({ secret: source.live.secret }, { authorization }, Buffer.alloc(0));
  }

  /**
   * The inbox is full, by count or by bytes: notifications are refused with 503 until it drains (counted
   * at most once a second).
   */
  full(now = Date.now()): InboxFull | undefined {
    if (now - this.depthCountedAt >= DEPTH_REFRESH_MS) {
      ({ depth: this.depth, bytes: this.bytes } = this.inbox.backlog());
      this.depthCountedAt = now;
    }
    const { depth, bytes } = this;
    if (depth >= (this.limits.maxDepth ?? MAX_INBOX_DEPTH)) return { depth, bytes, limit: 'count' };
    if (bytes >= (this.limits.maxBytes ?? MAX_INBOX_BYTES)) return { depth, bytes, limit: 'bytes' };
    return undefined;
  }

  /** Throws NotificationError for anything refused (the HTTP layer turns it into an OperationOutcome). */
  receive(request: ReceiverRequest, now = Date.now()): ReceiverOutcome {
    const source = this.sources.get(request.sourceId);
    if (!source) throw new NotificationError(404, 'not-found', 'unknown source');
    authenticate(source.live, request, request.rawBody);
    const notification = parseNotification(request);
    const full = this.storing(source.id, now, () => this.full(now));
    if (full) {
      // One line a minute with the count, not one per refusal: a flood refused 31,000 in 20 s.
      this.refused++;
      if (now - this.refusedLoggedAt >= 60_000) {
        this.log.warn(
          { source: source.id, depth: full.depth, bytes: full.bytes, limit: full.limit, refused: this.refused },
          'inbox full: notifications refused with 503, to be resent',
        );
        this.refusedLoggedAt = now;
        this.refused = 0;
      }
      throw new NotificationError(503, 'transient', 'too many notifications waiting; retry later', 30);
    }
    const stored = this.storing(source.id, now, () =>
      this.inbox.add(source.id, notification, now, source.polled === true),
    );
    this.depth++;
    // As the ledger measures it (the JSON it stores); a small cost beside the commit.
    this.bytes += Buffer.byteLength(JSON.stringify(notification));
    this.log.debug({ source: source.id, kind: notification.kind, inboxId: stored }, 'notification stored');
    this.onStored?.(source.id);
    return { status: 200, stored, kind: notification.kind };
  }

  /**
   * Runs an inbox call; a store that cannot take the write now (storeUnavailable: a full disk, an I/O error,
   * a lock held past the busy timeout, a read-only file) becomes 503 with Retry-After, so the EMR resends the
   * notification later instead of taking a 500 for a permanent failure (FHIR servers drop those, or retry
   * them at once). Nothing was stored, and a source that also polls reconciles meanwhile. Logged at most once
   * a minute with the count and SQLite's code (a full disk refuses every notification).
   */
  private storing<T>(sourceId: string, now: number, call: () => T): T {
    try {
      return call();
    } catch (err) {
      const code = storeUnavailable(err);
      if (code === undefined) throw err;
      this.unstored++;
      if (now - this.unstoredLoggedAt >= 60_000) {
        this.log.error(
          { source: sourceId, code, refused: this.unstored },
          'the inbox cannot store notifications (the ledger disk is full, failing, locked or read-only): they are answered 503 with Retry-After, to be resent',
        );
        this.unstoredLoggedAt = now;
        this.unstored = 0;
      }
      throw new NotificationError(
        503,
        'transient',
        'the bridge cannot store notifications now; retry later',
        STORE_UNAVAILABLE_RETRY_AFTER_SECONDS,
      );
    }
  }
}
