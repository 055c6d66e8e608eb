#!/usr/bin/env node
// The container image's HEALTHCHECK: exit 0 when `serve` answers /healthz with 2xx, else 1.
// `serve` writes the address it listens on to $BRIDGE_HEALTH_FILE (src/commands/health-file.ts), so the
// check follows http.host and http.port as configured; without that file it probes the default,
// 127.0.0.1:8080. Plain Node, no imports: it runs every 30 s and must start in milliseconds.
import { readFileSync } from 'node:fs';

let url = 'http://127.0.0.1:8080/healthz';
const file = process.env.BRIDGE_HEALTH_FILE;
if (file) {
  try {
    url = readFileSync(file, 'utf8').trim() || url;
  } catch {
    // Not written yet (serve still starting) or not serving: the default, which then fails or passes alone.
  }
}
fetch(url, { signal: AbortSignal.timeout(4000) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  () => process.exit(1),
);
