// Loops that fail every round on a ledger that cannot be written (a full disk, a read-only file) log the
// first failure at once, then at most once a minute with the repeats since their last line, and one line
// when they recover: one line a round filled the disk's remaining space with logs (Docker's json-file logs
// sit beside /data). The ledger refuses writes for real here: its connection is made query-only, and
// SQLite answers every write SQLITE_READONLY, as it does for a file made read-only.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import type { Db } from '../../src/ledger/db.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { PROCESS_LEASE_META, takeProcessLease } from '../../src/ledger/process-lease.js';
import { createLogger } from '../../src/observability/logger.js';
import { RepeatedFailure } from '../../src/observability/repeated-failure.js';
import { corruptLedger } from '../integration/helpers/corrupt-ledger.js';
import { FakeOpenCrvs, TEST_DELIVERY_SETTINGS } from './delivery-fake-api.js';
import { eventInput, type TestClock, testClock } from './ledger-helpers.js';

type Line = Record<string, unknown> & { msg: string };

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('loops failing on a ledger that refuses writes', () => {
  let dir: string;
  let clock: TestClock;
  let ledger: Ledger;
  let db: Db;
  /** Each line with the failures counted (by the test) when it was written. */
  let lines: Array<{ line: Line; failuresSoFar: number }>;
  let failures: number;
  const logger = () =>
    createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push({ line: JSON.parse(line), failuresSoFar: failures }) },
    });
  const logged = (msg: string) => lines.filter((l) => l.line.msg === msg);
  /** Counts in `failures` each refusal the ledger's `method` throws, on its way to the loop that called it. */
  const countRefusals = (method: 'claimDue' | 'transaction') => {
    const original = ledger[method].bind(ledger) as (...args: unknown[]) => unknown;
    const counting = (...args: unknown[]) => {
      try {
        return original(...args);
      } catch (err) {
        failures++;
        throw err;
      }
    };
    Object.assign(ledger, { [method]: counting });
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'loop-failure-logs-'));
    clock = testClock();
    ledger = openLedger(join(dir, 'bridge.db'), {
      now: clock.now,
      onOpen: (opened) => {
        db = opened;
      },
    });
    lines = [];
    failures = 0;
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the delivery loop: once a minute with the repeats, no stack, one line on recovery, and the row delivered', async () => {
    const { row } = ledger.recordEvent(eventInput('full'));
    const api = new FakeOpenCrvs();
    const worker = createDeliveryWorker({
      ledger,
      api,
      settings: { ...TEST_DELIVERY_SETTINGS, pollIntervalMs: 1 },
      workerId: 'w-test',
      now: clock.now,
      random: () => 1,
      logger: logger(),
    });
    // Rounds that reach their claim fail there: counted as they fail (the loop's own count is only on its lines).
    countRefusals('claimDue');
    db.pragma('query_only = 1');
    worker.start();
    try {
      const message = 'delivery loop error; backing off';
      // The loop's own count of rounds failed in a row is on each of its lines.
      const rounds = () => Number(logged(message).at(-1)?.line.failures ?? 0);
      await until('the first line', () => logged(message).length === 1);
      const [first] = logged(message);
      assert.equal(first?.line.failures, 1, 'the first failure is logged at once');
      assert.equal(first?.line.repeats, undefined);
      const err = first?.line.err as { code?: string; stack?: string };
      assert.match(String(err.code), /^SQLITE_READONLY/);
      assert.equal(err.stack, undefined, 'no stack for a storage error');
      // Backing off from 1 ms: several more rounds fail while the clock stands still (waited for by count: in
      // a fixed 150 ms a loaded machine ran only 3).
      await until('more rounds to fail', () => failures >= 6);
      assert.equal(logged(message).length, 1, 'the rounds of one minute: one line');

      clock.advance(60_000);
      await until('the next minute line', () => logged(message).length === 2);
      const second = logged(message)[1];
      assert.ok(rounds() > 5, `${rounds()} rounds`);
      assert.equal(second?.line.repeats, rounds() - 2, 'the rounds since the first line');

      db.pragma('query_only = 0'); // space freed
      await until('the row to be delivered', () => ledger.get(row.id)?.state === 'delivered');
      const recovered = logged('delivery loop running again');
      assert.equal(recovered.length, 1);
      // Every round failed the same way: the recovery line counts them all, those since the last line too.
      assert.equal(recovered[0]?.line.failures, rounds() + Number(recovered[0]?.line.repeats));
      assert.equal(logged(message).length, 2);
    } finally {
      await worker.stop({ drainMs: 0 });
    }
  });

  it('the lease renewal: once a minute with the repeats over simulated minutes, one line on recovery', async () => {
    countRefusals('transaction'); // the ledger's own refusal, counted on its way to the renewal
    const lease = takeProcessLease(ledger, { command: 'serve', logger: logger(), now: clock.now, renewMs: 2 });
    db.pragma('query_only = 1');
    try {
      const message = 'the ledger lease could not be renewed; trying again';
      await until('renewals to fail', () => failures >= 10);
      assert.equal(logged(message).length, 1);
      assert.equal(logged(message)[0]?.failuresSoFar, 1);
      for (let minute = 1; minute <= 3; minute++) {
        const seen = failures;
        await until('some more failures', () => failures >= seen + 5);
        // 59 s later: still within the minute.
        clock.advance(59_000);
        await until('a failure 59 s on', () => failures >= seen + 6);
        assert.equal(logged(message).length, minute);
        clock.advance(1_000);
        await until(`the line of minute ${minute}`, () => logged(message).length === minute + 1);
        const [previous, line] = logged(message).slice(-2);
        assert.equal(line?.line.repeats, Number(line?.failuresSoFar) - Number(previous?.failuresSoFar) - 1);
      }
      const before = failures;
      db.pragma('query_only = 0');
      await until('the recovery line', () => logged('the ledger lease is renewed again').length === 1);
      assert.equal(logged('the ledger lease is renewed again')[0]?.line.failures, before);
      const held = JSON.parse(ledger.getMeta(PROCESS_LEASE_META) ?? '{}');
      assert.equal(held.renewedAt, clock.now(), 'renewed again');
    } finally {
      lease.release();
    }
  });
});

describe('RepeatedFailure', () => {
  it('keeps the stack of an unexpected error, and logs another kind of failure at once', () => {
    const lines: Line[] = [];
    let now = 0;
    const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const failures = new RepeatedFailure(log, 'tick failed', { level: 'error', now: () => now });
    const bug = () => new TypeError("Cannot read properties of undefined (reading 'id')");
    failures.failed(bug());
    failures.failed(bug());
    failures.failed(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
    failures.failed(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
    now += 60_000;
    failures.failed(bug());
    assert.deepEqual(
      lines.map((l) => [(l.err as { type?: string }).type, typeof (l.err as { stack?: string }).stack, l.repeats]),
      [
        ['TypeError', 'string', undefined],
        ['Error', 'undefined', undefined],
        ['TypeError', 'string', 1],
      ],
    );
    failures.recovered('ticks run again');
    failures.recovered('ticks run again');
    assert.deepEqual(
      lines.slice(3).map((l) => [l.msg, l.failures, l.repeats, l.failingMs]),
      [['ticks run again', 5, 1, 60_000]],
    );
  });

  it('logs a second, different bug under the same generic SQLite code at once', () => {
    const lines: Line[] = [];
    let now = 0;
    const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const failures = new RepeatedFailure(log, 'delivery loop error; backing off', { level: 'error', now: () => now });
    // Real SQLite errors: both SQLITE_ERROR, two unrelated bugs (a migration not run, a column renamed).
    const db = new Database(':memory:');
    db.exec('CREATE TABLE attempts (id INTEGER PRIMARY KEY, row_id INTEGER)');
    const sqliteError = (sql: string) => {
      try {
        db.prepare(sql).run();
      } catch (err) {
        return err;
      }
      assert.fail(`${sql} did not fail`);
    };
    try {
      failures.failed(sqliteError('SELECT * FROM ledger_rows'));
      now += 1_000;
      failures.failed(sqliteError('SELECT pending_checks FROM attempts'));
      now += 1_000;
      // The same bug again: the same kind, counted.
      failures.failed(sqliteError('SELECT pending_checks FROM attempts WHERE id = 17'));
      failures.failed(sqliteError('SELECT pending_checks FROM attempts WHERE id = 23'));
      failures.failed(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
      failures.failed(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
      assert.deepEqual(
        lines.map((l) => [(l.err as { code?: string }).code, (l.err as { message?: string }).message, l.repeats]),
        [
          ['SQLITE_ERROR', 'no such table: ledger_rows', undefined],
          ['SQLITE_ERROR', 'no such column: pending_checks', undefined],
          ['SQLITE_FULL', 'database or disk is full', undefined],
        ],
      );
      now += 60_000;
      failures.failed(sqliteError('SELECT pending_checks FROM attempts'));
    } finally {
      db.close();
    }
    assert.equal(lines.at(-1)?.repeats, 2, "counted under its own kind, not the first bug's");
  });

  it("logs a damaged ledger's failures like a full disk's: its code and SQLite's words, no stack, once a minute", () => {
    const lines: Line[] = [];
    const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const failures = new RepeatedFailure(log, 'poll pass failed', { level: 'error', now: () => 0 });
    const dir = mkdtempSync(join(tmpdir(), 'loop-failure-corrupt-'));
    const damagedPath = join(dir, 'bridge.db');
    openLedger(damagedPath).close();
    assert.notEqual(corruptLedger(damagedPath, ['ledger_rows']), 'ok');
    const textPath = join(dir, 'text.db');
    writeFileSync(textPath, 'not an SQLite file, but longer than its 100-byte header. '.repeat(4));
    // Real SQLite errors, as a loop meets them on a ledger with damaged pages, or on a file that is no database.
    const damaged = new Database(damagedPath);
    const text = new Database(textPath);
    const sqliteError = (db: Database.Database, sql: string) => {
      try {
        db.prepare(sql).all();
      } catch (err) {
        return err;
      }
      assert.fail(`${sql} did not fail`);
    };
    try {
      failures.failed(sqliteError(damaged, 'SELECT * FROM ledger_rows'));
      failures.failed(sqliteError(damaged, 'SELECT id FROM ledger_rows WHERE id > 17'));
      failures.failed(sqliteError(text, 'SELECT name FROM sqlite_schema'));
    } finally {
      damaged.close();
      text.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(
      lines.map((l) => {
        const err = l.err as { code?: string; message?: string; stack?: string };
        return [err.code, err.message, typeof err.stack, l.repeats];
      }),
      [
        ['SQLITE_CORRUPT', 'database disk image is malformed', 'undefined', undefined],
        ['SQLITE_NOTADB', 'file is not a database', 'undefined', undefined],
      ],
    );
  });

  it('a loop that fails and succeeds in turn logs each once a minute, and every failure is counted once', () => {
    const lines: Line[] = [];
    let now = 0;
    const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const failures = new RepeatedFailure(log, 'write-back tick failed', { level: 'error', now: () => now });
    const full = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const say = () => lines.map((l) => [now, l.msg, l.failures, l.repeats, l.failingMs]);
    // A tick a second for a minute, every other one failing.
    for (let i = 0; i < 60; i++) {
      now += 1_000;
      if (i % 2 === 0) failures.failed(full());
      else failures.recovered('write-back ticks run again');
    }
    assert.deepEqual(
      lines.map((l) => [l.msg, l.failures, l.repeats, l.failingMs]),
      [
        ['write-back tick failed', undefined, undefined, undefined],
        ['write-back ticks run again', 1, 0, 1_000],
      ],
      JSON.stringify(say()),
    );
    // A minute after its last line the failure is logged again, with the 29 not logged since.
    now += 1_000;
    failures.failed(full());
    assert.equal(lines.length, 3);
    assert.equal(lines[2]?.repeats, 29);
    // That failure line was written: the success after it is said, with the 30 failures since the last one.
    now += 1_000;
    failures.recovered('write-back ticks run again');
    assert.deepEqual(
      [lines[3]?.msg, lines[3]?.failures, lines[3]?.repeats, lines[3]?.failingMs],
      ['write-back ticks run again', 30, 0, 59_000],
    );

    // Flapping that then stops: the failure counted after the last recovery line is said a minute after it.
    now += 1_000;
    failures.failed(full());
    now += 1_000;
    failures.recovered('write-back ticks run again');
    assert.equal(lines.length, 4, 'within the minute: counted');
    now += 30_000;
    failures.recovered('write-back ticks run again');
    assert.equal(lines.length, 4);
    now += 30_000;
    failures.recovered('write-back ticks run again');
    failures.recovered('write-back ticks run again');
    assert.deepEqual(
      lines.slice(4).map((l) => [l.msg, l.failures, l.repeats, l.failingMs]),
      [['write-back ticks run again', 1, 1, 1_000]],
    );

    // A new outage after a long healthy period is logged at once, its counts its own.
    now += 3_600_000;
    failures.failed(full());
    now += 5_000;
    failures.failed(full());
    failures.recovered('write-back ticks run again');
    assert.deepEqual(
      lines.slice(5).map((l) => [l.msg, l.failures, l.repeats, l.failingMs]),
      [
        ['write-back tick failed', undefined, 0, undefined],
        ['write-back ticks run again', 2, 1, 5_000],
      ],
    );
  });

  it('says a success owed since a short outage before a new one, when no success came a minute after it', () => {
    const lines: Line[] = [];
    let now = 0;
    const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    const failures = new RepeatedFailure(log, 'catch-up poll failed; will retry', { level: 'warn', now: () => now });
    const down = () => Object.assign(new Error('GET /Patient: 503'), { name: 'FhirSourceError' });
    failures.failed(down());
    now += 1_000;
    failures.recovered('catch-up polls succeed again');
    now += 1_000;
    failures.failed(down()); // counted: a minute has not passed since its line
    now += 1_000;
    failures.recovered('catch-up polls succeed again'); // not said: no failure line since the last one
    assert.equal(lines.length, 2);
    // No success is reported for two hours (catch-up polls run only when owed), then one fails.
    now += 7_200_000;
    failures.failed(down());
    assert.deepEqual(
      lines.slice(2).map((l) => [l.msg, l.failures, l.repeats, l.failingMs]),
      [
        ['catch-up polls succeed again', 1, 1, 1_000],
        ['catch-up poll failed; will retry', undefined, 0, undefined],
      ],
    );
  });

  it('never logs a personal value a failure carries: the logger redacts it as always', () => {
    const lines: string[] = [];
    const log = createLogger({ destination: { write: (line: string) => lines.push(line) } });
    const failures = new RepeatedFailure(log, 'tick failed', { level: 'warn' });
    failures.failed(Object.assign(new Error('write failed'), { code: 'SQLITE_IOERR_WRITE' }), {
      patient: { birthDate: '2024-01-02', name: 'Jane Roe' },
    });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0] ?? '', /2024-01-02|Jane Roe/);
  });
});
