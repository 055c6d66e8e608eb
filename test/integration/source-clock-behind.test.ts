// A source whose own clock is behind the stored watermark: the EMR (or DHIS2) moved to a new server whose
// clock is an hour behind the old one's, or a clock that ran ahead was put right. The records it stamps are
// all earlier than the watermark; read from there, none would ever be found while every pass said ok.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge, type SyncSummary } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import type { SourceStatusView } from '../../src/http/admin/types.js';
import { openLedger } from '../../src/ledger/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation } from '../../src/sandbox/demo/generate.js';
import {
  buildDemoChildProgramme,
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  startDhis2Simulator,
} from '../../src/sandbox/dhis2/index.js';
import { type FhirSandbox, startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { DHIS2_CURSOR } from '../../src/sources/dhis2/index.js';
import { birthResources, FAST_DELIVERY, ROUTING, simulatorOpenCrvs, sleep } from './helpers/bridge-harness.js';
import { DHIS2_ROUTING } from './helpers/dhis2-harness.js';

const HOUR = 3_600_000;
const OVERLAP_SECONDS = 2;
const behind = () => Date.now() - HOUR;

const dir = mkdtempSync(join(tmpdir(), 'bridge-clock-behind-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Pass {
  summary: SyncSummary;
  statuses: SourceStatusView[];
  warnings: string[];
}

/** One `sync --once` as the command runs it: a bridge built from the config, one pass, stopped. */
async function syncWith(config: Record<string, unknown>): Promise<Pass> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
  const bridge = new Bridge(configFromObject(config), { logger, schedule: false, http: false });
  try {
    await bridge.start();
    const summary = await bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    return { summary, statuses: bridge.sourceStatuses(), warnings: lines.map((line) => String(JSON.parse(line).msg)) };
  } finally {
    await bridge.stop();
  }
}

function fhirConfig(sim: { tokenUrl: string }, baseUrl: string, dbPath: string) {
  return {
    opencrvs: { ...simulatorOpenCrvs(sim as never), timeoutMs: 5000 },
    store: { path: dbPath },
    http: { host: '127.0.0.1', port: 0 },
    delivery: FAST_DELIVERY,
    sources: [
      {
        id: 'emr',
        kind: 'fhir',
        baseUrl,
        timeoutMs: 5000,
        poll: { schedule: '*/1 * * * * *', overlapSeconds: OVERLAP_SECONDS, pageSize: 50 },
      },
    ],
    routing: ROUTING,
    logging: { level: 'silent' },
  };
}

function births(from: number, count: number): Resource[] {
  const out: Resource[] = [];
  for (let i = from; i < from + count; i++) out.push(...birthResources(i));
  return out;
}

const seeded = (more: Resource[]) => [...DEMO_FACILITIES.map(facilityLocation), ...more];

describe('a source whose clock is behind the stored watermark', () => {
  it('FHIR: an EMR moved to a server an hour behind; the births recorded there are read, nothing twice', async () => {
    const sim = await startOpenCrvsSimulator({ port: 0 });
    const fhirs: FhirSandbox[] = [];
    const dbPath = join(dir, 'fhir.db');
    try {
      const old = await startFhirSandboxWith({ port: 0, seed: seeded(births(0, 2)) }, {});
      fhirs.push(old);
      const first = await syncWith(fhirConfig(sim, old.baseUrl, dbPath));
      assert.equal(first.summary.ok, true);
      assert.equal((await sim.control.events()).length, 2);

      // The same records and ids on the new server, whose clock is an hour behind; two births recorded
      // there after the bridge last read the old one.
      const moved = await startFhirSandboxWith({ port: 0, seed: seeded(births(0, 2)) }, { clock: behind });
      fhirs.push(moved);
      for (const resource of births(2, 2)) await moved.upsert(resource);
      // Longer ago than the overlap by the time the bridge reads: a watermark moved back to the server's
      // time less the overlap would leave them behind.
      await sleep((OVERLAP_SECONDS + 1) * 1000);

      const pass = await syncWith(fhirConfig(sim, moved.baseUrl, dbPath));
      assert.equal(pass.summary.ok, true);
      const events = await sim.control.events();
      assert.equal(events.length, 4, 'the two new births reached OpenCRVS, the two old ones not again');
      const ledger = openLedger(dbPath);
      try {
        const rows = ledger.list({ limit: 100 });
        assert.equal(rows.length, 4);
        assert.ok(rows.every((row) => row.state === 'delivered'));
        // The watermark follows the new server's clock now: no longer an hour ahead.
        const watermark = ledger.getCursor('emr', 'lastUpdated:Patient');
        assert.ok(watermark && Date.parse(watermark) < Date.now() - HOUR / 2, `watermark ${watermark}`);
      } finally {
        ledger.close();
      }
      // Said in the log, and on the source's status (the admin page's Sources table).
      assert.ok(pass.warnings.some((msg) => msg.startsWith("the stored watermark is ahead of the EMR's own time")));
      const behindNow = pass.statuses.find((s) => s.id === 'emr')?.clockBehind;
      assert.ok(behindNow, 'the source status says the watermark was moved back');
      assert.ok(Date.parse(behindNow.watermark) > Date.parse(behindNow.serverTime) + OVERLAP_SECONDS * 1000);
      assert.ok(Date.parse(behindNow.movedTo) <= Date.parse(behindNow.serverTime));

      // The next pass finds the watermark behind the server's time: nothing is moved back again.
      const again = await syncWith(fhirConfig(sim, moved.baseUrl, dbPath));
      assert.equal(again.summary.ok, true);
      assert.equal(again.statuses.find((s) => s.id === 'emr')?.clockBehind, undefined);
      assert.equal((await sim.control.events()).length, 4);
    } finally {
      for (const fhir of fhirs) await fhir.close();
      await sim.close();
    }
  });

  it('DHIS2: a server an hour behind (clock or time zone); the births recorded there are read', async () => {
    const sim = await startOpenCrvsSimulator({ port: 0 });
    const servers: Dhis2Simulator[] = [];
    const dbPath = join(dir, 'dhis2.db');
    const config = (baseUrl: string) => ({
      opencrvs: { ...simulatorOpenCrvs(sim), timeoutMs: 5000 },
      store: { path: dbPath },
      http: { host: '127.0.0.1', port: 0 },
      delivery: FAST_DELIVERY,
      sources: [
        {
          id: 'hmis',
          kind: 'dhis2',
          baseUrl,
          auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
          timeoutMs: 5000,
          poll: { schedule: '*/1 * * * * *', overlapSeconds: OVERLAP_SECONDS, pageSize: 10 },
          dhis2: { program: CHILD_PROGRAMME },
          mappings: ['birth.dhis2'],
        },
      ],
      routing: DHIS2_ROUTING,
      logging: { level: 'silent' },
    });
    try {
      // Two births last updated in the two minutes before now: the watermark ends about a minute ago.
      const old = await startDhis2Simulator({ port: 0, seed: buildDemoChildProgramme({ births: 2, deaths: 0 }) });
      servers.push(old);
      const first = await syncWith(config(old.baseUrl));
      assert.equal(first.summary.ok, true);
      assert.equal((await sim.control.events()).length, 2);

      // Two births entered on the new server (its clock an hour behind) after the bridge last read the old one.
      const moved = await startDhis2Simulator({ port: 0, clock: behind });
      servers.push(moved);
      const entered = buildDemoChildProgramme({ births: 2, deaths: 0, seed: 99 });
      const response = await fetch(`${moved.baseUrl}/api/tracker?async=false`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
        body: JSON.stringify({ trackedEntities: entered }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(response.status, 200, await response.text());
      await sleep((OVERLAP_SECONDS + 1) * 1000);

      const pass = await syncWith(config(moved.baseUrl));
      assert.equal(pass.summary.ok, true);
      assert.equal((await sim.control.events()).length, 4, 'the two births entered on the new server arrived');
      assert.ok(pass.warnings.some((msg) => msg.startsWith("the stored watermark is ahead of DHIS2's own time")));
      assert.ok(pass.statuses.find((s) => s.id === 'hmis')?.clockBehind);
      const ledger = openLedger(dbPath);
      try {
        const watermark = ledger.getCursor('hmis', DHIS2_CURSOR);
        assert.ok(watermark && Date.parse(`${watermark}Z`) < Date.now() - HOUR / 2, `watermark ${watermark}`);
      } finally {
        ledger.close();
      }
    } finally {
      for (const server of servers) await server.close();
      await sim.close();
    }
  });
});
