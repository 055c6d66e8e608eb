// OpenCRVS 1.9 has no `GET /locations` in the events service; locations come from the v1 FHIR
// location API on the gateway (docs/opencrvs-api.md, "URLs" and the locations row of "Calls") and are
// turned into the 2.0 shape here.
import type { OpenCrvsSettings } from '../config/types.js';
import { OpenCrvsError } from './errors.js';
import type { FhirLocation, FhirLocationBundle } from './schemas.js';
import type { Location } from './types.js';

const LOCATION_TYPE_SYSTEM = 'http://opencrvs.org/specs/location-type';
const INTERNAL_ID_SYSTEM = 'http://opencrvs.org/specs/id/internal-id';

/**
 * `GET {gateway}/location?type=…&_count=0`; `_count=0` asks for every location in one page. The gateway
 * is `https://gateway.<domain>` with `domain`, else the root the events URL hangs from: a deployment's
 * register host passes `/api/…` to the gateway (opencrvs-core's client nginx.conf, `location /api/`),
 * so `https://register.<domain>/api/events` gives `https://register.<domain>/api` and
 * `https://gateway.<domain>/events` gives `https://gateway.<domain>` (docs/opencrvs-api.md, "URLs").
 * Locations then come from the deployment the events go to. A token URL of the form `…/auth/token`
 * is the last resort.
 */
export function fhirLocationsUrl(settings: OpenCrvsSettings, locationType?: string): string {
  const root = gatewayRoot(settings);
  const url = new URL(`${root}/location`);
  if (locationType) url.searchParams.set('type', locationType);
  url.searchParams.set('_count', '0');
  return url.toString();
}

function gatewayRoot(settings: OpenCrvsSettings): string {
  if (settings.domain) return `https://gateway.${settings.domain}`;
  const fromEvents = settings.eventsUrl?.match(/^(.*)\/events\/?$/);
  if (fromEvents?.[1]) return fromEvents[1];
  const fromToken = settings.tokenUrl?.match(/^(.*)\/auth\/token\/?$/);
  if (fromToken?.[1]) return fromToken[1];
  throw new OpenCrvsError({
    kind: 'config',
    classification: 'operator',
    message: 'cannot tell the gateway URL for the v1 location API from opencrvs.eventsUrl',
    operation: 'listLocations',
    hint: 'give opencrvs.eventsUrl as the events API ending in /events: https://register.<domain>/api/events or https://gateway.<domain>/events',
  });
}

// v1.x writes a location's CSV id into its internal-id identifier with the type in front
// (`CRVS_OFFICE_<id>`; docs/opencrvs-api.md, "Calls"); the CSV id alone is what v2.0 calls externalId
// and what sites configure.
const TYPE_PREFIX = /^(?:CRVS_OFFICE|HEALTH_FACILITY|ADMIN_STRUCTURE)_/;

/** Whether a location's externalId is the configured one, with or without the v1 type prefix on either. */
export function externalIdMatches(externalId: string | null | undefined, ref: string): boolean {
  if (!externalId) return false;
  return externalId === ref || externalId.replace(TYPE_PREFIX, '') === ref.replace(TYPE_PREFIX, '');
}

export function locationsFromFhirBundle(bundle: FhirLocationBundle): Location[] {
  const out: Location[] = [];
  for (const entry of bundle.entry ?? []) {
    if (entry.resource) out.push(fromFhir(entry.resource));
  }
  return out;
}

function fromFhir(resource: FhirLocation): Location {
  const type = resource.type?.coding?.find((c) => c.system === LOCATION_TYPE_SYSTEM)?.code;
  const externalId = resource.identifier?.find((i) => i.system === INTERNAL_ID_SYSTEM)?.value ?? null;
  const parent = resource.partOf?.reference?.replace(/^Location\//, '');
  return {
    id: resource.id,
    name: resource.name ?? '',
    externalId,
    // `Location/0` is the root of the v1 hierarchy, not an area.
    administrativeAreaId: parent && parent !== '0' ? parent : null,
    validUntil: null,
    // Archived through the location API (`PUT /location/{id}` `{status: "inactive"}`): still listed unless
    // `status=active` is asked, which the bridge does not ask, so that such an office is refused as closed,
    // not as unknown (docs/mappings.md, "Closed offices").
    deactivated: resource.status === 'inactive',
    locationType: type ?? 'UNKNOWN',
  };
}
