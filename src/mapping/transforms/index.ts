// The transforms a mapping field can use (`as:`), which field types each may fill, and the dispatcher.
import { toOpenCrvsAddress } from './address.js';
import { toPlainDate } from './dates.js';
import { toOpenCrvsName } from './names.js';
import { toDuration, toKilograms, toNumber, toYears } from './units.js';
import { toBoolean, toReferenceId, toText } from './values.js';

export const TRANSFORM_FIELD_TYPES = {
  name: ['NAME'],
  date: ['DATE'],
  kilograms: ['NUMBER'],
  number: ['NUMBER', 'BUTTON'],
  integer: ['NUMBER', 'BUTTON'],
  age: ['AGE'],
  duration: ['NUMBER_WITH_UNIT'],
  address: ['ADDRESS'],
  boolean: ['CHECKBOX'],
  reference: ['LOCATION', 'FACILITY', 'ALPHA_HIDDEN', 'TEXT', 'ID'],
  text: [
    'TEXT',
    'TEXTAREA',
    'PHONE',
    'EMAIL',
    'ID',
    'ALPHA_HIDDEN',
    'LOCATION',
    'FACILITY',
    'COUNTRY',
    'VERIFICATION_STATUS',
    'SELECT',
    'RADIO_GROUP',
  ],
} as const satisfies Record<string, readonly string[]>;

export type TransformName = keyof typeof TRANSFORM_FIELD_TYPES;

export function isTransformName(name: string): name is TransformName {
  return Object.hasOwn(TRANSFORM_FIELD_TYPES, name);
}

/** The transform used when a field gives none: the natural one for the field's type. */
export function inferTransform(fieldType: string): TransformName | undefined {
  const natural: Record<string, TransformName> = {
    NAME: 'name',
    DATE: 'date',
    NUMBER: 'number',
    AGE: 'age',
    NUMBER_WITH_UNIT: 'duration',
  };
  if (natural[fieldType]) return natural[fieldType];
  if (fieldType === 'ADDRESS') return 'address';
  if (fieldType === 'CHECKBOX') return 'boolean';
  return (TRANSFORM_FIELD_TYPES.text as readonly string[]).includes(fieldType) ? 'text' : undefined;
}

export interface TransformOptions {
  asOfDateRef?: string;
  domesticCountry?: string;
  /** The OpenCRVS country whose code domesticCountry is ('farajaland'): an EMR may write the name. */
  domesticCountryName?: string;
  /** IANA zone a source's UTC dateTimes are read in (SourceSettings.timeZone). */
  timeZone?: string;
}

/** value: set the field; skip: leave it out (with a warning when a reason is given); error: per-record error. */
export type FieldOutcome = { value: unknown } | { skip: string | undefined } | { error: string };

export function applyTransform(
  name: TransformName,
  items: readonly unknown[],
  options: TransformOptions,
): FieldOutcome {
  const first = items[0];
  switch (name) {
    case 'name': {
      const value = toOpenCrvsName(items);
      return value ? { value } : { skip: undefined };
    }
    case 'date': {
      const out = toPlainDate(first, options.timeZone);
      if ('partial' in out)
        return {
          skip: out.reason ? `the date ${out.reason}` : 'date is not complete (year, month and day are needed)',
        };
      return out;
    }
    case 'kilograms':
      return toKilograms(first);
    case 'number':
      return toNumber(first, 'number');
    case 'integer': {
      const out = toNumber(first, 'integer');
      if ('error' in out) return out;
      return Number.isInteger(out.value) ? out : { error: 'is not a whole number' };
    }
    case 'age': {
      const out = toYears(first);
      if ('unknown' in out) return { skip: out.unknown };
      if ('error' in out) return out;
      return { value: { age: out.value, asOfDateRef: options.asOfDateRef } };
    }
    case 'duration': {
      const out = toDuration(first);
      return 'skip' in out ? { skip: `interval left out: ${out.skip}` } : out;
    }
    case 'address': {
      const out = toOpenCrvsAddress(items, options.domesticCountry, options.domesticCountryName);
      return 'skip' in out ? { skip: `address left out: ${out.skip}` } : out;
    }
    case 'boolean':
      return toBoolean(first);
    case 'reference':
      return toReferenceId(first);
    case 'text':
      return toText(first);
  }
}
