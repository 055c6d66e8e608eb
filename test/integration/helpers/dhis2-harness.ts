// Shared by the DHIS2 end-to-end tests: the DHIS2 tracker simulator and the OpenCRVS simulator on free
// ports, a Bridge (as `serve` builds it) with two DHIS2 sources (the demo Child Programme for births, the
// sandbox's death programme for deaths), both writing the tracking id back, and a fresh SQLite file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bridge } from '../../../src/app.js';
import { configFromObject } from '../../../src/config/index.js';
import type { BridgeConfig } from '../../../src/config/types.js';
import type { LedgerRow } from '../../../src/ledger/index.js';
import { type Logger, silentLogger } from '../../../src/observability/logger.js';
import {
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  buildDemoChildProgramme,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  type Dhis2SimulatorOptions,
  ORG_UNITS,
  startDhis2Simulator,
  type TrackedEntity,
} from '../../../src/sandbox/dhis2/index.js';
import { type OpenCrvsSimulator, type SimEvent, startOpenCrvsSimulator } from '../../../src/sandbox/opencrvs/index.js';

export const BIRTHS_SOURCE = 'dhis2-births';
export const DEATHS_SOURCE = 'dhis2-deaths';

/** Org unit uid → Farajaland externalIds (the bridge resolves them to the simulator's UUIDs). */
export const DHIS2_ROUTING = {
  defaultOffice: 'LHUYvwY2Aq1',
  facilities: {
    [ORG_UNITS.ngelehunChc]: { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
    [ORG_UNITS.gbenikoroMchp]: { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
  },
};

export const FAST_DELIVERY = {
  baseDelayMs: 20,
  maxDelayMs: 200,
  pollIntervalMs: 20,
  lockTimeoutSeconds: 1,
  holdProbeSeconds: 1,
  maxAttempts: 100,
};

export interface Dhis2ConfigInput {
  dhis2BaseUrl: string;
  sim: OpenCrvsSimulator;
  dbPath: string;
  pageSize?: number;
  schedule?: string;
  /** Omit the write-back settings (default: both sources write back). */
  writeBack?: boolean;
}

/** The bridge config object (also written as JSON for the `serve` child process). */
export function dhis2ConfigObject(input: Dhis2ConfigInput): Record<string, unknown> {
  const poll = { schedule: input.schedule ?? '*/1 * * * * *', overlapSeconds: 2, pageSize: input.pageSize ?? 4 };
  const retry = { baseDelayMs: 20, maxDelayMs: 200, maxAttempts: 20 };
  const writeBack = input.writeBack !== false;
  return {
    opencrvs: {
      tokenUrl: input.sim.tokenUrl,
      eventsUrl: input.sim.eventsUrl,
      clientId: input.sim.clientId,
      clientSecret: input.sim.clientSecret,
      timeoutMs: 5000,
    },
    store: { path: input.dbPath },
    http: { host: '127.0.0.1', port: 0 },
    delivery: FAST_DELIVERY,
    sources: [
      {
        id: BIRTHS_SOURCE,
        kind: 'dhis2',
        baseUrl: input.dhis2BaseUrl,
        auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
        timeoutMs: 5000,
        poll,
        dhis2: { program: CHILD_PROGRAMME },
        mappings: ['birth.dhis2'],
        ...(writeBack
          ? { writeBack: { dataElement: BIRTH_DATA_ELEMENTS.trackingId, programStage: BIRTH_STAGE, ...retry } }
          : {}),
      },
      {
        id: DEATHS_SOURCE,
        kind: 'dhis2',
        baseUrl: `${input.dhis2BaseUrl}/api`,
        auth: { type: 'basic', username: DEFAULT_SANDBOX_AUTH.username, password: DEFAULT_SANDBOX_AUTH.password },
        timeoutMs: 5000,
        poll,
        dhis2: { program: DEATH_PROGRAMME, orgUnits: [ORG_UNITS.sierraLeone], orgUnitMode: 'DESCENDANTS' },
        mappings: ['death.dhis2'],
        ...(writeBack ? { writeBack: { dataElement: DEATH_DATA_ELEMENTS.trackingId, ...retry } } : {}),
      },
    ],
    routing: DHIS2_ROUTING,
    logging: { level: 'silent' },
  };
}

export interface Dhis2Harness {
  dhis2: Dhis2Simulator;
  sim: OpenCrvsSimulator;
  bridge: Bridge;
  config: BridgeConfig;
  dir: string;
  seeded: TrackedEntity[];
  rows(): LedgerRow[];
  events(): Promise<SimEvent[]>;
  close(): Promise<void>;
}

/** The demo programme's people: births (child + mother) and deaths, updated in the 12 hours before now. */
export function demoEntities(births: number, deaths: number, seed = 7): TrackedEntity[] {
  return buildDemoChildProgramme({ births, deaths, seed });
}

export async function startDhis2Harness(
  options: {
    births?: number;
    deaths?: number;
    pageSize?: number;
    writeBack?: boolean;
    /** Changes to the demo entities before they are seeded (e.g. equal timestamps). */
    entities?: (entities: TrackedEntity[]) => TrackedEntity[];
    /** Changes to the config object before it is validated (e.g. a wrong token, an org unit filter). */
    configure?: (config: { sources: Array<Record<string, unknown>> }) => void;
    /** Overrides for `delivery` settings (over FAST_DELIVERY). */
    delivery?: Record<string, unknown>;
    /** The simulator's test knobs (an offset-dependent tie order, a page-size cap, a 403 for out of scope). */
    simulator?: Pick<Dhis2SimulatorOptions, 'tieOrder' | 'maxPageSize' | 'outOfScopeRead' | 'users'>;
    /** The bridge's logger (default: silent). */
    logger?: Logger;
  } = {},
): Promise<Dhis2Harness> {
  const demo = demoEntities(options.births ?? 5, options.deaths ?? 3);
  const seeded = options.entities ? options.entities(demo) : demo;
  const dhis2 = await startDhis2Simulator({ port: 0, seed: seeded, ...options.simulator });
  const sim = await startOpenCrvsSimulator({ port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'bridge-dhis2-'));
  const object = dhis2ConfigObject({
    dhis2BaseUrl: dhis2.baseUrl,
    sim,
    dbPath: join(dir, 'bridge.db'),
    pageSize: options.pageSize,
    writeBack: options.writeBack,
  });
  if (options.delivery) object.delivery = { ...FAST_DELIVERY, ...options.delivery };
  const sources = object.sources;
  assert.ok(Array.isArray(sources));
  options.configure?.({ sources });
  // A configuration the bridge refuses throws from configFromObject or the constructor: the simulators
  // are closed then too, or the test process would hang on their open servers.
  let bridge: Bridge | undefined;
  let config: ReturnType<typeof configFromObject>;
  try {
    config = configFromObject(object);
    bridge = new Bridge(config, {
      logger: options.logger ?? silentLogger,
      schedule: false,
      http: false,
      worker: false,
    });
    await bridge.start();
  } catch (err) {
    await bridge?.stop().catch(() => undefined);
    await Promise.all([dhis2.close(), sim.close()]);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dhis2,
    sim,
    bridge,
    config,
    dir,
    seeded,
    rows: () => bridge.ledger.list({ limit: 10_000 }),
    events: () => sim.control.events(),
    async close() {
      await bridge.stop().catch(() => undefined);
      await Promise.all([dhis2.close(), sim.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Tracked entities enrolled in `program` (the children and the deceased; mothers are not enrolled). */
export function enrolledIn(entities: TrackedEntity[], program: string): TrackedEntity[] {
  return entities.filter((te) => te.enrollments?.some((en) => en.program === program));
}

/** The value of a data element on the tracked entity's events in `program`, as the simulator holds it now. */
export function dataValueOf(
  dhis2: Dhis2Simulator,
  uid: string,
  program: string,
  dataElement: string,
): string | undefined {
  const te = dhis2.trackedEntity(uid);
  assert.ok(te, `tracked entity ${uid} exists`);
  const values = (te.enrollments ?? [])
    .filter((en) => en.program === program)
    .flatMap((en) => en.events ?? [])
    .flatMap((ev) => ev.dataValues ?? [])
    .filter((dv) => dv.dataElement === dataElement);
  return values[0]?.value ?? undefined;
}

/** Exactly once: one OpenCRVS event per ledger row, each with exactly one accepted NOTIFY. */
export function assertOneEventPerRow(events: SimEvent[], rows: LedgerRow[]): void {
  assert.equal(events.length, rows.length, 'one OpenCRVS event per ledger row');
  const byCreate = new Map<string, SimEvent>();
  for (const event of events) {
    const create = event.actions.find((a) => a.type === 'CREATE');
    assert.ok(create, `event ${event.id} has a CREATE action`);
    byCreate.set(create.transactionId, event);
    const accepted = event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted');
    assert.equal(accepted.length, 1, `event ${event.id} has exactly one accepted NOTIFY`);
  }
  for (const row of rows) {
    assert.equal(row.state, 'delivered', `row ${row.id} delivered (last error: ${row.lastError?.message ?? '-'})`);
    assert.ok(byCreate.has(row.createTransactionId), `row ${row.id} has its OpenCRVS event`);
  }
}
