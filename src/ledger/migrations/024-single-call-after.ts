import type { Migration } from './types.js';

export const migration024: Migration = {
  version: 24,
  name: 'single-call-after',
  sql: `
    -- The row's last recorded attempt (its ledger_attempts id, 0 for none) when an attempt began a single
    -- call: a lock taken back with no attempt recorded since is that call's (outbox.ts, takeBack). Attempt
    -- ids only grow, whatever the clock does; single_call_at (022) was compared with the attempts'
    -- finished_at by the wall clock, and a clock stepped back between them took a single call under way
    -- for an earlier one's, and its lock taken back for one that sent nothing. NULL until then, and for rows
    -- only ever sent in two steps; single_call_at still judges a mark made before this migration.
    ALTER TABLE ledger_rows ADD COLUMN single_call_after INTEGER;
  `,
};
