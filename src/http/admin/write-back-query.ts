// The filter of `GET /admin/api/write-backs`, read from the query string and checked like the event list's:
// an unknown outcome answers 400 rather than an empty list that looks like "all written".
import { DEFAULT_PAGE_SIZE, enumList, integer, MAX_OFFSET, MAX_PAGE_SIZE, single } from './list-query.js';
import type { WriteBackSearch, WriteBackStateName } from './types.js';

export const WRITE_BACK_STATES: readonly WriteBackStateName[] = ['pending', 'written', 'already', 'abandoned'];

/** The operator's question "which did not get back to the source?": still trying, or given up. */
const ALIASES: Readonly<Record<string, readonly WriteBackStateName[]>> = { 'not-written': ['pending', 'abandoned'] };

export function parseWriteBackQuery(query: Record<string, unknown>): WriteBackSearch {
  const parsed: WriteBackSearch = {
    limit: integer(query, 'limit', 1, MAX_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE,
    offset: integer(query, 'offset', 0, MAX_OFFSET) ?? 0,
  };
  const states = enumList(query, 'outcome', WRITE_BACK_STATES, ALIASES);
  if (states) parsed.states = states;
  const source = single(query, 'source');
  if (source !== undefined) parsed.sourceId = source;
  return parsed;
}
