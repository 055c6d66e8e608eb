// NODE_DEBUG makes Node's own modules print on standard error, outside the logger and its redaction:
// `fetch`/`undici` print every request's URL (the OpenCRVS token request carries the client secret in its
// query string, as the OpenCRVS auth API expects it; FHIR and DHIS2 URLs carry record ids), `http` and
// `net` the options of every connection. Node reads NODE_DEBUG once, at start-up, before any of our code:
// unsetting it then changes nothing, so a command that would call out refuses to start instead.

/** Node's modules whose NODE_DEBUG output can show a request's URL, headers or body. */
const LEAKING_MODULES = ['fetch', 'undici', 'http', 'https', 'http2', 'net', 'tls'] as const;

/** A developer's way past the refusal, against test servers only: docs/deployment.md §6 says why. */
export const NODE_DEBUG_OPT_OUT = 'BRIDGE_UNSAFE_ALLOW_NODE_DEBUG';

/**
 * The modules of LEAKING_MODULES that `nodeDebug` turns on, matched as Node matches them
 * (lib/internal/util/debuglog.js): comma-separated names, case-insensitive, `*` for any run of characters.
 */
export function leakingNodeDebugModules(nodeDebug: string | undefined): string[] {
  if (!nodeDebug) return [];
  const pattern = nodeDebug
    .replace(/[|\\{}()[\]^$+?.]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll(',', '$|^');
  const enabled = new RegExp(`^${pattern}$`, 'i');
  return LEAKING_MODULES.filter((name) => enabled.test(name));
}

/**
 * The one line that refuses `command` under this environment's NODE_DEBUG, or undefined when it may run.
 * With the opt-out set, a warning instead (`warning`), for standard error.
 */
export function nodeDebugVerdict(
  command: string,
  env: NodeJS.ProcessEnv,
): { refusal: string } | { warning: string } | undefined {
  const modules = leakingNodeDebugModules(env.NODE_DEBUG);
  if (modules.length === 0) return undefined;
  const what = `NODE_DEBUG=${env.NODE_DEBUG} makes Node print ${modules.join(', ')} debug output on standard error, outside the log's redaction: request URLs with the OpenCRVS client secret and record ids`;
  if (env[NODE_DEBUG_OPT_OUT] === '1') return { warning: `warning: ${what} (${NODE_DEBUG_OPT_OUT}=1)` };
  return {
    refusal: `${command}: refusing to start: ${what}; unset NODE_DEBUG (docs/deployment.md §6 Logs)`,
  };
}
