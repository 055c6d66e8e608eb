// The first schema. Migrations are append-only: never edit a shipped one, add 002-… instead.
import type { Migration } from './types.js';

export const migration001: Migration = {
  version: 1,
  name: 'initial',
  sql: `
    -- One row per source event; also the outbox job row (state machine, attempts, run-at, lock).
    CREATE TABLE ledger_rows (
      id INTEGER PRIMARY KEY,
      source_id TEXT NOT NULL,
      event_type TEXT NOT NULL,
      subject_key TEXT NOT NULL,
      source_ref TEXT NOT NULL,
      source_version TEXT,
      mapping_id TEXT,
      state TEXT NOT NULL CHECK (state IN
        ('pending', 'delivering', 'failed', 'delivered', 'delivered-pending', 'dead', 'skipped')),
      attempts INTEGER NOT NULL DEFAULT 0,
      next_run_at INTEGER NOT NULL,
      locked_by TEXT,
      locked_at INTEGER,
      base_transaction_id TEXT NOT NULL,
      create_transaction_id TEXT NOT NULL,
      notify_transaction_id TEXT NOT NULL,
      office TEXT,
      facility TEXT,
      payload TEXT,
      payload_hash TEXT,
      event_id TEXT,
      tracking_id TEXT,
      last_error_classification TEXT,
      last_error_kind TEXT,
      last_error_status INTEGER,
      last_error_message TEXT,
      first_seen_at INTEGER NOT NULL,
      queued_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      delivered_at INTEGER,
      updated_after_notification_at INTEGER,
      updates_after_notification INTEGER NOT NULL DEFAULT 0,
      skip_reason TEXT
    );
    CREATE UNIQUE INDEX ledger_rows_natural_key ON ledger_rows (source_id, event_type, subject_key);
    -- Claim: only waiting rows are in this index, ordered as claimed, so a claim reads the first few
    -- entries whatever the size of the queue or of the delivered history.
    CREATE INDEX ledger_rows_due ON ledger_rows (next_run_at, id) WHERE state IN ('pending', 'failed');
    CREATE INDEX ledger_rows_locked ON ledger_rows (locked_at) WHERE state = 'delivering';
    -- counts() by state and event type read this index alone. No index on updated_at: every state
    -- change would write one more page, and list() walks ids newest first with a LIMIT anyway.
    CREATE INDEX ledger_rows_state ON ledger_rows (state, event_type);
    CREATE INDEX ledger_rows_purge ON ledger_rows (delivered_at)
      WHERE payload IS NOT NULL AND state IN ('delivered', 'delivered-pending');

    -- An audit row per attempt (medplum writes one per subscription delivery attempt).
    CREATE TABLE ledger_attempts (
      id INTEGER PRIMARY KEY,
      row_id INTEGER NOT NULL REFERENCES ledger_rows (id),
      attempt INTEGER NOT NULL,
      worker_id TEXT NOT NULL,
      step TEXT NOT NULL,
      outcome TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      finished_at INTEGER NOT NULL,
      error_classification TEXT,
      error_kind TEXT,
      error_status INTEGER,
      error_message TEXT,
      next_run_at INTEGER
    );
    CREATE INDEX ledger_attempts_row ON ledger_attempts (row_id, id);

    -- Source watermarks, written in the same transaction as the rows they cover.
    CREATE TABLE cursors (
      source_id TEXT NOT NULL,
      name TEXT NOT NULL,
      value TEXT NOT NULL,
      updated_at INTEGER NOT NULL,
      PRIMARY KEY (source_id, name)
    );

    -- Small shared state, e.g. the delivery hold (visible to the CLI and health).
    CREATE TABLE meta (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    );
  `,
};
