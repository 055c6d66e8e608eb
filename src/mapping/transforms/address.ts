import { isObject } from '../../util/is-object.js';
import { isUuid } from '../../util/uuid.js';
import { alpha3Country } from './countries.js';

// FHIR Address → OpenCRVS ADDRESS, only when it can be said in OpenCRVS's shape: a 3-letter country (one
// given as an alpha-2 code or a name is converted), an administrative area only as a UUID (OpenCRVS
// location ids), street details under Farajaland's keys.
export type AddressOutcome = { value: Record<string, unknown> } | { skip: string };

// OpenCRVS v1 bundles put an URBAN/RURAL marker in Address.line: it is not a street.
const NOT_A_LINE = /^(URBAN|RURAL)$/;

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

function details(entries: Array<[string, string | undefined]>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [key, value] of entries) if (value) out[key] = value;
  return Object.keys(out).length ? out : undefined;
}

/**
 * The home address (use=home, else without use, else the first), converted; `domestic` is e.g. 'FAR', and
 * `domesticName` the OpenCRVS country it is the code of ('farajaland'), which an EMR may write instead.
 */
export function toOpenCrvsAddress(
  items: readonly unknown[],
  domestic: string | undefined,
  domesticName?: string,
): AddressOutcome {
  const addresses = items.filter(isObject);
  // An address the EMR marked old is where the person lived before, not now.
  const chosen =
    addresses.find((a) => a.use === 'home') ??
    addresses.find((a) => a.use === undefined) ??
    addresses.find((a) => a.use !== 'old') ??
    addresses[0];
  if (!chosen) return { skip: 'is not an Address' };
  const lines = (Array.isArray(chosen.line) ? chosen.line : [])
    .map(text)
    .filter((l): l is string => !!l && !NOT_A_LINE.test(l));
  const given = text(chosen.country);
  if (!given && !domestic) return { skip: 'has no country' };
  const home = domestic && domesticName ? { code: domestic, name: domesticName } : undefined;
  const country = !given ? domestic : /^[A-Za-z]{3}$/.test(given) ? given.toUpperCase() : alpha3Country(given, home);
  if (!country) {
    // A code is vocabulary and may be named; free text (a country name, a misplaced address line) is not.
    return /^[A-Za-z]{2}$/.test(given ?? '')
      ? { skip: `country code '${given?.toUpperCase()}' is not an ISO 3166 country` }
      : { skip: 'country, free text (not shown), is neither an ISO 3166 code nor a country name the bridge knows' };
  }
  const district = text(chosen.district);
  const state = text(chosen.state);
  if (country === domestic) {
    const area = [district, state].find((v) => v && isUuid(v));
    const value: Record<string, unknown> = { country, addressType: 'DOMESTIC' };
    if (area) value.administrativeArea = area;
    const street = details([
      ['town', text(chosen.city)],
      ['street', lines[0]],
      ['zipCode', text(chosen.postalCode)],
    ]);
    if (street) value.streetLevelDetails = street;
    return { value };
  }
  const value: Record<string, unknown> = { country, addressType: 'INTERNATIONAL' };
  const street = details([
    ['state', state && !isUuid(state) ? state : undefined],
    ['district2', district && !isUuid(district) ? district : undefined],
    ['cityOrTown', text(chosen.city)],
    ['addressLine1', lines[0] ?? (lines.length === 0 ? text(chosen.text) : undefined)],
    ['addressLine2', lines[1]],
    ['addressLine3', lines[2]],
    ['postcodeOrZip', text(chosen.postalCode)],
  ]);
  if (street) value.streetLevelDetails = street;
  return { value };
}
