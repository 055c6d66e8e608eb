// OpenMRS REST's representations (`v=`), as the sandbox answers them: `ref`, `default` (also when no `v` is
// given), `full`, and a custom one, `custom:(uuid,personA:(uuid,gender),…)`, whose properties are the only
// ones answered (openmrs-module-webservices.rest: ConversionUtil.getCustomRepresentationDescription splits
// the list at the commas outside parentheses; `name:(…)` is that property in a custom representation of its
// own, `name:ref|default|full` in a named one, `name` alone in the default one). So a test of the bridge sees
// only what the bridge asked for, and a property it names that the resource has not fails, as on OpenMRS.
import { HttpFailure, outcomeOf } from './http-util.js';

/** A custom representation's properties: each either nested (its own properties) or answered whole. */
export type CustomFields = Map<string, CustomFields | 'whole'>;

export type Representation =
  | { kind: 'ref' | 'default' | 'full' }
  | { kind: 'custom'; fields: CustomFields; spec: string };

function refused(text: string): HttpFailure {
  return new HttpFailure(400, outcomeOf('invalid', text));
}

/** `v` read; an unknown name, or a custom one that does not parse, is a 400. */
export function representationOf(v: string | null): Representation {
  const value = v ?? 'default';
  if (value === 'ref' || value === 'default' || value === 'full') return { kind: value };
  if (!value.startsWith('custom:')) throw refused(`unknown representation: ${value}`);
  const spec = value.slice('custom:'.length);
  return { kind: 'custom', fields: parseFields(spec), spec };
}

/** `(a,b:(c,d),e:ref)` into its properties. */
function parseFields(spec: string): CustomFields {
  if (!spec.startsWith('(') || !spec.endsWith(')')) throw refused(`a custom representation is (…): ${spec}`);
  const inner = spec.slice(1, -1);
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(inner.slice(start, i));
      start = i + 1;
    }
    if (depth < 0) throw refused(`unbalanced parentheses: ${spec}`);
  }
  if (depth !== 0) throw refused(`unbalanced parentheses: ${spec}`);
  parts.push(inner.slice(start));
  const fields: CustomFields = new Map();
  for (const part of parts) {
    const colon = part.indexOf(':');
    const name = colon < 0 ? part : part.slice(0, colon);
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) throw refused(`not a property name: ${part}`);
    const rep = colon < 0 ? undefined : part.slice(colon + 1);
    fields.set(name, rep?.startsWith('(') ? parseFields(rep) : 'whole');
  }
  return fields;
}

/**
 * The object with only the fields asked, nested ones projected in turn. A field the object has not is a 400
 * (OpenMRS: a ConversionException naming the property), so a property misspelt by the bridge shows.
 */
export function project(value: Record<string, unknown>, fields: CustomFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, nested] of fields) {
    if (name === 'links') continue;
    if (!(name in value)) throw refused(`${name} is no property of this resource`);
    const field = value[name];
    out[name] =
      nested === 'whole' || field === null || typeof field !== 'object'
        ? field
        : project(field as Record<string, unknown>, nested);
  }
  return out;
}
