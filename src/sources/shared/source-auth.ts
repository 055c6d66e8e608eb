import type { SourceAuth } from '../../config/types.js';
import type { SecretScrubber } from '../../observability/secret-scrubber.js';
import { callSignal } from './call-signal.js';
import { ResponseTooLargeError, readBodyCapped } from './read-body.js';
import { noAnswer } from './source-error.js';

/**
 * Authorization headers for a source system. OAuth2 client credentials (SMART backend services
 * style, client secret posted in the form body) caches the token until shortly before it expires
 * and shares one refresh between concurrent callers; every token obtained is added to the source's
 * scrubber before it is used, so no error about a call made with it can quote it.
 */
export interface SourceAuthenticator {
  /**
   * The headers of one call. `stops` (the client closing, the caller's deadline) end the wait for a token
   * at once: rejected with the reason of the one that fired.
   */
  headers(...stops: Array<AbortSignal | undefined>): Promise<Record<string, string>>;
  /** Drops a cached token after a 401 so the next call fetches a new one. */
  invalidate(): void;
}

const RENEW_BEFORE_MS = 30_000;

/**
 * The source's OAuth2 token endpoint failed or refused the client. Callers report it as such (a 400 or
 * 401 there is a configuration problem, not a network error, and no retry fixes it).
 */
export class SourceAuthError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SourceAuthError';
  }
}

/**
 * `closing`: the client's own stop, which ends a token request in flight (the callers waiting for it end
 * with their own stops, which include it).
 */
export function createSourceAuthenticator(
  auth: SourceAuth,
  timeoutMs: number,
  secrets: SecretScrubber,
  closing?: AbortSignal,
): SourceAuthenticator {
  switch (auth.type) {
    case 'none':
      return { headers: async () => ({}), invalidate: () => {} };
    case 'bearer':
      return { headers: async () => ({ authorization: `Bearer ${auth.token}` }), invalidate: () => {} };
    case 'pat':
      // DHIS2 personal access tokens use their own scheme.
      return { headers: async () => ({ authorization: `ApiToken ${auth.token}` }), invalidate: () => {} };
    case 'basic': {
      const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
      return { headers: async () => ({ authorization: `Basic ${encoded}` }), invalidate: () => {} };
    }
    case 'oauth2':
      return oauth2ClientCredentials(auth, timeoutMs, secrets, closing);
  }
}

/** A token answer is a small JSON object; a larger one is refused rather than read without end. */
const MAX_TOKEN_ANSWER_BYTES = 64 * 1024;
/** Visible ASCII and spaces: what an Authorization header value may hold. */
const HEADER_SAFE = /^[\x20-\x7e]+$/;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * `promise`, or the reason of the first of `stops` to fire, whichever comes first. The promise goes on
 * (its rejection is still handled here): a token request shared with other callers is not ended for one.
 */
function untilStopped<T>(promise: Promise<T>, stops: Array<AbortSignal | undefined>): Promise<T> {
  const signals = stops.filter((stop): stop is AbortSignal => stop !== undefined);
  if (signals.length === 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const onStop = (stop: AbortSignal) => () => reject(stop.reason);
    const listening = signals.map((stop) => [stop, onStop(stop)] as const);
    const done = () => {
      for (const [stop, listener] of listening) stop.removeEventListener('abort', listener);
    };
    for (const [stop, listener] of listening) {
      if (stop.aborted) listener();
      else stop.addEventListener('abort', listener, { once: true });
    }
    promise.then(resolve, reject).finally(done);
  });
}

function oauth2ClientCredentials(
  auth: SourceAuth,
  timeoutMs: number,
  secrets: SecretScrubber,
  closing: AbortSignal | undefined,
): SourceAuthenticator {
  let cached: { token: string; expiresAt: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (auth.scope) form.set('scope', auth.scope);
    form.set('client_id', auth.clientId ?? '');
    form.set('client_secret', auth.clientSecret ?? '');
    let response: Response;
    // One signal for the call and its body: Node 20's fetch does not end a body still arriving (read-body.ts).
    // The client closing ends it too: at shutdown a hanging token endpoint must not hold the process.
    const call = callSignal(timeoutMs, closing);
    const signal = call.signal;
    let text: string;
    try {
      response = await fetch(auth.tokenUrl ?? '', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal,
      });
      text = await readBodyCapped(response, MAX_TOKEN_ANSWER_BYTES, signal);
    } catch (err) {
      if (err instanceof ResponseTooLargeError)
        throw new SourceAuthError('the token endpoint (auth.tokenUrl) answered with more than 64 kB', false);
      throw new SourceAuthError(`the token endpoint (auth.tokenUrl) could not be reached: ${noAnswer(err)}`, true, {
        cause: err,
      });
    } finally {
      call.done();
    }
    // The message names the status only: the response may echo credentials.
    if (!response.ok) {
      const status = response.status;
      const retryable = status === 429 || status >= 500;
      throw new SourceAuthError(
        retryable
          ? `the token endpoint (auth.tokenUrl) answered HTTP ${status}`
          : `the token endpoint (auth.tokenUrl) refused the client: HTTP ${status} (check auth.clientId, auth.clientSecret and auth.scope)`,
        retryable,
      );
    }
    const body = parseJson(text);
    const token = body && typeof body === 'object' ? (body as Record<string, unknown>).access_token : undefined;
    const expiresIn = body && typeof body === 'object' ? (body as Record<string, unknown>).expires_in : undefined;
    if (typeof token !== 'string' || token.length === 0)
      throw new SourceAuthError('the token endpoint (auth.tokenUrl) returned no access_token', false);
    secrets.add(token, { renewed: true });
    // Sent as it is, the runtime would refuse it with an error that quotes it, read as a network error.
    if (!HEADER_SAFE.test(token)) {
      throw new SourceAuthError(
        'the token endpoint (auth.tokenUrl) returned an access_token that cannot be sent in a header (control characters)',
        false,
      );
    }
    const lifetimeMs = typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn * 1000 : 300_000;
    cached = { token, expiresAt: Date.now() + lifetimeMs };
    return token;
  }

  return {
    async headers(...stops) {
      if (!cached || cached.expiresAt - RENEW_BEFORE_MS <= Date.now()) {
        for (const stop of stops) if (stop?.aborted) throw stop.reason;
        inFlight ??= fetchToken().finally(() => {
          inFlight = undefined;
        });
        await untilStopped(inFlight, stops);
      }
      return { authorization: `Bearer ${cached?.token}` };
    },
    invalidate() {
      cached = undefined;
    },
  };
}
