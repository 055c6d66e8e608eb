import type { Migration } from './types.js';

export const migration005: Migration = {
  version: 5,
  name: 'write-back-counts-index',
  sql: `
    -- The admin summary counts write-back jobs per source and outcome every few seconds while the page
    -- is open; without an index that scans the whole table (about 0.8 s at a million jobs). A job
    -- changes outcome once or twice in its life, so the extra index page per change costs little.
    CREATE INDEX IF NOT EXISTS write_backs_outcome ON write_backs (source_id, outcome);
  `,
};
