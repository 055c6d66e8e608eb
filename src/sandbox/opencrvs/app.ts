import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../../observability/logger.js';
import { type ClientRegistry, handleTokenRequest, type TokenRequestParams } from './auth.js';
import type { SimContext } from './context.js';
import { controlRouter } from './control-api.js';
import type { FaultController } from './faults.js';
import { eventsRouter, send, waitOutDelay } from './http-events.js';
import type { TokenSigner } from './jwt.js';
import { handleV1Locations } from './locations-v1.js';
import type { RequestCounter } from './requests.js';
import type { SeededLocations } from './seed.js';

export interface SimulatorAppDeps {
  ctx: SimContext;
  clients: ClientRegistry;
  signer: TokenSigner;
  faults: FaultController;
  requests: RequestCounter;
  seed: SeededLocations;
  bodyLimitBytes: number;
  logger: Logger;
  shutdown: AbortSignal;
}

function first(value: unknown): string | undefined {
  if (Array.isArray(value)) return first(value[0]);
  return typeof value === 'string' ? value : undefined;
}

/** The token parameters of a request: the query string, and for v2.0 a form or JSON body too. */
function tokenParams(req: Request, readBody: boolean): TokenRequestParams {
  const fromBody: Record<string, unknown> = {};
  if (readBody && typeof req.body === 'string' && req.body !== '') {
    const type = req.headers['content-type'] ?? '';
    if (type.includes('json')) {
      try {
        const parsed: unknown = JSON.parse(req.body);
        if (typeof parsed === 'object' && parsed !== null) Object.assign(fromBody, parsed);
      } catch {
        // An unreadable body counts as no body: the query string may still hold the parameters.
      }
    } else {
      Object.assign(fromBody, Object.fromEntries(new URLSearchParams(req.body)));
    }
  }
  const pick = (key: keyof TokenRequestParams) => first(req.query[key]) ?? first(fromBody[key]);
  return { client_id: pick('client_id'), client_secret: pick('client_secret'), grant_type: pick('grant_type') };
}

/**
 * One express app for every host of a deployment: the token endpoint (auth service / gateway /
 * register host paths), the events service under /api/events (register host) and /events (gateway
 * host), in 1.9 the gateway's location API under /location (and /api/location, the register host's
 * way to it), and the sandbox control API under /_sandbox.
 */
export function buildSimulatorApp(deps: SimulatorAppDeps): Express {
  const { ctx, clients, signer, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const tokenBody = express.text({ type: () => true, limit: '64kb' });
  app.post(['/token', '/auth/token', '/api/auth/token'], tokenBody, (req, res) => {
    deps.requests.count('token');
    // Never log the query: it holds the client secret.
    const response = handleTokenRequest(tokenParams(req, ctx.version === '2.0'), ctx.version, clients, signer);
    logger.debug({ status: response.status }, 'sandbox token request');
    send(res, response);
  });

  if (ctx.version === '1.9') {
    // The gateway's v1 FHIR location API (1.9 has no GET /locations in the events service): the areas as
    // seeded, the offices and facilities as they are now (one deactivated through /_sandbox is inactive).
    // Also under /api: a register host passes /api/… to the gateway (opencrvs-core's client nginx.conf).
    app.get(['/location', '/api/location'], async (req, res) => {
      deps.requests.count('locations');
      // Faults on `locations` reach it too, delays as in the events service: it is where 1.9 lists them, so a
      // test can make OpenCRVS unable, or slow, to say which locations exist.
      if (!(await waitOutDelay(deps, 'locations', deps.faults.delayMs('locations'), req, res))) return;
      const listed = [...deps.seed.administrativeAreas, ...deps.ctx.locationsById.values()];
      const decision = deps.faults.decide('locations');
      if (decision.kind === 'drop' || decision.kind === 'commitThenFail') return void req.socket.destroy();
      send(res, decision.kind === 'error' ? decision.response : handleV1Locations(listed, req.query));
    });
  }
  const events = eventsRouter({ ...deps });
  app.use('/api/events', events);
  app.use('/events', events);
  app.use('/_sandbox', controlRouter(deps));
  app.use((_req, res) => {
    res.status(404).json({ statusCode: 404, error: 'Not Found', message: 'Not Found' });
  });
  // Express 5 error-handling middleware is recognised by its four parameters.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status =
      typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 500;
    logger.warn({ status, err }, 'sandbox request failed');
    if (!res.headersSent) res.status(status).json({ statusCode: status, error: 'Error', message: 'Request failed' });
  });
  return app;
}
