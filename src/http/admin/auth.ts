// Admin authentication: one shared token, sent as a Bearer token (scripts) or as the password of HTTP
// Basic auth (the browser page: the browser prompts once and re-sends the credentials on every
// same-origin request, including the page's own fetch() calls), and the session a browser is given
// once its credentials are accepted (sessions.ts).
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { sameSecret } from '../../config/inbound-secret.js';
import type { Secret } from '../../config/secret-files.js';
import type { Logger } from '../../observability/logger.js';
import { addressKey } from '../address-slots.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { AdminHosts } from './hosts.js';
import { escapeAttribute } from './page.js';
import { type AdminSessions, sessionCookie, sessionOf } from './sessions.js';

export const ADMIN_REALM = 'opencrvs-bridge admin';

export type AuthScheme = 'bearer' | 'basic';

/**
 * Which scheme carried the right token, or undefined (absent, malformed or wrong). `token` is the one
 * configured, its surrounding spaces dropped when read (index.ts); a Basic password is compared without
 * its own, as a subscription's bearer secret is (a token pasted into the browser's prompt with a space).
 */
export function authenticate(authorization: string | undefined, token: string): AuthScheme | undefined {
  if (!authorization) return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(authorization);
  if (!match?.[1] || !match[2]) return undefined;
  const scheme = match[1].toLowerCase();
  if (scheme === 'bearer') return sameSecret(match[2], token) ? 'bearer' : undefined;
  if (scheme === 'basic') {
    const decoded = Buffer.from(match[2], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    // Any user name: the token is the only secret.
    return sameSecret(decoded.slice(colon + 1).trim(), token) ? 'basic' : undefined;
  }
  return undefined;
}

/**
 * Basic credentials are attached by the browser to any request to this origin, including a form post
 * from another site (CSRF). A state-changing request authenticated by Basic must therefore come from our
 * own page: its Origin (sent by every current browser on POST) must name a host this listener serves
 * (`hosts`), never merely the request's own `Host`, which a page reaching the listener under a name of
 * its own (DNS rebinding) chooses as it chooses Origin. Requests with a Bearer token are safe (a browser
 * never adds one by itself), and so are Basic requests without an Origin header, which only non-browser
 * clients (curl, scripts) send.
 */
export function sameOriginOrNoBrowser(req: Request, hosts: AdminHosts): boolean {
  const origin = req.headers.origin;
  // Without Origin: a browser that sends Sec-Fetch-Site says where the request came from, and only
  // this origin (or a user typing the URL) counts; a sibling subdomain (same-site) is another site's
  // page. No header at all is a client outside a browser (curl, a script), which CSRF cannot drive.
  if (origin === undefined) {
    const site = req.headers['sec-fetch-site'];
    return site === undefined || site === 'same-origin' || site === 'none';
  }
  if (origin === 'null') return false;
  return hosts.allowsOrigin(req, origin);
}

/**
 * A browser's request from the admin page itself, or the operator typing its address (Sec-Fetch-Site):
 * the requests a session is opened for. Not a script's (no such header), nor one another site's page
 * makes the browser send with its remembered credentials, whose sessions would push the operator's out.
 */
function browsingHere(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  return site === 'same-origin' || site === 'none';
}

export function adminError(res: Response, status: number, error: string): void {
  res.status(status).json({ error });
}

/**
 * Rejects unauthenticated requests (401 with a Basic challenge) and cross-origin browser POSTs (403).
 *
 * A request naming a live session (sessions.ts) is let in without its token being compared. Any other
 * request carrying credentials is a guess until compared, and is compared only when its address is not
 * blocked, nor all addresses (auth-throttle.ts): otherwise it is answered 429 with Retry-After and the
 * token is not looked at, the right one included, so a blocked address learns nothing. A request
 * without credentials is neither counted nor refused 429: it is how a browser first asks for the page,
 * and it must be challenged to ask the operator for the token. The right token forgets nothing: were it
 * to reset the count, wrong tokens sent between a script's requests would never add up to a block.
 *
 * A browser on the admin page (browsingHere) whose Basic credentials are accepted is given a session, so
 * that its page goes on while its address is blocked by someone sharing it (127.0.0.1, a proxy's address).
 */
export function requireToken(
  token: Secret,
  throttle: AuthThrottle,
  sessions: AdminSessions,
  hosts: AdminHosts,
  log: Logger,
): RequestHandler {
  // Trimmed when read (index.ts: secretOf's `trim`), as a subscription's bearer secret is.
  const accepted = () => token.accepted();
  /**
   * The scheme that carried a token accepted, and that token. A `tokenFile` follows its file: the new
   * token as soon as it is read (looked at once more when a token is refused, at most 4 times a second),
   * and the one it replaced for a while longer (secret-files.ts).
   */
  const check = (authorization: string) => {
    for (const value of accepted()) {
      const scheme = authenticate(authorization, value);
      if (scheme) return { scheme, value };
    }
    if (!token.refresh()) return undefined;
    const value = token.current();
    const scheme = authenticate(authorization, value);
    return scheme && { scheme, value };
  };
  const throttled = (req: Request, res: Response): boolean => {
    const address = req.socket.remoteAddress;
    const wait = throttle.retryAfterSeconds(address);
    if (wait <= 0) return false;
    res.setHeader('Retry-After', String(wait));
    adminError(res, 429, 'too many wrong admin tokens: try again later');
    return true;
  };
  const counted = (address: string | undefined) => {
    const blocks = throttle.failed(address);
    // Once per block; the address (an IPv6 /64 as counted) is the client's, not a patient's data.
    if (blocks.address)
      log.warn(
        { remoteAddress: address && addressKey(address), retryAfterSeconds: throttle.retryAfterSeconds(address) },
        'admin authentication throttled: too many wrong tokens from one address',
      );
    if (blocks.all)
      log.warn(
        { retryAfterSeconds: throttle.globalWait() },
        'admin authentication throttled: too many wrong tokens from all addresses together',
      );
  };
  return (req: Request, res: Response, next: NextFunction) => {
    const authorization = req.headers.authorization;
    let scheme: AuthScheme | 'session' | undefined = sessions.valid(sessionOf(req), accepted()) ? 'session' : undefined;
    let opened: string | undefined;
    if (!scheme && authorization !== undefined) {
      if (throttled(req, res)) return;
      const found = check(authorization);
      if (found) {
        throttle.succeeded(req.socket.remoteAddress);
        scheme = found.scheme;
        opened = found.value;
      } else counted(req.socket.remoteAddress);
    }
    if (!scheme) {
      res.setHeader('WWW-Authenticate', `Basic realm="${ADMIN_REALM}", charset="UTF-8"`);
      adminError(res, 401, 'admin token required: Authorization: Bearer <token>, or Basic with the token as password');
      return;
    }
    const safeMethod = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
    // A browser attaches both Basic credentials and the session cookie by itself: only a Bearer token is
    // a script's.
    if (!safeMethod && scheme !== 'bearer' && !sameOriginOrNoBrowser(req, hosts)) {
      adminError(res, 403, 'cross-origin request refused: use the admin page or a Bearer token');
      return;
    }
    if (scheme === 'basic' && opened !== undefined && browsingHere(req))
      res.append('Set-Cookie', sessionCookie(req, sessions.start(opened)));
    next();
  };
}

/**
 * `GET /admin/logout`: ends the session the request names and answers 401 with the Basic challenge,
 * whatever credentials it carries (they are not compared, nor counted). A browser that sent remembered
 * Basic credentials and is told 401 forgets them, so the page asks for the token again; the body is
 * what the browser shows once its prompt is cancelled.
 */
export function logout(sessions: AdminSessions): RequestHandler {
  return (req: Request, res: Response) => {
    sessions.end(sessionOf(req));
    res.append('Set-Cookie', sessionCookie(req, undefined));
    res.setHeader('WWW-Authenticate', `Basic realm="${ADMIN_REALM}", charset="UTF-8"`);
    res.setHeader('Content-Security-Policy', "default-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    const again = `${req.baseUrl}/`;
    res
      .status(401)
      .type('html')
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Logged out: opencrvs-bridge admin</title></head>` +
          `<body><p>Logged out of the opencrvs-bridge admin page. If the browser asks for the token again, ` +
          `cancel: that is how it forgets it.</p><p><a href="${escapeAttribute(again)}">Log in again</a></p></body></html>`,
      );
  };
}
