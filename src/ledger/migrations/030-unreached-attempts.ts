import type { Migration } from './types.js';

export const migration030: Migration = {
  version: 30,
  name: 'unreached-attempts',
  sql: `
    -- How many of the row's attempts in its current budget (\`attempts\`) failed without reaching OpenCRVS
    -- (connection refused or reset, a timeout, a gateway's 502-504: delivery/outage.ts) and were not held.
    -- Those end a row by delivery.maxAgeHours only, so \`attempts\` less this is what counts toward
    -- delivery.maxAttempts. Shown beside \`attempts\`, which alone read "7 attempts" of a limit of 5 on a row
    -- still waiting, and a later answered failure (a 500) was judged on all 7 and died at once. Reset with
    -- \`attempts\` whenever the row is queued again (in-doubt.ts, QUEUED_NOW).
    ALTER TABLE ledger_rows ADD COLUMN unreached_attempts INTEGER NOT NULL DEFAULT 0;
    -- The rows' current budgets from their recorded attempts: the retries after such a failure since the row
    -- was last queued (by attempt id from 025, else by the clock). Never more than \`attempts\`.
    UPDATE ledger_rows SET unreached_attempts = MIN(attempts, (
      SELECT COUNT(*) FROM ledger_attempts a
      WHERE a.row_id = ledger_rows.id AND a.outcome IN ('retry', 'dead')
        AND (a.error_kind IN ('network', 'timeout') OR (a.error_kind = 'server' AND a.error_status IN (502, 503, 504)))
        AND CASE WHEN ledger_rows.queued_after_attempt IS NOT NULL THEN a.id > ledger_rows.queued_after_attempt
          ELSE a.started_at >= ledger_rows.queued_at END))
    WHERE attempts > 0;
  `,
};
