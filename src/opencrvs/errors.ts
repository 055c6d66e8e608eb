/**
 * How the delivery layer must react to a failure:
 * - `retryable`: try again later (network error, timeout, 429, 5xx); `retryAfterMs` when the server said so;
 * - `permanent`: this record will never be accepted as sent (400 field problems, 404 event, `Rejected`);
 * - `operator`: a human must fix something global (credentials revoked, scope missing, unknown office):
 *   hold the whole queue rather than burn every record into dead letters.
 */
export type ErrorClassification = 'retryable' | 'permanent' | 'operator';

/** Why the error happened, finer than the classification (for ledgers, metrics and tests). */
export type OpenCrvsErrorKind =
  | 'network'
  | 'timeout'
  | 'rate-limited'
  | 'server'
  | 'bad-request'
  | 'not-found'
  | 'rejected'
  | 'unauthorized'
  | 'forbidden'
  | 'unknown-office'
  | 'already-notified'
  | 'conflict'
  | 'invalid-response'
  | 'config'
  /** OpenCRVS answered a create with an event another client created under the same transactionId. */
  | 'foreign-event'
  /** The country configuration's confirmation of an action failed (500); retried like a 5xx. */
  | 'confirmation-failed';

export interface OpenCrvsErrorInit {
  kind: OpenCrvsErrorKind;
  classification: ErrorClassification;
  /** OpenCRVS's own message (never contains the client secret; see the token client). */
  message: string;
  status?: number;
  /** The parsed response body (JSON when it was JSON, else the text, truncated). */
  body?: unknown;
  retryAfterMs?: number;
  /** The call that failed, e.g. `notify`; never a URL with credentials. */
  operation?: string;
  cause?: unknown;
  /** What the operator should know or do, in the bridge's words (kept apart from OpenCRVS's). */
  hint?: string;
  /**
   * The error answer's body has OpenCRVS's own error shape (classify.ts, isOpenCrvsErrorBody): OpenCRVS
   * itself answered, not a proxy in front of it with its own page (nginx's 413 or 502).
   */
  fromOpenCrvs?: boolean;
}

/** The one error type of the OpenCRVS client. */
export class OpenCrvsError extends Error {
  readonly kind: OpenCrvsErrorKind;
  readonly classification: ErrorClassification;
  readonly status?: number;
  readonly body?: unknown;
  readonly retryAfterMs?: number;
  readonly operation?: string;
  /** The OpenCRVS message as received (for 400s, the JSON-encoded list of field problems). */
  readonly opencrvsMessage: string;
  /** See OpenCrvsErrorInit.hint. */
  readonly hint?: string;
  /** See OpenCrvsErrorInit.fromOpenCrvs; false when the error was made without an error answer. */
  readonly fromOpenCrvs: boolean;

  constructor(init: OpenCrvsErrorInit) {
    super(
      `${init.operation ? `${init.operation}: ` : ''}${init.status ? `HTTP ${init.status}: ` : ''}${init.message}${init.hint ? `: ${init.hint}` : ''}`,
      {
        cause: init.cause,
      },
    );
    this.name = 'OpenCrvsError';
    this.kind = init.kind;
    this.classification = init.classification;
    this.status = init.status;
    this.body = init.body;
    this.retryAfterMs = init.retryAfterMs;
    this.operation = init.operation;
    this.opencrvsMessage = init.message;
    if (init.hint !== undefined) this.hint = init.hint;
    this.fromOpenCrvs = init.fromOpenCrvs ?? false;
  }

  /** 409 on notify: the event is already in NOTIFIED state (by our earlier attempt). */
  get alreadyNotified(): boolean {
    return this.kind === 'already-notified';
  }
}

export function isOpenCrvsError(value: unknown): value is OpenCrvsError {
  return value instanceof OpenCrvsError;
}
