import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { packagePaths } from './paths.js';

/** Loads a JSON Schema from profiles/ (shared by config, mappings and OpenCRVS form profiles). */
export function readProfileJson(relativePath: string): unknown {
  return JSON.parse(readFileSync(`${packagePaths.profiles}${relativePath}`, 'utf8'));
}

/** `/sources/0/baseUrl` → `sources[0].baseUrl`. */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

/** The key path and a human sentence for one ajv error (unknown keys name the key itself). */
export function describeAjvError(error: ErrorObject): { path: string; problem: string } {
  const base = pointerToPath(error.instancePath);
  const join = (key: string) => (base ? `${base}.${key}` : key);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      return { path: join(key), problem: 'unknown key' };
    }
    case 'required': {
      const key = String((error.params as { missingProperty: string }).missingProperty);
      return { path: join(key), problem: 'is required' };
    }
    case 'enum': {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
      return { path: base, problem: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}` };
    }
    default:
      return { path: base, problem: error.message ?? error.keyword };
  }
}

export function createAjv(): Ajv {
  return new Ajv({ allErrors: true, useDefaults: true, strict: false });
}
