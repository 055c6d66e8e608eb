// WAL checkpoints on a worker thread: while it runs the main connection never checkpoints inside a
// commit, the worker does copy the log into the database file, and the main connection takes the job
// back when the worker stops or cannot start. Also: relaxed inbox writes leave FULL in force after them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startCheckpointer } from '../../src/ledger/checkpointer.js';
import { type Db, openDatabase, relaxed } from '../../src/ledger/db.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { createLogger, type Logger, silentLogger } from '../../src/observability/logger.js';
import { CHILD_NODE_FLAGS, childModule } from '../support/child-source.js';

const autocheckpoint = (db: Db) => db.pragma('wal_autocheckpoint', { simple: true });

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('background WAL checkpoints', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'checkpointer-'));
    db = openDatabase(join(dir, 'ledger.db'), { busyTimeoutMs: 5000, logger: silentLogger });
    db.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  });
  afterEach(() => {
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies the log into the database file from the worker; commits on the main thread do not', async () => {
    const checkpointer = startCheckpointer(db, { intervalMs: 20, logger: silentLogger });
    await until('the worker to take over', () => autocheckpoint(db) === 0);
    const before = statSync(join(dir, 'ledger.db')).size;
    const insert = db.prepare('INSERT INTO filler (body) VALUES (?)');
    // ~24 MB in one burst: far past the 1,000 pages at which a commit would otherwise checkpoint, and
    // past the WAL size limit.
    db.transaction(() => {
      for (let i = 0; i < 6000; i++) insert.run('x'.repeat(4000));
    })();
    await until('a checkpoint by the worker', () => checkpointer.completed > 0);
    await until('the database file to grow', () => statSync(join(dir, 'ledger.db')).size > before + 4_000_000);
    // Once everything is copied back, a write restarts the log and cuts the file back (a write that
    // meets the worker mid-checkpoint cannot restart it, so keep writing a little).
    await until('the WAL to be cut back after the burst', () => {
      insert.run('after the burst');
      return statSync(join(dir, 'ledger.db-wal')).size <= 16 * 1024 * 1024;
    });
    checkpointer.stop();
    assert.equal(autocheckpoint(db), 1000, 'the main connection checkpoints again after stop');
  });

  it('runs in a process started with --input-type=module -e (the worker does not take its flags)', () => {
    const checkpointer = childModule('ledger/checkpointer.ts');
    const dbModule = childModule('ledger/db.ts');
    const logger = childModule('observability/logger.ts');
    const script = `
      import { startCheckpointer } from ${JSON.stringify(checkpointer)};
      import { openDatabase } from ${JSON.stringify(dbModule)};
      import { silentLogger, createLogger } from ${JSON.stringify(logger)};
      const db = openDatabase(${JSON.stringify(join(dir, 'child.db'))}, { busyTimeoutMs: 5000, logger: silentLogger });
      const c = startCheckpointer(db, { logger: createLogger({ level: 'warn' }), intervalMs: 20 });
      const deadline = Date.now() + 10000;
      while (c.completed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      console.log('completed', c.completed);
      c.stop();
      db.close();`;
    const r = spawnSync(process.execPath, [...CHILD_NODE_FLAGS, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.doesNotMatch(r.stdout + r.stderr, /background checkpoints stopped/);
    assert.match(r.stdout, /completed [1-9]/);
  });

  it('leaves checkpoints to the main connection when the worker cannot start', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    startCheckpointer(db, { intervalMs: 20, logger, driver: join(dir, 'no-such-driver.js') });
    await until('the failure to be logged', () => lines.some((l) => l.includes('background checkpoints stopped')));
    assert.equal(autocheckpoint(db), 1000);
  });

  it('a relaxed write commits with NORMAL and puts FULL back, even when it throws', () => {
    const FULL = 2;
    const NORMAL = 1;
    let during: unknown;
    relaxed(db, () => {
      during = db.pragma('synchronous', { simple: true });
    });
    assert.equal(during, NORMAL);
    assert.equal(db.pragma('synchronous', { simple: true }), FULL);
    assert.throws(() =>
      relaxed(db, () => {
        throw new Error('boom');
      }),
    );
    assert.equal(db.pragma('synchronous', { simple: true }), FULL);
  });

  it('a relaxed write inside a caller transaction runs at the level of that transaction', () => {
    const FULL = 2;
    const insert = db.prepare('INSERT INTO filler (body) VALUES (?)');
    db.transaction(() => {
      relaxed(db, () => insert.run('inside'));
      assert.equal(db.pragma('synchronous', { simple: true }), FULL);
    })();
    assert.equal(db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM filler').get()?.n, 1);
  });
});

describe('checkpoints that fail', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'checkpointer-fails-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a driver for the checkpointer's worker (`body`: a CommonJS module with better-sqlite3 as `Database`). */
  function driverFile(name: string, body: string): string {
    const driver = join(dir, name);
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    writeFileSync(driver, `const Database = require(${JSON.stringify(sqlite)});\n${body}`);
    return driver;
  }

  /** A ledger in `dir` and a checkpointer on its connection whose worker opens the file through `driver`. */
  function checkpointedLedger(
    driver: string,
    options: { intervalMs: number; logger: Logger; now?: () => number },
    failures: string[],
  ) {
    let db: Db | undefined;
    const ledger = openLedger(join(dir, 'ledger.db'), {
      onOpen: (opened) => {
        db = opened;
      },
    });
    const checkpointer = startCheckpointer(db as Db, { ...options, driver, onFailure: (code) => failures.push(code) });
    return { ledger, checkpointer };
  }

  /** Waits until `failures` holds `count`, writing to the ledger at each look so that a checkpoint has a log to copy back. */
  function failuresReach(what: string, ledger: Ledger, failures: string[], count: number): Promise<void> {
    return until(what, () => {
      ledger.setMeta('k', String(Date.now()));
      return failures.length >= count;
    });
  }

  it('a checkpoint that fails on storage is a ledger write failure (readiness), with SQLite code', async () => {
    // The worker's connection may read the file but not write it: SQLite's own error at each checkpoint.
    const driver = driverFile(
      'read-only-driver.cjs',
      'module.exports = function (path, options) { return new Database(path, { ...options, readonly: true }); };',
    );
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const failures: string[] = [];
    const { ledger, checkpointer } = checkpointedLedger(driver, { intervalMs: 20, logger }, failures);
    try {
      await failuresReach('a failed checkpoint', ledger, failures, 1);
      assert.match(failures[0] ?? '', /^SQLITE_(IOERR|READONLY)/);
      assert.match(
        lines.join(''),
        /"err":\{"code":"SQLITE_(IOERR|READONLY)[A-Z_]*","message":"[^"]+"\},"msg":"checkpoint failed; retrying on the next tick"/,
      );
    } finally {
      checkpointer.stop();
      ledger.close();
    }
  });

  it('a checkpoint failing every tick is logged at once, then once a minute with the repeats, and its recovery once', async () => {
    // Read-only while the marker file exists (SQLite's own error at each checkpoint); once it is gone the
    // worker's connection is opened for writing again, as after an operator fixed the file.
    const marker = join(dir, 'read-only');
    writeFileSync(marker, '');
    const driver = driverFile(
      'switching-driver.cjs',
      `const fs = require('node:fs');
       module.exports = function (path, options) {
         let db = new Database(path, { ...options, readonly: true });
         let readOnly = true;
         return {
           pragma(sql) {
             if (readOnly && !fs.existsSync(${JSON.stringify(marker)})) {
               db.close();
               db = new Database(path, options);
               readOnly = false;
             }
             return db.pragma(sql);
           },
           close: () => db.close(),
         };
       };`,
    );
    const lines: Array<{ line: Record<string, unknown>; failuresSoFar: number }> = [];
    let clock = 1_800_000_000_000;
    const failures: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push({ line: JSON.parse(line), failuresSoFar: failures.length }) },
    });
    const logged = (msg: string) => lines.filter((l) => l.line.msg === msg);
    const { ledger, checkpointer } = checkpointedLedger(driver, { intervalMs: 5, logger, now: () => clock }, failures);
    const message = 'checkpoint failed; retrying on the next tick';
    try {
      await failuresReach('checkpoints to fail', ledger, failures, 10);
      assert.equal(logged(message).length, 1, 'ten failures within the minute: one line');
      const [first] = logged(message);
      assert.equal(first?.failuresSoFar, 0, 'logged at the first failure (before onFailure heard of it)');
      const err = first?.line.err as { code?: string; stack?: string } | undefined;
      assert.match(String(err?.code), /^SQLITE_(IOERR|READONLY)/);
      assert.equal(err?.stack, undefined, 'no stack for a storage error');

      clock += 60_000;
      await until('the line of the next minute', () => logged(message).length === 2);
      const second = logged(message)[1];
      assert.equal(second?.line.repeats, Number(second?.failuresSoFar) - 1, 'the failures between the two lines');

      rmSync(marker);
      const completed = checkpointer.completed;
      await until('a checkpoint to succeed', () => {
        ledger.setMeta('k', String(Date.now()));
        return checkpointer.completed > completed;
      });
      const recovered = logged('checkpoints succeed again');
      assert.equal(recovered.length, 1);
      assert.equal(recovered[0]?.line.failures, failures.length);
      assert.equal(logged(message).length, 2);
    } finally {
      checkpointer.stop();
      ledger.close();
    }
  });

  it('a checkpoint SQLite could not start (busy) between failures is no success: not counted, no recovery line', async () => {
    // A read-only connection's checkpoint now and then answers SQLITE_BUSY (busy 1, log -1) instead of its
    // error: seen under load, where it was logged as `checkpoints succeed again` amid the failures. Here
    // every other tick answers so; the others reach SQLite's own error on the read-only file.
    const driver = driverFile(
      'busy-driver.cjs',
      `module.exports = function (path, options) {
         const db = new Database(path, { ...options, readonly: true });
         let ticks = 0;
         return {
           pragma(sql) {
             if (sql.startsWith('wal_checkpoint') && ticks++ % 2 === 1) return [{ busy: 1, log: -1, checkpointed: -1 }];
             return db.pragma(sql);
           },
           close: () => db.close(),
         };
       };`,
    );
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
    const failures: string[] = [];
    const { ledger, checkpointer } = checkpointedLedger(driver, { intervalMs: 5, logger }, failures);
    try {
      // Five failures: four busy ticks came between them.
      await failuresReach('checkpoints to fail', ledger, failures, 5);
      assert.equal(checkpointer.completed, 0, 'a busy checkpoint completed nothing');
      assert.deepEqual(
        lines.filter((l) => l.includes('checkpoints succeed again')),
        [],
        'no recovery while every checkpoint that ran failed',
      );
    } finally {
      checkpointer.stop();
      ledger.close();
    }
  });

  it('logs as component ledger-checkpointer alone, not also as ledger (a JSON key twice)', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const path = join(dir, 'ledger.db');
    const ledger = openLedger(path, { backgroundCheckpoints: true, logger });
    try {
      // Gone before the worker opens it (it must exist): the worker fails, and says so.
      unlinkSync(path);
      await until('the worker to fail', () => lines.some((l) => l.includes('background checkpoints stopped')));
      const line = lines.find((l) => l.includes('background checkpoints stopped')) ?? '';
      assert.equal(line.match(/"component":/g)?.length, 1, line);
      assert.match(line, /"component":"ledger-checkpointer"/);
    } finally {
      ledger.close();
    }
  });
});
