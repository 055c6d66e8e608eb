import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request, type RequestHandler, type Response, Router } from 'express';
import type { Logger } from '../../observability/logger.js';
import { authenticate, type ClientRegistry } from './auth.js';
import type { SimContext } from './context.js';
import { echoedError, eventsError, NOT_FOUND } from './errors.js';
import { handleCreate, handleRead } from './events-create.js';
import { handleLocations } from './events-locations.js';
import { handleCreateAndNotify, handleNotify } from './events-notify.js';
import type { FaultController } from './faults.js';
import type { SimTokenClaims, TokenSigner } from './jwt.js';
import type { RequestCounter } from './requests.js';
import type { SimOperation, SimResponse } from './types.js';

export interface EventsRouterDeps {
  ctx: SimContext;
  clients: ClientRegistry;
  signer: TokenSigner;
  faults: FaultController;
  requests: RequestCounter;
  bodyLimitBytes: number;
  logger: Logger;
  /** Aborted when the simulator closes, so requests parked by a delay fault end with it. */
  shutdown: AbortSignal;
}

/**
 * Holds a request for a `delayMs` fault. A client that closes the connection meanwhile (it gave up) is
 * counted as abandoned, and the request goes on as OpenCRVS's would: a server does not notice a client
 * leave, so a create or NOTIFY it holds still commits, late, and a resend under the same transactionId
 * must find it. Answers false only when the simulator shuts down.
 */
export async function waitOutDelay(
  deps: Pick<EventsRouterDeps, 'requests' | 'shutdown'>,
  operation: SimOperation,
  delayMs: number,
  req: Request,
  res: Response,
): Promise<boolean> {
  if (delayMs <= 0) return true;
  const abandoned = () => deps.requests.abandon(operation);
  res.once('close', abandoned);
  try {
    await sleep(delayMs, undefined, { signal: deps.shutdown });
    return true;
  } catch {
    req.socket.destroy();
    return false;
  } finally {
    res.off('close', abandoned);
  }
}

export function send(res: Response, response: SimResponse): void {
  if (response.headers) res.set(response.headers);
  res.status(response.status);
  if (typeof response.body === 'string') res.send(response.body);
  else res.json(response.body);
}

interface BodyParserError {
  type?: unknown;
}

/** Maps body-parser failures to what the events service answers. */
function bodyError(err: unknown): SimResponse {
  const type = typeof err === 'object' && err !== null ? (err as BodyParserError).type : undefined;
  if (type === 'entity.too.large') return eventsError(413, 'Request body is too large');
  if (type === 'charset.unsupported' || type === 'encoding.unsupported') {
    return eventsError(415, 'Unsupported content encoding or charset');
  }
  if (type === 'entity.parse.failed') {
    return {
      status: 400,
      body: {
        message: 'Failed to parse request body',
        code: 'PARSE_ERROR',
        data: { code: 'PARSE_ERROR', httpStatus: 400 },
      },
    };
  }
  return eventsError(400, 'Failed to read request body');
}

type Handler = (req: Request, claims: SimTokenClaims) => SimResponse;

/**
 * The events service behind the gateway, in the order a real request meets it: infrastructure faults
 * (nginx), the gateway's bearer check (401), the REST adapter's content type (415) and body limit
 * (413), then the procedure. `commitThenFail` runs the procedure and loses the answer.
 */
export function eventsRouter(deps: EventsRouterDeps): Router {
  const { ctx, clients, signer, faults, logger } = deps;
  const parseJson = express.json({ limit: deps.bodyLimitBytes, strict: false, type: () => true });
  const parse = (req: Request, res: Response) =>
    new Promise<void>((resolve, reject) => parseJson(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
  // 1.9's REST adapter parses a body only when Content-Type is exactly `application/json`
  // (docs/opencrvs-api.md, "Calls"): with a charset (or any other spelling) the procedure gets no body at
  // all, and answers as for none. 2.0 reads the media type, parameters aside.
  const readBody = async (req: Request, res: Response) => {
    if (ctx.version === '1.9' && req.headers['content-type'] !== 'application/json') return;
    await parse(req, res);
  };

  const route =
    (operation: SimOperation, handler: Handler): RequestHandler =>
    async (req, res) => {
      deps.requests.count(operation);
      const delay = faults.delayMs(operation);
      // A slow server has the request before it is slow: a POST's body is read first, so what it then
      // commits late (after the client stopped waiting) is what a resend under the same transactionId
      // must find. Parsing again below is a no-op once the body is read.
      if (delay > 0 && req.method === 'POST') await readBody(req, res).catch(() => undefined);
      if (!(await waitOutDelay(deps, operation, delay, req, res))) return;
      const decision = faults.decide(operation);
      if (decision.kind === 'drop') {
        logger.debug({ operation, fault: 'drop' }, 'sandbox fault');
        req.socket.destroy();
        return;
      }
      if (decision.kind === 'error') {
        const { status } = decision.response;
        logger.debug({ operation, fault: 'error', status }, 'sandbox fault');
        const echo = faults.errorEcho;
        if (echo && req.method === 'POST') {
          // Nothing is committed; the body is read only to be quoted.
          await readBody(req, res).catch(() => undefined);
          send(res, echoedError(status, echo, req.body));
          return;
        }
        send(res, decision.response);
        return;
      }
      const auth = authenticate(req.headers.authorization, clients, signer);
      if (!auth.ok) return send(res, auth.response);
      if (req.method === 'POST') {
        const contentType = req.headers['content-type'];
        const hasBody =
          Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
        const mime = contentType?.split(';')[0]?.trim().toLowerCase();
        if (mime !== 'application/json' && (contentType !== undefined || hasBody)) {
          return send(res, eventsError(415, `Unsupported content-type "${contentType ?? ''}"`));
        }
        try {
          await readBody(req, res);
        } catch (err) {
          return send(res, bodyError(err));
        }
      }
      const response = handler(req, auth.claims);
      logger.debug({ operation, status: response.status }, 'sandbox events call');
      if (decision.kind === 'commitThenFail') {
        logger.debug({ operation, fault: 'commitThenFail' }, 'sandbox fault');
        req.socket.destroy();
        return;
      }
      send(res, response);
    };

  const router = Router();
  router.post(
    '/events',
    route('create', (req, claims) => handleCreate(ctx, claims, req.body)),
  );
  if (ctx.version === '2.0') {
    router.post(
      '/events/notify',
      route('createAndNotify', (req, claims) => handleCreateAndNotify(ctx, claims, req.body)),
    );
    router.post(
      '/events/:eventId/notify',
      route('notify', (req, claims) => handleNotify(ctx, claims, String(req.params.eventId), req.body)),
    );
    router.get(
      '/locations',
      route('locations', (req) => handleLocations(ctx, req.query)),
    );
  } else {
    router.post(
      '/events/notifications',
      route('notify', (req, claims) => handleNotify(ctx, claims, undefined, req.body)),
    );
  }
  router.get(
    '/events/:eventId',
    route('read', (req, claims) => handleRead(ctx, claims, String(req.params.eventId))),
  );
  router.use((_req, res) => send(res, NOT_FOUND));
  return router;
}
