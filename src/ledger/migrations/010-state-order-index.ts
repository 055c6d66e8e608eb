import type { Migration } from './types.js';

export const migration010: Migration = {
  version: 10,
  name: 'state-order-index',
  sql: `
    -- list() by state, newest first (the admin page, \`ledger --status\`): with (state, event_type) alone
    -- SQLite sorted every row of the state to return the newest 100, 0.8 s at 200,000 delivered rows and
    -- 3.6 s at a million (a soak review), on the event loop that answers senders. In (state, id) order
    -- it reads just the rows it returns.
    CREATE INDEX IF NOT EXISTS ledger_rows_state_id ON ledger_rows (state, id);
  `,
};
