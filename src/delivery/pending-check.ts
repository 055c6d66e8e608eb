// A NOTIFY answered "Requested" (delivered-pending) is accepted or rejected by the country configuration
// later, and OpenCRVS tells no one: a rejection would leave the ledger saying "delivered" about a birth
// no registrar will see. So the worker asks again, by sending the same call under the same
// transactionId: OpenCRVS answers a replay with the event as it is now, and the decision, whatever its
// own transactionId, points at our Requested action (opencrvs/outcome.ts reads both). A health client
// cannot read events (`record.read`), so the replay is the only question it can ask.
import type { DuePendingCheck, Ledger, LedgerRow, PendingCheckResult } from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';
import type { OpenCrvsApi } from '../opencrvs/types.js';
import { classifyFailure } from './errors.js';
import { createAndNotify, notify } from './send.js';
import type { DeliveryOutcome } from './types.js';

const MINUTE_MS = 60_000;
/** After the pending answer: 5 and 15 minutes, 1 and 3 hours, then every 6 hours until decided. */
export const PENDING_CHECK_DELAYS_MS: readonly number[] = [5, 15, 60, 180, 360].map((m) => m * MINUTE_MS);

/** The wait before the check after `checks` earlier ones. */
export function pendingCheckDelay(checks: number): number {
  const delays = PENDING_CHECK_DELAYS_MS;
  return delays[Math.min(Math.max(0, checks), delays.length - 1)] ?? MINUTE_MS;
}

export interface PendingCheckDeps {
  ledger: Ledger;
  api: OpenCrvsApi;
  workerId: string;
  logger: Logger;
  now: () => number;
  emit: (event: DeliveryOutcome) => void;
  /** Checked between rows: a stopping worker asks no more. */
  stopping: () => boolean;
}

/**
 * Asks about up to `limit` due rows, one at a time (a background chore, never ahead of deliveries). The
 * first that cannot be asked (OpenCRVS unreachable, a call timing out) ends the round: the others would
 * each wait out the same timeout, and `sync --once` waits for the round.
 */
export async function checkPendingRows(deps: PendingCheckDeps, limit: number): Promise<number> {
  let asked = 0;
  for (const due of deps.ledger.duePendingChecks(limit, deps.now())) {
    if (deps.stopping()) break;
    asked++;
    if (!(await checkOne(deps, due))) break;
  }
  return asked;
}

/** False when OpenCRVS could not be asked. */
async function checkOne(deps: PendingCheckDeps, { row, step, checks }: DuePendingCheck): Promise<boolean> {
  const startedAt = deps.now();
  const { result, answered } = await ask(deps, row, step, checks, startedAt);
  const decided = deps.ledger.recordPendingCheck({
    id: row.id,
    notifyTransactionId: row.notifyTransactionId,
    workerId: deps.workerId,
    startedAt,
    step: 'pending-check',
    result,
  });
  if (!decided) return answered;
  const fields = { rowId: row.id, eventType: row.eventType, checks: checks + 1 };
  if (result.outcome === 'dead') {
    deps.logger.error(
      { ...fields, message: result.error.message },
      'the country configuration rejected a notification',
    );
    deps.emit({ type: 'dead', row: decided, error: result.error, reason: 'rejected later', decidedLater: true });
  } else {
    deps.logger.info(fields, 'the country configuration accepted a pending notification');
    deps.emit({ type: 'delivered', row: decided, decidedLater: true });
  }
  return answered;
}

async function ask(
  deps: PendingCheckDeps,
  row: LedgerRow,
  step: string,
  checks: number,
  startedAt: number,
): Promise<{ result: PendingCheckResult; answered: boolean }> {
  const later = { outcome: 'delivered-pending', nextCheckAt: startedAt + pendingCheckDelay(checks + 1) } as const;
  if (!row.payload || !row.eventId) {
    // Purged before this version kept pending payloads: the same call cannot be sent again.
    deps.logger.warn(
      { rowId: row.id },
      'a pending notification cannot be asked about (no payload kept); not asked again',
    );
    return { result: { outcome: 'delivered-pending', nextCheckAt: null }, answered: true };
  }
  try {
    const answer =
      step === 'createAndNotify'
        ? await createAndNotify(deps.api, row, row.payload)
        : await notify(deps.api, row, row.payload, row.eventId);
    return { result: answer.outcome === 'accepted' ? { outcome: 'delivered' } : later, answered: true };
  } catch (err) {
    const failure = classifyFailure(err);
    if (failure.error.kind === 'rejected') {
      const message = `${failure.error.message} (after answering it pending)`;
      return {
        result: { outcome: 'dead', error: { ...failure.error, classification: 'permanent', message } },
        answered: true,
      };
    }
    // An event past NOTIFIED: our NOTIFY was accepted and a registrar acted on it (attempt.ts, B3).
    if (failure.alreadyNotified) return { result: { outcome: 'delivered' }, answered: true };
    // Unreachable, a token problem, an event assigned to a registrar (409): ask again later.
    deps.logger.warn(
      { rowId: row.id, errorKind: failure.error.kind, status: failure.error.status },
      'could not ask OpenCRVS about a pending notification; asking again later',
    );
    return { result: later, answered: false };
  }
}
