import type { Migration } from './types.js';

export const migration027: Migration = {
  version: 27,
  name: 'earlier-tracking-ids',
  sql: `
    -- The tracking ids a write-back job had before it restarted for a new one (a JSON array, oldest first,
    -- bounded by WriteBackStore): the row delivered again after OpenCRVS lost the event. The DHIS2 target
    -- never overwrites a value it did not write; one of these is the bridge's own for this very row, which
    -- the new id replaces. NULL for a job that never restarted, and for jobs restarted before this
    -- migration (their earlier id is gone: such a job is abandoned as occupied, as before).
    ALTER TABLE write_backs ADD COLUMN earlier_tracking_ids TEXT;
  `,
};
