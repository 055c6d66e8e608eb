// The ledger as the rest of the bridge sees it. One row per source event (natural key: source id,
// event type, subject key); the same row is the outbox job that the delivery worker claims.

import type { Logger } from '../observability/logger.js';
import type { ContextReader } from './context-reads.js';
import type { Db } from './db.js';
import type { LedgerInbox } from './inbox.js';
import type { LedgerLocationAnswers } from './location-answers.js';
import type { LedgerSlowRecords } from './slow-records.js';
import type { LedgerSources } from './sources.js';
import type { WriteFailure } from './write-health.js';

/**
 * Row states (the job row is the state machine, as in graphile-worker):
 * - `pending`: waiting to be sent (new, replayed, or handed back);
 * - `delivering`: claimed by a worker (`lockedBy`/`lockedAt` set);
 * - `failed`: the last attempt failed with a retryable error; runs again at `nextRunAt`;
 * - `delivered`: OpenCRVS accepted the NOTIFY (or already had it from us: 409 already notified);
 * - `delivered-pending`: NOTIFY `Requested`, the country configuration decides later;
 * - `dead`: permanent error, invalid mapping output, or retry budget spent; replayable;
 * - `skipped`: not a notifiable event (`skipReason` says why).
 * A queue-wide hold (bad credentials, missing scope) is not a row state: it lives in meta
 * (`HOLD_META_KEY`) and the rows stay `pending`/`failed` with no attempt burned.
 */
export type LedgerState = 'pending' | 'delivering' | 'failed' | 'delivered' | 'delivered-pending' | 'dead' | 'skipped';

export const LEDGER_STATES: readonly LedgerState[] = [
  'pending',
  'delivering',
  'failed',
  'delivered',
  'delivered-pending',
  'dead',
  'skipped',
];

/** Same values as the OpenCRVS client's ErrorClassification; repeated so the ledger depends on no client. */
export type LedgerErrorClassification = 'retryable' | 'permanent' | 'operator';

/**
 * The last error of a row or an attempt. `kind` is the client's OpenCrvsErrorKind, or one of the
 * ledger's own: `mapping` (invalid mapping output), `source-read` (a record the mapping needs could not be
 * read from the source), `stale-lock` (a worker died holding the row),
 * `internal` (a bug: an exception that was not an OpenCrvsError).
 */
export interface LedgerError {
  classification: LedgerErrorClassification;
  kind: string;
  status?: number;
  /** OpenCRVS's own message (for a 400 the JSON-encoded field problems); never personal data we add. */
  message: string;
}

export interface LedgerPayload {
  declaration: Record<string, unknown>;
  /** Resolved OpenCRVS office UUID (`createdAtLocation`). */
  office: string;
  /**
   * The source record named the office (not the routing table): OpenCRVS refusing it is that record's
   * problem, not the queue's (delivery/attempt.ts). Never sent.
   */
  officeFromRecord?: true;
  facility?: string;
  /**
   * The facility reference the record named, which OpenCRVS could not be asked about when the record was
   * mapped (RoutingResult.facilityUnchecked): the worker looks it up before the row is sent, and has the
   * record mapped again when OpenCRVS lists it otherwise than `facility` says. Never sent.
   */
  facilityUnchecked?: string;
  /**
   * The routing table's office reference, taken as OpenCRVS last answered because it could not confirm
   * the table when the record was mapped (RoutingResult.officeUnchecked): checked like facilityUnchecked
   * before the row is sent. Never sent.
   */
  officeUnchecked?: string;
  annotation?: Record<string, unknown>;
}

export interface RecordEventInput {
  sourceId: string;
  eventType: string;
  /** The subject the event is about, e.g. `Patient/123`; part of the natural key. */
  subjectKey: string;
  /** The resource that triggered the event, e.g. `Encounter/9`; shown in the ledger. */
  sourceRef: string;
  sourceVersion?: string;
  mappingId?: string;
  /** A hash of what would be sent (see `hashPayload`); a different hash means a new version. */
  payloadHash: string;
  /**
   * A hash of the source content the payload was mapped from (mapping/fingerprint.ts). A dismissed row
   * read again with a different payload but this same fingerprint is the same record mapped otherwise (a
   * new bridge version, a mapping change): it stays dismissed. A function, called only when the row's
   * fingerprint is stored or compared, possibly more than once (MapResult's computes once): a delivered
   * row read again with its payload unchanged and its fingerprint kept needs none.
   */
  sourceFingerprint?: () => string;
  /**
   * The fingerprint as versions before took it, when it can differ (mapping/fingerprint.ts OwnWrites.ownOnly:
   * a DHIS2 source left out its own write-back only, not the other sources' of its server). A dismissed row
   * whose fingerprint is this one is the same record too. Called only when `sourceFingerprint` differs.
   */
  ownOnlyFingerprint?: () => string;
  payload: LedgerPayload;
  /** When the source first showed the event (default: now); starts nothing but the display. */
  seenAt?: number;
  /**
   * The records this reading's context reached other than by a search keyed on the subject (`Type/id`, as
   * `contextReadBy` read them: MappingSet.mapSubjectDetailed): they replace the row's set (migration 023),
   * by which a poll finds the row again when one of them changes. Absent: the set is left as it is.
   */
  contextReads?: readonly string[];
  /** The source that read `contextReads` (default `sourceId`): another than the row's for a shared record. */
  contextReadBy?: string;
}

/**
 * What `recordEvent` did: `inserted` a new row; `replaced` the payload of a not yet delivered row;
 * `unchanged` (same payload hash); `updated-after-notification`: the event was already notified, the
 * new version is recorded on the row and never sent as a second event.
 */
export type RecordChange = 'inserted' | 'replaced' | 'unchanged' | 'updated-after-notification';

/**
 * What `recordEvent` recorded. `skippedFor`: the skip reason of the row as it was before this reading, when
 * it was skipped (null if it had none): the caller's go-live count reads it (sources/pipeline.ts), with no
 * second read of the row in the write transaction.
 */
export interface RecordedEvent {
  row: LedgerRow;
  change: RecordChange;
  skippedFor?: string | null;
}

/**
 * A skipped or invalid record's row, and whether this call recorded something new of the record: the same
 * record read again by the next poll (an overlap, a page read twice) leaves it as it was, and `sync` counts
 * only what changed. Bookkeeping a reading of the same content does (a fingerprint noted, a withdrawal
 * ended) is no change, as `recordEvent` calls it unchanged.
 */
export interface Recorded {
  row: LedgerRow;
  changed: boolean;
}

export interface RecordSkippedInput {
  sourceId: string;
  eventType: string;
  subjectKey: string;
  sourceRef: string;
  reason: string;
}

export interface RecordInvalidInput {
  sourceId: string;
  eventType: string;
  subjectKey: string;
  sourceRef: string;
  mappingId?: string;
  errors: Array<{ field: string; message: string }>;
  /**
   * The error kind kept on the row: `mapping` (default, the mapping refused the record) or `source-read`
   * (a record its context needs could not be read from the source).
   */
  kind?: 'mapping' | 'source-read';
  /**
   * The fingerprint of the source content the mapping read (see RecordEventInput), when it read the record
   * and its context. A row whose NOTIFY may be in OpenCRVS keeps its copy; a change of this is counted as
   * an update after notification, a reading of the same content (an office closed since) is not.
   * Called only for such a row (see RecordEventInput).
   */
  sourceFingerprint?: () => string;
  /** As RecordEventInput's: the fingerprint as the rule before took it, also taken as the same content. */
  ownOnlyFingerprint?: () => string;
  /** As RecordEventInput's: absent when the context could not be read, and the set stays as it is. */
  contextReads?: readonly string[];
  contextReadBy?: string;
}

export interface LedgerRow {
  id: number;
  sourceId: string;
  eventType: string;
  subjectKey: string;
  sourceRef: string;
  sourceVersion: string | null;
  mappingId: string | null;
  state: LedgerState;
  /** Attempts in the current budget (counted at claim; reset by replay). */
  attempts: number;
  nextRunAt: number;
  lockedBy: string | null;
  lockedAt: number | null;
  createTransactionId: string;
  notifyTransactionId: string;
  /** Times this row went from dead back to the queue; each gives the NOTIFY a new transactionId. */
  requeues: number;
  /** For `mode: single-call` (`POST /events/notify`). */
  baseTransactionId: string;
  office: string | null;
  facility: string | null;
  /** Null once delivered and purged, and for skipped/invalid rows. */
  payload: LedgerPayload | null;
  payloadHash: string | null;
  eventId: string | null;
  trackingId: string | null;
  lastError: LedgerError | null;
  firstSeenAt: number;
  /** Start of the current retry budget (insert, replay, or requeue by a new version of a dead row). */
  queuedAt: number;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | null;
  updatedAfterNotificationAt: number | null;
  updatesAfterNotification: number;
  skipReason: string | null;
  /** When the source last confirmed this row before its first send (DeliverySettings.recheckAfterSeconds). */
  recheckedAt: number | null;
  /**
   * The source withdrew the record while its delivery was under way (in flight, or its event created):
   * the worker settles it once it knows whether OpenCRVS was notified.
   */
  withdrawnReason: string | null;
  /**
   * Of `attempts`, those that failed without reaching OpenCRVS (connection, timeout, a gateway's 502–504;
   * delivery/outage.ts) and were not held: they end the row by `delivery.maxAgeHours` only, so `attempts`
   * less these is what counts toward `delivery.maxAttempts` (migration 030).
   */
  unreachedAttempts: number;
}

export type AttemptOutcome = 'delivered' | 'delivered-pending' | 'retry' | 'dead' | 'held' | 'abandoned';

/** The audit row of one attempt (one claim that reached OpenCRVS or tried to). */
export interface AttemptRow {
  id: number;
  rowId: number;
  attempt: number;
  workerId: string;
  /**
   * The last call made: `create`, `lookup` (a requeued row reading its earlier NOTIFYs), `notify` or
   * `createAndNotify`; `pending-check` for a decision learnt later. An attempt whose lock was taken back
   * is `interrupted` when its NOTIFY may have gone out, else `create`.
   */
  step: string;
  outcome: AttemptOutcome;
  startedAt: number;
  finishedAt: number;
  error: LedgerError | null;
  /** For `retry`: when the row runs again. */
  nextRunAt: number | null;
  /**
   * The failure never reached OpenCRVS (a timeout, a refused connection, a gateway's 502–504), and is one of
   * the row's unreachedAttempts: not counted toward delivery.maxAttempts (migration 032).
   */
  unreached: boolean;
}

export interface ListFilter {
  states?: LedgerState[];
  eventType?: string;
  sourceId?: string;
  /**
   * One event looked up by what an operator holds: a reference (`Patient/123`, `Encounter/9`) matched
   * against the subject and the source reference, a bare id (`123`) matched as the id part of either,
   * or an OpenCRVS tracking ID.
   */
  find?: string;
  /**
   * Only rows whose source record changed after OpenCRVS was notified (`updatesAfterNotification` > 0):
   * the corrections a registrar makes in OpenCRVS, since the bridge does not send them.
   */
  updatedAfterNotification?: boolean;
  /** On `updatedAt`, inclusive, epoch milliseconds. */
  since?: number;
  until?: number;
  /**
   * Rows with a smaller id only: the keyset cursor (the last id of the page before). The page starts
   * there in the id order the rows are listed in, rather than reading and skipping `offset` rows.
   */
  before?: number;
  limit?: number;
  offset?: number;
}

export interface ReplayResult {
  requeued: number[];
  skipped: Array<{ id: number; reason: string }>;
  /** Requeued rows with something to know: not read again at the source, or withdrawn by it. */
  notes?: Array<{ id: number; note: string }>;
  /** Dead rows a `--dead` replay left for the next one (it takes a bounded number at a time). */
  leftDead?: number;
}

/** What `Ledger.dismiss` did: dead rows it closed, and rows it left with why. */
export interface DismissResult {
  dismissed: number[];
  refused: Array<{ id: number; reason: string }>;
}

/**
 * The start of a dismissed row's skip reason (`Ledger.dismiss`). Such a row stays skipped when its record
 * is seen again unchanged (a poll's overlap, a notification); a changed record brings it back, as for a
 * dead row.
 */
export const DISMISSED_PREFIX = 'dismissed by an operator';

/**
 * Why a row named to `replay` is not replayed: neither dead (mapped again and requeued) nor failed (made due
 * now). One text whether the command replays in its own process or through serve's admin API.
 */
export function notReplayable(state: LedgerState): string {
  return `is ${state}, not dead or failed: only dead rows replay, and failed rows are made due now`;
}

/** The attempts that count toward `delivery.maxAttempts`: all but those that never reached OpenCRVS. */
export function countedAttempts(row: Pick<LedgerRow, 'attempts' | 'unreachedAttempts'>): number {
  return Math.max(0, row.attempts - row.unreachedAttempts);
}

export function isDismissed(skipReason: string | null | undefined): boolean {
  return skipReason?.startsWith(`${DISMISSED_PREFIX}:`) === true;
}

/** A dismissal's reason is stored with the row and shown wherever it is listed: one line, short. */
export const MAX_DISMISS_REASON_LENGTH = 200;

/**
 * The reason as stored (trimmed), or what is wrong with it. The CLI and the admin API both ask here, so
 * a reason one of them takes the other takes too.
 */
export function checkDismissReason(text: unknown): { reason: string } | { problem: string } {
  if (typeof text !== 'string') return { problem: 'a reason is required (text)' };
  const reason = text.trim();
  if (!reason) return { problem: 'a reason is required' };
  if (reason.length > MAX_DISMISS_REASON_LENGTH)
    return { problem: `the reason is longer than ${MAX_DISMISS_REASON_LENGTH} characters` };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(reason))
    return { problem: 'the reason must be one line, without control characters' };
  return { reason };
}

/**
 * What OpenCRVS may still hold of a row just dismissed (a dismissal withdraws nothing), for whoever
 * dismissed it: its event, or an earlier call taken with its answer lost (`mayStand`: Ledger.notifyMayStand,
 * asked before the dismissal), which leaves no tracking id on the row. The CLI and the admin API say the same.
 */
export function dismissalNote(trackingId: string | null | undefined, mayStand: boolean): string | undefined {
  if (trackingId) return `OpenCRVS keeps its event ${trackingId}; nothing was withdrawn.`;
  if (mayStand)
    return (
      'an earlier attempt may have been taken by OpenCRVS (its answer was lost), so the record may be registered ' +
      'there; nothing was withdrawn. To find out, undo this and replay it: OpenCRVS is asked first.'
    );
  return undefined;
}

/** What `Ledger.undismiss` did: dismissed rows it made dead again, and rows it left with why. */
export interface UndismissResult {
  restored: number[];
  refused: Array<{ id: number; reason: string }>;
}

/** How a settled attempt ends; written by the delivery worker through `Ledger.settle`. */
/**
 * `olderCopy`: OpenCRVS holds an earlier copy than the row's (an earlier NOTIFY of it stood): the row's
 * version is recorded as an update after notification.
 */
export type Settlement =
  | { outcome: 'delivered'; eventId: string; trackingId: string; olderCopy?: boolean }
  /** `checkAt`: when to ask OpenCRVS whether the country configuration decided (default: at once). */
  | { outcome: 'delivered-pending'; eventId: string; trackingId: string; checkAt?: number; olderCopy?: boolean }
  /** `unreached`: the failure never reached OpenCRVS, and does not count toward maxAttempts (unreachedAttempts). */
  | { outcome: 'retry'; error: LedgerError; nextRunAt: number; unreached?: boolean }
  | { outcome: 'dead'; error: LedgerError; unreached?: boolean }
  /**
   * Operator problem, or OpenCRVS out of reach for the queue: the row goes back unlocked, its attempt not
   * counted, the error kept visible, due again when it was due.
   */
  | { outcome: 'held'; error: LedgerError };

/** A row to ask about. */
export interface DuePendingCheck {
  row: LedgerRow;
  /** How often OpenCRVS was asked already. */
  checks: number;
}

export type PendingCheckResult =
  /** The country configuration accepted the NOTIFY: delivered. */
  | { outcome: 'delivered' }
  /** It rejected it: dead, with the reason, replayable like any refusal. */
  | { outcome: 'dead'; error: LedgerError }
  /** Not decided yet, or OpenCRVS could not be asked: ask again at `nextCheckAt` (null: never). */
  | { outcome: 'delivered-pending'; nextCheckAt: number | null };

export interface PendingCheckInput {
  id: number;
  notifyTransactionId: string;
  workerId: string;
  startedAt: number;
  step: string;
  result: PendingCheckResult;
}

export interface SettleInput {
  id: number;
  workerId: string;
  /** The payload hash the worker claimed; a different current hash means a newer version arrived. */
  claimedPayloadHash: string | null;
  /** The claimed payload as sent: kept on the row when OpenCRVS holds or may hold it. */
  claimedPayload?: LedgerPayload;
  step: string;
  startedAt: number;
  settlement: Settlement;
  /** The row's attempt count at the claim: a claim taken back and made again is not this attempt's. */
  claimedAttempts?: number;
}

export interface LedgerOptions {
  logger?: Logger;
  now?: () => number;
  /** Payloads of delivered rows are dropped this long after delivery (StoreSettings.payloadRetentionHours). */
  payloadRetentionHours?: number;
  /**
   * Checkpoint the WAL on a worker thread instead of inside commits (see checkpointer.ts): for a
   * long-running process whose event loop answers senders. Off by default (CLI commands, tests).
   */
  backgroundCheckpoints?: boolean;
  /** SQLite busy timeout (another connection holds the write lock); default 5000 ms. */
  busyTimeoutMs?: number;
  /** Only read (the `ledger` command): the ledger file need not be writable. */
  inspectOnly?: boolean;
  /** New events wait this long before their first delivery (DeliverySettings.settleSeconds); default 0. */
  settleSeconds?: number;
  /**
   * Open the ledger for this process alone, or throw LedgerInUseError when another has it open: for
   * commands that must not run beside a bridge (renaming a source id).
   */
  exclusive?: boolean;
  /**
   * The command this process runs (`serve`, `sync`): the ledger's process lease is taken before the
   * schema is upgraded, or LedgerInUse thrown while another process holds it (process-lease.ts); given
   * back at close. Without it, a ledger whose lease a live process holds is not upgraded (LedgerInUse).
   */
  lease?: { command: string; logger?: Logger };
  /**
   * Told when this open upgraded the schema (from 0: a file without the ledger's tables), for a command
   * that must say so (`doctor`, the upgrade check of docs/deployment.md §7): an older bridge refuses the
   * ledger from then on.
   */
  onMigrated?: (from: number, to: number) => void;
  /**
   * Told when this open created the ledger (its schema from nothing), in place of the `ledger created at
   * schema N` info line: for a caller that says so itself (the bridge's warning), so that one line says it.
   */
  onCreated?: (schema: number) => void;
  /** Count the rows that become dead through this connection (Ledger.deadRows): serve's metrics. */
  countDeadRows?: boolean;
  /**
   * Count and log the updates after notification recorded through this connection
   * (Ledger.updatesAfterNotification; updates-after-notification.ts): serve's and sync's.
   */
  countUpdatesAfterNotification?: boolean;
  /**
   * Tests only: runs on the connection once it is open and current, before anything else uses it
   * (`PRAGMA max_page_count` stands in for a full disk: SQLite's own SQLITE_FULL).
   */
  onOpen?: (db: Db) => void;
  /** Tests: the free space of the ledger's file system (write-health.ts freeSpaceAt). */
  freeSpace?: (path: string) => { free: number; size: number } | undefined;
}

/** Rows that became dead since the ledger was opened, by source and event type. */
export interface DeadCount {
  sourceId: string;
  eventType: string;
  count: number;
}

/** The meta key holding the queue-wide hold (JSON of `HoldState`), read by the CLI and health. */
export const HOLD_META_KEY = 'delivery.hold';

export interface HoldState {
  reason: string;
  since: number;
  kind: string;
  status?: number;
  /** The row whose attempt revealed the problem; the probe re-tries it. */
  rowId?: number;
  /** OpenCRVS out of reach (delivery/outage.ts), not an operator problem: the probe sends nothing. */
  outage?: boolean;
  /** `unknown-office`: the office OpenCRVS refused (a UUID, no personal data), as the row's payload named it. */
  office?: string;
  /** `unknown-office`: the config keys that routed to that office (`routing.defaultOffice`, …), when known. */
  routingKeys?: string[];
}

/** How the worker whose locks are taken back sends: single-call NOTIFYs before any event id is stored. */
export interface TakeBackOptions {
  singleCall?: boolean;
}

/** Why rows are taken back (takeBackUnfinished): the drain deadline unless said. */
export interface TakeBackWhy extends TakeBackOptions {
  /** The attempt's error message recorded for the row. */
  reason?: string;
  /** When the row is due again, from now (default: at once). */
  retryInMs?: number;
  /** The error kind recorded with `reason` (default `stale-lock`). */
  kind?: string;
  /** With `reason`: the row ends `dead` (its retry budget spent), not due again. */
  dead?: boolean;
}

export interface Ledger {
  readonly path: string;
  /** Subscription notifications stored before they were acknowledged. */
  readonly inbox: LedgerInbox;
  /** The source ids the ledger holds history under; retiring and renaming them. */
  readonly sources: LedgerSources;
  /** What OpenCRVS last answered about location references, one row per reference (migration 015). */
  readonly locationAnswers: LedgerLocationAnswers;
  /** The strikes of records whose context reads get no answer in time (sources/pipeline.ts, slowRecords). */
  readonly slowRecords: LedgerSlowRecords;
  /**
   * Up to `limit` rows whose last reading reached `ref` (`Type/id` as `sourceId` read it) other than by a
   * search keyed on their subject (RecordEventInput.contextReads): whom a change to that record concerns.
   * Not a row an operator dismissed: such a change alone must not bring it back (CONTEXT_READERS_SQL).
   */
  contextReaders(sourceId: string, ref: string, limit: number): ContextReader[];
  /**
   * Up to `limit` distinct refs starting with `prefix` that `sourceId` read as such, after `after` in ref
   * order ('' for the first), read by a row updated in the last CONTEXT_READ_WINDOW_DAYS (a year): the
   * records a source reads in batches because its poll does not list them. `since` (ms, the ledger's clock)
   * replaces now less that window.
   */
  contextReadRefs(sourceId: string, prefix: string, after: string, limit: number, since?: number): string[];
  recordEvent(input: RecordEventInput): RecordedEvent;
  recordSkipped(input: RecordSkippedInput): Recorded;
  /**
   * A record that is no event any more (its evidence was withdrawn): its row, if one is waiting to be
   * sent (pending, failed or dead), becomes skipped with the reason. Inserts nothing, and leaves a row
   * delivered or in flight alone. Returns the row it changed (none when it was so already).
   */
  cancelUnsent(input: RecordSkippedInput): LedgerRow | undefined;
  recordInvalid(input: RecordInvalidInput): Recorded;
  /**
   * Runs `fn` in one immediate (write-locking) transaction; `fn` must be synchronous. Durable
   * (synchronous=FULL) unless `reconciled`: for writes a poll pass would redo if a power cut lost
   * them (see relaxed() in db.ts).
   */
  transaction<T>(fn: () => T, options?: { reconciled?: boolean }): T;
  getCursor(sourceId: string, name: string): string | undefined;
  /** When the cursor was last written, in this machine's epoch ms (the poller's rewoundWatermark). */
  cursorMovedAt(sourceId: string, name: string): number | undefined;
  /** When the ledger first recorded a row of the source (epoch ms): it ran from then at the latest. */
  firstSeenAt(sourceId: string): number | undefined;
  /** The source's skipped rows whose reason contains `containing`, counted per reason. */
  skippedReasons(sourceId: string, containing: string): Array<{ reason: string; count: number }>;
  setCursor(sourceId: string, name: string, value: string): void;
  get(id: number): LedgerRow | undefined;
  findByKey(sourceId: string, eventType: string, subjectKey: string): LedgerRow | undefined;
  list(filter?: ListFilter): LedgerRow[];
  counts(): Array<{ state: LedgerState; eventType: string; count: number }>;
  /** When the row waiting longest (pending, failed or delivering) was last queued (ms), or undefined. */
  oldestWaitingQueuedAt(): number | undefined;
  /** Dead rows other than `ids`, counted in one statement (what a `--dead` replay left for the next one). */
  deadExcept(ids: readonly number[]): number;
  attempts(id: number): AttemptRow[];
  /** What the last mapping of the row left out, and why (field id and reason, never the data). */
  mappingWarnings(id: number): string[];
  setMappingWarnings(id: number, warnings: readonly string[]): void;
  /**
   * The source whose row holds this record's event: `sourceId` if it has one, else the one among
   * `others` (sources reading the same records, see SourcePipeline's sharesRecordsWith) whose row is
   * oldest; undefined when none has a row.
   */
  ownerOf(sourceId: string, others: readonly string[], eventType: string, subjectKey: string): string | undefined;
  /** The last other source whose versions of the record were recorded on this row (read_by_source). */
  readBy(id: number): string | undefined;
  noteReadBy(id: number, sourceId: string): void;
  /**
   * Puts dead rows back in the queue with the payload they hold, a fresh retry budget (attempts, and
   * the age limit from now) and their transactionIds (see sources/replay.ts for the replay that maps
   * them again first). They lose their recheck, so the worker has the source confirm them before
   * sending (a replayed row not rechecked since, see DeliverySettings.recheckAfterSeconds).
   */
  replay(ids: number[] | 'dead'): ReplayResult;
  /**
   * Makes failed rows waiting out their backoff due now (an outage over): the ids made so. Nothing else of
   * the row changes (attempts, payload, transactionIds), so the exactly-once rules of any retry hold; a
   * held queue still holds it. Rows in another state, or already due, are left as they are.
   */
  retryNow(ids: readonly number[]): number[];
  /**
   * Closes dead rows a person decided must never go (a duplicate, a test record): skipped, with
   * `DISMISSED_PREFIX: <reason>`. Nothing is sent or withdrawn in OpenCRVS. Other states are refused.
   */
  dismiss(ids: number[], reason: string): DismissResult;
  /**
   * Undoes `dismiss`: a row still skipped with `DISMISSED_PREFIX` becomes dead again, with the last error
   * and attempts it died with (dismiss keeps them) and no payload (dismiss dropped it: a replay maps the
   * record from its source again). Any other row is refused, a dismissed row a changed record already
   * brought back included.
   */
  undismiss(ids: number[]): UndismissResult;
  getMeta(key: string): string | undefined;
  /** `null` deletes the key. */
  setMeta(key: string, value: string | null): void;
  /** The queue-wide hold, parsed from meta, or undefined. */
  getHold(): HoldState | undefined;
  setHold(hold: HoldState | undefined): void;
  /**
   * Drops the payloads of up to `limit` rows (default 500) delivered longer ago than the retention, in one
   * statement; returns how many. Fewer than `limit`: none is left. Chunks, so that a large backlog does not
   * hold the event loop (and the WAL) for the whole of it: the caller yields between them.
   */
  purgePayloads(now?: number, limit?: number): number;

  // ---- outbox operations, used by the delivery worker ----
  /** Atomically claims up to `limit` due rows (pending/failed, nextRunAt <= now), counting the attempt. */
  claimDue(workerId: string, limit: number, now?: number): LedgerRow[];
  /** Claims one row by id if it is pending/failed, due or not. */
  claimRow(id: number, workerId: string, now?: number): LedgerRow | undefined;
  /**
   * Claims one row by id if it is pending/failed and due (nextRunAt <= now): not one waiting out a
   * recheck's lease (Ledger.deferForRecheck). One statement: a due time read first and a claim after it
   * let another process (a second worker's recheck, a replay) change the row in between.
   */
  claimIfDue(id: number, workerId: string, now?: number): LedgerRow | undefined;
  /** Stores the OpenCRVS event id right after create, in its own write, so a crash resumes at notify. */
  recordCreated(id: number, eventId: string, trackingId: string): void;
  /**
   * Marks the row as its attempt begins a single call, which stores no event id until it answers: a lock
   * taken back then knows the call may be in OpenCRVS, whatever the mode of the process taking it back.
   */
  recordSingleCall(id: number): void;
  /**
   * Ends a claimed attempt; returns the row as settled, or undefined when this worker no longer holds
   * the lock (nothing written).
   */
  settle(input: SettleInput): LedgerRow | undefined;
  /** Gives claimed rows back unstarted: unlocked, attempt not counted. Returns how many. */
  handBack(ids: number[], workerId: string): number;
  /**
   * Gives claimed rows back unsent, like handBack, for the source to confirm first: not due again for
   * `leaseMs`, so the recheck can replace or withdraw them (a crash meanwhile leaves them due after
   * the lease). A row already created in OpenCRVS too: withdrawn, it is only marked, and its attempt asks
   * OpenCRVS before sending (delivery/withdraw.ts). Returns how many.
   */
  deferForRecheck(ids: number[], workerId: string, leaseMs: number): number;
  /**
   * Records the recheck of deferred rows and makes those still waiting due now, in the place in line
   * they had (`nextRunAt` as claimed). Returns how many.
   */
  markRechecked(rows: ReadonlyArray<{ id: number; nextRunAt: number }>): number;
  /**
   * Ends a claimed, withdrawn row that OpenCRVS was found not to hold as notified: skipped with `reason`,
   * its attempt not counted. Undefined when this worker no longer holds the lock.
   */
  withdrawClaimed(id: number, workerId: string, reason: string): LedgerRow | undefined;
  /** The row's withdrawal by the source, if any (read between an attempt's create and its notify). */
  withdrawnReason(id: number): string | null;
  /**
   * Whether a NOTIFY (or single call) of the row's current transactionId generation may be in OpenCRVS
   * with its answer lost (in-doubt.ts): its retries must resend that very copy.
   */
  notifyInDoubt(id: number): boolean;
  /**
   * Whether OpenCRVS may hold a NOTIFY (or single call) of the row from any earlier attempt, of any
   * transactionId generation and either mode, with nothing since showing it does not (in-doubt.ts): such
   * a row is looked up in OpenCRVS before it is skipped, cancelled, or said to have sent nothing.
   */
  notifyMayStand(id: number): boolean;
  /**
   * Whether an attempt of the row since it was last queued (`queued`: this transactionId generation's), or
   * any (`ever`), sent, or may have sent, its NOTIFY (or single call), whatever came of it: an indexed
   * look, not a read of the row's history. By attempt id, not the clock (in-doubt.ts).
   */
  notifySentSince(id: number, since: 'queued' | 'ever'): boolean;
  /**
   * Whether an attempt of the row since it was last queued (`queued`), or any (`ever`), met a failed
   * country-configuration confirmation of its NOTIFY (error kind `confirmation-failed`): an indexed look,
   * as notifySentSince.
   */
  confirmationFailedSince(id: number, since: 'queued' | 'ever'): boolean;
  /**
   * Whether `workerId` still holds the claim it made at `attempts` (read before a NOTIFY: a row taken back,
   * or taken back and claimed again, is not sent on by the earlier attempt).
   */
  holdsLock(id: number, workerId: string, attempts: number): boolean;
  /**
   * A stopping worker's attempts still running at its drain deadline, taken back as a dead worker's are
   * (resetStaleLocks): the attempt recorded, the row due again, the copy in flight restored when its
   * NOTIFY may have gone out. Also an attempt that crashed (a ledger write refused, or a bug), due again
   * after `retryInMs`, or dead (`dead`). Returns how many.
   */
  takeBackUnfinished(ids: number[], workerId: string, options?: TakeBackWhy): number;
  /** Returns rows locked longer than `olderThanMs` to `failed`, due now; returns how many. */
  resetStaleLocks(olderThanMs: number, now?: number, options?: TakeBackOptions): number;
  /**
   * Renews the locks `workerId` holds on rows still in flight (`locked_at` = now): an attempt that
   * outlasts the lock timeout (a slow OpenCRVS, a long `timeoutMs`) is alive, not stale, and must not
   * be sent again in parallel. Returns how many.
   */
  renewLocks(ids: readonly number[], workerId: string, now?: number): number;
  /**
   * Returns rows locked by a worker id starting with `prefix` whose holder `isGone` says has stopped to
   * `failed`, due now, whatever their age: for locks of a process known to be gone. Returns how many.
   */
  resetLocksOf(prefix: string, isGone: (lockedBy: string) => boolean, options?: TakeBackOptions): number;
  /** The earliest `nextRunAt` of a waiting row, or undefined when nothing waits. */
  nextDueAt(): number | undefined;
  /** Rows pending, failed or delivering (the work not finished). */
  outstanding(): number;

  // ---- delivered-pending rows, asked about again until the country configuration decides ----
  /** Up to `limit` rows whose next check is due (oldest first). */
  duePendingChecks(limit: number, now?: number): DuePendingCheck[];
  /**
   * What a check found: decided (delivered, or dead with the reason; an attempt row records it) or not yet
   * (asked again at `nextCheckAt`). Returns the decided row; undefined when still pending, or when the
   * row is no longer delivered-pending under that notify transactionId (nothing written then).
   */
  recordPendingCheck(input: PendingCheckInput): LedgerRow | undefined;
  /** When the next check is due, or undefined when nothing waits for a decision. */
  nextPendingCheckAt(): number | undefined;
  /**
   * Why the file at `path` is no longer the one this connection writes (deleted, or replaced by a
   * restore or a copy), else undefined: SQLite goes on writing to the file it opened, which nothing
   * will read again.
   */
  fileProblem(): string | undefined;
  /**
   * The last storage error (SQLITE_FULL, SQLITE_IOERR…, SQLITE_READONLY) a call on this ledger, or a
   * background checkpoint, met; undefined once proveWritable's write committed a minute or more after it,
   * for SQLITE_FULL with room on the file system as well (write-health.ts). What /readyz `store` reports.
   */
  writeFailure(): WriteFailure | undefined;
  /**
   * While writeFailure() is kept: writes and deletes a scratch value of 64 KiB in one transaction (room a
   * full disk refuses, where a small update still fits), whose commit a minute or more after the last
   * failure clears it (SQLITE_FULL: with 32 MiB free on the file system too, or a tenth of a smaller one). Throws what that write throws. /readyz `store` calls it with its own write.
   */
  proveWritable(): void;
  /**
   * The random id this ledger was given when it was created (migration 014): tells one ledger from
   * another at the same path, or behind another process's admin listener. Undefined before that migration.
   */
  readonly ledgerId: string | undefined;
  /** Rows that became dead through this connection since it opened (LedgerOptions.countDeadRows; else none). */
  deadRows(): DeadCount[];
  /**
   * Updates after notification recorded through this connection since it opened, by source and event type
   * (LedgerOptions.countUpdatesAfterNotification; else none). Each is also logged, by row id, once committed.
   */
  updatesAfterNotification(): DeadCount[];
  close(): void;
}
