// `replay` run beside a running `serve` (docs/deployment.md §1): the rows are replayed by serve, through
// its admin API, so the evaluation joins serve's own order of evaluations of the record; without that API
// the replay runs in its own process and says so; an admin listener of another ledger is never asked, and
// one that refuses the token (401, 429) is not gone around.
// Separate processes, as an operator runs them (`docker exec … opencrvs-bridge replay 12`).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { replayThroughServe, ServeRefused } from '../../src/commands/replay-remote.js';
import { loadConfig } from '../../src/config/index.js';
import { openLedger } from '../../src/ledger/index.js';
import { PROCESS_LEASE_META } from '../../src/ledger/process-lease.js';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';
import { birthResources, freePort, type Simulators, sleep, startSimulators } from './helpers/bridge-harness.js';

const TOKEN = 'replay-beside-serve-admin-token-0123';

function rowStates(dbPath: string): Array<{ id: number; state: string }> {
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare<[], { id: number; state: string }>('SELECT id, state FROM ledger_rows ORDER BY id').all();
    } finally {
      db.close();
    }
  } catch {
    return []; // not created or migrated yet
  }
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('replay beside a running serve', () => {
  let s: Simulators | undefined;
  const children: ChildProcess[] = [];
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await s?.close();
  });

  it('is done by serve through its admin API, or here with a warning when that API is off', async () => {
    s = await startSimulators([...birthResources(0)]);
    const sims = s;
    const dbPath = join(sims.dir, 'bridge.db');
    const adminPort = await freePort();
    const config = join(sims.dir, 'bridge.yaml');
    writeFileSync(config, stringify({ ...sims.configObject(), admin: { token: TOKEN, port: adminPort } }));
    // OpenCRVS refuses the birth: the row is dead (rejected) until the cause is fixed and it is replayed.
    await sims.sim.control.configure({ faults: { errorRate: 1, errorStatus: 400, operations: ['notify'] } });
    const child = spawnCli(['serve', '--config', config], { LOG_LEVEL: 'info' });
    children.push(child);
    const exit = finished(child, 120_000);
    const dead = await until('a dead row', () => rowStates(dbPath).find((row) => row.state === 'dead'));
    await sims.sim.control.configure({ faults: {} });

    // Named twice (a pasted list): asked of serve once, so neither requeued twice nor skipped as not dead.
    const replay = await runCli(['replay', String(dead.id), String(dead.id), '--config', config]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal(replay.stderr, '');
    assert.match(replay.stdout, new RegExp(`^Replayed by the running serve on ${hostname()}, pid ${child.pid},`));
    assert.match(replay.stdout, new RegExp(`\\nRequeued 1 row\\(s\\): ${dead.id}\\n`));
    // serve's worker delivers it, once.
    await until('the replayed row delivered', () =>
      rowStates(dbPath).find((row) => row.id === dead.id && row.state === 'delivered'),
    );
    assert.equal((await sims.sim.control.events()).length, 1);

    // The same command with a configuration that gives it no admin token: replayed here, and said.
    const noAdmin = join(sims.dir, 'no-admin.yaml');
    writeFileSync(noAdmin, stringify(sims.configObject()));
    const here = await runCli(['replay', '999', '--config', noAdmin]);
    assert.equal(here.code, 1, here.stderr);
    assert.match(
      here.stderr,
      new RegExp(`^replay: serve on ${hostname()}, pid ${child.pid}, .* uses this ledger, but its admin API is off`),
    );
    assert.match(here.stdout, /^Nothing requeued\.\nSkipped 999: /);

    // A configuration whose admin token is not serve's (an old copy, a rotated token): serve's admin API
    // answers 401. Refused, exit 1, and not replayed here either: that is the unordered path, not a fallback.
    const wrongConfig = { ...sims.configObject(), admin: { token: `${TOKEN}-old`, port: adminPort } };
    const wrongToken = join(sims.dir, 'wrong-token.yaml');
    writeFileSync(wrongToken, stringify(wrongConfig));
    const refused = await runCli(['replay', '999', '--config', wrongToken]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `^replay: serve's admin API at 127\\.0\\.0\\.1:${adminPort} refused admin\\.token of this configuration \\(HTTP 401\\).*; nothing replayed, by serve or in this process`,
      ),
    );
    assert.doesNotMatch(refused.stderr, /replaying in this process/);
    assert.equal(refused.stdout, '', 'nothing replayed here');

    // An admin listener that serves another ledger is not asked to replay this one's ids: a second
    // ledger whose lease a live process of this host holds (serve's pid, for one that surely runs).
    const otherPath = join(sims.dir, 'other.db');
    const other = openLedger(otherPath);
    try {
      const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
      const holder = `${hostname()}:${child.pid}:ns${ns}-abcdef`;
      other.setMeta(PROCESS_LEASE_META, JSON.stringify({ holder, command: 'serve', renewedAt: Date.now() }));
      const otherConfig = loadConfig({
        text: stringify({
          ...sims.configObject(),
          store: { path: otherPath },
          admin: { token: TOKEN, port: adminPort },
        }),
      });
      const answer = await replayThroughServe(otherConfig, other, [dead.id]);
      assert.equal(answer.by, 'here');
      assert.match('why' in answer ? answer.why : '', new RegExp(`127\\.0\\.0\\.1:${adminPort} serves another ledger`));
    } finally {
      other.close();
    }

    // Too many wrong tokens: the listener answers 429 for a while. Refused too, never replayed here.
    const wrong = loadConfig({ text: stringify(wrongConfig) });
    const inspected = openLedger(dbPath, { inspectOnly: true });
    try {
      let message = '';
      for (let i = 0; i < 15 && !message.includes('HTTP 429'); i++) {
        await assert.rejects(replayThroughServe(wrong, inspected, [dead.id]), (err: Error) => {
          message = err.message;
          return err instanceof ServeRefused;
        });
      }
      assert.match(
        message,
        /refuses tokens from this address for now, after too many wrong ones \(HTTP 429, retry after \d+ s\)/,
      );
    } finally {
      inspected.close();
    }

    child.kill('SIGTERM');
    const served = await exit;
    assert.equal(served.code, 0, served.stderr);
    // The replay went through serve's admin API: its audit line, with the row id.
    assert.match(served.stdout, new RegExp(`"rowIds":\\[${dead.id}\\][^\\n]*dead row replayed by admin`));
  });
});
