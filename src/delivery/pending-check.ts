// A NOTIFY answered "Requested" (delivered-pending) is accepted or rejected by the country configuration
// later, and OpenCRVS tells no one: a rejection would leave the ledger saying "delivered" about a birth
// no registrar will see. So the worker asks again, the way a withdrawal is settled: the idempotent create
// answers with the event as it stands, and the decision, whatever its own transactionId, points at our
// Requested action (notify-lookup.ts). No declaration is sent: nothing can be notified twice, and no
// payload has to be kept for it.
import type { DuePendingCheck, Ledger, LedgerRow, PendingCheckResult } from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';
import type { OpenCrvsApi } from '../opencrvs/types.js';
import { classifyFailure } from './errors.js';
import { findOurNotifies } from './notify-lookup.js';
import type { DeliveryOutcome } from './types.js';

const MINUTE_MS = 60_000;
/**
 * The waits: 5 minutes after the pending answer, then 15 minutes, 1 hour and 3 hours after each check,
 * then every 6 hours, until MAX_ASKING_MS after the answer and MIN_CHECKS_TO_EXPIRE checks.
 */
export const PENDING_CHECK_DELAYS_MS: readonly number[] = [5, 15, 60, 180, 360].map((m) => m * MINUTE_MS);
/** A country configuration that has not decided in 30 days will not: the row is dead, for someone to act. */
export const MAX_ASKING_MS = 30 * 24 * 60 * MINUTE_MS;

/** The wait before the check after `checks` earlier ones. */
export function pendingCheckDelay(checks: number): number {
  const delays = PENDING_CHECK_DELAYS_MS;
  return delays[Math.min(Math.max(0, checks), delays.length - 1)] ?? MINUTE_MS;
}

/** How many checks the schedule makes within `span` ms of the pending answer. */
function checksWithin(span: number): number {
  let checks = 0;
  for (let at = pendingCheckDelay(0); at <= span; at += pendingCheckDelay(checks)) checks++;
  return checks;
}

/**
 * The 30 days are also counted in checks, as the slow-record strikes are: the wall clock alone, put
 * forward a month, would call a NOTIFY answered minutes ago undecided for 30 days. Each check waits its
 * delay after the one before, so a clock step skips one wait, not the count. The checks of the first 15
 * days (63 with these delays), so that a NOTIFY really undecided for 30 days qualifies although the bridge
 * was stopped, or delivery held (no checks then), for up to about half of them.
 */
export const MIN_CHECKS_TO_EXPIRE = checksWithin(MAX_ASKING_MS / 2);

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
 * Asks about up to `limit` due rows, one at a time (a background chore, never ahead of deliveries), and
 * none after `until` (epoch ms; `sync --timeout`). The first that OpenCRVS cannot be asked about (it is
 * unreachable, a call times out) ends the round: the others would each wait out the same timeout.
 */
export async function checkPendingRows(deps: PendingCheckDeps, limit: number, until = Infinity): Promise<number> {
  let asked = 0;
  for (const due of deps.ledger.duePendingChecks(limit, deps.now())) {
    if (deps.stopping() || Date.now() >= until) break;
    asked++;
    if (!(await checkOne(deps, due))) break;
  }
  return asked;
}

/** False when OpenCRVS could not be asked. */
async function checkOne(deps: PendingCheckDeps, { row, checks }: DuePendingCheck): Promise<boolean> {
  const startedAt = deps.now();
  const { result, answered } = await ask(deps, row, checks, startedAt);
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
    deps.logger.error({ ...fields, message: result.error.message }, 'a pending notification is dead');
    deps.emit({ type: 'dead', row: decided, error: result.error, reason: result.error.kind, decidedLater: true });
  } else {
    deps.logger.info(fields, 'the country configuration accepted a pending notification');
    deps.emit({ type: 'delivered', row: decided, decidedLater: true });
  }
  return answered;
}

async function ask(
  deps: PendingCheckDeps,
  row: LedgerRow,
  checks: number,
  startedAt: number,
): Promise<{ result: PendingCheckResult; answered: boolean }> {
  const later = { outcome: 'delivered-pending', nextCheckAt: startedAt + pendingCheckDelay(checks + 1) } as const;
  const expired =
    row.deliveredAt !== null && startedAt - row.deliveredAt > MAX_ASKING_MS && checks >= MIN_CHECKS_TO_EXPIRE;
  try {
    const found = await findOurNotifies(deps.api, row);
    if (found.accepted) return { result: { outcome: 'delivered' }, answered: true };
    // Undecided for 30 days, it will not be decided: recorded pending, it would say "delivered" of a
    // notification no registrar sees. Dead, it is in every list of what needs someone.
    if (found.pending && expired) {
      const error = {
        classification: 'permanent' as const,
        kind: 'undecided',
        message:
          'the country configuration has not decided this NOTIFY in 30 days: OpenCRVS holds it requested, ' +
          'unseen by registrars. Have the country configuration confirm or reject it, then replay: OpenCRVS ' +
          'is asked first',
      };
      return { result: { outcome: 'dead', error }, answered: true };
    }
    if (found.pending) return { result: later, answered: true };
    const error = found.rejected
      ? {
          classification: 'permanent' as const,
          kind: 'rejected',
          message: 'the country configuration rejected the NOTIFY action (after answering it pending)',
        }
      : {
          // The event is there (the create answered) without our NOTIFY: OpenCRVS restored from a backup.
          classification: 'permanent' as const,
          kind: 'not-found',
          message:
            'OpenCRVS no longer holds our NOTIFY of this event (restored from a backup?): replay to send it again',
        };
    return { result: { outcome: 'dead', error }, answered: true };
  } catch (err) {
    // Unreachable, a token problem, an office refused: ask again later. Only a failure that would meet the
    // next row too (the network, a timeout, a 5xx) ends the round.
    const failure = classifyFailure(err);
    deps.logger.warn(
      { rowId: row.id, errorKind: failure.error.kind, status: failure.error.status },
      'could not ask OpenCRVS about a pending notification; asking again later',
    );
    return { result: later, answered: failure.classification !== 'retryable' };
  }
}
