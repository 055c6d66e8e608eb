// A fingerprint of the source content a mapping read for one subject: the subject and every record its
// context read or searched (values derived from them add nothing). The ledger keeps it with the row so a
// dismissed row can tell "the record changed" from "the bridge maps the same record otherwise" (a new
// bridge version, a mapping change): the payload hash changes in both cases (ledger/record.ts).
import { createHash } from 'node:crypto';
import type { CompiledMapping } from './compile.js';
import type { MappingContext } from './context.js';
import type { Resource } from './types.js';

/**
 * Stamps a FHIR server writes on every version, whether or not the content changed (a resource saved
 * again as it was): `versionId`, `lastUpdated`, `source` (HAPI stamps the request id there) and `author`
 * (Medplum: who wrote it). `tag`, `security` and `profile` are kept: they are content (a fetal-death
 * profile decides a mapping). The bridge's own `meta.versionId` on DHIS2 records (dhis2-input.ts) is
 * DHIS2's `updatedAt`, dropped here as well.
 */
const VOLATILE_META = new Set(['versionId', 'lastUpdated', 'source', 'author']);

/**
 * DHIS2 keys, at any depth (tracked entity, attribute values, enrollments, events, data values,
 * relationships, notes), that change with no change of what was recorded: when and from which client it
 * was last saved, and by whom (a user account, never part of the birth or death). A change below a tracked
 * entity moves its `updatedAt` too; the change itself is in the content below. `createdAt` is kept: it
 * moves only when something is recorded anew.
 */
const VOLATILE_DHIS2 = new Set([
  'updatedAt',
  'updatedAtClient',
  'lastUpdated',
  'lastUpdatedAtClient',
  'updatedBy',
  'lastUpdatedBy',
  'lastUpdatedByUserInfo',
  'storedBy',
]);

/** JSON with object keys sorted at every depth and the volatile stamps left out. */
function canonical(value: unknown, dhis2: boolean, inMeta = false): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v, dhis2)).join(',')}]`;
  if (value && typeof value === 'object') {
    const body: string[] = [];
    const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined || (inMeta && VOLATILE_META.has(key)) || (dhis2 && VOLATILE_DHIS2.has(key))) continue;
      const text = canonical(v, dhis2, key === 'meta');
      // A meta of stamps only is as if absent (one server adds it where another leaves it out).
      if (key === 'meta' && text === '{}') continue;
      body.push(`${JSON.stringify(key)}:${text}`);
    }
    return `{${body.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function isResource(value: unknown): value is Resource {
  return typeof value === 'object' && value !== null && typeof (value as Resource).resourceType === 'string';
}

/**
 * sha256 (hex) of the records `ctx` was assembled from, each canonicalised (see VOLATILE_META and
 * VOLATILE_DHIS2), in an order that does not depend on the source's (a search answering in another order
 * is no change). A mapping that reads more or other records (a new context item, a search widened by a
 * code) reads other content: its fingerprint differs as for a changed record.
 */
export function sourceFingerprint(mapping: CompiledMapping, ctx: MappingContext): string {
  const dhis2 = mapping.source === 'dhis2';
  const seen = new Set<string>();
  const texts: string[] = [];
  const add = (resource: Resource) => {
    const text = canonical(resource, dhis2);
    // One record read twice (by a search and a read) is one record.
    if (!seen.has(text)) {
      seen.add(text);
      texts.push(text);
    }
  };
  add(ctx.subject);
  for (const item of mapping.context) {
    if (item.kind === 'value') continue;
    const found = ctx.vars[item.name];
    if (Array.isArray(found)) for (const r of found) if (isResource(r)) add(r);
  }
  // Canonical JSON holds no raw newline: joined so, the texts cannot run into each other.
  return createHash('sha256').update(texts.sort().join('\n')).digest('hex');
}
