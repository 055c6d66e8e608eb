// Whether the ledger's file can be written, as its users found it: /readyz `store` reports a refused write.
//
// A probe cannot tell on its own: with the disk full, one small write still fits in pages the WAL already
// has, while a delivery's or a poll's needs more and fails with SQLITE_FULL. So every ledger call is
// watched, and a storage error from any of them (or from the background checkpoints) is kept. For the
// same reason no write of theirs clears it (a setMeta, a small update, fits while the disk is full): only
// proveWritable's, a write that needs room for a record's worth of new pages, and only while the file
// system says it has room. The write alone proves nothing on a real disk: a WAL commit rewrites the
// -wal file from its start after a checkpoint (up to journal_size_limit), and a long-lived file has free
// pages inside it, so the proof fits where a poll's batch does not.
import { statfsSync } from 'node:fs';
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

/**
 * The scratch value proveWritable writes (and deletes in the same transaction): larger than a record's
 * payload, so it needs new pages, which a full disk refuses, where an update of a small value fits.
 */
export const PROOF_BYTES = 64 * 1024;
const PROOF_KEY = 'health:writeProof';

/**
 * Free space the ledger's file system must have before a kept "full" failure is cleared: twice the WAL's
 * size limit (16 MiB, db.ts), so a checkpoint and a poll's batch both fit; on a volume smaller than ten
 * times that, a tenth of it (a small volume would otherwise stay failing for good).
 */
export const MIN_FREE_BYTES = 32 * 1024 * 1024;

/** The file system holding the ledger: bytes an unprivileged writer may still use, and its size. */
export interface FreeSpace {
  free: number;
  size: number;
}

/**
 * FreeSpace of the file system `path` (the ledger file itself, so a symlink is followed to where SQLite
 * writes it and its -wal) lies on; undefined when the system cannot say.
 */
export function freeSpaceAt(path: string): FreeSpace | undefined {
  try {
    const stats = statfsSync(path);
    return { free: stats.bavail * stats.bsize, size: stats.blocks * stats.bsize };
  } catch {
    return undefined;
  }
}

/** The free space a kept failure needs to clear (MIN_FREE_BYTES, less on a small volume). */
export function freeSpaceNeeded(space: FreeSpace): number {
  return Math.min(MIN_FREE_BYTES, Math.floor(space.size / 10));
}

/** Failures that more free space fixes; a read-only file or an I/O error is cleared by the proof alone. */
const FULL_CODE = /^SQLITE_FULL/;

/**
 * The file holds no sound database (damaged pages, or not SQLite at all): nothing the bridge or a freed disk
 * mends, only a restore from a backup. A proof write may still fit in pages the damage spared, so it does not
 * clear such a failure (proveWritable).
 */
const CORRUPT_CODE = /^SQLITE_(CORRUPT|NOTADB)/;

/** Whether `code` (a WriteFailure's) says the ledger file is corrupt. */
export function isCorruptCode(code: string): boolean {
  return CORRUPT_CODE.test(code);
}

/** The SQLite error codes that say the file cannot be written (or read) as storage, not a busy lock. */
const STORAGE_CODE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|PERM|CORRUPT|NOTADB)/;

/** The storage error code of `err`, if it is one. */
export function storageErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORAGE_CODE.test(code) ? code : undefined;
}

export interface WriteHealth {
  /** The storage failure not yet cleared by a proof (proveWritable). */
  current(): WriteFailure | undefined;
  /** Keeps `err` when it is a storage error; returns whether it was. */
  noteError(err: unknown): boolean;
  /** Keeps a failure reported by code (the checkpointer's thread sends no error object). */
  fail(code: string, message: string): void;
  /** Wraps `fn` so that what it throws is noted. */
  watch<F extends (...args: never[]) => unknown>(fn: F): F;
  /**
   * While a failure is kept: writes and deletes a scratch value of PROOF_BYTES in one transaction, whose
   * commit, a minute or more after the last failure, clears it (never a corrupt file's: isCorruptCode).
   * Throws what that write throws (a storage error is kept). Does nothing otherwise, or inside another transaction (its commit is not this one's).
   */
  proveWritable(): void;
}

export function writeHealth(
  db: Db,
  now: () => number,
  freeSpace: (path: string) => FreeSpace | undefined = freeSpaceAt,
): WriteHealth {
  let failure: WriteFailure | undefined;
  const fail = (code: string, message: string) => {
    failure = { code, message, at: now() };
  };
  const noteError = (err: unknown): boolean => {
    const code = storageErrorCode(err);
    if (!code) return false;
    fail(code, err instanceof Error ? err.message : code);
    return true;
  };
  /** `fn()`, a storage error it throws noted, then thrown on. */
  const noting = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      noteError(err);
      throw err;
    }
  };
  const putProof = db.prepare(
    `INSERT OR REPLACE INTO meta (key, value, updated_at) VALUES (?, zeroblob(${PROOF_BYTES}), ?)`,
  );
  const dropProof = db.prepare('DELETE FROM meta WHERE key = ?');
  const proof = db.transaction((at: number) => {
    putProof.run(PROOF_KEY, at);
    dropProof.run(PROOF_KEY);
  });
  return {
    current: () => failure,
    noteError,
    fail,
    watch<F extends (...args: never[]) => unknown>(fn: F): F {
      return ((...args: never[]) => noting(() => fn(...args))) as F;
    },
    proveWritable: () => {
      const kept = failure;
      if (!kept || db.inTransaction || !db.open) return;
      noting(() => proof.immediate(now()));
      // A failure met meanwhile (another call, a checkpoint) is newer than this proof.
      if (failure !== kept || now() - kept.at < WRITE_FAILURE_HOLD_MS || isCorruptCode(kept.code)) return;
      // An in-memory ledger has no file system to ask; one that cannot say is taken at the proof's word.
      const space = db.memory || !FULL_CODE.test(kept.code) ? undefined : freeSpace(db.name);
      if (space !== undefined && space.free < freeSpaceNeeded(space)) return;
      failure = undefined;
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
