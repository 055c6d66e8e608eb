import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The package root holds profiles/ and mappings/ next to src/ (dev) and dist/ (built): both sit
// one level below it, and this file is always two levels below the root.
const root = fileURLToPath(new URL('../../', import.meta.url));

export const packagePaths = {
  root,
  profiles: `${root}profiles/`,
  mappings: `${root}mappings/`,
  examples: `${root}examples/`,
} as const;

/**
 * A `sources[].mappings` entry that is a path to a site's own file (a folder in it: `./mappings/birth.yaml`),
 * not the name of a shipped mapping (`birth.fhir`).
 */
export function isMappingPath(entry: string): boolean {
  return entry.includes('/') || entry.includes('\\') || isAbsolute(entry);
}

/** The file of a shipped mapping named by a `sources[].mappings` entry (`birth.fhir` → `<dir>/birth.fhir.yaml`). */
export function shippedMappingFile(name: string, dir: string = packagePaths.mappings): string {
  return join(dir, name.endsWith('.yaml') ? name : `${name}.yaml`);
}

/** The shipped mappings a source of each kind uses when it names none (`sources[].mappings`). */
export const DEFAULT_MAPPINGS: Readonly<Record<'fhir' | 'dhis2', readonly string[]>> = {
  fhir: ['birth.fhir', 'death.fhir'],
  dhis2: ['birth.dhis2', 'death.dhis2'],
};
