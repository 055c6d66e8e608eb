// From whatever a delivery attempt threw to what the ledger stores and the retry policy reads.
import type { LedgerError } from '../ledger/index.js';
import { type ErrorClassification, isOpenCrvsError } from '../opencrvs/errors.js';

export interface ClassifiedFailure {
  error: LedgerError;
  classification: ErrorClassification;
  retryAfterMs?: number;
  alreadyNotified: boolean;
}

/**
 * OpenCRVS answers a bad declaration with a JSON-encoded list of field problems that echoes each
 * offending `value` (a name, a date of birth). The ledger keeps the field id and OpenCRVS's message,
 * not the value: it stores no personal data in errors, which outlive the payload.
 */
export function withoutValues(message: string): string {
  if (!message.trimStart().startsWith('[')) return message;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return message;
  }
  if (!Array.isArray(parsed)) return message;
  return JSON.stringify(
    parsed.map((item: unknown) => {
      if (typeof item !== 'object' || item === null) return item;
      const { value: _dropped, ...rest }: Record<string, unknown> = { ...item };
      return rest;
    }),
  );
}

export function classifyFailure(err: unknown): ClassifiedFailure {
  if (isOpenCrvsError(err)) {
    const error: LedgerError = {
      classification: err.classification,
      kind: err.kind,
      message: withoutValues(err.opencrvsMessage),
    };
    if (err.status !== undefined) error.status = err.status;
    return {
      error,
      classification: err.classification,
      retryAfterMs: err.retryAfterMs,
      alreadyNotified: err.alreadyNotified,
    };
  }
  // Not an OpenCRVS answer: a bug or an unexpected runtime failure. Retrying is the safe default (the
  // transactionIds are deterministic) and the retry budget still ends it in `dead` with this message.
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return {
    error: { classification: 'retryable', kind: 'internal', message },
    classification: 'retryable',
    alreadyNotified: false,
  };
}
