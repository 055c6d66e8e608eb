import { timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

export interface Dhis2AuthOptions {
  /** Personal access token accepted as `Authorization: ApiToken <pat>`. */
  pat?: string;
  /** Basic auth credentials (both must be set for Basic to be accepted). */
  username?: string;
  password?: string;
}

/** Credentials used when none are configured: the DHIS2 demo's admin/district and a sandbox token. */
export const DEFAULT_SANDBOX_AUTH: Required<Dhis2AuthOptions> = {
  pat: 'd2pat_sandboxDhis2SimulatorToken0000000000',
  username: 'admin',
  password: 'district',
};

export function dhis2Error(res: Response, httpStatusCode: number, httpStatus: string, message: string): void {
  res.status(httpStatusCode).json({ httpStatus, httpStatusCode, status: 'ERROR', message });
}

function same(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * A further user (Basic auth) with org units of its own: a deployment that gives each district's source a
 * user of that district (see SimulatedUser).
 */
export interface Dhis2ScopedUser {
  username: string;
  password: string;
  /** Capture org units (each with everything below it); the user searches in them too. */
  organisationUnits: string[];
  /** The programmes whose data is shared with the user (default: every one); see SimulatedUser.sharePrograms. */
  programs?: string[];
}

/** The username a request authenticated as, or undefined. */
export function authenticate(
  header: string | undefined,
  auth: Dhis2AuthOptions,
  users: readonly Dhis2ScopedUser[] = [],
): string | undefined {
  if (!header) return undefined;
  for (const user of users) {
    if (authenticate(header, { username: user.username, password: user.password }) === user.username)
      return user.username;
  }
  const [scheme = '', ...rest] = header.trim().split(/\s+/);
  const credential = rest.join(' ');
  if (/^ApiToken$/i.test(scheme)) {
    return auth.pat && same(credential, auth.pat) ? (auth.username ?? 'admin') : undefined;
  }
  if (/^Basic$/i.test(scheme) && auth.username !== undefined && auth.password !== undefined) {
    const decoded = Buffer.from(credential, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const ok = same(decoded.slice(0, colon), auth.username) && same(decoded.slice(colon + 1), auth.password);
    return ok ? auth.username : undefined;
  }
  return undefined;
}

/** DHIS2 answers an unauthenticated /api call with 401 and its JSON error envelope. */
export function requireAuth(auth: Dhis2AuthOptions, users: readonly Dhis2ScopedUser[] = []) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const user = authenticate(req.headers.authorization, auth, users);
    if (user) {
      res.locals.username = user;
      next();
      return;
    }
    const usedToken = /^ApiToken\s/i.test(req.headers.authorization ?? '');
    res.setHeader('WWW-Authenticate', 'Basic realm="DHIS2"');
    dhis2Error(res, 401, 'Unauthorized', usedToken ? 'The API token does not exist.' : 'Unauthorized');
  };
}
