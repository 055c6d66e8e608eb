// Opens the SQLite file with the durability the ledger promises and brings the schema up to date.
import Database from 'better-sqlite3';
import type { Logger } from '../observability/logger.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

export type Db = Database.Database;

const WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * WAL lets the CLI and health read while the worker writes. `synchronous=FULL` makes every commit
 * durable before it returns: a sender told "received" (or a cursor moved past an event) must survive a
 * power cut, which NORMAL does not promise in WAL mode.
 */
export function openDatabase(path: string, options: { busyTimeoutMs: number; logger: Logger }): Db {
  let db: Db;
  try {
    db = new Database(path);
  } catch (err) {
    throw cannotOpen(path, err);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // The WAL file keeps its largest size unless told otherwise: a burst (a first sync of thousands
    // of records) would leave tens of MB behind for good. Past this, it is cut back when it restarts.
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs))}`);
    db.pragma('foreign_keys = ON');
    migrate(db, MIGRATIONS, options.logger, Date.now());
  } catch (err) {
    db.close();
    // WAL needs to write beside the file even to read: a read-only directory fails here, not above.
    throw /readonly|unable to open|SQLITE_CANTOPEN|SQLITE_READONLY/i.test(String(err)) ? cannotOpen(path, err) : err;
  }
  return db;
}

/** SQLite's own words name neither the file nor the setting: an operator needs both. */
function cannotOpen(path: string, err: unknown): Error {
  const reason = err instanceof Error ? err.message : String(err);
  return new Error(
    `cannot open the ledger ${path} (store.path): ${reason}. The directory must exist and be writable by ` +
      'this user (SQLite writes a -wal and a -shm file beside the ledger, even to read it).',
    { cause: err },
  );
}

export function migrate(db: Db, migrations: readonly Migration[], logger: Logger, now: number): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const applied = new Set(
    db
      .prepare<[], { version: number }>('SELECT version FROM schema_migrations')
      .all()
      .map((r) => r.version),
  );
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...applied].filter((v) => !known.has(v));
  if (unknown.length > 0) {
    // A newer bridge wrote this file; running old code on it could corrupt rows.
    throw new Error(`ledger schema version ${Math.max(...unknown)} is newer than this bridge understands`);
  }
  const insert = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const done: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      insert.run(migration.version, migration.name, now);
    }).immediate();
    logger.info({ version: migration.version, migration: migration.name }, 'ledger migration applied');
    done.push(migration.version);
  }
  return done;
}

/**
 * Runs `write` with `synchronous=NORMAL`: in WAL mode its commit survives a crash of the process
 * (SIGKILL included) and can be lost only to a power cut or an OS crash. For writes whose loss is
 * repaired by the design: the delivery worker's own state changes (losing one only makes the worker
 * repeat a create or notify that OpenCRVS answers idempotently, same transactionIds) and subscription
 * hints of a source the poller reconciles. Writes a sender or a cursor relies on keep FULL.
 */
export function relaxed<T>(db: Db, write: () => T): T {
  // Inside a caller's transaction SQLite refuses to change the level ("Safety level may not be changed
  // inside a transaction"), and the caller's commit decides durability anyway (FULL: the safe side).
  if (db.inTransaction) return write();
  // exec, not db.pragma(): pragma() builds a statement object and reads its result rows, ~4x the cost,
  // and this runs twice around every worker write. A prepared statement cannot be reused instead:
  // SQLite applies this pragma when the statement is compiled, not when it runs.
  db.exec('PRAGMA synchronous = NORMAL');
  try {
    return write();
  } finally {
    db.exec('PRAGMA synchronous = FULL');
  }
}
