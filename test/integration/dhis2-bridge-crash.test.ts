// Crash safety of the DHIS2 source and the write-back: `opencrvs-bridge serve` in its own process is
// SIGKILLed twice while it polls, delivers and writes tracking ids back, and started again. Afterwards every
// DHIS2 record has exactly one OpenCRVS event with one accepted NOTIFY, one ledger row, and its own
// tracking id in DHIS2; nothing is lost, nothing doubled.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openLedger } from '../../src/ledger/index.js';
import {
  BIRTH_DATA_ELEMENTS,
  buildDemoChildProgramme,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  startDhis2Simulator,
} from '../../src/sandbox/dhis2/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { WriteBackStore } from '../../src/sources/writeback/index.js';
import { CHILD_NODE_FLAGS, childModule } from '../support/child-source.js';
import { assertOneEventPerRow, dataValueOf, dhis2ConfigObject, enrolledIn } from './helpers/dhis2-harness.js';

const CLI = childModule('cli.ts');

function serve(configFile: string): { child: ChildProcess; ready: Promise<void>; exited: Promise<unknown> } {
  const entry = `import { main } from ${JSON.stringify(CLI)}; process.exitCode = await main(['node', 'opencrvs-bridge', 'serve', '--config', process.env.BRIDGE_TEST_CONFIG]);`;
  const env: NodeJS.ProcessEnv = { ...process.env, BRIDGE_TEST_CONFIG: configFile, LOG_LEVEL: 'info' };
  delete env.BRIDGE_CONFIG;
  const child = spawn(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', entry], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('opencrvs-bridge serving')) resolve();
      if (out.length > 100_000) out = out.slice(-1000);
    });
    child.stderr?.on('data', () => undefined);
    void exited.then(() => reject(new Error(`serve exited before it was ready: ${out.slice(-500)}`)));
  });
  return { child, ready, exited };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('DHIS2 source and write-back across crashes', () => {
  let dhis2: Dhis2Simulator | undefined;
  let sim: OpenCrvsSimulator | undefined;
  let running: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'bridge-dhis2-crash-'));

  after(async () => {
    if (running && running.exitCode === null) running.kill('SIGKILL');
    await Promise.all([dhis2?.close(), sim?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a serve process killed twice mid-run loses nothing and duplicates nothing', async () => {
    const first = buildDemoChildProgramme({ births: 10, deaths: 5, seed: 21 });
    const later = buildDemoChildProgramme({ births: 3, deaths: 2, seed: 22 });
    dhis2 = await startDhis2Simulator({ port: 0, seed: first });
    sim = await startOpenCrvsSimulator({ port: 0 });
    // Slow OpenCRVS down a little so the kills land while deliveries and write-backs are in flight.
    await sim.control.configure({ faults: { delayMs: 40 } });
    const dbPath = join(dir, 'bridge.db');
    const config = dhis2ConfigObject({ dhis2BaseUrl: dhis2.baseUrl, sim, dbPath, pageSize: 4 });
    config.logging = { level: 'info' };
    config.delivery = { ...(config.delivery as object), lockTimeoutSeconds: 1 };
    const configFile = join(dir, 'bridge.json');
    writeFileSync(configFile, JSON.stringify(config));
    const events = async () => (await sim?.control.events())?.length ?? 0;
    const records = () =>
      enrolledIn([...first, ...later], CHILD_PROGRAMME).length +
      enrolledIn([...first, ...later], DEATH_PROGRAMME).length;

    // Run 1: killed once a few events exist.
    let run = serve(configFile);
    running = run.child;
    await run.ready;
    await until('the first OpenCRVS events', async () => (await events()) >= 3);
    run.child.kill('SIGKILL');
    await run.exited;

    // New records arrive while the bridge is down (through the import API, so DHIS2 stamps them now); run 2
    // is killed mid-way through the rest.
    const imported = await fetch(`${dhis2.baseUrl}/api/tracker?async=false&importStrategy=CREATE`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
      body: JSON.stringify({ trackedEntities: later }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(imported.status, 200, await imported.text());
    run = serve(configFile);
    running = run.child;
    await run.ready;
    const seen = await events();
    await until('more OpenCRVS events', async () => (await events()) >= seen + 4);
    run.child.kill('SIGKILL');
    await run.exited;

    // Run 3 finishes: every record delivered and every tracking id written back.
    run = serve(configFile);
    running = run.child;
    await run.ready;
    const store = () => new WriteBackStore(dbPath);
    await until('every record delivered', async () => (await events()) >= records());
    await until('every write-back done', () => {
      const s = store();
      try {
        const items = s.list();
        return items.length === records() && items.every((i) => i.doneAt !== null);
      } finally {
        s.close();
      }
    });
    run.child.kill('SIGTERM');
    await run.exited;
    running = undefined;

    const ledger = openLedger(dbPath);
    try {
      const rows = ledger.list({ limit: 1000 });
      assert.equal(rows.length, records(), 'one ledger row per DHIS2 record');
      assertOneEventPerRow(await sim.control.events(), rows);
      const s = store();
      try {
        for (const row of rows) {
          const uid = row.subjectKey.replace('TrackedEntity/', '');
          const [program, dataElement] =
            row.eventType === 'birth'
              ? [CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId]
              : [DEATH_PROGRAMME, DEATH_DATA_ELEMENTS.trackingId];
          assert.equal(
            dataValueOf(dhis2, uid, program, dataElement),
            row.trackingId,
            `tracking id of ${row.subjectKey}`,
          );
          const outcome = s.get(row.id)?.outcome;
          assert.ok(outcome === 'written' || outcome === 'already', `write-back of row ${row.id}: ${outcome}`);
        }
      } finally {
        s.close();
      }
      // A write repeated after a kill is harmless (same value), but never for a different tracking id.
      const written = new Map<string, Set<string>>();
      for (const write of dhis2.writes()) {
        for (const ev of write.payload.events ?? []) {
          const value = ev.dataValues?.find(
            (d) => d.dataElement === BIRTH_DATA_ELEMENTS.trackingId || d.dataElement === DEATH_DATA_ELEMENTS.trackingId,
          )?.value;
          const set = written.get(ev.event ?? '') ?? new Set<string>();
          if (value) set.add(value);
          written.set(ev.event ?? '', set);
        }
      }
      for (const [event, values] of written) assert.equal(values.size, 1, `event ${event} got one tracking id`);
    } finally {
      ledger.close();
    }
  });
});
