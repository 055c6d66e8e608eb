import type { FhirPathAtom } from '@medplum/core';
import type { StoredRecord } from './repository.js';
import { searchExpression } from './search-expression.js';
import { type NormalisedReference, normalisedReferencesOf } from './search-values.js';

/**
 * What a reference search asks for: `typed` holds `Type/id` (the last two segments of a relative or
 * absolute value), `bare` the values without a `/`, which match any reference ending in that id.
 */
export interface ReferenceQuery {
  typed: ReadonlySet<string>;
  bare: ReadonlySet<string>;
}

/** The current records holding one reference value, by both of its spellings. */
interface ParamIndex {
  expression: FhirPathAtom;
  typed: Map<string, Set<StoredRecord>>;
  bare: Map<string, Set<StoredRecord>>;
}

/**
 * Reference search parameters indexed by value, so `subject=Patient/a,Patient/b,…` looks up a few
 * buckets instead of evaluating every resource of the type. An index for a (type, parameter) is
 * built on its first search, from the records' cached values, and from then on kept in step with
 * every change of a current version (create, update, delete, transaction rollback): a bucket only
 * ever holds current records. Parameters nobody searches cost nothing on writes.
 */
export class ReferenceIndex {
  private readonly byType = new Map<string, Map<string, ParamIndex>>();

  constructor(private readonly recordsOf: (resourceType: string) => Iterable<StoredRecord>) {}

  /**
   * How many records the lookup can return at most (the sum of the buckets it would read), to pick
   * the most selective of several indexed filters before collecting any of them.
   */
  estimate(resourceType: string, code: string, query: ReferenceQuery): number {
    const index = this.indexOf(resourceType, code);
    let size = 0;
    for (const value of query.typed) size += index.typed.get(value)?.size ?? 0;
    for (const value of query.bare) size += index.bare.get(value)?.size ?? 0;
    return size;
  }

  /** The current records whose parameter `code` holds a reference the query asks for (no order). */
  lookup(resourceType: string, code: string, query: ReferenceQuery): Set<StoredRecord> {
    const index = this.indexOf(resourceType, code);
    const out = new Set<StoredRecord>();
    for (const value of query.typed) for (const record of index.typed.get(value) ?? []) out.add(record);
    for (const value of query.bare) for (const record of index.bare.get(value) ?? []) out.add(record);
    return out;
  }

  /** Called for every change of the current version of a resource: `prior` leaves, `next` enters. */
  replaced(resourceType: string, prior: StoredRecord | undefined, next: StoredRecord | undefined): void {
    const indexes = this.byType.get(resourceType);
    if (!indexes) return;
    for (const [code, index] of indexes) {
      if (prior) for (const ref of normalisedReferencesOf(prior, code, index.expression)) remove(index, ref, prior);
      if (next) for (const ref of normalisedReferencesOf(next, code, index.expression)) add(index, ref, next);
    }
  }

  private indexOf(resourceType: string, code: string): ParamIndex {
    let indexes = this.byType.get(resourceType);
    if (!indexes) {
      indexes = new Map();
      this.byType.set(resourceType, indexes);
    }
    let index = indexes.get(code);
    if (!index) {
      const expression = searchExpression(resourceType, code);
      if (!expression) throw new Error(`No search parameter ${code} on ${resourceType}`);
      index = { expression, typed: new Map(), bare: new Map() };
      for (const record of this.recordsOf(resourceType)) {
        for (const ref of normalisedReferencesOf(record, code, expression)) add(index, ref, record);
      }
      indexes.set(code, index);
    }
    return index;
  }
}

function add(index: ParamIndex, ref: NormalisedReference, record: StoredRecord): void {
  bucket(index.typed, ref.typed).add(record);
  bucket(index.bare, ref.id).add(record);
}

function remove(index: ParamIndex, ref: NormalisedReference, record: StoredRecord): void {
  for (const [map, key] of [
    [index.typed, ref.typed],
    [index.bare, ref.id],
  ] as const) {
    const records = map.get(key);
    records?.delete(record);
    // Empty buckets go, so a long run of updates does not leave one behind per value ever seen.
    if (records?.size === 0) map.delete(key);
  }
}

function bucket(map: Map<string, Set<StoredRecord>>, key: string): Set<StoredRecord> {
  let records = map.get(key);
  if (!records) {
    records = new Set();
    map.set(key, records);
  }
  return records;
}
