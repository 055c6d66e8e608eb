// One attempt on one claimed row: send, classify the answer, settle the row, report the outcome.
import {
  countedAttempts,
  type HoldState,
  type Ledger,
  type LedgerError,
  type LedgerPayload,
  type LedgerRow,
  type Settlement,
} from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';
import { NotifyRejected } from '../opencrvs/outcome.js';
import type { OpenCrvsApi } from '../opencrvs/types.js';
import { type ClassifiedFailure, classifyFailure } from './errors.js';
import { findOurNotifies, holdsOtherCopy, type NotifyFinding, standingNotify } from './notify-lookup.js';
import { type OutageWatch, unreached } from './outage.js';
import { pendingCheckDelay } from './pending-check.js';
import { decideRetry, type RetryPolicy } from './retry-policy.js';
import {
  ensureEvent,
  ForeignNotify,
  type SendMode,
  type SendProgress,
  type SendResult,
  sendRow,
  WithdrawnWhileSending,
} from './send.js';
import type { DeliveryOutcome } from './types.js';
import { checkWithdrawal } from './withdraw.js';

/**
 * `remap`: nothing was sent or settled, and the row is still claimed: its payload is not what mapping the
 * record gives now (an unchecked facility OpenCRVS lists otherwise), so the worker has it mapped again.
 */
export type AttemptResult =
  | 'delivered'
  | 'delivered-pending'
  | 'retry'
  | 'dead'
  | 'held'
  | 'lost'
  | 'withdrawn'
  | 'remap';

export interface AttemptDeps {
  ledger: Ledger;
  api: OpenCrvsApi;
  mode: SendMode;
  policy: RetryPolicy;
  workerId: string;
  logger: Logger;
  now: () => number;
  random: () => number;
  emit: (event: DeliveryOutcome) => void;
  /** Called when an operator problem shows: the worker stores the hold and pauses. */
  onHold: (hold: HoldState) => void;
  /** See DeliveryWorkerDeps.refusedEventType. */
  refusedEventType?: (eventType: string) => Promise<string | undefined>;
  /** See DeliveryWorkerDeps.officeOfRecord. */
  officeOfRecord?: (office: string) => Promise<void>;
  /** See DeliveryWorkerDeps.officeClosedOn. */
  officeClosedOn?: (office: string) => Promise<string | undefined>;
  /** See DeliveryWorkerDeps.locationNow. */
  locationNow?: (ref: string, type: 'HEALTH_FACILITY' | 'CRVS_OFFICE') => Promise<string | undefined>;
  /** Whether the worker can have this row's record mapped again at its source (DeliveryWorkerDeps.recheck). */
  remappable?: (row: LedgerRow) => boolean;
  /** When OpenCRVS last refused this office as one it does not know (an `unknown-office` hold), if it did. */
  officeRefusedAt?: (office: string) => number | undefined;
  /** See DeliveryWorkerDeps.routingKeysOf. */
  routingKeysOf?: (office: string) => string[];
  /** Tells an outage of OpenCRVS from a row's failure (outage.ts); absent, each row keeps to its budget. */
  outage?: OutageWatch;
}

export async function runAttempt(deps: AttemptDeps, row: LedgerRow): Promise<AttemptResult> {
  const { ledger, workerId, logger } = deps;
  const startedAt = deps.now();
  const progress: SendProgress = { step: row.eventId ? 'notify' : 'create' };
  let settlement: Settlement;
  let delayMs: number | undefined;
  let reason: string | undefined;
  /** A single call's NOTIFY stored in another client's event: that client (SendResult.intoEventOf). */
  let intoEventOf: string | undefined;
  /** The declaration was refused by a proxy in front of OpenCRVS (its page, not OpenCRVS's answer). */
  let refusedByProxy = false;

  if (row.withdrawnReason) {
    // The source withdrew the record while its delivery was under way: find out what OpenCRVS holds.
    try {
      const found = await checkWithdrawal(deps.api, ledger, row, row.withdrawnReason);
      if (!found.notified) {
        // Taken back meanwhile (and perhaps claimed again): nothing of this attempt is written.
        if (!ledger.holdsLock(row.id, workerId, row.attempts)) return 'lost';
        const withdrawn = ledger.withdrawClaimed(row.id, workerId, found.reason);
        if (withdrawn) {
          logger.info({ rowId: row.id, eventType: row.eventType }, 'withdrawn in the source before it was notified');
          return 'withdrawn';
        }
        // The record came back in the source while OpenCRVS was asked: it goes out as it is now.
        if (ledger.handBack([row.id], workerId) > 0) {
          logger.info(
            { rowId: row.id, eventType: row.eventType },
            'back in the source while its withdrawal was checked',
          );
        }
        return 'lost';
      }
      // Delivered after all (an earlier answer was lost): the withdrawal stays on the row, and `settle`
      // counts it as an update after notification, for someone to act on in OpenCRVS.
      settlement = answered(deps, found);
    } catch (err) {
      ({ settlement, delayMs, reason } = decide(deps, row, classifyFailure(err)));
    }
  } else if (!row.payload) {
    // Payloads are purged only after delivery; a row has none before it when the record was read invalid,
    // or as a copy OpenCRVS rejected, while an attempt sent it (ledger/record.ts invalidInFlight and
    // setAsideForRejected: the stale copy set aside, not resent), or when it is damaged. The next reading of the record records why (or requeues it); a replay re-maps it.
    // The set-aside happens only with no NOTIFY of this generation in doubt, but one of a generation
    // before a requeue may stand (a replay's first attempt, its lookup failed, then handed back): asked first.
    const dead: Decided = {
      settlement: {
        outcome: 'dead',
        error: {
          classification: 'permanent',
          kind: 'internal',
          message:
            'no payload stored for this row: the record was read invalid, or as a copy OpenCRVS rejected, while it was being sent, or the row is damaged; the next reading of the record records why, or replay it',
        },
      },
    };
    ({ settlement, delayMs, reason } = (await earlierNotifyStands(deps, row, undefined, progress, dead)) ?? dead);
  } else {
    // Routed to an office OpenCRVS refused since the record was last mapped: the routing may have been
    // corrected since (the operator's fix, then a restart), and the stored payload still names the old
    // office, which would be refused again and hold the queue for another probe period.
    if (refusedSinceMapped(deps, row, row.payload)) return 'remap';
    const payload = row.payload;
    // Past the checks that can end the row before anything of this attempt is sent.
    let sending = false;
    try {
      await checkOfficeOfRecord(deps, row.payload, progress);
      await checkOfficeOpen(deps, row, row.payload, progress);
      if (!(await uncheckedLocationsStand(deps, row, row.payload, progress))) {
        if (deps.remappable?.(row)) return 'remap';
        throw new FacilityChanged(row.payload);
      }
      sending = true;
      const sent = await sendRow(deps.api, ledger, row, row.payload, deps.mode, progress);
      intoEventOf = sent.intoEventOf;
      const stuck = undecidedAfterFailedConfirmation(deps, row, sent);
      if (stuck) ({ settlement, reason } = stuck);
      else settlement = answered(deps, sent);
    } catch (err) {
      const failure = classifyFailure(err);
      let decided: Decided;
      if (err instanceof WithdrawnWhileSending) {
        // Nothing went wrong with OpenCRVS: due again at once, where the withdrawal is settled.
        decided = {
          settlement: {
            outcome: 'retry',
            error: { classification: 'retryable', kind: 'withdrawn', message: err.message },
            nextRunAt: deps.now(),
          },
          delayMs: 0,
        };
      } else if (err instanceof OfficeClosed) {
        decided = {
          settlement: {
            outcome: 'dead',
            error: { classification: 'permanent', kind: 'office-closed', message: err.message },
          },
          reason: 'office the row is routed to is closed in OpenCRVS',
        };
      } else if (err instanceof ForeignNotify) {
        decided = foreignNotify(row, err);
      } else if (err instanceof FacilityChanged) {
        decided = {
          settlement: {
            outcome: 'dead',
            error: { classification: 'permanent', kind: 'facility-changed', message: err.message },
          },
          reason: 'facility named by the record is listed otherwise by OpenCRVS than it was mapped',
        };
      } else if (failure.alreadyNotified) {
        // 409 "cannot be performed on an event in NOTIFIED state": the event is the one created with
        // our deterministic create transactionId, so it was notified by an earlier attempt of ours whose
        // answer was lost, unless another bridge with our transactionIds notified it (alreadyNotified).
        decided = await alreadyNotified(deps, row, progress, failure);
      } else {
        decided =
          (await refusedForItsType(deps, row, failure)) ??
          refusedForItsOffice(deps.ledger, row, failure, progress) ??
          decide(deps, row, failure);
      }
      if (!sending && decided.settlement.outcome === 'dead')
        decided = (await earlierNotifyStands(deps, row, payload, progress, decided)) ?? decided;
      else if (sending && declarationRefused(decided, progress)) {
        const sent = progress.step;
        // OpenCRVS's own refusal is an answer (outage.ts): whatever the lookup meets, OpenCRVS was reached.
        // Not a proxy's (nginx's 413 page): it refuses by size before OpenCRVS is asked, however down.
        const answered = failure.fromOpenCrvs;
        if (answered) deps.outage?.reached();
        else refusedByProxy = true;
        const found = await earlierNotifyStands(deps, row, payload, progress, decided, { answered });
        // Dead all the same: recorded as the send it was, which stored nothing (settle reads the step).
        if (!found || found.settlement.outcome === 'dead') progress.step = sent;
        decided = found ?? decided;
      } else if (err instanceof NotifyRejected) {
        decided = (await standsBesideRejection(deps, row, payload, err)) ?? decided;
      }
      ({ settlement, delayMs, reason } = decided);
    }
  }

  // Any answer from OpenCRVS, a refusal too, shows it can be reached (outage.ts); a proxy's refusal does not.
  const failed = 'error' in settlement ? settlement.error : undefined;
  const proxyRefusal = refusedByProxy && settlement.outcome === 'dead';
  if (!failed || (failed.kind !== 'internal' && !unreached({ error: failed }) && !proxyRefusal)) deps.outage?.reached();

  // The settled row comes back from the same write: no second read of the row (and its payload).
  const current = ledger.settle({
    id: row.id,
    workerId,
    claimedPayloadHash: row.payloadHash,
    claimedAttempts: row.attempts,
    ...(row.payload ? { claimedPayload: row.payload } : {}),
    step: progress.step,
    startedAt,
    settlement,
  });
  if (!current) {
    // The lock was reset (stale) or handed back at shutdown: a newer attempt owns the row now.
    logger.warn({ rowId: row.id, step: progress.step }, 'attempt finished after losing its lock; result not recorded');
    return 'lost';
  }
  const latencyMs = deps.now() - startedAt;
  const error: LedgerError | undefined = 'error' in settlement ? settlement.error : undefined;
  const fields = {
    rowId: row.id,
    eventType: row.eventType,
    attempt: row.attempts,
    step: progress.step,
    latencyMs,
    ...(error ? { errorKind: error.kind, status: error.status, classification: error.classification } : {}),
  };
  if (intoEventOf && 'trackingId' in settlement) {
    // The record is in OpenCRVS, under that tracking ID; the other bridge's record that event was created
    // for is not, and its row goes dead saying so (foreignNotify). Neither is personal data.
    logger.warn(
      { rowId: row.id, source: current.sourceId, trackingId: settlement.trackingId, createdBy: intoEventOf },
      `NOTIFY stored in an event another OpenCRVS client created: another bridge uses source id "${current.sourceId}"; give each bridge a source id of its own (docs/runbook.md)`,
    );
  }
  switch (settlement.outcome) {
    case 'delivered':
    case 'delivered-pending':
      // The source id and the tracking ID answer "did this birth arrive?" from the logs alone (grep the
      // tracking ID on the certificate); neither is personal data. Not the source reference: some EMRs
      // use the medical record number as the resource id, and the row id leads to it (`ledger --find`).
      logger.info(
        { ...fields, source: current.sourceId, trackingId: current.trackingId ?? undefined, state: settlement.outcome },
        'delivered to OpenCRVS',
      );
      deps.emit({ type: settlement.outcome === 'delivered' ? 'delivered' : 'pending', row: current, latencyMs });
      break;
    case 'retry':
      logger.warn({ ...fields, delayMs, message: error?.message }, 'delivery failed; will retry');
      deps.emit({ type: 'retry', row: current, latencyMs, error, delayMs });
      break;
    case 'dead':
      if (current.state !== 'dead') {
        // Refused for the copy it sent while a newer version replaced it: the ledger queued that one (outbox.ts).
        logger.warn({ ...fields, message: error?.message }, 'refused; a newer version of the record is sent next');
        deps.emit({ type: 'retry', row: current, latencyMs, error, delayMs: 0 });
        break;
      }
      logger.error({ ...fields, reason, message: error?.message }, 'delivery failed permanently; row is dead');
      deps.emit({ type: 'dead', row: current, latencyMs, error, reason: reason ?? 'permanent error' });
      break;
    case 'held': {
      const office = error?.kind === 'unknown-office' ? row.payload?.office : undefined;
      const routingKeys = office ? (deps.routingKeysOf?.(office) ?? []) : [];
      deps.onHold({
        reason: reason ?? 'operator problem',
        since: deps.now(),
        kind: error?.kind ?? 'unknown',
        ...(error?.status !== undefined ? { status: error.status } : {}),
        rowId: row.id,
        ...(error && error.classification === 'retryable' ? { outage: true } : {}),
        ...(office ? { office } : {}),
        ...(routingKeys.length > 0 ? { routingKeys } : {}),
      });
      deps.emit({ type: 'held', row: current, latencyMs, error, reason });
      break;
    }
  }
  return settlement.outcome;
}

/**
 * Whether the row's routed office is one OpenCRVS refused (an `unknown-office` hold) after the row's record
 * was last mapped at its source: it is mapped again before anything is sent (worker.ts, 'remap'), once; a
 * row rechecked since is sent as it is, and a refusal then holds the queue again. Not an office the record
 * named (no routing reaches it), nor a row whose NOTIFY may be in OpenCRVS (its retry resends that copy).
 */
function refusedSinceMapped(deps: AttemptDeps, row: LedgerRow, payload: LedgerPayload): boolean {
  if (payload.officeFromRecord) return false;
  const refusedAt = deps.officeRefusedAt?.(payload.office);
  if (refusedAt === undefined || (row.recheckedAt ?? 0) >= refusedAt) return false;
  return deps.remappable?.(row) === true && !deps.ledger.notifyInDoubt(row.id);
}

/**
 * An office the record named is one OpenCRVS lists as a CRVS_OFFICE, or the row is not sent: OpenCRVS 1.9
 * takes any leaf id (one of another deployment too) and 2.0 any location (a health facility too), so it
 * cannot be left to OpenCRVS to refuse. Refused, the row is dead as when OpenCRVS refuses the office
 * (refusedForItsOffice); unanswered, it is retried. Known offices are looked up once (LocationResolver).
 */
async function checkOfficeOfRecord(deps: AttemptDeps, payload: LedgerPayload, progress: SendProgress): Promise<void> {
  const { officeOfRecord } = deps;
  if (!payload.officeFromRecord || !officeOfRecord) return;
  await lookingUp(progress, () => officeOfRecord(payload.office));
}

/**
 * A lookup before the send, which sends nothing: the attempt's step says 'lookup' while it runs, and still
 * does when it fails, so that failure leaves no NOTIFY in doubt (in-doubt.ts).
 */
async function lookingUp<T>(progress: SendProgress, lookup: () => Promise<T>): Promise<T> {
  const step = progress.step;
  progress.step = 'lookup';
  const answer = await lookup();
  progress.step = step;
  return answer;
}

/**
 * An office OpenCRVS has closed (2.0: its `validUntil` passed; 1.9: deactivated) gets nothing more: OpenCRVS
 * still takes its id, and the record would wait in a queue nobody works. The row is dead, with what to do; the others go
 * on. Not a row whose NOTIFY may already be in OpenCRVS: its retry resends that very copy (in-doubt.ts),
 * which OpenCRVS stored or will store once, at that office either way.
 */
async function checkOfficeOpen(
  deps: AttemptDeps,
  row: LedgerRow,
  payload: LedgerPayload,
  progress: SendProgress,
): Promise<void> {
  const { officeClosedOn } = deps;
  if (!officeClosedOn || deps.ledger.notifyInDoubt(row.id)) return;
  const closed = await lookingUp(progress, () => officeClosedOn(payload.office));
  if (closed) throw new OfficeClosed(payload.office, closed);
}

class OfficeClosed extends Error {
  /** `closed`: how, in words (LocationResolver.officeClosedOn): `closed on <date> (its validUntil)`, `deactivated (…)`. */
  constructor(office: string, closed: string) {
    super(
      `OpenCRVS office ${office} was ${closed}; nothing was sent. Route the record's ` +
        'facility to an open office (routing in the config), restart, then replay the row',
    );
    this.name = 'OfficeClosed';
  }
}

/**
 * A facility the record named, or the routing table's office and facility, which OpenCRVS could not be
 * asked about when the record was mapped (an outage of OpenCRVS does not stop the EMR being read:
 * sources/pipeline.ts records the row all the same, with what OpenCRVS answered last time), is looked up
 * before the row is sent, by whichever process sends it. True when the payload holds what mapping the
 * record now gives (the usual case), so it goes out as recorded; false when it does not (not listed,
 * another type, another id: OpenCRVS set up again meanwhile), and the record must be mapped again first:
 * the stored payload is always what is sent. A lookup that fails throws, and the row is retried (or the
 * queue held for an outage) like a send that failed. Not for a row whose NOTIFY may already be in
 * OpenCRVS: its retry must resend that very copy (in-doubt.ts).
 */
async function uncheckedLocationsStand(
  deps: AttemptDeps,
  row: LedgerRow,
  payload: LedgerPayload,
  progress: SendProgress,
): Promise<boolean> {
  const { facilityUnchecked, officeUnchecked } = payload;
  if (facilityUnchecked === undefined && officeUnchecked === undefined) return true;
  const { locationNow } = deps;
  if (!locationNow || deps.ledger.notifyInDoubt(row.id)) return true;
  // Through lookingUp: a failed lookup is settled as one, not as the NOTIFY of a row with an event id,
  // which would put that NOTIFY in doubt and have the retry send the unchecked copy as recorded.
  if (officeUnchecked !== undefined) {
    const office = await lookingUp(progress, () => locationNow(officeUnchecked, 'CRVS_OFFICE'));
    if (office !== payload.office) return false;
  }
  if (facilityUnchecked === undefined) return true;
  return (await lookingUp(progress, () => locationNow(facilityUnchecked, 'HEALTH_FACILITY'))) === payload.facility;
}

/** A row whose unchecked facility or office OpenCRVS lists otherwise, with no source to map its record again. */
class FacilityChanged extends Error {
  constructor(payload: LedgerPayload) {
    const what = [
      ...(payload.officeUnchecked ? [`office ${payload.officeUnchecked}`] : []),
      ...(payload.facilityUnchecked ? [`facility ${payload.facilityUnchecked}`] : []),
    ].join(' and ');
    super(
      `the record named ${what}, which OpenCRVS could not be asked about when it was mapped and now lists ` +
        'otherwise; nothing was sent. Replay the row to map the record again',
    );
    this.name = 'FacilityChanged';
  }
}

/**
 * A row a check before its send would make dead (an office closed or unknown, a facility listed otherwise),
 * "nothing was sent", or a 400 to its declaration (declarationRefused), or no payload to send, while an
 * earlier attempt may have stored its NOTIFY with the answer lost: one of this generation (a check run all
 * the same), or of one before a requeue (a replay, a corrected record), whose checks see nothing in doubt.
 * OpenCRVS is asked first, as for a withdrawal (notify-lookup.ts): a NOTIFY that stands delivers the row (a
 * newer copy it took is an update after notification), as the lookup before a requeued row's NOTIFY would
 * (send.ts). Undefined when none may stand, or none does; a lookup that fails is retried like one before a send,
 * until the row's budget is spent: it dies then for its own cause, its message saying OpenCRVS may hold it.
 * `answered`: OpenCRVS answered this attempt already (it refused the declaration itself, not a proxy in front
 * of it), so a lookup that does not reach it says nothing of an outage (decide).
 */
async function earlierNotifyStands(
  deps: AttemptDeps,
  row: LedgerRow,
  payload: LedgerPayload | undefined,
  progress: SendProgress,
  dead: Decided,
  options: { answered?: boolean } = {},
): Promise<Decided | undefined> {
  if (!deps.ledger.notifyMayStand(row.id)) return undefined;
  progress.step = 'lookup'; // sends nothing: a failure here leaves no doubt (in-doubt.ts)
  try {
    const found = await findOurNotifies(deps.api, row);
    deps.outage?.reached(); // OpenCRVS answered the lookup, whatever the row's end (outage.ts)
    return settledByStanding(deps, row, payload, found);
  } catch (err) {
    const failure = classifyFailure(err);
    const forThisRow = failure.classification === 'permanent' || (await lookupRefusedForThisRow(deps, row, failure));
    if (!forThisRow) {
      const retried = decide(deps, row, failure, options.answered);
      if (retried.settlement.outcome !== 'dead') return retried;
      // The budget spent asking: dead with the lookup's failure, the row would hide its own cause (a 400
      // to the resend), and, recorded at the NOTIFY, a retryable failure would put that NOTIFY in doubt.
    }
    // Refused for good (the lookup's idempotent create names the office the row was refused for), for
    // this row alone, or asked until the budget ran out: the row dies for the reason found before the
    // lookup, which says it may be in OpenCRVS all the same. The doubt stays recorded: a dismissal says
    // so, and a replay asks again first.
    if (dead.settlement.outcome !== 'dead') return undefined;
    const { error } = dead.settlement;
    // Asked, OpenCRVS answered with another client's event: what to do about it (set previousClientIds, or
    // rename the source) goes along, else the row says only the kind, and every replay's asking meets it again.
    const foreign = anotherClientsEvent(row, failure);
    const detail =
      foreign?.settlement.outcome === 'dead'
        ? `: ${foreign.settlement.error.message}`
        : failure.error.kind === 'unknown-office'
          ? `, office ${row.payload?.office ?? row.office}`
          : '';
    const message = `${error.message} (an earlier attempt may have been taken by OpenCRVS; asking it failed: ${failure.error.kind}${detail})`;
    return {
      ...dead,
      ...(foreign?.reason ? { reason: foreign.reason } : {}),
      settlement: { outcome: 'dead', error: { ...error, message } },
    };
  }
}

/**
 * What a NOTIFY of the row that stands (findOurNotifies) settles it as: delivered, or pending, under that
 * NOTIFY's event (a newer copy the row took is an update after notification); dead when it is left
 * undecided by a failed confirmation. Undefined when none stands.
 */
function settledByStanding(
  deps: AttemptDeps,
  row: LedgerRow,
  payload: LedgerPayload | undefined,
  found: NotifyFinding,
): Decided | undefined {
  const standing = standingNotify(found);
  if (!standing) return undefined;
  // A row with no payload holds nothing OpenCRVS has: the source said otherwise since (an invalid reading).
  const older = payload ? holdsOtherCopy(found, payload) : true;
  const sent: SendResult = { ...standing, standing: true, ...(older ? { olderCopy: true } : {}) };
  return undecidedAfterFailedConfirmation(deps, row, sent) ?? { settlement: answered(deps, sent) };
}

/**
 * The country configuration rejected this attempt's NOTIFY, while another NOTIFY of the row stands in the
 * same event: one of another requeue generation. A ledger restored from a backup (docs/deployment.md)
 * resends generation 0 with no lookup first (a plain retry of its own NOTIFY, send.ts), though since the
 * backup that NOTIFY was rejected and the corrected record's, under `…:notify:r1`, accepted: OpenCRVS
 * answers the resend with the rejection it stored, and the birth stands notified. The answer holds every
 * action of the event, so no call is made to read it. Ours by transactionId (every generation derives from
 * the row's base, which derives from the source record: ledger/transaction-ids.ts), and by maker: another
 * client's NOTIFY (a bridge with the same source id) is not the row's, and leaves it dead for the rejection.
 */
async function standsBesideRejection(
  deps: AttemptDeps,
  row: LedgerRow,
  payload: LedgerPayload,
  rejection: NotifyRejected,
): Promise<Decided | undefined> {
  const { event } = rejection;
  const found = await findOurNotifies(deps.api, { ...row, eventId: event.id }, event);
  const settled = settledByStanding(deps, row, payload, found);
  if (settled?.settlement.outcome === 'delivered' || settled?.settlement.outcome === 'delivered-pending')
    deps.logger.info(
      { rowId: row.id, trackingId: event.trackingId },
      "resent NOTIFY rejected, but another of the row's NOTIFYs stands in OpenCRVS: delivered under that one",
    );
  return settled;
}

/**
 * An operator's error from the lookup of a row that dies all the same (earlierNotifyStands) that concerns
 * that row, not every row: an office OpenCRVS does not know, which the lookup's create names (the row's),
 * or a 403 for its event type (refusedForItsType). Held, the queue waited for good: every probe re-tries
 * that row, which meets the same refusal, while rows to other offices wait. Refused credentials, a scope
 * or the configuration concern every row: they hold the queue (decide).
 */
async function lookupRefusedForThisRow(
  deps: AttemptDeps,
  row: LedgerRow,
  failure: ClassifiedFailure,
): Promise<boolean> {
  if (failure.classification !== 'operator') return false;
  if (failure.error.kind === 'unknown-office') return true;
  return (await refusedForItsType(deps, row, failure)) !== undefined;
}

/**
 * This attempt's declaration (its NOTIFY, or its single call) refused for good with a 4xx made the row
 * dead: a 400, a proxy's 413, a 422, a 409 other than "already notified" (alreadyNotified), a 403 for its
 * event type (not a 404: the event is gone). OpenCRVS, or the proxy before it, refuses before it looks for
 * the transactionId (in-doubt.ts, endsDoubt): the refusal stored nothing, and says nothing of an earlier attempt's NOTIFY stored with its
 * answer lost, which OpenCRVS is asked about (earlierNotifyStands) rather than leave a dead row, "not
 * delivered", for a replay or a registrar to register the birth again. Not a rejection by the country
 * configuration, nor another client's event (no status: answers about what OpenCRVS holds). Not an
 * office OpenCRVS does not know: the lookup's create names that office too (refusedForItsOffice says what to do).
 */
function declarationRefused(decided: Decided, progress: SendProgress): boolean {
  const { settlement } = decided;
  if (settlement.outcome !== 'dead') return false;
  if (progress.step !== 'notify' && progress.step !== 'createAndNotify') return false;
  const { classification, kind, status = 0 } = settlement.error;
  // Not "Event not found" either (the one permanent 404: classify.ts): an event OpenCRVS no longer has holds
  // no NOTIFY (2.0 deletes only an event without one), and the lookup's idempotent create could make a new,
  // empty one the ledger never records.
  // Nor a 409 "already notified": alreadyNotified has made its lookup already, and a second one only
  // repeated its failure and added it to the row's message.
  return (
    classification === 'permanent' &&
    status >= 400 &&
    status < 500 &&
    kind !== 'unknown-office' &&
    kind !== 'not-found' &&
    kind !== 'already-notified'
  );
}

/** Delivered, or pending with the time to ask OpenCRVS whether it was decided (pending-check.ts). */
function answered(
  deps: AttemptDeps,
  sent: { outcome: 'accepted' | 'pending'; eventId: string; trackingId: string; olderCopy?: boolean },
): Settlement {
  const { eventId, trackingId } = sent;
  const older = sent.olderCopy ? { olderCopy: true } : {};
  if (sent.outcome === 'accepted') return { outcome: 'delivered', eventId, trackingId, ...older };
  return { outcome: 'delivered-pending', eventId, trackingId, checkAt: deps.now() + pendingCheckDelay(0), ...older };
}

/**
 * A NOTIFY found only requested after the country configuration's confirmation of it failed (a 500 this
 * generation met): OpenCRVS 2.0 stores the Requested action before it asks, keeps it when the asking
 * fails, and never asks again, so nothing will decide it and registrars do not see the notification.
 * Recorded as pending it would wait out the 30 days of pending checks unseen; dead, it says what to do.
 */
function undecidedAfterFailedConfirmation(deps: AttemptDeps, row: LedgerRow, sent: SendResult): Decided | undefined {
  if (sent.outcome !== 'pending') return undefined;
  // Answered to this generation's NOTIFY: a failed confirmation of this generation. Found standing by the
  // lookup of a requeued row (a replay, a newer version): of any generation, the one it found.
  // The count is exact for this question, though an outage hold un-counts an attempt that may have sent:
  // only a held attempt is un-counted (outbox.ts, settle), and a failed confirmation is an answer, never
  // held (outage.ts unreached, decide): counted, it makes any later attempt of its generation the 2nd.
  if (!sent.standing && row.attempts <= 1) return undefined;
  if (!deps.ledger.confirmationFailedSince(row.id, sent.standing ? 'ever' : 'queued')) return undefined;
  return {
    settlement: {
      outcome: 'dead',
      error: {
        classification: 'permanent',
        kind: 'confirmation-failed',
        message:
          `OpenCRVS stored the NOTIFY of event ${sent.trackingId} as requested, but asking the country ` +
          `configuration to confirm it failed (HTTP 500), and OpenCRVS does not ask again: it stays ` +
          `undecided, unseen by registrars. Once the country configuration's action confirmation works, ` +
          `have it confirm or reject that request, then replay: OpenCRVS is asked first`,
      },
    },
    reason: 'NOTIFY left undecided by a failed country configuration confirmation',
  };
}

interface Decided {
  settlement: Settlement;
  delayMs?: number;
  reason?: string;
}

/**
 * `answered`: OpenCRVS answered an earlier call of this attempt (earlierNotifyStands): a later call that
 * did not reach it is the row's failure, counted to its budget, not a sign of an outage to hold the queue for.
 */
function decide(deps: AttemptDeps, row: LedgerRow, failure: ClassifiedFailure, answered = false): Decided {
  const foreign = anotherClientsEvent(row, failure);
  if (foreign) return foreign;
  const now = deps.now();
  const outOfReach = !answered && failure.classification === 'retryable' && unreached(failure);
  if (outOfReach && deps.outage?.unreached(row.id)) {
    // OpenCRVS answered nothing for a while and several rows could not reach it: the queue holds (the
    // probe sends nothing, worker.ts), and this attempt is not counted.
    const { error } = failure;
    return {
      settlement: { outcome: 'held', error },
      reason: `OpenCRVS out of reach: ${errorText(error)}`,
    };
  }
  const decision = decideRetry(
    {
      attempts: row.attempts,
      counted: countedAttempts(row),
      firstSeenAt: row.queuedAt,
      now,
      error: { classification: failure.classification, retryAfterMs: failure.retryAfterMs, unreached: outOfReach },
    },
    deps.policy,
    deps.random,
  );
  const { error } = failure;
  // Recorded on the row (unreachedAttempts), so that this attempt is not counted toward maxAttempts later.
  const notReached = outOfReach ? { unreached: true } : {};
  switch (decision.action) {
    case 'retry':
      return {
        settlement: { outcome: 'retry', error, nextRunAt: now + decision.delayMs, ...notReached },
        delayMs: decision.delayMs,
      };
    case 'dead':
      return { settlement: { outcome: 'dead', error, ...notReached }, reason: decision.reason };
    case 'hold':
      return {
        settlement: { outcome: 'held', error },
        reason: errorText(error),
      };
  }
}

/**
 * OpenCRVS answered with an event another client created under this row's transactionId
 * (opencrvs/ownership.ts): most likely another bridge with the same source id, whose record ids overlap
 * ours. Recorded delivered, the birth would never reach OpenCRVS; the row is dead instead, saying what to
 * change. A rename gives such rows the new id's transaction ids (ledger/sources.ts), and a replay sends them.
 */
function anotherClientsEvent(row: LedgerRow, failure: ClassifiedFailure): Decided | undefined {
  if (failure.error.kind !== 'foreign-event') return undefined;
  return deadFor(
    failure,
    `transaction id already used by another OpenCRVS client. If that client was this bridge's own before ` +
      `it was replaced, list its id under opencrvs.previousClientIds and replay (renaming would register ` +
      `the birth again). Otherwise another bridge uses source id "${row.sourceId}": set a source id unique ` +
      `among the bridges sending to this OpenCRVS (rename it in sources[] and run \`opencrvs-bridge ledger ` +
      `rename-source ${row.sourceId} <new id>\`), then replay (${failure.error.message})`,
    'transaction id used by another OpenCRVS client',
  );
}

/**
 * A 403 for one event type (a client granted births, not deaths) would hold every type: the births
 * wait for a grant that may never come. Such a row is dead instead, with what to grant, and replayed
 * once granted. A token refused for every type still holds the queue (decide).
 */
async function refusedForItsType(
  deps: AttemptDeps,
  row: LedgerRow,
  failure: ClassifiedFailure,
): Promise<Decided | undefined> {
  if (failure.error.kind !== 'forbidden' || !deps.refusedEventType) return undefined;
  const why = await deps.refusedEventType(row.eventType).catch(() => undefined);
  if (!why) return undefined;
  return deadFor(failure, why, 'event type not granted to this client');
}

/**
 * An office OpenCRVS does not know would hold every row, but only when the routing table chose it (all
 * rows routed there fail alike, and the operator fixes the table). One the record itself named (an
 * OpenCRVS v1 Task's office, passed on as given; the mapping marked the payload so) is that record's
 * problem: it is dead, with what to do, and the queue goes on. Decided from how the row was routed, not
 * from today's routing table.
 *
 * So is a NOTIFY resent to an office OpenCRVS no longer knows (closed, or removed from the country's
 * locations) while the first one is in doubt: the row must resend that very copy (in-doubt.ts), so no
 * routing fix reaches it, and held it would hold the queue for good. Mapped again (a replay, or a newer
 * version of the record), it goes out under the next transactionId generation, after OpenCRVS is asked
 * whether the first NOTIFY was stored (send.ts).
 */
function refusedForItsOffice(
  ledger: Ledger,
  row: LedgerRow,
  failure: ClassifiedFailure,
  progress: SendProgress,
): Decided | undefined {
  const office = row.payload?.office;
  if (failure.error.kind !== 'unknown-office' || !office) return undefined;
  if (row.payload?.officeFromRecord) {
    return deadFor(
      failure,
      `OpenCRVS does not know office ${office}, which the source record named (not routing): route the ` +
        `record's facility under routing.facilities, or correct the record, then replay (${failure.error.message})`,
      'office named by the record is unknown to OpenCRVS',
    );
  }
  if (progress.step !== 'notify' && progress.step !== 'createAndNotify') return undefined;
  if (!ledger.notifyInDoubt(row.id)) return undefined;
  return deadFor(
    failure,
    `OpenCRVS no longer knows office ${office}, to which an earlier NOTIFY of this row went with its answer ` +
      `lost: that copy cannot be sent again. Route the record's facility to an open office (routing), then ` +
      `replay: OpenCRVS is asked first whether the earlier NOTIFY was stored (${failure.error.message})`,
    'office of a NOTIFY in doubt is unknown to OpenCRVS',
  );
}

/**
 * A 409 on the row's NOTIFY: what the event holds decides. The row's own NOTIFY (an earlier attempt whose
 * answer was lost): delivered, or pending. Another client's (a bridge with the same source id, so the same
 * transactionIds, whose single call found the event not yet notified): the row is dead, not recorded
 * delivered under an event that holds another record. Neither to be told (a stand-in without NOTIFYs, an
 * answer without `createdBy`): delivered, as the 409 says. Not to be learnt (the lookup failing till the
 * budget ends): dead with the 409, saying so and to replay; the lookup refused for good (a 400): dead with
 * the 409, saying what the refusal was.
 */
async function alreadyNotified(
  deps: AttemptDeps,
  row: LedgerRow,
  progress: SendProgress,
  conflict: ClassifiedFailure,
): Promise<Decided> {
  const sent = progress.step;
  try {
    const event = await ensureEvent(deps.api, deps.ledger, row, row.payload?.office ?? row.office ?? '', progress);
    progress.step = 'lookup'; // sends nothing: a failure here leaves no doubt (in-doubt.ts)
    const found = await findOurNotifies(deps.api, { ...row, eventId: event.eventId }, event.event);
    const standing = standingNotify(found);
    if (standing) return { settlement: answered(deps, standing) };
    if (found.foreign) return foreignNotify(row, new ForeignNotify(event.trackingId, found.foreign.client));
    return { settlement: { outcome: 'delivered', eventId: event.eventId, trackingId: event.trackingId } };
  } catch (err) {
    // Could not learn the event id or what it holds: the usual policy for that failure (a retry meets the
    // 409 again). OpenCRVS has just answered the resend with its 409, as with any other refusal of it
    // (declarationRefused): a lookup that does not reach it is this row's failure, counted to its budget,
    // not an outage to hold the queue for or to retry until maxAgeHours. A real outage meets the next
    // resend first, which counts as any send's.
    const answeredIt = conflict.fromOpenCrvs;
    if (answeredIt) deps.outage?.reached();
    const decided = decide(deps, row, classifyFailure(err), answeredIt);
    const { settlement } = decided;
    if (settlement.outcome !== 'dead' || settlement.error.kind === 'foreign-event') return decided;
    // Dead with the lookup's error, the row would read "not delivered" for a failed lookup, and say nothing
    // of OpenCRVS's answer that the event holds a NOTIFY, most likely an earlier attempt's.
    progress.step = sent; // recorded as the NOTIFY OpenCRVS answered with the 409
    const event = row.trackingId ? `event ${row.trackingId}` : 'its event';
    const notified =
      `OpenCRVS answered that ${event} was already notified (${errorText(conflict.error)}), most likely by ` +
      `an earlier attempt of this row whose answer was lost`;
    const dead = (message: string, reason: string) => ({
      settlement: { outcome: 'dead' as const, error: { ...conflict.error, message: `${notified}, but ${message}` } },
      reason,
    });
    // Refused for good at once, the lookup is not waiting for OpenCRVS to answer: a replay meets the same
    // refusal until what it names is corrected, so the row says what it was, not to wait and replay.
    if (settlement.error.classification === 'permanent')
      return dead(
        `OpenCRVS refused the lookup to confirm which NOTIFY it holds (${errorText(settlement.error)}). A replay ` +
          'asks again and meets the same refusal until what it names is corrected; once it is, replay the row: ' +
          'the row is delivered if the NOTIFY is its own',
        'already notified in OpenCRVS; the lookup to confirm it was refused',
      );
    return dead(
      `the lookup to confirm which NOTIFY it holds could not be made (${errorText(settlement.error)}). Replay the ` +
        'row once OpenCRVS answers lookups: it asks OpenCRVS first, and the row is delivered if the NOTIFY is its own',
      'already notified in OpenCRVS; the lookup to confirm it could not be made',
    );
  }
}

/**
 * The row's event holds another bridge's record (ForeignNotify): dead, saying what to do. A rename of the
 * source gives the row the new id's transactionIds and forgets that event (ledger/sources.ts), and a replay
 * sends the record as a new event; listed as an earlier client of this bridge, the NOTIFY is found the row's.
 */
function foreignNotify(row: LedgerRow, err: ForeignNotify): Decided {
  return {
    settlement: {
      outcome: 'dead',
      error: {
        classification: 'permanent',
        kind: 'foreign-notify',
        message:
          `OpenCRVS event ${err.trackingId}, created for this record, holds a NOTIFY another OpenCRVS client ` +
          `(${err.client}) made, and none of this row's: this record is not in ` +
          `OpenCRVS, and that event takes no other NOTIFY. If that client was this bridge's own before it was ` +
          `replaced, list its id under opencrvs.previousClientIds and replay. Otherwise another bridge uses ` +
          `source id "${row.sourceId}" and sent its own record into this event: set a source id unique among ` +
          `the bridges sending to this OpenCRVS (rename it in sources[] and run \`opencrvs-bridge ledger ` +
          `rename-source ${row.sourceId} <new id>\`: the row takes the new id's transaction ids and leaves ` +
          `that event), then replay`,
      },
    },
    reason: "row's event notified by another OpenCRVS client",
  };
}

/** A row dead for a failure that is about this row alone: the queue goes on, the message says what to do. */
function deadFor(failure: ClassifiedFailure, message: string, reason: string): Decided {
  return {
    settlement: { outcome: 'dead', error: { ...failure.error, classification: 'permanent', message } },
    reason,
  };
}

/** `kind (HTTP status): message`, as a hold's reason says what stopped the queue. */
function errorText(error: LedgerError): string {
  return `${error.kind}${error.status ? ` (HTTP ${error.status})` : ''}: ${error.message}`;
}
