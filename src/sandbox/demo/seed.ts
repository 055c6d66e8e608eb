import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePaths } from '../../config/paths.js';
import { generateDemoRecords } from './generate.js';

/** What the fixture-derived records in examples/demo/fhir should give (see its PROVENANCE.md). */
export const DEMO_STATIC_EXPECTED = { births: 1, deaths: 2, skipped: 1 };

/** The HL7 and OpenMRS example records shipped in examples/demo/fhir. */
export function staticDemoRecords(): unknown[] {
  const dir = `${packagePaths.examples}demo/fhir/`;
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')));
}

/** The demo's FHIR seed: the example records plus generated births and deaths. */
export function demoSeed(births = 8, deaths = 4): unknown[] {
  return [...staticDemoRecords(), ...generateDemoRecords(births, deaths)];
}
