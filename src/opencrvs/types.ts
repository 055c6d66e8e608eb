// The OpenCRVS events API as the bridge uses it (see docs/opencrvs-api.md). Response shapes are
// validated by the client before they are returned as these types.
import type { OpenCrvsError } from './errors.js';

export type EventType = string; // 'birth' | 'death' | … as configured by the country
export type Declaration = Record<string, unknown>;

export type ActionStatus = 'Requested' | 'Accepted' | 'Rejected';

export interface EventAction {
  id: string;
  type: string; // CREATE, NOTIFY, …
  status: ActionStatus;
  transactionId: string;
  createdAt?: string;
  createdBy?: string;
  createdByUserType?: string;
  createdAtLocation?: string;
  declaration?: Declaration;
  annotation?: Record<string, unknown>;
  originalActionId?: string;
  [key: string]: unknown;
}

export interface EventDocument {
  id: string;
  type: EventType;
  trackingId: string;
  createdAt: string;
  updatedAt: string;
  actions: EventAction[];
  [key: string]: unknown;
}

export interface CreateEventInput {
  type: EventType;
  transactionId: string;
  createdAtLocation: string;
  /**
   * The caller's NOTIFY transactionIds: an event another client created is answered, not refused as
   * `foreign-event`, when it holds a NOTIFY this bridge made under one of them (opencrvs/ownership.ts).
   */
  ownNotify?: (transactionId: string) => boolean;
}

export interface NotifyInput {
  eventId: string;
  transactionId: string;
  createdAtLocation: string;
  declaration: Declaration;
  annotation?: Record<string, unknown>;
}

export interface CreateAndNotifyInput {
  eventType: EventType;
  transactionId: string;
  createdAtLocation: string;
  declaration: Declaration;
  annotation?: Record<string, unknown>;
}

/**
 * The outcome of a NOTIFY, read from the actions (not from the HTTP status):
 * `accepted` = a NOTIFY with our transactionId is Accepted; `pending` = only Requested (the country
 * configuration will decide later). A `Rejected` NOTIFY is thrown as a permanent OpenCrvsError.
 */
export interface NotifyResult {
  outcome: 'accepted' | 'pending';
  event: EventDocument;
  eventId: string;
  trackingId: string;
  /**
   * A single call stored the NOTIFY in an event another OpenCRVS client created (its id): another bridge
   * with the same source id had created it under the same key and not notified it yet.
   */
  intoEventOf?: string;
}

export interface Location {
  id: string;
  name: string;
  externalId?: string | null;
  administrativeAreaId?: string | null;
  validUntil?: string | null;
  /**
   * OpenCRVS 1.x: its FHIR `status` is `inactive` (archived through the v1 location API, which still lists
   * it). 1.x keeps no date of it: what 2.0 says with `validUntil`, without the when.
   */
  deactivated?: boolean;
  locationType: string; // CRVS_OFFICE, HEALTH_FACILITY, ADMIN_STRUCTURE
}

/** `signal`: the caller gave up waiting; the call is cut off then rather than run on to its timeout. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface LocationQuery {
  locationType?: string;
  id?: string;
  externalId?: string;
}

/** What the rest of the bridge needs from OpenCRVS. The client implements it; tests may too. */
export interface OpenCrvsApi {
  /** The client's OpenCRVS version; a test's stand-in may leave it out (2.0 then). */
  readonly version?: '2.0' | '1.9';
  createEvent(input: CreateEventInput): Promise<EventDocument>;
  notify(input: NotifyInput): Promise<NotifyResult>;
  /** v2.0 only: POST /events/notify, idempotent on transactionId. */
  createAndNotify(input: CreateAndNotifyInput): Promise<NotifyResult>;
  listLocations(query?: LocationQuery, options?: CallOptions): Promise<Location[]>;
  /**
   * The OpenCRVS client that made `action`, when it is known and is not this bridge (neither the client
   * now used nor an earlier one): the transactionIds of two bridges sharing a source id are the same, and
   * only the actions' makers tell their NOTIFYs apart. Undefined when it cannot be told; a stand-in that
   * leaves this out takes every action as the bridge's own.
   */
  otherClientOf?(action: Pick<EventAction, 'createdBy'>): string | undefined;
  /**
   * Obtains (or reuses) a token; used by health checks and the hold probe. Returns the token's scopes.
   * `fresh` asks the token endpoint even when a cached token is valid (revoked credentials show at once).
   * `signal`: the caller stopped waiting; the token request, shared with other callers, runs on for them.
   */
  checkToken(options?: { fresh?: boolean; signal?: AbortSignal }): Promise<{ scopes: string[]; expiresAt: number }>;
  /**
   * What the client knows of its token now, without asking the endpoint: the refusal that stands (while its
   * backoff runs and its secret is still the one in use) and how many tokens it has obtained. A stand-in may
   * leave this out.
   */
  tokenState?(): { refusal?: OpenCrvsError; obtained: number };
}
