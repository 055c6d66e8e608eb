// Shapes shared by the parts of the OpenCRVS simulator. The wire shapes follow
// docs/opencrvs-api.md: "The answer of a NOTIFY" (EventDocument) and "Calls" (locations).

export type SimVersion = '2.0' | '1.9';

export type SimLocationType = 'CRVS_OFFICE' | 'HEALTH_FACILITY' | 'ADMIN_STRUCTURE';

/** A seeded location or administrative area. `id` is a UUID, `externalId` the country's CSV id. */
export interface SimLocation {
  id: string;
  name: string;
  externalId: string;
  locationType: SimLocationType;
  /** UUID of the parent area (null for top-level entries). */
  partOf: string | null;
  /** Same as `partOf`: the name OpenCRVS v2.0 uses in `GET /locations`. */
  administrativeAreaId: string | null;
  /** When the location closed (v2.0 `validUntil`); absent or null while it is open. */
  validUntil?: string | null;
  /** Archived the v1.x way (its FHIR `status` is `inactive`, no date kept); absent while it is active. */
  deactivated?: boolean;
}

export type SimActionStatus = 'Requested' | 'Accepted' | 'Rejected';

export interface SimAction {
  id: string;
  type: string;
  status: SimActionStatus;
  transactionId: string;
  createdBy: string;
  createdByUserType: 'system';
  /** v1.9 only ("HEALTH" for health clients). */
  createdByRole?: string;
  createdAt: string;
  createdAtLocation?: string;
  declaration: Record<string, unknown>;
  annotation?: Record<string, unknown>;
  originalActionId?: string;
}

export interface SimEvent {
  id: string;
  type: string;
  trackingId: string;
  createdAt: string;
  updatedAt: string;
  actions: SimAction[];
}

/** `fail`: the country configuration's confirmation endpoint fails (OpenCRVS answers 500; see events-notify.ts). */
export type ActionConfirmation = 'accept' | 'pending' | 'reject' | 'fail';

/** Which events-API calls a fault applies to (all when absent). */
export type SimOperation = 'create' | 'notify' | 'createAndNotify' | 'locations' | 'read';

export type ErrorEcho = 'plain' | 'json' | 'html' | 'percent' | 'upper' | 'nfd';

export interface FaultConfig {
  /** Share of requests answered with `errorStatus` without committing anything (0..1). */
  errorRate?: number;
  /** Status for `errorRate` answers; default 500. 429 and 503 carry Retry-After when `retryAfterSeconds` is set. */
  errorStatus?: number;
  /**
   * `errorRate` answers to a POST quote the declaration sent (as servers and proxies do in error texts),
   * written this way: as sent, JSON-escaped (non-ASCII as \uXXXX), HTML-escaped (an HTML page; non-ASCII
   * as numeric entities), percent-encoded, upper-cased, or in Unicode NFD.
   */
  errorEcho?: ErrorEcho;
  retryAfterSeconds?: number;
  /** Delay before every events-API answer, so client timeouts can be tested. */
  delayMs?: number;
  /** Share of requests whose connection is destroyed before anything is committed. */
  dropRate?: number;
  /** Share of requests that are processed and committed, then have their connection destroyed. */
  commitThenFailRate?: number;
  /** Only these calls are affected (default: every events-API call). */
  operations?: SimOperation[];
  /** At most this many requests get a fault (error, drop or commit-then-fail), then faults stop. */
  times?: number;
}

export interface SandboxConfig {
  /** How the simulated country configuration answers action confirmation (default accept). */
  actionConfirmation?: ActionConfirmation;
  /** Replaces all faults when given; `{}` clears them. */
  faults?: FaultConfig;
  /** Seed for the fault dice, so rates between 0 and 1 give repeatable runs. */
  seed?: number;
}

export interface SimClient {
  clientId: string;
  clientSecret: string;
  scopes: string[];
  tokenTtlSeconds: number;
  /** Tokens issued (iat, seconds) before this second are refused: re-registering revokes old tokens. */
  validFromSeconds: number;
  /**
   * The tokens (`jti`) issued within that second before the client was registered: refused too. `iat` counts
   * whole seconds, so without them a token obtained just before a re-registration outlived it, and a
   * test had to wait for the next second before replacing a client.
   */
  revokedInFirstSecond: ReadonlySet<string>;
}

export interface SimClientInput {
  clientId: string;
  clientSecret: string;
  scopes?: string[];
  tokenTtlSeconds?: number;
}

/** What a handler answers; the HTTP glue sends it (or, for commit-then-fail, drops it). */
export interface SimResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}
