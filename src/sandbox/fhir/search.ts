import {
  badRequest,
  evalFhirPath,
  globalSchema,
  OperationOutcomeError,
  type SearchRequest,
  type SortRule,
} from '@medplum/core';
import type { StoredRecord } from './repository.js';
import { searchExpression } from './search-expression.js';
import { candidatesOf, compileFilter, type Matcher, type SearchIndexes } from './search-filter.js';
import { cacheOf } from './search-values.js';

export interface SearchSource {
  recordsOf(resourceType: string): Iterable<StoredRecord>;
  logOf(resourceType: string): readonly StoredRecord[];
  isCurrent(record: StoredRecord): boolean;
  /** Without indexes every search scans all current records of its types (the tests compare both). */
  readonly indexes?: SearchIndexes;
}

export interface SearchResult {
  /** All matches, ignoring paging. */
  total: number;
  page: StoredRecord[];
  /** Opaque position after the last entry of `page`, present when more matches follow. */
  nextCursor?: string;
}

export const DEFAULT_COUNT = 20; // HAPI's and Medplum's default page size
export const MAX_COUNT = 1000;

type Key = (string | number)[];

// Below one match per 8 log entries, sorting the matches is cheaper than walking the write log.
const SELECTIVE_RATIO = 8;

/**
 * Keyset paging: results are ordered by the sort key plus the write sequence number as final
 * tie-breaker, and the cursor is the key of the last entry, so a resource updated while a client
 * pages moves to the end instead of shifting every later page by one.
 *
 * Matches are counted over candidates: the records the most selective `_id` or reference filter
 * allows, looked up in the source's indexes, or else every current record of the type. Each
 * candidate must pass every filter (cheap ones on values cached per version, Medplum's FHIRPath
 * matcher for the rest), so the index only decides how much is read, never what matches.
 *
 * The common incremental poll (`_sort=_lastUpdated`, or no _sort, one type) walks the repository's
 * write log from the cursor and stops after one page, unless the matches are few enough to sort.
 * Anything else sorts the matches on precomputed keys.
 */
export function searchRecords(source: SearchSource, request: SearchRequest): SearchResult {
  const types = request.types?.length ? request.types : [request.resourceType];
  const rules = sortRulesOf(request, types);
  const cursor = request.cursor === undefined ? undefined : decodeCursor(request.cursor, rules.length);
  const offset = Math.max(0, request.offset ?? 0);
  const count = Math.min(Math.max(0, request.count ?? DEFAULT_COUNT), MAX_COUNT);
  const filtersByType = types.map((type) => (request.filters ?? []).map((filter) => compileFilter(type, filter)));
  const matchersByType = filtersByType.map((filters) => filters.map((filter) => filter.matches));
  const matches = (record: StoredRecord, matchers: Matcher[]): boolean => matchers.every((m) => m(record));
  const candidates = (i: number, t: string): Iterable<StoredRecord> => {
    const indexed = source.indexes && candidatesOf(source.indexes, t, filtersByType[i] ?? []);
    // Buckets only ever hold current versions; checking costs a map lookup and makes sure that an
    // index out of step could never return a superseded or deleted version.
    return indexed ? [...indexed].filter((record) => source.isCurrent(record)) : source.recordsOf(t);
  };

  const rule = rules[0];
  const type = types[0];
  let total = 0;
  let rows: { record: StoredRecord; key: Key }[] = [];
  if (types.length === 1 && type && rules.length === 1 && rule?.code === '_lastUpdated') {
    const matchers = matchersByType[0] ?? [];
    const matched: StoredRecord[] = [];
    for (const record of candidates(0, type)) if (matches(record, matchers)) matched.push(record);
    total = matched.length;
    const descending = rule.descending ?? false;
    if (matched.length * SELECTIVE_RATIO < source.logOf(type).length) {
      // A selective filter (`subject=…`): sorting the few matches beats walking the whole log.
      rows = bySeq(matched, descending, cursor);
    } else {
      rows = walkLog(source, type, descending, cursor, offset + count + 1, matchers);
    }
  } else {
    types.forEach((t, i) => {
      const matchers = matchersByType[i] ?? [];
      for (const record of candidates(i, t)) {
        if (!matches(record, matchers)) continue;
        total++;
        const key = keyOf(record, rules);
        if (cursor && compareKeys(key, cursor, rules) <= 0) continue;
        rows.push({ record, key });
      }
    });
    rows.sort((a, b) => compareKeys(a.key, b.key, rules));
  }
  const pageRows = rows.slice(offset, offset + count);
  const last = pageRows.at(-1);
  const more = rows.length > offset + count;
  return {
    total,
    page: pageRows.map((row) => row.record),
    ...(more && last ? { nextCursor: encodeCursor(last.key) } : {}),
  };
}

/** Up to `limit` current, matching versions after the cursor, in (lastUpdated, seq) order or its reverse. */
function walkLog(
  source: SearchSource,
  type: string,
  descending: boolean,
  cursor: Key | undefined,
  limit: number,
  matchers: Matcher[],
): { record: StoredRecord; key: Key }[] {
  const log = source.logOf(type);
  // The log is in seq order, so the cursor's seq (its last element) locates the starting point.
  const cursorSeq = cursor ? Number(cursor[cursor.length - 1]) : undefined;
  const rows: { record: StoredRecord; key: Key }[] = [];
  const step = descending ? -1 : 1;
  let i: number;
  if (!descending) i = cursorSeq === undefined ? 0 : upperBound(log, cursorSeq);
  else i = (cursorSeq === undefined ? log.length : upperBound(log, cursorSeq - 1)) - 1; // seqs are integers
  for (; i >= 0 && i < log.length && rows.length < limit; i += step) {
    const record = log[i] as StoredRecord;
    if (!source.isCurrent(record) || !matchers.every((m) => m(record))) continue;
    rows.push({ record, key: [record.ts, record.seq] });
  }
  return rows;
}

function bySeq(
  records: StoredRecord[],
  descending: boolean,
  cursor: Key | undefined,
): { record: StoredRecord; key: Key }[] {
  const cursorSeq = cursor ? Number(cursor[cursor.length - 1]) : undefined;
  const after =
    cursorSeq === undefined ? records : records.filter((r) => (descending ? r.seq < cursorSeq : r.seq > cursorSeq));
  after.sort((a, b) => (descending ? b.seq - a.seq : a.seq - b.seq));
  return after.map((record) => ({ record, key: [record.ts, record.seq] }));
}

/** Index of the first log entry whose seq is greater than `seq`. */
function upperBound(log: readonly StoredRecord[], seq: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((log[mid] as StoredRecord).seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sortRulesOf(request: SearchRequest, types: string[]): SortRule[] {
  // Without _sort the order is still total (oldest change first), so paging stays exact.
  const rules = request.sortRules?.length ? request.sortRules : [{ code: '_lastUpdated', descending: false }];
  for (const rule of rules) {
    if (rule.code === '_lastUpdated' || rule.code === '_id') continue;
    for (const type of types) {
      if (!globalSchema.types[type]?.searchParams?.[rule.code]?.expression) {
        throw new OperationOutcomeError(badRequest(`Unknown sort parameter for ${type}: ${rule.code}`));
      }
    }
  }
  return rules;
}

function keyOf(record: StoredRecord, rules: SortRule[]): Key {
  const key: Key = rules.map((rule) => sortValue(record, rule.code));
  key.push(record.seq);
  return key;
}

function sortValue(record: StoredRecord, code: string): string | number {
  if (code === '_lastUpdated') return record.ts;
  if (code === '_id') return record.resource.id;
  const cache = cacheOf(record, 'sort');
  let value = cache.get(code);
  if (typeof value !== 'string') {
    const expression = searchExpression(record.resource.resourceType, code);
    value = JSON.stringify(expression ? evalFhirPath(expression, record.resource) : []);
    cache.set(code, value);
  }
  return value as string;
}

function compareKeys(a: Key, b: Key, rules: SortRule[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x === y) continue;
    const cmp = x < y ? -1 : 1;
    // The final element (seq) follows the direction of the last rule, as the log walk does.
    return (rules[i] ?? rules[rules.length - 1])?.descending ? -cmp : cmp;
  }
  return 0;
}

function encodeCursor(key: Key): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string, ruleCount: number): Key {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== ruleCount + 1 ||
    !parsed.every((v) => typeof v === 'string' || typeof v === 'number')
  ) {
    throw new OperationOutcomeError(badRequest('Invalid _cursor (it belongs to a different search)'));
  }
  return parsed;
}
