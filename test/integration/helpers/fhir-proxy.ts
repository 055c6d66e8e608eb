// The FHIR sandbox behind the fault proxy, which records every request and lets a test answer chosen ones
// itself (a proxy's page, a 408, a read left hanging), and a client of a FHIR source pointed at the proxy:
// for the tests of what the FHIR client and the partial evaluation do with such answers.
import assert from 'node:assert/strict';
import { configFromObject } from '../../../src/config/index.js';
import type { SourceSettings } from '../../../src/config/types.js';
import type { Resource } from '../../../src/mapping/index.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { type FhirSandbox, startFhirSandbox } from '../../../src/sandbox/fhir/index.js';
import { FhirSourceClient } from '../../../src/sources/fhir/fhir-client.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';

export interface FhirBehindProxy {
  sandbox: FhirSandbox;
  proxy: FaultProxy;
  /** The sandbox's base path (`/fhir`): what the requests the proxy sees start with. */
  path: string;
  /** The source as the configuration gives it (through the same validation), its baseUrl the proxy's. */
  source: SourceSettings;
  client: FhirSourceClient;
  close(): Promise<void>;
}

/**
 * The sandbox, seeded with `seed`, behind the proxy, and a client of the FHIR source `emr` (the
 * configuration's defaults, through the same validation, with `timeoutMs`) pointed at the proxy.
 * `source` adds to or replaces the source's keys (its id, auth, a write-back); `client` sets its tries.
 */
export async function startFhirBehindProxy(options: {
  seed?: Resource[];
  timeoutMs: number;
  source?: Record<string, unknown>;
  client?: { attempts?: number; retryBaseMs?: number };
}): Promise<FhirBehindProxy> {
  const sandbox = await startFhirSandbox({
    port: 0,
    logger: silentLogger,
    ...(options.seed ? { seed: options.seed } : {}),
  });
  const proxy = await startFaultProxy();
  proxy.target = sandbox.baseUrl;
  const path = new URL(sandbox.baseUrl).pathname.replace(/\/+$/, '');
  const config = configFromObject({
    opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused' },
    sources: [
      { id: 'emr', kind: 'fhir', baseUrl: `${proxy.url}${path}`, timeoutMs: options.timeoutMs, ...options.source },
    ],
  });
  const source = config.sources[0];
  assert.ok(source);
  const client = new FhirSourceClient(source, { logger: silentLogger, ...options.client });
  return {
    sandbox,
    proxy,
    path,
    source,
    client,
    async close() {
      client.close();
      await proxy.close();
      await sandbox.close();
    },
  };
}
