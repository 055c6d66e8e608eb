import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { packagePaths } from './paths.js';

/** Loads a JSON Schema from profiles/ (shared by config, mappings and OpenCRVS form profiles). */
export function readProfileJson(relativePath: string): unknown {
  return JSON.parse(readFileSync(`${packagePaths.profiles}${relativePath}`, 'utf8'));
}

/** `/sources/0/baseUrl` → `['sources', '0', 'baseUrl']` (JSON pointer escapes undone). */
export function pointerParts(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value at a JSON pointer of `root`; undefined when there is none. */
export function atPointer(root: unknown, pointer: string): unknown {
  let node = root;
  for (const part of pointerParts(pointer))
    node = node && typeof node === 'object' ? Reflect.get(node, part) : undefined;
  return node;
}

/** `/sources/0/baseUrl` → `sources[0].baseUrl`. */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const part of pointerParts(pointer)) {
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

/**
 * The key path and a human sentence for one ajv error (unknown keys name the key itself). `data`, the
 * document validated, lets a pattern's sentence quote the value refused. A pattern's `patternMessage` and an
 * unknown key's "did you mean" are read off the failing schema node: they need the error of a validator
 * compiled with `createAjv({ verbose: true })`.
 */
export function describeAjvError(error: ErrorObject, data?: unknown): { path: string; problem: string } {
  const base = pointerToPath(error.instancePath);
  const join = (key: string) => (base ? `${base}.${key}` : key);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      const near = nearestKey(error, key);
      return { path: join(key), problem: near ? `unknown key (did you mean ${near}?)` : 'unknown key' };
    }
    case 'required': {
      const key = String((error.params as { missingProperty: string }).missingProperty);
      return { path: join(key), problem: 'is required' };
    }
    case 'enum': {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
      // `version: 2.0` unquoted is the number 2 to YAML.
      const numeric = allowed.length > 0 && allowed.every((v) => typeof v === 'string' && /^\d+\.\d+$/.test(v));
      const hint = numeric ? ` (in quotes: YAML reads ${String(allowed[0])} unquoted as a number)` : '';
      return { path: base, problem: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}${hint}` };
    }
    case 'pattern': {
      // A pattern is no sentence: a schema node may say in words what it asks for (`patternMessage`). Read
      // off the node itself (`parentSchema`, given by a validator compiled `verbose`): ajv's schemaPath starts
      // again inside a `$ref` it does not inline (a definition with a `$ref` of its own), where it names
      // no node of the root schema.
      const said = (error.parentSchema as { patternMessage?: unknown } | undefined)?.patternMessage;
      if (typeof said !== 'string') return { path: base, problem: error.message ?? error.keyword };
      // `{value}`: only where the schema asks for it (a uid), never for a value that may hold a secret.
      if (!said.includes('{value}')) return { path: base, problem: said };
      const value = atPointer(data, error.instancePath);
      return { path: base, problem: said.replace('{value}', typeof value === 'string' ? quoted(value) : 'the value') };
    }
    case 'type': {
      // `password: 123456` is a number to YAML, as `version: 2.0` is (the enum branch); the value is not
      // repeated: it may be a secret.
      const value = atPointer(data, error.instancePath);
      const read = typeof value === 'number' ? 'a number' : typeof value === 'boolean' ? 'true or false' : undefined;
      const wanted = (error.params as { type?: unknown }).type;
      const hint = wanted === 'string' && read ? ` (put it in quotes: YAML reads it unquoted as ${read})` : '';
      return { path: base, problem: `${error.message ?? error.keyword}${hint}` };
    }
    default:
      return { path: base, problem: error.message ?? error.keyword };
  }
}

/** A value quoted for a message, cut short: a refused value may be anything pasted there. */
function quoted(value: string): string {
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
}

const MAX_QUOTED = 40;

/**
 * The allowed key a typo most likely meant (`settleSecond` → `settleSeconds`, `clientID` → `clientId`):
 * the keys of the object schema the error is about, within two edits, or equal but for case; failing
 * those, the shortest key a shortened one begins (`user` → `username`).
 */
function nearestKey(error: ErrorObject, key: string): string | undefined {
  // The object schema itself (`parentSchema`, of a validator compiled `verbose`), not found along ajv's
  // schemaPath, which starts again inside a `$ref` ajv does not inline (sources[].auth).
  const properties = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  if (!properties) return undefined;
  let best: { key: string; distance: number } | undefined;
  for (const candidate of Object.keys(properties)) {
    const distance = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(candidate, key);
    if (distance <= 2 && (!best || distance < best.distance)) best = { key: candidate, distance };
  }
  if (best) return best.key;
  if (key.length < 3) return undefined;
  return Object.keys(properties)
    .filter((candidate) => candidate.toLowerCase().startsWith(key.toLowerCase()))
    .sort((a, b) => a.length - b.length)[0];
}

/** Levenshtein distance (keys are short; two rows of a small table). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
