// `opencrvs-bridge sync --once` as an external scheduler runs it: a separate process, a YAML config,
// the simulators in this process. Exit 0 when everything found was delivered, 1 when something is dead.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { openLedger } from '../../src/ledger/index.js';
import { closedPort } from '../support/ports.js';
import { eventInput } from '../unit/ledger-helpers.js';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators, waitUntil } from './helpers/bridge-harness.js';
import { corruptLedger } from './helpers/corrupt-ledger.js';

describe('opencrvs-bridge sync --once', () => {
  let s: Simulators;
  let config: string;
  before(async () => {
    s = await startSimulators([...birthResources(0), ...birthResources(1)]);
    config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject()));
  });
  after(async () => {
    await s?.close();
  });

  it('exits 0 when everything found was delivered, and a second pass finds nothing new', async () => {
    // With --json standard output is the summary alone, whatever the log level: logs go to stderr.
    const first = await runCli(['sync', '--once', '--config', config, '--json'], { LOG_LEVEL: 'info' });
    assert.equal(first.code, 0, first.stderr || first.stdout);
    assert.match(first.stderr, /"level":"info"/, 'the logs are on stderr');
    const summary = JSON.parse(first.stdout);
    assert.equal(summary.ok, true);
    assert.deepEqual(
      summary.events.map((e: { state: string }) => e.state),
      ['delivered', 'delivered'],
    );
    assert.equal(summary.delivered.length, 2, 'delivered in this pass');
    assert.equal(summary.held, null);
    assert.equal((await s.sim.control.events()).length, 2);

    // Without --json too: the summary on stdout, the log lines on stderr.
    const second = await runCli(['sync', '--once', '--config', config], { LOG_LEVEL: 'info' });
    assert.equal(second.code, 0, second.stderr || second.stdout);
    assert.match(second.stdout, /result: everything found was delivered/);
    assert.doesNotMatch(second.stdout, /"level":/);
    assert.match(second.stderr, /"level":"info"/);
    assert.equal((await s.sim.control.events()).length, 2, 'nothing sent twice');
  });

  it('exits 1, saying so in its result, when the ledger failed where nothing else the pass counts did', async () => {
    // A fresh ledger whose table of kept routing answers is damaged (its index, read at start, is not): each
    // answer OpenCRVS gives fails to be kept, and nothing else fails. serve's /readyz fails store on it.
    const object = s.configObject() as { store: { path: string } };
    object.store = { path: join(s.dir, 'damaged-answers.db') };
    openLedger(object.store.path).close();
    assert.notEqual(corruptLedger(object.store.path, ['opencrvs_locations']), 'ok');
    const damaged = join(s.dir, 'damaged-answers.yaml');
    writeFileSync(damaged, stringify(object));
    const text = await runCli(['sync', '--once', '--config', damaged]);
    assert.equal(text.code, 1, text.stderr || text.stdout);
    assert.match(text.stdout, /delivered in this pass: 2\n/, 'the births went out all the same');
    assert.match(
      text.stdout,
      /\nresult: the ledger is corrupt \(SQLITE_CORRUPT: database disk image is malformed\): restore the last backup \(runbook: "Ledger corrupt"\)\n$/,
    );
    const json = await runCli(['sync', '--once', '--config', damaged, '--json']);
    assert.equal(json.code, 1, json.stderr || json.stdout);
    const summary = JSON.parse(json.stdout) as { ok: boolean; storeFailure: unknown; earlier: unknown[] };
    assert.deepEqual(
      [summary.ok, summary.storeFailure, summary.earlier],
      [false, { code: 'SQLITE_CORRUPT', message: 'database disk image is malformed' }, []],
    );
  });

  it('needs only the secrets it presents: no admin token, no subscription secret (it opens no listener)', async () => {
    // A CronJob given OpenCRVS's secret alone. The admin token's and the subscription's variables are unset and
    // a subscription's secret file is missing: serve would stop on each, naming the key.
    const object = s.configObject() as { opencrvs: Record<string, unknown>; sources: Record<string, unknown>[] };
    const cron = join(s.dir, 'cron.yaml');
    const ref = (name: string) => `\${${name}}`;
    writeFileSync(
      cron,
      stringify({
        ...object,
        opencrvs: { ...object.opencrvs, clientSecret: ref('CRON_OPENCRVS_SECRET') },
        store: { path: join(s.dir, 'cron.db') },
        admin: { token: ref('BRIDGE_ADMIN_TOKEN') },
        sources: [
          {
            ...object.sources[0],
            subscription: { secret: ref('EMR_HOOK_SECRET'), hmacSecretFile: join(s.dir, 'none') },
          },
        ],
      }),
    );
    const env = { CRON_OPENCRVS_SECRET: s.sim.clientSecret, BRIDGE_ADMIN_TOKEN: undefined, EMR_HOOK_SECRET: undefined };
    const run = await runCli(['sync', '--once', '--config', cron], { ...env, LOG_LEVEL: 'warn' });
    assert.equal(run.code, 0, run.stderr || run.stdout);
    assert.match(run.stdout, /delivered in this pass: 2\n/);
    // Left unread, the subscription's secrets are not missing ones: no warning that anyone may notify.
    assert.doesNotMatch(run.stderr, /admin\.token|subscription without secret/);
  });

  it('exits 1 when OpenCRVS rejects a notification (the row is dead)', async () => {
    await s.sim.control.configure({ actionConfirmation: 'reject' });
    for (const resource of birthResources(2)) await s.fhir.upsert(resource);
    const result = await runCli(['sync', '--once', '--config', config, '--json']);
    assert.equal(result.code, 1, result.stderr || result.stdout);
    const summary = JSON.parse(result.stdout);
    assert.equal(summary.ok, false);
    assert.deepEqual(
      summary.events.map((e: { state: string }) => e.state),
      ['dead'],
    );

    // The next pass finds nothing new, but the dead row still needs someone: the scheduler stays red.
    await s.sim.control.configure({ actionConfirmation: 'accept' });
    const next = await runCli(['sync', '--once', '--config', config]);
    assert.equal(next.code, 1, next.stderr || next.stdout);
    assert.match(next.stdout, /earlier events still not delivered: 1 dead, 0 failing/);
    const json = JSON.parse((await runCli(['sync', '--once', '--config', config, '--json'])).stdout);
    assert.deepEqual(
      json.earlier.map((e: { state: string }) => e.state),
      ['dead'],
    );
  });

  it('refuses an unknown --source, a bad --timeout and a bad LOG_LEVEL with exit 2 or a clear message', async () => {
    const unknown = await runCli(['sync', '--once', '--config', config, '--source', 'nosuch']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no source "nosuch" in the config \(sources: emr\)/);
    const timeout = await runCli(['sync', '--once', '--config', config, '--timeout', 'abc']);
    assert.equal(timeout.code, 2);
    assert.match(timeout.stderr, /--timeout must be a number of seconds above 0/);
    // Past setTimeout's longest delay (2^31 - 1 ms) Node fires the pass's deadline after 1 ms: the pass
    // would be cut off at once.
    const tooLong = await runCli(['sync', '--once', '--config', config, '--timeout', '3000000']);
    assert.equal(tooLong.code, 2, tooLong.stderr || tooLong.stdout);
    assert.match(tooLong.stderr, /--timeout must be at most 2147483 seconds \(about 24 days\), not "3000000"/);
    // A mistyped flag is a usage error (2), not "something is dead" (1).
    const typo = await runCli(['sync', '--once', '--config', config, '--sourc', 'emr']);
    assert.equal(typo.code, 2, typo.stderr);
    assert.match(typo.stderr, /unknown option '--sourc'/);
    const missing = await runCli(['sync', '--config', config]);
    assert.equal(missing.code, 2, missing.stderr);
    const level = await runCli(['sync', '--once', '--config', config], { LOG_LEVEL: 'bogus' });
    assert.equal(level.code, 2, 'a configuration error');
    assert.match(level.stderr, /configuration error: LOG_LEVEL: bogus is not a log level/);
    // Capitals are a level too.
    const capitals = await runCli(['sync', '--once', '--config', config, '--json'], { LOG_LEVEL: 'WARN' });
    assert.notEqual(capitals.code, 2, capitals.stderr);
    assert.doesNotMatch(capitals.stderr, /configuration error/);
    assert.equal(typeof JSON.parse(capitals.stdout).ok, 'boolean', 'the pass ran');
  });

  it('exits 1 when the FHIR source cannot be read', async () => {
    const broken = join(s.dir, 'broken.yaml');
    const object = s.configObject();
    const [source] = object.sources as Array<Record<string, unknown>>;
    writeFileSync(
      broken,
      stringify({
        ...object,
        // Refused through every try, the tries 10 ms apart (sources[].retry), not 0.5 s then 1 s.
        sources: [
          {
            ...source,
            baseUrl: `http://127.0.0.1:${await closedPort()}/fhir`,
            timeoutMs: 500,
            retry: { baseDelayMs: 10 },
          },
        ],
      }),
    );
    const result = await runCli(['sync', '--once', '--config', broken]);
    assert.equal(result.code, 1, result.stderr || result.stdout);
    // Why, with the system's code: it says which of host, port or TLS to look at.
    assert.match(
      result.stdout,
      /sources that could not be polled:\n {2}emr: search \w+ failed: network error \(ECONNREFUSED\)/,
    );
    // The last line gives every reason for the exit 1 (the dead row an earlier test left is one).
    assert.match(result.stdout, /\nresult: [^\n]*a source could not be polled\n/);
  });

  it('names opencrvs.version when the location lookup 404s, as a server of the other version answers', async () => {
    const other = join(s.dir, 'other-version.yaml');
    const object = s.configObject();
    const opencrvs = object.opencrvs as Record<string, unknown>;
    writeFileSync(
      other,
      stringify({ ...object, opencrvs: { ...opencrvs, version: '1.9' }, store: { path: join(s.dir, 'other.db') } }),
    );
    const result = await runCli(['sync', '--once', '--config', other]);
    assert.equal(result.code, 1, result.stderr || result.stdout);
    assert.match(
      result.stderr,
      /^sync failed: listLocations: HTTP 404: [^\n]*: is opencrvs\.eventsUrl the events API, [^\n]*, and opencrvs\.version \('1\.9'\) the server's\?\n/,
    );
  });

  /** Rows of the pass's ledger in `state` (read beside the running process: WAL allows it). */
  function rowsIn(state: string, file = 'bridge.db'): number {
    const db = new Database(join(s.dir, file), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM ledger_rows WHERE state = ?').get(state) as { n: number }).n;
    } finally {
      db.close();
    }
  }

  async function untilDelivering(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      try {
        if (rowsIn('delivering') > 0) return;
      } catch {
        // the ledger does not exist yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('no row went out');
  }

  it('a SIGTERM mid-delivery hands the rows back and exits 1; after a SIGKILL the next pass takes them at once', async () => {
    await runCli(['sync', '--once', '--config', config]); // whatever earlier tests left, delivered first
    const before = (await s.sim.control.events()).length;
    await s.sim.control.configure({ faults: { delayMs: 2000, operations: ['create'] } });
    for (const resource of birthResources(3)) await s.fhir.upsert(resource);
    const stopped = spawnCli(['sync', '--once', '--config', config]);
    const result = finished(stopped, 30_000);
    await untilDelivering();
    stopped.kill('SIGTERM');
    const { code, stderr } = await result;
    assert.equal(code, 1, stderr);
    assert.match(stderr, /sync stopped by SIGTERM: rows in flight were handed back/);
    assert.equal(rowsIn('delivering'), 0, 'nothing left locked for the lock timeout');

    for (const resource of birthResources(4)) await s.fhir.upsert(resource);
    const killed = spawnCli(['sync', '--once', '--config', config]);
    const gone = finished(killed, 30_000);
    await untilDelivering();
    killed.kill('SIGKILL');
    await gone;
    assert.ok(rowsIn('delivering') > 0, 'a killed pass leaves its rows locked');
    await s.sim.control.configure({ faults: {} });
    // The same host, a pid that no longer runs: taken back at once, not after lockTimeoutSeconds (300).
    const next = await runCli(['sync', '--once', '--config', config, '--json']);
    const summary = JSON.parse(next.stdout) as { earlier: Array<{ state: string }>; timedOut: boolean };
    // Only the dead row an earlier test left is not done (it keeps the exit 1).
    assert.deepEqual(
      summary.earlier.map((row) => row.state).filter((state) => state !== 'dead'),
      [],
      next.stdout,
    );
    assert.equal(summary.timedOut, false);
    assert.equal(rowsIn('delivering'), 0);
    assert.equal((await s.sim.control.events()).length, before + 2, 'births 3 and 4, each once');
  });

  it('--timeout bounds the whole pass: against an EMR that never answers it ends at the deadline, exit 1', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket)); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const hanging = join(s.dir, 'hanging.yaml');
      const object = s.configObject();
      const [source] = object.sources as Array<Record<string, unknown>>;
      const baseUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/fhir`;
      writeFileSync(hanging, stringify({ ...object, sources: [{ ...source, baseUrl, timeoutMs: 60_000 }] }));
      // A row waiting to be sent: after the deadline nothing more is taken (the source clients are closed,
      // so a recheck would fail and let it go out unchecked).
      const ledger = openLedger(join(s.dir, 'bridge.db'));
      const { row } = ledger.recordEvent(eventInput('after-deadline'));
      ledger.close();
      const started = Date.now();
      const result = await runCli(['sync', '--once', '--config', hanging, '--timeout', '2']);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(result.code, 1, result.stderr || result.stdout);
      assert.match(result.stdout, /the pass reached --timeout before it finished/);
      assert.match(result.stdout, /\nresult: [^\n]*the pass reached --timeout\n/);
      // Generous for a loaded machine; without the deadline this takes the source's 60 s call timeout.
      assert.ok(seconds < 30, `${seconds} s`);
      const after = openLedger(join(s.dir, 'bridge.db'));
      assert.equal(after.get(row.id)?.state, 'pending');
      assert.deepEqual(after.attempts(row.id), [], 'not sent after the deadline');
      after.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('exits 2, as for any configuration error, when a source names a mapping that does not load', async () => {
    const object = s.configObject() as { sources: Array<Record<string, unknown>>; store: { path: string } };
    object.sources = [{ ...object.sources[0], mappings: ['birth.dhis2'] }];
    object.store = { path: join(s.dir, 'wrong-kind.db') };
    const wrongKind = join(s.dir, 'wrong-kind.yaml');
    writeFileSync(wrongKind, stringify(object));
    const run = await runCli(['sync', '--once', '--config', wrongKind]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /^configuration error: .*birth\.dhis2\.yaml: source: a mapping for dhis2 sources, named by source/m,
    );
  });

  it('names the settings OpenCRVS refused when the client secret is wrong', async () => {
    const object = s.configObject() as { opencrvs: Record<string, unknown>; store: { path: string } };
    object.opencrvs = { ...object.opencrvs, clientSecret: 'not-the-secret-5y9c' };
    object.store = { path: join(s.dir, 'wrong-secret.db') };
    const wrong = join(s.dir, 'wrong-secret.yaml');
    writeFileSync(wrong, stringify(object));
    const run = await runCli(['sync', '--once', '--config', wrong]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /sync failed: token: HTTP 401: .*opencrvs\.clientId and opencrvs\.clientSecret/);
    assert.ok(!run.stderr.includes('not-the-secret-5y9c'));
  });

  it('tries a dropped location lookup again within the pass instead of failing it', async () => {
    await s.sim.control.configure({ faults: { dropRate: 1, operations: ['locations'], times: 1 } });
    const object = s.configObject() as { store: { path: string } };
    object.store = { path: join(s.dir, 'dropped-lookup.db') };
    const dropped = join(s.dir, 'dropped-lookup.yaml');
    writeFileSync(dropped, stringify(object));
    try {
      const run = await runCli(['sync', '--once', '--config', dropped, '--json'], { LOG_LEVEL: 'warn' });
      // The pass ran (a summary, no 'sync failed'); what it found is the earlier tests' business.
      assert.doesNotMatch(run.stderr, /sync failed/);
      assert.match(run.stderr, /location lookup failed; trying again within the pass/);
      const summary = JSON.parse(run.stdout) as { events: unknown[] };
      assert.ok(summary.events.length > 0, run.stdout);
    } finally {
      await s.sim.control.configure({ faults: {} });
    }
  });

  it('serve stopped by SIGTERM during start-up stops quietly: no routing error, no "serving" after "stopped"', async () => {
    // OpenCRVS slow to answer the first location lookups: the signal lands while routing resolves.
    await s.sim.control.configure({ faults: { delayMs: 4000, operations: ['locations'] } });
    const object = s.configObject() as { store: { path: string }; http?: Record<string, unknown> };
    object.store = { path: join(s.dir, 'startup-signal.db') };
    object.http = { host: '127.0.0.1', port: 0 };
    const startup = join(s.dir, 'startup-signal.yaml');
    writeFileSync(startup, stringify(object));
    try {
      const lookups = async () => (await s.sim.control.requests()).locations ?? 0;
      const before = await lookups();
      const child = spawnCli(['serve', '--config', startup], { LOG_LEVEL: 'debug' });
      const run = finished(child, 30_000);
      // Signalled once OpenCRVS holds its first location lookup (for 4 s), not a fixed time after it first
      // logs: on a loaded machine the lookup may not have begun by then, and the test would prove nothing.
      await waitUntil(
        'serve to look up its routing table',
        async () => {
          assert.equal(child.exitCode, null, 'serve exited before it looked up its routing table');
          return (await lookups()) !== before;
        },
        20_000,
      );
      child.kill('SIGTERM');
      const { code, stdout, stderr } = await run;
      assert.equal(code, 0, stderr);
      const log = stdout + stderr;
      const after = log.slice(log.indexOf('"msg":"stopped"'));
      assert.ok(log.includes('"msg":"stopped"'), log.slice(-1500));
      assert.doesNotMatch(log, /routing could not be resolved/);
      assert.doesNotMatch(after, /opencrvs-bridge serving/);
    } finally {
      await s.sim.control.configure({ faults: {} });
    }
  });

  it("logs the upgrade's store.path warning as a JSON warn line under sync, replay and serve, not as plain text", async () => {
    // A ledger found only relative to the working directory (the old reading of a relative store.path), the
    // config a folder down: run from the ledger's folder, as a cron job started there.
    const old = join(s.dir, 'old-reading', 'bridge.db');
    mkdirSync(dirname(old), { recursive: true });
    openLedger(old).close();
    const file = join(s.dir, 'etc', 'bridge.yaml');
    mkdirSync(dirname(file), { recursive: true });
    // No source: the pass has nothing to read and sends nothing the other tests count.
    const object = { ...s.configObject(), sources: [], store: { path: 'old-reading/bridge.db' } };
    writeFileSync(file, stringify({ ...object, http: { host: '127.0.0.1', port: 0 } }));
    /** The line of the warning among the output, parsed: it is JSON. */
    const warned = (output: string) => {
      const line = output.split('\n').find((l) => l.includes('using the ledger at'));
      assert.ok(line, output);
      assert.doesNotMatch(line, /^warning: /);
      return JSON.parse(line) as { level: string; msg: string; setting: string; time: string; service: string };
    };
    const expected = `store.path old-reading/bridge.db: using the ledger at ${old}, found relative to the working directory`;

    const sync = await runCli(['sync', '--once', '--config', file], { LOG_LEVEL: 'warn' }, 60_000, s.dir);
    assert.equal(sync.code, 0, sync.stderr || sync.stdout);
    const fromSync = warned(sync.stderr);
    assert.equal(fromSync.level, 'warn');
    assert.equal(fromSync.setting, 'store.path');
    assert.ok(fromSync.msg.startsWith(expected), fromSync.msg);
    assert.match(fromSync.msg, new RegExp(`Set store\\.path: ${old} so that every command finds this ledger`));
    assert.doesNotMatch(sync.stdout, /using the ledger at/, 'the summary is no log');
    // Arguments wrong against the configuration (a --source it does not have): the configuration was read,
    // so the warning is logged all the same, before the refusal.
    const wrong = await runCli(
      ['sync', '--once', '--config', file, '--source', 'nosuch'],
      { LOG_LEVEL: 'warn' },
      60_000,
      s.dir,
    );
    assert.equal(wrong.code, 2, wrong.stderr || wrong.stdout);
    assert.equal(warned(wrong.stderr).setting, 'store.path');
    assert.match(wrong.stderr, /\nsync: no source "nosuch" in the config/);
    // replay logs it as its other start warnings, a JSON line on standard error; its answer is on stdout.
    const replay = await runCli(['replay', '--dead', '--config', file], { LOG_LEVEL: 'warn' }, 60_000, s.dir);
    assert.equal(replay.code, 0, replay.stderr || replay.stdout);
    const fromReplay = warned(replay.stderr);
    assert.equal(fromReplay.level, 'warn');
    assert.ok(fromReplay.msg.startsWith(expected), fromReplay.msg);
    assert.equal(replay.stdout, 'Nothing requeued.\n');

    // serve logs on standard output: the warning among its lines, before it serves.
    const child = spawnCli(['serve', '--config', file], { LOG_LEVEL: 'info' }, s.dir);
    const run = finished(child, 30_000);
    let serving = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('opencrvs-bridge serving')) serving = true;
    });
    for (let waited = 0; !serving && child.exitCode === null && waited < 20_000; waited += 50) await sleep(50);
    child.kill('SIGTERM');
    const served = await run;
    assert.equal(served.code, 0, served.stderr);
    assert.ok(serving, served.stdout);
    const fromServe = warned(served.stdout);
    assert.equal(fromServe.level, 'warn');
    assert.ok(fromServe.msg.startsWith(expected), fromServe.msg);
    assert.equal(served.stderr, '', 'nothing said beside the log');
  });

  it('writes no FHIR error body through DEBUG=*: the debug output of fhir-kit-client stays off', async () => {
    // An EMR whose errors quote the patient, as HAPI's diagnostics can.
    const outcome = JSON.stringify({
      resourceType: 'OperationOutcome',
      issue: [
        { severity: 'error', code: 'exception', diagnostics: 'cannot index Patient Amani Banda NRC 123456/78/1' },
      ],
    });
    const emr = createHttpServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/fhir+json' }).end(outcome);
    });
    await new Promise<void>((resolve) => emr.listen(0, '127.0.0.1', resolve));
    const port = (emr.address() as AddressInfo).port;
    const failing = join(s.dir, 'failing-emr.yaml');
    const object = s.configObject() as { sources: Array<Record<string, unknown>>; store: { path: string } };
    // Its 500 through every try (each logged at debug), the tries 10 ms apart (sources[].retry).
    object.sources = [{ ...object.sources[0], baseUrl: `http://127.0.0.1:${port}/fhir`, retry: { baseDelayMs: 10 } }];
    object.store = { path: join(s.dir, 'failing-emr.db') };
    writeFileSync(failing, stringify(object));
    try {
      const run = await runCli(['sync', '--once', '--config', failing], { DEBUG: '*', LOG_LEVEL: 'debug' });
      assert.equal(run.code, 1, run.stderr.slice(-2000));
      assert.ok(run.stderr.length + run.stdout.length > 0, 'it said something');
      for (const text of ['Amani', '123456/78/1']) {
        assert.ok(!run.stderr.includes(text) && !run.stdout.includes(text), `${text} in the output`);
      }
    } finally {
      await new Promise((resolve) => emr.close(resolve));
    }
  });

  it('--timeout bounds delivery too: against an OpenCRVS that never answers the pass ends at the deadline', async () => {
    // A ledger of its own: an earlier test left a row for an office the simulator does not know, which
    // holds the queue of bridge.db.
    const object = s.configObject() as { opencrvs: Record<string, unknown>; store: { path: string } };
    object.store = { path: join(s.dir, 'slow-opencrvs.db') };
    const own = join(s.dir, 'own-ledger.yaml');
    writeFileSync(own, stringify(object));
    await runCli(['sync', '--once', '--config', own]); // the earlier births, delivered first
    const before = (await s.sim.control.events()).length;
    // Each call would wait out a 60 s timeout: one attempt (token, create, lookup, notify) could take minutes.
    const slow = join(s.dir, 'slow-opencrvs.yaml');
    writeFileSync(slow, stringify({ ...object, opencrvs: { ...object.opencrvs, timeoutMs: 60_000 } }));
    await s.sim.control.configure({ faults: { delayMs: 60_000, operations: ['create'] } });
    for (const resource of birthResources(5)) await s.fhir.upsert(resource);
    const started = Date.now();
    const result = await runCli(['sync', '--once', '--config', slow, '--timeout', '3', '--json']);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(result.code, 1, result.stderr || result.stdout);
    assert.equal(JSON.parse(result.stdout).timedOut, true);
    // Generous for a loaded machine; without the deadline on delivery this takes the 60 s call timeout.
    assert.ok(seconds < 30, `${seconds} s`);
    assert.equal(rowsIn('delivering', 'slow-opencrvs.db'), 0, 'the row in flight was handed back, not left locked');
    await s.sim.control.configure({ faults: {} });
    const next = await runCli(['sync', '--once', '--config', own, '--json']);
    // (Exit 1 still: birth 2, which an earlier test had OpenCRVS reject, is dead in this ledger too.)
    const summary = JSON.parse(next.stdout) as { delivered: number[]; timedOut: boolean; held: unknown };
    assert.deepEqual([summary.delivered.length, summary.timedOut, summary.held], [1, false, null], next.stdout);
    assert.equal((await s.sim.control.events()).length, before + 1, 'birth 5, once');
  });
});
