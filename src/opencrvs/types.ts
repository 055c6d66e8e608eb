// The OpenCRVS events API as the bridge uses it (see docs/opencrvs-api.md). Response shapes are
// validated by the client before they are returned as these types.

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
   * Obtains (or reuses) a token; used by health checks and the hold probe. Returns the token's scopes.
   * `fresh` asks the token endpoint even when a cached token is valid (revoked credentials show at once).
   * `signal`: the caller stopped waiting; the token request, shared with other callers, runs on for them.
   */
  checkToken(options?: { fresh?: boolean; signal?: AbortSignal }): Promise<{ scopes: string[]; expiresAt: number }>;
}
