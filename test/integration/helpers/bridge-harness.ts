// Shared by the bridge end-to-end tests: the OpenCRVS simulator and the FHIR sandbox on free ports, a
// Bridge (the composition root, as `serve` builds it) with a fresh SQLite file, routing like the demo,
// and helpers to write births/deaths into the EMR and to read what reached OpenCRVS.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge, type BridgeOptions } from '../../../src/app.js';
import { configFromObject } from '../../../src/config/index.js';
import type { BridgeConfig } from '../../../src/config/types.js';
import type { LedgerRow } from '../../../src/ledger/index.js';
import { type Logger, silentLogger } from '../../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth, generateDeath } from '../../../src/sandbox/demo/generate.js';
import {
  type FhirSandbox,
  type FhirSandboxInternals,
  type NotifyStyle,
  startFhirSandboxWith,
} from '../../../src/sandbox/fhir/index.js';
import {
  type OpenCrvsSimulator,
  type SimEvent,
  type SimLocation,
  startOpenCrvsSimulator,
} from '../../../src/sandbox/opencrvs/index.js';

export const SOURCE_ID = 'emr';
const TRANSACTION_MAX = 48;

/** Demo routing (Farajaland externalIds); the bridge resolves them to the simulator's UUIDs. */
export const ROUTING = {
  defaultOffice: 'LHUYvwY2Aq1',
  facilities: {
    'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
    'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
  },
} as const;

/** Short delays so retries play out in a test's time; budgets large enough that nothing dies by accident. */
export const FAST_DELIVERY = {
  baseDelayMs: 20,
  maxDelayMs: 200,
  pollIntervalMs: 20,
  lockTimeoutSeconds: 2,
  holdProbeSeconds: 1,
  maxAttempts: 100,
};

export interface HarnessOptions {
  /** Subscription wire style of the sandbox; no notifications when absent. */
  notify?: {
    style: NotifyStyle;
    /** Sandbox side: the HMAC secret (medplum) it signs with. */
    secret?: string;
    /** Sandbox side: sent with every notification (Subscription.channel.header). */
    headers?: Record<string, string>;
    heartbeatSeconds?: number;
  };
  /** Bridge side: `sources[].subscription` (present whenever `notify` is). */
  subscription?: {
    secret?: string;
    hmacSecret?: string;
    secretFile?: string;
    hmacSecretFile?: string;
    heartbeatSeconds?: number;
  };
  poll?: { enabled?: boolean; schedule?: string; overlapSeconds?: number; pageSize?: number; since?: string };
  /** Start the cron schedules (off by default: tests call syncOnce or drive by notifications). */
  schedule?: boolean;
  /** Start the delivery worker (default true). */
  worker?: boolean;
  /** The bridge's logger (default silent): a test that reads what was logged passes its own. */
  logger?: Logger;
  /** Resources stored before the emitter starts (no notifications); the facility Locations are always added. */
  seed?: Resource[];
  http?: { bodyLimitBytes?: number };
  /** Overrides for `delivery` settings (over FAST_DELIVERY). */
  delivery?: Record<string, unknown>;
  /** Overrides for `opencrvs` settings (e.g. a wrong secret). */
  opencrvs?: Record<string, unknown>;
  /** The OpenCRVS version the simulator imitates and the bridge targets (default 2.0). */
  version?: '1.9' | '2.0';
  /** The FHIR server's clock in epoch ms (freeze it to make every write share one `lastUpdated`). */
  fhirClock?: () => number;
  /** How the FHIR sandbox pages, a hook before each search it answers, a front's URL limit, and the server's list limit. */
  fhirPaging?: Pick<FhirSandboxInternals, 'paging' | 'beforeSearch' | 'urlLimit' | 'listLimit' | 'beforeRest'>;
  /** The FHIR sandbox answers as this server does (FhirSandboxOptions.emulate). */
  fhirEmulate?: 'openmrs';
  /**
   * The source's baseUrl, given the sandbox's (a proxy in front of the sandbox), its timeoutMs (default
   * 5000), its `auth` (default none) and its `alsoKnownAs` (default none).
   */
  source?: {
    baseUrl?: (sandboxBaseUrl: string) => string;
    timeoutMs?: number;
    auth?: Record<string, unknown>;
    alsoKnownAs?: string[];
    /** `openmrs.restUrl` at the sandbox's REST API (with fhirEmulate 'openmrs'): relationship types from it. */
    openmrsRest?: boolean;
    /** `sources[].retry` (default none: the clients' 3 attempts, 0.5 s then 1 s apart). */
    retry?: { attempts?: number; baseDelayMs?: number };
  };
}

export interface Harness {
  sim: OpenCrvsSimulator;
  fhir: FhirSandbox;
  bridge: Bridge;
  config: BridgeConfig;
  dir: string;
  /** http://127.0.0.1:<bridge port> */
  bridgeUrl: string;
  /** The receiver URL the sandbox notifies. */
  receiverUrl: string;
  /** Writes births `from … from+count-1`, each resource on its own (one notification per resource). */
  writeBirths(from: number, count: number): Promise<void>;
  writeDeaths(from: number, count: number): Promise<void>;
  /** Writes resources in transaction Bundles over HTTP (48 a Bundle: whole births when given in sixes). */
  transaction(resources: Resource[]): Promise<void>;
  /** Waits (bounded) until the simulator holds at least `n` events; returns them. */
  waitForEvents(n: number, timeoutMs?: number): Promise<SimEvent[]>;
  /** Waits (bounded) until `check` holds. */
  waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
  events(): Promise<SimEvent[]>;
  rows(): LedgerRow[];
  /** The simulator UUID of a Farajaland externalId. */
  location(externalId: string): SimLocation;
  close(): Promise<void>;
}

/** A port that was free a moment ago (the sandbox must be known before the bridge that polls it is built). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(25);
  }
}

export function birthResources(i: number, prefix = 'e2e'): Resource[] {
  return generateBirth(i, { prefix });
}

export function deathResources(i: number, prefix = 'e2e'): Resource[] {
  return generateDeath(i, { prefix });
}

export function transactionBundle(resources: Resource[]): Resource {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: resources.map((resource) => ({
      resource,
      request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` },
    })),
  } as Resource;
}

/** The `opencrvs` section of a config that points the bridge at `sim`, with the client it seeds. */
export function simulatorOpenCrvs(sim: OpenCrvsSimulator) {
  return { tokenUrl: sim.tokenUrl, eventsUrl: sim.eventsUrl, clientId: sim.clientId, clientSecret: sim.clientSecret };
}

/** The bridge config object the tests use (also written as YAML for the CLI tests). */
export function bridgeConfigObject(input: {
  sim: OpenCrvsSimulator;
  fhirBaseUrl: string;
  dbPath: string;
  options?: HarnessOptions;
}): Record<string, unknown> {
  const { sim, fhirBaseUrl, dbPath, options = {} } = input;
  return {
    opencrvs: {
      ...simulatorOpenCrvs(sim),
      timeoutMs: 5000,
      ...(options.version ? { version: options.version } : {}),
      ...options.opencrvs,
    },
    store: { path: dbPath },
    http: { host: '127.0.0.1', port: 0, ...(options.http ?? {}) },
    delivery: { ...FAST_DELIVERY, ...options.delivery },
    sources: [
      {
        id: SOURCE_ID,
        kind: 'fhir',
        baseUrl: options.source?.baseUrl?.(fhirBaseUrl) ?? fhirBaseUrl,
        timeoutMs: options.source?.timeoutMs ?? 5000,
        ...(options.source?.auth ? { auth: options.source.auth } : {}),
        ...(options.source?.alsoKnownAs ? { alsoKnownAs: options.source.alsoKnownAs } : {}),
        ...(options.source?.retry ? { retry: options.source.retry } : {}),
        ...(options.source?.openmrsRest ? { openmrs: { restUrl: new URL('/ws/rest/v1', fhirBaseUrl).href } } : {}),
        poll: { schedule: '*/1 * * * * *', overlapSeconds: 2, pageSize: 50, ...(options.poll ?? {}) },
        ...(options.subscription || options.notify ? { subscription: options.subscription ?? {} } : {}),
      },
    ],
    routing: ROUTING,
    logging: { level: 'silent' },
  };
}

/**
 * Ordering: the bridge's source baseUrl must name the sandbox, and the sandbox's notify URL must
 * name the bridge. A free port is reserved for the sandbox first; the bridge listens on port 0 and
 * is started without schedules; then the sandbox starts on the reserved port with the notify URL.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  // The port reserved for the sandbox is free only until something else binds it: between the
  // reservation and the sandbox's listen, the bridge starts and connects out, and another test file
  // runs in parallel. Losing that race is not the code under test failing; start again on a new port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHarnessOnce(options);
    } catch (err) {
      const inUse = typeof err === 'object' && err !== null && 'code' in err && err.code === 'EADDRINUSE';
      if (!inUse || attempt === 3) throw err;
    }
  }
}

async function startHarnessOnce(options: HarnessOptions): Promise<Harness> {
  const sim = await startOpenCrvsSimulator({ port: 0, ...(options.version ? { version: options.version } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'bridge-e2e-'));
  const fhirPort = await freePort();
  const fhirBaseUrl = `http://127.0.0.1:${fhirPort}/fhir`;
  const config = configFromObject(bridgeConfigObject({ sim, fhirBaseUrl, dbPath: join(dir, 'bridge.db'), options }));
  const bridgeOptions: BridgeOptions = {
    logger: options.logger ?? silentLogger,
    schedule: false,
    worker: options.worker ?? true,
  };
  const bridge = new Bridge(config, bridgeOptions);
  let fhir: FhirSandbox | undefined;
  try {
    await bridge.start();
    const bridgeUrl = `http://127.0.0.1:${bridge.httpPort}`;
    const receiverUrl = `${bridgeUrl}/fhir-subscription/${SOURCE_ID}`;
    fhir = await startFhirSandboxWith(
      {
        port: fhirPort,
        seed: [...DEMO_FACILITIES.map(facilityLocation), ...(options.seed ?? [])],
        notify: options.notify ? { url: receiverUrl, ...options.notify } : undefined,
        emulate: options.fhirEmulate,
      },
      { clock: options.fhirClock, ...options.fhirPaging },
    );
    assert.equal(fhir.baseUrl, fhirBaseUrl);
    if (options.schedule) bridge.enableSchedules();
    const sandbox = fhir;
    const harness: Harness = {
      sim,
      fhir: sandbox,
      bridge,
      config,
      dir,
      bridgeUrl,
      receiverUrl,
      async writeBirths(from, count) {
        for (let i = from; i < from + count; i++) for (const r of birthResources(i)) await sandbox.upsert(r);
      },
      async writeDeaths(from, count) {
        for (let i = from; i < from + count; i++) for (const r of deathResources(i)) await sandbox.upsert(r);
      },
      async transaction(resources) {
        // fhir-router allows at most 50 updates in one transaction.
        for (let at = 0; at < resources.length; at += TRANSACTION_MAX) {
          const response = await fetch(sandbox.baseUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/fhir+json' },
            body: JSON.stringify(transactionBundle(resources.slice(at, at + TRANSACTION_MAX))),
            signal: AbortSignal.timeout(10_000),
          });
          const text = await response.text();
          assert.equal(response.status, 200, `transaction: ${text.slice(0, 300)}`);
        }
      },
      async waitForEvents(n, timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const events = await sim.control.events();
          if (events.length >= n) return events;
          if (Date.now() > deadline) {
            assert.fail(
              `timed out after ${timeoutMs} ms waiting for ${n} OpenCRVS events: have ${events.length}; ` +
                `ledger ${JSON.stringify(stateCounts(bridge))}, inbox depth ${bridge.ledger.inbox.backlog().depth}`,
            );
          }
          await sleep(50);
        }
      },
      waitFor: waitUntil,
      events: () => sim.control.events(),
      rows: () => bridge.ledger.list({ limit: 10_000 }),
      location(externalId) {
        const found = sim.locations.find((l) => l.externalId === externalId);
        assert.ok(found, `simulator location ${externalId}`);
        return found;
      },
      async close() {
        await bridge.stop().catch(() => undefined);
        await sandbox.close();
        await sim.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return harness;
  } catch (err) {
    await bridge.stop().catch(() => undefined);
    await fhir?.close();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export function stateCounts(bridge: Bridge): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { state, count } of bridge.ledger.counts()) out[state] = (out[state] ?? 0) + count;
  return out;
}

/**
 * Exactly once from OpenCRVS's side: `expected` events, each with exactly one accepted NOTIFY, one
 * per ledger row (matched by the row's create transactionId), every row delivered.
 */
export async function assertDeliveredOnce(h: Harness, expected: number): Promise<SimEvent[]> {
  const events = await h.events();
  assert.equal(events.length, expected, 'one OpenCRVS event per source event');
  const byCreate = new Map<string, SimEvent>();
  for (const event of events) {
    const create = event.actions.find((a) => a.type === 'CREATE');
    assert.ok(create, `event ${event.id} has a CREATE action`);
    byCreate.set(create.transactionId, event);
    const accepted = event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted');
    assert.equal(accepted.length, 1, `event ${event.id} has exactly one accepted NOTIFY`);
  }
  const rows = h.rows();
  assert.equal(rows.length, expected, 'one ledger row per source event');
  for (const row of rows) {
    assert.equal(row.state, 'delivered', `row ${row.id} delivered (last error: ${row.lastError?.message ?? '-'})`);
    assert.ok(byCreate.has(row.createTransactionId), `row ${row.id} has its OpenCRVS event`);
  }
  return events;
}

/**
 * The declaration the NOTIFY carried: the simulator stores it on the `Requested` action; the
 * `Accepted` confirmation that follows has an empty declaration.
 */
export function notifiedDeclaration(event: SimEvent): Record<string, unknown> {
  const notify = event.actions.find((a) => a.type === 'NOTIFY' && Object.keys(a.declaration).length > 0);
  assert.ok(notify, `event ${event.id} has a NOTIFY with a declaration`);
  return notify.declaration;
}

/** The office the event was created at (the CREATE action's createdAtLocation). */
export function officeOf(event: SimEvent): string | undefined {
  return event.actions.find((a) => a.type === 'CREATE')?.createdAtLocation;
}

/** OpenCRVS events keyed by the ledger row's subject (`Patient/<id>`), joined on the create transactionId. */
export async function eventsBySubject(h: Harness): Promise<Map<string, SimEvent>> {
  const byCreate = new Map<string, SimEvent>();
  for (const event of await h.events()) {
    const create = event.actions.find((a) => a.type === 'CREATE');
    if (create) byCreate.set(create.transactionId, event);
  }
  const out = new Map<string, SimEvent>();
  for (const row of h.rows()) {
    const event = byCreate.get(row.createTransactionId);
    if (event) out.set(row.subjectKey, event);
  }
  return out;
}

export interface Simulators {
  sim: OpenCrvsSimulator;
  fhir: FhirSandbox;
  dir: string;
  /** The config object for a bridge against these simulators (for the CLI: written as YAML). */
  configObject(options?: HarnessOptions): Record<string, unknown>;
  close(): Promise<void>;
}

/** Both simulators without a bridge, for tests that run the bridge as a CLI process. */
export async function startSimulators(seed: Resource[] = []): Promise<Simulators> {
  const sim = await startOpenCrvsSimulator({ port: 0 });
  const fhir = await startFhirSandboxWith({ port: 0, seed: [...DEMO_FACILITIES.map(facilityLocation), ...seed] }, {});
  const dir = mkdtempSync(join(tmpdir(), 'bridge-cli-'));
  return {
    sim,
    fhir,
    dir,
    configObject: (options) =>
      bridgeConfigObject({ sim, fhirBaseUrl: fhir.baseUrl, dbPath: join(dir, 'bridge.db'), options }),
    async close() {
      await fhir.close();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
