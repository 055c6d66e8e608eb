// How long a token endpoint that refused (or redirected) is left unasked: the same answer would come back at
// once, and each ask is a failed login in the IdP's log that may lock the client out. One policy for the
// OpenCRVS token client (opencrvs/token.ts) and the sources' OAuth2 client (sources/shared/source-auth.ts).

/** The first wait after a refusal. */
export const REFUSAL_BACKOFF_FIRST_MS = 30_000;
/** The longest wait: a client fixed in the IdP is found within this. */
export const REFUSAL_BACKOFF_MAX_MS = 5 * 60_000;

/** The wait after a refusal: 30 s, then twice the previous wait each time it is met again, at most 5 min. */
export function nextRefusalBackoff(previousMs: number | undefined): number {
  return previousMs === undefined ? REFUSAL_BACKOFF_FIRST_MS : Math.min(REFUSAL_BACKOFF_MAX_MS, previousMs * 2);
}
