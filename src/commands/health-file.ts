// The address of `serve`'s /healthz, written where the container image's HEALTHCHECK reads it
// ($BRIDGE_HEALTH_FILE, set by the Dockerfile). The check then follows http.host and http.port as
// configured (a port other than 8080, `--config` overriding BRIDGE_CONFIG, port 0) without loading the
// configuration itself, which would cost the whole CLI's start-up every 30 s.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { localUrl } from '../http/local-url.js';

/** The URL a local probe reaches /healthz at, for a listener bound to `host`:`port`. */
export function healthUrl(host: string, port: number): string {
  return localUrl(host, port, '/healthz');
}

/**
 * Writes the URL atomically (a probe never reads half a line). Failure is not fatal: the image's check
 * then probes its default, 127.0.0.1:8080, as it did before the file existed.
 */
export function writeHealthFile(file: string, url: string): string | undefined {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${url}\n`, { mode: 0o644 });
    renameSync(temporary, file);
    return undefined;
  } catch (err) {
    rmSync(temporary, { force: true });
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** Removed at a clean stop: a container that stops serving must not pass its check on a stale address. */
export function removeHealthFile(file: string): void {
  rmSync(file, { force: true });
}
