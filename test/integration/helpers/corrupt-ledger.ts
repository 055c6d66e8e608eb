// A ledger with damaged pages, as a failing disk or a file copied over the running ledger leaves it.
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Overwrites the root pages of `names` (tables, indexes) in the closed ledger at `path` with bytes no b-tree
 * page starts with, as a disk or a copy over the running ledger damages it; returns PRAGMA quick_check's
 * answer, which says the file is corrupt.
 */
export function corruptLedger(path: string, names: string[]): string {
  const db = new Database(path);
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  const roots = names.map((name) => {
    const root = db.prepare('SELECT rootpage FROM sqlite_schema WHERE name = ?').pluck().get(name);
    assert.equal(typeof root, 'number', name);
    return root as number;
  });
  db.close();
  const fd = openSync(path, 'r+');
  try {
    for (const root of roots) writeSync(fd, Buffer.alloc(pageSize, 0xee), 0, pageSize, (root - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
  const check = new Database(path, { readonly: true });
  try {
    return String(check.pragma('quick_check', { simple: true }));
  } catch (err) {
    return `quick_check failed: ${(err as { code?: string }).code}`; // damage SQLite meets before it can list it
  } finally {
    check.close();
  }
}
