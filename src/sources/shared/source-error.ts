// A failed call to a source system (FHIR server, DHIS2). Its message names the call and the status,
// never a body or a query string (both may hold personal data); it is what the ledger, the source status
// (/readyz, the admin API), doctor and `sync` show. Its cause is logged with it. A source's secrets reach
// neither: the clients build both through the source's scrubber (source-secrets.ts).

import { scrubbedError } from '../../observability/scrubbed-error.js';
import type { SecretScrubber } from '../../observability/secret-scrubber.js';

/**
 * What a source call error keeps of the failure that caused it: a copy whose every text went through
 * the source's scrubber, which knows its configured secrets and the tokens obtained for it (the runtime
 * quotes a header value it refuses, token and all). None for a JSON parse error, whose message quotes
 * the start of the body ('Unexpected token … "Banda Ruth…" is not valid JSON').
 */
export function loggableCause(err: unknown, secrets: SecretScrubber): unknown {
  return err instanceof SyntaxError ? undefined : scrubbedError(err, secrets);
}

/** `retryable` covers network errors, timeouts, 429 and 5xx. */
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
