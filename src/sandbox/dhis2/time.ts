import { randomInt } from 'node:crypto';

const UID_LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const UID_CHARS = `${UID_LETTERS}0123456789`;
const UID_PATTERN = /^[A-Za-z][A-Za-z0-9]{10}$/;
const EXPORT_FORMAT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$/;

/** A fresh DHIS2 uid (DHIS2's CodeGenerator: a letter, then 10 letters or digits). */
export function generateUid(random: (max: number) => number = randomInt): string {
  let uid = UID_LETTERS[random(UID_LETTERS.length)] ?? 'a';
  for (let i = 0; i < 10; i++) uid += UID_CHARS[random(UID_CHARS.length)] ?? '0';
  return uid;
}

export function isUid(value: unknown): value is string {
  return typeof value === 'string' && UID_PATTERN.test(value);
}

/**
 * The simulated server runs in UTC (`serverTimeZoneId: Etc/UTC`), so a DHIS2 local date-time without a
 * zone is read as UTC, which is what a real server in UTC does too.
 */
export function parseDhis2DateTime(value: string): number | undefined {
  // Fast path for the simulator's own export format, which is what most comparisons see.
  if (value.length === 23 && EXPORT_FORMAT.test(value)) return Date.parse(`${value}Z`);
  const trimmed = value.trim();
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(trimmed))
    return undefined;
  let text = trimmed.replace(' ', 'T');
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) text += 'T00:00:00';
  // Sub-millisecond digits (DHIS2 accepts microseconds) are cut to what Date understands.
  text = text.replace(/(\.\d{3})\d+/, '$1');
  if (!/(Z|[+-]\d{2}:?\d{2})$/.test(text)) text += 'Z';
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** `2019-08-21T13:25:38.022`: the zone-less millisecond format DHIS2 exports. */
export function formatDhis2DateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23);
}

/** Normalises an incoming timestamp to the export format, or undefined when it does not parse. */
export function normaliseDhis2DateTime(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = parseDhis2DateTime(value);
  return ms === undefined ? undefined : formatDhis2DateTime(ms);
}

/**
 * A clock that never returns the same millisecond twice, so every write gets an `updatedAt` strictly
 * greater than the one before (DHIS2 timestamps have millisecond resolution; two writes in the same
 * millisecond would otherwise be indistinguishable to an `updatedAfter` poller).
 */
export class MonotonicClock {
  private last = 0;

  constructor(private readonly source: () => number = Date.now) {}

  now(): number {
    this.last = Math.max(this.source(), this.last + 1);
    return this.last;
  }

  /** Moves the floor forward so later writes sort after seeded data with future timestamps. */
  observe(ms: number): void {
    if (ms > this.last) this.last = ms;
  }
}
