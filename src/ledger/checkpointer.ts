// WAL checkpoints on a worker thread, so that no commit on the event loop copies the log back into
// the database file.
//
// SQLite checkpoints inside whichever commit pushes the WAL past 1,000 pages: that commit copies ~4 MB
// and fsyncs the database file before it returns. better-sqlite3 is synchronous, so the event loop
// (and every subscription acknowledgement waiting on it) stalls for the copy. A second connection
// on a worker thread runs PASSIVE checkpoints instead: they never block a writer or a reader, and the
// main connection turns its automatic checkpoints off only once the worker is running.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/logger.js';
import { RepeatedFailure } from '../observability/repeated-failure.js';
import type { Db } from './db.js';
import { storageErrorCode } from './write-health.js';

export interface CheckpointerOptions {
  /** How often the worker checkpoints (default 500 ms). */
  intervalMs?: number;
  /** The root logger (the checkpointer binds its own `component`). */
  logger: Logger;
  /** Told of a checkpoint that failed on storage (SQLITE_FULL, SQLITE_IOERR…): the code and SQLite's words. */
  onFailure?: (code: string, message: string) => void;
  /** The SQLite driver module the worker loads (tests point it at one that fails). */
  driver?: string;
  /** The clock failures are logged by (at most once a minute per kind). */
  now?: () => number;
}

export interface Checkpointer {
  /** Checkpoints the worker has completed (for tests and diagnostics). */
  readonly completed: number;
  /** Hands checkpoints back to the main connection and lets the worker close its own. */
  stop(): void;
}

// SQLite's default: what the main connection goes back to if the worker fails.
const AUTOCHECKPOINT_PAGES = 1000;

// An eval'd CommonJS script: no file to locate at run time (src under tsx, dist under node alike).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true, timeout: 5000 });
db.pragma('wal_autocheckpoint = 0');
const timer = setInterval(() => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    // SQLITE_BUSY (busy, and no log read): this checkpoint did not start, another connection held its
    // lock. Neither done nor failed: on a read-only file it came between failures as a success.
    if (result && result.busy && result.log === -1) parentPort.postMessage({ busy: true });
    else parentPort.postMessage({ done: result });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message), code: err && typeof err.code === 'string' ? err.code : undefined });
  }
}, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/** Starts checkpointing `db`'s file on a worker thread; main-thread checkpoints resume if it fails. */
export function startCheckpointer(db: Db, options: CheckpointerOptions): Checkpointer {
  const log = options.logger.child({ component: 'ledger-checkpointer' });
  const driver = options.driver ?? createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path: db.name, driver, intervalMs: options.intervalMs ?? 500 },
    // Not the parent's flags: `--input-type=module` (a process started with `-e`) would make this
    // CommonJS script an ES module, without `require`.
    execArgv: [],
  });
  let completed = 0;
  let failed = false;
  // Every tick fails while the disk is full: the first failure, then once a minute with the count.
  const failures = new RepeatedFailure(log, 'checkpoint failed; retrying on the next tick', {
    level: 'warn',
    now: options.now,
  });
  const fallBack = (why: string) => {
    if (failed) return;
    failed = true;
    if (db.open) db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    log.warn({ why }, 'background checkpoints stopped; the ledger checkpoints on commit again');
  };
  worker.on('message', (message: { done?: unknown; busy?: true; error?: string; code?: string }) => {
    // A checkpoint SQLite could not start (busy) completed nothing and recovered nothing: the next tick tries.
    if (message.busy) return;
    if (message.error) {
      // What the worker could post of the error: its code and SQLite's words (a stack would be the worker's).
      failures.failed({ code: message.code, message: message.error });
      const code = storageErrorCode(message);
      if (code) options.onFailure?.(code, message.error);
    } else {
      completed++;
      failures.recovered('checkpoints succeed again');
    }
  });
  worker.on('error', (err) => fallBack(err.message));
  worker.on('exit', (code) => {
    if (code !== 0) fallBack(`worker exited with ${code}`);
  });
  // The worker never keeps the process alive (after the listeners: adding one refs it again).
  worker.unref();
  // Only now: a worker that never starts leaves the main connection checkpointing as before.
  worker.once('online', () => {
    if (!failed && db.open) db.pragma('wal_autocheckpoint = 0');
  });
  return {
    get completed() {
      return completed;
    },
    stop() {
      if (failed) return;
      failed = true; // an exit from here on is ours
      if (db.open) db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
      worker.postMessage('stop');
    },
  };
}
