// The configuration as the rest of the code sees it: validated, defaults applied, secrets resolved
// (the `…File` keys are read and folded into their plain counterparts). Mirrors
// profiles/config.schema.json; keep the two together.

export type OpenCrvsVersion = '2.0' | '1.9';

export interface OpenCrvsSettings {
  domain?: string;
  tokenUrl?: string;
  eventsUrl?: string;
  clientId?: string;
  clientSecret?: string;
  accessToken?: string;
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
  maxAttempts: number;
  maxAgeHours: number;
  baseDelayMs: number;
  maxDelayMs: number;
  pollIntervalMs: number;
  lockTimeoutSeconds: number;
  holdProbeSeconds: number;
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

export interface PollSettings {
  enabled: boolean;
  schedule: string;
  overlapSeconds: number;
  pageSize: number;
  since?: string;
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
  auth: SourceAuth;
  timeoutMs: number;
  poll: PollSettings;
  subscription?: SubscriptionSettings;
  mappings: string[];
  dhis2?: Record<string, unknown>;
  writeBack?: Record<string, unknown>;
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
  token?: string;
  showPersonalData: boolean;
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
