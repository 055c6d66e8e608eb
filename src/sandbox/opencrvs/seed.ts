import { readFileSync } from 'node:fs';
import { v5 as uuidv5 } from 'uuid';
import { packagePaths } from '../../config/paths.js';
import type { SimLocation, SimLocationType } from './types.js';

// Real OpenCRVS gives every seeded location a random UUID (v4) per deployment and keeps the CSV id as
// `externalId`. The simulator derives UUIDv5 ids from the CSV ids instead, so a demo configuration that
// names office UUIDs stays valid across restarts. Real deployments differ: route by externalId.
const LOCATION_NAMESPACE = '6f0c2a8e-4b1d-5e3a-9c7f-2d8b1e4a6c90';

export function locationUuid(country: string, csvId: string): string {
  return uuidv5(`${country}/${csvId}`, LOCATION_NAMESPACE);
}

export interface SeededLocations {
  /** Offices and health facilities (what `GET /locations` lists in v2.0). */
  locations: SimLocation[];
  /** Provinces, districts and villages (admin1..admin3). */
  administrativeAreas: SimLocation[];
}

/** Splits a CSV without quoted fields (Farajaland's seed files have none; a quote is refused). */
function parseCsv(text: string, file: string): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = lines.shift()?.split(',') ?? [];
  return lines.map((line, index) => {
    if (line.includes('"')) throw new Error(`${file}: quoted CSV fields are not supported (row ${index + 2})`);
    const cells = line.split(',');
    if (cells.length !== header.length) throw new Error(`${file}: row ${index + 2} has ${cells.length} cells`);
    return Object.fromEntries(header.map((name, i) => [name, cells[i] ?? '']));
  });
}

function required(row: Record<string, string>, key: string, file: string): string {
  const value = row[key];
  if (!value) throw new Error(`${file}: missing ${key}`);
  return value;
}

function parentId(country: string, partOf: string): string | null {
  const pcode = partOf.replace(/^Location\//, '');
  return pcode === '0' || pcode === '' ? null : locationUuid(country, pcode);
}

function area(country: string, externalId: string, name: string, parent: string | null): SimLocation {
  const partOf = parent ? locationUuid(country, parent) : null;
  const id = locationUuid(country, externalId);
  return { id, name, externalId, locationType: 'ADMIN_STRUCTURE', partOf, administrativeAreaId: partOf };
}

/**
 * Reads `profiles/opencrvs/<country>/locations/{locations,administrative-areas}.csv` the way the
 * Farajaland seeding handler does: every non-empty admin1..admin3 pcode becomes an area whose parent is
 * the level above (admin1 hangs off the root), and location rows pass through unchanged.
 */
export function loadSeededLocations(country: string, dir = `${packagePaths.profiles}opencrvs/${country}/locations/`) {
  const areasFile = `${dir}administrative-areas.csv`;
  const locationsFile = `${dir}locations.csv`;
  const areas = new Map<string, SimLocation>();
  for (const row of parseCsv(readFileSync(areasFile, 'utf8'), areasFile)) {
    const levels: Array<[string, string]> = [1, 2, 3].map((n) => [
      row[`admin${n}Pcode`] ?? '',
      row[`admin${n}Name_en`] ?? '',
    ]);
    levels.forEach(([pcode, name], index) => {
      if (!pcode || areas.has(pcode)) return;
      const parent = index === 0 ? null : (levels[index - 1]?.[0] ?? null);
      areas.set(pcode, area(country, pcode, name, parent || null));
    });
  }
  const locations = parseCsv(readFileSync(locationsFile, 'utf8'), locationsFile).map((row): SimLocation => {
    const type = required(row, 'locationType', locationsFile);
    if (type !== 'CRVS_OFFICE' && type !== 'HEALTH_FACILITY') throw new Error(`${locationsFile}: unknown type ${type}`);
    const externalId = required(row, 'id', locationsFile);
    const partOf = parentId(country, row.partOf ?? '');
    return {
      id: locationUuid(country, externalId),
      name: required(row, 'name', locationsFile),
      externalId,
      locationType: type satisfies SimLocationType,
      partOf,
      administrativeAreaId: partOf,
    };
  });
  const result: SeededLocations = { locations, administrativeAreas: [...areas.values()] };
  return result;
}
