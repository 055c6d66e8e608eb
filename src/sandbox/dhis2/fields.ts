/**
 * The part of DHIS2's `fields` filter the tracker export endpoints need: `*` (or `:all`), plain names,
 * nested selections `enrollments[events[*]]` (DHIS2 also accepts parentheses), and exclusions `!name`.
 * Unknown names are ignored, as DHIS2 does.
 */

export interface FieldSpec {
  all: boolean;
  /** name → nested selection, or null to include the value whole. */
  include: Map<string, FieldSpec | null>;
  exclude: Set<string>;
}

export class FieldFilterError extends Error {}

function emptySpec(): FieldSpec {
  return { all: false, include: new Map(), exclude: new Set() };
}

export function parseFields(text: string): FieldSpec {
  let pos = 0;
  const source = text.replace(/\s+/g, '');

  function parseList(closing: string | undefined): FieldSpec {
    const spec = emptySpec();
    while (pos < source.length) {
      const ch = source[pos];
      if (ch === ',') {
        pos++;
        continue;
      }
      if (ch === ']' || ch === ')') {
        if (closing === undefined || ch !== closing) throw new FieldFilterError(`unexpected "${ch}" in fields`);
        pos++;
        return spec;
      }
      const negate = ch === '!';
      if (negate) pos++;
      const start = pos;
      while (pos < source.length && !',[]()'.includes(source[pos] ?? '')) pos++;
      const name = source.slice(start, pos);
      if (!name) throw new FieldFilterError('empty field name in fields');
      let nested: FieldSpec | null = null;
      const open = source[pos];
      if (open === '[' || open === '(') {
        pos++;
        nested = parseList(open === '[' ? ']' : ')');
      }
      if (negate) spec.exclude.add(name);
      else if (name === '*' || name === ':all') spec.all = true;
      else if (name.startsWith(':'))
        spec.all = true; // :owner, :simple, … — the simulator treats presets as all
      else spec.include.set(name, nested);
    }
    if (closing !== undefined) throw new FieldFilterError('unclosed bracket in fields');
    return spec;
  }

  return parseList(undefined);
}

/** Applies a selection to one exported object (arrays element-wise; nested objects recursively). */
export function applyFields(value: unknown, spec: FieldSpec): unknown {
  if (Array.isArray(value)) return value.map((item) => applyFields(item, spec));
  if (value === null || typeof value !== 'object') return value;
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const keys = spec.all ? Object.keys(source) : [...spec.include.keys()];
  for (const key of keys) {
    if (spec.exclude.has(key) || !(key in source)) continue;
    const nested = spec.include.get(key);
    out[key] = nested ? applyFields(source[key], nested) : source[key];
  }
  return out;
}

/** Whether a selection asks for `name` at its top level (used to skip building expensive parts). */
export function selects(spec: FieldSpec, name: string): boolean {
  if (spec.exclude.has(name)) return false;
  return spec.all || spec.include.has(name);
}
