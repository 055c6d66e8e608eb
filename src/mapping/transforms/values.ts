// Value maps (ConceptMap-like tables: code → OpenCRVS option) and the plain scalar conversions.
import { isObject } from '../../util/is-object.js';
import { isDimensionless } from './units.js';

export interface ValueMap {
  name: string;
  /** Key → output: an option, null ("leave the field out") or a LeftOut (the same, with its own warning). */
  entries: ReadonlyMap<string, unknown>;
  /** The '*' entry: used when nothing matched. */
  fallback?: { value: unknown };
}

/**
 * An entry written `{ leaveOut: '…' }`: the field is left out, like null, with the mapping's own words for
 * the warning ('multiple birth of unknown size (birth order 2): type of birth left out') instead of the
 * generic one. A mapping constant: it says what the code means, never the record's data.
 */
export class LeftOut {
  constructor(readonly warning: string) {}
}

/** A value map's output as written in the file: `{ leaveOut: text }` becomes a LeftOut, others stay. */
export function valueMapOutput(written: unknown): unknown {
  return isObject(written) && typeof written.leaveOut === 'string' ? new LeftOut(written.leaveOut) : written;
}

/** `warning`: the entry's own words when it leaves the field out (value null). */
export type LookupOutcome = { value: unknown; warning?: string } | { unmapped: string } | { ambiguous: string };

function codings(item: unknown): Array<Record<string, unknown>> {
  if (!isObject(item)) return [];
  if (Array.isArray(item.coding)) return item.coding.filter(isObject);
  return 'code' in item ? [item] : [];
}

/**
 * Keys tried for one item, most specific first: 'system|code', then the bare code. A Quantity is read as
 * `as: number` reads it: its number when it has no unit (`{births}`, `1`), else nothing (a weight's unit
 * `kg` is no code, and a plurality `2 {births}` with UCUM code `1` is two, not one).
 */
function keysOf(item: unknown): string[] {
  if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') return [String(item)];
  if (isQuantity(item)) return isDimensionless(item) ? [String(item.value)] : [];
  const keys: string[] = [];
  for (const c of codings(item)) {
    if (typeof c.code !== 'string' && typeof c.code !== 'number') continue;
    if (typeof c.system === 'string') keys.push(`${c.system}|${c.code}`);
    keys.push(String(c.code));
  }
  return keys;
}

/** A key as the loose match compares it: surrounding whitespace and case left aside. */
const loosely = (key: string): string => key.trim().toLowerCase();

const looseIndexes = new WeakMap<ValueMap, ReadonlyMap<string, unknown>>();

/**
 * The table by loose key, built once per value map. Keys that differ only by case or whitespace and give
 * different outputs (`Wi: WIDOWED`, `WI: SINGLE`) are left out: `wi` matches neither, each only itself.
 */
function looseIndex(map: ValueMap): ReadonlyMap<string, unknown> {
  const known = looseIndexes.get(map);
  if (known) return known;
  const index = new Map<string, unknown>();
  const clashes = new Set<string>();
  for (const [key, out] of map.entries) {
    const loose = loosely(key);
    if (index.has(loose) && outputKey(index.get(loose)) !== outputKey(out)) clashes.add(loose);
    else if (!index.has(loose) || index.get(loose) === null) index.set(loose, out); // a LeftOut says more
  }
  for (const loose of clashes) index.delete(loose);
  looseIndexes.set(map, index);
  return index;
}

/**
 * The table's output for one item's keys: the exact key first, then the same key without surrounding
 * whitespace or case (`Male`, ` male ` for `male`), as the conversions (`as:`) read text and units.
 */
function entryFor(map: ValueMap, keys: readonly string[]): { out: unknown } | undefined {
  for (const k of keys) if (map.entries.has(k)) return { out: map.entries.get(k) };
  if (keys.length === 0) return undefined;
  for (const k of keys) {
    const trimmed = k.trim();
    if (trimmed !== k && map.entries.has(trimmed)) return { out: map.entries.get(trimmed) };
  }
  const index = looseIndex(map);
  for (const k of keys) {
    const loose = loosely(k);
    if (index.has(loose)) return { out: index.get(loose) };
  }
  return undefined;
}

/** Codes are vocabulary and may be named in messages; free values (plain strings) are not echoed. */
function describe(item: unknown): string {
  if (isQuantity(item)) {
    const unit = [item.code, item.unit].find((u) => typeof u === 'string' && u.trim() !== '');
    return unit === undefined ? `value ${item.value}` : `a Quantity in '${String(unit)}'`;
  }
  const coded = codings(item).flatMap((c) =>
    typeof c.code === 'string' ? [typeof c.system === 'string' ? `${c.system}|${c.code}` : c.code] : [],
  );
  if (coded.length) return `code ${coded.join(', ')}`;
  return typeof item === 'boolean' || typeof item === 'number' ? `value ${String(item)}` : 'text (not shown)';
}

/**
 * The value the table gives the items: the output of every item whose code (or value) it names, else the
 * '*' entry, else unmapped. An item whose codes it does not name is passed over when another's are (the
 * '*' is for values it knows none of). Items given different outputs (two attendants' titles: a physician,
 * a midwife) are ambiguous, an error for the record: taking the first would decide by the EMR's order, and
 * the mapping should choose (a where()). A CodeableConcept's codings are one concept: its first known wins.
 */
export function lookup(map: ValueMap, items: readonly unknown[]): LookupOutcome {
  const outputs = new Map<string, unknown>(); // by outputKey: equal outputs of two entries are one value
  for (const item of items) {
    const entry = entryFor(map, keysOf(item));
    if (!entry) continue;
    const key = outputKey(entry.out);
    // Two items left out are one outcome: the first entry with its own warning gives it.
    if (!outputs.has(key) || outputs.get(key) === null) outputs.set(key, entry.out);
  }
  if (outputs.size > 1) {
    // Neither the codes nor the outputs are named: with a person's items (a sex, a marital status) they say
    // something about that person.
    return {
      ambiguous: `is several codes that value map ${map.name} maps to ${outputs.size} different values: choose one with where() or first()`,
    };
  }
  if (outputs.size === 1) return outcome([...outputs.values()][0]);
  if (map.fallback) return outcome(map.fallback.value);
  const first = items[0];
  // No key would take a Quantity with a unit (its unit is no code): say how to read it, not to add a key.
  const remedy =
    isQuantity(first) && !isDimensionless(first)
      ? 'a value map reads a Quantity only by its number, when it has no unit (or a dimensionless UCUM one: 1, {births}): select the number (….value.value) if the table counts in that unit'
      : `add it under valueMaps.${map.name}, or a '*' entry for any other code`;
  return {
    unmapped: `${items.length ? describe(first) : 'nothing'} is not in value map ${map.name} (${remedy})`,
  };
}

/** A Quantity (a number and maybe a unit), as keysOf and describe read one. */
function isQuantity(item: unknown): item is Record<string, unknown> {
  return isObject(item) && typeof item.value === 'number' && !('coding' in item);
}

/** Outputs compared as values: by JSON, every way of leaving the field out being one. */
function outputKey(out: unknown): string {
  return out instanceof LeftOut ? 'null' : JSON.stringify(out);
}

function outcome(out: unknown): { value: unknown; warning?: string } {
  return out instanceof LeftOut ? { value: null, warning: out.warning } : { value: out };
}

export type ScalarOutcome = { value: unknown } | { error: string };

/** Strings, codes, numbers; a CodeableConcept gives its text or first display. */
export function toText(item: unknown): ScalarOutcome {
  if (typeof item === 'string') return item.trim() ? { value: item.trim() } : { error: 'is empty' };
  if (typeof item === 'number' || typeof item === 'boolean') return { value: String(item) };
  if (isObject(item)) {
    if (typeof item.text === 'string' && item.text.trim()) return { value: item.text.trim() };
    const display = codings(item).find((c) => typeof c.display === 'string');
    if (display) return { value: String(display.display) };
    if (typeof item.value === 'string') return { value: item.value };
  }
  return { error: 'is not text' };
}

export function toBoolean(item: unknown): ScalarOutcome {
  if (typeof item === 'boolean') return { value: item };
  if (item === 'true' || item === 'false') return { value: item === 'true' };
  return { error: 'is not a boolean' };
}

/** A Reference or reference string → the id part ('Location/abc' → 'abc'); other strings as they are. */
export function toReferenceId(item: unknown): ScalarOutcome {
  const ref = isObject(item) ? item.reference : item;
  if (typeof ref !== 'string' || !ref) return { error: 'is not a reference' };
  const match = /([^/]+)$/.exec(ref.replace(/\/_history\/[^/]+$/, ''));
  return { value: match ? match[1] : ref };
}
