import type { Migration } from './types.js';

export const migration008: Migration = {
  version: 8,
  name: 'withdrawn-reason',
  sql: `
    -- The source withdrew the record (deleted, merged, no longer an event) while its delivery was under
    -- way: in flight, or with its OpenCRVS event created, when a NOTIFY may already have reached OpenCRVS.
    -- Such a row cannot simply be cancelled; the worker finds out what OpenCRVS holds first (see
    -- src/delivery/withdraw.ts). NULL: not withdrawn.
    ALTER TABLE ledger_rows ADD COLUMN withdrawn_reason TEXT;
  `,
};
