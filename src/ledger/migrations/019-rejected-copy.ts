import type { Migration } from './types.js';

export const migration019: Migration = {
  version: 19,
  name: 'rejected-copy',
  sql: `
    -- What a NOTIFY carried (hash.ts, sentCopyHash), on the attempt OpenCRVS answered it rejected, or
    -- pending (a pending check decides it later, when the row's payload may have been purged). OpenCRVS
    -- decided on a rejected copy: a dead row whose record is read again as it (changed meanwhile, then back)
    -- stays dead, rather than send it once more under the next notify generation (record.ts). An operator's
    -- replay still sends it. NULL on every other attempt, and on attempts recorded before.
    ALTER TABLE ledger_attempts ADD COLUMN copy_hash TEXT;
  `,
};
