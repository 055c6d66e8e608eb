// Opens the SQLite file with the durability the ledger promises and brings the schema up to date.
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../observability/logger.js';
import { hasTable } from './has-table.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';
import { LedgerInUse } from './process-lease.js';

export type Db = Database.Database;

// Statements run often write a bound LIMIT as `LIMIT +?`, never `LIMIT ?`. SQLite (3.53, as better-sqlite3
// builds it) plans with a bare bound LIMIT's value: it marks the parameter as one the plan depends on, and
// any binding of it (better-sqlite3 binds at every run, even the same value) expires the statement, which
// is then compiled again at its next step. Measured on a ledger of 145,000 rows, same process: 4 to 25 µs
// more a run, the statement's whole cost when it finds nothing (the claim of an idle worker: 5.3 against
// 1.5 µs). `+?` is an expression SQLite does not plan with: the same plan, the value still bound. (Not a
// bound value compared with an indexed column: SQLite plans with those only from sqlite_stat4, which only
// ANALYZE writes, and nothing runs it on a ledger.)

/**
 * What a process does around the schema upgrade at open (process-lease.ts, upgradeGuard): `before` runs
 * before any schema change, told what the upgrade would apply (`pending` throws for a ledger newer than
 * this bridge), and refuses by throwing; `after` once the schema is current; `abandon` when opening
 * fails after `before` ran, while the connection is still open.
 */
export interface UpgradeGuard {
  before(db: Db, pending: () => readonly Migration[]): void;
  after(db: Db): void;
  abandon(): void;
}

const WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * WAL lets the CLI and health read while the worker writes. `synchronous=FULL` makes every commit
 * durable before it returns: a sender told "received" (or a cursor moved past an event) must survive a
 * power cut, which NORMAL does not promise in WAL mode.
 */
export function openDatabase(
  path: string,
  options: {
    busyTimeoutMs: number;
    logger: Logger;
    inspectOnly?: boolean;
    exclusive?: boolean;
    guard?: UpgradeGuard;
    onMigrated?: (from: number, to: number) => void;
    onCreated?: (schema: number) => void;
  },
): Db {
  let db: Db;
  refuseStaleWal(path);
  try {
    createPrivately(path);
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
    if (options.exclusive) takeExclusively(db, path);
    if (options.inspectOnly) {
      // Inspecting (`ledger`) only reads, and never migrates: a look with a newer image would upgrade the
      // ledger under the running (older) bridge, which would then refuse to start ("schema … is newer").
      refuseOutdated(db, MIGRATIONS, path);
    } else {
      // SQLite opens a file this user may not write read-only, without a word: every poll, notification
      // and delivery would then fail while /healthz said ok. Writing the header's user_version
      // (unchanged) finds out now.
      db.pragma(`user_version = ${Number(db.pragma('user_version', { simple: true }))}`);
      options.guard?.before(db, () => pendingMigrations(db, MIGRATIONS));
      const from = Math.max(0, ...appliedVersions(db, MIGRATIONS));
      const done = migrate(db, MIGRATIONS, options.logger, Date.now(), options.onCreated);
      options.guard?.after(db);
      if (done.length > 0) options.onMigrated?.(from, Math.max(from, ...done));
    }
  } catch (err) {
    options.guard?.abandon();
    db.close();
    if (err instanceof LedgerInUseError || err instanceof LedgerInUse) throw err;
    // WAL needs to write beside the file even to read: a read-only directory fails here, not above.
    throw STORAGE_ERROR.test(String(err)) ? cannotOpen(path, err) : err;
  }
  return db;
}

/**
 * Creates the ledger file, readable and writable by its owner only, where there is none yet: it keeps
 * notifications' payloads (names, birth dates, identifiers) for days, and SQLite would create it 0644
 * (less the umask). Its -wal and -shm files take the mode of the database file when SQLite creates
 * them, so they are private too. An existing file is left as it is (doctor warns when others may read
 * it: ledgerModeWarning). Not for `:memory:` or a `file:` URI, which name no file here.
 */
export function createPrivately(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * A -wal without its ledger: the ledger deleted or moved while a process had it open, or a restore that
 * copied the -wal alone. SQLite would create an empty ledger and delete that -wal without a word (with it
 * the commits not yet checkpointed), or, while that process runs and holds the -shm, fail with a "disk I/O
 * error" that reads as a full disk. Refused instead, saying what to do.
 */
function refuseStaleWal(path: string): void {
  const problem = staleWalProblem(path);
  if (problem) throw new LedgerOpenError(problem);
}

/**
 * What opening the ledger at `path` refuses when its -wal is there without it (refuseStaleWal), or
 * undefined: `doctor` says the same, rather than "no ledger yet" while serve would stop.
 */
export function staleWalProblem(path: string): string | undefined {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return undefined;
  if (existsSync(path) || !existsSync(`${path}-wal`)) return undefined;
  const base = basename(path);
  return (
    `no ledger at ${path} (store.path), but its ${base}-wal is there: the ledger was deleted or moved while a ` +
    `process had it open, or a restore copied the -wal alone. Restore ${base} from the last backup ` +
    `(docs/deployment.md §8 "Backup and restore"; runbook: "Ledger gone, its -wal left"); to start a new, empty ` +
    `ledger instead, stop every bridge using it and remove ${base}-wal and ${base}-shm.`
  );
}

/** The ledger's files (the database, its -wal and -shm) that its group or others may read or write. */
export function exposedLedgerFiles(path: string): Array<{ file: string; mode: string }> {
  const exposed: Array<{ file: string; mode: string }> = [];
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue; // no -wal or -shm while no connection is open
    }
    if ((mode & 0o077) !== 0) exposed.push({ file, mode: mode.toString(8).padStart(4, '0') });
  }
  return exposed;
}

/** Another process (a serving bridge, a `sync`, a CLI command) has the ledger open. */
export class LedgerInUseError extends Error {
  constructor(readonly path: string) {
    super(
      `the ledger ${path} (store.path) is open in another process (a running serve, a sync, or another ` +
        'command): stop it first, then run this again',
    );
    this.name = 'LedgerInUseError';
  }
}

/** How long to wait for the other connections to go: a command run just after a stop may meet its last write. */
const EXCLUSIVE_WAIT_MS = 2_000;

/**
 * Locks the file for this connection alone until it closes, or throws LedgerInUseError. In WAL mode every
 * open connection holds a shared lock for as long as it is open, busy or idle, so an exclusive lock is
 * granted only when no other process has the ledger open: the one way a command that rewrites what a
 * running bridge keeps in memory (its sources' ids) can know that none is running.
 */
function takeExclusively(db: Db, path: string): void {
  db.pragma(`busy_timeout = ${EXCLUSIVE_WAIT_MS}`);
  db.pragma('locking_mode = EXCLUSIVE');
  try {
    // In EXCLUSIVE locking mode the lock taken here is kept after the commit, for the connection's life.
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new LedgerInUseError(path);
    throw err;
  }
}

const STORAGE_ERROR =
  /readonly|unable to open|SQLITE_CANTOPEN|SQLITE_READONLY|SQLITE_FULL|SQLITE_IOERR|disk I\/O error|database or disk is full|SQLITE_NOTADB|SQLITE_CORRUPT|malformed|not a database|database is locked|SQLITE_BUSY/i;

/**
 * The SQLite error code (better-sqlite3's SqliteError `.code`) when a write failed because the store cannot
 * take it now: the disk is full (SQLITE_FULL), the disk or file system failed (SQLITE_IOERR_*), another
 * connection holds the lock past the busy timeout (SQLITE_BUSY*), or the file cannot be written
 * (SQLITE_READONLY*). None of these says anything about the request; it may succeed once the operator has
 * freed space or the lock is released. Undefined for any other error.
 */
export function storeUnavailable(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  return code === 'SQLITE_FULL' || /^SQLITE_(IOERR|BUSY|READONLY)(_|$)/.test(code) ? code : undefined;
}

/** How often the ledger id is read again from the file (a connection opened and closed: about a millisecond). */
const LEDGER_ID_RECHECK_MS = 5_000;

/** The ledger's id (migration 014), read through the connection that has it open; undefined before 014. */
export function ledgerIdOf(db: Db): string | undefined {
  if (!hasTable(db, 'ledger_identity')) return undefined;
  return db.prepare<[], { ledger_id: string }>('SELECT ledger_id FROM ledger_identity LIMIT 1').get()?.ledger_id;
}

/**
 * The file at `path` as opened, to tell later whether it is still the one: an operator who deletes the
 * ledger, or restores a backup over it, while the bridge runs, leaves the bridge writing to a file no one
 * will read (its history, and the record of what was sent, lost at the next restart), or, copying over
 * it in place, mixes the pages of both. Checked on every call: the device and inode (a file deleted, or
 * moved over the path). At most every `recheckMs`, with `ledgerId`: the ledger id read again from the
 * file through a connection of its own, opened read-only and closed at once (the one the bridge has open
 * would answer from its own cache): another ledger copied over it (`cp`, the same inode) has another id,
 * or none, or no longer reads as a database at all. Once found, the answer stays. A copy of this very
 * ledger (its own backup) carries the same id and is not told apart. An in-memory or temporary database
 * has no file to watch.
 */
export function watchFileIdentity(
  path: string,
  options: { ledgerId?: string; recheckMs?: number; now?: () => number } = {},
): { problem(): string | undefined } {
  if (path === '' || path === ':memory:') return { problem: () => undefined };
  const opened = statSync(path, { throwIfNoEntry: false });
  if (!opened) return { problem: () => undefined };
  const now = options.now ?? (() => Date.now());
  const recheckMs = options.recheckMs ?? LEDGER_ID_RECHECK_MS;
  // Restarting opens what is at the path now; what was sent meanwhile is sent again with the same
  // transaction ids, which OpenCRVS answers without a second record (docs/deployment.md §8).
  const advice = 'restart the bridge (stop it first, to restore a backup: docs/deployment.md §8)';
  let found: string | undefined;
  let readAt = Number.NEGATIVE_INFINITY;
  return {
    problem: () => {
      if (found) return found;
      let current: ReturnType<typeof statSync>;
      try {
        current = statSync(path, { throwIfNoEntry: false });
      } catch (err) {
        // Its folder replaced by a file (ENOTDIR), or no longer readable: the path is not the ledger now.
        return `the ledger file ${path} cannot be reached any more (${(err as NodeJS.ErrnoException).code ?? 'error'}): ${advice}`;
      }
      if (!current) return `the ledger file ${path} was deleted while the bridge ran: ${advice}`;
      if (current.ino !== opened.ino || current.dev !== opened.dev)
        return `the ledger file ${path} was replaced while the bridge ran: ${advice}`;
      if (options.ledgerId === undefined || now() - readAt < recheckMs) return undefined;
      readAt = now();
      const other = otherLedger(path, options.ledgerId);
      if (other) found = `the ledger file ${path} was overwritten while the bridge ran (${other}): ${advice}`;
      return found;
    },
  };
}

/** Why the file at `path`, read afresh, is not the ledger `ledgerId`; undefined when it is, or cannot be told now. */
function otherLedger(path: string, ledgerId: string): string | undefined {
  let db: Db | undefined;
  try {
    // A short busy timeout: this runs on the event loop, and a busy file is asked again at the next check.
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 100 });
    const seen = ledgerIdOf(db);
    if (seen === ledgerId) return undefined;
    return seen === undefined ? 'it holds no ledger id: another file' : `it holds another ledger, id ${seen}`;
  } catch (err) {
    // Pages of another file under this ledger's schema (or a copy still being written): not this ledger.
    const code = String((err as { code?: unknown }).code ?? '');
    if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) return `it no longer reads as this ledger: ${code}`;
    return undefined; // busy, or not readable now: the next check asks again
  } finally {
    db?.close();
  }
}

/** The ledger file could not be opened (cannotOpen): its message names the file, the setting and what to do. */
export class LedgerOpenError extends Error {}

/** SQLite's own words name neither the file nor the setting: an operator needs both, and what to do. */
function cannotOpen(path: string, err: unknown): Error {
  const reason = err instanceof Error ? err.message : String(err);
  const hint = /FULL|IOERR|disk I\/O|disk is full/i.test(reason)
    ? 'Is the disk (or the volume) full? Free space and start again: nothing recorded is lost.'
    : /locked|BUSY/i.test(reason)
      ? 'Another process held its write lock longer than the busy timeout (a long backup or VACUUM, a ' +
        'stuck sqlite3 shell): try again when it is done.'
      : /NOTADB|CORRUPT|malformed|not a database/i.test(reason)
        ? 'The file is not a ledger or is damaged: restore it from a backup (docs/deployment.md), never edit it.'
        : 'The directory and the file must exist and be writable by this user (SQLite writes a -wal and a -shm ' +
          'file beside the ledger, even to read it).';
  return new LedgerOpenError(`cannot open the ledger ${path} (store.path): ${reason}. ${hint}`, { cause: err });
}

/** The versions applied to this file; throws when a newer bridge wrote it (old code could corrupt rows). */
function appliedVersions(db: Db, migrations: readonly Migration[]): Set<number> {
  const rows = hasTable(db, 'schema_migrations')
    ? db.prepare<[], { version: number; name: string }>('SELECT version, name FROM schema_migrations').all()
    : [];
  const applied = new Set(rows.map((r) => r.version));
  // A version is a number and a name: a build whose migration N is another change (two branches that each
  // took the next number) would take the file's N as its own and skip it, leaving its column or table out.
  const names = new Map(migrations.map((m) => [m.version, m.name]));
  const other = rows.find((r) => names.has(r.version) && names.get(r.version) !== r.name);
  if (other) {
    throw new Error(
      `ledger schema version ${other.version} was applied as '${other.name}', which this bridge knows as ` +
        `'${names.get(other.version)}': another build wrote this ledger. Run that build, or restore the ledger ` +
        'backup taken before it (docs/deployment.md §7)',
    );
  }
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...applied].filter((v) => !known.has(v));
  if (unknown.length > 0) {
    // What to do, not only what is wrong: going back to an older bridge means going back to its ledger.
    throw new Error(
      `ledger schema version ${Math.max(...unknown)} is newer than this bridge understands: a newer bridge ` +
        'upgraded it. Run that version, or, to go back to this one, restore the ledger backup taken before the ' +
        'upgrade (docs/deployment.md §7)',
    );
  }
  return applied;
}

/** The migrations this file lacks; throws when a newer bridge wrote it (appliedVersions). */
function pendingMigrations(db: Db, migrations: readonly Migration[]): Migration[] {
  const applied = appliedVersions(db, migrations);
  return migrations.filter((m) => !applied.has(m.version));
}

function refuseOutdated(db: Db, migrations: readonly Migration[], path: string): void {
  const applied = appliedVersions(db, migrations);
  const missing = migrations.filter((m) => !applied.has(m.version));
  if (missing.length === 0) return;
  const latest = Math.max(...migrations.map((m) => m.version));
  throw new Error(
    `the ledger ${path} (store.path) was written by an older bridge (schema ${Math.max(0, ...applied)}, this one ` +
      `reads ${latest}): this command only reads it and will not upgrade it under the bridge that uses it; ` +
      'upgrade that bridge (serve or sync migrates at start), or use the bridge version that wrote it',
  );
}

/**
 * Applies the migrations the file lacks, each in its own transaction (a new ledger's all in one), and says so
 * in one line: a new ledger took every one (a line each was 27 lines on a first `sync`'s standard error); an
 * upgrade names those it applied, which CHANGELOG.md explains. Also said when one fails part-way: what was
 * applied before it stays (a new ledger keeps none). `onCreated`, when given, is told of a new ledger in place
 * of its line: the caller says it in its own words (the bridge warns of a ledger it created), and one message
 * is enough.
 */
export function migrate(
  db: Db,
  migrations: readonly Migration[],
  logger: Logger,
  now: number,
  onCreated?: (schema: number) => void,
): number[] {
  const applied = appliedVersions(db, migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const insert = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const from = Math.max(0, ...applied);
  const done: Migration[] = [];
  let failed: Migration | undefined;
  const apply = (migration: Migration) => {
    failed = migration;
    db.exec(migration.sql);
    insert.run(migration.version, migration.name, now);
    failed = undefined;
    done.push(migration);
  };
  const pending = [...migrations].sort((a, b) => a.version - b.version).filter((m) => !applied.has(m.version));
  try {
    if (applied.size === 0) {
      // A new ledger in one commit: 30-odd commits, each synced to disk (synchronous=FULL), took 0.1-0.3 s on a
      // busy disk, paid by every first start (and by every test that opens a ledger). Nothing to keep of a
      // part of them: a failure leaves no ledger schema at all.
      db.transaction(() => {
        for (const migration of pending) apply(migration);
      }).immediate();
    } else {
      for (const migration of pending) db.transaction(() => apply(migration)).immediate();
    }
  } catch (err) {
    if (applied.size === 0) done.length = 0;
    throw err;
  } finally {
    const to = Math.max(...done.map((m) => m.version));
    if (done.length > 0 && from === 0 && !failed && onCreated) onCreated(to);
    else if (done.length > 0) logger.info({ from, to }, migratedLine(from, done, failed));
  }
  return done.map((m) => m.version);
}

/** What migrate says: `ledger created at schema 32`, or `ledger migrated from schema 24 to 32: 025 …`. */
function migratedLine(from: number, done: readonly Migration[], failed: Migration | undefined): string {
  const to = Math.max(...done.map((m) => m.version));
  const named = (m: Migration) => `${String(m.version).padStart(3, '0')} ${m.name}`;
  if (failed) return `ledger migrated from schema ${from} to ${to}; migration ${named(failed)} failed`;
  if (from === 0) return `ledger created at schema ${to}`;
  return (
    `ledger migrated from schema ${from} to ${to}: ${done.map(named).join(', ')} ` +
    '(CHANGELOG.md says what each means for an upgrade)'
  );
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
