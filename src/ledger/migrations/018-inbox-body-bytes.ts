import type { Migration } from './types.js';

export const migration018: Migration = {
  version: 18,
  name: 'inbox-body-bytes',
  sql: `
    -- The stored body's size in bytes, so the receiver can bound the waiting notifications by bytes as well
    -- as by count: a backport Bundle naming many resources (or one long-named one) stores close to the whole
    -- request body, and 100,000 of them at the 1 MB body limit are 100 GB. Only waiting rows count; rows
    -- written before this column are counted from their bodies here (processed ones stay 0, they no longer
    -- count). The partial index holds the column for waiting rows only: COUNT and SUM over it read no table
    -- page (the column comes after the body, whose overflow pages a table read would walk).
    ALTER TABLE inbox ADD COLUMN body_bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE inbox SET body_bytes = length(CAST(body AS BLOB)) WHERE processed_at IS NULL;
    CREATE INDEX inbox_waiting_bytes ON inbox (body_bytes) WHERE processed_at IS NULL;
  `,
};
