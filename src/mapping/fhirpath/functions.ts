// The few functions mappings may call beyond standard FHIRPath. Both evaluators (fhirpath.js and the fast
// path in fast.ts) use these same implementations, so they cannot drift apart.
import { isObject } from '../../util/is-object.js';

/** A named set of codes: 'system|code' entries match that coding, bare entries match the code in any system. */
export interface CodeSet {
  qualified: ReadonlySet<string>;
  bare: ReadonlySet<string>;
  /** Every code of the set, whatever its system: used for plain `code` values that carry no system. */
  anySystem: ReadonlySet<string>;
  /**
   * `qualified` by system: a coding is looked up without building 'system|code' (coded() reads every coding
   * of every observation of a record, most of them in no set).
   */
  bySystem: ReadonlyMap<string, ReadonlySet<string>>;
}

export function buildCodeSet(entries: readonly string[]): CodeSet {
  const qualified = new Set<string>();
  const bare = new Set<string>();
  const anySystem = new Set<string>();
  const bySystem = new Map<string, Set<string>>();
  for (const entry of entries) {
    const bar = entry.lastIndexOf('|');
    if (bar > 0) {
      qualified.add(entry);
      anySystem.add(entry.slice(bar + 1));
      const system = entry.slice(0, bar);
      const codes = bySystem.get(system) ?? new Set<string>();
      codes.add(entry.slice(bar + 1));
      bySystem.set(system, codes);
    } else {
      const code = bar === 0 ? entry.slice(1) : entry;
      bare.add(code);
      anySystem.add(code);
    }
  }
  return { qualified, bare, anySystem, bySystem };
}

function codingMatches(coding: Record<string, unknown>, set: CodeSet): boolean {
  const code = coding.code;
  if (typeof code !== 'string' && typeof code !== 'number') return false;
  const text = String(code);
  if (set.bare.has(text)) return true;
  if (typeof coding.system !== 'string') return false;
  // A code holding '|' could pair with a shorter system to spell an entry: only the whole text tells.
  if (text.includes('|')) return set.qualified.has(`${coding.system}|${text}`);
  return set.bySystem.get(coding.system)?.has(text) === true;
}

/** True when one item (CodeableConcept, Coding, or a plain code/boolean/number) is in the set. */
export function itemIsCoded(item: unknown, set: CodeSet): boolean {
  if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') {
    return set.anySystem.has(String(item));
  }
  if (!isObject(item)) return false;
  if (!Array.isArray(item.coding)) return codingMatches(item, set);
  for (const c of item.coding) if (isObject(c) && codingMatches(c, set)) return true;
  return false;
}

/** Formatters by IANA zone name: building one costs far more than using it. */
const dayFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * A dateTime written in UTC (`…Z`, `…+00:00`) read as a calendar date in `timeZone`: an EMR that stores
 * UTC writes a birth at 01:30 on the 11th in Lusaka as 23:30Z on the 10th. Undefined when the value is
 * not such a dateTime (then it keeps the date it was written with).
 */
export function utcInZone(text: string, timeZone: string | undefined): string | undefined {
  if (!timeZone || text.length < 17) return undefined;
  const last = text.charCodeAt(text.length - 1);
  if (last !== 90 && !text.endsWith('+00:00') && !text.endsWith('-00:00')) return undefined; // Z
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return undefined;
  let format = dayFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(timeZone, format);
  }
  let year = '';
  let month = '';
  let day = '';
  for (const part of format.formatToParts(ms)) {
    if (part.type === 'year') year = part.value;
    else if (part.type === 'month') month = part.value;
    else if (part.type === 'day') day = part.value;
  }
  return `${year.padStart(4, '0')}-${month}-${day}`;
}

/**
 * 'YYYY-MM-DD' prefix of a full date or dateTime, as written (the local calendar date), else undefined;
 * with `timeZone`, a UTC dateTime is that zone's date (utcInZone).
 */
export function calendarDate(value: unknown, timeZone?: string): string | undefined {
  if (isObject(value) && typeof value.start === 'string') return calendarDate(value.start, timeZone);
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:$|T)/.exec(value);
  if (!match) return undefined;
  return utcInZone(value, timeZone) ?? match[0].slice(0, 10);
}

/** The number at `s[from, from + length)` if those are all ASCII digits, else -1. */
function digitsAt(s: string, from: number, length: number): number {
  let value = 0;
  for (let i = from; i < from + length; i++) {
    const digit = s.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** A date or dateTime (a Period's start), as written; a UTC dateTime as its date in `timeZone` (utcInZone). */
function writtenDate(value: unknown, timeZone?: string): string | undefined {
  const written = isObject(value) && typeof value.start === 'string' ? value.start : value;
  if (typeof written !== 'string') return undefined;
  return (timeZone && written.length > 10 && utcInZone(written, timeZone)) || written;
}

/**
 * Days since 1970-01-01 of the calendar date a date or dateTime starts with (as calendarDate reads it).
 * Read character by character: the birth and death triggers compare dates for every observation of a
 * subject, and the regular expression and slices made this 2.5 times slower (1.0 µs a call, now 0.4).
 */
function dayNumber(value: unknown, timeZone?: string): number | undefined {
  const text = writtenDate(value, timeZone);
  if (text === undefined || text.length < 10) return undefined;
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return undefined; // YYYY-MM-DD
  if (text.length > 10 && text.charCodeAt(10) !== 84) return undefined; // …T
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  if (year < 0 || month < 0 || day < 0) return undefined;
  return utcDayNumber(year, month, day);
}

/**
 * Date.UTC(year, month - 1, day) in days for 4-digit years and 2-digit months and days, by arithmetic:
 * Date.UTC was most of the cost of daysAfter(), which the birth and death triggers ask of every
 * observation. The same quirks: a year 0–99 is 1900–1999, and a month or day past its end (13, 00, 45)
 * rolls over into the next or previous one.
 */
export function utcDayNumber(year: number, month: number, day: number): number {
  let y = year <= 99 ? year + 1900 : year;
  const m0 = month - 1;
  const carry = Math.floor(m0 / 12);
  y += carry;
  const m = m0 - carry * 12 + 1; // 1–12
  // Days from 1970-01-01 to the first of that month (the proleptic Gregorian calendar, as Date reads it).
  if (m <= 2) y -= 1;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5);
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468 + day - 1;
}

/** Whole days from `since` to `date` (calendar dates; negative when `date` is earlier), else undefined. */
export function daysBetween(since: unknown, date: unknown, timeZone?: string): number | undefined {
  const a = dayNumber(since, timeZone);
  const b = dayNumber(date, timeZone);
  return a === undefined || b === undefined ? undefined : Math.round(b - a);
}

/** Year, and month and day when given, of a date, dateTime (read in `timeZone` when UTC) or Period start. */
function dateParts(value: unknown, timeZone?: string): [number, number?, number?] | undefined {
  const text = writtenDate(value, timeZone);
  if (text === undefined) return undefined;
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:$|T)/.exec(text);
  if (!match) return undefined;
  return [Number(match[1]), match[2] ? Number(match[2]) : undefined, match[3] ? Number(match[3]) : undefined];
}

/**
 * Whole years from `since` to `date` (an age: birthdays completed), with the precision both have. A
 * year-month date counts by months (born 2023-12, died 2024-01-10: 0, where the years alone say 1); a
 * year alone gives the difference of the years, which is all it can. Empty unless both have a year.
 */
export function yearsBetween(since: unknown, date: unknown, timeZone?: string): number | undefined {
  const from = dateParts(since, timeZone);
  const to = dateParts(date, timeZone);
  if (!from || !to) return undefined;
  const [fromYear, fromMonth, fromDay] = from;
  const [toYear, toMonth, toDay] = to;
  let years = toYear - fromYear;
  if (fromMonth !== undefined && toMonth !== undefined) {
    const birthdayLater =
      toMonth < fromMonth || (toMonth === fromMonth && fromDay !== undefined && toDay !== undefined && toDay < fromDay);
    if (birthdayLater) years--;
  }
  return years;
}

/**
 * daysAfter(), yearsAfter() and calendarDate() read one date on each side. Given several (two encounters'
 * starts), answering empty would make a rule such as `%encounters.period.start.daysAfter(…) <= 3` miss the
 * birth without a word; which date is meant is the mapping's choice, as for substring().
 */
export function severalDatesError(fn: string, side: 'input' | 'argument'): Error {
  return new Error(`${fn}() needs one date as its ${side}, got several: choose one with where() or first()`);
}

/** 'Type/id' of a resource. */
export function resourceRef(item: unknown): string | undefined {
  if (!isObject(item)) return undefined;
  const { resourceType, id } = item;
  return typeof resourceType === 'string' && typeof id === 'string' ? `${resourceType}/${id}` : undefined;
}

/**
 * humanName(given, family): a HumanName-like object from separate values, for sources that keep name parts
 * in separate fields (DHIS2 tracked entity attributes). Empty when both are empty.
 */
export function humanName(given: readonly unknown[], family: readonly unknown[]): Record<string, unknown>[] {
  const text = (values: readonly unknown[]) =>
    values.filter((v): v is string => typeof v === 'string' && v.trim() !== '').map((v) => v.trim());
  const givenNames = text(given);
  const familyName = text(family).join(' ');
  if (givenNames.length === 0 && !familyName) return [];
  return [{ ...(givenNames.length ? { given: givenNames } : {}), ...(familyName ? { family: familyName } : {}) }];
}
