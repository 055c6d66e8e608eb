/**
 * A failed call to a source system (FHIR server, DHIS2). `retryable` covers network errors,
 * timeouts, 429 and 5xx. Messages name the call and the status, never a body or a query string:
 * both may hold personal data.
 */
/**
 * A failure worth keeping as an error's cause (logged with it): a JSON parse error is not, since its
 * message quotes the start of the body ('Unexpected token … "Banda Ruth…" is not valid JSON').
 */
export function loggableCause(err: unknown): unknown {
  return err instanceof SyntaxError ? undefined : err;
}

export class SourceCallError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SourceCallError';
  }
}
