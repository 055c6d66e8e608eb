// One bridge process per ledger: a second `serve` (a rolling update's new pod, a second container) or a
// `sync --once` beside a running serve refuses to start, naming the holder; a serve killed with SIGKILL
// does not stop the next start on the same host. Separate processes, as an operator runs them.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { migrate } from '../../src/ledger/db.js';
import { MIGRATIONS } from '../../src/ledger/migrations/index.js';
import { PROCESS_LEASE_META } from '../../src/ledger/process-lease.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type CliResult, finished, runCli, spawnCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, sleep, startSimulators } from './helpers/bridge-harness.js';

function lease(dbPath: string): { holder: string; command: string } | undefined {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(PROCESS_LEASE_META);
    return row ? JSON.parse(row.value) : undefined;
  } finally {
    db.close();
  }
}

describe('one bridge process per ledger', () => {
  let s: Simulators | undefined;
  const children: ChildProcess[] = [];
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await s?.close();
  });

  /** Starts `serve` and waits until it holds the lease (the ledger says so). */
  async function serve(config: string, dbPath: string): Promise<{ child: ChildProcess; exit: Promise<CliResult> }> {
    const child = spawnCli(['serve', '--config', config]);
    children.push(child);
    const exit = finished(child, 60_000);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) assert.fail(`serve exited: ${(await exit).stderr}`);
      const held = (() => {
        try {
          return lease(dbPath);
        } catch {
          return undefined; // not created or migrated yet
        }
      })();
      if (held?.holder.startsWith(`${hostname()}:${child.pid}:`)) return { child, exit };
      if (Date.now() > deadline) assert.fail('serve did not take the ledger lease');
      await sleep(50);
    }
  }

  it('a second serve and a sync beside it refuse to start; a killed serve does not block the next', async () => {
    s = await startSimulators([...birthResources(0)]);
    const dbPath = join(s.dir, 'bridge.db');
    const config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject()));

    const first = await serve(config, dbPath);
    const second = await runCli(['serve', '--config', config]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(`^serve: another bridge process uses this ledger \\(serve on ${hostname()}, pid ${first.child.pid},`),
    );
    assert.match(second.stderr, /strategy Recreate/);
    const sync = await runCli(['sync', '--once', '--config', config]);
    assert.equal(sync.code, 1, sync.stderr);
    assert.match(sync.stderr, /sync failed: .*another bridge process uses this ledger \(serve on/);
    // dismiss, like replay, takes no lease: it runs beside serve (docs/deployment.md §1).
    const dismiss = await runCli(['dismiss', '999', '--reason', 'test record', '--config', config]);
    assert.equal(dismiss.stderr, '');
    assert.match(dismiss.stdout, /^Nothing dismissed\.\nNot dismissed 999: no such row\n$/);
    assert.equal(first.child.exitCode, null, 'the first serve runs on');

    // Killed: its lease is left behind, but its pid runs no process on this host.
    first.child.kill('SIGKILL');
    assert.equal((await first.exit).signal, 'SIGKILL');
    const next = await serve(config, dbPath);
    next.child.kill('SIGTERM');
    assert.equal((await next.exit).code, 0);
    assert.equal(lease(dbPath), undefined, 'a clean stop gives the lease back');

    // A sync pass alone takes it, and gives it back.
    const alone = await runCli(['sync', '--once', '--config', config]);
    assert.equal(alone.code, 0, alone.stderr);
    assert.equal(lease(dbPath), undefined);
  });

  it('a newer serve, sync, replay, dismiss or doctor beside a running bridge leaves its older ledger unmigrated', async () => {
    s ??= await startSimulators([...birthResources(0)]);
    // The ledger of the release before, held by a running bridge: this test process stands for it (a pid
    // that runs, on this host, in this pid namespace).
    const dbPath = join(s.dir, 'older.db');
    const db = new Database(dbPath);
    db.pragma('journal_mode = WAL');
    migrate(db, MIGRATIONS.slice(0, -1), silentLogger, Date.now());
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    const holder = `${hostname()}:${process.pid}:ns${ns}-abcdef`;
    const renew = () =>
      db
        .prepare('INSERT OR REPLACE INTO meta (key, value, updated_at) VALUES (?, ?, ?)')
        .run(PROCESS_LEASE_META, JSON.stringify({ holder, command: 'serve', renewedAt: Date.now() }), Date.now());
    renew();
    const renewing = setInterval(renew, 5_000);
    const version = () => (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
    const older = version();
    try {
      const config = join(s.dir, 'older.yaml');
      writeFileSync(config, stringify({ ...s.configObject(), store: { path: dbPath } }));
      const serve = await runCli(['serve', '--config', config]);
      assert.equal(serve.code, 1, serve.stderr);
      assert.match(
        serve.stderr,
        new RegExp(`^serve: another bridge process uses this ledger \\(serve on ${hostname()}, pid ${process.pid},`),
      );
      const sync = await runCli(['sync', '--once', '--config', config]);
      assert.equal(sync.code, 1, sync.stderr);
      assert.match(sync.stderr, /sync failed: another bridge process uses this ledger/);
      const replay = await runCli(['replay', '--dead', '--config', config]);
      assert.equal(replay.code, 1, replay.stderr);
      assert.match(
        replay.stderr,
        /^replay: the ledger .* is used by another bridge process \(serve on .*would upgrade its schema/,
      );
      const dismiss = await runCli(['dismiss', '1', '--reason', 'test record', '--config', config]);
      assert.equal(dismiss.code, 1, dismiss.stderr);
      assert.match(
        dismiss.stderr,
        /^dismiss: the ledger .* is used by another bridge process \(serve on .*would upgrade its schema/,
      );
      assert.equal(dismiss.stdout, '', 'nothing dismissed');
      const doctor = await runCli(['doctor', '--json', '--config', config]);
      const store = (
        JSON.parse(doctor.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }
      ).checks.find((check) => check.name === 'store');
      assert.equal(store?.status, 'warn', doctor.stdout);
      assert.match(store?.detail ?? '', /used by another bridge process .*not checked$/);
      assert.equal(version(), older, 'the running bridge can still open its ledger');
    } finally {
      clearInterval(renewing);
      db.close();
    }
  });

  it('a serve whose port is in use exits 2 naming http.port, and gives the lease back', async () => {
    s ??= await startSimulators([...birthResources(0)]);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const port = (holder.address() as AddressInfo).port;
      const dbPath = join(s.dir, 'port-in-use.db');
      const config = join(s.dir, 'port-in-use.yaml');
      writeFileSync(
        config,
        stringify({ ...s.configObject(), store: { path: dbPath }, http: { host: '127.0.0.1', port } }),
      );
      const serve = await runCli(['serve', '--config', config]);
      assert.equal(serve.code, 2, serve.stderr);
      assert.match(
        serve.stderr,
        new RegExp(
          `^configuration error: http\\.port ${port} on http\\.host 127\\.0\\.0\\.1 cannot be used \\(EADDRINUSE\\)`,
        ),
      );
      // The next start (the port freed, or the pod replacing this one) does not wait 30 s for it to lapse.
      assert.equal(lease(dbPath), undefined);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
