import type { Migration } from './types.js';

export const migration004: Migration = {
  version: 4,
  name: 'drop-locked-index',
  sql: `
    -- Every claim inserted into this index and every settle deleted from it: one more page in the WAL
    -- per state change, on the worker's hot path. Its one reader, the stale-lock reset
    -- (state = 'delivering' AND locked_at <= ?), is served as well by ledger_rows_state, whose
    -- 'delivering' entries are only the rows in flight (a few per worker), so it still reads a handful.
    DROP INDEX IF EXISTS ledger_rows_locked;
  `,
};
