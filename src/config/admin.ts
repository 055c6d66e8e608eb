import { ConfigError } from './errors.js';
import { guessableSecretProblem } from './inbound-secret.js';
import { secretLeftUnset } from './secret-files.js';
import type { AdminSettings, HttpSettings } from './types.js';

/**
 * Whether the configuration turns the admin page on: it gives an admin token, inline, from ${ENV} or as
 * `tokenFile`. A load that reads no secrets (LoadConfigOptions.secretFiles: `ledger`, doctor when a
 * secret fails) leaves `tokenFile` unread, or a `${NAME}` not set out, and `token` unset, and the page
 * serve runs is on all the same. As load.ts's secretGiven, with a blank token (refused by the loader)
 * counted as none.
 */
export function adminPageOn(admin: AdminSettings): boolean {
  return (
    Boolean(admin.token?.trim()) ||
    typeof Reflect.get(admin, 'tokenFile') === 'string' ||
    secretLeftUnset(admin, 'token')
  );
}

/** The admin settings, checked once the schema has passed. */
export function checkAdmin(admin: AdminSettings, http: HttpSettings, file?: string): void {
  if (admin.token !== undefined) checkToken(admin.token, file);
  // The schema checks the form of each allowed host; a port past 65535 is no port a browser names.
  for (const [i, host] of (admin.allowedHosts ?? []).entries()) {
    const port = /:(\d+)$/.exec(host)?.[1];
    if (port !== undefined && Number(port) > 65_535)
      throw new ConfigError(`admin.allowedHosts[${i}]`, `has port ${port}: a port is 1 to 65535`, file);
  }
  // Without a token the admin listener is not opened: its port and host mean nothing.
  if (!adminPageOn(admin)) return;
  // The two listeners cannot share a port; said here by name rather than as an EADDRINUSE at start.
  if (admin.port !== 0 && admin.port === http.port) {
    throw new ConfigError(
      'admin.port',
      `is http.port's too (${http.port}): the admin page has a listener of its own; give it another port`,
      file,
    );
  }
}

/** Refused with its key path and never its value (it may be a real secret, badly chosen). */
function checkToken(token: string, file?: string): void {
  const problem = adminTokenProblem(token);
  if (problem) throw new ConfigError('admin.token', problem, file);
}

/** What is wrong with an admin token (never quoting it), or undefined; also asked of a rotated `tokenFile`. */
export function adminTokenProblem(token: string): string | undefined {
  return guessableSecretProblem(token, 'token');
}
