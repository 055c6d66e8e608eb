// From SQLite rows to the ledger's types. The columns are ours, but the payload is JSON text: it is
// checked on the way out rather than trusted.

import { isObject } from '../util/is-object.js';
import {
  type AttemptOutcome,
  type AttemptRow,
  LEDGER_STATES,
  type LedgerError,
  type LedgerErrorClassification,
  type LedgerPayload,
  type LedgerRow,
  type LedgerState,
} from './types.js';

export interface SqlLedgerRow {
  id: number;
  source_id: string;
  event_type: string;
  subject_key: string;
  source_ref: string;
  source_version: string | null;
  mapping_id: string | null;
  state: string;
  attempts: number;
  next_run_at: number;
  locked_by: string | null;
  locked_at: number | null;
  base_transaction_id: string;
  create_transaction_id: string;
  notify_transaction_id: string;
  requeues: number;
  office: string | null;
  facility: string | null;
  payload: string | null;
  payload_hash: string | null;
  event_id: string | null;
  tracking_id: string | null;
  last_error_classification: string | null;
  last_error_kind: string | null;
  last_error_status: number | null;
  last_error_message: string | null;
  first_seen_at: number;
  queued_at: number;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
  updated_after_notification_at: number | null;
  updates_after_notification: number;
  skip_reason: string | null;
  rechecked_at: number | null;
  withdrawn_reason: string | null;
  unreached_attempts: number;
}

export interface SqlAttemptRow {
  id: number;
  row_id: number;
  attempt: number;
  worker_id: string;
  step: string;
  outcome: string;
  started_at: number;
  finished_at: number;
  error_classification: string | null;
  error_kind: string | null;
  error_status: number | null;
  error_message: string | null;
  next_run_at: number | null;
  unreached: number;
}

const CLASSIFICATIONS: readonly string[] = ['retryable', 'permanent', 'operator'];
const OUTCOMES: readonly string[] = ['delivered', 'delivered-pending', 'retry', 'dead', 'held', 'abandoned'];

function isState(value: string): value is LedgerState {
  return (LEDGER_STATES as readonly string[]).includes(value);
}

function isClassification(value: string): value is LedgerErrorClassification {
  return CLASSIFICATIONS.includes(value);
}

function isOutcome(value: string): value is AttemptOutcome {
  return OUTCOMES.includes(value);
}

/** Parses a stored payload; a damaged one reads as null (the worker then dead-letters the row). */
export function parsePayload(text: string | null): LedgerPayload | null {
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return payloadFrom(value);
}

/** A payload as the ledger returns it: its known fields, checked; null when it is none. */
export function payloadFrom(value: unknown): LedgerPayload | null {
  if (!isObject(value) || !isObject(value.declaration) || typeof value.office !== 'string') return null;
  const payload: LedgerPayload = { declaration: value.declaration, office: value.office };
  if (typeof value.facility === 'string') payload.facility = value.facility;
  if (value.officeFromRecord === true) payload.officeFromRecord = true;
  if (typeof value.facilityUnchecked === 'string') payload.facilityUnchecked = value.facilityUnchecked;
  if (typeof value.officeUnchecked === 'string') payload.officeUnchecked = value.officeUnchecked;
  if (isObject(value.annotation)) payload.annotation = value.annotation;
  return payload;
}

function errorOf(
  classification: string | null,
  kind: string | null,
  status: number | null,
  message: string | null,
): LedgerError | null {
  if (classification === null || !isClassification(classification)) return null;
  const error: LedgerError = { classification, kind: kind ?? 'unknown', message: message ?? '' };
  if (status !== null) error.status = status;
  return error;
}

export function toLedgerRow(r: SqlLedgerRow): LedgerRow {
  if (!isState(r.state)) throw new Error(`ledger row ${r.id} has an unknown state`);
  return {
    id: r.id,
    sourceId: r.source_id,
    eventType: r.event_type,
    subjectKey: r.subject_key,
    sourceRef: r.source_ref,
    sourceVersion: r.source_version,
    mappingId: r.mapping_id,
    state: r.state,
    attempts: r.attempts,
    nextRunAt: r.next_run_at,
    lockedBy: r.locked_by,
    lockedAt: r.locked_at,
    baseTransactionId: r.base_transaction_id,
    createTransactionId: r.create_transaction_id,
    notifyTransactionId: r.notify_transaction_id,
    requeues: r.requeues,
    office: r.office,
    facility: r.facility,
    payload: parsePayload(r.payload),
    payloadHash: r.payload_hash,
    eventId: r.event_id,
    trackingId: r.tracking_id,
    lastError: errorOf(r.last_error_classification, r.last_error_kind, r.last_error_status, r.last_error_message),
    firstSeenAt: r.first_seen_at,
    queuedAt: r.queued_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deliveredAt: r.delivered_at,
    updatedAfterNotificationAt: r.updated_after_notification_at,
    updatesAfterNotification: r.updates_after_notification,
    skipReason: r.skip_reason,
    recheckedAt: r.rechecked_at,
    withdrawnReason: r.withdrawn_reason,
    unreachedAttempts: r.unreached_attempts,
  };
}

/**
 * The columns of `ledger_rows`, in the order `ledgerRowFromValues` reads them. The worker's statements
 * return exactly these as an array (better-sqlite3 `raw()`): building a 37-property object per row in
 * the driver costs about as much as the SQLite work of a claim, an array a fraction of it.
 */
export const LEDGER_ROW_COLUMNS = `id, source_id, event_type, subject_key, source_ref, source_version, mapping_id, state,
  attempts, next_run_at, locked_by, locked_at, base_transaction_id, create_transaction_id, notify_transaction_id,
  requeues, office, facility, payload, payload_hash, event_id, tracking_id, last_error_classification,
  last_error_kind, last_error_status, last_error_message, first_seen_at, queued_at, created_at, updated_at,
  delivered_at, updated_after_notification_at, updates_after_notification, skip_reason, rechecked_at, withdrawn_reason,
  unreached_attempts`;

/** LEDGER_ROW_COLUMNS with NULL in the payload's place: for a caller that holds the payload already. */
export const LEDGER_ROW_COLUMNS_NO_PAYLOAD = LEDGER_ROW_COLUMNS.replace(/\bpayload,/, 'NULL,');

function num(v: unknown): number {
  if (typeof v !== 'number') throw new Error('ledger row: expected a number column');
  return v;
}

function numOrNull(v: unknown): number | null {
  return v === null ? null : num(v);
}

function text(v: unknown): string {
  if (typeof v !== 'string') throw new Error('ledger row: expected a text column');
  return v;
}

function textOrNull(v: unknown): string | null {
  return v === null ? null : text(v);
}

/** A row selected as `LEDGER_ROW_COLUMNS` in raw (array) mode. */
export function ledgerRowFromValues(v: unknown[]): LedgerRow {
  return toLedgerRow({
    id: num(v[0]),
    source_id: text(v[1]),
    event_type: text(v[2]),
    subject_key: text(v[3]),
    source_ref: text(v[4]),
    source_version: textOrNull(v[5]),
    mapping_id: textOrNull(v[6]),
    state: text(v[7]),
    attempts: num(v[8]),
    next_run_at: num(v[9]),
    locked_by: textOrNull(v[10]),
    locked_at: numOrNull(v[11]),
    base_transaction_id: text(v[12]),
    create_transaction_id: text(v[13]),
    notify_transaction_id: text(v[14]),
    requeues: num(v[15]),
    office: textOrNull(v[16]),
    facility: textOrNull(v[17]),
    payload: textOrNull(v[18]),
    payload_hash: textOrNull(v[19]),
    event_id: textOrNull(v[20]),
    tracking_id: textOrNull(v[21]),
    last_error_classification: textOrNull(v[22]),
    last_error_kind: textOrNull(v[23]),
    last_error_status: numOrNull(v[24]),
    last_error_message: textOrNull(v[25]),
    first_seen_at: num(v[26]),
    queued_at: num(v[27]),
    created_at: num(v[28]),
    updated_at: num(v[29]),
    delivered_at: numOrNull(v[30]),
    updated_after_notification_at: numOrNull(v[31]),
    updates_after_notification: num(v[32]),
    skip_reason: textOrNull(v[33]),
    rechecked_at: numOrNull(v[34]),
    withdrawn_reason: textOrNull(v[35]),
    unreached_attempts: num(v[36]),
  });
}

export function toAttemptRow(r: SqlAttemptRow): AttemptRow {
  return {
    id: r.id,
    rowId: r.row_id,
    attempt: r.attempt,
    workerId: r.worker_id,
    step: r.step,
    outcome: isOutcome(r.outcome) ? r.outcome : 'abandoned',
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    error: errorOf(r.error_classification, r.error_kind, r.error_status, r.error_message),
    nextRunAt: r.next_run_at,
    unreached: r.unreached === 1,
  };
}

/** Column values for a LedgerError (all null when there is none). */
export function errorColumns(error: LedgerError | null): {
  classification: string | null;
  kind: string | null;
  status: number | null;
  message: string | null;
} {
  return {
    classification: error?.classification ?? null,
    kind: error?.kind ?? null,
    status: error?.status ?? null,
    message: error ? truncate(error.message, MAX_ERROR_MESSAGE) : null,
  };
}

/** Error messages are OpenCRVS's text; 4 kB keeps field-problem lists readable and rows small. */
const MAX_ERROR_MESSAGE = 4096;

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
