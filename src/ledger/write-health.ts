// Whether the ledger's file can be written, as its users found it: /readyz `store` reports a refused write.
//
// A probe cannot tell on its own: with the disk full, one small write still fits in pages the WAL already
// has, while a delivery's or a poll's needs more and fails with SQLITE_FULL. So every ledger call is
// watched, and a storage error from any of them (or from the background checkpoints) is kept.
import type { Db } from './db.js';

/** A storage error a ledger call (or a checkpoint) met. */
export interface WriteFailure {
  /** SQLite's code: SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_READONLY… */
  code: string;
  /** SQLite's words ("database or disk is full"): no row data. */
  message: string;
  /** When it was last seen (ms). */
  at: number;
}

/**
 * A success clears a failure only once it is this old: small writes can succeed between failing larger
 * ones (a disk with a few pages left), and readiness would flap green between a poll's failures.
 */
export const WRITE_FAILURE_HOLD_MS = 60_000;

/** The SQLite error codes that say the file cannot be written (or read) as storage, not a busy lock. */
const STORAGE_CODE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|PERM|CORRUPT|NOTADB)/;

/** The storage error code of `err`, if it is one. */
export function storageErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORAGE_CODE.test(code) ? code : undefined;
}

export interface WriteHealth {
  /** The storage failure not yet cleared by a later write. */
  current(): WriteFailure | undefined;
  /** Keeps `err` when it is a storage error; returns whether it was. */
  noteError(err: unknown): boolean;
  /** Keeps a failure reported by code (the checkpointer's thread sends no error object). */
  fail(code: string, message: string): void;
  /** Wraps `fn` so that what it throws is noted, and a write it commits clears an old enough failure. */
  watch<F extends (...args: never[]) => unknown>(fn: F): F;
}

export function writeHealth(db: Db, now: () => number): WriteHealth {
  let failure: WriteFailure | undefined;
  // total_changes() goes up with every row a statement changes: read only while a failure is kept, to
  // see whether a call since then wrote (it threw otherwise, commit included).
  const totalChanges = db.prepare<[], number>('SELECT total_changes()').pluck();
  let changesSeen = 0;
  const fail = (code: string, message: string) => {
    failure = { code, message, at: now() };
    try {
      changesSeen = totalChanges.get() ?? 0;
    } catch {
      // The connection is closing: nothing to clear any more.
    }
  };
  const noteError = (err: unknown): boolean => {
    const code = storageErrorCode(err);
    if (!code) return false;
    fail(code, err instanceof Error ? err.message : code);
    return true;
  };
  const afterSuccess = () => {
    // Inside a transaction, the commit has yet to succeed: the outermost call decides.
    if (!failure || db.inTransaction || !db.open) return;
    const changes = totalChanges.get() ?? 0;
    if (changes === changesSeen) return; // nothing written by this call
    changesSeen = changes;
    if (now() - failure.at >= WRITE_FAILURE_HOLD_MS) failure = undefined;
  };
  return {
    current: () => failure,
    noteError,
    fail,
    watch<F extends (...args: never[]) => unknown>(fn: F): F {
      return ((...args: never[]) => {
        let result: unknown;
        try {
          result = fn(...args);
        } catch (err) {
          noteError(err);
          throw err;
        }
        afterSuccess();
        return result;
      }) as F;
    },
  };
}

/** `target` with each of its functions watched (the ledger's parts: inbox, sources…). */
export function watched<T extends object>(target: T, health: WriteHealth): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(target)) {
    out[key] = typeof value === 'function' ? health.watch(value.bind(target)) : value;
  }
  return out as T;
}
