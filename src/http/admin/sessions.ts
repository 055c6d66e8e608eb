// Sessions of the admin page. Once a browser's Basic credentials are accepted, the answer sets a cookie
// naming a random session; the page's later requests are let in by it without the token being compared.
// So the page's polls are no guesses, and an operator whose page is open keeps it while someone sharing
// the address (127.0.0.1, a proxy's) has it blocked with wrong tokens (auth-throttle.ts). The id is 256
// random bits: it cannot be guessed, so it needs no throttle. Logging out ends it (`/admin/logout`).
import { createHash, randomBytes } from 'node:crypto';
import type { Request } from 'express';
import { setBounded } from '../../util/bounded-map.js';

export const SESSION_COOKIE = 'bridge_admin_session';

export interface SessionLimits {
  /** How long a session lasts from its start; then the browser's credentials are compared again. */
  lifetimeMs: number;
  /** Sessions held at most; the oldest is ended first (its browser's credentials then open a new one). */
  max: number;
}

/** A working day: the page open in the morning keeps its session until evening. */
export const SESSION_LIMITS: SessionLimits = { lifetimeMs: 12 * 3_600_000, max: 1_000 };

const digest = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

export class AdminSessions {
  // By the digest of the id (the id itself is kept nowhere), with the digest of the token that opened it.
  private readonly open = new Map<string, { expiresAt: number; token: string }>();

  constructor(
    private readonly limits: SessionLimits = SESSION_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens a session for `token` (the value that was accepted); returns its id, for the cookie. */
  start(token: string): string {
    const id = randomBytes(32).toString('base64url');
    setBounded(
      this.open,
      digest(id),
      { expiresAt: this.now() + this.limits.lifetimeMs, token: digest(token) },
      this.limits.max,
    );
    return id;
  }

  /**
   * Whether `id` names a live session opened with a token still `accepted`: a rotated token's sessions
   * end when the token stops being accepted.
   */
  valid(id: string | undefined, accepted: string[]): boolean {
    if (!id) return false;
    const key = digest(id);
    const session = this.open.get(key);
    if (!session) return false;
    if (session.expiresAt <= this.now()) {
      this.open.delete(key);
      return false;
    }
    return accepted.some((token) => digest(token) === session.token);
  }

  end(id: string | undefined): void {
    if (id) this.open.delete(digest(id));
  }

  get size(): number {
    return this.open.size;
  }
}

/** The session id a request's cookie names, if any. */
export function sessionOf(req: Request): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/**
 * The cookie for `id` (or, without one, the cookie's removal), for the admin router's own path only. Not
 * `Secure`: the listener speaks plain HTTP (on 127.0.0.1, or behind a TLS proxy that it cannot see);
 * `HttpOnly` keeps it from the page's script, `SameSite=Strict` from other sites' requests.
 */
export function sessionCookie(req: Request, id: string | undefined, limits: SessionLimits = SESSION_LIMITS): string {
  const path = req.baseUrl || '/';
  const value = id ?? '';
  const maxAge = id ? Math.floor(limits.lifetimeMs / 1000) : 0;
  return `${SESSION_COOKIE}=${value}; Path=${path}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict`;
}
