// References and the in-memory fetcher over a Bundle (any type) or an array of resources: what `map --input`
// and the tests use in place of a FHIR server. The search parameters below are the only ones mappings may
// use, so a mapping that works in a dry run works the same against a live server.
import { isFhirId } from '../sources/fhir/notification.js';
import { baseUrlKey, serverKey } from '../util/fhir-base.js';
import { isObject } from '../util/is-object.js';
import { asJson, type Resource, type ResourceFetcher } from './types.js';

/** Search parameters a mapping's context may use, with the element paths they search (per resource type). */
export const SEARCH_PARAM_PATHS: Readonly<Record<string, (type: string) => readonly string[]>> = {
  subject: () => ['subject'],
  patient: (type) => (type === 'RelatedPerson' ? ['patient'] : ['subject', 'patient']),
  encounter: () => ['encounter', 'context'],
  focus: () => ['focus'],
  entry: () => ['section.entry'],
  'part-of': () => ['partOf'],
};
/** Token search parameters a mapping's context may use, with the element they search. */
export const TOKEN_PARAM_PATHS: Readonly<Record<string, string>> = { code: 'code', type: 'type' };
export const SUPPORTED_SEARCH_PARAMS: ReadonlySet<string> = new Set([
  '_id',
  ...Object.keys(SEARCH_PARAM_PATHS),
  ...Object.keys(TOKEN_PARAM_PATHS),
]);

export function isResource(value: unknown): value is Resource {
  return isObject(value) && typeof value.resourceType === 'string';
}

/**
 * 'Patient/1', 'http://x/fhir/Patient/1/_history/2' → {type:'Patient', id:'1'}; 'urn:uuid:…' → {type:'', id: urn}.
 * The id must be a FHIR id by the receiver's rule (isFhirId): `Patient/..` names no resource, and read
 * from a live server it would be `<base>/Patient/..`, the base itself, with the source's credentials.
 */
export function parseReference(ref: string): { type: string; id: string } | undefined {
  if (/^urn:(uuid|oid):/i.test(ref)) return { type: '', id: ref };
  const clean = ref.replace(/\/_history\/[^/]+$/, '').replace(/[?#].*$/, '');
  const match = /(?:^|\/)([A-Z][A-Za-z]+)\/([^/]+)$/.exec(clean);
  const [, type, id] = match ?? [];
  return type && id !== undefined && isFhirId(id) ? { type, id } : undefined;
}

/** A reference with a scheme and an authority (`http://mpi.example.org/fhir/Patient/1`): it names its server. */
export function isAbsoluteReference(ref: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(ref);
}

/**
 * The server an absolute reference names, for a warning: its scheme, host and port only (never its path,
 * whose id is a person's record, nor user info).
 */
export function referenceOrigin(ref: string): string {
  try {
    const url = new URL(ref);
    return `${url.protocol}//${url.host}`;
  } catch {
    return 'an address that is no URL';
  }
}

/** A record's URL path (`/fhir/Patient/1`, `…/_history/2`, a fullUrl) less its `/Type/id`: its server's base path. */
function basePathOf(path: string): string {
  return path.replace(/\/_history\/[^/]+$/, '').replace(/\/[^/]+\/[^/]+$/, '');
}

/** An absolute http(s) reference to a record (`<base>/Type/id`, `…/_history/v`): its server's key and Type/id. */
function splitAbsolute(ref: string): { server: string; type: string; id: string } | undefined {
  if (!/^https?:\/\//i.test(ref)) return undefined;
  const parsed = parseReference(ref);
  if (!parsed?.type) return undefined;
  let url: URL;
  try {
    url = new URL(ref);
  } catch {
    return undefined;
  }
  return { server: serverKey(url, basePathOf(url.pathname)), type: parsed.type, id: parsed.id };
}

/**
 * The absolute references of one FHIR server, its base URLs parsed once: `bases` are the addresses it
 * writes its own records under (its baseUrl, and any other address of itself: an internal host name,
 * http behind a TLS proxy). A reference `<base>/Type/id` under one of them answers its type and id, to read
 * from that server; any other answers undefined: `Patient/123` on another server (a master patient
 * index) is another record, maybe another person, than `Patient/123` here.
 */
export function referencesOf(bases: readonly string[]): (ref: string) => { type: string; id: string } | undefined {
  const keys = new Set(bases.flatMap((base) => baseUrlKey(base) ?? []));
  return (ref) => {
    const split = splitAbsolute(ref);
    return split && keys.has(split.server) ? { type: split.type, id: split.id } : undefined;
  };
}

/** An absolute reference under `base` (a FHIR server's base URL, `https://emr.example.org/fhir`): see referencesOf. */
export function referenceUnderBase(ref: string, base: string): { type: string; id: string } | undefined {
  return referencesOf([base])(ref);
}

/** 'Type/id' for any reference form, the urn itself for urn references, else the input. */
export function normalizeReference(ref: string): string {
  const parsed = parseReference(ref);
  if (!parsed) return ref;
  return parsed.type ? `${parsed.type}/${parsed.id}` : parsed.id;
}

/** Values at a dotted path, arrays flattened ('section.entry' on a Composition). */
export function valuesAtPath(node: unknown, path: string): unknown[] {
  let current: unknown[] = [node];
  for (const part of path.split('.')) {
    const next: unknown[] = [];
    for (const item of current) {
      if (!isObject(item)) continue;
      const v = item[part];
      if (Array.isArray(v)) next.push(...v);
      else if (v !== undefined && v !== null) next.push(v);
    }
    current = next;
  }
  return current;
}

export function referencesAtPath(resource: unknown, path: string): string[] {
  return valuesAtPath(resource, path).flatMap((r) =>
    isObject(r) && typeof r.reference === 'string' ? [r.reference] : [],
  );
}

function tokenMatches(concepts: unknown[], tokens: string[], fold = (s: string) => s): boolean {
  for (const concept of concepts) {
    const codings = isObject(concept) && Array.isArray(concept.coding) ? concept.coding : [];
    for (const c of codings) {
      if (!isObject(c) || typeof c.code !== 'string') continue;
      const code = fold(c.code);
      const system = fold(typeof c.system === 'string' ? c.system : '');
      for (const raw of tokens) {
        const token = fold(raw);
        const bar = token.lastIndexOf('|');
        if (bar < 0 ? code === token : code === token.slice(bar + 1) && system === token.slice(0, bar)) return true;
      }
    }
  }
  return false;
}

/**
 * Whether a server could return `resource` for a token parameter with these values. It errs towards
 * yes (case folded, as some servers compare): a wrong "no" could hide a change from its subject.
 */
export function mayMatchToken(resource: Resource, param: string, values: string[]): boolean {
  const path = TOKEN_PARAM_PATHS[param];
  if (!path) return true;
  return tokenMatches(valuesAtPath(resource, path), values, (s) => s.toLowerCase());
}

function entriesOf(input: unknown): Array<{ fullUrl?: string; resource: Resource }> {
  if (Array.isArray(input)) return input.filter(isResource).map((resource) => ({ resource }));
  if (!isResource(input))
    throw new Error(
      'input is neither a FHIR resource, a Bundle nor an array of resources, nor DHIS2 tracked entities (for DHIS2, ' +
        'give a tracked entity: GET /api/tracker/trackedEntities/<uid>?program=<program>&fields=*)',
    );
  if (input.resourceType !== 'Bundle') return [{ resource: input }];
  const entry = asJson(input).entry;
  const entries: unknown[] = Array.isArray(entry) ? entry : [];
  return entries.flatMap((e) =>
    isObject(e) && isResource(e.resource)
      ? [{ fullUrl: typeof e.fullUrl === 'string' ? e.fullUrl : undefined, resource: e.resource }]
      : [],
  );
}

/**
 * An in-memory fetcher: resolves 'Type/id', urn:uuid and absolute fullUrl references; a few search params.
 * An absolute reference is the bundle's when it is an entry's fullUrl, or lies under the base of one (a
 * document's entries from one server, `<base>/Type/id`); any other names another server's record, which
 * the live source would not read either (see ResourceFetcher.resolveAbsolute).
 */
export function bundleFetcher(input: unknown): ResourceFetcher & { resources: Resource[] } {
  const byKey = new Map<string, Resource>();
  const resources: Resource[] = [];
  /** The servers (baseUrlKey) of the entries' absolute fullUrls (`<base>/Type/id`), and each such entry's. */
  const bases = new Set<string>();
  const baseOf = new Map<Resource, string>();
  for (const [i, { fullUrl, resource }] of entriesOf(input).entries()) {
    let r = resource;
    if (typeof r.id !== 'string') {
      // OpenCRVS v1 and many transaction bundles identify entries only by a urn:uuid fullUrl.
      const urn = fullUrl && /^urn:uuid:(.+)$/i.exec(fullUrl);
      r = { ...r, id: urn ? (urn[1] as string) : `entry-${i}` };
    }
    const key = `${r.resourceType}/${r.id}`;
    if (byKey.has(key)) continue; // history bundles list the newest version first
    byKey.set(key, r);
    if (fullUrl) byKey.set(fullUrl, r);
    const server = fullUrl && splitAbsolute(fullUrl)?.server;
    if (server) {
      bases.add(server);
      baseOf.set(r, server);
    }
    resources.push(r);
  }

  const resolveAbsolute = (ref: string): { type: string; id: string } | undefined => {
    const clean = ref.replace(/[?#].*$/, '').replace(/\/_history\/[^/]+$/, '');
    if (byKey.has(clean)) return { type: '', id: clean };
    const split = splitAbsolute(ref);
    if (!split) return undefined;
    // The entry of that Type/id answers only for its own server: a document may carry records of two.
    const held = byKey.get(`${split.type}/${split.id}`);
    const heldBase = held && baseOf.get(held);
    const own = heldBase ? heldBase === split.server : bases.has(split.server);
    return own ? { type: split.type, id: split.id } : undefined;
  };

  const canonical = (ref: string): string => {
    const hit = byKey.get(ref);
    if (hit) return `${hit.resourceType}/${hit.id}`;
    if (!isAbsoluteReference(ref)) return normalizeReference(ref);
    // Another server's record references none of this bundle's, whatever its Type/id.
    const local = resolveAbsolute(ref);
    const held = local && !local.type ? byKey.get(local.id) : undefined;
    return held ? `${held.resourceType}/${held.id}` : local ? `${local.type}/${local.id}` : ref;
  };

  return {
    resources,
    resolveAbsolute,
    async read(type, id) {
      return type ? byKey.get(`${type}/${id}`) : byKey.get(id);
    },
    async search(type, params) {
      let found = resources.filter((r) => r.resourceType === type);
      for (const [name, raw] of Object.entries(params)) {
        const values = raw.split(',').filter(Boolean);
        if (name === '_id') {
          found = found.filter((r) => values.includes(r.id as string));
        } else if (TOKEN_PARAM_PATHS[name]) {
          const path = TOKEN_PARAM_PATHS[name];
          found = found.filter((r) => tokenMatches(valuesAtPath(r, path), values));
        } else if (SEARCH_PARAM_PATHS[name]) {
          const wanted = new Set(values.map(canonical));
          const paths = SEARCH_PARAM_PATHS[name](type);
          found = found.filter((r) =>
            paths.some((p) => referencesAtPath(r, p).some((ref) => wanted.has(canonical(ref)))),
          );
        } else {
          throw new Error(`the in-memory fetcher does not support the search parameter '${name}'`);
        }
      }
      return found;
    },
  };
}
