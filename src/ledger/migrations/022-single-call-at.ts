import type { Migration } from './types.js';

export const migration022: Migration = {
  version: 22,
  name: 'single-call-at',
  sql: `
    -- When an attempt of the row last began a single call (create and notify at once, delivery.mode
    -- single-call), written just before it. A single call stores no event id until it answers, so a lock
    -- taken back from a worker that died (or missed its drain deadline) mid-call cannot tell from the row
    -- whether its declaration may be in OpenCRVS: it used to infer it from the delivery.mode of the process
    -- taking it back, wrong after a restart with the other mode (outbox.ts, takeBack). NULL until then,
    -- and for rows only ever sent in two steps.
    ALTER TABLE ledger_rows ADD COLUMN single_call_at INTEGER;
  `,
};
