import type { Migration } from './types.js';

export const migration009: Migration = {
  version: 9,
  name: 'mapping-warnings',
  sql: `
    -- What the mapping left out of the row's declaration, and why (a code no value map knows, an address
    -- OpenCRVS cannot take, several values where one was sent): the messages of the last mapping, a JSON
    -- array of field id and reason, never the data. NULL: none. Without it, "left out, with a warning"
    -- was visible in a dry run only.
    ALTER TABLE ledger_rows ADD COLUMN mapping_warnings TEXT;
  `,
};
