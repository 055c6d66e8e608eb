import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

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

/**
 * The file a mapping entry names: one with a folder in it is a path (a site's own mapping, see the
 * config), anything else a file of `dir` (`birth.fhir` → `<dir>/birth.fhir.yaml`). Here, not beside the
 * compiler (mapping/load.ts): commands that only read the files (`ledger --find`'s lookup hint) need the
 * path without loading the compiler, FHIRPath and Ajv.
 */
export function mappingFile(entry: string, dir: string = packagePaths.mappings): string {
  if (isMappingPath(entry)) return resolve(entry);
  return shippedMappingFile(entry, dir);
}

/** The shipped mappings a source of each kind uses when it names none (`sources[].mappings`). */
export const DEFAULT_MAPPINGS: Readonly<Record<'fhir' | 'dhis2', readonly string[]>> = {
  fhir: ['birth.fhir', 'death.fhir'],
  dhis2: ['birth.dhis2', 'death.dhis2'],
};

/**
 * The shipped mappings a source uses when it names none. A DHIS2 source polls one programme, and DHIS2 then
 * lists only the enrollments in it: of the shipped DHIS2 mappings (birth.dhis2 for the demo's Child
 * Programme, death.dhis2 for the sandbox's death programme) only those whose `codes.program` names that
 * programme could ever notify anything, so only those are taken. When none does (a site's own programme),
 * all are, and start-up, validate and doctor warn that none can notify anything (mapping/coded-tests.ts):
 * a warning, not a refusal, since that reading of a trigger can be wrong.
 */
export function defaultMappings(kind: 'fhir' | 'dhis2', program: string): string[] {
  const all = [...DEFAULT_MAPPINGS[kind]];
  if (kind !== 'dhis2') return all;
  const reading = all.filter((name) => shippedPrograms(name).includes(program));
  return reading.length > 0 ? reading : all;
}

const programsOfShipped = new Map<string, string[]>();

/** The `codes.program` of a shipped mapping (empty when it cannot be read: loading it says why). */
function shippedPrograms(name: string): string[] {
  let programs = programsOfShipped.get(name);
  if (!programs) {
    try {
      const doc = parse(readFileSync(shippedMappingFile(name), 'utf8')) as { codes?: { program?: unknown } };
      programs = Array.isArray(doc?.codes?.program) ? doc.codes.program.map(String) : [];
    } catch {
      programs = [];
    }
    programsOfShipped.set(name, programs);
  }
  return programs;
}
