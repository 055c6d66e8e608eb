// `opencrvs-bridge serve` killed with SIGKILL at random moments while it polls and delivers a few
// hundred births, then restarted: in the end every birth reached OpenCRVS exactly once. The service
// runs as a separate process with a YAML config (poll every second); the simulators live here.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { finished, spawnCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, sleep, startSimulators } from './helpers/bridge-harness.js';

const BIRTHS = 200;
const KILLS = 3;

interface Progress {
  rows: number;
  delivered: number;
}

/** What the service has recorded so far, read through a separate read-only connection. */
function progress(dbPath: string): Progress {
  if (!existsSync(dbPath)) return { rows: 0, delivered: 0 };
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      const row = db
        .prepare<[], { rows: number; delivered: number }>(
          "SELECT COUNT(*) AS rows, COALESCE(SUM(state = 'delivered'), 0) AS delivered FROM ledger_rows",
        )
        .get();
      return row ?? { rows: 0, delivered: 0 };
    } finally {
      db.close();
    }
  } catch {
    return { rows: 0, delivered: 0 }; // not created or migrated yet
  }
}

describe('serve killed with SIGKILL and restarted', () => {
  let s: Simulators | undefined;
  let child: ChildProcess | undefined;
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await s?.close();
  });

  it(`delivers each of ${BIRTHS} births exactly once across ${KILLS} kills at random progress points`, async () => {
    // Half the births are in the EMR from the start; the other half are written while the service runs.
    s = await startSimulators(Array.from({ length: BIRTHS / 2 }, (_, i) => birthResources(i)).flat());
    const sims = s;
    const dbPath = join(sims.dir, 'bridge.db');
    const config = join(sims.dir, 'bridge.yaml');
    writeFileSync(
      config,
      stringify(sims.configObject({ poll: { schedule: '*/1 * * * * *', pageSize: 25, overlapSeconds: 2 } })),
    );
    const start = () => {
      const started = spawnCli(['serve', '--config', config]);
      child = started;
      return { child: started, exit: finished(started, 120_000) };
    };

    let writer: Promise<void> | undefined;
    const kills: Progress[] = [];
    for (let k = 0; k < KILLS; k++) {
      const run = start();
      // A random progress point ahead of where the last run stopped: some more rows recorded or delivered
      // (kills land in a poll pass, between pages, or among deliveries), bounded in time.
      const before = progress(dbPath);
      const target = before.rows + before.delivered + 5 + Math.floor(Math.random() * 25);
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && run.child.exitCode === null) {
        const now = progress(dbPath);
        if (now.rows + now.delivered >= target) break;
        await sleep(20);
      }
      await sleep(Math.floor(Math.random() * 40));
      if (run.child.exitCode !== null) assert.fail(`serve exited on its own: ${(await run.exit).stderr}`);
      run.child.kill('SIGKILL');
      const result = await run.exit;
      assert.equal(result.signal, 'SIGKILL');
      kills.push(progress(dbPath));
      if (k === 0) {
        writer = (async () => {
          for (let i = BIRTHS / 2; i < BIRTHS; i++) for (const r of birthResources(i)) await sims.fhir.upsert(r);
        })();
      }
    }
    await writer;
    const last = start();
    const deadline = Date.now() + 60_000;
    let count = 0;
    while (Date.now() < deadline) {
      count = (await sims.sim.control.events()).length;
      if (count >= BIRTHS && progress(dbPath).delivered >= BIRTHS) break;
      await sleep(200);
    }
    assert.ok(count >= BIRTHS, `timed out with ${count} of ${BIRTHS} events (kills at ${JSON.stringify(kills)})`);
    last.child.kill('SIGTERM');
    const stopped = await last.exit;
    assert.equal(stopped.code, 0, `graceful stop: ${stopped.stderr}`);
    // Work was still left at every kill (the kills interrupted something).
    for (const at of kills) assert.ok(at.delivered < BIRTHS, `a kill left work: ${JSON.stringify(kills)}`);

    const events = await sims.sim.control.events();
    assert.equal(events.length, BIRTHS, 'exactly one OpenCRVS event per birth');
    const byCreate = new Map<string, (typeof events)[number]>();
    for (const event of events) {
      const create = event.actions.find((a) => a.type === 'CREATE');
      assert.ok(create, `event ${event.id} has a CREATE`);
      byCreate.set(create.transactionId, event);
      const accepted = event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted');
      assert.equal(accepted.length, 1, `event ${event.id} has exactly one accepted NOTIFY`);
    }
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      const rows = db
        .prepare<[], { subject_key: string; state: string; create_transaction_id: string }>(
          'SELECT subject_key, state, create_transaction_id FROM ledger_rows',
        )
        .all();
      assert.equal(rows.length, BIRTHS, 'one ledger row per birth');
      assert.equal(new Set(rows.map((r) => r.subject_key)).size, BIRTHS);
      for (const row of rows) {
        assert.equal(row.state, 'delivered', `${row.subject_key} delivered`);
        assert.ok(byCreate.has(row.create_transaction_id), `${row.subject_key} has its OpenCRVS event`);
      }
    } finally {
      db.close();
    }
  });
});
