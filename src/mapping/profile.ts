// OpenCRVS form profiles (profiles/opencrvs/<country>/v<version>/<eventType>.json) and the JSON Schema of a
// NOTIFY declaration derived from one (value shapes from profiles/opencrvs/value-shapes.md). The bridge is
// stricter than OpenCRVS core on purpose: a SELECT value must be one of the configured options.
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { packagePaths } from '../config/paths.js';
import { isObject } from '../util/is-object.js';
import { EMAIL_MAX_LENGTH, OPENCRVS_EMAIL_PATTERN } from './email.js';

export interface FormField {
  id: string;
  type: string;
  options?: string[];
  defaultValue?: unknown;
  /** The form never shows it (SHOW conditional never()): a value there is invisible to registrars. */
  neverShown?: boolean;
  /** Shown only when these fields have these values (`mother.idType = NATIONAL_ID`), from its conditional. */
  shownOnlyWhen?: Array<{ field: string; value: string }>;
}

/**
 * The `field = VALUE` terms a SHOW conditional requires: those joined to the rest by a top-level AND.
 * Terms inside an OR, or of other shapes, are not requirements and are left out.
 */
export function requiredTerms(conditional: string): Array<{ field: string; value: string }> {
  return andTerms(conditional).flatMap((term) => {
    const m = /^([a-zA-Z]+(?:\.[A-Za-z]+)+) = '?([\w-]+)'?$/.exec(term);
    return m?.[1] && m[2] ? [{ field: m[1], value: m[2] }] : [];
  });
}

/** The terms joined by top-level ANDs, a parenthesised AND group opened up: `(a AND (b OR c)) AND d` → a, (b OR c), d. */
function andTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  const push = (term: string) => {
    const t = term.trim();
    if (t.startsWith('(') && closingOf(t) === t.length - 1) terms.push(...andTerms(t.slice(1, -1)));
    else terms.push(t);
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth--;
    else if (depth === 0 && text.startsWith(' AND ', i)) {
      push(text.slice(start, i));
      start = i + 5;
    }
  }
  push(text.slice(start));
  return terms;
}

/** The index of the parenthesis closing the one `text` starts with. */
function closingOf(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

/**
 * A SHOW condition as the declaration can check it: `field` is the declaration key that holds the value,
 * `term` the field as the conditional names it (`….symptom.one.value`: the `value` of the AUTOCOMPLETE
 * field `….symptom.one`).
 */
export interface ShowCondition {
  term: string;
  field: string;
  value: string;
}

/** The SHOW conditions of `field` whose controlling field the form has (no other can be checked). */
export function showConditions(field: FormField, fields: ReadonlyMap<string, FormField>): ShowCondition[] {
  return (field.shownOnlyWhen ?? []).flatMap(({ field: term, value }) => {
    const key = fields.has(term) ? term : term.replace(/\.value$/, '');
    return fields.has(key) ? [{ term, field: key, value }] : [];
  });
}

/** Whether a controlling field's value, as a declaration holds it (`true`, `'NATIONAL_ID'`), meets `c`. */
export function meetsCondition(value: unknown, c: ShowCondition): boolean {
  const actual = c.term === c.field ? value : isObject(value) ? value.value : undefined;
  return ['string', 'boolean', 'number'].includes(typeof actual) && String(actual) === c.value;
}

export interface FormProfile {
  country: string;
  version: string;
  eventType: string;
  file: string;
  fields: ReadonlyMap<string, FormField>;
  presentational: ReadonlySet<string>;
  /** Country code of the form's own addresses (DOMESTIC), from the ADDRESS defaults, e.g. 'FAR'. */
  domesticCountry?: string;
  /** The field holding the event's date (the event configuration's dateOfEvent: child.dob, eventDetails.date). */
  dateOfEvent?: string;
}

// Farajaland's streetAddressForm ids; value-shapes.md: other keys make OpenCRVS reject the address.
export const STREET_KEYS = [
  'town',
  'residentialArea',
  'street',
  'number',
  'zipCode',
  'state',
  'district2',
  'cityOrTown',
  'addressLine1',
  'addressLine2',
  'addressLine3',
  'postcodeOrZip',
] as const;

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const str = { type: 'string' };
const file = {
  type: 'object',
  required: ['path', 'originalFilename', 'type'],
  properties: { path: str, originalFilename: str, type: str },
  additionalProperties: false,
};

/** JSON Schema of one field's value in a NOTIFY declaration (null is never produced by mappings). */
export function fieldValueSchema(field: FormField): object | undefined {
  const options = field.options && field.options.length > 0 ? field.options : undefined;
  switch (field.type) {
    case 'TEXT':
    case 'TEXTAREA':
    case 'PHONE':
    case 'ID':
    case 'ALPHA_HIDDEN':
    case 'LOCATION':
    case 'FACILITY':
    case 'VERIFICATION_STATUS':
      return { type: 'string', minLength: 1 };
    case 'EMAIL':
      // OpenCRVS's pattern, not ajv's `format: 'email'`, which takes addresses OpenCRVS refuses (a@b.c).
      return { type: 'string', pattern: OPENCRVS_EMAIL_PATTERN, maxLength: EMAIL_MAX_LENGTH };
    case 'COUNTRY':
      return { type: 'string', pattern: '^[A-Z]{3}$' };
    case 'SELECT':
    case 'RADIO_GROUP':
      return options ? { type: 'string', enum: options } : { type: 'string' };
    case 'DATE':
      return { type: 'string', format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$' };
    case 'NUMBER':
    case 'BUTTON':
      return { type: 'number' };
    case 'CHECKBOX':
      return { type: 'boolean' };
    case 'NAME':
      return {
        type: 'object',
        properties: { firstname: str, middlename: str, surname: str },
        additionalProperties: false,
        minProperties: 1,
      };
    case 'AGE':
      return {
        type: 'object',
        required: ['age', 'asOfDateRef'],
        properties: { age: { type: 'number', minimum: 0 }, asOfDateRef: str },
        additionalProperties: false,
      };
    case 'NUMBER_WITH_UNIT':
      return {
        type: 'object',
        properties: { numericValue: { type: 'number' }, unit: options ? { type: 'string', enum: options } : str },
        additionalProperties: false,
      };
    case 'ADDRESS':
      return {
        type: 'object',
        required: ['addressType'],
        properties: {
          country: { type: 'string', pattern: '^[A-Z]{3}$' },
          addressType: { enum: ['DOMESTIC', 'INTERNATIONAL'] },
          administrativeArea: { type: 'string', pattern: UUID },
          streetLevelDetails: {
            type: 'object',
            propertyNames: { enum: [...STREET_KEYS] },
            additionalProperties: { type: 'string' },
          },
        },
        additionalProperties: false,
        anyOf: [
          { properties: { addressType: { const: 'DOMESTIC' } } },
          { properties: { addressType: { const: 'INTERNATIONAL' } }, not: { required: ['administrativeArea'] } },
        ],
      };
    case 'AUTOCOMPLETE':
      return {
        type: 'object',
        required: ['label', 'value'],
        properties: { label: str, value: str },
        additionalProperties: false,
      };
    case 'FILE':
    case 'SIGNATURE':
      return file;
    case 'FILE_WITH_OPTIONS':
      return {
        type: 'array',
        items: {
          ...file,
          required: [...file.required, 'option'],
          properties: { ...file.properties, option: options ? { enum: options } : str },
        },
      };
    default:
      return undefined; // HTTP, readers and presentational types carry nothing a source could send
  }
}

const profileCache = new Map<string, FormProfile>();

export function profilePath(country: string, version: string, eventType: string): string {
  return `${packagePaths.profiles}opencrvs/${country}/v${version}/${eventType}.json`;
}

/** Loads a form profile; throws an Error with a readable message when it is missing or malformed. */
export function loadFormProfile(country: string, version: string, eventType: string): FormProfile {
  const path = profilePath(country, version, eventType);
  const cached = profileCache.get(path);
  if (cached) return cached;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `no OpenCRVS form profile for ${country} v${version} ${eventType} (expected ${path})`
        : `cannot read the form profile ${path}: ${(err as Error).message}`,
    );
  }
  if (!isObject(raw) || !Array.isArray(raw.fields)) throw new Error(`${path}: not a form profile (no fields)`);
  const fields = new Map<string, FormField>();
  let domesticCountry: string | undefined;
  for (const f of raw.fields) {
    if (!isObject(f) || typeof f.id !== 'string' || typeof f.type !== 'string') {
      throw new Error(`${path}: every field needs an id and a type`);
    }
    const options = Array.isArray(f.options) ? f.options.filter((o): o is string => typeof o === 'string') : undefined;
    const neverShown = typeof f.conditional === 'string' && /\bnever\(\)/.test(f.conditional);
    const shownOnlyWhen = typeof f.conditional === 'string' ? requiredTerms(f.conditional) : [];
    fields.set(f.id, {
      id: f.id,
      type: f.type,
      options,
      defaultValue: f.defaultValue,
      ...(neverShown ? { neverShown } : {}),
      ...(shownOnlyWhen.length > 0 ? { shownOnlyWhen } : {}),
    });
    if (f.type === 'ADDRESS' && isObject(f.defaultValue) && typeof f.defaultValue.country === 'string') {
      domesticCountry ??= f.defaultValue.country;
    }
  }
  const presentational = new Set(
    (Array.isArray(raw.presentational) ? raw.presentational : []).flatMap((p) =>
      isObject(p) && typeof p.id === 'string' ? [p.id] : [],
    ),
  );
  const eventConfig = isObject(raw.eventConfig) ? raw.eventConfig : {};
  const dateOfEvent = typeof eventConfig.dateOfEvent === 'string' ? eventConfig.dateOfEvent : undefined;
  const profile: FormProfile = {
    country,
    version,
    eventType,
    file: path,
    fields,
    presentational,
    domesticCountry,
    ...(dateOfEvent ? { dateOfEvent } : {}),
  };
  profileCache.set(path, profile);
  return profile;
}

let ajv: Ajv | undefined;
/**
 * Compiling a country's declaration schema (166 fields for a 2.0 death) is most of what loading a mapping
 * costs: 0.2-0.3 s a profile, and every command that maps compiles two. Ajv's optimisation passes over the
 * generated code took a third of that for no measurable gain in validation, and checking the schemas
 * against the JSON Schema meta-schema (compiled first, 40-60 ms) re-checked what fieldValueSchema builds
 * the same way every time (test/unit/schema-validators.test.ts checks the shipped profiles' once).
 */
function sharedAjv(): Ajv {
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false, code: { optimize: false } });
    addFormats.default(ajv);
  }
  return ajv;
}

/** The JSON Schema of a whole declaration for a profile: its fields that a mapping can fill, and no other key. */
export function declarationSchema(profile: FormProfile): object {
  const properties: Record<string, object> = {};
  for (const field of profile.fields.values()) {
    const schema = fieldValueSchema(field);
    if (schema) properties[field.id] = schema;
  }
  return { type: 'object', properties, additionalProperties: false };
}

const validatorCache = new WeakMap<FormProfile, ValidateFunction>();

/** The compiled validator of a whole declaration for a profile (compiled once per profile). */
export function declarationValidator(profile: FormProfile): ValidateFunction {
  const cached = validatorCache.get(profile);
  if (cached) return cached;
  const validate = sharedAjv().compile(declarationSchema(profile));
  validatorCache.set(profile, validate);
  return validate;
}

const fieldValidatorCache = new Map<string, ValidateFunction>();

/** Validates one value against one field's schema (used by the static checks of defaults and value maps). */
export function fieldValueProblem(field: FormField, value: unknown): string | undefined {
  const schema = fieldValueSchema(field);
  if (!schema) return `fields of type ${field.type} cannot be filled by a mapping`;
  const key = JSON.stringify(schema);
  let validate = fieldValidatorCache.get(key);
  if (!validate) {
    validate = sharedAjv().compile(schema);
    fieldValidatorCache.set(key, validate);
  }
  if (validate(value)) return undefined;
  const e = validate.errors?.[0];
  if (e?.keyword === 'enum' && field.options) return `is not an option of ${field.id} (${field.options.join(', ')})`;
  if (field.type === 'EMAIL') return `is not an email address OpenCRVS accepts in ${field.id}`;
  return `does not fit ${field.type} field ${field.id}: ${e?.instancePath ?? ''} ${e?.message ?? 'invalid'}`.trim();
}
