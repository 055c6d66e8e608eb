// What the admin API shows of a ledger row. Source references, ids, states, errors and tracking ids
// are operational data; the declaration (names, dates of birth) is shown only when the operator turned
// `admin.showPersonalData` on, and so are the values OpenCRVS echoes back in its 400 messages and the
// reasons operators typed when they dismissed a row.

import {
  type AttemptRow,
  countedAttempts,
  DISMISSED_PREFIX,
  isDismissed,
  type LedgerError,
  type LedgerRow,
} from '../../ledger/index.js';
import { withoutValues } from '../../opencrvs/scrub.js';
import type { WriteBackJobView } from './write-back-views.js';

export interface ErrorView {
  classification: string;
  kind: string;
  status?: number;
  message: string;
}

export interface EventListItem {
  id: number;
  sourceId: string;
  eventType: string;
  sourceRef: string;
  subjectKey: string;
  state: string;
  /** Attempts in this budget, those that never reached OpenCRVS included. */
  attempts: number;
  /** Of `attempts`, those that count toward `delivery.maxAttempts` (not the unreached: a gateway's 503, a timeout). */
  countedAttempts: number;
  nextRunAt: number;
  eventId: string | null;
  trackingId: string | null;
  office: string | null;
  facility: string | null;
  lastError: ErrorView | null;
  /** Why the row was skipped; a dismissal's own words only with `showPersonalData` (skipReasonView). */
  skipReason: string | null;
  /** Skipped because an operator dismissed it (`skipReason` says why): the one skip that can be undone. */
  dismissed: boolean;
  firstSeenAt: number;
  updatedAt: number;
  deliveredAt: number | null;
  updatesAfterNotification: number;
}

export interface AttemptView {
  attempt: number;
  workerId: string;
  step: string;
  outcome: string;
  startedAt: number;
  finishedAt: number;
  error: ErrorView | null;
  nextRunAt: number | null;
  /** Never reached OpenCRVS: not counted toward delivery.maxAttempts (the row's countedAttempts). */
  unreached: boolean;
}

export interface EventDetail extends EventListItem {
  sourceVersion: string | null;
  mappingId: string | null;
  transactionIds: { create: string; notify: string; base: string };
  lockedBy: string | null;
  lockedAt: number | null;
  queuedAt: number;
  /** When the source last confirmed the row before its first send (delivery.recheckAfterSeconds). */
  recheckedAt: number | null;
  /** The source withdrew the record while its delivery was under way (see LedgerRow.withdrawnReason). */
  withdrawnReason: string | null;
  createdAt: number;
  payloadHash: string | null;
  /** Whether a payload is still stored (it is purged some time after delivery). */
  payloadStored: boolean;
  updatedAfterNotification: { count: number; lastAt: number | null };
  /** What the mapping left out of the declaration, and why (field id and reason; never the data). */
  mappingWarnings: string[];
  /**
   * Another source of the same DHIS2 programme that read this record since (its enrollment moved into that
   * source's org units): its versions are recorded on this row, never sent as a second event. Null: none.
   */
  readBySource: string | null;
  attemptHistory: AttemptView[];
  /** Whether the tracking id went back to the source record: null when no write-back job exists. */
  writeBack: WriteBackJobView | null;
  /** Present only with `showPersonalData` and while the payload is stored. */
  declaration?: Record<string, unknown>;
  annotation?: Record<string, unknown>;
}

export function errorView(error: LedgerError | null, showPersonalData: boolean): ErrorView | null {
  if (!error) return null;
  const view: ErrorView = {
    classification: error.classification,
    kind: error.kind,
    message: showPersonalData ? error.message : withoutValues(error.message),
  };
  if (error.status !== undefined) view.status = error.status;
  return view;
}

/**
 * A dismissal's reason is free text an operator typed, and may name the patient whatever the page asks:
 * without `showPersonalData` only that there is one, and its length, are shown. Reasons the bridge
 * wrote itself (not an event, merged in the source) are shown as stored.
 */
export function skipReasonView(skipReason: string | null, showPersonalData: boolean): string | null {
  if (showPersonalData || skipReason === null || !isDismissed(skipReason)) return skipReason;
  const length = skipReason.length - `${DISMISSED_PREFIX}: `.length;
  return `${DISMISSED_PREFIX}: (reason hidden, ${length} characters: admin.showPersonalData is off)`;
}

export function listItem(row: LedgerRow, showPersonalData: boolean): EventListItem {
  return {
    id: row.id,
    sourceId: row.sourceId,
    eventType: row.eventType,
    sourceRef: row.sourceRef,
    subjectKey: row.subjectKey,
    state: row.state,
    attempts: row.attempts,
    countedAttempts: countedAttempts(row),
    nextRunAt: row.nextRunAt,
    eventId: row.eventId,
    trackingId: row.trackingId,
    office: row.office,
    facility: row.facility,
    lastError: errorView(row.lastError, showPersonalData),
    skipReason: skipReasonView(row.skipReason, showPersonalData),
    dismissed: row.state === 'skipped' && isDismissed(row.skipReason),
    firstSeenAt: row.firstSeenAt,
    updatedAt: row.updatedAt,
    deliveredAt: row.deliveredAt,
    updatesAfterNotification: row.updatesAfterNotification,
  };
}

function attemptView(attempt: AttemptRow, showPersonalData: boolean): AttemptView {
  return {
    attempt: attempt.attempt,
    workerId: attempt.workerId,
    step: attempt.step,
    outcome: attempt.outcome,
    startedAt: attempt.startedAt,
    finishedAt: attempt.finishedAt,
    error: errorView(attempt.error, showPersonalData),
    nextRunAt: attempt.nextRunAt,
    unreached: attempt.unreached,
  };
}

export function eventDetail(
  row: LedgerRow,
  attempts: AttemptRow[],
  showPersonalData: boolean,
  writeBack: WriteBackJobView | null,
  mappingWarnings: string[] = [],
  readBySource: string | null = null,
): EventDetail {
  const detail: EventDetail = {
    ...listItem(row, showPersonalData),
    sourceVersion: row.sourceVersion,
    mappingId: row.mappingId,
    transactionIds: { create: row.createTransactionId, notify: row.notifyTransactionId, base: row.baseTransactionId },
    lockedBy: row.lockedBy,
    lockedAt: row.lockedAt,
    queuedAt: row.queuedAt,
    recheckedAt: row.recheckedAt,
    withdrawnReason: row.withdrawnReason,
    createdAt: row.createdAt,
    payloadHash: row.payloadHash,
    payloadStored: row.payload !== null,
    updatedAfterNotification: { count: row.updatesAfterNotification, lastAt: row.updatedAfterNotificationAt },
    mappingWarnings,
    readBySource,
    attemptHistory: attempts.map((attempt) => attemptView(attempt, showPersonalData)),
    writeBack,
  };
  if (showPersonalData && row.payload) {
    detail.declaration = row.payload.declaration;
    if (row.payload.annotation) detail.annotation = row.payload.annotation;
  }
  return detail;
}
