import type { Migration } from './types.js';

export const migration016: Migration = {
  version: 16,
  name: 'slow-record-strikes',
  sql: `
    -- A record whose context reads get no answer in time while the source answers the others is kept dead
    -- after three strikes minutes apart (sources/pipeline.ts, slowRecords). Counted only in memory, the
    -- strikes were lost at every restart, and a \`sync --once\` from cron is a new process every pass: such
    -- a record never reached three and stalled its source for good. One row per record with strikes, keyed
    -- as the pipeline keys them (one mapping of one record of one source). struck_at: the wall clock (ms)
    -- when the last strike counted. Rows go when the record is read in time, and when old or too many
    -- (slow-records.ts).
    CREATE TABLE slow_records (
      source_id TEXT NOT NULL,
      mapping_id TEXT NOT NULL,
      subject_ref TEXT NOT NULL,
      strikes INTEGER NOT NULL,
      struck_at INTEGER NOT NULL,
      PRIMARY KEY (source_id, mapping_id, subject_ref)
    ) WITHOUT ROWID;
    CREATE INDEX slow_records_struck_at ON slow_records (struck_at);
  `,
};
