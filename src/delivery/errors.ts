// From whatever a delivery attempt threw to what the ledger stores and the retry policy reads.
import type { LedgerError } from '../ledger/index.js';
import { errorMessage } from '../observability/inner-errors.js';
import { type ErrorClassification, isOpenCrvsError } from '../opencrvs/errors.js';
import { withoutValues } from '../opencrvs/scrub.js';

export interface ClassifiedFailure {
  error: LedgerError;
  classification: ErrorClassification;
  retryAfterMs?: number;
  alreadyNotified: boolean;
  /** OpenCRVS itself answered with this error (OpenCrvsError.fromOpenCrvs), not a proxy in front of it. */
  fromOpenCrvs: boolean;
}

export function classifyFailure(err: unknown): ClassifiedFailure {
  if (isOpenCrvsError(err)) {
    const error: LedgerError = {
      classification: err.classification,
      kind: err.kind,
      message: withoutValues(err.opencrvsMessage) + (err.hint ? `: ${err.hint}` : ''),
    };
    if (err.status !== undefined) error.status = err.status;
    return {
      error,
      classification: err.classification,
      retryAfterMs: err.retryAfterMs,
      alreadyNotified: err.alreadyNotified,
      fromOpenCrvs: err.fromOpenCrvs,
    };
  }
  // Not an OpenCRVS answer: a bug or an unexpected runtime failure. Retrying is the safe default (the
  // transactionIds are deterministic) and the retry budget still ends it in `dead` with this message.
  const message = err instanceof Error ? `${err.name}: ${errorMessage(err)}` : String(err);
  return {
    error: { classification: 'retryable', kind: 'internal', message },
    classification: 'retryable',
    alreadyNotified: false,
    fromOpenCrvs: false,
  };
}
