// A row the source withdrew (deleted, merged, no longer an event) while its delivery was under way. If
// its OpenCRVS event exists, a NOTIFY may have reached OpenCRVS with its answer lost: cancelling would
// make the ledger say "not sent" of a registration OpenCRVS holds, and sending would notify a withdrawn
// record. So the worker asks OpenCRVS first, without side effects (notify-lookup.ts).
import type { Ledger, LedgerRow } from '../ledger/index.js';
import type { OpenCrvsApi } from '../opencrvs/types.js';
import { findOurNotifies, standingNotify } from './notify-lookup.js';

export type WithdrawalFinding =
  /** OpenCRVS holds our NOTIFY: the row is delivered after all; the withdrawal is an update after it. */
  | { notified: true; outcome: 'accepted' | 'pending'; eventId: string; trackingId: string }
  /** Not notified: the row is skipped, with the reason (and the event left in OpenCRVS, if any). */
  | { notified: false; reason: string };

export async function checkWithdrawal(
  api: OpenCrvsApi,
  ledger: Pick<Ledger, 'notifyMayStand'>,
  row: LedgerRow,
  reason: string,
): Promise<WithdrawalFinding> {
  // Without an event id only a single call (create and notify at once) can have notified: a two-step
  // row that never stored its event never sent a NOTIFY. Whether one was made is the ledger's attempts'
  // to say, not today's `delivery.mode`, the row's counter (an outage hold un-counts an attempt) or its
  // generation (a requeue does not undo what an earlier single call stored).
  if (!row.eventId && !ledger.notifyMayStand(row.id)) return { notified: false, reason };
  const found = await findOurNotifies(api, row);
  const standing = standingNotify(found);
  if (standing) return { notified: true, ...standing };
  return {
    notified: false,
    reason: `${reason} (its OpenCRVS event ${found.event.trackingId} was created and never notified)`,
  };
}
