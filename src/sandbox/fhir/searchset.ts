import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import type { SearchResult } from './search.js';

export interface SearchsetInput {
  baseUrl: string;
  /** `Patient`, or '' for a system-level search. */
  path: string;
  /** The query as the client sent it (GET query string or POST _search form). */
  query: URLSearchParams;
  result: SearchResult;
  /** `_elements`: top-level fields to keep. */
  fields?: string[];
  /** Server time when the search started (ms): the safe watermark for the next incremental poll. */
  serverTime: number;
  /** `next` links by `_offset` into the query run again, as OpenMRS pages, instead of a keyset cursor. */
  offsetPaging?: { offset: number; count?: number };
}

// Paging parameters the server owns; everything else in the client's query is carried over verbatim.
const PAGING_PARAMS = ['_cursor', '_offset'];

/** A searchset Bundle with `self`, `first` and (when more matches follow) an opaque `next` link. */
export function searchsetBundle(input: SearchsetInput): Bundle {
  const { baseUrl, path, query, result } = input;
  const link: BundleLink[] = [{ relation: 'self', url: urlWith(baseUrl, path, query) }];
  const first = new URLSearchParams(query);
  for (const name of PAGING_PARAMS) first.delete(name);
  link.push({ relation: 'first', url: urlWith(baseUrl, path, first) });
  if (result.nextCursor) {
    const next = new URLSearchParams(first);
    const offsets = input.offsetPaging;
    if (offsets) next.set('_offset', String(offsets.offset + (offsets.count ?? result.page.length)));
    else next.set('_cursor', result.nextCursor);
    link.push({ relation: 'next', url: urlWith(baseUrl, path, next) });
  }
  const entry: BundleEntry[] = result.page.map((record) => ({
    fullUrl: `${baseUrl}/${record.resource.resourceType}/${record.resource.id}`,
    resource: input.fields ? project(record.resource, input.fields) : record.resource,
    search: { mode: 'match' },
  }));
  return {
    resourceType: 'Bundle',
    meta: { lastUpdated: new Date(input.serverTime).toISOString() },
    type: 'searchset',
    total: result.total,
    link,
    ...(entry.length ? { entry } : {}),
  };
}

function urlWith(baseUrl: string, path: string, query: URLSearchParams): string {
  const qs = query.toString();
  const url = path ? `${baseUrl}/${path}` : baseUrl;
  return qs ? `${url}?${qs}` : url;
}

/** `_elements`: keeps the named top-level elements plus the mandatory ones, and marks the result SUBSETTED. */
function project(resource: Resource, fields: string[]): Resource {
  const keep = new Set([...fields.map((f) => f.trim()), 'resourceType', 'id', 'meta']);
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(resource)) {
    if (keep.has(name)) out[name] = value;
  }
  const meta = { ...resource.meta, tag: [...(resource.meta?.tag ?? []), SUBSETTED] };
  return { ...out, meta } as Resource;
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
