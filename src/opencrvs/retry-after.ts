// Retry-After (RFC 9110 §10.2.3) is either a number of seconds or an HTTP date. OpenCRVS itself does
// not send it, but proxies and load balancers in front of it do with 429 and 503.

/** Milliseconds to wait, or undefined when the header is absent or unreadable. Never negative. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Only IMF-fixdate and the obsolete forms Date.parse understands; a bare number with a sign or a
  // fraction is not valid delay-seconds and must not be read as a date.
  if (/^[+-]?\d*\.?\d+$/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
