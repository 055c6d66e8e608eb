import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, silentLogger } from '../../observability/logger.js';
import { buildSimulatorApp } from './app.js';
import { ClientRegistry } from './auth.js';
import { buildLocationIndex, type SimContext } from './context.js';
import { OpenCrvsSandboxControl } from './control.js';
import { FaultController } from './faults.js';
import { loadForms } from './forms.js';
import { TokenSigner } from './jwt.js';
import { RequestCounter } from './requests.js';
import { defaultHealthScopes } from './scopes.js';
import { loadSeededLocations } from './seed.js';
import { EventStore } from './store.js';
import type { SimLocation, SimVersion } from './types.js';

export { OpenCrvsSandboxControl } from './control.js';
export type { CountedRequest } from './requests.js';
export { defaultHealthScopes } from './scopes.js';
export { locationUuid } from './seed.js';
export type {
  ActionConfirmation,
  FaultConfig,
  SandboxConfig,
  SimAction,
  SimEvent,
  SimLocation,
  SimLocationType,
  SimOperation,
  SimVersion,
} from './types.js';

export interface OpenCrvsSimulatorOptions {
  /** 0 = a free port (tests); the CLI defaults to 7070. */
  port?: number;
  host?: string;
  version?: SimVersion;
  /** Form profiles and seed locations come from profiles/opencrvs/<country>/. */
  country?: string;
  clientId?: string;
  clientSecret?: string;
  /** Default: the Health client scopes of the version (docs/opencrvs-api.md, "Token"). */
  scopes?: string[];
  tokenTtlSeconds?: number;
  /** Larger events-API bodies are answered 413. */
  bodyLimitBytes?: number;
  logger?: Logger;
}

export interface OpenCrvsSimulator {
  baseUrl: string;
  /** `${baseUrl}/auth/token`; `/token` and `/api/auth/token` answer too. */
  tokenUrl: string;
  /** The events service root: create is POST `${eventsUrl}/events`. */
  eventsUrl: string;
  port: number;
  version: SimVersion;
  clientId: string;
  clientSecret: string;
  /** Offices and health facilities first, then administrative areas (ADMIN_STRUCTURE). */
  locations: SimLocation[];
  administrativeAreas: SimLocation[];
  control: OpenCrvsSandboxControl;
  close(): Promise<void>;
}

// Notifications are small JSON documents (files are never inlined), so 1 MiB leaves ample room while
// keeping the 413 path cheap to test. Real deployments accept more (nginx 20 MB, gateway 50 MiB).
const DEFAULT_BODY_LIMIT = 1024 * 1024;
// The auth service's default token lifetime.
const DEFAULT_TTL_SECONDS = 600;

export async function startOpenCrvsSimulator(options: OpenCrvsSimulatorOptions = {}): Promise<OpenCrvsSimulator> {
  const version = options.version ?? '2.0';
  const country = options.country ?? 'farajaland';
  const host = options.host ?? '127.0.0.1';
  const clientId = options.clientId ?? 'sandbox-client';
  const clientSecret = options.clientSecret ?? 'sandbox-secret';
  const logger = (options.logger ?? silentLogger).child({ component: 'opencrvs-sandbox' });
  const scopes = defaultHealthScopes(version);
  const ttl = options.tokenTtlSeconds ?? DEFAULT_TTL_SECONDS;

  const seed = loadSeededLocations(country);
  const faults = new FaultController();
  const ctx: SimContext = {
    version,
    forms: loadForms(country, version),
    store: new EventStore(),
    ...buildLocationIndex(seed),
    confirmation: () => faults.confirmation,
  };
  const clients = new ClientRegistry([{ clientId, clientSecret, scopes: options.scopes ?? scopes }], scopes, ttl);
  const signer = new TokenSigner();
  const shutdown = new AbortController();
  const app = buildSimulatorApp({
    ctx,
    clients,
    signer,
    faults,
    requests: new RequestCounter(),
    seed,
    bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
    logger,
    shutdown: shutdown.signal,
  });

  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const baseUrl = `http://${urlHost}:${port}`;
  logger.info({ baseUrl, version, country }, 'OpenCRVS simulator listening');

  let closing: Promise<void> | undefined;
  return {
    baseUrl,
    tokenUrl: `${baseUrl}/auth/token`,
    eventsUrl: `${baseUrl}/api/events`,
    port,
    version,
    clientId,
    clientSecret,
    locations: [...seed.locations, ...seed.administrativeAreas],
    administrativeAreas: seed.administrativeAreas,
    control: new OpenCrvsSandboxControl(baseUrl),
    close() {
      shutdown.abort();
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets (and requests parked by a delay fault) would hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
