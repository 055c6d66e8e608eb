// FHIR date / dateTime / VR partial dates → OpenCRVS DATE ('YYYY-MM-DD').
import { isObject } from '../../util/is-object.js';
import { utcInZone } from '../fhirpath/functions.js';
/** `partial`: no single complete date (a year, a month, a range); the field is left out, with `reason`. */
export type DateOutcome = { value: string } | { partial: true; reason?: string } | { error: string };

function validDate(year: number, month: number, day: number): string | undefined {
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day)) return undefined;
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

// A time, when given, must be one (FHIR: hours 00-23, a leap second allowed): `T25:99` or `T24:00` is a
// malformed value, not a time on the date it follows.
const FULL =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:\.\d+)?)?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)?)?$/;
const PARTIAL = /^\d{4}(?:-\d{2})?$/;

/** The value of a year/month/day part of a partial-date extension; undefined when absent or data-absent. */
function part(ext: Record<string, unknown>, name: string): number | undefined {
  const found = (Array.isArray(ext.extension) ? ext.extension : []).find((e) => isObject(e) && e.url === name);
  if (!isObject(found)) return undefined;
  for (const [key, value] of Object.entries(found)) {
    if (key.startsWith('value') && typeof value === 'number') return value;
  }
  return undefined;
}

/**
 * A dateTime keeps the calendar date it was written with (the local date where it happened): we never
 * convert to UTC, so 2026-06-30T23:30:00-05:00 is 2026-06-30. One written in UTC (…Z) is read in
 * `timeZone` when the source names one (an EMR that stores UTC). A year or year-month, or a
 * partial-date extension without all of year, month and day, is `partial` and the field is left out.
 * So is a Period, unless it starts and ends on one day: VRDR gives a range when the exact date is not
 * known, and its start is no more the date than its end.
 */
export function toPlainDate(item: unknown, timeZone?: string): DateOutcome {
  if (typeof item === 'string') {
    const full = FULL.exec(item);
    if (full) {
      const value = validDate(Number(full[1]), Number(full[2]), Number(full[3]));
      if (!value) return { error: 'is not a valid calendar date' };
      return { value: utcInZone(item, timeZone) ?? value };
    }
    if (PARTIAL.test(item)) return { partial: true };
    return { error: 'is not a FHIR date or dateTime' };
  }
  if (isObject(item)) {
    if (typeof item.start === 'string' || typeof item.end === 'string') return periodDate(item, timeZone);
    if (Array.isArray(item.extension)) {
      const [year, month, day] = [part(item, 'year'), part(item, 'month'), part(item, 'day')];
      if (year === undefined || month === undefined || day === undefined) return { partial: true };
      const value = validDate(year, month, day);
      return value ? { value } : { error: 'partial-date parts do not form a valid date' };
    }
  }
  return { error: 'is not a date' };
}

function periodDate(period: Record<string, unknown>, timeZone?: string): DateOutcome {
  if (typeof period.start !== 'string' || typeof period.end !== 'string')
    return { partial: true, reason: 'is an open range of dates, not one date' };
  const start = toPlainDate(period.start, timeZone);
  const end = toPlainDate(period.end, timeZone);
  if (!('value' in start)) return start;
  if (!('value' in end)) return end;
  return start.value === end.value ? start : { partial: true, reason: 'is a range of days, not one date' };
}
