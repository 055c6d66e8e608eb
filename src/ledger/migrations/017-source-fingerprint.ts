import type { Migration } from './types.js';

export const migration017: Migration = {
  version: 17,
  name: 'source-fingerprint',
  sql: `
    -- A hash of the source content the mapping read for the row's last recorded version (the subject and
    -- the records of its context, without the stamps a server moves on every save: mapping/fingerprint.ts).
    -- A new bridge version or a mapping change alters the payload hash of records that did not change; a
    -- row an operator dismissed compares this instead, so it is not queued again for that (record.ts).
    -- NULL for rows recorded before: they keep the payload hash's rule until a read records it.
    ALTER TABLE ledger_rows ADD COLUMN source_fingerprint TEXT;
  `,
};
