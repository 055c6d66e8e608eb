import type { Migration } from './types.js';

export const migration032: Migration = {
  version: 32,
  name: 'attempt-unreached',
  sql: `
    -- Whether the attempt failed without reaching OpenCRVS and so did not count toward
    -- delivery.maxAttempts (the row's unreached_attempts, 030): settle sets it with that count, so that
    -- \`ledger --find\` and the admin page's attempt list say which of a row's "7 (2 counted)" counted. They
    -- numbered every attempt, 1 to 7, beside a limit of 5, on a row still waiting.
    ALTER TABLE ledger_attempts ADD COLUMN unreached INTEGER NOT NULL DEFAULT 0;
    -- The attempts recorded before, read as 030 read them for the rows' counts, so that the list agrees
    -- with the count it backfilled. The runtime's one other case is not in the history: an attempt whose
    -- lookup did not reach OpenCRVS after OpenCRVS itself refused its NOTIFY counted, and one after a
    -- proxy's refusal, or a replayed row's lookup before its NOTIFY, did not; all three are recorded alike
    -- (step lookup, the lookup's error). Taken as not counted, as 030 took them: counted, a replayed row's
    -- lookups during an outage would make it dead, which 030 is there to end; so the few extra retries
    -- such a refused row gets are bounded by delivery.maxAgeHours. The table is read once.
    UPDATE ledger_attempts SET unreached = 1
      WHERE outcome IN ('retry', 'dead')
        AND (error_kind IN ('network', 'timeout') OR (error_kind = 'server' AND error_status IN (502, 503, 504)));
  `,
};
