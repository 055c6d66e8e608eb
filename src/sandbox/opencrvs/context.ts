import { randomUUID } from 'node:crypto';
import { eventsError } from './errors.js';
import type { EventForm } from './forms.js';
import type { SimTokenClaims } from './jwt.js';
import type { SeededLocations } from './seed.js';
import type { EventStore } from './store.js';
import type { ActionConfirmation, SimAction, SimActionStatus, SimLocation, SimResponse, SimVersion } from './types.js';

/** Everything an events-API handler reads: version, forms, locations, storage, confirmation mode. */
export interface SimContext {
  version: SimVersion;
  forms: Map<string, EventForm>;
  store: EventStore;
  /** Offices and health facilities by UUID (v2.0: the only valid `createdAtLocation`s). */
  locationsById: Map<string, SimLocation>;
  /** Ids of locations and areas that have children (v1.9: those are not "office" locations). */
  parentIds: Set<string>;
  confirmation: () => ActionConfirmation;
}

export function buildLocationIndex(seed: SeededLocations) {
  const locationsById = new Map(seed.locations.map((l) => [l.id, l]));
  const parentIds = new Set<string>();
  for (const l of [...seed.locations, ...seed.administrativeAreas]) if (l.partOf) parentIds.add(l.partOf);
  return { locationsById, parentIds };
}

export interface NewAction {
  type: string;
  status: SimActionStatus;
  transactionId: string;
  createdAtLocation?: string | null;
  declaration?: Record<string, unknown>;
  annotation?: Record<string, unknown>;
  originalActionId?: string;
}

/** An action as OpenCRVS returns it: null fields omitted, `createdByRole` only in v1.9. */
export function buildAction(ctx: SimContext, claims: SimTokenClaims, input: NewAction): SimAction {
  const action: SimAction = {
    id: randomUUID(),
    type: input.type,
    status: input.status,
    transactionId: input.transactionId,
    createdBy: claims.sub,
    createdByUserType: 'system',
    createdAt: new Date().toISOString(),
    declaration: input.declaration ?? {},
  };
  if (ctx.version === '1.9') action.createdByRole = 'HEALTH';
  if (input.createdAtLocation) action.createdAtLocation = input.createdAtLocation;
  if (input.annotation) action.annotation = input.annotation;
  if (input.originalActionId) action.originalActionId = input.originalActionId;
  return action;
}

/**
 * The system-user location check. v2.0 only asks that the id is a known location (offices and
 * facilities live apart from administrative areas there). v1.9 asks only that it has no children
 * (`isLeafLocation`), so an unknown id passes there, as it does in OpenCRVS 1.9.
 */
export function checkCreatedAtLocation(ctx: SimContext, location: unknown, path: string): SimResponse | undefined {
  const given = typeof location === 'string' && location !== '' ? location : undefined;
  if (ctx.version === '2.0') {
    if (!given) return eventsError(400, 'createdAtLocation is required and must be a valid location id', path);
    if (!ctx.locationsById.has(given)) return eventsError(400, 'createdAtLocation must be a valid location id', path);
    return undefined;
  }
  if (!given) return eventsError(400, 'createdAtLocation is required and must be a valid office id', path);
  if (ctx.parentIds.has(given)) return eventsError(400, 'createdAtLocation must be an office location', path);
  return undefined;
}

export const forbidden = (path: string) => eventsError(403, 'FORBIDDEN', path);

/** A unique-key violation OpenCRVS does not catch: the database error surfaces as a 500. */
export const uniqueViolation = (path: string) => eventsError(500, 'Internal server error', path);

export function ok(body: unknown): SimResponse {
  return { status: 200, body };
}
