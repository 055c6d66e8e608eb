import type { Migration } from './types.js';

export const migration029: Migration = {
  version: 29,
  name: 'write-back-note',
  sql: `
    -- What a written job's write left beside the tracking id (another tracking id on the record: a
    -- duplicate registration, or the same person's other event), in a column of its own. It was kept in
    -- last_error, which a done job has no other use for, so a note read as an error wherever that column
    -- was read alone. The notes written so far move here: on a written (or already held) job last_error
    -- never held anything else. The table is read once (one row per delivered row with a write-back).
    ALTER TABLE write_backs ADD COLUMN note TEXT;
    UPDATE write_backs SET note = last_error, last_error = NULL
      WHERE outcome IN ('written', 'already') AND last_error IS NOT NULL;
  `,
};
