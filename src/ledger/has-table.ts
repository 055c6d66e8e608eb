// Whether a table exists yet: a new ledger file, or one a migration has not reached, lacks some.
import type { Db } from './db.js';

export function hasTable(db: Db, name: string): boolean {
  return db.prepare<[string]>("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}
