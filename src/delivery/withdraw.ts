// A row the source withdrew (deleted, merged, no longer an event) while its delivery was under way. If
// its OpenCRVS event exists, a NOTIFY may have reached OpenCRVS with its answer lost: cancelling would
// make the ledger say "not sent" of a registration OpenCRVS holds, and sending would notify a withdrawn
// record. So the worker asks OpenCRVS first, without side effects: the create call is idempotent on the
// row's create transactionId and answers with the event, its actions included.
import type { LedgerRow } from '../ledger/index.js';
import { isOpenCrvsError } from '../opencrvs/errors.js';
import { readNotifyOutcome } from '../opencrvs/outcome.js';
import type { OpenCrvsApi } from '../opencrvs/types.js';
import type { SendMode } from './send.js';

export type WithdrawalFinding =
  /** OpenCRVS holds our NOTIFY: the row is delivered after all; the withdrawal is an update after it. */
  | { notified: true; outcome: 'accepted' | 'pending'; eventId: string; trackingId: string }
  /** Not notified: the row is skipped, with the reason (and the event left in OpenCRVS, if any). */
  | { notified: false; reason: string };

export async function checkWithdrawal(
  api: OpenCrvsApi,
  row: LedgerRow,
  reason: string,
  mode: SendMode,
): Promise<WithdrawalFinding> {
  // Without an event id only a single call (create and notify at once) can have notified: a two-step
  // row that never stored its event never sent a NOTIFY. `attempts` counts this claim too.
  const singleCallSent = mode === 'single-call' && row.requeues === 0 && row.attempts > 1;
  if (!row.eventId && !singleCallSent) return { notified: false, reason };
  const event = await api.createEvent({
    type: row.eventType,
    transactionId: row.createTransactionId,
    createdAtLocation: row.payload?.office ?? row.office ?? '',
  });
  // Two-step NOTIFYs carry the row's notify transactionId, a single call the base one; a replayed row sent
  // its earlier NOTIFYs under the earlier generations (`<base>:notify`, `…:notify:r1`…), and one of those
  // may have reached OpenCRVS with its answer lost before the row died.
  const earlier = Array.from({ length: row.requeues }, (_, i) =>
    i === 0 ? `${row.baseTransactionId}:notify` : `${row.baseTransactionId}:notify:r${i}`,
  );
  for (const transactionId of [row.notifyTransactionId, ...earlier, row.baseTransactionId]) {
    try {
      const found = readNotifyOutcome(event, transactionId, 'withdrawal check');
      return { notified: true, outcome: found.outcome, eventId: event.id, trackingId: event.trackingId };
    } catch (err) {
      // No NOTIFY of ours (or one the country configuration rejected): not notified under this id.
      if (!isOpenCrvsError(err)) throw err;
    }
  }
  return {
    notified: false,
    reason: `${reason} (its OpenCRVS event ${event.trackingId} was created and never notified)`,
  };
}
