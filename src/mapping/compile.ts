// One mapping file → a CompiledMapping: structure checked against profiles/mapping.schema.json, every
// expression compiled once, and the static checks against the OpenCRVS form profile (field ids, option
// values, transform ↔ field type). Every failure is a MappingLoadError with file, key path and line.
import type { ValidateFunction } from 'ajv';
import { describeAjvError } from '../config/schema.js';
import type { DateOrder } from './date-order.js';
import { elementProblems } from './element-check.js';
import { SUPPORTED_SEARCH_PARAMS, TOKEN_PARAM_PATHS } from './fetcher.js';
import { child, functionName, functionParams, itemsOf } from './fhirpath/ast.js';
import { type CompiledExpr, ExpressionCompiler, ExpressionError, type SourceKind } from './fhirpath/expr.js';
import type { AstNode } from './fhirpath/fast.js';
import { buildCodeSet, type CodeSet } from './fhirpath/functions.js';
import validateMapping from './mapping-validator.generated.js';
import {
  declarationValidator,
  type FormField,
  type FormProfile,
  fieldValueProblem,
  loadFormProfile,
  meetsCondition,
  type ShowCondition,
  showConditions,
} from './profile.js';
import { type ExpressionSource, searchCoverageProblems } from './search-coverage.js';
import {
  inferTransform,
  TRANSFORM_FIELD_TYPES,
  type TransformName,
  type TransformOptions,
} from './transforms/index.js';
import { LeftOut, type ValueMap, valueMapOutput } from './transforms/values.js';
import { formatPath, type KeyPath, MappingLoadError, YamlSource } from './yaml-source.js';

export type TemplatePart = { literal: string } | { expr: CompiledExpr } | { codes: string[] };

/** A search parameter's value when it is fixed text or a code set (no expression), else undefined. */
export function fixedTemplateValue(parts: TemplatePart[]): string | undefined {
  let out = '';
  for (const part of parts) {
    if ('literal' in part) out += part.literal;
    else if ('codes' in part) out += part.codes.join(',');
    else return undefined;
  }
  return out;
}

export interface CompiledContextItem {
  name: string;
  kind: 'search' | 'read' | 'value';
  type?: string;
  params?: Array<{ name: string; parts: TemplatePart[] }>;
  /**
   * search: keyed on the subject (a parameter written `'{%subjectRef}'`, a subjectLink): a record it finds
   * names the subject itself when it changes, so the ledger need not keep it among the rows' context reads.
   */
  bySubject?: true;
  /** read: the references to read; value: ordered fallbacks, the first non-empty one is the value. */
  exprs: CompiledExpr[];
}

export interface CompiledField {
  id: string;
  field: FormField;
  from: CompiledExpr[];
  transform?: TransformName;
  map?: ValueMap;
  default?: { value: unknown };
  constant?: { value: unknown };
  when?: CompiledExpr;
  options: TransformOptions;
  /** `notAfter`/`notBefore` of a DATE field: checked once every field has its value. */
  dateOrder?: DateOrder;
  /** The form shows it only when these hold (`mother.idType = NATIONAL_ID`): checked per record. */
  shownWhen?: ShowCondition[];
  /** `min`/`max` of a NUMBER field: a value outside is implausible (a weight in g sent as kg). */
  range?: { min: number; max: number };
}

export interface CompiledRouting {
  facilityKeys: CompiledExpr[];
  office: CompiledExpr[];
  facility: CompiledExpr[];
  facilityFields: string[];
  placeOfEvent?: { field: string; value: string };
}

export interface CompiledMapping {
  id: string;
  file: string;
  eventType: string;
  source: SourceKind;
  priority: number;
  subjectType: string;
  profile: FormProfile;
  validateDeclaration: ValidateFunction;
  context: CompiledContextItem[];
  /** `withEvidence` rules are checked only once evidence holds (see evaluateMapping). */
  unless: Array<{ reason: string; expr: CompiledExpr; withEvidence: boolean }>;
  /** Records that look like this event but whose data cannot show it: kept as invalid with the reason. */
  invalid: Array<{ reason: string; expr: CompiledExpr }>;
  when: Array<{ evidence: string; expr: CompiledExpr; source?: CompiledExpr }>;
  fields: CompiledField[];
  /** Checked on a record that maps: each that holds adds its fixed text to the result's warnings. */
  warnings: Array<{ warning: string; expr: CompiledExpr }>;
  routing: CompiledRouting;
  /**
   * The fields this mapping fills, from `fields` or from routing's `facilityFields`, that the form shows
   * only when another field has a value: checked on each record's final declaration.
   */
  conditionalFields: Array<{ id: string; shownWhen: ShowCondition[] }>;
  /**
   * Searches keyed on the subject: a changed resource of `type` names its subject at these paths.
   * `tokens` are the search's fixed code filters (`code`, `type`): a resource that matches none of
   * them cannot be in that search's answer.
   */
  subjectLinks: Array<{ type: string; param: string; tokens: Array<{ name: string; values: string[] }> }>;
  /** Every expression, for the differential test and the benchmark. */
  expressions: CompiledExpr[];
  /** Expression text → the key path it is written at (`trigger.when[0].if`), for runtime errors. */
  expressionPaths: ReadonlyMap<string, string>;
  /** The `codes` sets as written, for the checks against a source's settings (sources/dhis2/mapping-codes.ts). */
  codes: Readonly<Record<string, readonly string[]>>;
  /** The source's zone (CompileOptions.timeZone): "today" for `notAfter: today` is its date. */
  timeZone?: string;
}

export interface CompileOptions {
  country: string;
  version: string;
  fastPath?: boolean;
  /** IANA zone the source's UTC dateTimes are read in (SourceSettings.timeZone). */
  timeZone?: string;
}

// %names fhirpath.js reserves or that the engine sets itself.
const RESERVED = new Set(['subject', 'subjectRef', 'context', 'resource', 'rootResource', 'ucum', 'sct', 'loinc']);

/**
 * profiles/mapping.schema.json compiled ahead by scripts/schema-validators.mjs (with createAjv({ verbose: true
 * })'s options): compiling it took every command that maps 0.09 s of CPU at start.
 */
const structureValidator = validateMapping as unknown as ValidateFunction;

/** Problems shown with the first one, at most. */
const MAX_FIELD_ERRORS = 20;

/** One error for several: the first one's place, then each other one on a line of its own. */
function combinedError(errors: MappingLoadError[]): MappingLoadError {
  const [first, ...rest] = errors;
  if (!first || rest.length === 0) return first ?? new MappingLoadError('', '', 'invalid');
  const shown = rest.slice(0, MAX_FIELD_ERRORS - 1).map((e) => {
    const where = `${e.line ? `line ${e.line}: ` : ''}${e.path ? `${e.path}: ` : ''}`;
    return `\n  also ${where}${e.problem}`;
  });
  const more = rest.length > shown.length ? `\n  and ${rest.length - shown.length} more` : '';
  return new MappingLoadError(first.file, first.path, `${first.problem}${shown.join('')}${more}`, first.line);
}

/** The most useful ajv error: an unknown/missing key or enum beats the generic oneOf/type noise. */
function pickError(errors: NonNullable<ValidateFunction['errors']>) {
  const order = ['additionalProperties', 'enum', 'pattern', 'minLength', 'required'];
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  return [...errors].sort(
    (a, b) => rank(a.keyword) - rank(b.keyword) || b.instancePath.length - a.instancePath.length,
  )[0];
}

const asArray = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
type Obj = Record<string, unknown>;

export function compileMapping(file: string, text: string, options: CompileOptions): CompiledMapping {
  const src = new YamlSource(file, text);
  if (!structureValidator(src.data)) {
    const e = pickError(structureValidator.errors ?? []);
    const problem = e ? describeAjvError(e).problem : 'invalid';
    const keyPath = e ? pointerParts(e.instancePath, e.keyword, e.params as Obj) : [];
    throw src.error(keyPath, problem);
  }
  const altered = src.alteredCode();
  if (altered) throw altered;
  const doc = src.data as Obj; // shape guaranteed by the schema check above
  const base = file.replace(/^.*[\\/]/, '').replace(/\.ya?ml$/, '');
  const id = typeof doc.id === 'string' ? doc.id : base;
  const eventType = doc.eventType as string;
  const source = doc.source as SourceKind;

  let profile: FormProfile;
  try {
    profile = loadFormProfile(options.country, options.version, eventType);
  } catch (err) {
    throw src.error(['eventType'], (err as Error).message);
  }

  const codeSets = new Map<string, CodeSet>();
  for (const [name, entries] of Object.entries((doc.codes ?? {}) as Record<string, unknown[]>)) {
    codeSets.set(name, buildCodeSet(entries.map(String)));
  }
  const valueMaps = new Map<string, ValueMap>();
  for (const [name, table] of Object.entries((doc.valueMaps ?? {}) as Record<string, Obj>)) {
    const entries = new Map(
      Object.entries(table)
        .filter(([k]) => k !== '*')
        .map(([k, out]) => [k, valueMapOutput(out)]),
    );
    const fallback = '*' in table ? { value: valueMapOutput(table['*']) } : undefined;
    valueMaps.set(name, { name, entries, fallback });
  }

  const compiler = new ExpressionCompiler(source, codeSets, options.fastPath ?? true, options.timeZone);
  const expressions: CompiledExpr[] = [];
  const sources: ExpressionSource[] = [];
  // Where each expression is written, for a record it fails on to say (the first place, when repeated).
  const expressionPaths = new Map<string, string>();
  const variables = new Set(['subject', 'subjectRef']);
  const expr = (text: string, path: KeyPath): CompiledExpr => {
    try {
      const compiled = compiler.compile(text, variables);
      expressions.push(compiled);
      sources.push({ ast: compiled.ast, path });
      if (!expressionPaths.has(compiled.text)) expressionPaths.set(compiled.text, formatPath(path));
      return compiled;
    } catch (err) {
      if (err instanceof ExpressionError) throw src.error(path, err.message);
      throw err;
    }
  };
  const exprs = (value: unknown, path: KeyPath): CompiledExpr[] =>
    asArray(value).map((t, i) => expr(String(t), Array.isArray(value) ? [...path, i] : path));

  // Context, in order: each item sees the subject and the items before it.
  const context: CompiledContextItem[] = [];
  const subjectLinks: CompiledMapping['subjectLinks'] = [];
  for (const [name, raw] of Object.entries((doc.context ?? {}) as Record<string, Obj>)) {
    const path = ['context', name];
    if (RESERVED.has(name)) throw src.error(path, `'${name}' is a reserved variable name`);
    if (typeof raw.search === 'string') {
      const params = Object.entries((raw.params ?? {}) as Record<string, string>).map(([param, template]) => {
        if (!SUPPORTED_SEARCH_PARAMS.has(param)) {
          throw src.error(
            [...path, 'params', param],
            `unsupported search parameter; use one of ${[...SUPPORTED_SEARCH_PARAMS].join(', ')}`,
          );
        }
        return { name: param, parts: parseTemplate(template, [...path, 'params', param]), template };
      });
      const links = params.filter((p) => p.template.trim() === '{%subjectRef}');
      for (const link of links) {
        const tokens = params.flatMap((p) => {
          const value = TOKEN_PARAM_PATHS[p.name] ? fixedTemplateValue(p.parts) : undefined;
          return value ? [{ name: p.name, values: value.split(',').filter(Boolean) }] : [];
        });
        subjectLinks.push({ type: raw.search, param: link.name, tokens });
      }
      context.push({
        name,
        kind: 'search',
        type: raw.search,
        params: params.map(({ name: paramName, parts }) => ({ name: paramName, parts })),
        ...(links.length > 0 ? { bySubject: true as const } : {}),
        exprs: [],
      });
    } else if (typeof raw.read === 'string') {
      const type = typeof raw.type === 'string' ? raw.type : undefined;
      context.push({ name, kind: 'read', ...(type ? { type } : {}), exprs: [expr(raw.read, [...path, 'read'])] });
    } else {
      context.push({ name, kind: 'value', exprs: exprs(raw.value, [...path, 'value']) });
    }
    variables.add(name);
  }

  function parseTemplate(template: string, path: KeyPath): TemplatePart[] {
    const parts: TemplatePart[] = [];
    let last = 0;
    for (const m of template.matchAll(/\{([^{}]+)\}/g)) {
      if (m.index > last) parts.push({ literal: template.slice(last, m.index) });
      const inner = (m[1] as string).trim();
      if (inner.startsWith('codes:')) {
        const names = inner
          .slice(6)
          .split(',')
          .map((s) => s.trim());
        const entries: string[] = [];
        for (const n of names) {
          const set = (doc.codes as Record<string, unknown[]> | undefined)?.[n];
          if (!set) throw src.error(path, `unknown code set '${n}'`);
          entries.push(...set.map(String));
        }
        parts.push({ codes: [...new Set(entries)] });
      } else {
        parts.push({ expr: expr(inner, path) });
      }
      last = m.index + m[0].length;
    }
    if (last < template.length) parts.push({ literal: template.slice(last) });
    return parts;
  }

  const trigger = doc.trigger as { unless?: Obj[]; invalid?: Obj[]; when: Obj[] };
  const unless = (trigger.unless ?? []).map((u, i) => ({
    reason: String(u.reason),
    expr: expr(String(u.if), ['trigger', 'unless', i, 'if']),
    withEvidence: u.withEvidence === true,
  }));
  const invalid = (trigger.invalid ?? []).map((u, i) => ({
    reason: String(u.reason),
    expr: expr(String(u.if), ['trigger', 'invalid', i, 'if']),
  }));
  const when = trigger.when.map((w, i) => ({
    evidence: String(w.evidence),
    expr: expr(String(w.if), ['trigger', 'when', i, 'if']),
    source: typeof w.source === 'string' ? expr(w.source, ['trigger', 'when', i, 'source']) : undefined,
  }));

  const warningRules = ((doc.warnings ?? []) as Obj[]).map((w, i) => ({
    warning: String(w.warning),
    expr: expr(String(w.if), ['warnings', i, 'if']),
  }));

  const fieldOf = (fieldId: string, path: KeyPath): FormField => {
    const field = profile.fields.get(fieldId);
    if (field) return field;
    if (profile.presentational.has(fieldId))
      throw src.error(path, `${fieldId} is a presentational element, it carries no data`);
    throw src.error(
      path,
      `unknown field id ${fieldId} in the OpenCRVS ${profile.country} v${profile.version} ${eventType} form`,
    );
  };
  const checkValue = (
    field: FormField,
    value: unknown,
    path: KeyPath,
    what: string,
    range?: CompiledField['range'],
  ) => {
    if (value === null || value instanceof LeftOut) return;
    const problem = fieldValueProblem(field, value);
    if (problem) throw src.error(path, `${what} ${JSON.stringify(value)} ${problem}`);
    if (range && typeof value === 'number' && outOfRange(value, range))
      throw src.error(path, `${what} ${value} is outside this field's range (${rangeText(range)})`);
  };

  const fields: CompiledField[] = [];
  const dateOrders: Array<{ fieldId: string; path: KeyPath; spec: Obj; order: DateOrder }> = [];
  const fieldKeys = new Map<string, string>(); // field id → its key in the file ('id?' keeps the '?')
  // Every field's problem is said at once: an engineer adding several fields fixes them in one round.
  const fieldErrors: MappingLoadError[] = [];
  for (const [key, raw] of Object.entries(doc.fields as Record<string, unknown>)) {
    try {
      compileFieldEntry(key, raw);
    } catch (err) {
      if (!(err instanceof MappingLoadError)) throw err;
      fieldErrors.push(err);
    }
  }
  if (fieldErrors.length > 0) throw combinedError(fieldErrors);

  function compileFieldEntry(key: string, raw: unknown): void {
    const path = ['fields', key];
    // 'id?': only where the form version has the field (one mapping file serves v2.0 and v1.9).
    const fieldId = key.endsWith('?') ? key.slice(0, -1) : key;
    if (fieldId !== key && !profile.fields.has(fieldId)) return;
    const field = fieldOf(fieldId, path);
    fieldKeys.set(fieldId, key);
    if (field.neverShown) {
      throw src.error(
        path,
        `${fieldId} is never shown by the ${profile.country} v${profile.version} form (SHOW conditional never()): no registrar would see a value there; fill a field they see`,
      );
    }
    const spec: Obj = typeof raw === 'string' ? { from: raw } : (raw as Obj);
    const compiled: CompiledField = {
      id: fieldId,
      field,
      from: exprs(spec.from, [...path, 'from']),
      options: options.timeZone ? { timeZone: options.timeZone } : {},
    };
    if (typeof spec.when === 'string') compiled.when = expr(spec.when, [...path, 'when']);
    const shownWhen = showConditions(field, profile.fields);
    if (shownWhen.length > 0) compiled.shownWhen = shownWhen;
    // Before the value map: its outputs, like a `value` or `default`, are checked against the range.
    if (spec.min !== undefined || spec.max !== undefined) {
      if (field.type !== 'NUMBER') throw src.error(path, `min and max apply to NUMBER fields, not ${field.type}`);
      const range = {
        min: (spec.min as number | undefined) ?? -Infinity,
        max: (spec.max as number | undefined) ?? Infinity,
      };
      if (range.min > range.max) throw src.error([...path, 'min'], `min ${range.min} is above max ${range.max}`);
      compiled.range = range;
    }
    if (typeof spec.map === 'string') {
      // A value map gives the value as it is: a conversion beside it would be ignored without a word.
      if (spec.as !== undefined)
        throw src.error([...path, 'as'], 'give either as or map: a value map gives the value itself');
      const map = valueMaps.get(spec.map);
      if (!map) throw src.error([...path, 'map'], `unknown value map '${spec.map}'`);
      const at = (key: string) => ['valueMaps', spec.map as string, key];
      for (const [key, out] of map.entries) checkValue(field, out, at(key), 'value map output', compiled.range);
      if (map.fallback) checkValue(field, map.fallback.value, at('*'), 'value map output', compiled.range);
      compiled.map = map;
    } else if (spec.from !== undefined || spec.as !== undefined) {
      // A constant (`value` alone) needs no conversion: any field type, checked against the form below.
      const transform = (spec.as as TransformName | undefined) ?? inferTransform(field.type);
      if (!transform) throw src.error(path, `fields of type ${field.type} cannot be filled by a mapping`);
      if (!(TRANSFORM_FIELD_TYPES[transform] as readonly string[]).includes(field.type)) {
        throw src.error(
          [...path, spec.as ? 'as' : 'from'],
          `transform '${transform}' cannot fill ${field.type} field ${fieldId}`,
        );
      }
      compiled.transform = transform;
    }
    if (compiled.transform === 'age') {
      const ref = spec.asOfDateRef;
      if (typeof ref !== 'string')
        throw src.error(path, 'an AGE field needs asOfDateRef (the id of the reference DATE field)');
      if (profile.fields.get(ref)?.type !== 'DATE')
        throw src.error([...path, 'asOfDateRef'], `${ref} is not a DATE field`);
      compiled.options.asOfDateRef = ref;
    }
    const dateOrder = { notAfter: asArray(spec.notAfter) as string[], notBefore: asArray(spec.notBefore) as string[] };
    if (dateOrder.notAfter.length + dateOrder.notBefore.length > 0) {
      if (field.type !== 'DATE')
        throw src.error(path, `notAfter and notBefore apply to DATE fields, not ${field.type}`);
      dateOrders.push({ fieldId, path, spec, order: dateOrder });
      compiled.dateOrder = dateOrder;
    }
    if (field.type === 'ADDRESS') {
      compiled.options.domesticCountry = profile.domesticCountry;
      compiled.options.domesticCountryName = profile.country;
    }
    if ('default' in spec) {
      checkValue(field, spec.default, [...path, 'default'], 'default', compiled.range);
      compiled.default = { value: spec.default };
    }
    if ('value' in spec) {
      checkValue(field, spec.value, [...path, 'value'], 'value', compiled.range);
      compiled.constant = { value: spec.value };
    }
    // Codes go out as they come: the first one the EMR sends that is not an option (gender `other`)
    // makes that record invalid, long after the mapping loaded. A value map says what each code becomes.
    const choices = field.options ?? [];
    if (
      (field.type === 'SELECT' || field.type === 'RADIO_GROUP') &&
      compiled.transform !== undefined &&
      choices.length > 0
    ) {
      throw src.error(
        path,
        `${field.type} field ${fieldId} has no value map: a code that is not one of its options (${choices.join(', ')}) would make the record invalid; add map: with a valueMaps table whose '*' entry takes any other code (null: left out, with a warning)`,
      );
    }
    fields.push(compiled);
  }

  // A bound is another field of this mapping (checked after the loop: it may come later in the file).
  for (const { fieldId, path, spec, order } of dateOrders) {
    for (const key of ['notAfter', 'notBefore'] as const) {
      order[key].forEach((bound, i) => {
        if (bound === 'today') return;
        const at = Array.isArray(spec[key]) ? [...path, key, i] : [...path, key];
        if (bound === fieldId) throw src.error(at, `${fieldId} cannot be bounded by itself`);
        if (profile.fields.get(bound)?.type !== 'DATE') throw src.error(at, `${bound} is not a DATE field`);
        if (!fieldKeys.has(bound)) throw src.error(at, `${bound} is not filled by this mapping`);
      });
    }
  }

  const r = (doc.routing ?? {}) as Obj;
  // Where each filled field that the form shows only under a condition is written, for the check below.
  const conditional: Array<{ id: string; shownWhen: ShowCondition[]; path: KeyPath; facility: boolean }> = [];
  for (const f of fields) {
    if (f.shownWhen)
      conditional.push({
        id: f.id,
        shownWhen: f.shownWhen,
        path: ['fields', fieldKeys.get(f.id) ?? f.id],
        facility: false,
      });
  }
  const facilityFields = ((r.facilityFields ?? []) as string[]).flatMap((entry, i) => {
    const optional = entry.endsWith('?');
    const fieldId = optional ? entry.slice(0, -1) : entry;
    if (optional && !profile.fields.has(fieldId)) return [];
    const field = fieldOf(fieldId, ['routing', 'facilityFields', i]);
    if (!['LOCATION', 'FACILITY', 'ALPHA_HIDDEN', 'TEXT'].includes(field.type)) {
      throw src.error(['routing', 'facilityFields', i], `${fieldId} is a ${field.type} field, not a location`);
    }
    // child.birthLocation is shown only when child.placeOfBirth = HEALTH_FACILITY: routing's place of
    // event gives that, and the same checks as for `fields` make sure of it.
    const shownWhen = showConditions(field, profile.fields);
    if (shownWhen.length > 0)
      conditional.push({ id: fieldId, shownWhen, path: ['routing', 'facilityFields', i], facility: true });
    return [fieldId];
  });
  let placeOfEvent: CompiledRouting['placeOfEvent'];
  if (r.placeOfEvent) {
    const p = r.placeOfEvent as { field: string; value: string };
    checkValue(
      fieldOf(p.field, ['routing', 'placeOfEvent', 'field']),
      p.value,
      ['routing', 'placeOfEvent', 'value'],
      'value',
    );
    placeOfEvent = p;
  }
  const routing: CompiledRouting = {
    facilityKeys: exprs(r.facilityKeys, ['routing', 'facilityKeys']),
    office: exprs(r.office, ['routing', 'office']),
    facility: exprs(r.facility, ['routing', 'facility']),
    facilityFields,
    placeOfEvent,
  };

  // A field the form shows only when another has a value (mother.nid when mother.idType = NATIONAL_ID):
  // sent without that value, it reaches OpenCRVS hidden from every registrar. Refused when the other field
  // is not filled at all, or only ever with other values (`value: PASSPORT`, a value map without
  // NATIONAL_ID); a value a conversion gives is known per record only (evaluate.ts checks it there).
  const filled = new Set([
    ...fields.map((f) => f.id),
    ...facilityFields,
    ...(placeOfEvent ? [placeOfEvent.field] : []),
  ]);
  const conditionErrors: MappingLoadError[] = [];
  for (const f of conditional) {
    for (const c of f.shownWhen) {
      const shown = `${f.id} is shown only when ${c.term} = ${c.value}`;
      // A facility field is filled by routing, with its place of event: that is where to give the value.
      const give = f.facility
        ? `routing.placeOfEvent: { field: ${c.field}, value: ${c.value} }`
        : `value: ${c.value} with a when, or a value-map entry`;
      if (!filled.has(c.field)) {
        const fill = f.facility ? `give ${give}` : `fill ${c.field} too`;
        conditionErrors.push(src.error(f.path, `${shown}: ${fill}, or no registrar sees the value`));
        continue;
      }
      const possible = possibleValues(c.field);
      if (!possible || possible.some((v) => meetsCondition(v, c))) continue;
      conditionErrors.push(
        src.error(
          f.path,
          `${shown}, but this mapping fills ${c.field} only with ${describeValues(possible)}, so no registrar would see ${f.id}: give ${c.field} the value ${c.value} where ${f.id} has one (${give}), or leave ${f.id} out`,
        ),
      );
    }
  }
  if (conditionErrors.length > 0) throw combinedError(conditionErrors);

  /**
   * The values this mapping can give a field, when they are known: a constant (which wins over `from`), a
   * value map's outputs and its '*' entry, a default, routing's place of event. Undefined when a
   * conversion gives it: any value the source holds.
   */
  function possibleValues(fieldId: string): unknown[] | undefined {
    const values: unknown[] = fieldId === placeOfEvent?.field ? [placeOfEvent.value] : [];
    const f = fields.find((x) => x.id === fieldId);
    if (!f) return values.length > 0 ? values : undefined; // a facility field: an id routing chooses
    if (f.constant) values.push(f.constant.value);
    else if (f.transform) return undefined;
    else {
      if (f.map) {
        for (const out of f.map.entries.values()) values.push(out instanceof LeftOut ? null : out);
        if (f.map.fallback) values.push(f.map.fallback.value instanceof LeftOut ? null : f.map.fallback.value);
      }
      if (f.default) values.push(f.default.value);
    }
    return values;
  }

  const [uncovered] = searchCoverageProblems(context, (doc.codes ?? {}) as Record<string, unknown[]>, sources);
  if (uncovered) throw src.error(uncovered.path, uncovered.message);
  if (source === 'fhir') {
    const types = variableTypes((doc.subject as { type: string }).type, context);
    for (const { ast, path } of sources) {
      const [problem] = elementProblems(ast, types);
      if (problem) throw src.error(path, `${problem} in FHIR R4 (check its spelling: case matters)`);
    }
  }

  return {
    id,
    file,
    eventType,
    source,
    priority: typeof doc.priority === 'number' ? doc.priority : 0,
    subjectType: (doc.subject as { type: string }).type,
    profile,
    validateDeclaration: declarationValidator(profile),
    context,
    unless,
    invalid,
    when,
    fields,
    warnings: warningRules,
    routing,
    conditionalFields: conditional.map(({ id, shownWhen }) => ({ id, shownWhen })),
    subjectLinks,
    expressions,
    expressionPaths,
    codes: Object.fromEntries(
      Object.entries((doc.codes ?? {}) as Record<string, unknown[]>).map(([name, entries]) => [
        name,
        entries.map(String),
      ]),
    ),
    ...(options.timeZone ? { timeZone: options.timeZone } : {}),
  };
}

/** Whether a number is outside a field's `min`/`max`. */
export function outOfRange(value: number, range: { min: number; max: number }): boolean {
  return value < range.min || value > range.max;
}

/** A field's `min`/`max` as a message says it: mapping constants, never a record's value. */
export function rangeText({ min, max }: { min: number; max: number }): string {
  if (min === -Infinity) return `at most ${max}`;
  if (max === Infinity) return `at least ${min}`;
  return `${min} to ${max}`;
}

/** The key path of an ajv error, pointing at the offending key for unknown/missing keys. */
function pointerParts(pointer: string, keyword: string, params: Obj): KeyPath {
  const parts: Array<string | number> = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    parts.push(params.additionalProperty);
  }
  if (keyword === 'required' && typeof params.missingProperty === 'string') parts.push(params.missingProperty);
  return parts;
}

/**
 * The FHIR types of each variable where they are known: the subject, a search's results, a value built
 * from them (each fallback's: `%mother` is a RelatedPerson or a Patient, by the one that found her).
 */
function variableTypes(subjectType: string, context: CompiledContextItem[]): Map<string, string[]> {
  const types = new Map<string, string[]>([['subject', [subjectType]]]);
  for (const item of context) {
    if ((item.kind === 'search' || item.kind === 'read') && item.type) types.set(item.name, [item.type]);
    if (item.kind === 'value') {
      const found = item.exprs.flatMap((e) => resultVariables(e.ast) ?? ['']).map((name) => types.get(name));
      // One fallback of unknown type leaves the variable open: nothing is checked rather than guessed.
      if (found.length > 0 && found.every((t) => t !== undefined))
        types.set(item.name, [...new Set(found.flatMap((t) => t ?? []))]);
    }
  }
  return types;
}

/**
 * The variables whose items an expression gives: `%x`, `%x.where(…).first()` (itemsOf), and either
 * branch of `iif(criterion, %a, %b)`. Undefined when it builds anything else.
 */
function resultVariables(node: AstNode | undefined): string[] | undefined {
  const direct = itemsOf(node);
  if (direct) return [direct];
  let n = node;
  while (n && ['EntireExpression', 'TermExpression', 'ParenthesizedTerm', 'InvocationTerm'].includes(n.type))
    n = child(n);
  if (n?.type !== 'FunctionInvocation' || functionName(n) !== 'iif') return undefined;
  const branches = functionParams(n).slice(1);
  const names: string[] = [];
  for (const branch of branches) {
    const found = resultVariables(branch);
    if (!found) return undefined;
    names.push(...found);
  }
  return names.length > 0 ? names : undefined;
}

/** A field's possible values for a message: mapping constants (options), never a record's data. */
function describeValues(values: unknown[]): string {
  const shown = [...new Set(values.filter((v) => v !== null).map((v) => JSON.stringify(v)))];
  return shown.length > 0 ? shown.join(', ') : 'no value (null: left out)';
}
