import type { Migration } from './types.js';

export const migration012: Migration = {
  version: 12,
  name: 'in-flight-copy',
  sql: `
    -- The copy a worker is sending, kept only when a newer version replaces the payload during the
    -- attempt (rare). If that worker dies after its NOTIFY may have gone out, OpenCRVS may hold this copy
    -- under the row's notify transactionId and will answer every resend with it: the row must go back to
    -- it, and the newer version is an update after notification. NULL otherwise.
    ALTER TABLE ledger_rows ADD COLUMN in_flight_payload TEXT;
  `,
};
