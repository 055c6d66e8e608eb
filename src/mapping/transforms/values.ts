// Value maps (ConceptMap-like tables: code → OpenCRVS option) and the plain scalar conversions.
export interface ValueMap {
  name: string;
  entries: ReadonlyMap<string, unknown>;
  /** The '*' entry: used when nothing matched; null means "leave the field out". */
  fallback?: { value: unknown };
}

export type LookupOutcome = { value: unknown } | { unmapped: string } | { ambiguous: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function codings(item: unknown): Array<Record<string, unknown>> {
  if (!isObject(item)) return [];
  if (Array.isArray(item.coding)) return item.coding.filter(isObject);
  return 'code' in item ? [item] : [];
}

/** Keys tried for one item, most specific first: 'system|code', then the bare code. */
function keysOf(item: unknown): string[] {
  if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') return [String(item)];
  const keys: string[] = [];
  for (const c of codings(item)) {
    if (typeof c.code !== 'string' && typeof c.code !== 'number') continue;
    if (typeof c.system === 'string') keys.push(`${c.system}|${c.code}`);
    keys.push(String(c.code));
  }
  return keys;
}

/** Codes are vocabulary and may be named in messages; free values (plain strings) are not echoed. */
function describe(item: unknown): string {
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
  const outputs = new Map<string, unknown>(); // by JSON: equal outputs of two entries are one value
  for (const item of items) {
    const key = keysOf(item).find((k) => map.entries.has(k));
    if (key === undefined) continue;
    const out = map.entries.get(key);
    outputs.set(JSON.stringify(out), out);
  }
  if (outputs.size > 1) {
    // Neither the codes nor the outputs are named: with a person's items (a sex, a marital status) they say
    // something about that person.
    return {
      ambiguous: `is several codes that value map ${map.name} maps to ${outputs.size} different values: choose one with where() or first()`,
    };
  }
  if (outputs.size === 1) return { value: [...outputs.values()][0] };
  if (map.fallback) return { value: map.fallback.value };
  return {
    unmapped: `${items.length ? describe(items[0]) : 'nothing'} is not in value map ${map.name} (add it under valueMaps.${map.name}, or a '*' entry for any other code)`,
  };
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
