// Quantities → numbers in the unit OpenCRVS expects (birth weight in kg).
import { isObject } from '../../util/is-object.js';
export type NumberOutcome = { value: number } | { error: string };

const UCUM = 'http://unitsofmeasure.org';

// UCUM codes first ([lb_av], [oz_av]), then the free-text units EMRs put in Quantity.unit.
const TO_KG: Readonly<Record<string, number>> = {
  mg: 0.000001,
  g: 0.001,
  gm: 0.001,
  gram: 0.001,
  grams: 0.001,
  kg: 1,
  kilogram: 1,
  kilograms: 1,
  '[lb_av]': 0.45359237,
  lb: 0.45359237,
  lbs: 0.45359237,
  pound: 0.45359237,
  pounds: 0.45359237,
  '[oz_av]': 0.028349523125,
  oz: 0.028349523125,
  ounce: 0.028349523125,
  ounces: 0.028349523125,
};

function numeric(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  return undefined;
}

/**
 * The units a Quantity carries (code, then unit text); none when it is dimensionless UCUM ('1', '{births}').
 * A UCUM code is the unit, whatever text is beside it ('{births}' displayed as 'births').
 */
function quantityUnits(item: Record<string, unknown>): string[] {
  const units = ucumCode(item) ? [item.code as string] : [item.code, item.unit].filter(nonBlank);
  return units.every((u) => u.trim() === '1' || /^\{[^{}]*\}$/.test(u.trim())) ? [] : units;
}

const nonBlank = (u: unknown): u is string => typeof u === 'string' && u.trim() !== '';

/** Whether the Quantity gives a UCUM code, which is then its unit. */
function ucumCode(item: Record<string, unknown>): boolean {
  return item.system === UCUM && nonBlank(item.code);
}

/** A Quantity without a unit, or with a dimensionless UCUM one ('1', '{births}'): a plain count. */
export function isDimensionless(item: Record<string, unknown>): boolean {
  return quantityUnits(item).length === 0;
}

/**
 * A number, a numeric string or the value of a Quantity without a unit. A Quantity with a unit is an error:
 * taking its value would send 2500 g as 2500 to a field in kg, so the unit-aware conversion must be chosen.
 * `transform` is the conversion asked for (number, integer), named in the message.
 */
export function toNumber(item: unknown, transform = 'number'): NumberOutcome {
  const units = isObject(item) && item.value !== undefined ? quantityUnits(item) : [];
  if (units.length > 0) {
    // Unit codes are vocabulary, not personal data, so they may appear in the message.
    const use = units.some((u) => unitEntry(TO_KG, u) !== undefined)
      ? 'use as: kilograms'
      : 'use the conversion for its unit (as: kilograms for a mass), or select the number itself (….value.value) to send it as it is';
    return { error: `is a Quantity in '${units[0]}', and as: ${transform} ignores units: ${use}` };
  }
  const value = numeric(isObject(item) ? item.value : item);
  return value === undefined ? { error: 'is not a number' } : { value };
}

/** A table's entry for a unit as written, else trimmed and in lower case; never an Object.prototype key. */
function unitEntry<T>(table: Readonly<Record<string, T>>, unit: string): T | undefined {
  if (Object.hasOwn(table, unit)) return table[unit];
  const loose = unit.trim().toLowerCase();
  return Object.hasOwn(table, loose) ? table[loose] : undefined;
}

/** A Quantity's unit looked up in a conversion's table: its entry, the unit no entry matched, or no unit. */
type UnitLookup<T> = { entry: T } | { unmatched: string; ucum: boolean } | { none: true };

/**
 * A Quantity's unit in a conversion's table, as every unit-aware conversion reads it. A UCUM code (system
 * unitsofmeasure.org) is the unit, in UCUM's spelling or an EMR's own stamped with the UCUM system ('lbs',
 * 'gm', 'Kilograms'), in any case: the unit text beside it is only its display, which an EMR may have left
 * stale (a 'cm' code with 'kg' text is no weight). Without one, each of the code and the unit text is
 * tried: a code in another system (SNOMED CT's 258707000 for a year) matches no entry, and the text beside
 * it ('a', 'years') still gives the unit. `unmatched` names the code, else the text: vocabulary, not
 * personal data, so messages may quote it.
 */
function lookupUnit<T>(table: Readonly<Record<string, T>>, item: Record<string, unknown>): UnitLookup<T> {
  if (ucumCode(item)) {
    const code = item.code as string;
    const entry = unitEntry(table, code);
    return entry === undefined ? { unmatched: code, ucum: true } : { entry };
  }
  const units = [item.code, item.unit].filter(nonBlank);
  if (units.length === 0) return { none: true };
  for (const unit of units) {
    const entry = unitEntry(table, unit);
    if (entry !== undefined) return { entry };
  }
  return { unmatched: units[0] as string, ucum: false };
}

/** Mass Quantity → kg, rounded to the gram (3 decimals); its unit read as `lookupUnit` reads it. */
export function toKilograms(item: unknown): NumberOutcome {
  if (!isObject(item)) return { error: 'is not a Quantity with a unit' };
  const value = numeric(item.value);
  if (value === undefined) return { error: 'has no numeric value' };
  // 'KG' in any case too: a weight in gauss or megagrams means grams or milligrams; a field's min and max
  // catch what is still off.
  const unit = lookupUnit(TO_KG, item);
  if ('entry' in unit) return { value: Math.round(value * unit.entry * 1000) / 1000 };
  if ('none' in unit) return { error: 'has no unit' };
  return {
    error: `${unit.ucum ? 'UCUM unit' : 'unit'} '${unit.unmatched}' is not a mass unit (g, kg, mg, [lb_av], [oz_av])`,
  };
}

// UCUM duration codes → years, for ages ("a" is the UCUM annum).
const TO_YEARS: Readonly<Record<string, number>> = {
  a: 1,
  year: 1,
  years: 1,
  yr: 1,
  yrs: 1,
  mo: 1 / 12,
  month: 1 / 12,
  months: 1 / 12,
  wk: 7 / 365.25,
  week: 7 / 365.25,
  weeks: 7 / 365.25,
  d: 1 / 365.25,
  day: 1 / 365.25,
  days: 1 / 365.25,
  // VRDR ages of newborns who died: completed years are 0.
  h: 1 / (365.25 * 24),
  hour: 1 / (365.25 * 24),
  hours: 1 / (365.25 * 24),
  min: 1 / (365.25 * 24 * 60),
  minute: 1 / (365.25 * 24 * 60),
  minutes: 1 / (365.25 * 24 * 60),
};

/**
 * An age Quantity (or a bare number of years) → completed years, its unit read as `lookupUnit` reads it.
 * An age that cannot be trusted is `unknown`: the field is left out and the next source (the years
 * between the dates) is used, with a warning if none gives the age. So is an age recorded as unknown (no
 * value, as a data-absent reason leaves it, or VRDR's unit UNK, a v3-NullFlavor code), and an age without
 * a unit (or a dimensionless one, '1'): 6 could be days as well as years, and an infant's age whose unit
 * was dropped would otherwise go out as 6 years. A unit that is no duration ('kg') is an error.
 */
export function toYears(item: unknown): NumberOutcome | { unknown: string } {
  if (!isObject(item)) {
    const n = numeric(item);
    return n === undefined ? { error: 'is not an age' } : { value: Math.floor(n) };
  }
  const value = numeric(item.value);
  if (value === undefined) return { unknown: 'the age has no value' };
  if ([item.code, item.unit].some((u) => nonBlank(u) && u.trim().toUpperCase() === 'UNK'))
    return { unknown: 'the age is recorded as unknown (UNK)' };
  const unit = isDimensionless(item) ? { none: true as const } : lookupUnit(TO_YEARS, item);
  if ('none' in unit) return { unknown: 'left out: the age has no unit (a, mo, wk, d, h, min)' };
  if ('unmatched' in unit)
    return {
      error: `${unit.ucum ? 'UCUM unit' : 'unit'} '${unit.unmatched}' is not a duration unit (a, mo, wk, d, h, min)`,
    };
  return { value: Math.floor(value * unit.entry + 1e-9) };
}

// Duration units (UCUM codes, then words) → the unit names of OpenCRVS's NUMBER_WITH_UNIT interval
// fields (Farajaland's causeOfDeath…interval options).
const DURATION_UNITS: Readonly<Record<string, string>> = {
  min: 'Minutes',
  mins: 'Minutes',
  minute: 'Minutes',
  minutes: 'Minutes',
  h: 'Hours',
  hr: 'Hours',
  hrs: 'Hours',
  hour: 'Hours',
  hours: 'Hours',
  d: 'Days',
  day: 'Days',
  days: 'Days',
  wk: 'Weeks',
  week: 'Weeks',
  weeks: 'Weeks',
  mo: 'Months',
  month: 'Months',
  months: 'Months',
  a: 'Years',
  yr: 'Years',
  yrs: 'Years',
  year: 'Years',
  years: 'Years',
};

export type DurationOutcome = { value: { numericValue: number; unit: string } } | { skip: string };

/**
 * A duration Quantity (its unit read as `lookupUnit` reads it), or text such as VRDR's onset-to-death
 * interval ("4 hours"), → {numericValue, unit}.
 * Free text that is not one number and one unit ("about a week", "unknown") is left out, not an error:
 * the interval is a detail of the cause, not a reason to hold the whole death back.
 */
export function toDuration(item: unknown): DurationOutcome {
  let value: number | undefined;
  let name: string | undefined;
  if (isObject(item)) {
    value = numeric(item.value);
    const unit = lookupUnit(DURATION_UNITS, item);
    name = 'entry' in unit ? unit.entry : undefined;
  } else if (typeof item === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\.?\s*$/.exec(item);
    value = m ? Number(m[1]) : undefined;
    name = m?.[2] === undefined ? undefined : unitEntry(DURATION_UNITS, m[2]);
  }
  if (value === undefined || name === undefined)
    return { skip: 'is not a number with a duration unit (min, h, d, wk, mo, a)' };
  return { value: { numericValue: value, unit: name } };
}
