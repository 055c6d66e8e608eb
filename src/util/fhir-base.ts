// What makes two FHIR addresses one server: the configuration's checks (config/load.ts) and the reading of
// references (mapping/fetcher.ts) must compare them alike, and config sits below mapping.

/** Scheme, host (any case), port (a default one as none) and path without trailing slashes: equal for one server. */
export function serverKey(url: URL, path: string): string {
  return `${url.protocol}//${url.hostname}:${url.port}${path.replace(/\/+$/, '')}`;
}

/**
 * A FHIR server's base URL as one server is one key (see serverKey): `https://EMR:443/fhir/` and
 * `https://emr/fhir` are equal. Undefined for what is no URL.
 */
export function baseUrlKey(base: string): string | undefined {
  try {
    const url = new URL(base);
    return serverKey(url, url.pathname);
  } catch {
    return undefined;
  }
}
