import type { Migration } from './types.js';

export const migration014: Migration = {
  version: 14,
  name: 'ledger-identity',
  sql: `
    -- A random id given to the ledger when it is created (to an existing one when it is upgraded), and
    -- never written again. A process that reads it afresh from the file at store.path can tell that
    -- another ledger was copied over the one it has open (the same file, so the same inode): /healthz
    -- asks for a restart then (db.ts, watchFileIdentity). A table of its own, not a meta key: the meta
    -- page is rewritten every few seconds (the process lease), and each checkpoint would copy it over
    -- the copied file again, so an id there reads as the running ledger's again within seconds. This
    -- page stays as the copied file has it.
    CREATE TABLE ledger_identity (ledger_id TEXT NOT NULL);
    INSERT INTO ledger_identity (ledger_id) VALUES (lower(hex(randomblob(16))));
  `,
};
