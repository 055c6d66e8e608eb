// Closing a listener, apart from building one (server.ts): the bridge stops without having loaded express
// when it opened no listener (sync --once, replay).
import type { Server } from 'node:http';

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
