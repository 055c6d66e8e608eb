import { createHash } from 'node:crypto';
import { fixedSecret, type Secret } from '../../config/secret-files.js';
import { addressKey } from '../../http/address-slots.js';
import { AuthThrottle, type AuthThrottleLimits } from '../../http/admin/auth-throttle.js';
import { storeUnavailable } from '../../ledger/db.js';
import type { Logger } from '../../observability/logger.js';
import { MinuteTally } from '../../observability/minute-tally.js';
import type { InboxStore } from './inbox.js';
import {
  authenticateNotification,
  type IncomingNotification,
  type NotificationAuth,
  NotificationError,
  parseNotification,
  pathStyleUnsigned,
} from './notification.js';

export interface ReceiverSource {
  id: string;
  /**
   * A `Secret` follows its file (config/secret-files.ts): a rotated secret is accepted as soon as it is
   * read, and the one it replaced for a while longer (the EMR switches at its own time). A bearer
   * `secret` given as a Secret is trimmed by it (secretOf's `trim`); one given as a string is trimmed here.
   */
  auth: { secret?: string | Secret; hmacSecret?: string | Secret };
  /** The source is polled as well: a notification lost to a power cut is found by the next pass. */
  polled?: boolean;
}

export interface ReceiverRequest extends IncomingNotification {
  sourceId: string;
  authorization?: string;
  signature?: string;
  /** The client's address (req.socket.remoteAddress): wrong secrets are counted by it. */
  remoteAddress?: string;
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

/**
 * Wrong subscription secrets, counted per source and address (http/admin/auth-throttle.ts, the source as
 * its scope): 3,000 guesses at 1,160 a second were each answered 401. Past 20 wrong secrets for one source
 * from one address within a minute, that source is answered 429 with Retry-After for a minute from that
 * address, its secrets not compared, the right one included (so a blocked sender learns nothing): at most
 * 20 guesses every 2 minutes per address, about 14,400 a day, against a secret of 16 characters or more.
 * Per source, because EMRs share addresses (a NAT; a TLS proxy in front makes every sender 127.0.0.1):
 * one source's stale Subscription, or anyone sending it wrong secrets, must not block another's. A block
 * costs notifications, not only time: Medplum retries a 429 for about 7 s and HAPI for about a minute,
 * then drop it; so it is kept short, and past what an operator setting up or rotating a secret sends by
 * mistake (a few, each a 401 to read in the EMR's log).
 * No block of all addresses, unlike the admin page: it would shut out every EMR that had not notified
 * lately, for as long as someone with ten /64s kept sending wrong secrets, and it bounds nothing that
 * matters: even at the 1,160 a second one bridge answers, all day, guessing a secret of 16 characters
 * or more online is hopeless.
 */
export const RECEIVER_AUTH_THROTTLE: AuthThrottleLimits = {
  maxFailures: 20,
  windowMs: 60_000,
  blockMs: 60_000,
  maxGlobalFailures: Number.POSITIVE_INFINITY,
  maxAddresses: 10_000,
  trustMs: 0,
};

/** Why a notification to a configured source was refused (the `reason` of bridge_notifications_refused_total). */
export type RefusalReason = 'unauthorized' | 'throttled' | 'invalid' | 'unavailable';
export const REFUSAL_REASONS: readonly RefusalReason[] = ['unauthorized', 'throttled', 'invalid', 'unavailable'];

/**
 * A notification to a source id the receiver does not take (none configured, or one without a
 * `subscription`) is answered as a wrong bearer secret is, 401 then 429, so that which ids are configured
 * cannot be found by asking (a 404 told them apart). Counted under this `source` label and `reason`: the
 * id is the sender's text, and one label per id tried would grow without bound. No configured id holds a
 * parenthesis (the schema's pattern), so this one names no source.
 */
export const UNKNOWN_SOURCE_LABEL = '(unknown)';
export const UNKNOWN_SOURCE_REASON = 'unknown-source';
const unknownSource = () => new NotificationError(401, 'security', 'missing or wrong bearer secret');

const reasonOf = (err: NotificationError): RefusalReason =>
  err.status === 401
    ? 'unauthorized'
    : err.status === 429
      ? 'throttled'
      : err.status >= 500
        ? 'unavailable'
        : 'invalid';

export interface ReceiverOptions {
  /** Wrong secrets per source and address (default: a throttle with RECEIVER_AUTH_THROTTLE's limits). */
  throttle?: AuthThrottle;
  /**
   * Each refusal of a notification (a metric): to a configured source by its reason, to an unknown one as
   * UNKNOWN_SOURCE_LABEL and UNKNOWN_SOURCE_REASON.
   */
  onRefused?: (sourceId: string, reason: RefusalReason | typeof UNKNOWN_SOURCE_REASON) => void;
  /**
   * Refusals of unknown source ids, per id and address (default: RECEIVER_AUTH_THROTTLE's limits). Apart
   * from `throttle`: ids made up by the thousand push out one another's counts, never a configured source's.
   */
  unknownThrottle?: AuthThrottle;
}

type LiveAuth = { secret?: Secret; hmacSecret?: Secret };

/** `trim`: a bearer secret, compared without its surrounding spaces (an HMAC key is used as given). */
const asSecret = (value: string | Secret | undefined, trim = false): Secret | undefined =>
  typeof value === 'string' ? fixedSecret(trim ? value.trim() : value) : value;

/** A source with no secret has nothing to guess: its notifications are neither counted nor throttled. */
const authenticates = (auth: LiveAuth): boolean => auth.secret !== undefined || auth.hmacSecret !== undefined;

/** Authenticated by X-Signature alone (an hmacSecret, no bearer secret): the path and headers are not covered. */
const signsBodyOnly = (auth: LiveAuth): boolean => auth.secret === undefined && auth.hmacSecret !== undefined;

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
  private readonly refused = new MinuteTally();
  private readonly unstored = new MinuteTally();
  private readonly throttle: AuthThrottle;
  private readonly unknownThrottle: AuthThrottle;
  // Wrong secrets (401), throttled requests (429) and blocks started since the last line about them; of
  // them, those to an unknown source id.
  private unauthorized = {
    refused: 0,
    unknownSource: 0,
    throttled: 0,
    blocked: 0,
    allBlocked: false,
    loggedAt: Number.NEGATIVE_INFINITY,
  };

  constructor(
    sources: ReceiverSource[],
    private readonly inbox: InboxStore,
    logger: Logger,
    private readonly onStored?: (sourceId: string) => void,
    private readonly limits: InboxLimits = {},
    private readonly options: ReceiverOptions = {},
  ) {
    this.throttle = options.throttle ?? new AuthThrottle(RECEIVER_AUTH_THROTTLE);
    this.unknownThrottle = options.unknownThrottle ?? new AuthThrottle(RECEIVER_AUTH_THROTTLE);
    for (const source of sources) {
      const live = { secret: asSecret(source.auth.secret, true), hmacSecret: asSecret(source.auth.hmacSecret) };
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
   * What can be refused before the body is read: an unknown source (as a wrong secret: refusedUnknown), an
   * address blocked for wrong secrets (429), the path style (`pathStyle`: `…/{Type}/{id}`) to a source
   * authenticated by X-Signature alone, which refuses it whatever the body (403), and a wrong bearer secret
   * (the HMAC needs the body). Keeps an unauthenticated sender from making the bridge read a megabyte per
   * request.
   */
  refuseEarly(sourceId: string, authorization: string | undefined, remoteAddress?: string, pathStyle = false): void {
    const source = this.sources.get(sourceId);
    if (!source) throw this.refusedUnknown(sourceId, remoteAddress);
    this.refusing(source.id, () => {
      if (!authenticates(source.live)) return;
      this.notThrottled(source.id, remoteAddress);
      if (pathStyle && signsBodyOnly(source.live)) throw pathStyleUnsigned();
      if (source.live.secret !== undefined)
        this.counted(source.id, remoteAddress, () =>
          authenticate({ secret: source.live.secret }, { authorization }, Buffer.alloc(0)),
        );
    });
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
    if (!source) throw this.refusedUnknown(request.sourceId, request.remoteAddress);
    return this.refusing(source.id, () => this.accept(source, request, now));
  }

  private accept(source: ReceiverSource & { live: LiveAuth }, request: ReceiverRequest, now: number): ReceiverOutcome {
    if (authenticates(source.live)) {
      // Again: the address may have been blocked while this body was read.
      this.notThrottled(source.id, request.remoteAddress);
      this.counted(source.id, request.remoteAddress, () => authenticate(source.live, request, request.rawBody));
    }
    const notification = parseNotification({ ...request, signedBodyOnly: signsBodyOnly(source.live) });
    const full = this.storing(source.id, now, () => this.full(now));
    if (full) {
      // One line a minute with the count, not one per refusal: a flood refused 31,000 in 20 s.
      const refused = this.refused.add(now);
      if (refused !== undefined)
        this.log.warn(
          { source: source.id, depth: full.depth, bytes: full.bytes, limit: full.limit, refused },
          'inbox full: notifications refused with 503, to be resent',
        );
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

  /** Counts each refusal of a notification to a configured source, by reason. */
  private refusing<T>(sourceId: string, call: () => T): T {
    try {
      return call();
    } catch (err) {
      if (err instanceof NotificationError) this.options.onRefused?.(sourceId, reasonOf(err));
      throw err;
    }
  }

  /**
   * The refusal of a notification to a source id not taken: what a source with a bearer secret answers to a
   * wrong one, 401 and, past as many from one address, 429 with Retry-After (the id counted as a source
   * is, by its own count), so that the answer tells no id apart. The log and the metric say "unknown
   * source", never the id.
   */
  private refusedUnknown(sourceId: string, address: string | undefined): NotificationError {
    this.options.onRefused?.(UNKNOWN_SOURCE_LABEL, UNKNOWN_SOURCE_REASON);
    this.unauthorized.unknownSource++;
    // Counted by a digest: the id is as long as the sender's URL (kilobytes), 10,000 of them remembered.
    const scope = createHash('sha256').update(sourceId).digest('base64');
    const throttled = this.throttled(scope, address, this.unknownThrottle, UNKNOWN_SOURCE_LABEL);
    if (throttled) return throttled;
    this.countWrong(scope, address, this.unknownThrottle, UNKNOWN_SOURCE_LABEL);
    return unknownSource();
  }

  /** 429 with Retry-After, the secrets not compared, while the source is blocked from this address. */
  private notThrottled(sourceId: string, address: string | undefined): void {
    const throttled = this.throttled(sourceId, address, this.throttle, sourceId);
    if (throttled) throw throttled;
  }

  /** The 429 for `sourceId` from `address` while `throttle` blocks it (counted, logged as `logged`). */
  private throttled(
    sourceId: string,
    address: string | undefined,
    throttle: AuthThrottle,
    logged: string,
  ): NotificationError | undefined {
    const wait = throttle.retryAfterSeconds(address, sourceId);
    if (wait <= 0) return undefined;
    this.unauthorized.throttled++;
    this.logUnauthorized(logged, address, wait);
    return new NotificationError(
      429,
      'throttled',
      'too many wrong secrets for this source from this address; retry later',
      wait,
    );
  }

  /** Runs a secret check; a refusal counts against the source from this address (and may block it). */
  private counted(sourceId: string, address: string | undefined, check: () => void): void {
    try {
      check();
    } catch (err) {
      if (!(err instanceof NotificationError) || err.status !== 401) throw err;
      this.countWrong(sourceId, address, this.throttle, sourceId);
      throw err;
    }
  }

  /** A wrong secret for `sourceId` from `address`, counted by `throttle` (which may block it), logged as `logged`. */
  private countWrong(sourceId: string, address: string | undefined, throttle: AuthThrottle, logged: string): void {
    const blocks = throttle.failed(address, sourceId);
    this.unauthorized.refused++;
    if (blocks.address) this.unauthorized.blocked++;
    if (blocks.all) this.unauthorized.allBlocked = true;
    this.logUnauthorized(logged, address, throttle.retryAfterSeconds(address, sourceId));
  }

  /**
   * One line a minute at most, with the counts since the last one, never the secret: a guesser sends
   * thousands a second, and a misconfigured EMR one per notification. The address (an IPv6 /64 as
   * counted) is the client's, not a patient's: the one whose refusal wrote the line, with its source
   * (UNKNOWN_SOURCE_LABEL for an id not taken: the sender's text is not logged). `unknownSource` counts
   * the refusals (401 or 429) of ids not taken, among the others.
   */
  private logUnauthorized(
    sourceId: string,
    address: string | undefined,
    retryAfterSeconds: number,
    now = Date.now(),
  ): void {
    const counts = this.unauthorized;
    if (now - counts.loggedAt < 60_000) return;
    this.log.warn(
      {
        source: sourceId,
        remote: address === undefined ? undefined : addressKey(address),
        refused: counts.refused,
        throttled: counts.throttled,
        unknownSource: counts.unknownSource,
        addressesBlocked: counts.blocked,
        allAddressesBlocked: counts.allBlocked,
        retryAfterSeconds,
      },
      'notifications refused for a missing or wrong secret or an unknown source (401), or from an address blocked for sending too many (429 with Retry-After)',
    );
    this.unauthorized = { refused: 0, unknownSource: 0, throttled: 0, blocked: 0, allBlocked: false, loggedAt: now };
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
      const refused = this.unstored.add(now);
      if (refused !== undefined)
        this.log.error(
          { source: sourceId, code, refused },
          'the inbox cannot store notifications (the ledger disk is full, failing, locked or read-only): they are answered 503 with Retry-After, to be resent',
        );
      throw new NotificationError(
        503,
        'transient',
        'the bridge cannot store notifications now; retry later',
        STORE_UNAVAILABLE_RETRY_AFTER_SECONDS,
      );
    }
  }
}
