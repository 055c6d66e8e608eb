import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from '../observability/logger.js';
import { MinuteTally } from '../observability/minute-tally.js';
import { AddressSlots } from './address-slots.js';
import { clientErrorStatus } from './client-error.js';
import { sendOutcome } from './operation-outcome.js';
import { type RouteShapeOptions, routeShape } from './route-shape.js';

export { closeServer } from './close-server.js';

export interface MountedRouter {
  path: string;
  router: Router;
}

/**
 * The bridge's one express app: subscription receiver, health, metrics and admin are mounted on it
 * by the composition root. Every request gets an id (echoed as X-Request-Id) and one log line with
 * method, route, status and duration — never query strings, bodies, or the record ids of paths (routeShape:
 * `shape.isSource` names the sources whose ids it may log).
 */
export function createHttpApp(routers: MountedRouter[], logger: Logger, shape: RouteShapeOptions = {}): Express {
  const log = logger.child({ component: 'http' });
  const app = express();
  appLoggers.set(app, log);
  app.disable('x-powered-by');
  // No ETags: express would hash every answer for them, and nothing the bridge serves is cached
  // (the receiver's acks are the hot path: 200 a second and more).
  app.set('etag', false);
  app.set('trust proxy', false);
  const debug = log.isLevelEnabled('debug');
  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && /^[\w-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    if (debug) {
      const started = process.hrtime.bigint();
      // Read now: a mounted router strips its prefix from req.path while it handles the request.
      const path = routeShape(req.path, shape);
      res.on('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        log.debug(
          { requestId, method: req.method, path, status: res.statusCode, ms: Math.round(ms * 10) / 10 },
          'request',
        );
      });
    }
    next();
  });
  for (const { path, router } of routers) app.use(path, router);
  app.use((_req: Request, res: Response) => sendOutcome(res, 404, 'not-found', 'no such endpoint'));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = clientErrorStatus(err);
    if (status) {
      log.warn({ status, method: req.method }, 'malformed request refused');
      if (!res.headersSent) sendOutcome(res, status, 'invalid', 'malformed request');
      return;
    }
    log.error(
      { err, method: req.method, path: routeShape(req.originalUrl.split('?')[0] ?? '', shape) },
      'request failed',
    );
    if (!res.headersSent) sendOutcome(res, 500, 'exception', 'internal error');
  });
  return app;
}

// listen() logs refused connections with the app's logger (its callers pass only the app).
const appLoggers = new WeakMap<Express, Logger>();

/**
 * Bounds on what clients can hold, Node's defaults being generous for a receiver reachable from a
 * hospital network: a request must arrive whole within 30 s (Node allows 300 s: a review held 1.6 GB of
 * half-sent 1 MB bodies that way), and no more than 1,000 connections are open at once. An EMR sends
 * notifications over a few keep-alive connections; health checks and the admin page need a handful.
 *
 * The 1,000 are counted here, not by Node's `server.maxConnections`: Node drops every new socket once
 * it is reached, so one host holding 1,000 idle sockets (reopened as they time out) took the bridge
 * offline, its loopback health check included (34 of 115 probes answered during such a flood). So:
 * - one remote address (an IPv6 /64) holds at most `perAddressConnections`; 100 is far above what an
 *   EMR, a browser or a NAT'd office uses. Behind a reverse proxy every connection comes from the
 *   proxy's address, so the proxy must limit connections per client (docs/deployment.md, §1);
 * - 127.0.0.1 and ::1 are not capped per address and get `loopbackReserve` connections beyond the
 *   1,000, so the container's HEALTHCHECK answers while the rest is full;
 * - a connection that has sent no byte `firstByteTimeoutMs` after it opened is closed: a client opens
 *   a connection to send on it at once, and `headersTimeout` would hold an idle one 20–25 s.
 */
export const SERVER_LIMITS = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 20_000,
  maxConnections: 1_000,
  perAddressConnections: 100,
  loopbackReserve: 16,
  firstByteTimeoutMs: 5_000,
};
// Node checks those timeouts on this period (default 30 s, so a slow request lived up to a minute).
const TIMEOUT_CHECK_MS = 5_000;

/** Listens and resolves with the server and its actual port (0 picks a free one). */
export function listen(app: Express, port: number, host: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer(
      {
        requestTimeout: SERVER_LIMITS.requestTimeoutMs,
        headersTimeout: SERVER_LIMITS.headersTimeoutMs,
        connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      },
      app,
    );
    admitConnections(server, { ...SERVER_LIMITS }, appLoggers.get(app));
    server.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : port });
    });
  });
}

/**
 * Counts connections per remote address (SERVER_LIMITS) and closes those past the caps, and those that
 * stay silent. Runs after Node's own 'connection' listener, so a refused socket goes down the ordinary
 * path of a client that hung up; it is never read.
 */
function admitConnections(server: Server, limits: typeof SERVER_LIMITS, log: Logger | undefined): void {
  const slots = new AddressSlots({
    total: limits.maxConnections,
    perAddress: limits.perAddressConnections,
    loopbackReserve: limits.loopbackReserve,
  });
  // Logged at most once a minute, with their count: a flood is thousands a second.
  const refusals = new MinuteTally();
  server.on('connection', (socket: Socket) => {
    const key = slots.take(socket.remoteAddress);
    if (key === undefined) {
      socket.destroy();
      const refused = refusals.add(Date.now());
      if (refused !== undefined)
        log?.warn(
          { refused, open: slots.inUse(), perAddress: limits.perAddressConnections, total: limits.maxConnections },
          'connections refused: one address or all clients at their limit',
        );
      return;
    }
    // bytesRead is counted even though Node's parser reads the socket natively (no 'data' listener,
    // which would take the socket off that fast path).
    const silent = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, limits.firstByteTimeoutMs);
    silent.unref();
    socket.once('close', () => {
      clearTimeout(silent);
      slots.release(key);
    });
  });
}
