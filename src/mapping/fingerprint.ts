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
//
// What the bridge itself writes to the source (the tracking id, sources[].writeBack) is left out: it is no
// change of the record. On DHIS2, what every source of the same server writes is: one source's tracking id
// lands on records another reads too (a tracked entity in both a birth and a death programme, a mother read
// as a child's context who is herself a death notified by the other source). The ledger keeps the fingerprint of a delivered row read again unchanged as it was
// (it is not computed then), so one taken before the write-back would otherwise differ from every reading
// after it, and the next mapping or routing change would count an update after notification.
import { createHash } from 'node:crypto';
import type { SourceSettings, WriteBackSettings } from '../config/types.js';
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
 * regenerate from the same content: another generator, another whitespace), with `meta` stable and
 * without the write-backs' identifiers (`systems`, see OwnWrites); the same for its contained resources.
 * Only the resource's own `text`: a CodeableConcept's `text` is content.
 */
function stableResource(record: object, systems: ReadonlySet<string> | undefined): Obj {
  const resource = record as Obj;
  const copy: Obj = {};
  for (const key in resource) {
    const value = resource[key];
    if (key === 'text') continue;
    if (key === 'meta') copy.meta = stableMeta(value);
    else if (key === 'identifier' && systems && Array.isArray(value)) {
      // FHIR has no empty arrays: a resource whose only identifier is the tracking id had none before.
      const kept = withoutAny(value, 'system', systems);
      if (kept.length > 0) copy.identifier = kept;
    } else if (key === 'contained' && Array.isArray(value))
      copy.contained = value.map((r) => (isResource(r) ? stableResource(r, systems) : r));
    else copy[key] = value;
  }
  return copy;
}

/**
 * What one source's write-back puts into its records, left out of their fingerprints: built once per
 * source (ownWritesOf), so a fingerprint allocates nothing for it unless a record holds such a value.
 */
export interface OwnWrites {
  /** DHIS2: the JSON replacer for this source's records (the volatile keys and its tracking id dropped). */
  readonly dhis2Replacer?: (key: string, value: unknown) => unknown;
  /** FHIR: the systems of the tracking-id identifiers (on a Patient or trigger resource, or on a carrier). */
  readonly identifierSystems?: ReadonlySet<string>;
  /** FHIR: the types of the resources the write-backs create to carry the tracking id (`target: task` …). */
  readonly carrierTypes?: ReadonlySet<string>;
  /**
   * When other sources of the same server write back what this one does not: what the fingerprint left
   * out before it left out theirs, the source's own write-back only. A row dismissed then keeps a
   * fingerprint holding another source's tracking id, and the ledger compares it with this one as well
   * (ledger/record.ts), so that the record mapped otherwise is not taken for a change and sent.
   */
  readonly ownOnly?: OwnWrites;
}

/**
 * The source's write-back as the fingerprint leaves it out, or undefined when it has none. Also while it
 * is disabled (`enabled: false`): the records keep the tracking ids it wrote before. With the write-backs of
 * the other sources of the same server and kind (`sameServer`, sources/overlap.ts writeBacksOnServer), which
 * land on records this source reads too (a mother read as a birth's context is the death another source
 * notifies): their DHIS2 data elements and attributes, their FHIR identifier systems and carriers, which
 * nothing but the bridge writes either.
 */
export function ownWritesOf(
  source: Pick<SourceSettings, 'kind' | 'writeBack'>,
  sameServer: readonly WriteBackSettings[] = [],
): OwnWrites | undefined {
  const own = source.writeBack ? [source.writeBack] : [];
  if (source.kind === 'dhis2') {
    const dataElements = uidsOf([...own, ...sameServer], 'dataElement');
    const attributes = uidsOf([...own, ...sameServer], 'attribute');
    if (dataElements.size === 0 && attributes.size === 0) return undefined;
    const ownDataElements = uidsOf(own, 'dataElement');
    const ownAttributes = uidsOf(own, 'attribute');
    const widened = dataElements.size > ownDataElements.size || attributes.size > ownAttributes.size;
    const ownOnly = { dhis2Replacer: dhis2ReplacerWithout(ownDataElements, ownAttributes) };
    return { dhis2Replacer: dhis2ReplacerWithout(dataElements, attributes), ...(widened ? { ownOnly } : {}) };
  }
  const all = fhirWritesOf([...own, ...sameServer]);
  if (!all) return undefined;
  const mine = fhirWritesOf(own);
  const widened =
    all.identifierSystems.size > (mine?.identifierSystems.size ?? 0) ||
    (all.carrierTypes?.size ?? 0) > (mine?.carrierTypes?.size ?? 0);
  // Before, nothing was left out of a source that writes nothing back: the empty rule.
  return widened ? { ...all, ownOnly: mine ?? {} } : all;
}

/** What the FHIR write-backs `writeBacks` leave out of a fingerprint: undefined when none writes an identifier. */
function fhirWritesOf(
  writeBacks: readonly WriteBackSettings[],
): { identifierSystems: ReadonlySet<string>; carrierTypes?: ReadonlySet<string> } | undefined {
  const identifierSystems = new Set(writeBacks.flatMap((w) => (w.identifierSystem ? [w.identifierSystem] : [])));
  if (identifierSystems.size === 0) return undefined;
  const carrierTypes = new Set(
    writeBacks.flatMap((w) =>
      w.target === 'task' ? ['Task'] : w.target === 'documentReference' ? ['DocumentReference'] : [],
    ),
  );
  return carrierTypes.size > 0 ? { identifierSystems, carrierTypes } : { identifierSystems };
}

function uidsOf(writeBacks: readonly WriteBackSettings[], field: 'dataElement' | 'attribute'): Set<string> {
  return new Set(writeBacks.flatMap((w) => (w[field] ? [w[field]] : [])));
}

/** `list` without the items whose `field` is one of `values`: the same array when none is (the common case). */
function withoutAny(list: unknown[], field: string, values: ReadonlySet<unknown>): unknown[] {
  const drop = (item: unknown) => isObject(item) && values.has(item[field]);
  return list.some(drop) ? list.filter((item) => !drop(item)) : list;
}

/** DHIS2 JSON: the volatile keys dropped at any depth, and the bridge's `meta.versionId` with them. */
const dhis2Replacer = (key: string, value: unknown): unknown =>
  VOLATILE_DHIS2.has(key) ? undefined : key === 'meta' ? stableMeta(value) : value;

/**
 * dhis2Replacer, and the tracking ids the write-backs store: the data values of `dataElements` (on whichever
 * event: the trigger's or the configured stage's) and the attribute values of `attributes` (on the tracked
 * entity, and as DHIS2 repeats program attributes on the enrollment). Left out at any depth: nothing but
 * the bridge writes these uids, by the configuration.
 */
function dhis2ReplacerWithout(
  dataElements: ReadonlySet<string>,
  attributes: ReadonlySet<string>,
): (key: string, value: unknown) => unknown {
  return (key, value) => {
    if (key === 'dataValues' && dataElements.size > 0 && Array.isArray(value))
      return withoutAny(value, 'dataElement', dataElements);
    if (key === 'attributes' && attributes.size > 0 && Array.isArray(value))
      return withoutAny(value, 'attribute', attributes);
    return dhis2Replacer(key, value);
  };
}

/**
 * The ids FhirWriteBack gives the carriers it creates (writeBackResourceId in
 * sources/writeback/fhir-target.ts: `opencrvs-<event type>-<32 hex digits>`). Mirrored here, as the mapping
 * does not depend on the write-back; the unit test holds the two together.
 */
const CARRIER_ID = /^opencrvs-.+-[0-9a-f]{32}$/;

/**
 * A Task or DocumentReference the FHIR write-back created to carry the tracking id, should a mapping's
 * search read it: the bridge's own record, left out whole (the source's own, or another of its server's: see
 * ownWritesOf). Only one of a configured target's type under an id of the bridge's scheme: a source's own Task or DocumentReference that merely holds the tracking id
 * (`target: identifier, resource: trigger` writes it onto the trigger) is the record itself, its content
 * kept (the identifier alone is left out, stableResource).
 */
function isOwnCarrier(record: Obj, carrierTypes: ReadonlySet<string>): boolean {
  return (
    typeof record.resourceType === 'string' &&
    carrierTypes.has(record.resourceType) &&
    typeof record.id === 'string' &&
    CARRIER_ID.test(record.id)
  );
}

/**
 * sha256 (hex) of the records `ctx` was assembled from, each made stable (see VOLATILE_META,
 * VOLATILE_DHIS2 and stableResource) and without what the source's write-back wrote (`own`), in an order
 * that does not depend on the source's (a search answering in another order is no change). A mapping that
 * reads more or other records (a new context item, a search widened by a code) reads other content: its
 * fingerprint differs as for a changed record.
 */
export function sourceFingerprint(mapping: CompiledMapping, ctx: MappingContext, own?: OwnWrites): string {
  const dhis2 = mapping.source === 'dhis2';
  const replacer = own?.dhis2Replacer ?? dhis2Replacer;
  const systems = own?.identifierSystems;
  const carrierTypes = own?.carrierTypes;
  // The context cache hands out one object for a record read by a search and a read: serialised once.
  const records = new Set<Resource>([ctx.subject]);
  for (const item of mapping.context) {
    if (item.kind === 'value') continue;
    const found = ctx.vars[item.name];
    if (Array.isArray(found)) for (const r of found) if (isResource(r)) records.add(r);
  }
  const texts: string[] = [];
  for (const r of records) {
    if (dhis2) texts.push(JSON.stringify(r, replacer));
    else if (!carrierTypes || !isOwnCarrier(r as unknown as Obj, carrierTypes))
      texts.push(JSON.stringify(stableResource(r, systems)));
  }
  texts.sort();
  // One record fetched twice (two searches, each its own copy) is one record: equal texts, now side by side.
  // JSON holds no raw newline: joined so, the texts cannot run into each other.
  let joined = texts[0] ?? '';
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
export function lazySourceFingerprint(mapping: CompiledMapping, ctx: MappingContext, own?: OwnWrites): () => string {
  let context: MappingContext | undefined = ctx;
  let fingerprint: string | undefined;
  return () => {
    if (fingerprint === undefined) {
      fingerprint = sourceFingerprint(mapping, context as MappingContext, own);
      context = undefined; // the records are no longer needed once hashed
    }
    return fingerprint;
  };
}
