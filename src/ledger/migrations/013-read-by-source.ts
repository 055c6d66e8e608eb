import type { Migration } from './types.js';

export const migration013: Migration = {
  version: 13,
  name: 'read-by-source',
  sql: `
    -- Another source of the same DHIS2 programme (one server split by org unit between sources) that read
    -- this row's record since (its enrollment moved into that source's org units): its versions are
    -- recorded on this row, never as a row of its own, which would register the record a second time
    -- under that source's transaction ids (sources/pipeline.ts, ownerOf). The last such source; NULL: none.
    ALTER TABLE ledger_rows ADD COLUMN read_by_source TEXT;
  `,
};
