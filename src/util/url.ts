// A configured address as the bridge shows and records it: doctor's lines, the ledger's record of which
// source and OpenCRVS it was written against (sources/identity.ts), the lookups the admin page suggests.

/**
 * Scheme, host and path without a trailing slash: never user info, a query or a fragment (any may carry a
 * credential), and equal for spellings of one address (`https://EMR:443/fhir/` is `https://emr/fhir`).
 * What is no URL (the configuration refuses it) loses the same parts, cut as text.
 */
export function normalisedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    return url
      .replace(/[?#].*$/, '')
      .replace(/^([^/]*\/\/)[^/]*@/, '$1')
      .replace(/\/+$/, '');
  }
}
