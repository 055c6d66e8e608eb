// How a held queue is told in text: `ledger`'s banner, `sync`'s line and `doctor`'s check say the same
// time, reason and row in the same words, each adding only what its reader should do.
import type { HoldState } from './types.js';

/** "since <ISO time>: <reason> (shown by row #N, …)": the part every report of a hold shares. */
export function heldSince(hold: Pick<HoldState, 'since' | 'reason' | 'rowId'>): string {
  const row =
    hold.rowId === undefined
      ? ''
      : ` (shown by row #${hold.rowId}, which the probe tries again: ledger --find '#${hold.rowId}')`;
  return `since ${new Date(hold.since).toISOString()}: ${hold.reason}${row}`;
}
