// The DHIS2 simulator behind the fault proxy, which records every request and lets a test answer chosen
// ones itself: for the tests of what the bridge asks DHIS2 (or refuses to) and of answers that are not
// DHIS2's own. Two shapes: a source's client alone, or the births source of the DHIS2 harness.
import assert from 'node:assert/strict';
import { configFromObject } from '../../../src/config/index.js';
import type { SourceSettings } from '../../../src/config/types.js';
import { silentLogger } from '../../../src/observability/logger.js';
import {
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  startDhis2Simulator,
} from '../../../src/sandbox/dhis2/index.js';
import { Dhis2Client } from '../../../src/sources/dhis2/client.js';
import { type Dhis2Harness, startDhis2Harness } from './dhis2-harness.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';

export interface Dhis2BehindProxy {
  dhis2: Dhis2Simulator;
  proxy: FaultProxy;
  /** The source as the configuration gives it (through the same validation), its baseUrl the proxy's. */
  source: SourceSettings;
  client: Dhis2Client;
  close(): Promise<void>;
}

/**
 * An empty simulator behind the proxy, and a client of a DHIS2 source (`src`, the Child Programme, the
 * sandbox PAT) pointed at the proxy. `source` adds to or replaces the source's keys (a write-back, say);
 * `client` sets the client's tries.
 */
export async function startDhis2BehindProxy(
  options: { source?: Record<string, unknown>; client?: { attempts?: number; retryBaseMs?: number } } = {},
): Promise<Dhis2BehindProxy> {
  const dhis2 = await startDhis2Simulator({ port: 0 });
  const proxy = await startFaultProxy();
  proxy.target = dhis2.baseUrl;
  const config = configFromObject({
    opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused' },
    sources: [
      {
        id: 'src',
        kind: 'dhis2',
        baseUrl: proxy.url,
        timeoutMs: 5000,
        auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
        dhis2: { program: CHILD_PROGRAMME },
        ...options.source,
      },
    ],
  });
  const source = config.sources[0];
  assert.ok(source);
  const client = new Dhis2Client(source, { logger: silentLogger, ...options.client });
  return {
    dhis2,
    proxy,
    source,
    client,
    async close() {
      client.close();
      await proxy.close();
      await dhis2.close();
    },
  };
}

/**
 * The DHIS2 harness (startDhis2Harness, with these options) whose births source, the first, reaches the
 * simulator through the proxy. `birthsSource` changes that source's keys (its mappings, say).
 */
export async function startDhis2HarnessBehindProxy(
  options: NonNullable<Parameters<typeof startDhis2Harness>[0]> & { birthsSource?: Record<string, unknown> } = {},
): Promise<{ proxy: FaultProxy; h: Dhis2Harness }> {
  const { birthsSource, configure, ...harness } = options;
  const proxy = await startFaultProxy();
  try {
    const h = await startDhis2Harness({
      ...harness,
      configure: (config) => {
        const { sources } = config;
        proxy.target = String(sources[0]?.baseUrl);
        sources[0] = { ...sources[0], baseUrl: proxy.url, ...birthsSource };
        configure?.(config);
      },
    });
    return { proxy, h };
  } catch (err) {
    await proxy.close();
    throw err;
  }
}
