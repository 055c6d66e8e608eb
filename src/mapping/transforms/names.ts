// HumanName(s) → OpenCRVS NAME {firstname, middlename, surname}.
import { isObject } from '../../util/is-object.js';
export interface NameValue {
  firstname?: string;
  middlename?: string;
  surname?: string;
}

function clean(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim().replace(/\s+/g, ' ');
  return text || undefined;
}

/** A name that is no longer the person's (FHIR name-use old; maiden is a former name too). */
const FORMER = new Set(['old', 'maiden']);

/** The name to use: use=official, else use=usual, else the first current one, else the first one. */
export function chooseName(names: readonly unknown[]): unknown {
  const objects = names.filter(isObject);
  return (
    objects.find((n) => n.use === 'official') ??
    objects.find((n) => n.use === 'usual') ??
    objects.find((n) => !FORMER.has(String(n.use))) ??
    objects[0] ??
    names.find((n) => typeof n === 'string')
  );
}

/** "Amani Baraka Juma" → first word firstname, last word surname, the rest middlename. */
function splitText(text: string): NameValue {
  const words = text.split(' ');
  if (words.length === 1) return { firstname: words[0] };
  return {
    firstname: words[0],
    middlename: words.length > 2 ? words.slice(1, -1).join(' ') : undefined,
    surname: words[words.length - 1],
  };
}

function compact(name: NameValue): NameValue | undefined {
  const out: NameValue = {};
  if (name.firstname) out.firstname = name.firstname;
  if (name.middlename) out.middlename = name.middlename;
  if (name.surname) out.surname = name.surname;
  return Object.keys(out).length ? out : undefined;
}

/**
 * given[0] → firstname, given[1..] → middlename, family → surname. A name with only `text` is split on
 * spaces. Parts that are absent (e.g. a data-absent-reason on a stillborn's family name) are left out.
 */
export function toOpenCrvsName(names: readonly unknown[]): NameValue | undefined {
  const chosen = chooseName(names);
  if (typeof chosen === 'string') {
    const text = clean(chosen);
    return text ? compact(splitText(text)) : undefined;
  }
  if (!isObject(chosen)) return undefined;
  const given = (Array.isArray(chosen.given) ? chosen.given : []).map(clean).filter((g): g is string => !!g);
  const family = clean(Array.isArray(chosen.family) ? chosen.family.join(' ') : chosen.family);
  if (given.length === 0 && !family) {
    const text = clean(chosen.text);
    return text ? compact(splitText(text)) : undefined;
  }
  return compact({ firstname: given[0], middlename: given.slice(1).join(' '), surname: family });
}
