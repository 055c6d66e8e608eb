// A source's Retry-After (a 429's or 503's): the next try waits at least what the server asked when that is
// within sources[].timeoutMs, no longer than one more try may take anyway. A longer one ends the call's tries
// (the error is still retryable: the next pass, the inbox's next round), rather than ask again sooner than
// the server said, or hold a pass for it. Shared by the FHIR and DHIS2 clients.
import type { SourceRetrySettings } from '../../config/types.js';
import { parseRetryAfter } from '../../opencrvs/retry-after.js';

/** Tries per call and the first backoff when neither the caller nor sources[].retry says (the schema's defaults). */
const DEFAULT_ATTEMPTS = 3;
const DEFAULT_RETRY_BASE_MS = 500;

/** A source client's tries per call and first backoff: a caller's own (doctor asks once) over sources[].retry. */
export function callTries(
  own: { attempts?: number; retryBaseMs?: number },
  retry: SourceRetrySettings | undefined,
): { attempts: number; retryBaseMs: number } {
  return {
    attempts: own.attempts ?? retry?.attempts ?? DEFAULT_ATTEMPTS,
    retryBaseMs: own.retryBaseMs ?? retry?.baseDelayMs ?? DEFAULT_RETRY_BASE_MS,
  };
}

/**
 * The longest backoff between two tries of one call, however many `sources[].retry.attempts` double
 * `baseDelayMs`: 10 attempts from 60 s would otherwise wait 4 hours before the last, holding the pass (and a
 * cron `sync --once`) that long. A Retry-After within `timeoutMs` may still ask for longer.
 */
export const MAX_SOURCE_BACKOFF_MS = 60_000;

/** How long a 429 or 503 asks to be left alone, in ms; undefined for another status or no readable header. */
export function retryAfterOf(status: number | undefined, header: string | null | undefined): number | undefined {
  return status === 429 || status === 503 ? parseRetryAfter(header, Date.now()) : undefined;
}

/** The wait before the next try: the backoff, or what the server asked if longer; undefined: try no more. */
export function nextTryDelay(
  backoffMs: number,
  retryAfterMs: number | undefined,
  timeoutMs: number,
): number | undefined {
  const asked = retryAfterMs ?? 0;
  return asked > timeoutMs ? undefined : Math.max(Math.min(backoffMs, MAX_SOURCE_BACKOFF_MS), asked);
}

/** What a failure's message says of a Retry-After: the wait, in whole seconds. */
export function retryAfterHint(retryAfterMs: number | undefined): string {
  return retryAfterMs ? ` (the server asks to wait ${Math.ceil(retryAfterMs / 1000)} s before asking again)` : '';
}
