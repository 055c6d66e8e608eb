// A fingerprint of the source content a mapping read for one subject: the subject and every record its
// context read or searched (values derived from them add nothing). The ledger keeps it with the row so a
// dismissed row can tell "the record changed" from "the bridge maps the same record otherwise" (a new
// bridge version, a mapping change): the payload hash changes in both cases (ledger/record.ts).
//
// Computed whenever the ledger stores or compares it (a new row, a changed payload, a row not delivered yet
// read again: lazySourceFingerprint), so it must cost little beside the evaluation: each record is
// serialised by the native JSON.stringify, in the key order the source gave (no sorting of keys at every
// depth). A source serialises a record the same way each time it is read; should a server change its key
// order (another version of it), equal content looks different, which errs the old, safe way, as before
// fingerprints were kept: a dismissed row read again mapped otherwise comes back for a look, a delivered
// one counts an update after notification. Key order never makes different content look the same.
import { createHash } from 'node:crypto';
import type { CompiledMapping } from './compile.js';
import type { MappingContext } from './context.js';
import { isResource } from './fetcher.js';
import type { Resource } from './types.js';

type Obj = Record<string, unknown>;

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

const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null;

/** `meta` without the stamps; undefined when nothing else is in it (as if absent: servers differ there). */
function stableMeta(meta: unknown): unknown {
  if (!isObject(meta) || Array.isArray(meta)) return meta;
  let kept: Obj | undefined;
  for (const key in meta) {
    if (VOLATILE_META.has(key) || meta[key] === undefined) continue;
    kept ??= {};
    kept[key] = meta[key];
  }
  return kept;
}

/**
 * A FHIR resource as fingerprinted: a shallow copy without its narrative (`text`, which a server may
 * regenerate from the same content: another generator, another whitespace) and with `meta` stable; the
 * same for its contained resources. Only the resource's own `text`: a CodeableConcept's `text` is content.
 */
function stableResource(record: object): Obj {
  const resource = record as Obj;
  const copy: Obj = {};
  for (const key in resource) {
    const value = resource[key];
    if (key === 'text') continue;
    if (key === 'meta') copy.meta = stableMeta(value);
    else if (key === 'contained' && Array.isArray(value))
      copy.contained = value.map((r) => (isResource(r) ? stableResource(r) : r));
    else copy[key] = value;
  }
  return copy;
}

/** DHIS2 JSON: the volatile keys dropped at any depth, and the bridge's `meta.versionId` with them. */
const dhis2Replacer = (key: string, value: unknown): unknown =>
  VOLATILE_DHIS2.has(key) ? undefined : key === 'meta' ? stableMeta(value) : value;

/**
 * sha256 (hex) of the records `ctx` was assembled from, each made stable (see VOLATILE_META,
 * VOLATILE_DHIS2 and stableResource), in an order that does not depend on the source's (a search answering
 * in another order is no change). A mapping that reads more or other records (a new context item, a search
 * widened by a code) reads other content: its fingerprint differs as for a changed record.
 */
export function sourceFingerprint(mapping: CompiledMapping, ctx: MappingContext): string {
  const dhis2 = mapping.source === 'dhis2';
  // The context cache hands out one object for a record read by a search and a read: serialised once.
  const records = new Set<Resource>([ctx.subject]);
  for (const item of mapping.context) {
    if (item.kind === 'value') continue;
    const found = ctx.vars[item.name];
    if (Array.isArray(found)) for (const r of found) if (isResource(r)) records.add(r);
  }
  const texts: string[] = [];
  for (const r of records) texts.push(dhis2 ? JSON.stringify(r, dhis2Replacer) : JSON.stringify(stableResource(r)));
  texts.sort();
  // One record fetched twice (two searches, each its own copy) is one record: equal texts, now side by side.
  // JSON holds no raw newline: joined so, the texts cannot run into each other.
  let joined = texts[0] as string;
  for (let i = 1; i < texts.length; i++) if (texts[i] !== texts[i - 1]) joined += `\n${texts[i]}`;
  return createHash('sha256').update(joined).digest('hex');
}

/**
 * `sourceFingerprint`, computed when first asked for and then kept. It costs about as much as evaluating the
 * mapping, and the ledger asks only when it stores or compares it (ledger/record.ts): not for the commonest
 * reading, a delivered record read again by the poll overlap with its payload unchanged. Asked later than
 * the mapping ran (when its page is recorded), it reads the same objects: nothing writes to a record once
 * fetched (the context cache hands the same ones to every subject).
 */
export function lazySourceFingerprint(mapping: CompiledMapping, ctx: MappingContext): () => string {
  let context: MappingContext | undefined = ctx;
  let fingerprint: string | undefined;
  return () => {
    if (fingerprint === undefined) {
      fingerprint = sourceFingerprint(mapping, context as MappingContext);
      context = undefined; // the records are no longer needed once hashed
    }
    return fingerprint;
  };
}
