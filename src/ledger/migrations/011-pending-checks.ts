import type { Migration } from './types.js';

export const migration011: Migration = {
  version: 11,
  name: 'pending-checks',
  sql: `
    -- A NOTIFY answered "Requested" (delivered-pending) is accepted or rejected by the country
    -- configuration later, and OpenCRVS tells no one: the worker asks again (an idempotent create, which
    -- answers with the event as it is now). pending_check_at: when to ask next (NULL: nothing to ask);
    -- pending_checks: how often it was asked, for the back-off.
    -- Rows that were delivered-pending before this version are asked at once.
    ALTER TABLE ledger_rows ADD COLUMN pending_check_at INTEGER;
    ALTER TABLE ledger_rows ADD COLUMN pending_checks INTEGER NOT NULL DEFAULT 0;
    UPDATE ledger_rows SET pending_check_at = 0 WHERE state = 'delivered-pending';
    CREATE INDEX IF NOT EXISTS ledger_rows_pending_check ON ledger_rows (pending_check_at)
      WHERE state = 'delivered-pending';
  `,
};
