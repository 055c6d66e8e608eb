/**
 * The 4xx status express (or body-parser) put on an error it raised for a request it could not take (a
 * path that does not decode, a body too large), else undefined: the caller's mistake, not the bridge's.
 */
export function clientErrorStatus(err: unknown): number | undefined {
  const status = typeof err === 'object' && err !== null && 'status' in err ? Number(err.status) : Number.NaN;
  return status >= 400 && status < 500 ? status : undefined;
}
