import { badRequest, OperationOutcomeError } from '@medplum/core';

/** Half-open interval [lo, hi) in epoch ms covered by a FHIR date/dateTime/instant search value. */
export interface DateRange {
  lo: number;
  hi: number;
}

// FHIR search dates carry their precision: `2024` is the whole year, `2024-05-01T10:00` the whole
// minute. Fractions finer than a millisecond are truncated (JavaScript time is in ms).
const DATE_VALUE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function parseDateRange(value: string): DateRange {
  const m = DATE_VALUE.exec(value);
  if (!m) throw new OperationOutcomeError(badRequest(`Invalid date search value: ${value}`));
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  if (mo === undefined) return { lo: Date.UTC(year, 0, 1), hi: Date.UTC(year + 1, 0, 1) };
  const month = Number(mo) - 1;
  if (d === undefined) return { lo: Date.UTC(year, month, 1), hi: Date.UTC(year, month + 1, 1) };
  const day = Number(d);
  if (h === undefined) return { lo: Date.UTC(year, month, day), hi: Date.UTC(year, month, day + 1) };
  // A time without a zone is read as UTC, the server's zone.
  const offset = tz && tz !== 'Z' ? offsetMs(tz) : 0;
  const base = Date.UTC(year, month, day, Number(h), Number(mi)) - offset;
  if (s === undefined) return { lo: base, hi: base + 60_000 };
  const seconds = base + Number(s) * 1000;
  if (frac === undefined) return { lo: seconds, hi: seconds + 1000 };
  const lo = seconds + Number(frac.slice(0, 3).padEnd(3, '0'));
  return { lo, hi: lo + 1 };
}

function offsetMs(tz: string): number {
  const sign = tz.startsWith('-') ? -1 : 1;
  const [hh, mm] = tz.slice(1).split(':');
  return sign * (Number(hh) * 60 + Number(mm)) * 60_000;
}

/**
 * Whether an instant `t` satisfies `<prefix><value>` under the FHIR search rules for a point in time
 * against a range: `ge` = at or after the start of the range, `gt`/`sa` = after its end, and so on.
 */
export function matchesDatePrefix(t: number, operator: string, range: DateRange): boolean {
  switch (operator) {
    case 'eq':
    case 'ap':
      return t >= range.lo && t < range.hi;
    case 'ne':
      return t < range.lo || t >= range.hi;
    case 'gt':
    case 'sa':
      return t >= range.hi;
    case 'ge':
      return t >= range.lo;
    case 'lt':
    case 'eb':
      return t < range.lo;
    case 'le':
      return t < range.hi;
    default:
      throw new OperationOutcomeError(badRequest(`Unsupported date search prefix: ${operator}`));
  }
}
