import type { Migration } from './types.js';

export const migration025: Migration = {
  version: 25,
  name: 'queued-after-attempt',
  sql: `
    -- The row's last recorded attempt (its ledger_attempts id, 0 for none) when it was last queued: recorded,
    -- replayed, or requeued by a newer version. The attempts after it are the current notify transactionId
    -- generation's (in-doubt.ts). Attempt ids only grow, whatever the clock does; queued_at was compared
    -- with the attempts' started_at by the wall clock, and a clock stepped back past a requeue hid that
    -- generation's attempts: a NOTIFY in doubt replaced by a newer version, or resent unlooked-up. NULL for a
    -- row last queued before this migration, which queued_at still judges.
    ALTER TABLE ledger_rows ADD COLUMN queued_after_attempt INTEGER;
  `,
};
