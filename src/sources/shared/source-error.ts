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

/** Causes looked at for a system code: a few wrappings deep, never a cycle. */
const MAX_CAUSE_DEPTH = 5;

/**
 * The system's code for a failed connection (ECONNREFUSED, ENOTFOUND, UND_ERR_CONNECT_TIMEOUT, a
 * certificate problem…), on the error or one of its causes: "network error" alone does not say whether
 * the host, the port or TLS is wrong. Only the code, which holds no data: a cause's message may quote a
 * header.
 */
export function systemCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && current instanceof Error; depth += 1) {
    const code: unknown = Reflect.get(current, 'code');
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code)) return code;
    current = current.cause;
  }
  return undefined;
}

/**
 * "network error (ECONNREFUSED)", or "network error" when no code is known. Node's fetch refuses the
 * ports the Fetch standard calls unsafe (6000, 6665–6669, 10080…) with a bare "bad port" and no code.
 */
export function networkError(err: unknown): string {
  const code = systemCode(err);
  if (code) return `network error (${code})`;
  return causeSaysBadPort(err) ? 'network error (a port fetch refuses as unsafe: use another)' : 'network error';
}

function causeSaysBadPort(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && current instanceof Error; depth += 1) {
    if (current.message === 'bad port') return true;
    current = current.cause;
  }
  return false;
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
