// Structural checks of NOTIFY declaration values per field type, as opencrvs-core v2.0.0 builds them
// with `mapFieldTypeToZod(field, 'NOTIFY')` (profiles/opencrvs/value-shapes.md). Only shapes are
// checked: no options, no ranges, no custom validators. Object schemas are not strict in zod, so
// extra keys inside a value are accepted (and dropped by OpenCRVS).
import { OPENCRVS_EMAIL } from '../../mapping/email.js';
import { isObject } from '../../util/is-object.js';

type Check = (value: unknown) => boolean;

const isString: Check = (v) => typeof v === 'string';
const isNumber: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const isBoolean: Check = (v) => typeof v === 'boolean';
const optional = (check: Check) => (v: unknown) => v === undefined || check(v);
const nullish = (check: Check) => (v: unknown) => v === undefined || v === null || check(v);

/** zod's ISO calendar date (`z.iso.date()`): YYYY-MM-DD and a real day of the calendar. */
function isPlainDate(v: unknown): boolean {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return false;
  const [y, m, d] = v.split('-').map(Number) as [number, number, number];
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Farajaland's `streetAddressForm` ids: other keys in `streetLevelDetails` make the value invalid. */
export const STREET_LEVEL_KEYS = new Set([
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
]);

function objectWith(shape: Record<string, Check>): Check {
  return (v) => isObject(v) && Object.entries(shape).every(([key, check]) => check(v[key]));
}

const isName = objectWith({ firstname: nullish(isString), surname: nullish(isString), middlename: nullish(isString) });
const isFile = objectWith({ path: isString, originalFilename: isString, type: isString });
const isFileWithOption = objectWith({ path: isString, originalFilename: isString, type: isString, option: isString });

function isStreetLevelDetails(v: unknown): boolean {
  if (v === undefined) return true;
  if (!isObject(v)) return false;
  return Object.entries(v).every(([key, part]) => STREET_LEVEL_KEYS.has(key) && (part === null || isString(part)));
}

function isAddress(v: unknown): boolean {
  if (!isObject(v) || !optional(isString)(v.country) || !isStreetLevelDetails(v.streetLevelDetails)) return false;
  if (v.addressType === 'DOMESTIC') {
    return v.administrativeArea === undefined || v.administrativeArea === null || isUuid(v.administrativeArea);
  }
  return v.addressType === 'INTERNATIONAL';
}

function isUuid(v: unknown): boolean {
  return typeof v === 'string' && UUID.test(v);
}

const isHttp = objectWith({
  loading: nullish(isBoolean),
  error: nullish(objectWith({ statusCode: isNumber, message: isString })),
});

function isStringRecord(v: unknown): boolean {
  return isObject(v) && Object.values(v).every(isString);
}

const TEXT_TYPES = [
  'TEXT',
  'TEXTAREA',
  'PHONE',
  'ID',
  'SELECT',
  'RADIO_GROUP',
  'COUNTRY',
  'LOCATION',
  'FACILITY',
  'OFFICE',
  'ADMINISTRATIVE_AREA',
  'ALPHA_HIDDEN',
  'VERIFICATION_STATUS',
  // Presentational fields are mapped to plain text by core.
  'DIVIDER',
  'HEADING',
  'PARAGRAPH',
  'BULLET_LIST',
  'LOADER',
  'PAGE_HEADER',
];

const CHECKS: Record<string, Check> = {
  ...Object.fromEntries(TEXT_TYPES.map((type) => [type, isString])),
  NAME: isName,
  DATE: isPlainDate,
  AGE: objectWith({ age: isNumber, asOfDateRef: isString }),
  NUMBER: isNumber,
  NUMBER_WITH_UNIT: objectWith({ numericValue: optional(isNumber), unit: optional(isString) }),
  CHECKBOX: isBoolean,
  ADDRESS: isAddress,
  // zod's default email pattern (the same in zod 3's `.email()` and zod 4's `z.email()`), shared with the
  // bridge's own check so that what the bridge sends is what this simulator takes.
  EMAIL: (v) => typeof v === 'string' && OPENCRVS_EMAIL.test(v),
  FILE: isFile,
  SIGNATURE: isFile,
  FILE_WITH_OPTIONS: (v) => Array.isArray(v) && v.every(isFileWithOption),
  AUTOCOMPLETE: objectWith({ label: isString, value: isString }),
  BUTTON: isNumber,
  HTTP: isHttp,
  QUERY_PARAM_READER: objectWith({ data: isStringRecord, updatedAt: optional(isString) }),
  ID_READER: isObject,
};

/** True when OpenCRVS skips the value entirely: undefined, '' or an object whose values are all undefined/''. */
export function isEmptyValue(value: unknown): boolean {
  if (value === undefined || value === '') return true;
  if (typeof value === 'object' && value !== null) {
    return Object.values(value).every((part) => part === undefined || part === '');
  }
  return false;
}

/**
 * Whether `value` has the structure of `fieldType` (null always passes: the NOTIFY schema is nullish).
 * An unknown field type accepts anything, as a new core type would before the simulator learns it.
 */
export function hasValidShape(fieldType: string, value: unknown): boolean {
  if (value === null) return true;
  const check = CHECKS[fieldType];
  return check ? check(value) : true;
}
