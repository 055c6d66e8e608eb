import type { Migration } from './types.js';

export const migration026: Migration = {
  version: 26,
  name: 'updated-after-attempt',
  sql: `
    -- The row's last recorded attempt (its ledger_attempts id, 0 for none) when a version was last counted
    -- as an update after notification; an attempt that counts one as it settles or is taken back marks the
    -- attempt before it. Compared with queued_after_attempt (a rejection forgets a hash counted since the
    -- row was queued) and with the row's last attempt (a settle does not count again what its own attempt's
    -- resend already counted: outbox.ts, in-doubt.ts). Attempt ids only grow, whatever the clock does;
    -- updated_after_notification_at was compared with queued_at and the attempt's startedAt by the wall
    -- clock, and a clock stepped back between them kept a correction unsent behind a rejected copy, or
    -- counted one update twice. NULL until then; updated_after_notification_at still judges a mark made
    -- before this migration.
    ALTER TABLE ledger_rows ADD COLUMN updated_after_attempt INTEGER;
  `,
};
