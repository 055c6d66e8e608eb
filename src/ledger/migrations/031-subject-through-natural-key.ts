import type { Migration } from './types.js';

export const migration031: Migration = {
  version: 31,
  name: 'subject-through-natural-key',
  sql: `
    -- "Did this one arrive?" by the subject (ListFilter.find, Patient/123) now reads the natural key
    -- (source_id, event_type, subject_key), one seek per source and event type the ledger holds (queries.ts,
    -- SUBJECT_ROWS_SQL), so this index of migration 006 served nothing else. Every recorded event wrote an
    -- entry in it: one WAL page more per commit of a single notification's event, in its fsync.
    DROP INDEX IF EXISTS ledger_rows_subject;
  `,
};
