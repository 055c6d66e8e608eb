import type { Migration } from './types.js';

export const migration002: Migration = {
  version: 2,
  name: 'requeue-generation-and-inbox',
  sql: `
    -- How many times a dead row went back to the queue. Each requeue sends its NOTIFY under a new
    -- transactionId (<base>:notify:r<n>): OpenCRVS answers a repeated transactionId with the event as it
    -- stands, so a NOTIFY the country configuration Rejected could never be retried under the old id.
    -- A new id is safe: if an earlier NOTIFY did get through, the new one is refused with 409 "already
    -- notified", which the worker records as delivered.
    ALTER TABLE ledger_rows ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0;

    -- Subscription notifications, stored before the sender hears 2xx and processed afterwards.
    CREATE TABLE inbox (
      id INTEGER PRIMARY KEY,
      source_id TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      body TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL,
      processed_at INTEGER,
      outcome TEXT,
      last_error TEXT
    );
    CREATE INDEX inbox_due ON inbox (next_attempt_at, id) WHERE processed_at IS NULL;
    CREATE INDEX inbox_processed ON inbox (processed_at) WHERE processed_at IS NOT NULL;
  `,
};
