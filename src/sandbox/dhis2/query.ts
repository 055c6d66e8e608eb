import { ORG_UNIT_TREE } from './constants.js';
import { parseDhis2DateTime } from './time.js';

/** A request DHIS2 would answer with 400 Bad Request and this message. */
export class BadRequestError extends Error {}

/** DHIS2 2.41+ (`pager` + named list, as the docs examples show) or 2.40 (`page`… + `instances`). */
export type PageEnvelope = 'trackedEntities' | 'instances';

export const DEFAULT_PAGE_SIZE = 50;
/** Sandbox limit: larger pages are refused so a misconfigured poller fails loudly in tests. */
export const MAX_PAGE_SIZE = 1000;

export function param(params: URLSearchParams, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = params.get(name);
    if (value !== null && value.trim() !== '') return value.trim();
  }
  return undefined;
}

/** Comma- (or, as older DHIS2 clients send, semicolon-) separated uid lists. */
export function listParam(params: URLSearchParams, ...names: string[]): string[] {
  const values = names.flatMap((name) => params.getAll(name));
  return values
    .flatMap((v) => v.split(/[,;]/))
    .map((v) => v.trim())
    .filter(Boolean);
}

export function boolParam(params: URLSearchParams, name: string, fallback: boolean): boolean {
  const value = param(params, name);
  if (value === undefined) return fallback;
  if (/^true$/i.test(value)) return true;
  if (/^false$/i.test(value)) return false;
  throw new BadRequestError(`Value '${value}' is not valid for parameter ${name}. It should be of type Boolean.`);
}

export interface PageRequest {
  paging: boolean;
  page: number;
  pageSize: number;
  totalPages: boolean;
}

/**
 * `maxPageSize`: serve larger pages at that size (the pager says so) instead of refusing them, as a server
 * or a proxy in front of it that limits pages would (a test knob: DHIS2 itself serves any size asked).
 */
export function parsePaging(params: URLSearchParams, maxPageSize?: number): PageRequest {
  const intParam = (name: string, fallback: number): number => {
    const value = param(params, name);
    if (value === undefined) return fallback;
    if (!/^-?\d+$/.test(value))
      throw new BadRequestError(`Value '${value}' is not valid for parameter ${name}. It should be of type Integer.`);
    return Number(value);
  };
  const page = intParam('page', 1);
  const asked = intParam('pageSize', DEFAULT_PAGE_SIZE);
  const pageSize = maxPageSize === undefined ? asked : Math.min(asked, maxPageSize);
  if (page < 1) throw new BadRequestError('page must be greater than or equal to 1 if specified');
  if (pageSize < 1) throw new BadRequestError('pageSize must be greater than or equal to 1 if specified');
  if (pageSize > MAX_PAGE_SIZE) throw new BadRequestError(`pageSize must be less than or equal to ${MAX_PAGE_SIZE}`);
  const skipPaging = boolParam(params, 'skipPaging', false);
  return {
    paging: boolParam(params, 'paging', true) && !skipPaging,
    page,
    pageSize,
    totalPages: boolParam(params, 'totalPages', false),
  };
}

/** Shapes one page of already filtered and ordered items into the configured envelope. */
export function pageOf<T>(
  items: T[],
  request: PageRequest,
  key: string,
  envelope: PageEnvelope,
  view: (item: T) => unknown,
): Record<string, unknown> {
  const listKey = envelope === 'instances' ? 'instances' : key;
  if (!request.paging) return { [listKey]: items.map(view) };
  const start = (request.page - 1) * request.pageSize;
  // Views are built for the requested page only: nesting enrollments and events is the costly part.
  const slice = items.slice(start, start + request.pageSize).map(view);
  const totals = request.totalPages
    ? { total: items.length, pageCount: Math.ceil(items.length / request.pageSize) }
    : {};
  const pager = { page: request.page, pageSize: request.pageSize, ...totals };
  return envelope === 'instances' ? { ...pager, instances: slice } : { pager, [listKey]: slice };
}

/** updatedAfter/updatedBefore, inclusive at both ends like DHIS2's `lastupdated >= :start` SQL. */
export function updatedWindow(params: URLSearchParams): (updatedAt: string | undefined) => boolean {
  const bound = (name: string): number | undefined => {
    const value = param(params, name);
    if (value === undefined) return undefined;
    const ms = parseDhis2DateTime(value);
    if (ms === undefined) throw new BadRequestError(`Invalid date time '${value}' for parameter ${name}`);
    return ms;
  };
  const after = bound('updatedAfter');
  const before = bound('updatedBefore');
  return (updatedAt) => {
    if (after === undefined && before === undefined) return true;
    const ms = updatedAt ? parseDhis2DateTime(updatedAt) : undefined;
    if (ms === undefined) return false;
    return (after === undefined || ms >= after) && (before === undefined || ms <= before);
  };
}

const MODES = ['SELECTED', 'CHILDREN', 'DESCENDANTS', 'ACCESSIBLE', 'CAPTURE', 'ALL'] as const;

/**
 * Which org units a request selects. The simulated user is a superuser whose capture and search scope is
 * the whole tree, so ACCESSIBLE, CAPTURE and ALL select everything; with no org unit and no mode DHIS2
 * (2.41) falls back to ACCESSIBLE.
 */
export function orgUnitScope(
  params: URLSearchParams,
  isKnown: (orgUnit: string) => boolean,
  names: string[],
): (orgUnit: string | undefined) => boolean {
  const selected = listParam(params, ...names);
  const rawMode = param(params, 'orgUnitMode', 'ouMode')?.toUpperCase();
  const mode = MODES.find((m) => m === (rawMode ?? (selected.length ? 'SELECTED' : 'ACCESSIBLE')));
  if (!mode) throw new BadRequestError(`Value '${rawMode}' is not valid for parameter orgUnitMode.`);
  if (mode === 'ACCESSIBLE' || mode === 'CAPTURE' || mode === 'ALL') {
    if (selected.length)
      throw new BadRequestError(
        `orgUnitMode ${mode} cannot be used with orgUnits. Please remove the orgUnits parameter and try again.`,
      );
    return () => true;
  }
  if (!selected.length)
    throw new BadRequestError(
      `At least one org unit is required for orgUnitMode: ${mode}. Please add an orgUnits or use a different orgUnitMode.`,
    );
  for (const uid of selected) {
    if (!isKnown(uid)) throw new BadRequestError(`Organisation unit does not exist: ${uid}`);
  }
  const allowed = new Set(selected);
  if (mode !== 'SELECTED') {
    let frontier = [...selected];
    // CHILDREN goes one level down; DESCENDANTS to the leaves. The tree is tiny, so a breadth walk is fine.
    for (let depth = 0; frontier.length && (mode === 'DESCENDANTS' || depth < 1); depth++) {
      frontier = ORG_UNIT_TREE.filter((ou) => ou.parent && frontier.includes(ou.parent)).map((ou) => ou.id);
      for (const id of frontier) allowed.add(id);
    }
  }
  return (orgUnit) => orgUnit !== undefined && allowed.has(orgUnit);
}

export interface Sortable {
  uid: string;
  sequence: number;
  get(field: string): unknown;
}

/**
 * How records equal on every `order` key are ordered. `uid`: by uid, so equal timestamps page stably.
 * `offset`: by a key of the page and page size asked, fixed for each (a test knob). PostgreSQL, under
 * DHIS2, documents that ORDER BY a non-unique column with LIMIT/OFFSET may order such rows differently for
 * different limits and offsets: paging through a run of equal timestamps can then give one record twice and
 * never give another.
 */
export type TieOrder = 'uid' | 'offset';

/**
 * `order=updatedAt:asc,createdAt:desc`, then the tie order (see TieOrder). Without `order`, newest first by
 * internal id, as DHIS2 does.
 */
export function comparator(
  params: URLSearchParams,
  allowed: readonly string[],
  ties: TieOrder = 'uid',
  paging?: PageRequest,
): (a: Sortable, b: Sortable) => number {
  const text = param(params, 'order');
  if (!text) return (a, b) => b.sequence - a.sequence;
  const keys = text.split(',').map((part) => {
    const [field = '', direction = 'asc'] = part.trim().split(':');
    if (!allowed.includes(field))
      throw new BadRequestError(
        `order parameter is invalid. Cannot order by '${field}'. Supported are ${allowed.join(', ')}.`,
      );
    if (!/^(asc|desc)$/i.test(direction))
      throw new BadRequestError(`order parameter is invalid. Unknown sort direction '${direction}'.`);
    return { field, sign: /^desc$/i.test(direction) ? -1 : 1 };
  });
  const parsed = new Map<string, number | undefined>();
  const time = (value: string) => {
    if (!parsed.has(value)) parsed.set(value, parseDhis2DateTime(value));
    return parsed.get(value);
  };
  const plan = paging?.paging ? `${paging.pageSize}:${paging.page}` : 'all';
  const tie = ties === 'offset' ? (s: Sortable) => fnv1a(`${plan}:${s.uid}`) : () => 0;
  return (a, b) => {
    for (const { field, sign } of keys) {
      const diff = compareValues(a.get(field), b.get(field), time);
      if (diff !== 0) return sign * diff;
    }
    return tie(a) - tie(b) || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0);
  };
}

/** A 32-bit FNV-1a hash: a fixed, well-spread order for the `offset` tie order. */
function fnv1a(text: string): number {
  let h = 2166136261;
  for (const c of text) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

function compareValues(a: unknown, b: unknown, time: (value: string) => number | undefined): number {
  if (a === b) return 0;
  if (a === undefined || a === null) return -1;
  if (b === undefined || b === null) return 1;
  if (typeof a === 'string' && typeof b === 'string') {
    const ma = time(a);
    const mb = time(b);
    if (ma !== undefined && mb !== undefined) return ma - mb;
    return a < b ? -1 : 1;
  }
  return String(a) < String(b) ? -1 : 1;
}

/** The `filter` operators the simulator applies: those a look-up by an identifier (`ledger --find`) uses. */
const ATTRIBUTE_OPERATORS: Record<string, (value: string, wanted: string) => boolean> = {
  eq: (value, wanted) => value === wanted,
  ieq: (value, wanted) => value === wanted,
  like: (value, wanted) => value.includes(wanted),
  ilike: (value, wanted) => value.includes(wanted),
};

/**
 * The tracked entity attribute filters of `filter=<attribute uid>:<operator>:<value>[:<operator>:<value>]`,
 * several comma-separated, `/` escaping a comma or colon in a value. As DHIS2 (2.41 tracker export), values
 * are compared case-insensitively and every filter must hold; an attribute the record lacks holds none.
 * Operators other than eq, ieq, like and ilike are refused rather than ignored, so no test reads a list the
 * simulator did not filter as one DHIS2 would have.
 */
export function attributeFilters(
  params: URLSearchParams,
): (attributes: { attribute?: string; value?: string | null }[]) => boolean {
  const split = (text: string, separator: string): string[] =>
    text.split(new RegExp(`(?<!/)${separator}`)).map((part) => part.replaceAll(`/${separator}`, separator));
  const tests = params
    .getAll('filter')
    .flatMap((value) => split(value, ','))
    .filter((filter) => filter.trim() !== '')
    .map((filter) => {
      const [attribute = '', ...pairs] = split(filter.trim(), ':');
      if (pairs.length === 0 || pairs.length % 2 !== 0)
        throw new BadRequestError(`Query item or filter is invalid: ${filter}`);
      const conditions = [];
      for (let i = 0; i < pairs.length; i += 2) {
        const operator = (pairs[i] ?? '').toLowerCase();
        const compare = ATTRIBUTE_OPERATORS[operator];
        if (!compare)
          throw new BadRequestError(`Filter operator '${operator}' is not simulated (eq, ieq, like, ilike)`);
        const wanted = (pairs[i + 1] ?? '').toLowerCase();
        conditions.push((value: string) => compare(value.toLowerCase(), wanted));
      }
      return { attribute, conditions };
    });
  return (attributes) =>
    tests.every(({ attribute, conditions }) => {
      const value = attributes.find((a) => a.attribute === attribute)?.value;
      return typeof value === 'string' && conditions.every((holds) => holds(value));
    });
}
