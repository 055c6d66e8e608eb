import { ConfigError } from './errors.js';
import type { AdminSettings, HttpSettings } from './types.js';

/**
 * The admin settings, checked once the schema has passed. Only with a token: without one the admin
 * listener is not opened, and its port and host mean nothing.
 */
export function checkAdmin(admin: AdminSettings, http: HttpSettings, file?: string): void {
  if (!admin.token?.trim()) return;
  // The two listeners cannot share a port; said here by name rather than as an EADDRINUSE at start.
  if (admin.port !== 0 && admin.port === http.port) {
    throw new ConfigError(
      'admin.port',
      `is http.port's too (${http.port}): the admin page has a listener of its own; give it another port`,
      file,
    );
  }
}
