// The configuration as the rest of the code sees it: validated, defaults applied, secrets resolved
// (the `…File` keys are read and folded into their plain counterparts). Mirrors
// profiles/config.schema.json; keep the two together (and run scripts/schema-validators.mjs --write after a schema edit).

export type OpenCrvsVersion = '2.0' | '1.9';

export interface OpenCrvsSettings {
  domain?: string;
  tokenUrl?: string;
  eventsUrl?: string;
  clientId?: string;
  clientSecret?: string;
  accessToken?: string;
  /** Earlier client ids of this bridge: the events they created are its own (opencrvs/ownership.ts). */
  previousClientIds?: string[];
  version: OpenCrvsVersion;
  country: string;
  timeoutMs: number;
  tokenRenewBeforeSeconds: number;
}

export interface StoreSettings {
  path: string;
  payloadRetentionHours: number;
}

export interface HttpSettings {
  host: string;
  port: number;
  bodyLimitBytes: number;
}

export interface DeliverySettings {
  mode: 'two-step' | 'single-call';
  concurrency: number;
  settleSeconds: number;
  /** Waiting events are evaluated again at their source before their first send (0: never). */
  recheckAfterSeconds: number;
  maxAttempts: number;
  maxAgeHours: number;
  baseDelayMs: number;
  maxDelayMs: number;
  pollIntervalMs: number;
  lockTimeoutSeconds: number;
  holdProbeSeconds: number;
  /** OpenCRVS answering nothing this long (several rows failing unreached) holds the queue (delivery/outage.ts). */
  outageHoldSeconds: number;
}

export interface SourceAuth {
  type: 'none' | 'bearer' | 'basic' | 'oauth2' | 'pat';
  token?: string;
  username?: string;
  password?: string;
  tokenUrl?: string;
  clientId?: string;
  clientSecret?: string;
  scope?: string;
}

/** `sources[].retry`: a retryable failure's further tries within one call. */
export interface SourceRetrySettings {
  /** Tries per call, the first included. */
  attempts?: number;
  /** The wait before the second try, doubled per try. */
  baseDelayMs?: number;
}

export interface PollSettings {
  enabled: boolean;
  schedule: string;
  overlapSeconds: number;
  pageSize: number;
  since?: string;
  /** The first sync starts this many days before it runs (see firstSyncStart); exclusive with since. */
  sinceDays?: number;
}

export interface SubscriptionSettings {
  secret?: string;
  hmacSecret?: string;
  heartbeatSeconds?: number;
}

export interface SourceSettings {
  id: string;
  kind: 'fhir' | 'dhis2';
  baseUrl: string;
  /**
   * FHIR: other base URLs the EMR writes absolute references to its own records under (an internal host
   * name, http behind a TLS proxy), without trailing slashes. Never called: only baseUrl is.
   */
  alsoKnownAs?: string[];
  auth: SourceAuth;
  timeoutMs: number;
  /** Calls to the source in flight at once (default 8): an EMR is a hospital's production system. */
  maxConcurrentRequests?: number;
  /** How each call is tried again within itself (the source clients' defaults: 3 attempts, 500 ms doubled). */
  retry?: SourceRetrySettings;
  /** IANA zone the source's UTC date-times are read in (an EMR that stores UTC); unset: as written. */
  timeZone?: string;
  poll: PollSettings;
  subscription?: SubscriptionSettings;
  mappings: string[];
  /** FHIR on OpenMRS: type a newborn's relationships from the REST API (openmrs-relationships.ts). */
  openmrs?: OpenmrsSettings;
  dhis2?: Dhis2Settings;
  writeBack?: WriteBackSettings;
}

/** `sources[].openmrs` (kind: fhir), opt-in: relationship types from the OpenMRS REST API. */
export interface OpenmrsSettings {
  /** The REST API root (…/openmrs/ws/rest/v1), without a trailing slash; derived from baseUrl at load when not given. */
  restUrl: string;
}

export type Dhis2OrgUnitMode = 'SELECTED' | 'CHILDREN' | 'DESCENDANTS' | 'ACCESSIBLE' | 'CAPTURE' | 'ALL';

/** `sources[].dhis2` (kind: dhis2): which tracked entities the poller reads. Defaults: the DHIS2 demo Child Programme. */
export interface Dhis2Settings {
  /** Program uid the tracked entities are enrolled in (default IpHINAT79UW, Child Programme). */
  program: string;
  /** Org unit uids to poll; absent = every org unit the user may search (orgUnitMode ACCESSIBLE). */
  orgUnits?: string[];
  orgUnitMode?: Dhis2OrgUnitMode;
  /**
   * Only tracked entities of this type. Applied by the poller to what the programme's list answers, never
   * sent: DHIS2 refuses `trackedEntityType` with `program` ("Program and tracked entity cannot be specified
   * simultaneously"). A programme enrols one type only, so it is that type, or the source reads nothing.
   */
  trackedEntityType?: string;
  /** Only enrollments in this status (`enrollmentStatus`). */
  enrollmentStatus?: 'ACTIVE' | 'COMPLETED' | 'CANCELLED';
  /** The `fields` filter of the poll: `*`, or a list with trackedEntity, updatedAt, attributes and enrollments (checked at load). */
  fields: string;
}

/**
 * `sources[].writeBack`: write the OpenCRVS tracking id back to the source record once delivered.
 * DHIS2 uses `dataElement` (+ `programStage`) or `attribute`; FHIR uses `target` (+ `identifierSystem`).
 */
export interface WriteBackSettings {
  enabled: boolean;
  /**
   * DHIS2: a TEXT or LONG_TEXT data element made for the tracking id, read by no mapping's `codes` (doctor
   * fails either), on the event of `programStage` (default: the trigger event). A value already there is
   * never overwritten, except the job's own earlier tracking ids: the job is abandoned instead.
   */
  dataElement?: string;
  programStage?: string;
  /**
   * DHIS2, instead of `dataElement`: a TEXT or LONG_TEXT attribute of the programme's tracked entity type
   * (not a programme attribute), read by no mapping's `codes` (doctor fails each). One value per tracked
   * entity, never overwritten except by the job's own earlier tracking ids (the row delivered again under a
   * new one): another value abandons the job. Births and deaths of one server need one each (doctor warns).
   */
  attribute?: string;
  /** FHIR: an identifier on a resource (default), or a Task / DocumentReference that carries it. */
  target: 'identifier' | 'task' | 'documentReference';
  /** FHIR, target identifier: the subject Patient (default) or the resource that triggered the event. */
  resource: 'subject' | 'trigger';
  identifierSystem: string;
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface FacilityRoute {
  office?: string;
  facility?: string;
}

export interface RoutingSettings {
  defaultOffice?: string;
  facilities: Record<string, FacilityRoute>;
}

export interface AdminSettings {
  /** The admin listener's address: loopback by default, apart from the receiver's (http.host). */
  host: string;
  /** The admin listener's port (0 = any free port). */
  port: number;
  token?: string;
  showPersonalData: boolean;
  /**
   * Further host names the admin listener answers to (`name` or `name:port`), beside its loopback names
   * and `host` on its port: those a reverse proxy passes on in `Host`, and the browser in `Origin`.
   */
  allowedHosts: string[];
}

export interface BridgeConfig {
  opencrvs: OpenCrvsSettings;
  store: StoreSettings;
  http: HttpSettings;
  delivery: DeliverySettings;
  sources: SourceSettings[];
  routing: RoutingSettings;
  admin: AdminSettings;
  logging: { level: string };
}
