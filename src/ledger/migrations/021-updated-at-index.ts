import type { Migration } from './types.js';

export const migration021: Migration = {
  version: 21,
  name: 'updated-at-index',
  sql: `
    -- list() by time (the admin API's \`since\` and \`until\`): without an index on the row's last update
    -- SQLite walked every id newest first until the page was full, and a bound that few rows meet (the
    -- last day, or rows touched long after they arrived) read the whole table to find them, 0.1 to 0.25 s
    -- at 220,000 rows (a scale review), on the event loop that answers senders. list() uses it only when
    -- it holds few rows in the bound (queries.ts); a wide bound is met by the newest rows anyway.
    -- Migration 001 left it out for its cost on every state change: one more index entry per update,
    -- moved to the index's newest end from near it (a row changes again soon after its last change),
    -- pages that stay in the cache.
    CREATE INDEX IF NOT EXISTS ledger_rows_updated ON ledger_rows (updated_at);
  `,
};
