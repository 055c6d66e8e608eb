// The host names the admin listener answers to. A browser sends the name it was given in `Host` (and,
// on a POST, in `Origin`), whoever the name resolves to: a web page whose own name is re-pointed at
// 127.0.0.1 (DNS rebinding) reaches a loopback listener as a same-origin page, with `Host` and `Origin`
// both naming the page's site. Only names the operator uses are served: the listener's loopback names
// on its own port, `admin.host` on that port, and `admin.allowedHosts` (the names a reverse proxy passes).
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { adminError } from './auth.js';

export interface AdminHostSettings {
  /** The address the listener was opened on (`admin.host`): a name or address a client may use. */
  host?: string;
  /** `name` or `name:port` (an IPv6 address in brackets) used in front of the listener, e.g. by a proxy. */
  allowedHosts?: readonly string[];
}

export const MISDIRECTED_MESSAGE =
  'this admin listener does not answer to that host name: use 127.0.0.1 or localhost, or add the name to admin.allowedHosts';

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
// A wildcard address is no name a client can use.
const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/** `Host` and `Origin` hosts are compared as the browser writes them: lower case, a bare IPv6 bracketed. */
function nameOf(host: string): string {
  const name = host.trim().toLowerCase();
  return name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
}

export class AdminHosts {
  private readonly configured: ReadonlySet<string>;
  private readonly own: string | undefined;
  // One listener has one port; a test may mount the routes on several.
  private readonly byPort = new Map<number, ReadonlySet<string>>();

  constructor(settings: AdminHostSettings) {
    this.configured = new Set((settings.allowedHosts ?? []).map((host) => host.trim().toLowerCase()));
    const own = settings.host === undefined ? undefined : nameOf(settings.host);
    this.own = own === undefined || WILDCARDS.has(own) ? undefined : own;
  }

  /** The host names (with their port, or bare for port 80) served on the listener's port `port`. */
  allowed(port: number | undefined): ReadonlySet<string> {
    const key = port ?? 0;
    let names = this.byPort.get(key);
    if (!names) {
      const set = new Set(this.configured);
      for (const name of this.own ? [...LOOPBACK_NAMES, this.own] : LOOPBACK_NAMES) {
        if (port !== undefined) set.add(`${name}:${port}`);
        // A browser leaves the default port out of Host and Origin.
        if (port === 80) set.add(name);
      }
      names = set;
      this.byPort.set(key, names);
    }
    return names;
  }

  /** Whether `host` (a Host header, or an Origin's host) is one the listener on `port` serves. */
  allows(host: string | undefined, port: number | undefined): boolean {
    return host !== undefined && this.allowed(port).has(host.trim().toLowerCase());
  }

  /** Whether the request's `Host` is served, on the port it arrived on. */
  allowsRequest(req: Request): boolean {
    return this.allows(req.headers.host, req.socket.localPort);
  }

  /** The Origin's host, when it is one the listener serves (its scheme aside). */
  allowsOrigin(req: Request, origin: string): boolean {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return false;
    }
    return this.allows(host, req.socket.localPort);
  }
}

/**
 * Refuses, before anything else is looked at (the token included), a request whose `Host` the listener
 * does not serve: 421 Misdirected Request, with a short reason and never the name that was sent.
 */
export function requireAllowedHost(hosts: AdminHosts): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (hosts.allowsRequest(req)) {
      next();
      return;
    }
    adminError(res, 421, MISDIRECTED_MESSAGE);
  };
}
