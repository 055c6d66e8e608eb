import type { Migration } from './types.js';

export const migration023: Migration = {
  version: 23,
  name: 'context-reads',
  sql: `
    -- The records a row's last mapping reached other than by a search keyed on its subject (the mother's own
    -- Patient through the maternity encounter, that encounter itself), of the types a poll reads: a change to
    -- one names no subject, so a poll finds the rows to map again here (context-reads.ts, sources/pipeline.ts
    -- subjectsOf). ref: 'Type/id' as read from source_id, the source that read it. A row's set is replaced
    -- with each reading recorded, at most the mapping's read budget of refs (50 by default). Rows recorded
    -- before this migration have none until they are read again.
    CREATE TABLE context_reads (
      row_id INTEGER NOT NULL,
      ref TEXT NOT NULL,
      source_id TEXT NOT NULL,
      PRIMARY KEY (row_id, ref)
    ) WITHOUT ROWID;
    CREATE INDEX context_reads_ref ON context_reads (source_id, ref);
  `,
};
