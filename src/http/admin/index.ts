// The admin web page and its JSON API, mounted at `/admin` by the composition root.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { adminTokenProblem } from '../../config/admin.js';
import { fixedSecret, secretOf } from '../../config/secret-files.js';
import { type Logger, silentLogger } from '../../observability/logger.js';
import { clientErrorStatus } from '../client-error.js';
import { routeShape } from '../route-shape.js';
import { adminApi } from './api.js';
import { adminError, logout, requireToken } from './auth.js';
import { AuthThrottle } from './auth-throttle.js';
import { AdminHosts, requireAllowedHost } from './hosts.js';
import { PAGE_STYLE, renderPage } from './page.js';
import { PAGE_SCRIPT } from './page-script.js';
import { AdminSessions } from './sessions.js';
import type { AdminSettingsView, AdminTarget } from './types.js';
import { writeBackApi } from './write-back-api.js';

export { ADMIN_REALM } from './auth.js';
export { MISDIRECTED_MESSAGE } from './hosts.js';
export type {
  AdminSettingsView,
  AdminTarget,
  SourceStatusView,
  SubscriptionStatusView,
  WriteBackJobRecord,
  WriteBackQueueView,
  WriteBackSearch,
  WriteBackStateName,
} from './types.js';
export type { AttemptView, ErrorView, EventDetail, EventListItem } from './views.js';
export type { WriteBackJobView, WriteBackSummary } from './write-back-views.js';

export const ADMIN_DISABLED_MESSAGE = 'admin disabled: set admin.token or admin.tokenFile';
export const ADMIN_NOT_HERE_MESSAGE = 'no such endpoint: this listener serves the admin page, at /admin';
export const ADMIN_ELSEWHERE_MESSAGE =
  'the admin page is not served on this port: it has a listener of its own (admin.host, admin.port)';

// The page loads only its own script and style, talks only to its own origin, and is never framed.
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function hardening(_req: Request, res: Response, next: NextFunction): void {
  // Admin answers carry ledger state, never worth caching; nothing here may be framed or sniffed.
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
}

/**
 * `/admin` on the main listener: the admin page moved to its own (admin.host, admin.port), and an operator
 * who opens the old address is told so rather than given a bare 404. It names the keys, not the address.
 */
export function adminElsewhere(): Router {
  const router = express.Router();
  router.use(hardening);
  router.use((_req: Request, res: Response) => adminError(res, 404, ADMIN_ELSEWHERE_MESSAGE));
  return router;
}

/**
 * Every other path on the admin listener: 404, with the admin answers' headers, to served host names
 * only (421 to others, as under `/admin`). Mounted after `adminRoutes`, at `/`. The browser's own
 * `/favicon.ico` gets an empty 204: the page has no icon, and a 404 for it is a red line in the console.
 */
export function adminListenerFallback(settings: AdminSettingsView): Router {
  const router = express.Router();
  router.use(hardening);
  router.use(requireAllowedHost(new AdminHosts(settings)));
  router.get('/favicon.ico', (_req: Request, res: Response) => {
    res.status(204).end();
  });
  router.use((_req: Request, res: Response) => adminError(res, 404, ADMIN_NOT_HERE_MESSAGE));
  return router;
}

/**
 * `GET /admin` (the page), `/admin/app.js`, `/admin/app.css` and `/admin/api/...`, all behind the
 * admin token (Bearer, or Basic with the token as password), and only to a `Host` the listener serves
 * (hosts.ts; 421 otherwise, before the token is looked at). Without a token every path answers 404:
 * the admin surface is off, not open.
 */
export function adminRoutes(
  target: AdminTarget,
  settings: AdminSettingsView,
  options: { logger?: Logger } = {},
): Router {
  const log = (options.logger ?? silentLogger).child({ component: 'admin' });
  const router = express.Router();
  const hosts = new AdminHosts(settings);
  router.use(hardening);
  router.use(requireAllowedHost(hosts));
  const token = settings.token?.trim();
  if (!token) {
    router.use((_req: Request, res: Response) => adminError(res, 404, ADMIN_DISABLED_MESSAGE));
    return router;
  }
  // `tokenFile` follows its file; a rotated token that would be refused at start is not taken.
  const live = secretOf(settings, 'token', { logger: log, check: adminTokenProblem, trim: true }) ?? fixedSecret(token);
  // One count of wrong tokens, and one set of sessions, per admin listener.
  const sessions = new AdminSessions();
  // Before the token: logging out needs none, and whatever credentials it carries are not compared.
  router.get('/logout', logout(sessions));
  router.use(requireToken(live, new AuthThrottle(), sessions, hosts, log));
  router.get('/', (req, res) => {
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res.type('html').send(renderPage(req.baseUrl, target.identifierLookup?.('<value>')));
  });
  router.get('/app.js', (_req, res) => {
    res.type('text/javascript').send(PAGE_SCRIPT);
  });
  router.get('/app.css', (_req, res) => {
    res.type('text/css').send(PAGE_STYLE);
  });
  router.use(
    '/api/write-backs',
    writeBackApi(target.writeBacks, () => target.sourceStatuses().map((s) => s.id), log),
  );
  router.use('/api', adminApi(target, settings, log));
  router.use((_req: Request, res: Response) => adminError(res, 404, 'no such admin endpoint'));
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = clientErrorStatus(err);
    if (status) {
      if (!res.headersSent) adminError(res, status, 'malformed request');
      return;
    }
    log.error(
      { err, method: req.method, path: routeShape(req.originalUrl.split('?')[0] ?? '') },
      'admin request failed',
    );
    if (!res.headersSent) adminError(res, 500, 'internal error (see the bridge log)');
  });
  return router;
}
