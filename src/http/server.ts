import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from '../observability/logger.js';
import { clientErrorStatus } from './client-error.js';
import { sendOutcome } from './operation-outcome.js';

export interface MountedRouter {
  path: string;
  router: Router;
}

/**
 * The bridge's one express app: subscription receiver, health, metrics and admin are mounted on it
 * by the composition root. Every request gets an id (echoed as X-Request-Id) and one log line with
 * method, route, status and duration — never query strings or bodies.
 */
export function createHttpApp(routers: MountedRouter[], logger: Logger): Express {
  const log = logger.child({ component: 'http' });
  const app = express();
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
      const path = req.path;
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
    log.error({ err, method: req.method, path: req.originalUrl.split('?')[0] }, 'request failed');
    if (!res.headersSent) sendOutcome(res, 500, 'exception', 'internal error');
  });
  return app;
}

/**
 * Bounds on what clients can hold, Node's defaults being generous for a receiver reachable from a
 * hospital network: a request must arrive whole within 30 s (Node allows 300 s: a review held 1.6 GB of
 * half-sent 1 MB bodies that way), and no more than 1,000 connections are open at once. An EMR sends
 * notifications over a few keep-alive connections; health checks and the admin page need a handful.
 */
export const SERVER_LIMITS = { requestTimeoutMs: 30_000, headersTimeoutMs: 20_000, maxConnections: 1_000 };
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
    server.maxConnections = SERVER_LIMITS.maxConnections;
    server.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : port });
    });
  });
}

/** Stops accepting, lets in-flight requests finish, then drops idle keep-alive connections. */
export function closeServer(server: Server, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}
