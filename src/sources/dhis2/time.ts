// DHIS2 exports timestamps as local date-times without a zone (`2019-08-21T13:25:38.022`) in the server's
// time zone. The poller never converts them: it compares them and subtracts the overlap as naive wall-clock
// values, which is right whatever the server's zone (a DST jump inside the overlap only widens or narrows it
// by an hour once).
const NAIVE = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?$/;

/** Milliseconds of a naive DHIS2 date-time read as if it were UTC (only for comparing and shifting), or undefined. */
export function naiveMillis(value: string): number | undefined {
  const match = NAIVE.exec(value.trim());
  if (!match) {
    // A zoned value (`…Z`, `+01:00`) from a newer or proxied server: its instant, same arithmetic.
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  const time = (match[2] ?? '00:00').replace(/(\.\d{3})\d+$/, '$1');
  const ms = Date.parse(`${match[1]}T${time.length === 5 ? `${time}:00` : time}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The naive export format, from milliseconds produced by naiveMillis. */
export function formatNaive(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23);
}

/** `value` minus `seconds`, in the naive export format. */
export function minusSeconds(value: string, seconds: number): string | undefined {
  const ms = naiveMillis(value);
  return ms === undefined ? undefined : formatNaive(ms - seconds * 1000);
}

/**
 * `value` plus `ms` milliseconds: naive stays naive (the export format), a zoned value becomes the same
 * instant in UTC. Undefined when `value` is no timestamp.
 */
export function plusMillis(value: string, ms: number): string | undefined {
  const at = naiveMillis(value);
  if (at === undefined) return undefined;
  return NAIVE.test(value.trim()) ? formatNaive(at + ms) : new Date(at + ms).toISOString();
}

/** The later of two DHIS2 timestamps (unparseable ones lose). */
export function laterOf(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return (naiveMillis(b) ?? Number.NEGATIVE_INFINITY) > (naiveMillis(a) ?? Number.NEGATIVE_INFINITY) ? b : a;
}

/** The earlier of two DHIS2 timestamps (`b` when `a` is missing or unparseable). */
export function earlierOf(a: string | undefined, b: string): string {
  const at = a === undefined ? undefined : naiveMillis(a);
  return at !== undefined && at < (naiveMillis(b) ?? Number.POSITIVE_INFINITY) ? (a as string) : b;
}

/** Reducer: the earliest of the timestamps given (missing ones skipped). */
export function earlierDefined(earliest: string | undefined, at: string | undefined): string | undefined {
  return at === undefined ? earliest : earlierOf(earliest, at);
}
