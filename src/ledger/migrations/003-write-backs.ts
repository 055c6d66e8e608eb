import type { Migration } from './types.js';

export const migration003: Migration = {
  version: 3,
  name: 'write-backs',
  sql: `
    -- Write-back of the OpenCRVS tracking id to the source record, one job per delivered ledger row.
    -- Its own table (not columns on ledger_rows) so a failing write-back can never touch the delivery
    -- state: the row stays delivered whatever happens here. The attempt is counted at claim time and the
    -- claim pushes next_attempt_at forward (a lease), so a process killed mid-write retries after it.
    CREATE TABLE write_backs (
      row_id INTEGER PRIMARY KEY REFERENCES ledger_rows (id),
      source_id TEXT NOT NULL,
      tracking_id TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL,
      last_error TEXT,
      -- written (the source now holds the id), already (it held it before), abandoned (attempts spent
      -- or a permanent error; last_error says why).
      outcome TEXT,
      done_at INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
    CREATE INDEX write_backs_due ON write_backs (next_attempt_at, row_id) WHERE done_at IS NULL;
  `,
};
