import type { Migration } from './types.js';

export const migration020: Migration = {
  version: 20,
  name: 'source-order-index',
  sql: `
    -- list() by source, newest first (the admin API's \`source=\`, \`ledger --source\`): the natural key
    -- (source_id, event_type, subject_key) would find the source's rows but sort them all to return the
    -- newest 100, so the source went unindexed and SQLite walked every id newest first until the page was
    -- full: a source with few rows (or none) read the whole table, 0.3 s warm and 5 s cold at 220,000
    -- rows (a scale review), on the event loop that answers senders. In (source_id, id) order it reads
    -- just the rows it returns.
    CREATE INDEX IF NOT EXISTS ledger_rows_source_id ON ledger_rows (source_id, id);
  `,
};
