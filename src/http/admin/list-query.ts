// The list filter of `GET /admin/api/events`, read from the query string and checked: a typo in a
// state name answers 400 rather than an empty list that looks like "nothing went wrong".
import { LEDGER_STATES, type LedgerState, type ListFilter } from '../../ledger/index.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;
// Deep paging through SQLite OFFSET is linear; a million rows is beyond any screen anyway.
export const MAX_OFFSET = 1_000_000;
const MAX_TEXT = 200;

export class QueryError extends Error {}

type QueryValue = unknown;

export function single(query: Record<string, QueryValue>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new QueryError(`${name}: give it once`);
  if (value.length > MAX_TEXT) throw new QueryError(`${name}: too long`);
  return value;
}

/**
 * A comma-separated (or repeated) parameter whose values come from a fixed set, in the order first
 * given: `state=dead,failed`. `aliases` names groups (`not-written` = pending + abandoned). An unknown
 * value answers 400 rather than an empty list that looks like "nothing there".
 */
export function enumList<T extends string>(
  query: Record<string, QueryValue>,
  name: string,
  allowed: readonly T[],
  aliases: Readonly<Record<string, readonly T[]>> = {},
): T[] | undefined {
  const raw = query[name];
  if (raw === undefined || raw === '') return undefined;
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => (typeof v === 'string' ? v.split(',') : [v]));
  const out = new Set<T>();
  for (const part of parts) {
    const value = typeof part === 'string' ? part.trim() : '';
    if (value === '') continue;
    const group = Object.hasOwn(aliases, value) ? aliases[value] : undefined;
    if (group) for (const member of group) out.add(member);
    else if ((allowed as readonly string[]).includes(value)) out.add(value as T);
    else throw new QueryError(`${name}: unknown ${name} (one of ${[...allowed, ...Object.keys(aliases)].join(', ')})`);
  }
  return out.size > 0 ? [...out] : undefined;
}

const DAY_MS = 86_400_000;

/**
 * Epoch milliseconds or an ISO 8601 date/time. A date alone (UTC) is its whole day: `until=2026-01-31`
 * includes the 31st, as the bound is documented to be inclusive.
 */
function instant(query: Record<string, QueryValue>, name: 'since' | 'until'): number | undefined {
  const text = single(query, name);
  if (text === undefined) return undefined;
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const parsed = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(parsed)) throw new QueryError(`${name}: epoch milliseconds or an ISO 8601 date-time`);
  return name === 'until' && /^\d{4}-\d{2}-\d{2}$/.test(text) ? parsed + DAY_MS - 1 : parsed;
}

export function integer(query: Record<string, QueryValue>, name: string, min: number, max: number): number | undefined {
  const text = single(query, name);
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text)) throw new QueryError(`${name}: a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new QueryError(`${name}: between ${min} and ${max}`);
  return value;
}

/** A ledger row id from a path segment, or undefined when it is not one. */
export function parseRowId(text: string): number | undefined {
  return /^\d{1,12}$/.test(text) ? Number(text) : undefined;
}

/** The largest row id `before` takes: what `integer` reads, far beyond any ledger. */
const MAX_ROW_ID = 999_999_999;

export interface ListQuery {
  filter: ListFilter;
  limit: number;
  offset: number;
}

export function parseListQuery(query: Record<string, QueryValue>): ListQuery {
  const limit = integer(query, 'limit', 1, MAX_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE;
  const offset = integer(query, 'offset', 0, MAX_OFFSET) ?? 0;
  const filter: ListFilter = {};
  // The cursor: the `next` of the page before, a row id. With it the page starts at that row in the
  // index it reads, where `offset` reads the rows before it and drops them (linear in the depth).
  const before = integer(query, 'before', 1, MAX_ROW_ID);
  if (before !== undefined) {
    if (offset > 0) throw new QueryError('offset: not with before (the cursor says where the page starts)');
    filter.before = before;
  }
  const chosen = enumList<LedgerState>(query, 'state', LEDGER_STATES);
  if (chosen) filter.states = chosen;
  const eventType = single(query, 'eventType');
  if (eventType !== undefined) filter.eventType = eventType;
  const source = single(query, 'source');
  if (source !== undefined) filter.sourceId = source;
  const find = single(query, 'find')?.trim();
  if (find) filter.find = find;
  const updated = single(query, 'updatedAfterNotification');
  if (updated !== undefined && updated !== 'true' && updated !== 'false')
    throw new QueryError('updatedAfterNotification: true or false');
  if (updated === 'true') filter.updatedAfterNotification = true;
  const since = instant(query, 'since');
  if (since !== undefined) filter.since = since;
  const until = instant(query, 'until');
  if (until !== undefined) filter.until = until;
  if (since !== undefined && until !== undefined && since > until) throw new QueryError('since: after until');
  return { filter, limit, offset };
}
