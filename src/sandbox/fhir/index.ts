import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FhirRouter } from '@medplum/fhir-router';
import type { Resource } from '@medplum/fhirtypes';
import { type Logger, silentLogger } from '../../observability/logger.js';
import { loadR4Definitions } from './definitions.js';
import { NotificationEmitter, type NotifyOptions, type SubscriptionEmitter } from './emitter.js';
import {
  BASE_PATH,
  fhirRequestListener,
  type HttpDeps,
  type ListLimit,
  type UrlLimit,
  writeThroughRouter,
} from './http.js';
import type { NotifyStyle } from './notify-styles.js';
import { type BeforeRest, REST_PATH } from './openmrs-rest.js';
import { SandboxRepository } from './repository.js';
import { readSeed, unpackSeed } from './seed.js';
import { SerialQueue } from './serial-queue.js';

export type { SubscriptionEmitter } from './emitter.js';
export type { ListLimit, UrlLimit } from './http.js';
export type { NotifyStyle } from './notify-styles.js';
export { NOTIFY_STYLES } from './notify-styles.js';

export interface FhirSandboxOptions {
  /** 0 = a free port; the CLI defaults to 8090. */
  port?: number;
  host?: string;
  /** A directory of JSON files, or resources/Bundles; stored before the emitter starts (no notifications). */
  seed?: string | unknown[];
  notify?: {
    url: string;
    style: NotifyStyle;
    secret?: string;
    headers?: Record<string, string>;
    heartbeatSeconds?: number;
    resourceTypes?: string[];
  };
  logger?: Logger;
  /**
   * 'openmrs': answer as an OpenMRS FHIR2 server does (openmrs.ts): its resource types only (no Composition,
   * no Subscription: 404), its search parameters only (another: 400 not-supported), and a CapabilityStatement
   * that says so. What is stored (the seed, upsert) is kept as given; only HTTP answers change.
   */
  emulate?: 'openmrs';
}

export interface FhirSandbox {
  /** http://127.0.0.1:<port>/fhir */
  baseUrl: string;
  /** Answering as OpenMRS: its REST API root, http://127.0.0.1:<port>/ws/rest/v1 (openmrs-rest.ts). */
  openmrsRestUrl?: string;
  port: number;
  emitter?: SubscriptionEmitter;
  /** create or update through the same path as HTTP (so notifications fire) */
  upsert(resource: Resource): Promise<Resource>;
  close(): Promise<void>;
}

/** Test-only knobs that are not part of the public options. */
export interface FhirSandboxInternals {
  /** Server clock in epoch ms (tests freeze it to produce ties on _lastUpdated). */
  clock?: () => number;
  /**
   * 'offset': `next` links carry `_offset`, and each runs the query again (OpenMRS's `_getpages`), so a
   * write between pages shifts what later pages hold. The default pages on a stable keyset cursor.
   */
  paging?: 'cursor' | 'offset';
  /**
   * Runs before every type search is answered, with its parameters (tests write between pages with it,
   * or make the server as slow as the page asked).
   */
  beforeSearch?: (resourceType: string, query: URLSearchParams) => Promise<void> | void;
  /**
   * A Tomcat or nginx in front of the server that refuses URLs longer than `maxChars` with its own HTML page
   * (tests of the bridge's batched reads against a URL limit): see UrlLimit.
   */
  urlLimit?: UrlLimit;
  /**
   * The server's own 400 OperationOutcome for a search parameter of more than `maxValues` comma-separated
   * values (tests of the bridge's batched reads against a FHIR server's list limit): see ListLimit.
   */
  listLimit?: ListLimit;
  /** Answering as OpenMRS: runs before its REST relationship listing is answered (a test makes it fail). */
  beforeRest?: BeforeRest;
}

export function startFhirSandbox(options: FhirSandboxOptions = {}): Promise<FhirSandbox> {
  return startFhirSandboxWith(options, {});
}

export async function startFhirSandboxWith(
  options: FhirSandboxOptions,
  internals: FhirSandboxInternals,
): Promise<FhirSandbox> {
  loadR4Definitions();
  // The HTTP layer and the emitter bind their own `component`: given this child, it was written twice.
  const root = options.logger ?? silentLogger;
  const logger = root.child({ component: 'fhir-sandbox' });
  const repo = new SandboxRepository(internals.clock);
  const writes = new SerialQueue();
  let baseUrl = '';
  const deps: HttpDeps = {
    router: new FhirRouter(),
    repo,
    writes,
    baseUrl: () => baseUrl,
    logger: root,
    paging: internals.paging ?? 'cursor',
    beforeSearch: internals.beforeSearch,
    urlLimit: internals.urlLimit,
    listLimit: internals.listLimit,
    emulate: options.emulate,
    beforeRest: internals.beforeRest,
  };

  if (options.seed !== undefined) {
    const started = performance.now();
    const resources = unpackSeed(await readSeed(options.seed));
    for (const resource of resources) await writeThroughRouter(deps, resource);
    logger.info({ resources: resources.length, ms: Math.round(performance.now() - started) }, 'fhir sandbox seeded');
  }

  const server = createServer(fhirRequestListener(deps));
  // Node's default keep-alive (5 s). Not less: undici (fetch) reuses a socket only while the server's
  // `Keep-Alive: timeout` hint exceeds its 1 s safety margin, so `timeout=1` made every request open a new
  // connection. close() closes idle sockets itself, so a long keep-alive does not hold it open.
  server.keepAliveTimeout = 5000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const publicHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  baseUrl = `http://${publicHost.includes(':') ? `[${publicHost}]` : publicHost}:${port}${BASE_PATH}`;

  let emitter: NotificationEmitter | undefined;
  let unsubscribe: (() => void) | undefined;
  if (options.notify) {
    const notifyOptions: NotifyOptions = options.notify;
    const created = new NotificationEmitter(notifyOptions, baseUrl, root);
    emitter = created;
    unsubscribe = repo.onChange((change) => created.notify(change));
    created.start();
  }
  logger.info({ port, notifyStyle: options.notify?.style }, 'fhir sandbox listening');

  return {
    baseUrl,
    ...(options.emulate === 'openmrs' ? { openmrsRestUrl: baseUrl.slice(0, -BASE_PATH.length) + REST_PATH } : {}),
    port,
    emitter,
    upsert: (resource) => writeThroughRouter(deps, resource),
    close: async () => {
      unsubscribe?.();
      await emitter?.close();
      await new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      });
    },
  };
}
