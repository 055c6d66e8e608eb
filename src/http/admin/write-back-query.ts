// The filter of `GET /admin/api/write-backs`, read from the query string and checked like the event list's:
// an unknown outcome answers 400 rather than an empty list that looks like "all written".
import { DEFAULT_PAGE_SIZE, integer, MAX_OFFSET, MAX_PAGE_SIZE, QueryError, single } from './list-query.js';
import type { WriteBackSearch, WriteBackStateName } from './types.js';

export const WRITE_BACK_STATES: readonly WriteBackStateName[] = ['pending', 'written', 'already', 'abandoned'];

/** The operator's question "which did not get back to the source?": still trying, or given up. */
const NOT_WRITTEN = 'not-written';

function isStateName(value: string): value is WriteBackStateName {
  return (WRITE_BACK_STATES as readonly string[]).includes(value);
}

function outcomes(query: Record<string, unknown>): WriteBackStateName[] | undefined {
  const raw = query.outcome;
  if (raw === undefined || raw === '') return undefined;
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => (typeof v === 'string' ? v.split(',') : [v]));
  const out = new Set<WriteBackStateName>();
  for (const part of parts) {
    const name = typeof part === 'string' ? part.trim() : '';
    if (name === '') continue;
    if (name === NOT_WRITTEN) {
      out.add('pending');
      out.add('abandoned');
    } else if (isStateName(name)) out.add(name);
    else throw new QueryError(`outcome: unknown outcome (one of ${[...WRITE_BACK_STATES, NOT_WRITTEN].join(', ')})`);
  }
  return out.size > 0 ? [...out] : undefined;
}

export function parseWriteBackQuery(query: Record<string, unknown>): WriteBackSearch {
  const parsed: WriteBackSearch = {
    limit: integer(query, 'limit', 1, MAX_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE,
    offset: integer(query, 'offset', 0, MAX_OFFSET) ?? 0,
  };
  const states = outcomes(query);
  if (states) parsed.states = states;
  const source = single(query, 'source');
  if (source !== undefined) parsed.sourceId = source;
  return parsed;
}
