import { ok, type SimContext } from './context.js';
import { inputValidationFailed } from './errors.js';
import type { SimLocation, SimResponse } from './types.js';

const LOCATION_TYPES = ['ADMIN_STRUCTURE', 'CRVS_OFFICE', 'HEALTH_FACILITY'];

/** The REST adapter keeps only the first value of a repeated query key. */
function first(value: unknown): string | undefined {
  if (Array.isArray(value)) return first(value[0]);
  return typeof value === 'string' ? value : undefined;
}

function toWire(location: SimLocation) {
  return {
    id: location.id,
    name: location.name,
    externalId: location.externalId,
    administrativeAreaId: location.administrativeAreaId,
    validUntil: location.validUntil ?? null,
    locationType: location.locationType,
  };
}

/** v2.0 `GET /locations?locationType=&locationIds=&externalId=` (any valid token, no scope). */
export function handleLocations(ctx: SimContext, query: Record<string, unknown>): SimResponse {
  const locationType = first(query.locationType);
  const id = first(query.locationIds);
  const externalId = first(query.externalId);
  if (locationType !== undefined && !LOCATION_TYPES.includes(locationType)) {
    return inputValidationFailed('locations.list', [
      {
        code: 'invalid_value',
        values: LOCATION_TYPES,
        path: ['locationType'],
        message: `Invalid option: expected one of ${LOCATION_TYPES.map((t) => `"${t}"`).join('|')}`,
      },
    ]);
  }
  const candidates = id !== undefined ? [ctx.locationsById.get(id)] : [...ctx.locationsById.values()];
  const found = candidates.filter(
    (l): l is SimLocation =>
      l !== undefined &&
      (locationType === undefined || l.locationType === locationType) &&
      (externalId === undefined || l.externalId === externalId),
  );
  return ok(found.map(toWire));
}
