import { Ajv, type JSONSchemaType } from 'ajv';
import express, { type Response, Router } from 'express';
import type { ClientRegistry } from './auth.js';
import type { SimContext } from './context.js';
import { decidePendingNotify } from './events-notify.js';
import type { FaultController } from './faults.js';
import type { RequestCounter } from './requests.js';
import type { SeededLocations } from './seed.js';
import type { SandboxConfig, SimClientInput, SimEvent } from './types.js';

// The sandbox's own inspection and control API, under /_sandbox: nothing OpenCRVS has. Unauthenticated
// on purpose (the simulator binds to 127.0.0.1 by default and holds only test data).

const ajv = new Ajv({ allErrors: true, strict: false });

const rate = { type: 'number', minimum: 0, maximum: 1, nullable: true } as const;

const configSchema: JSONSchemaType<SandboxConfig> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    actionConfirmation: { type: 'string', enum: ['accept', 'pending', 'reject', 'fail'], nullable: true },
    seed: { type: 'integer', nullable: true },
    faults: {
      type: 'object',
      nullable: true,
      additionalProperties: false,
      properties: {
        errorRate: rate,
        errorStatus: { type: 'integer', minimum: 400, maximum: 599, nullable: true },
        errorEcho: {
          type: 'string',
          enum: ['plain', 'json', 'html', 'percent', 'upper', 'nfd'],
          nullable: true,
        },
        retryAfterSeconds: { type: 'integer', minimum: 0, nullable: true },
        delayMs: { type: 'integer', minimum: 0, maximum: 600_000, nullable: true },
        dropRate: rate,
        commitThenFailRate: rate,
        operations: {
          type: 'array',
          nullable: true,
          items: { type: 'string', enum: ['create', 'notify', 'createAndNotify', 'locations', 'read'] },
        },
        times: { type: 'integer', minimum: 0, nullable: true },
      },
    },
  },
};

const clientSchema: JSONSchemaType<SimClientInput> = {
  type: 'object',
  additionalProperties: false,
  required: ['clientId', 'clientSecret'],
  properties: {
    clientId: { type: 'string', minLength: 1 },
    clientSecret: { type: 'string', minLength: 1 },
    scopes: { type: 'array', items: { type: 'string' }, nullable: true },
    tokenTtlSeconds: { type: 'integer', minimum: 0, nullable: true },
  },
};

const validateConfig = ajv.compile(configSchema);
const validateClient = ajv.compile(clientSchema);

function invalid(res: Response, errors: typeof validateConfig.errors): void {
  const first = errors?.[0];
  res.status(400).json({ error: `${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}` });
}

export interface ControlDeps {
  ctx: SimContext;
  clients: ClientRegistry;
  faults: FaultController;
  requests: RequestCounter;
  seed: SeededLocations;
}

export function controlRouter({ ctx, clients, faults, requests, seed }: ControlDeps): Router {
  const router = Router();
  router.use(express.json({ limit: '1mb' }));

  router.get('/events', (req, res) => {
    const { transactionId, type } = req.query;
    let events: SimEvent[] = ctx.store.list();
    if (typeof type === 'string') events = events.filter((e) => e.type === type);
    if (typeof transactionId === 'string') {
      events = events.filter((e) => e.actions.some((a) => a.transactionId === transactionId));
    }
    res.json(events);
  });
  router.get('/events/:id', (req, res) => {
    const event = ctx.store.get(req.params.id);
    if (event) res.json(event);
    else res.status(404).json({ error: 'no such event' });
  });
  // The country configuration's later answer to a NOTIFY left pending (actionConfirmation 'pending').
  router.post('/events/:id/confirm', (req, res) => {
    const event = ctx.store.get(req.params.id);
    if (!event) return void res.status(404).json({ error: 'no such event' });
    const decision = (req.body as { decision?: unknown } | undefined)?.decision;
    if (decision !== 'accept' && decision !== 'reject')
      return void res.status(400).json({ error: "decision must be 'accept' or 'reject'" });
    const action = decidePendingNotify(ctx, event, decision);
    if (!action) return void res.status(409).json({ error: 'no NOTIFY of this event waits for a decision' });
    res.json(event);
  });
  router.post('/reset', (_req, res) => {
    ctx.store.reset();
    clients.reset();
    faults.reset();
    requests.reset();
    // Locations removed since (an office closed) are back.
    for (const location of seed.locations) ctx.locationsById.set(location.id, location);
    res.status(204).end();
  });
  router.post('/clients', (req, res) => {
    if (!validateClient(req.body)) return invalid(res, validateClient.errors);
    clients.upsert(req.body);
    res.status(204).end();
  });
  router.delete('/clients/:id', (req, res) => {
    res.status(clients.remove(req.params.id) ? 204 : 404).end();
  });
  router.get('/config', (_req, res) => {
    res.json(faults.snapshot());
  });
  router.post('/config', (req, res) => {
    if (!validateConfig(req.body)) return invalid(res, validateConfig.errors);
    faults.configure(req.body);
    res.status(204).end();
  });
  router.get('/requests', (_req, res) => {
    res.json(requests.snapshot());
  });
  router.get('/requests/abandoned', (_req, res) => {
    res.json(requests.abandoned());
  });
  router.get('/locations', (_req, res) => {
    res.json(seed);
  });
  // An office or facility the deployment no longer has (closed, or removed from the country's locations):
  // the events API treats its id as unknown from now on (1.9 accepts any leaf id anyway), and neither
  // version's location list has it.
  router.delete('/locations/:id', (req, res) => {
    res.status(ctx.locationsById.delete(req.params.id) ? 204 : 404).end();
  });
  // An office closed the way OpenCRVS v2.0 closes one: still listed, with `validUntil` set. The events API
  // still takes its id (v2.0 checks only that a location exists), so nothing but the sender stops a record
  // going to an office nobody works in any more. A copy: reset puts the seeded entry back.
  router.post('/locations/:id/close', (req, res) => {
    const location = ctx.locationsById.get(req.params.id);
    const validUntil: unknown = (req.body as { validUntil?: unknown } | undefined)?.validUntil;
    if (!location) return res.status(404).end();
    if (ctx.version !== '2.0')
      return res.status(409).json({ error: '1.9 has no validUntil: POST /_sandbox/locations/:id/deactivate' });
    if (typeof validUntil !== 'string' || Number.isNaN(Date.parse(validUntil)))
      return res.status(400).json({ error: 'validUntil must be an ISO date-time' });
    ctx.locationsById.set(location.id, { ...location, validUntil });
    res.status(204).end();
  });
  // An office archived the way OpenCRVS 1.9 archives one (`PUT /location/{id}` `{status: "inactive"}` by a
  // national system admin): still listed by the v1 location API, as `status: inactive`, with no date, and
  // still taken as createdAtLocation (1.9 checks only that it is a leaf). A copy: reset puts it back.
  router.post('/locations/:id/deactivate', (req, res) => {
    const location = ctx.locationsById.get(req.params.id);
    if (!location) return res.status(404).end();
    if (ctx.version !== '1.9')
      return res
        .status(409)
        .json({ error: '2.0 closes a location with validUntil: POST /_sandbox/locations/:id/close' });
    ctx.locationsById.set(location.id, { ...location, deactivated: true });
    res.status(204).end();
  });
  router.use((_req, res) => {
    res.status(404).json({ error: 'unknown sandbox control path' });
  });
  return router;
}
