// Chooses the OpenCRVS office (createdAtLocation) and facility for one record: a configured route for the
// source's location (routing.facilities in the config), else what the source itself names in OpenCRVS terms
// (an OpenCRVS v1 Task regLastOffice, a v1 encounter location), else routing.defaultOffice.
import type { RoutingSettings } from '../config/types.js';
import { isUuid } from '../util/uuid.js';
import type { CompiledMapping } from './compile.js';
import { normalizeReference } from './fetcher.js';
import type { CompiledExpr } from './fhirpath/expr.js';
import type { MapOptions, RoutingResult } from './types.js';

export interface RoutingOutcome {
  routing: RoutingResult;
  /** Declaration fields set from the facility (child.birthLocation, …, and the place-of-event option). */
  fields: Record<string, string>;
  warnings: string[];
  error?: { field: string; message: string };
}

function strings(exprs: CompiledExpr[], root: unknown, vars: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const e of exprs) {
    for (const v of e.evaluate(root, vars)) {
      const s = typeof v === 'string' ? v : v && typeof v === 'object' && 'reference' in v ? String(v.reference) : '';
      if (s && !out.includes(s)) out.push(s);
    }
  }
  return out;
}

/** 'Location/0be1…' or 'http://x/Location/0be1…' → '0be1…': OpenCRVS wants bare location ids. */
function bareId(ref: string): string {
  const normalized = normalizeReference(ref);
  const slash = normalized.indexOf('/');
  return slash > 0 && !normalized.startsWith('urn:') ? normalized.slice(slash + 1) : normalized;
}

/** The configured route for the first of the record's facility keys that has one. */
function findRoute(
  mapping: CompiledMapping,
  root: unknown,
  vars: Record<string, unknown>,
  settings: RoutingSettings | undefined,
): { keys: string[]; route?: { office?: string; facility?: string }; routeKey?: string } {
  const facilities = settings?.facilities ?? {};
  const keys = strings(mapping.routing.facilityKeys, root, vars).map((k) =>
    /^(urn:|https?:|[A-Z][A-Za-z]+\/)/.test(k) ? normalizeReference(k) : k,
  );
  for (const key of keys) {
    const candidates = key.includes('/') && !key.includes('|') ? [key, bareId(key)] : [key];
    const routeKey = candidates.find((k) => Object.hasOwn(facilities, k));
    if (routeKey) return { keys, route: facilities[routeKey], routeKey };
  }
  return { keys };
}

/**
 * The facility the record itself names (an OpenCRVS v1 encounter's location) when routing would use it
 * (no route gives one), so the caller can look it up in OpenCRVS before routeRecord: OpenCRVS 2.0 checks
 * only that a location exists and 1.9 not even that, so an id of another type, or of another deployment,
 * would otherwise reach the declaration's place-of-event fields. Routing's own table is resolved at start.
 */
export function recordNamedFacility(
  mapping: CompiledMapping,
  root: unknown,
  vars: Record<string, unknown>,
  settings: RoutingSettings | undefined,
): string | undefined {
  if (mapping.routing.facility.length === 0) return undefined;
  if (findRoute(mapping, root, vars, settings).route?.facility) return undefined;
  return strings(mapping.routing.facility, root, vars).map(bareId)[0];
}

export function routeRecord(
  mapping: CompiledMapping,
  root: unknown,
  vars: Record<string, unknown>,
  settings: RoutingSettings | undefined,
  options: MapOptions,
): RoutingOutcome {
  const warnings: string[] = [];
  const { keys, route, routeKey } = findRoute(mapping, root, vars, settings);
  const sourceOffice = strings(mapping.routing.office, root, vars).map(bareId)[0];
  const sourceFacility = strings(mapping.routing.facility, root, vars).map(bareId)[0];

  let officeRef: string | undefined;
  let fromRecord = false;
  let via: string;
  if (route?.office) {
    officeRef = route.office;
    via = `route routing.facilities['${routeKey}']`;
  } else if (sourceOffice) {
    officeRef = sourceOffice;
    fromRecord = true;
    via = 'office named by the source record';
  } else if (settings?.defaultOffice) {
    officeRef = settings.defaultOffice;
    via = keys.length ? `routing.defaultOffice (no route for ${keys.join(', ')})` : 'routing.defaultOffice';
  } else {
    via = 'none';
  }
  let facilityRef = route?.facility ?? sourceFacility;
  if (facilityRef) via += route?.facility ? '; facility from the route' : '; facility named by the source record';
  else if (keys.length > 0 && !route)
    warnings.push(
      `no route under routing.facilities for ${keys.join(', ')}: the place of the event and its facility are left out`,
    );

  const routing: RoutingResult = { via };
  if (fromRecord) routing.officeFromRecord = true;
  if (keys[0]) routing.sourceLocation = keys[0];
  const resolve = options.resolveLocation;
  if (!officeRef) {
    return {
      routing,
      fields: {},
      warnings,
      error: {
        field: 'createdAtLocation',
        message:
          'no office for this record: add a route for its facility under routing.facilities' +
          (keys.length ? ` (keys tried: ${keys.join(', ')})` : '') +
          ' or set routing.defaultOffice in the config',
      },
    };
  }
  if (resolve) {
    const office = resolve(officeRef, 'CRVS_OFFICE');
    if (!office) {
      return {
        routing,
        fields: {},
        warnings,
        error: { field: 'createdAtLocation', message: `office '${officeRef}' is not a known, open OpenCRVS office` },
      };
    }
    routing.office = office;
    const unconfirmed = options.routingUnconfirmed?.() === true;
    if (unconfirmed && !fromRecord) routing.officeUnchecked = officeRef;
    if (unconfirmed && route?.facility) routing.facilityUnchecked = route.facility;
    if (facilityRef) {
      const facility = resolve(facilityRef, 'HEALTH_FACILITY');
      if (!facility && !route?.facility && options.uncheckedLocations?.has(facilityRef)) {
        // OpenCRVS could not be asked. What it answered last time decides, else a UUID goes on as given, as
        // a lookup finds a location of this deployment; anything else is left out. So a checked mapping most
        // likely gives the same payload hash, and a record already notified, read again now, is no new
        // version. The worker looks it up before sending and has the record mapped again if OpenCRVS
        // answers otherwise.
        routing.facilityUnchecked = facilityRef;
        warnings.push(
          `facility '${facilityRef}' could not be looked up in OpenCRVS when the record was mapped; ` +
            'checked before the row is sent',
        );
        const known = options.lastKnownLocation?.(facilityRef);
        if (known !== undefined) facilityRef = known?.locationType === 'HEALTH_FACILITY' ? known.id : undefined;
        else facilityRef = isUuid(facilityRef) ? facilityRef : undefined;
      } else {
        if (!facility) warnings.push(`facility '${facilityRef}' is not a known OpenCRVS health facility; left out`);
        facilityRef = facility;
      }
    }
  } else {
    routing.office = officeRef;
    warnings.push('location ids are as configured: no OpenCRVS location lookup in this run');
  }
  const fields: Record<string, string> = {};
  if (facilityRef) {
    routing.facility = facilityRef;
    for (const id of mapping.routing.facilityFields) fields[id] = facilityRef;
    const place = mapping.routing.placeOfEvent;
    if (place) fields[place.field] = place.value;
  }
  return { routing, fields, warnings };
}
