import { fixedSecret, secretOf } from '../../config/secret-files.js';
import type { SourceAuth } from '../../config/types.js';
import type { Logger } from '../../observability/logger.js';
import type { SecretScrubber } from '../../observability/secret-scrubber.js';
import { callSignal } from '../../util/call-signal.js';
import { heldRefusal } from '../../util/held-refusal.js';
import { isRedirect, NO_REDIRECT, redirectOrigin } from '../../util/redirect.js';
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
   * at once: rejected with the reason of the one that fired. While an OAuth2 token endpoint's redirect,
   * refusal of the client or unusable answer stands (30 s, doubling to 5 min, or until the client secret
   * file changes), rejected at once with it, not asked again.
   */
  headers(...stops: Array<AbortSignal | undefined>): Promise<Record<string, string>>;
  /**
   * After a 401: drops a cached token so the next call fetches a new one, and looks at once at a secret
   * file that may have been rotated (the next call sends its new value).
   */
  invalidate(): void;
  /**
   * An OAuth2 token endpoint's answer is held (a refused client secret): each call fails at once with it,
   * asking nobody, until its backoff ends or the secret file changes. What failed for it is not to be kept.
   */
  held(): boolean;
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
  logger?: Logger,
): SourceAuthenticator {
  switch (auth.type) {
    case 'none':
      return { headers: async () => ({}), invalidate: () => {}, held: () => false };
    case 'bearer':
    case 'pat': {
      // DHIS2 personal access tokens use their own scheme.
      const scheme = auth.type === 'pat' ? 'ApiToken' : 'Bearer';
      const token = liveSecret(auth, 'token', secrets, logger);
      return {
        headers: async () => ({ authorization: `${scheme} ${token.current()}` }),
        invalidate: token.refresh,
        held: () => false,
      };
    }
    case 'basic': {
      const password = liveSecret(auth, 'password', secrets, logger, (value) =>
        // The header it goes out in: the encoded pair hides the password too (source-secrets.ts).
        secrets.add(Buffer.from(`${auth.username ?? ''}:${value}`).toString('base64'), { rotated: true }),
      );
      return {
        headers: async () => ({
          authorization: `Basic ${Buffer.from(`${auth.username}:${password.current()}`).toString('base64')}`,
        }),
        invalidate: password.refresh,
        held: () => false,
      };
    }
    case 'oauth2':
      return oauth2ClientCredentials(auth, timeoutMs, secrets, closing, logger);
  }
}

/**
 * `auth[key]` as it is now (config/secret-files.ts: a `…File` secret follows its file); a new value is
 * added to the source's scrubber before it is used. `refresh` looks at the file at once (after a refusal)
 * and says whether a new value was read.
 */
function liveSecret(
  auth: SourceAuth,
  key: 'token' | 'password' | 'clientSecret',
  secrets: SecretScrubber,
  logger: Logger | undefined,
  onNew?: (value: string) => void,
): { current(): string; refresh(): boolean } {
  const secret = secretOf(auth, key, logger ? { logger } : {}) ?? fixedSecret('');
  let last = secret.current();
  const current = () => {
    const value = secret.current();
    if (value !== last) {
      // Rotated: kept among the last few rotations (years of them do not grow the list), apart from the
      // tokens, whose renewals would otherwise push a client secret still in use out of the scrubber.
      secrets.add(value, { rotated: true });
      onNew?.(value);
      last = value;
    }
    return value;
  };
  return {
    current,
    refresh: () => {
      const changed = secret.refresh();
      current();
      return changed;
    },
  };
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
  logger: Logger | undefined,
): SourceAuthenticator {
  const clientSecret = liveSecret(auth, 'clientSecret', secrets, logger);
  let cached: { token: string; expiresAt: number } | undefined;
  let inFlight: Promise<string> | undefined;
  /**
   * The token endpoint's last redirect, refusal of the client or unusable answer, standing for its answer
   * until its backoff ends or the client secret in its file changes (util/held-refusal.ts). Asking again at
   * once meets the same answer: without this each call of a pass (every resource type a FHIR pass searches
   * goes on after another failed) sent its own token request, six in one `sync --once`, and every pass after
   * it, flooding the IdP's log with failed logins that may lock the client out.
   */
  const held = heldRefusal<string>(clientSecret, () =>
    logger?.info('the client secret file has changed: asking the source token endpoint again'),
  );

  /** Holds `message` as the endpoint's answer to a request that sent `secret`. */
  function hold(message: string, secret: string): SourceAuthError {
    // Redirects, refusals of the client (a 4xx but 408, 425, 429) and unusable answers.
    held.hold(message, secret);
    return new SourceAuthError(message, false);
  }

  /** The held answer, while it stands, as a call meets it; undefined when the endpoint may be asked. */
  function stillHeld(): SourceAuthError | undefined {
    const standing = held.standing();
    if (!standing) return undefined;
    const left = Math.max(1, Math.ceil((standing.until - Date.now()) / 1000));
    return new SourceAuthError(`${standing.answer} (asked again in ${left} s)`, false);
  }

  async function fetchToken(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (auth.scope) form.set('scope', auth.scope);
    form.set('client_id', auth.clientId ?? '');
    const secret = clientSecret.current();
    form.set('client_secret', secret);
    let response: Response;
    // One signal for the call and its body: Node 20's fetch does not end a body still arriving (read-body.ts).
    // The client closing ends it too: at shutdown a hanging token endpoint must not hold the process.
    const call = callSignal(timeoutMs, closing);
    const signal = call.signal;
    let text = '';
    let redirectedTo: string | undefined;
    try {
      // Never followed (redirect.ts): a 307 or 308 would post the client secret wherever it points.
      response = await fetch(auth.tokenUrl ?? '', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal,
        redirect: NO_REDIRECT,
      });
      if (isRedirect(response.status)) {
        redirectedTo = redirectOrigin(response.headers.get('location'), auth.tokenUrl ?? '');
        await response.body?.cancel().catch(() => undefined);
      } else text = await readBodyCapped(response, MAX_TOKEN_ANSWER_BYTES, signal);
    } catch (err) {
      if (err instanceof ResponseTooLargeError)
        throw hold('the token endpoint (auth.tokenUrl) answered with more than 64 kB', secret);
      throw new SourceAuthError(`the token endpoint (auth.tokenUrl) could not be reached: ${noAnswer(err)}`, true, {
        cause: err,
      });
    } finally {
      call.done();
    }
    if (redirectedTo !== undefined) {
      throw hold(
        `the token endpoint (auth.tokenUrl) answered a redirect (HTTP ${response.status}) to ${redirectedTo}, which is not followed: set auth.tokenUrl to the final address`,
        secret,
      );
    }
    // The message names the status only: the response may echo credentials.
    if (!response.ok) {
      const status = response.status;
      // 408 (timed out at the endpoint or a proxy), 425 and 429 ask again, as source-error.ts and the OpenCRVS
      // client take them: not a refusal of the client.
      if (status === 408 || status === 425 || status === 429 || status >= 500)
        throw new SourceAuthError(`the token endpoint (auth.tokenUrl) answered HTTP ${status}`, true);
      const refusal = hold(
        `the token endpoint (auth.tokenUrl) refused the client: HTTP ${status} (check auth.clientId, auth.clientSecret and auth.scope)`,
        secret,
      );
      // A client secret rotated in its file since it was sent: the call's next attempt sends the new one
      // (stillHeld lets it through).
      clientSecret.refresh();
      if (clientSecret.current() === secret) throw refusal;
      throw new SourceAuthError(
        `${refusal.message}; the client secret file has changed, asking again with its new value`,
        true,
      );
    }
    const body = parseJson(text);
    const token = body && typeof body === 'object' ? (body as Record<string, unknown>).access_token : undefined;
    const expiresIn = body && typeof body === 'object' ? (body as Record<string, unknown>).expires_in : undefined;
    if (typeof token !== 'string' || token.length === 0)
      throw hold('the token endpoint (auth.tokenUrl) returned no access_token', secret);
    secrets.add(token, { renewed: true });
    // Sent as it is, the runtime would refuse it with an error that quotes it, read as a network error.
    if (!HEADER_SAFE.test(token)) {
      throw hold(
        'the token endpoint (auth.tokenUrl) returned an access_token that cannot be sent in a header (control characters)',
        secret,
      );
    }
    const lifetimeMs = typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn * 1000 : 300_000;
    cached = { token, expiresAt: Date.now() + lifetimeMs };
    held.clear();
    return token;
  }

  return {
    async headers(...stops) {
      if (!cached || cached.expiresAt - RENEW_BEFORE_MS <= Date.now()) {
        for (const stop of stops) if (stop?.aborted) throw stop.reason;
        // Not while a token request is in flight: its answer is newer than the one held.
        const standing = inFlight ? undefined : stillHeld();
        if (standing) throw standing;
        inFlight ??= fetchToken().finally(() => {
          inFlight = undefined;
        });
        await untilStopped(inFlight, stops);
      }
      return { authorization: `Bearer ${cached?.token}` };
    },
    invalidate() {
      cached = undefined;
      clientSecret.refresh();
    },
    held: () => held.holds(),
  };
}
