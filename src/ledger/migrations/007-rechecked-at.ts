import type { Migration } from './types.js';

export const migration007: Migration = {
  version: 7,
  name: 'rechecked-at',
  sql: `
    -- When the worker last had the source confirm a waiting row before its first send (see
    -- DeliverySettings.recheckAfterSeconds): a poll cannot see a record deleted or merged while its
    -- notification waited, so a row that waited is evaluated again at the source first. NULL: never.
    ALTER TABLE ledger_rows ADD COLUMN rechecked_at INTEGER;
  `,
};
