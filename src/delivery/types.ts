import type { DeliverySettings } from '../config/types.js';
import type { Ledger, LedgerError, LedgerRow } from '../ledger/index.js';
import type { Logger } from '../observability/logger.js';
import type { OpenCrvsApi } from '../opencrvs/types.js';

/**
 * Reported after each settled attempt and on hold changes (metrics, write-back of the tracking id):
 * `delivered` (NOTIFY accepted, or already ours: 409), `pending` (delivered-pending: NOTIFY
 * `Requested`), `retry` (scheduled again after `delayMs`), `dead`, `held` (the queue stops for an
 * operator problem), `resumed` (a probe succeeded).
 */
export interface DeliveryOutcome {
  type: 'delivered' | 'pending' | 'retry' | 'dead' | 'held' | 'resumed';
  /** The row as settled (absent for `resumed`). */
  row?: LedgerRow;
  /** Claim to settle, for the attempt's calls. */
  latencyMs?: number;
  error?: LedgerError;
  delayMs?: number;
  /** For `dead`, `held` and `resumed`: why. */
  reason?: string;
  /**
   * A `delivered` or `dead` that is no attempt: the country configuration decided a NOTIFY answered
   * pending earlier (delivery/pending-check.ts).
   */
  decidedLater?: true;
}

/**
 * Thrown by a recheck that cannot run yet (the routing table is not resolved, a proxy's page instead of the
 * source's answer): the rows stay deferred (their lease) instead of going out unchecked, since a record
 * deleted meanwhile would be notified.
 */
export class RecheckNotReady extends Error {
  /**
   * The rows that wait, when only some of the batch's do (one source's of a batch of several); undefined:
   * every row of the batch. The others were rechecked, or failed otherwise (`otherFailure`).
   */
  readonly rowIds: readonly number[] | undefined;
  /**
   * Thrown by one source's recheck (sources/recheck.ts SubjectRecheck): the subjects whose rows wait, when
   * only some of its rows do (a record its source cannot settle yet, the others read fine); undefined: all.
   */
  readonly subjectKeys: readonly string[] | undefined;
  /** What failed for the batch's other rows (they go out as recorded, as after any failed recheck). */
  readonly otherFailure: unknown;

  constructor(
    message: string,
    options: { rowIds?: readonly number[]; subjectKeys?: readonly string[]; otherFailure?: unknown } = {},
  ) {
    super(message);
    this.name = 'RecheckNotReady';
    this.rowIds = options.rowIds;
    this.subjectKeys = options.subjectKeys;
    this.otherFailure = options.otherFailure;
  }
}

/**
 * Confirms waiting rows at their source before their first send (DeliverySettings.recheckAfterSeconds).
 * `appliesTo`: whether the row's source can evaluate it again. `run`: evaluates the rows' subjects
 * again and records the outcome through the source's pipeline (a new payload, a withdrawal, …); the
 * rows are unclaimed meanwhile, so the pipeline may change them.
 */
export interface SourceRecheck {
  appliesTo(row: LedgerRow): boolean;
  run(rows: LedgerRow[]): Promise<void>;
}

export interface DeliveryWorkerDeps {
  ledger: Ledger;
  api: OpenCrvsApi;
  settings: DeliverySettings;
  logger?: Logger;
  /** Names the lock holder; default `<hostname>:<pid>:<random>`. */
  workerId?: string;
  now?: () => number;
  random?: () => number;
  /** Must not throw (a throw is logged and ignored). */
  onOutcome?: (event: DeliveryOutcome) => void;
  recheck?: SourceRecheck;
  /**
   * After a 403: why this event type alone is refused (the token's scopes allow other types, not this
   * one), else undefined. Such a row is dead, with the reason; any other 403 holds the whole queue.
   */
  refusedEventType?: (eventType: string) => Promise<string | undefined>;
  /**
   * Before a row goes out to an office its record named (LedgerPayload.officeFromRecord): throws an
   * `unknown-office` OpenCrvsError when OpenCRVS does not list it as an office (the row is dead, as when
   * OpenCRVS refuses the office itself), another when it cannot be asked (the usual policy: a retry).
   */
  officeOfRecord?: (office: string) => Promise<void>;
  /**
   * Before a row goes out (but one whose NOTIFY may be in OpenCRVS already): how the office it is routed to
   * was closed, in words to follow "was" (2.0: `closed on <validUntil> (its validUntil)`; 1.9: `deactivated
   * (…)`), else undefined; the row is dead then. Throws when OpenCRVS cannot be asked
   * about an office it never listed to this process (the usual policy: a retry).
   */
  officeClosedOn?: (office: string) => Promise<string | undefined>;
  /**
   * Before a row goes out whose facility or office OpenCRVS could not be asked about when it was mapped
   * (LedgerPayload.facilityUnchecked, officeUnchecked): the location of that type a mapping gives for the
   * reference now (the UUID OpenCRVS lists under it, undefined when it lists none of that type). Throws
   * when OpenCRVS cannot be asked (the usual policy: a retry, an outage hold). An answer other than the
   * payload's has the record mapped again at its source (`recheck`) before anything is sent.
   */
  locationNow?: (ref: string, type: 'HEALTH_FACILITY' | 'CRVS_OFFICE') => Promise<string | undefined>;
  /**
   * The config keys whose routing gives `office` (an OpenCRVS UUID), for the hold of an office OpenCRVS
   * refused to name what to correct (`routing.defaultOffice`, `routing.facilities['…'].office`).
   */
  routingKeysOf?: (office: string) => string[];
  /** Payloads the purge drops per statement (default PURGE_CHUNK_ROWS, 500); tests make it small. */
  purgeChunkRows?: number;
}

export interface DeliveryWorker {
  readonly workerId: string;
  /** Runs the claim loop on timers until stop(): up to `concurrency` rows in flight. */
  start(): void;
  /**
   * Stops claiming; waits up to `drainMs` (default 30 s) for rows in flight. Rows claimed but unstarted
   * are handed back (their attempt not counted); attempts unfinished at the deadline are taken back as a
   * dead worker's are (Ledger.takeBackUnfinished) and send no NOTIFY afterwards.
   */
  stop(options?: { drainMs?: number }): Promise<void>;
  /** Claims up to `concurrency` due rows and processes them (or runs a due hold probe); returns how many. */
  processNext(): Promise<number>;
  /**
   * Processes until no row is pending, failed or delivering (waiting for retry times as needed), or the
   * queue is held; throws after `timeoutMs` (default 60 s). For `sync --once` and tests.
   */
  runUntilIdle(options?: { timeoutMs?: number }): Promise<void>;
  /** The current hold, if delivery is paused for an operator problem or an OpenCRVS outage. */
  held(): { reason: string; since: number } | undefined;
  /**
   * Checks the token and re-tries the held row; resumes delivery (returns true) unless the problem is
   * still there. True at once when not held.
   */
  probe(): Promise<boolean>;
}
