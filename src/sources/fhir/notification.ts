import { createHmac } from 'node:crypto';
import { sameSecret } from '../../config/inbound-secret.js';
import { FHIR_R4_RESOURCE_TYPES } from '../../http/fhir-resource-types.js';
import { isObject } from '../../util/is-object.js';

/**
 * Subscription notifications, whatever wire style the server uses (docs/deployment.md, "Subscriptions on
 * the EMR"), reduced to what the bridge acts on. A notification is only a hint: the bridge re-reads the
 * resources itself.
 */
export type ParsedNotification =
  /**
   * "Something matching changed", with no detail (HAPI classic without payload, Medplum delete): poll. A
   * backport notification with an empty payload still carries its event numbers.
   */
  | { kind: 'ping'; style: string; subscription?: string; eventNumbers?: number[]; eventsSinceStart?: number }
  | { kind: 'handshake' | 'heartbeat'; style: 'backport'; subscription?: string; eventsSinceStart?: number }
  | {
      kind: 'event';
      style: string;
      refs: string[];
      deleted?: boolean;
      /**
       * The refs were named outside what authenticated the notification: `X-Medplum-Deleted-Resource` beside
       * an `X-Signature` of the `{}` body, the same for every delete. They are acted on only as deletions: a
       * ref that still reads is evaluated for no one, and a catch-up poll runs instead (InboxProcessor).
       */
      unsigned?: boolean;
      /** Backport: the Subscription (relative `Subscription/<id>`) whose numbering eventNumbers follow. */
      subscription?: string;
      eventNumbers?: number[];
      eventsSinceStart?: number;
    };

/** A notification the receiver must refuse, with the HTTP status and an OperationOutcome code. */
export class NotificationError extends Error {
  constructor(
    readonly status: number,
    readonly code: 'invalid' | 'security' | 'not-found' | 'not-supported' | 'too-costly' | 'transient' | 'throttled',
    message: string,
    /** Sent as Retry-After: the sender should try again then (a full inbox). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'NotificationError';
  }
}

export interface NotificationAuth {
  secret?: string;
  hmacSecret?: string;
}

/**
 * Checks the shared secrets before anything is parsed: `Authorization: Bearer <secret>` (sent by
 * servers through Subscription.channel.header) and/or `X-Signature` = hex HMAC-SHA256 of the raw body.
 */
export function authenticateNotification(
  auth: NotificationAuth,
  headers: { authorization?: string; signature?: string },
  rawBody: Buffer,
): void {
  if (auth.secret !== undefined) {
    // Trimmed on both sides: HTTP drops a header value's surrounding spaces, and a secret configured with
    // them (`secret: " …"` in YAML, spaces after it in its file) could otherwise never match. The
    // configured one was trimmed when read (secretOf's `trim`; the receiver's for an inline value), as
    // the admin token is.
    const given = headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
    if (!given || !sameSecret(given, auth.secret)) {
      throw new NotificationError(401, 'security', 'missing or wrong bearer secret');
    }
  }
  if (auth.hmacSecret !== undefined) {
    const given = headers.signature?.trim().toLowerCase();
    const expected = createHmac('sha256', auth.hmacSecret).update(rawBody).digest('hex');
    if (!given || !sameSecret(given, expected))
      throw new NotificationError(401, 'security', 'missing or wrong X-Signature');
  }
}

const ID_CHARACTERS = /^[A-Za-z0-9\-.]{1,64}$/;
// Anything in the id's place: whether it is an id is said apart (isFhirId), so that a bad one is refused
// rather than passed over.
const REF_SHAPE = /(?:^|\/)([A-Z][A-Za-z]+)\/([^/]*)(?:\/_history\/[^/]+)?$/;

/**
 * FHIR's id rule ([A-Za-z0-9\-\.]{1,64}), less `.` and `..`: the rule lets them through, but as a path
 * segment they are no resource, they are the base itself or its parent. An id is read from the EMR as
 * `<base>/<Type>/<id>`, with the source's credentials.
 */
export function isFhirId(id: string): boolean {
  return ID_CHARACTERS.test(id) && id !== '.' && id !== '..';
}

/**
 * A FHIR R4 resource type. The shape alone (`^[A-Z][A-Za-z]+$`) let a 300 kB "type" through: stored in the
 * inbox, then read from the EMR as `<base>/Aaaa…/<id>` with the source's credentials.
 */
export function isResourceType(type: string): boolean {
  return FHIR_R4_RESOURCE_TYPES.has(type);
}

/**
 * `https://x/fhir/Patient/1/_history/2` or `Patient/1` → `Patient/1`; undefined for anything else, a
 * reference whose type is no R4 resource type or whose id is no FHIR id included.
 */
export function relativeRef(reference: string): string | undefined {
  const match = REF_SHAPE.exec(reference);
  return match?.[1] && isResourceType(match[1]) && match[2] !== undefined && isFhirId(match[2])
    ? `${match[1]}/${match[2]}`
    : undefined;
}

/**
 * A resource the bridge is to read: `Type/id` as relativeRef gives it, undefined for what names no
 * resource (free text, a `urn:uuid:`), and refused (400) when it names one by a type that is no R4
 * resource type or by a bad id.
 */
function resourceRef(reference: string, where: string): string | undefined {
  const match = REF_SHAPE.exec(reference);
  if (!match?.[1] || match[2] === undefined) return undefined;
  if (!isResourceType(match[1])) throw badType(where);
  if (!isFhirId(match[2])) throw badId(where);
  return `${match[1]}/${match[2]}`;
}

function badId(where: string): NotificationError {
  return new NotificationError(400, 'invalid', `${where}: the resource id is not a FHIR id`);
}

// The type is not quoted: it is the sender's text, of any length.
function badType(where: string): NotificationError {
  return new NotificationError(400, 'invalid', `${where}: not a FHIR R4 resource type`);
}

function partsNamed(parameters: unknown[], name: string): Record<string, unknown>[] {
  return parameters.filter((p): p is Record<string, unknown> => isObject(p) && p.name === name);
}

function numberOf(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function paramValue(param: Record<string, unknown> | undefined): unknown {
  if (!param) return undefined;
  for (const [key, value] of Object.entries(param)) if (key.startsWith('value')) return value;
  return undefined;
}

/** Backport IG notification Bundle (R4 `Parameters` status, or R4B `SubscriptionStatus`). */
function parseBackport(bundle: Record<string, unknown>): ParsedNotification {
  const entries = Array.isArray(bundle.entry) ? bundle.entry.filter(isObject) : [];
  const status = entries[0]?.resource;
  if (!isObject(status))
    throw new NotificationError(400, 'invalid', 'history Bundle without a subscription status entry');
  let type: unknown;
  let eventsSinceStart: number | undefined;
  let subscriptionRef: unknown;
  const eventNumbers: number[] = [];
  const refs = new Set<string>();
  if (status.resourceType === 'Parameters' && Array.isArray(status.parameter)) {
    const params = status.parameter;
    type = paramValue(partsNamed(params, 'type')[0]);
    subscriptionRef = paramValue(partsNamed(params, 'subscription')[0]);
    eventsSinceStart = numberOf(paramValue(partsNamed(params, 'events-since-subscription-start')[0]));
    for (const event of partsNamed(params, 'notification-event')) {
      const parts = Array.isArray(event.part) ? event.part : [];
      const number = numberOf(paramValue(partsNamed(parts, 'event-number')[0]));
      if (number !== undefined) eventNumbers.push(number);
      const focus = paramValue(partsNamed(parts, 'focus')[0]);
      const ref =
        isObject(focus) && typeof focus.reference === 'string' ? resourceRef(focus.reference, 'focus') : undefined;
      if (ref) refs.add(ref);
    }
  } else if (status.resourceType === 'SubscriptionStatus') {
    type = status.type;
    subscriptionRef = status.subscription;
    eventsSinceStart = numberOf(status.eventsSinceSubscriptionStart);
    for (const event of Array.isArray(status.notificationEvent) ? status.notificationEvent.filter(isObject) : []) {
      const number = numberOf(event.eventNumber);
      if (number !== undefined) eventNumbers.push(number);
      const focus = event.focus;
      const ref =
        isObject(focus) && typeof focus.reference === 'string' ? resourceRef(focus.reference, 'focus') : undefined;
      if (ref) refs.add(ref);
    }
  } else {
    throw new NotificationError(400, 'invalid', 'history Bundle whose first entry is not a subscription status');
  }
  // Event numbers count per Subscription: an EMR with one subscription per watched type sends several
  // numberings to one receiver, so gaps are tracked per subscription.
  // Only a Subscription reference: the sender chooses the text, which is logged and kept as a key.
  const named =
    isObject(subscriptionRef) && typeof subscriptionRef.reference === 'string'
      ? relativeRef(subscriptionRef.reference)
      : undefined;
  const subscription = named?.startsWith('Subscription/') ? named : undefined;
  const numbering = subscription ? { subscription } : {};
  if (type === 'handshake' || type === 'heartbeat')
    return { kind: type, style: 'backport', ...numbering, eventsSinceStart };
  if (type !== 'event-notification' && type !== 'query-event') {
    throw new NotificationError(400, 'invalid', 'unknown subscription notification type');
  }
  // id-only and full-resource payloads also list the resources as entries after the status.
  for (const entry of entries.slice(1)) {
    const url =
      typeof entry.fullUrl === 'string' ? entry.fullUrl : isObject(entry.request) ? entry.request.url : undefined;
    const resource = entry.resource;
    // The same Type/id check as every other wire style: anything else would be read from the EMR as is.
    const ref =
      isObject(resource) && typeof resource.resourceType === 'string' && typeof resource.id === 'string'
        ? resourceRef(`${resource.resourceType}/${resource.id}`, 'entry resource')
        : typeof url === 'string'
          ? resourceRef(url, 'entry')
          : undefined;
    if (ref) refs.add(ref);
  }
  if (refs.size === 0) return { kind: 'ping', style: 'backport-empty', ...numbering, eventNumbers, eventsSinceStart };
  return { kind: 'event', style: 'backport', refs: [...refs], ...numbering, eventNumbers, eventsSinceStart };
}

export interface IncomingNotification {
  method: string;
  /** From `/fhir-subscription/{source}/{Type}/{id}` (HAPI classic with payload). */
  pathRef?: { type: string; id: string };
  contentType?: string;
  rawBody: Buffer;
  /** Medplum's `X-Medplum-Deleted-Resource` (`Type/id`), sent with the `{}` body of a delete. */
  deletedResource?: string;
  /**
   * The sender was authenticated by `X-Signature` alone (an `hmacSecret`, no bearer `secret`): the signature
   * covers the body, not the path nor the headers. One captured `{}` delete (Medplum signs the same `{}` for
   * every delete) would otherwise be valid forever, for any path and any `X-Medplum-Deleted-Resource`.
   */
  signedBodyOnly?: boolean;
}

/**
 * The refusal of a `/{Type}/{id}` notification to a source authenticated by `X-Signature` alone, which
 * does not cover the path (IncomingNotification.signedBodyOnly). Also given before the body is read
 * (SubscriptionReceiver.refuseEarly).
 */
export function pathStyleUnsigned(): NotificationError {
  return new NotificationError(
    403,
    'security',
    'this source is authenticated by X-Signature alone, which does not cover the path: /{Type}/{id} notifications are refused (configure a bearer secret for a server that sends them)',
  );
}

/** Parses any supported wire style. Throws NotificationError (4xx) for malformed input. */
export function parseNotification(input: IncomingNotification): ParsedNotification {
  const { method, pathRef, rawBody } = input;
  if (pathRef) {
    // HAPI's style (the resource acted on is the path's); HAPI does not sign, and Medplum never uses it.
    if (input.signedBodyOnly) throw pathStyleUnsigned();
    if (!isResourceType(pathRef.type)) throw badType('the path');
    if (!isFhirId(pathRef.id)) throw badId('the path');
    if (method === 'DELETE')
      return { kind: 'event', style: 'hapi-payload', refs: [`${pathRef.type}/${pathRef.id}`], deleted: true };
    if (method !== 'PUT' && method !== 'POST') throw new NotificationError(405, 'not-supported', 'method not allowed');
    return { kind: 'event', style: 'hapi-payload', refs: [`${pathRef.type}/${pathRef.id}`] };
  }
  if (method !== 'POST') throw new NotificationError(405, 'not-supported', 'method not allowed');
  if (rawBody.length === 0 || rawBody.toString('utf8').trim() === '') return { kind: 'ping', style: 'hapi-empty' };
  const type = (input.contentType ?? '').split(';')[0]?.trim().toLowerCase();
  // application/json+fhir is the DSTU2-era FHIR media type, still sent by some servers.
  if (type && type !== 'application/json' && type !== 'application/fhir+json' && type !== 'application/json+fhir') {
    throw new NotificationError(415, 'not-supported', 'content type must be application/fhir+json or application/json');
  }
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch {
    throw new NotificationError(400, 'invalid', 'body is not valid JSON');
  }
  if (!isObject(body)) throw new NotificationError(400, 'invalid', 'body must be a JSON object');
  if (Object.keys(body).length === 0) {
    // Medplum names what it deleted in a header; an older server says only that something was.
    // One that names no resource says only that something was, too; one that names it by a bad id is refused.
    const deleted = /^([A-Z][A-Za-z]+)\/([^/]*)$/.exec(input.deletedResource?.trim() ?? '');
    if (!deleted) return { kind: 'ping', style: 'medplum-delete' };
    if (!deleted[1] || !isResourceType(deleted[1])) throw badType('X-Medplum-Deleted-Resource');
    if (!deleted[2] || !isFhirId(deleted[2])) throw badId('X-Medplum-Deleted-Resource');
    return {
      kind: 'event',
      style: 'medplum-delete',
      refs: [deleted[0]],
      deleted: true,
      ...(input.signedBodyOnly ? { unsigned: true } : {}),
    };
  }
  // R4 backport and R4B send `history` Bundles; R5 names the type `subscription-notification`. The
  // status entry (Parameters or SubscriptionStatus) comes first in both.
  if (body.resourceType === 'Bundle' && (body.type === 'history' || body.type === 'subscription-notification'))
    return parseBackport(body);
  if (typeof body.resourceType === 'string' && typeof body.id === 'string' && isResourceType(body.resourceType)) {
    if (!isFhirId(body.id)) throw badId('resource');
    return { kind: 'event', style: 'resource', refs: [`${body.resourceType}/${body.id}`] };
  }
  throw new NotificationError(400, 'invalid', 'not a FHIR resource or subscription notification Bundle');
}
