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

/** Causes looked at: a few wrappings deep, never a cycle. */
const MAX_CAUSE_DEPTH = 5;

/** The error and the errors it was caused by, outermost first. */
function* causes(err: unknown): Generator<Error> {
  let current: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && current instanceof Error; depth += 1) {
    yield current;
    current = current.cause;
  }
}

/**
 * The system's code for a failed connection (ECONNREFUSED, ENOTFOUND, UND_ERR_CONNECT_TIMEOUT, a
 * certificate problem…), on the error or one of its causes: "network error" alone does not say whether
 * the host, the port or TLS is wrong. Only the code, which holds no data: a cause's message may quote a
 * header.
 */
export function systemCode(err: unknown): string | undefined {
  for (const cause of causes(err)) {
    const code: unknown = Reflect.get(cause, 'code');
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code)) return code;
  }
  return undefined;
}

/**
 * "network error (ECONNREFUSED)", or "network error" when no code is known. Node's fetch refuses the
 * ports the Fetch standard calls unsafe (6000, 6665–6669, 10080…) with a bare "bad port" and no code.
 */
function networkError(err: unknown): string {
  const code = systemCode(err);
  if (code) return `network error (${code})`;
  const badPort = [...causes(err)].some((cause) => cause.message === 'bad port');
  return badPort ? 'network error (a port fetch refuses as unsafe: use another)' : 'network error';
}

/** A call that got no answer: "timeout" when its deadline cut it off, else the network error. */
export function noAnswer(err: unknown): string {
  const name = typeof err === 'object' && err !== null ? Reflect.get(err, 'name') : undefined;
  return name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : networkError(err);
}

/** A page from something in front of the source, not its answer (SourceCallError.foreign). */
export function isForeign(err: unknown): err is SourceCallError {
  return err instanceof SourceCallError && err.foreign;
}

/**
 * The source answered this call, with an error that may concern the record asked for rather than the
 * source: a 403 (a record outside the user's search scope or sharing), a 400, a 5xx it kept giving through
 * the client's retries (one corrupt record); or the client refused the record's id unasked (badId). Not a
 * refused credential (401, 407), a rate limit (429), a page that is not the source's (a proxy's 404 or
 * 403), no answer at all, nor a bridge that is stopping: those concern every call. Nor no answer in
 * time, whether the client's deadline ran out or a gateway in front of the source gave up first (a 504:
 * an nginx whose proxy_read_timeout is shorter than sources[].timeoutMs): that may concern one record
 * too, but is told apart over several evaluations (noAnswerInTime), never at once. Only a hint:
 * SourcePipeline confirms it by reading something else the same way first.
 */
export function mayConcernOneRecord(err: unknown): boolean {
  if (err instanceof SourceCallError && err.badId) return true;
  if (!(err instanceof SourceCallError) || err.status === undefined || err.foreign || err.timedOut) return false;
  return ![401, 407, 408, 429, 504].includes(err.status);
}

/**
 * The source gave no answer in time, through every try: its client's deadline ran out, or a gateway in
 * front of it answered 504 (timedOut covers both). A record whose context is too large to search in time,
 * or a source too slow for everything. Not mayConcernOneRecord: SourcePipeline tells the two apart over
 * several evaluations (see its slow records).
 */
export function noAnswerInTime(err: unknown): boolean {
  return err instanceof SourceCallError && err.timedOut;
}

/** `retryable` covers network errors, timeouts, 408, 429 and 5xx. */
export class SourceCallError extends Error {
  /**
   * No answer in time (sources[].timeoutMs ran out, or a gateway in front of the source gave up: 504): a
   * smaller question may still be answered (see CachingFetcher.prefetch). A 504 says so by its status;
   * the clients tell their own deadline running out (`timedOut` option).
   */
  timedOut: boolean;

  /**
   * The answer did not come from the source system: a 404 page from a proxy or gateway in front of it (a
   * route missing while it reloads), or a 403 page from a proxy or firewall (a WAF rule, an IP allow-list).
   * It says nothing about the record: neither that it is gone or refused, nor that the source is down.
   * Retried like a 5xx; but a 400 page (a servlet container's or proxy's refusal of a request too long:
   * FhirSourceClient) is not: the same request gets the same page.
   */
  readonly foreign: boolean;
  /**
   * The bridge ended the call itself (it is stopping, or the caller's deadline passed): not retried now,
   * yet it says nothing about the source or the record, so nothing is given up for it.
   */
  readonly cutOff: boolean;
  /**
   * Nothing was sent: the id of the record asked for is no id of the source (a DHIS2 "uid" that is not
   * one, `..` among them, which a URL resolves to another path). It concerns that record alone, and asking
   * again changes nothing.
   */
  readonly badId: boolean;
  /** How long the server asked to be left alone (Retry-After of a 429 or 503), in ms: see retry-after.ts. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
    options?: {
      cause?: unknown;
      foreign?: boolean;
      cutOff?: boolean;
      badId?: boolean;
      timedOut?: boolean;
      retryAfterMs?: number | undefined;
    },
  ) {
    super(message, options);
    this.name = 'SourceCallError';
    this.foreign = options?.foreign === true;
    this.cutOff = options?.cutOff === true;
    this.timedOut = options?.timedOut === true || status === 504;
    this.badId = options?.badId === true;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The one of several failed reads to throw for them all (a recheck, an inbox round): a page that is not
 * the source's own (a proxy's, `foreign`) first, since its rows must wait rather than go out as recorded;
 * else the first.
 */
export function failureToThrow(failures: readonly unknown[]): unknown {
  return failures.find(isForeign) ?? failures[0];
}
