import { type BodySchema, checkBody, str } from './body-schema.js';
import { buildAction, checkCreatedAtLocation, forbidden, ok, type SimContext, uniqueViolation } from './context.js';
import { eventsError, inputValidationFailed } from './errors.js';
import type { SimTokenClaims } from './jwt.js';
import { allowsEvent, hasScopeType } from './scopes.js';
import type { SimEvent, SimResponse } from './types.js';

export const CREATE_PATH = 'event.create';

const CREATE_SCHEMA: Record<'2.0' | '1.9', BodySchema> = {
  '2.0': {
    strict: true,
    keys: {
      type: { kind: 'string', required: true },
      transactionId: { kind: 'string', required: true },
      createdAtLocation: { kind: 'string', nullable: true },
    },
  },
  // v1.9 drops unknown keys, createdAtLocation included.
  '1.9': {
    strict: false,
    keys: { type: { kind: 'string', required: true }, transactionId: { kind: 'string', required: true } },
  },
};

export function noConfiguration(eventType: string, path: string): SimResponse {
  return eventsError(400, `No configuration found for event type: ${eventType}`, path);
}

/**
 * Stores a new event with its CREATE action, or returns the one already created for
 * (transactionId, type). A CREATE transactionId already used for another event type is a unique-key
 * violation in OpenCRVS's database.
 */
export function createOrReuse(
  ctx: SimContext,
  claims: SimTokenClaims,
  eventType: string,
  transactionId: string,
  createdAtLocation: string | undefined,
): SimEvent | undefined {
  const existing = ctx.store.findCreated(eventType, transactionId);
  if (existing) return existing;
  if (ctx.store.actionOwner(transactionId, 'CREATE', 'Accepted')) return undefined;
  const create = buildAction(ctx, claims, { type: 'CREATE', status: 'Accepted', transactionId, createdAtLocation });
  return ctx.store.create(eventType, create);
}

/** `POST /events`: the create row of docs/opencrvs-api.md, "Calls" (v2.0 and v1.9). */
export function handleCreate(ctx: SimContext, claims: SimTokenClaims, body: unknown): SimResponse {
  if (!hasScopeType(claims.scope, 'record.create', ctx.version)) return forbidden(CREATE_PATH);
  const { issues, value } = checkBody(body, CREATE_SCHEMA[ctx.version], ctx.version);
  if (issues.length > 0) return inputValidationFailed(CREATE_PATH, issues);
  const eventType = str(value, 'type') ?? '';
  const transactionId = str(value, 'transactionId') ?? '';
  if (!allowsEvent(claims.scope, 'record.create', eventType, ctx.version)) return forbidden(CREATE_PATH);
  if (!ctx.forms.has(eventType)) return noConfiguration(eventType, CREATE_PATH);
  let location: string | undefined;
  if (ctx.version === '2.0') {
    const problem = checkCreatedAtLocation(ctx, value.createdAtLocation, CREATE_PATH);
    if (problem) return problem;
    location = str(value, 'createdAtLocation');
  }
  const event = createOrReuse(ctx, claims, eventType, transactionId, location);
  return event ? ok(event) : uniqueViolation(CREATE_PATH);
}

/** `GET /events/{eventId}`: needs `record.read`, which a Health client does not have (403). */
export function handleRead(ctx: SimContext, claims: SimTokenClaims, eventId: string): SimResponse {
  if (!hasScopeType(claims.scope, 'record.read', ctx.version)) return forbidden('event.get');
  const event = ctx.store.get(eventId);
  if (!event) return eventsError(404, `Event not found with ID: ${eventId}`, 'event.get');
  if (!allowsEvent(claims.scope, 'record.read', event.type, ctx.version)) return forbidden('event.get');
  return ok(event);
}
