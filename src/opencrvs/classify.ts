// One table from an OpenCRVS answer to an OpenCrvsError (docs/opencrvs-api.md, "Errors"). The delivery
// layer acts on `classification` only: retryable → back off, permanent → dead letter with OpenCRVS's
// message, operator → hold the queue (a global problem would otherwise burn every record).
import { errorMessage } from '../observability/inner-errors.js';
import { type ErrorClassification, OpenCrvsError, type OpenCrvsErrorKind } from './errors.js';
import { parseRetryAfter } from './retry-after.js';
import { withoutValues } from './scrub.js';

export interface HttpFailure {
  operation: string;
  status: number;
  /** Parsed JSON when the answer was JSON, else its text (already scrubbed and truncated). */
  body: unknown;
  /**
   * The answer as received, before the values sent were taken out of `body`: only to decide by, never
   * kept in the error. A value we sent that spells one of OpenCRVS's own words (a child named
   * "Notified", a surname "Event", a place "Location") is taken out of those words too, and the error
   * would be read as another (a 409 NOTIFIED as a plain conflict, an unknown event as a wrong URL).
   */
  raw?: unknown;
  retryAfter?: string | null;
  /** The size of the request body sent, in bytes (UTF-8), when there was one. */
  sentBytes?: number;
}

/** What a 413 asks of the operator: which limits there are, and that the record is replayed after. */
function tooLarge(sentBytes: number | undefined): string {
  const size = sentBytes === undefined ? 'the request' : `the request of ${sentBytes.toLocaleString('en')} bytes`;
  return (
    `${size} was refused as too large. OpenCRVS's REST adapter before 2.0 takes at most 100,000 ` +
    'bytes; a proxy in front of OpenCRVS (nginx client_max_body_size, 1 MB by default) may take less. Raise ' +
    'the limit, or map less into the notification (never documents), then replay'
  );
}

// v2.0: "createdAtLocation is required and must be a valid location id", "createdAtLocation must be a
// valid location id"; v1.9: "… must be a valid office id", "createdAtLocation must be an office location".
// Read from the first createdAtLocation of each line only, as /createdAtLocation.*(phrase)/i would match:
// that pattern read the rest of the line again from every createdAtLocation in it (0.9 s for a 64 kB
// message of them, on the event loop).
const OFFICE_FIELD = /createdAtLocation/i;
const OFFICE_PHRASE = /valid (?:location|office) id|must be an office location/i;
// What `.` does not match: the pattern this replaces did not read past the end of a line.
const LINE_END = /[\n\r\u2028\u2029]/;
function namesUnknownOffice(message: string): boolean {
  for (const line of message.split(LINE_END)) {
    const at = line.search(OFFICE_FIELD);
    if (at >= 0 && OFFICE_PHRASE.test(line.slice(at + 'createdAtLocation'.length))) return true;
  }
  return false;
}
// "Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state …". Any state past CREATED says
// a NOTIFY of ours was accepted: an event this client created is a draft no one else sees until it is
// notified, so a registrar who has since declared, validated or registered it (whose answer to us was
// lost) moved it on from our NOTIFY. Dead-lettering it would invite re-entering the birth by hand.
const EVENT_STATE = /cannot be performed on an event in '([A-Z_]+)' state/;
function alreadyNotified(message: string): boolean {
  const state = EVENT_STATE.exec(message)?.[1];
  return state !== undefined && state !== 'CREATED';
}
const EVENT_NOT_FOUND = /event not found/i;
// The calls that go to `opencrvs.eventsUrl` whatever the version: a 404 there without "Event not found"
// is a URL that is not the events API, and the hold's message must say which setting that is.
const EVENTS_API_CALLS = new Set(['createEvent', 'notify', 'createAndNotify', 'probeEvents']);
const WRONG_EVENTS_URL =
  'is opencrvs.eventsUrl the events API? It ends in /api/events (register host) or /events (gateway)';
// OpenCRVS asks the country configuration to confirm each action; a failure there is this 500
// (docs/opencrvs-api.md, "The answer of a NOTIFY" and the confirmation-failed row of "Errors").
// The 2.0 events service has stored the Requested action by then (delivery/attempt.ts).
const CONFIRMATION_FAILED = /unexpected failure from (country config action confirmation|notification) api/i;

/** OpenCRVS's own words: `message` (REST and Hapi bodies), else the OAuth `error` pair, else the text. */
export function messageOf(body: unknown, status: number): string {
  if (typeof body === 'string') return textMessage(body, status);
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const record: Record<string, unknown> = { ...body };
    if (typeof record.message === 'string' && record.message !== '') return record.message;
    if (typeof record.error === 'string') {
      const detail = typeof record.error_description === 'string' ? `: ${record.error_description}` : '';
      return `${record.error}${detail}`;
    }
  }
  return `HTTP ${status}`;
}

/**
 * How much of an answer's message is searched to classify it: OpenCRVS says what went wrong at the start
 * (a field problem list names createdAtLocation in its first entries), and a message of megabytes would
 * hold the event loop for seconds in the patterns below (review: 57 s for a 3.8 MB list).
 */
const MAX_CLASSIFIED_CHARS = 65_536;

// Proxies (nginx in front of OpenCRVS) answer 502–504 with an HTML page: keep its title or text, short.
function textMessage(whole: string, status: number): string {
  // A page's start says what it is; the rest (up to the 1 MB an error answer is read to) is not searched on the
  // event loop. `<[^<>]*>`: a run of `<` without `>` must not make each `<` scan to the end (quadratic).
  const text = whole.slice(0, MAX_CLASSIFIED_CHARS);
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  const plain = (title ?? text.replace(/<[^<>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  if (plain === '') return `HTTP ${status}`;
  return plain.length > 200 ? `${plain.slice(0, 200)}…` : plain;
}

/** A 400 whose message is a JSON-encoded list of field problems yields that list, else undefined. */
export function fieldProblemsOf(message: string): unknown[] | undefined {
  if (!message.trimStart().startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(message);
    return Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether an error answer's body is OpenCRVS's own (docs/opencrvs-api.md, "Errors"): the events service's
 * `{message, code, data}` (`code` tRPC's, upper-case), or the gateway's Hapi `{statusCode, error, message}`.
 * Not a proxy's page in front of it (nginx answers a 413 or a 502 with HTML), nor another JSON.
 */
export function isOpenCrvsErrorBody(body: unknown): boolean {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
  const { message, code, statusCode, error } = body as Record<string, unknown>;
  if (typeof message !== 'string') return false;
  return (
    (typeof code === 'string' && /^[A-Z_]+$/.test(code)) ||
    (typeof statusCode === 'number' && typeof error === 'string')
  );
}

export function classifyHttpFailure(failure: HttpFailure, nowMs: number): OpenCrvsError {
  const { operation, status, body } = failure;
  const fromOpenCrvs = isOpenCrvsErrorBody(failure.raw === undefined ? body : failure.raw);
  const message = messageOf(body, status);
  // Tested against, never stored. A field problem's `value` is what we sent, not OpenCRVS's words.
  // Cut first: the raw answer is as long as the server made it, and the patterns run on the event loop.
  const said =
    failure.raw === undefined ? message : withoutValues(messageOf(failure.raw, status).slice(0, MAX_CLASSIFIED_CHARS));
  const make = (kind: OpenCrvsErrorKind, classification: ErrorClassification, extra: { body?: unknown } = {}) =>
    new OpenCrvsError({ kind, classification, message, status, operation, body, fromOpenCrvs, ...extra });

  if (status === 429 || status === 402 || status === 408 || status >= 500) {
    // 402 is how OpenCRVS's own rate limiter answers; 408 is a server or proxy closing the connection before
    // it had the whole request (RFC 9110 §15.5.9; a proxy giving up on its upstream answers 504).
    const retryAfterMs = parseRetryAfter(failure.retryAfter, nowMs);
    const kind: OpenCrvsErrorKind =
      status === 500 && CONFIRMATION_FAILED.test(said)
        ? 'confirmation-failed'
        : status >= 500
          ? 'server'
          : status === 408
            ? 'timeout'
            : 'rate-limited';
    return new OpenCrvsError({
      kind,
      classification: 'retryable',
      message,
      status,
      operation,
      body,
      retryAfterMs,
      fromOpenCrvs,
    });
  }
  // Redirects are never followed (the token would go wherever they point): a 3xx means the configured
  // URL is not the API's (http instead of https, a login page), which no retry or other record fixes.
  if (status >= 300 && status < 400) return make('config', 'operator');
  switch (status) {
    case 400: {
      if (namesUnknownOffice(said)) return make('unknown-office', 'operator');
      const problems = fieldProblemsOf(message);
      return make('bad-request', 'permanent', problems ? { body: problems } : {});
    }
    case 401:
      return make('unauthorized', 'operator');
    case 403:
      return make('forbidden', 'operator');
    case 404:
      // A missing event is about this record; any other 404 means the events URL is wrong, which
      // would dead-letter every record if treated as permanent.
      if (EVENT_NOT_FOUND.test(said)) return make('not-found', 'permanent');
      // A location lookup on 1.9 goes to the gateway, not to eventsUrl: its callers say what to check.
      return EVENTS_API_CALLS.has(operation)
        ? new OpenCrvsError({
            kind: 'config',
            classification: 'operator',
            message,
            hint: WRONG_EVENTS_URL,
            status,
            operation,
            body,
            fromOpenCrvs,
          })
        : make('config', 'operator');
    case 409:
      if (operation.startsWith('notify') || operation === 'createAndNotify') {
        if (alreadyNotified(said)) return make('already-notified', 'permanent');
      }
      return make('conflict', 'permanent');
    case 413:
      return new OpenCrvsError({
        kind: 'bad-request',
        classification: 'permanent',
        message,
        hint: tooLarge(failure.sentBytes),
        status,
        operation,
        body,
        fromOpenCrvs,
      });
    case 415:
      // We always send exactly `application/json`; a 415 means a proxy rewrote it or a bug here.
      return make('config', 'operator');
    default:
      return make('bad-request', 'permanent');
  }
}

export interface TransportFailureDetail {
  /** e.g. `fetch failed (ECONNRESET: other side closed)`; scrubbed by the caller. */
  description: string;
  timedOut: boolean;
}

/** Flattens a fetch rejection (TypeError with an undici cause chain, or a TimeoutError) into text. */
// undici names its timeouts by phase; fetch-style callers abort with TimeoutError or AbortError.
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function isTimeout(err: Error): boolean {
  const code = 'code' in err && typeof err.code === 'string' ? err.code : '';
  return err.name === 'TimeoutError' || err.name === 'AbortError' || TIMEOUT_CODES.has(code);
}

export function describeTransportFailure(err: unknown): TransportFailureDetail {
  const parts: string[] = [];
  let timedOut = false;
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current; depth++) {
    if (current instanceof Error) {
      if (isTimeout(current)) timedOut = true;
      const code = 'code' in current && typeof current.code === 'string' ? current.code : '';
      // An AggregateError (every address of the host refused) says nothing itself: its inner errors do.
      const text = errorMessage(current);
      parts.push(code && text !== code ? `${code}: ${text}` : text);
      current = current.cause;
    } else {
      parts.push(String(current));
      current = undefined;
    }
  }
  const [head, ...rest] = parts;
  return { description: rest.length ? `${head} (${rest.join('; ')})` : (head ?? 'unknown error'), timedOut };
}
