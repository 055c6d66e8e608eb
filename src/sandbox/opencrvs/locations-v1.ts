// OpenCRVS 1.x serves locations from the gateway's FHIR location API, not from the events service:
// `GET /location?type=CRVS_OFFICE&_count=0`, public (no token), a FHIR Bundle of Location resources.
import type { SimLocation, SimResponse } from './types.js';

const LOCATION_TYPE_SYSTEM = 'http://opencrvs.org/specs/location-type';
const INTERNAL_ID_SYSTEM = 'http://opencrvs.org/specs/id/internal-id';

function first(value: unknown): string | undefined {
  if (Array.isArray(value)) return first(value[0]);
  return typeof value === 'string' ? value : undefined;
}

function toFhir(location: SimLocation) {
  return {
    resourceType: 'Location',
    id: location.id,
    name: location.name,
    status: location.deactivated ? 'inactive' : 'active',
    mode: 'instance',
    // An office's CSV id with its type in front, as 1.x writes it (docs/opencrvs-api.md, "Calls"); others keep
    // the CSV id.
    identifier: [
      {
        system: INTERNAL_ID_SYSTEM,
        value: location.locationType === 'CRVS_OFFICE' ? `CRVS_OFFICE_${location.externalId}` : location.externalId,
      },
    ],
    type: { coding: [{ system: LOCATION_TYPE_SYSTEM, code: location.locationType }] },
    // `Location/0` is the root of the v1 hierarchy.
    partOf: { reference: `Location/${location.partOf ?? '0'}` },
  };
}

/**
 * Every location (areas, offices, facilities) of the `type` asked, or all; `_count` is ignored. Archived ones
 * too, as `status: inactive`: 1.x leaves them out only when asked for `status=active`.
 */
export function handleV1Locations(locations: SimLocation[], query: Record<string, unknown>): SimResponse {
  const type = first(query.type);
  const found = locations.filter((location) => type === undefined || location.locationType === type);
  return {
    status: 200,
    headers: { 'Content-Type': 'application/fhir+json; charset=utf-8' },
    body: JSON.stringify({
      resourceType: 'Bundle',
      type: 'searchset',
      total: found.length,
      entry: found.map((location) => ({ fullUrl: `Location/${location.id}`, resource: toFhir(location) })),
    }),
  };
}
