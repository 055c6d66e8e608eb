// How a held queue is told in text: `ledger`'s banner, `sync`'s line and `doctor`'s check say the same
// time, reason and row in the same words, each adding only what its reader should do.
import type { HoldState } from './types.js';

/**
 * "since <ISO time>: <reason> (shown by row #N, …)": the part every report of a hold shares. An operator
 * hold's probe re-tries that row; an outage's probe sends no row (it asks OpenCRVS for a location), so
 * there the row is only the first whose attempt found OpenCRVS out of reach, as the log line names it.
 */
export function heldSince(hold: Pick<HoldState, 'since' | 'reason' | 'rowId' | 'outage'>): string {
  const find = `ledger --find '#${hold.rowId}'`;
  const row =
    hold.rowId === undefined
      ? ''
      : hold.outage
        ? ` (first seen by row #${hold.rowId}: ${find})`
        : ` (shown by row #${hold.rowId}, which the probe tries again: ${find})`;
  return `since ${new Date(hold.since).toISOString()}: ${hold.reason}${row}`;
}
