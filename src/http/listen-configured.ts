import type { Server } from 'node:http';
import type { Express } from 'express';
import { listen } from './server.js';

/**
 * listen() for a listener the configuration places: `http` (receiver, health, metrics) or `admin`.
 * Node's "listen EADDRINUSE: address already in use" names neither the setting nor what to do, so a
 * port or host that cannot be used is said with its keys (`admin.port 9080 on admin.host …`).
 */
export async function listenConfigured(
  key: 'http' | 'admin',
  app: Express,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  try {
    return await listen(app, port, host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') throw err;
    // The code stays on the error (callers that retry on EADDRINUSE still can), and the key (a command
    // that set the port from a flag names the flag).
    throw Object.assign(
      new Error(
        `${key}.port ${port} on ${key}.host ${host} cannot be used (${code}): another process holds it, or the address is not this machine's; choose another`,
        { cause: err },
      ),
      { code, setting: `${key}.port` },
    );
  }
}
