// Access tokens for a system ("Health") client: client credentials in the query string (the only
// form every version from 1.4 to 2.0 reads), no expires_in and no refresh token, so expiry comes from
// the JWT's `exp`. One request in flight at a time: concurrent callers share it.
import type { Secret } from '../config/secret-files.js';
import type { Logger } from '../observability/logger.js';
import type { SecretScrubber } from '../observability/secret-scrubber.js';
import { type Held, heldRefusal } from '../util/held-refusal.js';
import { isRedirect, redirectOrigin } from '../util/redirect.js';
import { classifyHttpFailure, messageOf } from './classify.js';
import { OpenCrvsError } from './errors.js';
import { errorBodyOf, exchange, type Transport } from './http.js';
import { readJwtClaims, scopesOf } from './jwt.js';
import { schemaProblem, validateTokenResponse } from './schemas.js';

/** A token issued (`iat`) this far from our clock says the clocks disagree: worth an operator's look. */
const CLOCK_SKEW_WARN_MS = 60_000;
/** After a failed renewal the current (unexpired) token is used, and renewal tried again within these bounds. */
const RENEW_RETRY_MAX_MS = 30_000;
const RENEW_RETRY_MIN_MS = 1_000;

export interface AccessToken {
  value: string;
  /** Milliseconds since the epoch; Infinity for a static token without a readable `exp`. */
  expiresAt: number;
  /** When to fetch the next one (before `expiresAt`). */
  renewAt: number;
  scopes: string[];
  /**
   * The token's `sub`: the id OpenCRVS records as `createdBy` on what this client creates (undefined when
   * the token does not say).
   */
  subject?: string;
}

export interface TokenSource {
  /**
   * A token for a call: the cached one until its renewal is due; when a renewal fails for a passing
   * reason (network, timeout, 5xx) the cached one while it has not expired.
   */
  get(): Promise<AccessToken>;
  /**
   * Asks the token endpoint now (shared with a renewal in flight) and fails when it fails, even while the
   * cached token is still valid: proves the endpoint and the credentials work (readiness). After a refusal
   * that does not pass by itself (401 invalid_client) the endpoint is not asked again until its backoff
   * ends (30 s, doubling to 5 minutes): meanwhile this and every call fail at once with that refusal.
   */
  fresh(): Promise<AccessToken>;
  /** Drops `token` if it is still the cached one (after a 401); returns whether a new one can be fetched. */
  invalidate(token: AccessToken): boolean;
  /** Tokens obtained from the token endpoint so far (the first one included). */
  renewals(): number;
  /**
   * The endpoint's refusal that stands now, as `fresh()` would fail with it without asking: while its backoff
   * runs and the secret refused is still the one in use; undefined otherwise (then `fresh()` asks). Readiness
   * asks it on every request.
   */
  refusal(): OpenCrvsError | undefined;
  clear(): void;
}

/**
 * A token given in the configuration: nothing to renew, so a 401 is final, unless its file
 * (`accessTokenFile`) now holds another one.
 */
export function staticTokenSource(accessToken: Secret, scrubber?: SecretScrubber): TokenSource {
  let token: AccessToken | undefined;
  const current = (): AccessToken => {
    const value = accessToken.current();
    if (token?.value === value) return token;
    // A value read anew from its file (the first one is the configured one, kept for good: client.ts).
    scrubber?.add(value, { rotated: true });
    const claims = readJwtClaims(value);
    const expiresAt = claims ? claims.exp * 1000 : Number.POSITIVE_INFINITY;
    token = {
      value,
      expiresAt,
      renewAt: expiresAt,
      scopes: claims ? scopesOf(claims) : [],
      ...(claims?.sub ? { subject: claims.sub } : {}),
    };
    return token;
  };
  return {
    get: async () => current(),
    fresh: async () => current(),
    invalidate: (refused) => {
      accessToken.refresh();
      return accessToken.current() !== refused.value;
    },
    renewals: () => 0,
    refusal: () => undefined,
    clear: () => {},
  };
}

export interface ClientCredentials {
  tokenUrl: string;
  clientId: string;
  /** Followed in its file (`clientSecretFile`): a rotated secret is used as soon as it is read. */
  clientSecret: Secret;
  renewBeforeSeconds: number;
}

export function clientCredentialsTokenSource(
  credentials: ClientCredentials,
  transport: Transport,
  logger: Logger,
  now: () => number,
): TokenSource {
  let cached: AccessToken | undefined;
  let inflight: Promise<AccessToken> | undefined;
  let obtained = 0;
  /**
   * The endpoint's last refusal that does not pass by itself, standing for its answer (util/held-refusal.ts).
   * Without it every call (each delivery, location lookup, pending check, readiness check) sent its own
   * token request with the wrong secret, hammering the auth service, which may lock the client out.
   */
  const refused = heldRefusal<OpenCrvsError>(
    credentials.clientSecret,
    () => logger.info('the client secret file has changed: asking the OpenCRVS token endpoint again'),
    now,
  );

  async function request(secret: string): Promise<AccessToken> {
    const url = new URL(credentials.tokenUrl);
    url.searchParams.set('client_id', credentials.clientId);
    // A rotated secret is scrubbed like the first: kept among the last few rotations, which no number of
    // token renewals pushes out.
    transport.scrubber.add(secret, { rotated: true });
    url.searchParams.set('client_secret', secret);
    url.searchParams.set('grant_type', 'client_credentials');
    const response = await exchange(transport, {
      operation: 'token',
      method: 'POST',
      url: url.toString(),
      headers: { Accept: 'application/json' },
    });
    const receivedAt = now();
    if (isRedirect(response.status)) throw redirected(response.status, response.location, credentials.tokenUrl);
    if (response.status < 200 || response.status >= 300)
      throw tokenFailure(response.status, errorBodyOf(transport, response), response.retryAfter, receivedAt);
    if (!validateTokenResponse(response.json)) {
      throw invalidTokenResponse(`token response ${schemaProblem(validateTokenResponse.errors)}`);
    }
    const value = response.json.access_token;
    transport.scrubber.add(value, { renewed: true });
    const claims = readJwtClaims(value);
    if (!claims) throw invalidTokenResponse('access_token is not a JWT with a numeric exp');
    // `exp` is on OpenCRVS's clock. With `iat` the token's lifetime is known, and is counted from its
    // arrival on ours: a bridge clock minutes ahead would otherwise find every token already due for
    // renewal (a token request per call), and one behind would keep using expired tokens.
    const lifetimeMs = claims.iat !== undefined ? (claims.exp - claims.iat) * 1000 : Number.NaN;
    const expiresAt = lifetimeMs > 0 ? receivedAt + lifetimeMs : claims.exp * 1000;
    if (claims.iat !== undefined && Math.abs(claims.iat * 1000 - receivedAt) > CLOCK_SKEW_WARN_MS) {
      logger.warn(
        { skewSeconds: Math.round((receivedAt - claims.iat * 1000) / 1000) },
        "this machine's clock and OpenCRVS's differ; token lifetimes are counted on this machine's",
      );
    }
    // Renew `renewBeforeSeconds` ahead of expiry, but never sooner than half-way through the token's
    // life, so a short-lived token (or a large setting) cannot make every call fetch a new one.
    const renewAt = Math.max(
      expiresAt - credentials.renewBeforeSeconds * 1000,
      receivedAt + (expiresAt - receivedAt) / 2,
    );
    obtained += 1;
    const token: AccessToken = {
      value,
      expiresAt,
      renewAt,
      scopes: scopesOf(claims),
      ...(claims.sub ? { subject: claims.sub } : {}),
    };
    logger.info(
      { expiresAt: new Date(expiresAt).toISOString(), scopes: token.scopes.length },
      'obtained OpenCRVS access token',
    );
    return token;
  }

  /** One request to the token endpoint, shared by every caller while it is in flight; no fallback. */
  function renew(): Promise<AccessToken> {
    if (!inflight) {
      // A refused secret replaced in its file (a rotation) ends the wait: it is asked with the new one.
      const standing = refused.standing();
      if (standing) return Promise.reject(stillRefused(standing, now()));
      const secret = credentials.clientSecret.current();
      inflight = request(secret)
        .then((token) => {
          cached = token;
          refused.clear();
          return token;
        })
        .catch((err: unknown) => {
          const current = cached;
          const at = now();
          if (err instanceof OpenCrvsError && err.classification !== 'retryable') {
            // Asking again at once would get the same answer: calls fail at once with it until the backoff
            // ends (a fixed client in OpenCRVS is found then), or until the client secret file changes.
            // A refusal that does not pass by itself (401 invalid_client: a wrong secret, a deactivated client;
            // a 400 for the configuration): util/refusal-backoff.ts.
            const backoffMs = refused.hold(err, secret);
            logger.error(
              { kind: err.kind, status: err.status, retryInSeconds: Math.round(backoffMs / 1000) },
              'the OpenCRVS token endpoint refused the credentials or the request; not asked again until the retry',
            );
            throw withRetryAfter(err, backoffMs);
          }
          if (current && err instanceof OpenCrvsError && err.classification === 'retryable' && at < current.expiresAt) {
            // Calls go on with the current token (see get); without a new renewAt every one of them would
            // first wait out another renewal (timeoutMs against a hanging auth service) and send its own
            // token request. Try again in 30 s, sooner as expiry nears, never later than expiry, and not
            // more than once a second when the endpoint fails fast.
            const backoff = Math.max(RENEW_RETRY_MIN_MS, Math.min(RENEW_RETRY_MAX_MS, (current.expiresAt - at) / 2));
            const renewAt = Math.max(current.renewAt, Math.min(current.expiresAt, at + backoff));
            cached = { ...current, renewAt };
            logger.warn(
              { kind: err.kind, retryInSeconds: Math.round((renewAt - at) / 1000) },
              'token renewal failed; using the current token until it expires',
            );
          }
          throw err;
        })
        .finally(() => {
          inflight = undefined;
        });
    }
    return inflight;
  }

  async function get(): Promise<AccessToken> {
    if (cached && now() < cached.renewAt) return cached;
    try {
      return await renew();
    } catch (err) {
      // A token that has not expired yet stays usable for calls when the endpoint is briefly
      // unreachable. Only here: `fresh()` must not pass the old token off as proof the endpoint works.
      const current = cached;
      if (current && err instanceof OpenCrvsError && err.classification === 'retryable' && now() < current.expiresAt)
        return current;
      throw err;
    }
  }

  return {
    get,
    fresh: () => renew(),
    invalidate(token) {
      if (cached?.value === token.value) cached = undefined;
      // A 401 after a rotation: the new token is asked for with the secret now in the file.
      credentials.clientSecret.refresh();
      return true;
    },
    renewals: () => obtained,
    refusal() {
      // Past its wait, or once the secret file holds another value, the refusal no longer stands: the next
      // question (readiness's own included) asks the endpoint, which is how a client reactivated in OpenCRVS
      // or a rotated secret is found when nothing else asks for a token.
      const standing = refused.standing();
      return standing ? stillRefused(standing, now()) : undefined;
    },
    clear() {
      cached = undefined;
    },
  };
}

/**
 * The refusal a call meets while the endpoint is not asked again: its words, when it was said, and when
 * the endpoint is asked next (readiness shows this message), so nobody takes it for a fresh answer.
 */
function stillRefused(refused: Held<OpenCrvsError>, at: number): OpenCrvsError {
  const { answer: error } = refused;
  const ago = Math.max(0, Math.round((at - refused.at) / 1000));
  // Only said while its wait runs (renew and refusal): past it, the endpoint is asked.
  const left = Math.max(1, Math.ceil((refused.until - at) / 1000));
  return new OpenCrvsError({
    kind: error.kind,
    classification: error.classification,
    message: `${error.opencrvsMessage}; the token endpoint answered so ${ago} s ago and is asked again in ${left} s`,
    ...(error.status !== undefined ? { status: error.status } : {}),
    ...(error.body !== undefined ? { body: error.body } : {}),
    operation: 'token',
    retryAfterMs: Math.max(0, refused.until - at),
  });
}

/**
 * The refusal as its callers get it: with when the endpoint is asked again, so that a caller retrying on
 * its own (the routing table at start-up) waits for it instead of meeting the same refusal each time.
 */
function withRetryAfter(error: OpenCrvsError, retryAfterMs: number): OpenCrvsError {
  return new OpenCrvsError({
    kind: error.kind,
    classification: error.classification,
    message: error.opencrvsMessage,
    ...(error.status !== undefined ? { status: error.status } : {}),
    ...(error.body !== undefined ? { body: error.body } : {}),
    ...(error.operation !== undefined ? { operation: error.operation } : {}),
    ...(error.hint !== undefined ? { hint: error.hint } : {}),
    ...(error.cause !== undefined ? { cause: error.cause } : {}),
    retryAfterMs,
  });
}

/**
 * The message names the status and OpenCRVS's error, never the URL (its query holds the secret).
 * 401 invalid_client (unknown, wrong or deactivated client) and other 4xx are operator problems:
 * no record can be delivered until someone fixes the credentials or the configuration.
 */
function tokenFailure(status: number, body: unknown, retryAfter: string | null, nowMs: number): OpenCrvsError {
  const retryable = classifyHttpFailure({ operation: 'token', status, body, retryAfter }, nowMs);
  if (retryable.classification === 'retryable') return retryable;
  return new OpenCrvsError({
    kind: status === 401 || status === 403 ? 'unauthorized' : 'config',
    classification: 'operator',
    message: messageOf(body, status),
    status,
    operation: 'token',
    body,
  });
}

/**
 * A redirect is never followed (the request's query carries the client secret), and asking again would
 * meet it again: an operator problem, held like a refused secret. Named by its origin alone (its path and
 * query may carry anything), so the operator sees where the configured address now points.
 */
function redirected(status: number, location: string | null, tokenUrl: string): OpenCrvsError {
  return new OpenCrvsError({
    kind: 'config',
    classification: 'operator',
    message: `the token endpoint (opencrvs.tokenUrl) answered a redirect to ${redirectOrigin(location, tokenUrl)}, which is not followed: set opencrvs.tokenUrl to the final address`,
    status,
    operation: 'token',
  });
}

// Retryable like every unexpected answer shape (see client.ts): a proxy error page or a truncated
// answer is usually transient, and asking for a token again is harmless.
function invalidTokenResponse(why: string): OpenCrvsError {
  return new OpenCrvsError({ kind: 'invalid-response', classification: 'retryable', message: why, operation: 'token' });
}
