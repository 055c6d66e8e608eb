// The delivery worker: claims due rows from the ledger and sends them to OpenCRVS, at most
// `concurrency` at a time, pausing the whole queue while an operator problem lasts.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { holderGone, hostPrefix, processHolderId } from '../ledger/holders.js';
import { countedAttempts, type HoldState, type LedgerRow, PURGE_CHUNK_ROWS } from '../ledger/index.js';
import { storageErrorCode } from '../ledger/write-health.js';
import { silentLogger } from '../observability/logger.js';
import { RepeatedFailure } from '../observability/repeated-failure.js';
import { setBounded } from '../util/bounded-map.js';
import { type AttemptDeps, runAttempt } from './attempt.js';
import { classifyFailure } from './errors.js';
import { holdDisproved, type ProbeAnswer, watchedApi } from './hold-proof.js';
import { outageWatch, unreached } from './outage.js';
import { checkPendingRows, type PendingCheckDeps } from './pending-check.js';
import { decideRetry, retryPolicyFrom } from './retry-policy.js';
import {
  type DeliveryOutcome,
  type DeliveryWorker,
  type DeliveryWorkerDeps,
  RecheckNotReady,
  type SourceRecheck,
} from './types.js';

/** Delivered payloads are purged on this period (their retention is hours; minutes of slack are fine). */
const PURGE_EVERY_MS = 10 * 60_000;
/** Stale locks are looked for at half the lock timeout, and at least this often. */
const STALE_CHECK_MAX_MS = 60_000;
const DEFAULT_DRAIN_MS = 30_000;
/** The longest wait of the claim loop after failures in a row (it doubles from `pollIntervalMs`). */
const MAX_LOOP_BACKOFF_MS = 30_000;
/** Rows answered pending are looked for this often, and asked about this many at a time. */
const PENDING_CHECK_EVERY_MS = 30_000;
const PENDING_CHECK_BATCH = 50;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** An externalId no location has: the outage probe's location query answers an empty list, cheaply. */
const REACH_PROBE_EXTERNAL_ID = 'opencrvs-bridge-reach-probe';
/** Offices OpenCRVS refused that are remembered (the routing table's, so few); the oldest goes first. */
const REFUSED_OFFICES_MAX = 64;
/**
 * A crashed attempt's row (a ledger write refused: the disk full) is due again after this, not after the
 * lock timeout: soon after the disk recovers, not at once in a loop of calls to OpenCRVS while it is full.
 * Any other crash (a bug) takes the retry policy's backoff and budget instead (crashTakeBack).
 */
const CRASH_RETRY_MS = 30_000;
/** Crashed attempts' rows whose lock could not be given back yet (the ledger refusing that write too). */
const CRASHED_MAX = 1_000;

/** How a crashed attempt's row is given back (ledger.takeBackUnfinished). */
interface CrashTakeBack {
  reason: string;
  retryInMs?: number;
  kind?: string;
  dead?: boolean;
}

/** One hold probe's re-try: the holds raised before it, the hold it probes, what OpenCRVS answered its calls. */
interface ProbeRetry {
  before: number;
  held: HoldState;
  answers: ProbeAnswer[];
}

/**
 * Workers of this process, from creation until stopped (their ids): their locks are live, whatever
 * else holds our prefix. From creation: `sync` drives a worker it never starts (runUntilIdle).
 */
const liveWorkers = new Set<string>();

export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const { ledger, api, settings } = deps;
  const now = deps.now ?? Date.now;
  // host:pid:ns<pid namespace>-random. A lock held under this host by a process that is gone is reset
  // instead of waiting out the lock timeout (5 minutes by default); see lockHolderGone for when that is
  // known. The pid namespace is part of the id because a pid means something only inside its namespace.
  const host = hostPrefix();
  const ownPrefix = `${host}${process.pid}:`;
  const workerId = deps.workerId ?? processHolderId();
  liveWorkers.add(workerId);
  const logger = (deps.logger ?? silentLogger).child({ component: 'delivery', workerId });
  const concurrency = Math.max(1, settings.concurrency);
  const lockTimeoutMs = settings.lockTimeoutSeconds * 1000;
  const probeEveryMs = settings.holdProbeSeconds * 1000;

  const inFlight = new Map<number, Promise<unknown>>();
  let hold: HoldState | undefined = ledger.getHold();
  // A hold found at start (set before a restart) is probed at once: the operator may have fixed it.
  let nextProbeAt = now();
  let nextStaleCheckAt = 0;
  let nextPurgeAt = 0;
  /** The purge under way, chunk by chunk (purgeAll); what stop() and runUntilIdle wait for. */
  let purging: Promise<void> | undefined;
  const purgeChunkRows = Math.max(1, Math.floor(deps.purgeChunkRows ?? PURGE_CHUNK_ROWS));
  let running = false;
  let stopping = false;
  /** Set once stop() has handed back what was still in flight. */
  let stopped = false;
  /**
   * Whether this worker ever ran (its loop, or a round of `sync --once`): one that never did, as in a
   * process that only replays or dismisses rows, does not report stopping.
   */
  let ran = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  /**
   * Aborted by stop(): a hold probe's calls, which the loop awaits, are cut off then. Else stop() waited them
   * out (opencrvs.timeoutMs each, against an OpenCRVS that does not answer) before it began to drain.
   */
  let stopCalls = new AbortController();
  /** Counts operator refusals, so a probe can tell whether its own re-try was refused again. */
  let holdsRaised = 0;
  /**
   * Offices OpenCRVS refused as unknown, and when: a row routed to one and mapped before that is mapped again
   * before it is sent (attempt.ts refusedSinceMapped). A hold found at start brings its office: the restart
   * is how a corrected route takes effect, and the probe's re-try must go where the routing says now.
   */
  const refusedOffices = new Map<string, number>();
  const officeRefused = (office: string, at: number) => {
    setBounded(refusedOffices, office, at, REFUSED_OFFICES_MAX);
  };
  // Taken as refused now, not at hold.since: the restart is what applies a corrected route, and a probe of
  // the uncorrected service may have mapped the row again after the hold began (to the same office).
  if (hold?.office) officeRefused(hold.office, now());

  const emit = (event: DeliveryOutcome) => {
    try {
      deps.onOutcome?.(event);
    } catch (err) {
      logger.error({ err }, 'onOutcome hook threw; ignored');
    }
  };

  const takeBackOptions = { singleCall: settings.mode === 'single-call' };
  const outage = outageWatch(settings.outageHoldSeconds * 1000, now);
  const attemptDeps: AttemptDeps = {
    ledger,
    api,
    mode: settings.mode,
    policy: retryPolicyFrom(settings),
    workerId,
    logger,
    now,
    random: deps.random ?? Math.random,
    emit,
    ...(deps.refusedEventType ? { refusedEventType: deps.refusedEventType } : {}),
    ...(deps.officeOfRecord ? { officeOfRecord: deps.officeOfRecord } : {}),
    ...(deps.officeClosedOn ? { officeClosedOn: deps.officeClosedOn } : {}),
    ...(deps.locationNow ? { locationNow: deps.locationNow } : {}),
    remappable: (row) => deps.recheck?.appliesTo(row) === true,
    officeRefusedAt: (office) => refusedOffices.get(office),
    ...(deps.routingKeysOf ? { routingKeysOf: deps.routingKeysOf } : {}),
    outage,
    onHold: (next) => {
      holdsRaised++;
      if (next.office) officeRefused(next.office, now());
      // Logged when the hold starts, or turns into an outage (a credentials hold whose probe then found
      // OpenCRVS out of reach): the banner names the row that log line names (ledger/hold-text.ts).
      const first = !hold || (next.outage === true && hold.outage !== true);
      // Keep the first `since`: the hold started then, whatever later attempts found. An outage is one
      // hold: the attempts still in flight when it was seen fail the same way, and taking theirs would
      // name another row than the one the log line (written once) names.
      const sameOutage = hold?.outage === true && next.outage === true;
      hold = hold ? (sameOutage ? hold : { ...next, since: hold.since }) : next;
      ledger.setHold(hold);
      nextProbeAt = now() + probeEveryMs;
      const fields = { kind: next.kind, status: next.status, reason: next.reason, rowId: next.rowId };
      // An outage is logged once, not for every attempt still in flight when it was seen.
      if (!next.outage) logger.error(fields, 'delivery held for an operator');
      else if (first) logger.error(fields, 'delivery held: OpenCRVS out of reach; probing until it answers');
    },
  };

  const pendingCheckDeps: PendingCheckDeps = {
    ledger,
    api,
    workerId,
    logger,
    now,
    emit,
    stopping: () => stopping || hold !== undefined,
  };
  let nextPendingCheckAt = 0;
  let pendingChecks: Promise<unknown> | undefined;
  /** One round of pending checks at a time, beside the deliveries; the round is what `stop` waits for. */
  const checkPending = (until?: number): Promise<unknown> => {
    if (pendingChecks || hold || stopping || now() < nextPendingCheckAt) return pendingChecks ?? Promise.resolve();
    nextPendingCheckAt = now() + PENDING_CHECK_EVERY_MS;
    pendingChecks = checkPendingRows(pendingCheckDeps, PENDING_CHECK_BATCH, until)
      .catch((err) => {
        // After stop() the ledger may be closed under a check that outlived the drain: expected then.
        if (stopped) logger.debug({ err }, 'a pending notification check ended after stop');
        else logger.error({ err }, 'pending notification check failed; trying again later');
      })
      .finally(() => {
        pendingChecks = undefined;
      });
    return pendingChecks;
  };

  const release = (why: string) => {
    if (!hold) return;
    const since = hold.since;
    hold = undefined;
    // The next outage is told from fresh failures, not from those before this one ended.
    outage.reached();
    ledger.setHold(undefined);
    logger.info({ heldForMs: now() - since, why }, 'delivery resumed');
    emit({ type: 'resumed', reason: why });
  };

  /** Another process (a second worker, the CLI) may set or clear the hold: the ledger is the truth. */
  const refreshHold = () => {
    const stored = ledger.getHold();
    if (!stored && hold) hold = undefined;
    else if (stored && !hold) {
      hold = stored;
      nextProbeAt = now() + probeEveryMs;
      if (stored.office && !refusedOffices.has(stored.office)) officeRefused(stored.office, now());
    } else if (stored) hold = stored;
  };

  /**
   * Drops the payloads past retention a chunk at a time, a turn of the event loop between chunks: in one
   * statement a backlog (a ledger never purged, a retention lowered) held /healthz and every acknowledgement
   * for seconds. Each chunk commits alone, so the background checkpoints keep the WAL small meanwhile.
   * Ends between chunks at stop(); the next start purges the rest.
   */
  const purgeAll = async (at: number): Promise<void> => {
    let purged = 0;
    try {
      for (;;) {
        const n = ledger.purgePayloads(at, purgeChunkRows);
        purged += n;
        if (n < purgeChunkRows || stopping) break;
        await nextTurn();
        if (stopping) break;
      }
    } catch (err) {
      if (stopped) logger.debug({ err }, 'the payload purge ended after stop');
      else logger.error({ err }, 'payload purge failed; trying again later');
    }
    if (purged > 0) logger.info({ purged }, 'payloads of delivered rows dropped after retention');
  };

  const maintenance = () => {
    if (crashed.size > 0) retryCrashed();
    const at = now();
    if (at >= nextStaleCheckAt) {
      nextStaleCheckAt = at + Math.min(Math.max(lockTimeoutMs / 2, 10), STALE_CHECK_MAX_MS);
      // (This worker's own attempts in flight are never stale here: their locks renew on a timer, track().)
      const reset = ledger.resetStaleLocks(lockTimeoutMs, at, takeBackOptions);
      if (reset > 0) logger.warn({ reset }, 'stale locks reset; rows are due again');
    }
    if (at >= nextPurgeAt && !purging) {
      nextPurgeAt = at + PURGE_EVERY_MS;
      purging = purgeAll(at).finally(() => {
        purging = undefined;
      });
    }
  };

  /** Rows whose attempt crashed and whose lock is still this worker's: given back at the next maintenance. */
  const crashed = new Map<number, CrashTakeBack>();
  /**
   * How a crashed attempt's row is given back. A storage error (the disk full) is no fault of the row: due
   * again after CRASH_RETRY_MS, for as long as it lasts. Anything else is a bug that may well recur on every
   * attempt of this row (settle throwing): the retry policy's backoff and budget apply, as settle would
   * apply them, or the row would be sent (same transactionIds) and recorded every 30 s for ever.
   */
  const crashTakeBack = (row: LedgerRow, err: unknown): CrashTakeBack => {
    // Only the code in the ledger: an error's message may quote the record.
    const code = storageErrorCode(err);
    if (code) {
      return {
        reason: `the attempt stopped on a ledger write the disk refused (${code}); resending`,
        retryInMs: CRASH_RETRY_MS,
      };
    }
    const decision = decideRetry(
      {
        attempts: row.attempts,
        counted: countedAttempts(row),
        firstSeenAt: row.queuedAt,
        now: now(),
        error: { classification: 'retryable' },
      },
      attemptDeps.policy,
      attemptDeps.random,
    );
    if (decision.action === 'retry') {
      return {
        reason: 'the attempt stopped on an unexpected error (see the log); resending',
        retryInMs: decision.delayMs,
        kind: 'internal',
      };
    }
    return {
      reason: `the attempt stopped on an unexpected error (see the log); ${decision.reason}`,
      kind: 'internal',
      dead: true,
    };
  };
  /**
   * Gives a crashed attempt's row back, recorded, as a dead worker's would be (its NOTIFY may have gone
   * out: the copy in flight is restored; a resend carries the same transactionIds, so OpenCRVS finds the
   * event it created), due again or dead as `take` says. Kept to retry when the ledger refuses this too.
   */
  const giveBackCrashed = (id: number, take: CrashTakeBack): void => {
    let n: number;
    try {
      n = ledger.takeBackUnfinished([id], workerId, { ...takeBackOptions, ...take });
      crashed.delete(id);
    } catch (err) {
      if (!crashed.has(id)) logger.warn({ err, rowId: id }, 'could not give back a crashed attempt; trying again');
      if (crashed.has(id) || crashed.size < CRASHED_MAX) crashed.set(id, take);
      return;
    }
    if (n === 0 || !take.dead) return;
    logger.error({ rowId: id, reason: take.reason }, 'delivery failed permanently; row is dead');
    try {
      // Counted as a dead letter (metrics), as a row settle ends dead is.
      const row = ledger.get(id);
      if (row?.state === 'dead')
        emit({ type: 'dead', row, reason: take.reason, ...(row.lastError ? { error: row.lastError } : {}) });
    } catch (err) {
      logger.warn({ err, rowId: id }, 'could not read back a row dead after a crash');
    }
  };
  const retryCrashed = () => {
    // One claimed again meanwhile (its lock reset and taken by this worker) is a live attempt now.
    for (const [id, take] of [...crashed]) {
      if (inFlight.has(id)) crashed.delete(id);
      else giveBackCrashed(id, take);
    }
  };

  let renewTimer: NodeJS.Timeout | undefined;
  const renewEveryMs = Math.max(Math.min(lockTimeoutMs / 3, STALE_CHECK_MAX_MS), 10);
  const track = (row: LedgerRow, work: Promise<unknown>) => {
    const { id } = row;
    const tracked = work
      .catch((err) => {
        // After stop() the row was handed back and the ledger may be closed: a late end is expected.
        if (stopped) logger.debug({ rowId: id }, 'an attempt handed back at stop ended afterwards');
        else {
          logger.error({ err, rowId: id }, 'delivery attempt crashed');
          // Not left `delivering` until the lock timeout.
          giveBackCrashed(id, crashTakeBack(row, err));
        }
      })
      .finally(() => {
        inFlight.delete(id);
        if (inFlight.size === 0 && renewTimer) {
          clearInterval(renewTimer);
          renewTimer = undefined;
        }
        wake?.();
      });
    inFlight.set(id, tracked);
    // Renewed on a timer of their own while attempts run: `runUntilIdle` (sync) waits for a whole round
    // before its next maintenance, and a slow OpenCRVS can make that round outlast the lock timeout,
    // which another process would then take as a dead worker's and send the row again.
    renewTimer ??= setInterval(() => {
      if (stopped || inFlight.size === 0) return;
      try {
        ledger.renewLocks([...inFlight.keys()], workerId);
      } catch (err) {
        logger.warn({ err }, 'could not renew the locks of attempts in flight; trying again');
      }
    }, renewEveryMs);
    renewTimer.unref();
    return tracked;
  };

  // A row that waited (settle time, retries, an outage) is confirmed at its source before OpenCRVS
  // hears of it: a poll never sees a record deleted meanwhile (OpenMRS voids the duplicate a merge
  // leaves), nor, if it runs less often than the wait, a merge or a correction made during it.
  // A settle time shorter than the recheck threshold still ends in a recheck: what the EMR did during the
  // wait is what the wait is for.
  const recheckAfterMs =
    settings.recheckAfterSeconds > 0 && settings.settleSeconds > 0
      ? Math.min(settings.recheckAfterSeconds, settings.settleSeconds) * 1000
      : settings.recheckAfterSeconds * 1000;
  // Rows with an OpenCRVS event too: if the source withdrew the record, the ledger marks the row and
  // the attempt asks OpenCRVS before anything is sent (withdraw.ts). A marked row is not checked again.
  // A replayed row (requeues > 0) not confirmed since: it was dead, perhaps for long, whatever its queued time.
  const needsRecheck = (row: LedgerRow, at: number): boolean =>
    deps.recheck !== undefined &&
    recheckAfterMs > 0 &&
    row.withdrawnReason === null &&
    ((row.requeues > 0 && row.recheckedAt === null) ||
      at - Math.max(row.queuedAt, row.recheckedAt ?? 0) >= recheckAfterMs) &&
    deps.recheck.appliesTo(row);

  /**
   * Unclaims the rows, has the source evaluate them again, then makes those still waiting due. A recheck that
   * fails sends them as recorded, except for `mustRead`, where they wait out their lease and are tried again:
   * 'remap', the rows' payloads are known not to be what mapping their records gives now (attempt.ts);
   * 'probe', a hold probe's re-try, which outlasted whatever the EMR voided during the hold, and whose sole
   * purpose (showing the hold's cause gone) another row serves as well at the next probe.
   * True when every row was evaluated (or is sent as recorded by the rule above), false when some wait.
   */
  const recheck = async (rows: LedgerRow[], source: SourceRecheck, mustRead?: 'remap' | 'probe'): Promise<boolean> => {
    const ids = rows.map((row) => row.id);
    // Leased for the lock timeout: a crash during the recheck leaves them due after it, like a stale lock.
    ledger.deferForRecheck(ids, workerId, lockTimeoutMs);
    try {
      await source.run(rows);
    } catch (err) {
      if (err instanceof RecheckNotReady) {
        // Not yet possible (routing unresolved, a proxy's page): those rows wait out their lease, checked
        // later, not sent. The batch's others (another source's, or this source's subjects the recheck did
        // not name: RecheckNotReady.subjectKeys) go on as after any recheck.
        const waiting = new Set(err.rowIds ?? ids);
        const others = rows.filter((row) => !waiting.has(row.id));
        logger.warn({ rows: waiting.size, reason: err.message }, 'waiting rows wait until they can be rechecked');
        if (others.length === 0) return false;
        if (err.otherFailure !== undefined) {
          if (stopping) return false;
          logger.warn(
            { err: err.otherFailure, rows: others.length },
            'recheck at the source failed; the rows it could not evaluate are sent as recorded',
          );
        }
        ledger.markRechecked(others);
        return false;
      }
      // Cut off by shutdown (the source's calls are ended): not checked, so not marked so. The rows wait
      // out their lease and are rechecked after the restart.
      if (stopping) return false;
      if (mustRead === 'remap') {
        logger.warn({ err, rows: ids.length }, 'the record could not be mapped again at its source; the row waits');
        return false;
      }
      if (mustRead === 'probe') {
        logger.warn(
          { err, rows: ids.length },
          'hold probe: the recheck at the source failed; the row waits out its lease, not sent unchecked',
        );
        return false;
      }
      // Outside a hold an unreachable EMR must not stop registrations: the rows go out as they were recorded.
      // A source records what the reads that did succeed show before it throws (a record withdrawn meanwhile
      // is not sent: sources/fhir/reevaluate.ts, sources/dhis2/recheck.ts), so only the rows it could not
      // read go out unchecked.
      logger.warn(
        { err, rows: ids.length },
        'recheck at the source failed; the rows it could not evaluate are sent as recorded',
      );
    }
    ledger.markRechecked(rows);
    return true;
  };

  /**
   * One attempt on a claimed row. A row whose unchecked facility OpenCRVS lists otherwise than its payload
   * says, or that is routed to an office OpenCRVS refused since it was mapped (attempt.ts 'remap': nothing
   * sent, still claimed), has its record mapped again at its source, as a recheck does, and goes out with
   * the payload that mapping records.
   */
  const attempt = async (row: LedgerRow, through = attemptDeps) => {
    const result = await runAttempt(through, row);
    if (result === 'remap' && deps.recheck) {
      logger.info(
        { rowId: row.id },
        'its payload may be stale (a facility OpenCRVS lists otherwise, or an office it refused): mapped again before sending',
      );
      await recheck([row], deps.recheck, 'remap');
    }
    return result;
  };

  /**
   * The probe's claim of a row by id, if it is still to be sent now: not withdrawn, and not waiting out the
   * lease of a recheck (under way, or one that could not run yet). Checked and claimed in one statement:
   * another process (serve and `sync --once` or `replay` share the ledger) may lease the row between a
   * read and a claim, and the probe would then send it while its recheck runs.
   */
  const claimAfterRecheck = (id: number): LedgerRow | undefined => ledger.claimIfDue(id, workerId, now());

  /** Whether the row is still to be sent, by whoever: waiting (perhaps out a lease), or claimed. */
  const stillWaiting = (id: number): boolean => {
    const state = ledger.get(id)?.state;
    return state === 'pending' || state === 'failed' || state === 'delivering';
  };

  const startRows = (rows: ReturnType<typeof ledger.claimDue>) => {
    const at = now();
    const toRecheck: LedgerRow[] = [];
    const started = rows.map((row) => {
      // Claimed but not started: give it back untouched, its attempt not counted. Also a row whose earlier
      // attempt by this worker still runs (its lock was taken back as stale): that attempt ends first.
      if (stopping || hold || inFlight.has(row.id)) {
        ledger.handBack([row.id], workerId);
        return Promise.resolve();
      }
      if (needsRecheck(row, at)) {
        toRecheck.push(row);
        return Promise.resolve();
      }
      return track(row, attempt(row));
    });
    if (toRecheck.length > 0 && deps.recheck) {
      // One recheck for them all (the source batches their reads); each holds its slot meanwhile.
      const work = recheck(toRecheck, deps.recheck);
      for (const row of toRecheck) started.push(track(row, work));
    }
    return started;
  };

  const probe = async (): Promise<boolean> => {
    refreshHold();
    if (!hold) return true;
    nextProbeAt = now() + probeEveryMs;
    const { signal } = stopCalls;
    try {
      await api.checkToken({ signal });
    } catch (err) {
      if (signal.aborted) return false;
      const failure = classifyFailure(err);
      logger.warn({ kind: failure.error.kind, status: failure.error.status }, 'hold probe: token check failed');
      return false;
    }
    // After an outage, a call that sends nothing tells whether OpenCRVS answers again; the rows then go
    // out the usual way, each confirmed at its source first if it waited.
    if (hold.outage) return probeReach(signal);
    // The token is fine; only a real call tells whether the scope or office problem is gone (a token
    // check proves nothing of a static token, nor of a 401 from the events API with tokens still issued).
    // The held row only when it is due: one waiting out the lease of a recheck under way (another worker's, or
    // one that could not run yet) is that recheck's to settle, and claimed here it could be sent meanwhile.
    const held = hold.rowId;
    const row = (held !== undefined ? claimAfterRecheck(held) : undefined) ?? ledger.claimDue(workerId, 1, now())[0];
    if (!row) {
      if (held !== undefined && stillWaiting(held)) {
        logger.info(
          { rowId: held },
          'hold probe: the held row waits out a recheck and nothing else is due; the hold stands',
        );
        return false;
      }
      release('token check passed; nothing waiting to re-try');
      return true;
    }
    const retry: ProbeRetry = { before: holdsRaised, held: hold, answers: [] };
    const through = { ...attemptDeps, api: watchedApi(api, retry.answers) };
    if (deps.recheck && needsRecheck(row, now())) {
      // A hold lasts until someone acts, often far past the recheck threshold: the row is confirmed at its
      // source first, as startRows does, or a record the EMR voided during the hold is registered by the
      // probe. Unlike startRows, a recheck that fails (the EMR down) or waits does not send it as recorded:
      // it waits out its lease, the hold stands, and the next probe re-tries another row. Asked of the
      // recheck, not of the lease: a recheck slower than delivery.lockTimeoutSeconds outlasts it, and the
      // claim below would then take the row.
      if (!(await track(row, recheck([row], deps.recheck, 'probe')))) return false;
      return retryRechecked(row.id, retry, through);
    }
    const result = await track(row, attempt(row, through));
    // Routed to the refused office and mapped again at its source (the route may have been corrected):
    // the re-try is of what it maps to now.
    if (result === 'remap') return retryRechecked(row.id, retry, through);
    return retryEnded(row.id, result, retry);
  };

  /**
   * Ends the hold if the probe's re-try shows its cause gone (hold-proof.ts): not refused again, and OpenCRVS
   * answered the call the hold refused. A row withdrawn with one create, or found notified by a lookup, shows
   * nothing of a NOTIFY's scope: the hold stands, and the next probe re-tries another row.
   */
  const retryEnded = (id: number, result: unknown, retry: ProbeRetry): boolean => {
    if (holdsRaised > retry.before) return false;
    if (!holdDisproved(retry.held, retry.answers)) {
      logger.info(
        { rowId: id, result: String(result), kind: retry.held.kind },
        'hold probe: the re-try settled its row without a call that shows the cause gone; the hold stands',
      );
      return false;
    }
    release(`probe re-try ended ${String(result)}`);
    return true;
  };

  /**
   * The probe's re-try of a row it just had rechecked (one recheck a probe). A row that recheck left nothing
   * to send for (withdrawn before OpenCRVS heard of it, waiting out the lease of a recheck that could not
   * run or failed, or of a mapping again that failed) keeps the hold until the next probe: nothing else proves the
   * problem fixed; so does one whose facility OpenCRVS still lists otherwise (mapped by the next probe).
   */
  const retryRechecked = async (id: number, retry: ProbeRetry, through: AttemptDeps): Promise<boolean> => {
    const row = claimAfterRecheck(id);
    if (!row) return false;
    // Still unconfirmed at its source (a recheck or a mapping again that failed after the row's lease ran
    // out): handed back for the next probe, never sent unchecked.
    if (needsRecheck(row, now())) {
      ledger.handBack([row.id], workerId);
      return false;
    }
    const result = await track(row, runAttempt(through, row));
    if (result === 'remap') {
      ledger.handBack([row.id], workerId);
      return false;
    }
    return retryEnded(row.id, result, retry);
  };

  /** An outage's probe: the events API's location list, asked for an office no deployment has. */
  const probeReach = async (signal: AbortSignal): Promise<boolean> => {
    try {
      await api.listLocations({ locationType: 'CRVS_OFFICE', externalId: REACH_PROBE_EXTERNAL_ID }, { signal });
    } catch (err) {
      if (signal.aborted) return false;
      const failure = classifyFailure(err);
      if (unreached(failure)) {
        logger.warn(
          { kind: failure.error.kind, status: failure.error.status },
          'hold probe: OpenCRVS still out of reach',
        );
        return false;
      }
      // Answered, with a refusal: reachable. An operator problem, if that is one, shows on the next row.
    }
    release('OpenCRVS answers again');
    return true;
  };

  /**
   * Rows locked by a process of this host that is gone are due again at once (see lockHolderGone). At
   * start also those of an earlier run with this very host and pid (a container's restart).
   */
  const resetGoneLocks = (atStart: boolean) => {
    if (!workerId.startsWith(ownPrefix)) return;
    const reset = ledger.resetLocksOf(host, (lockedBy) => lockHolderGone(lockedBy, host, atStart), takeBackOptions);
    if (reset > 0) logger.warn({ reset }, 'rows locked by an earlier run on this host are due again');
  };

  const processNext = async (): Promise<number> => {
    ran = true;
    maintenance();
    refreshHold();
    if (hold) {
      if (now() < nextProbeAt) return 0;
      return (await probe()) ? 1 : 0;
    }
    const free = concurrency - inFlight.size;
    if (free <= 0 || stopping) return 0;
    const rows = ledger.claimDue(workerId, free, now());
    await Promise.all(startRows(rows));
    return rows.length;
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        if (wake === done) wake = undefined;
        resolve();
      }
      wake = done;
    });

  const runLoop = async () => {
    // Failures in a row: a full disk or a locked store fails every round, and without a growing wait the
    // loop logged (with stacks) three times a second onto the disk that was full.
    let failures = 0;
    // Even backed off it failed twice a minute: logged at once, then once a minute with the count.
    const loopFailures = new RepeatedFailure(logger, 'delivery loop error; backing off', { level: 'error', now });
    while (running) {
      try {
        maintenance();
        refreshHold();
        if (hold) {
          if (now() >= nextProbeAt) await probe();
          else await sleep(Math.min(settings.pollIntervalMs, nextProbeAt - now()));
          continue;
        }
        void checkPending();
        const free = concurrency - inFlight.size;
        const rows = free > 0 ? ledger.claimDue(workerId, free, now()) : [];
        startRows(rows);
        loopFailures.recovered('delivery loop running again');
        failures = 0;
        // Full, or nothing more due: wait for a slot to free up or the next poll.
        if (rows.length === 0 || rows.length >= free) await sleep(settings.pollIntervalMs);
      } catch (err) {
        failures++;
        const waitMs = Math.min(settings.pollIntervalMs * 2 ** Math.min(failures - 1, 16), MAX_LOOP_BACKOFF_MS);
        loopFailures.failed(err, { failures, waitMs });
        await sleep(waitMs);
      }
    }
  };

  return {
    workerId,
    start() {
      if (running) return;
      running = true;
      ran = true;
      stopping = false;
      stopCalls = new AbortController();
      stopped = false;
      liveWorkers.add(workerId);
      resetGoneLocks(true);
      logger.info({ concurrency, mode: settings.mode }, 'delivery worker started');
      loop = runLoop();
    },
    async stop(options = {}) {
      running = false;
      stopping = true;
      stopCalls.abort();
      wake?.();
      await loop;
      loop = undefined;
      // Stopping ends it after its current chunk; the ledger may be closed once stop() returns.
      await purging;
      const drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
      if (inFlight.size > 0 || pendingChecks) {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, drainMs);
        });
        // A pending check ends after the row it is asking about; cut off, it is asked again later.
        await Promise.race([Promise.allSettled([...inFlight.values(), pendingChecks]), deadline]);
        clearTimeout(timer);
      }
      // Still running at the deadline: taken back, as a dead worker's would be (recorded; the copy in
      // flight restored if its NOTIFY may have gone out). A late attempt sends no NOTIFY after this
      // (sendRow checks its lock) and its late settle is ignored; a resend carries the same transactionIds.
      const unfinished = [...inFlight.keys()];
      if (unfinished.length > 0) {
        const n = ledger.takeBackUnfinished(unfinished, workerId, takeBackOptions);
        logger.warn({ takenBack: n }, 'rows still in flight at the drain deadline were taken back');
      }
      liveWorkers.delete(workerId);
      stopped = true;
      if (ran) logger.info('delivery worker stopped');
    },
    processNext,
    async runUntilIdle(options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
      ran = true;
      resetGoneLocks(false); // `sync --once` runs only this: a pass killed before it left rows locked
      const timedOut = () => new Error('delivery did not become idle before the timeout');
      // A pass also purges what is past retention (`sync --once` may be the only process): within the
      // deadline, else stop() ends it between chunks and the next pass goes on.
      const purged = () => (purging ? beforeDeadline(purging, deadline) : undefined);
      // And, run by a scheduler, has no other time to ask about pending NOTIFYs.
      if ((await beforeDeadline(checkPending(deadline), deadline)) === LATE) throw timedOut();
      for (;;) {
        // Against a hanging OpenCRVS one round (token, create, lookup, notify, each up to its timeout) can
        // outlast `sync --timeout` many times over: at the deadline the round is left running, and
        // stop() takes back what is still in flight.
        const n = await beforeDeadline(processNext(), deadline);
        if (n === LATE) throw timedOut();
        if (hold || stopping) {
          await purged();
          return; // stop() drains and hands back what is in flight
        }
        if (n === 0 && inFlight.size === 0 && ledger.outstanding() === 0) {
          await purged();
          return;
        }
        // Checked after busy rounds too: against a hanging OpenCRVS every round is busy (each attempt waits
        // out its timeout and the row is due again), and `sync --timeout` must still end the pass.
        if (Date.now() >= deadline) throw timedOut();
        if (n > 0) continue;
        const next = ledger.nextDueAt();
        const wait = next === undefined ? settings.pollIntervalMs : next - now();
        await sleep(Math.min(Math.max(wait, 5), settings.pollIntervalMs));
      }
    },
    held: () => (hold ? { reason: hold.reason, since: hold.since } : undefined),
    probe,
  };
}

const LATE = Symbol('late');

/** What `work` gives, or LATE when `deadline` (epoch ms) comes first; the work itself goes on. */
async function beforeDeadline<T>(work: Promise<T>, deadline: number): Promise<T | typeof LATE> {
  work.catch(() => undefined); // a failure after the deadline is the stop's to see, not an unhandled one
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether the process behind a lock of this host is known to be gone (holderGone); a worker of this
 * process that is still running is not. A lock of our pid in another pid namespace counts as quiet for
 * long enough: a worker starts in a process that holds the ledger's lease (serve, sync), which it took
 * only from a holder that had stopped renewing it, or on a ledger no bridge process shares (tests, the
 * demo); the rows such a holder left are the restarted container's own.
 */
function lockHolderGone(lockedBy: string, host: string, atStart: boolean): boolean {
  return !liveWorkers.has(lockedBy) && holderGone(lockedBy, host, { atStart, quietMs: Number.POSITIVE_INFINITY });
}
