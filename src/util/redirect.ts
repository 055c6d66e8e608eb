// No client of the bridge follows a redirect (the sources' and the OpenCRVS token client's). fetch() follows a 307 or 308 with the method and the body
// as they were, to any host: the OAuth2 token request's body is the client secret, a subscription
// transaction carries the receiver's bearer secret, a write-back PUT a patient's record. A server at
// the configured address that answers elsewhere is a configuration to fix (the OpenCRVS client says
// the same of a 3xx: opencrvs/classify.ts).

/** What source clients pass to fetch(): a redirect comes back as the answer it is, never followed. */
export const NO_REDIRECT = 'manual';

/** A 3xx that sends elsewhere (not a 304, which answers a conditional request). */
export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400 && status !== 304;
}

/**
 * Where a redirect points, its origin only (its path and query may name a patient or carry a
 * token), or "an address it did not give" when its Location is missing or no URL.
 */
export function redirectOrigin(location: string | null | undefined, requestUrl: string): string {
  if (!location) return 'an address it did not give';
  try {
    const origin = new URL(location, requestUrl).origin;
    return origin === 'null' ? 'an address that is no web origin' : origin;
  } catch {
    return 'an address that is no URL';
  }
}
