import { randomUUID } from 'node:crypto';
import { type BodySchema, checkBody, rec, str } from './body-schema.js';
import { buildAction, checkCreatedAtLocation, forbidden, ok, type SimContext, uniqueViolation } from './context.js';
import { validateNotifyPayload } from './declaration.js';
import { eventsError, inputValidationFailed } from './errors.js';
import { createOrReuse, noConfiguration } from './events-create.js';
import type { EventForm } from './forms.js';
import type { SimTokenClaims } from './jwt.js';
import { allowsEvent, hasScopeType } from './scopes.js';
import type { SimAction, SimEvent, SimResponse } from './types.js';

export const NOTIFY_PATH = 'event.actions.notify.request';
export const CREATE_AND_NOTIFY_PATH = 'event.actions.notify.createAndNotify';

const NOTIFY_SCHEMA: Record<'2.0' | '1.9', BodySchema> = {
  // BaseActionInput + type, strict at the top level in 2.0; `eventId` comes from the path.
  '2.0': {
    strict: true,
    keys: {
      eventId: { kind: 'string' },
      type: { kind: 'string', literal: 'NOTIFY' },
      transactionId: { kind: 'string', required: true },
      createdAtLocation: { kind: 'string', nullable: true },
      declaration: { kind: 'record' },
      annotation: { kind: 'record' },
      originalActionId: { kind: 'string' },
      keepAssignment: { kind: 'boolean' },
      waitFor: { kind: 'boolean' },
    },
  },
  '1.9': {
    strict: false,
    keys: {
      eventId: { kind: 'string', required: true },
      type: { kind: 'string', literal: 'NOTIFY' },
      transactionId: { kind: 'string', required: true },
      createdAtLocation: { kind: 'string', nullable: true },
      declaration: { kind: 'record' },
      annotation: { kind: 'record' },
    },
  },
};

const CREATE_AND_NOTIFY_SCHEMA: BodySchema = {
  strict: true,
  keys: {
    eventType: { kind: 'string', required: true },
    transactionId: { kind: 'string', required: true },
    createdAtLocation: { kind: 'string', nullable: true },
    declaration: { kind: 'record' },
    annotation: { kind: 'record' },
    keepAssignment: { kind: 'boolean' },
  },
};

interface NotifyInput {
  transactionId: string;
  createdAtLocation: unknown;
  declaration: Record<string, unknown>;
  annotation?: Record<string, unknown>;
}

function readNotifyInput(value: Record<string, unknown>): NotifyInput {
  return {
    transactionId: str(value, 'transactionId') ?? '',
    createdAtLocation: value.createdAtLocation,
    declaration: rec(value, 'declaration') ?? {},
    annotation: rec(value, 'annotation'),
  };
}

/** Declaration validation then the location check (opencrvs-core's order: docs/opencrvs-api.md, "Errors"). */
function validateInput(ctx: SimContext, form: EventForm, input: NotifyInput, path: string): SimResponse | undefined {
  const problems = validateNotifyPayload(form, input.declaration, input.annotation, ctx.version);
  if (problems.length > 0) return eventsError(400, JSON.stringify(problems), path);
  return checkCreatedAtLocation(ctx, input.createdAtLocation, path);
}

function alreadyNotified(ctx: SimContext, path: string): SimResponse {
  // Text of opencrvs-core's state check; the list of available actions is inferred, not read.
  const actions = 'Available actions: READ, DECLARE, VALIDATE, ARCHIVE.';
  const message =
    ctx.version === '2.0'
      ? `Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state with [] flags. ${actions}`
      : `Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state. ${actions}`;
  return eventsError(409, message, path);
}

/** Replay, state check, then the NOTIFY actions as the country configuration's confirmation decides. */
function applyNotify(
  ctx: SimContext,
  claims: SimTokenClaims,
  event: SimEvent,
  input: NotifyInput,
  path: string,
): SimResponse {
  const { transactionId } = input;
  if (event.actions.some((a) => a.type === 'NOTIFY' && a.transactionId === transactionId)) return ok(event);
  if (event.actions.some((a) => a.type === 'NOTIFY' && a.status === 'Accepted')) return alreadyNotified(ctx, path);
  if (ctx.store.actionOwner(transactionId, 'NOTIFY', 'Requested')) return uniqueViolation(path);
  const location = typeof input.createdAtLocation === 'string' ? input.createdAtLocation : undefined;
  const requested = buildAction(ctx, claims, {
    type: 'NOTIFY',
    status: 'Requested',
    transactionId,
    createdAtLocation: location,
    declaration: input.declaration,
    annotation: input.annotation ?? {},
  });
  const actions: SimAction[] = [requested];
  const mode = ctx.confirmation();
  if (mode === 'fail') {
    // opencrvs-core stores the Requested action before it asks the country configuration, and answers a
    // failed confirmation with a 500 without removing it: a replay of the transactionId returns the
    // event with that action, which no later confirmation decides.
    ctx.store.append(event, actions);
    return eventsError(500, 'Unexpected failure from country config action confirmation API', path);
  }
  if (mode !== 'pending') {
    const status = mode === 'accept' ? 'Accepted' : 'Rejected';
    actions.push(
      buildAction(ctx, claims, {
        type: 'NOTIFY',
        status,
        transactionId,
        createdAtLocation: location,
        originalActionId: requested.id,
      }),
    );
  }
  ctx.store.append(event, actions);
  return ok(event);
}

/** v2.0 `POST /events/{eventId}/notify` (eventId from the path) and v1.9 `POST /events/notifications` (from the body). */
export function handleNotify(
  ctx: SimContext,
  claims: SimTokenClaims,
  pathEventId: string | undefined,
  body: unknown,
): SimResponse {
  if (!hasScopeType(claims.scope, 'record.notify', ctx.version)) return forbidden(NOTIFY_PATH);
  const bodyEventId =
    typeof body === 'object' && body !== null && 'eventId' in body && typeof body.eventId === 'string'
      ? body.eventId
      : undefined;
  const eventId = pathEventId ?? bodyEventId;
  const event = eventId === undefined ? undefined : ctx.store.get(eventId);
  if (eventId !== undefined && !event) return eventsError(404, `Event not found with ID: ${eventId}`, NOTIFY_PATH);
  // The scope for the event's type is part of the scope check, which comes before the body schema.
  if (event && !allowsEvent(claims.scope, 'record.notify', event.type, ctx.version)) return forbidden(NOTIFY_PATH);
  const { issues, value } = checkBody(body, NOTIFY_SCHEMA[ctx.version], ctx.version);
  if (issues.length > 0 || !event) return inputValidationFailed(NOTIFY_PATH, issues);
  const form = ctx.forms.get(event.type);
  if (!form) return noConfiguration(event.type, NOTIFY_PATH);
  const input = readNotifyInput(value);
  return validateInput(ctx, form, input, NOTIFY_PATH) ?? applyNotify(ctx, claims, event, input, NOTIFY_PATH);
}

/** v2.0 `POST /events/notify`: create keyed `<transactionId>:create`, the whole call idempotent. */
export function handleCreateAndNotify(ctx: SimContext, claims: SimTokenClaims, body: unknown): SimResponse {
  const path = CREATE_AND_NOTIFY_PATH;
  const { version } = ctx;
  if (!hasScopeType(claims.scope, 'record.create', version) || !hasScopeType(claims.scope, 'record.notify', version)) {
    return forbidden(path);
  }
  const { issues, value } = checkBody(body, CREATE_AND_NOTIFY_SCHEMA, version);
  if (issues.length > 0) return inputValidationFailed(path, issues);
  const eventType = str(value, 'eventType') ?? '';
  if (!allowsEvent(claims.scope, 'record.create', eventType, version)) return forbidden(path);
  if (!allowsEvent(claims.scope, 'record.notify', eventType, version)) return forbidden(path);
  const form = ctx.forms.get(eventType);
  if (!form) return noConfiguration(eventType, path);
  const input = readNotifyInput(value);
  const problem = validateInput(ctx, form, input, path);
  if (problem) return problem;
  const location = str(value, 'createdAtLocation');
  const event = createOrReuse(ctx, claims, eventType, `${input.transactionId}:create`, location);
  if (!event) return uniqueViolation(path);
  return applyNotify(ctx, claims, event, input, path);
}

/**
 * The country configuration deciding a pending NOTIFY later (its async accept/reject): an Accepted or
 * Rejected action pointing at the Requested one by `originalActionId`, under a transactionId of its
 * own, as opencrvs-core's `accept`/`reject` procedures store it. Undefined when nothing waits.
 */
export function decidePendingNotify(
  ctx: SimContext,
  event: SimEvent,
  decision: 'accept' | 'reject',
): SimAction | undefined {
  const decided = new Set(event.actions.map((a) => a.originalActionId).filter((id) => id !== undefined));
  const waiting = event.actions.find((a) => a.type === 'NOTIFY' && a.status === 'Requested' && !decided.has(a.id));
  if (!waiting) return undefined;
  const countryConfig: SimTokenClaims = {
    iss: 'opencrvs:auth-service',
    aud: [],
    sub: 'country-config',
    userType: 'system',
    scope: [],
    iat: 0,
    exp: 0,
    jti: 'country-config',
  };
  const action = buildAction(ctx, countryConfig, {
    type: 'NOTIFY',
    status: decision === 'accept' ? 'Accepted' : 'Rejected',
    transactionId: randomUUID(),
    originalActionId: waiting.id,
    ...(waiting.createdAtLocation ? { createdAtLocation: waiting.createdAtLocation } : {}),
  });
  ctx.store.append(event, [action]);
  return action;
}
