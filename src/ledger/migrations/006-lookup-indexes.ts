import type { Migration } from './types.js';

export const migration006: Migration = {
  version: 6,
  name: 'lookup-indexes',
  sql: `
    -- "Did this one arrive?": operators look an event up by the EMR record they hold (the subject,
    -- e.g. Patient/123, or the source resource, e.g. Encounter/9) or by the OpenCRVS tracking ID
    -- (ListFilter.find). Without these a lookup reads the whole table. subject_key and source_ref are
    -- written once per row and tracking_id once per delivery, so each costs one index page per write.
    CREATE INDEX IF NOT EXISTS ledger_rows_subject ON ledger_rows (subject_key);
    CREATE INDEX IF NOT EXISTS ledger_rows_source_ref ON ledger_rows (source_ref);
    CREATE INDEX IF NOT EXISTS ledger_rows_tracking ON ledger_rows (tracking_id) WHERE tracking_id IS NOT NULL;
  `,
};
