// Live checks against OpenCRVS: a token can be obtained, its scopes allow create and notify for the
// event types the mappings produce, and every routed office and facility exists with the right type.
import type { BridgeConfig } from '../config/types.js';
import { type OpenCrvsClient, OpenCrvsError } from '../opencrvs/index.js';
import { LocationResolver } from '../opencrvs/locations.js';
import { missingGrants, scopeFormat } from '../opencrvs/scopes.js';
import { normalisedUrl } from '../util/url.js';
import { type CheckResult, fail, ok, skip, warn } from './types.js';

const LOOKUP_CONCURRENCY = 4;

export async function checkToken(
  config: BridgeConfig,
  client: OpenCrvsClient,
  eventTypes: string[],
): Promise<{ results: CheckResult[]; tokenOk: boolean }> {
  const { tokenUrl, accessToken, version } = config.opencrvs;
  const from = accessToken ? 'the configured static token' : `a token from ${normalisedUrl(tokenUrl ?? '')}`;
  let scopes: string[];
  let expiresAt: number;
  try {
    ({ scopes, expiresAt } = await client.checkToken());
  } catch (err) {
    // The client's errors never carry the client secret or the token (its transport scrubs them).
    const why = err instanceof Error ? err.message : 'failed';
    return {
      results: [
        fail('opencrvs token', `cannot obtain ${from}: ${why}`),
        skip('opencrvs scopes', 'not checked: no token'),
      ],
      tokenOk: false,
    };
  }
  const left = Number.isFinite(expiresAt) ? `, valid for ${Math.round((expiresAt - Date.now()) / 1000)} s` : '';
  const results = [
    Number.isFinite(expiresAt) && expiresAt <= Date.now()
      ? fail('opencrvs token', `${from} has expired`)
      : ok('opencrvs token', `obtained ${from}${left}`),
  ];
  // Read in the configured version's format, another version's scopes are named as missing (or, 2.0's read
  // by 1.9, as granted) and the routing check then blames eventsUrl: the version is what to fix.
  const format = scopeFormat(scopes);
  if (format && format !== version) {
    results.push(
      fail(
        'opencrvs scopes',
        `the token's scopes are in OpenCRVS v${format} format: set opencrvs.version: '${format}' (it is '${version}')`,
      ),
    );
  } else if (eventTypes.length === 0) {
    results.push(skip('opencrvs scopes', 'no mapping loaded, so no event type to check'));
  } else {
    const missing = missingGrants(scopes, version, eventTypes);
    results.push(
      missing.length > 0
        ? fail('opencrvs scopes', `the token lacks ${missing.join(', ')} (OpenCRVS v${version} scope format)`)
        : ok('opencrvs scopes', `record.create and record.notify allowed for ${eventTypes.join(', ')}`),
    );
  }
  return { results, tokenOk: true };
}

/**
 * 1.9 only: its locations are on the gateway, so the routing check never asks `eventsUrl`, and a wrong one
 * would show only at the first delivery (held). Asks the events API to create an event from an empty
 * body (OpenCrvsClient.probeEvents): it is refused before anything is created, and the events API refuses
 * it unlike a path that is not the events API (a plain 404). Then 1.9's notify route the same way, which a
 * 2.0 server, answering the create alike, has not.
 */
export async function checkEventsApi(config: BridgeConfig, client: OpenCrvsClient): Promise<CheckResult> {
  const url = normalisedUrl(config.opencrvs.eventsUrl ?? '');
  try {
    await client.probeEvents();
    return ok('opencrvs events', `${url} is the events API`);
  } catch (err) {
    const why = err instanceof Error ? err.message : 'failed';
    // The events API answered, but not as 1.9's: the version is what to fix (as the scopes line says when
    // the token's grants show it), not the URL.
    if (err instanceof OpenCrvsError && err.kind === 'config' && err.operation === 'probeNotifications') {
      return fail(
        'opencrvs events',
        `${url} answers as an events API, but not at POST ${url}/events/notifications, where OpenCRVS 1.9 takes notifications ` +
          `(${err.opencrvsMessage}, HTTP ${err.status ?? '?'}): is opencrvs.version ('${config.opencrvs.version}') the server's? ` +
          "A 2.0 server has no such route (set opencrvs.version: '2.0' then)",
      );
    }
    if (err instanceof OpenCrvsError && err.kind === 'config') {
      return fail(
        'opencrvs events',
        `opencrvs.eventsUrl (${url}) is not the events API (${err.opencrvsMessage}, HTTP ${err.status ?? '?'}): ` +
          'give it ending in /api/events (register host) or /events (gateway)',
      );
    }
    return fail('opencrvs events', `cannot ask the events API at opencrvs.eventsUrl (${url}): ${why}`);
  }
}

interface RoutedRef {
  /** The config key path, e.g. `routing.facilities['Location/x'].office`: as the service's logs, holds and /readyz write it. */
  path: string;
  ref: string;
  type: 'CRVS_OFFICE' | 'HEALTH_FACILITY';
}

export function routedRefs(config: BridgeConfig): RoutedRef[] {
  const refs: RoutedRef[] = [];
  const { defaultOffice, facilities } = config.routing;
  if (defaultOffice) refs.push({ path: 'routing.defaultOffice', ref: defaultOffice, type: 'CRVS_OFFICE' });
  for (const [source, route] of Object.entries(facilities)) {
    const at = `routing.facilities['${source}']`;
    if (route.office) refs.push({ path: `${at}.office`, ref: route.office, type: 'CRVS_OFFICE' });
    if (route.facility) refs.push({ path: `${at}.facility`, ref: route.facility, type: 'HEALTH_FACILITY' });
  }
  return refs;
}

/** One line per problem (key path, reference, why) and one summary line when all are found. */
export async function checkRouting(config: BridgeConfig, client: OpenCrvsClient): Promise<CheckResult[]> {
  const refs = routedRefs(config);
  if (refs.length === 0) {
    return [warn('routing', 'no office configured (routing.defaultOffice, routing.facilities): records need one')];
  }
  const resolver = new LocationResolver(client);
  const problems: CheckResult[] = [];
  for (let i = 0; i < refs.length; i += LOOKUP_CONCURRENCY) {
    const batch = refs.slice(i, i + LOOKUP_CONCURRENCY);
    const settled = await Promise.allSettled(batch.map((item) => resolver.resolve(item.ref, item.type)));
    for (const [j, outcome] of settled.entries()) {
      const item = batch[j];
      if (outcome.status === 'fulfilled' || !item) continue;
      const err: unknown = outcome.reason;
      // The lookup itself is wrong, not the reference: one line naming the setting, not one per route.
      // An error that says itself what to set (its hint) gets no guess of ours beside it, but for a 404's
      // (the client's: eventsUrl, or the server's version) said here with the URL configured, shown as every doctor
      // line shows one (normalisedUrl: no user info, no query).
      if (err instanceof OpenCrvsError && err.kind === 'config') {
        if (err.hint && err.status !== 404) return [fail('routing', `location lookups fail (${err.message})`)];
        const said = err.hint ? `${err.operation ?? 'listLocations'}: HTTP 404: ${err.opencrvsMessage}` : err.message;
        const guess = `is opencrvs.eventsUrl (${normalisedUrl(config.opencrvs.eventsUrl ?? '')}) the events API, ending in /api/events (register host) or /events (gateway), and opencrvs.version ('${config.opencrvs.version}') the server's?`;
        return [fail('routing', `location lookups fail (${said}): ${guess}`)];
      }
      const why =
        err instanceof OpenCrvsError && err.kind === 'unknown-office'
          ? err.opencrvsMessage
          : `lookup failed: ${err instanceof Error ? err.message : 'error'}`;
      problems.push(fail('routing', `${item.path}: ${why}`));
    }
  }
  if (problems.length > 0) return problems;
  const offices = new Set(refs.filter((r) => r.type === 'CRVS_OFFICE').map((r) => r.ref)).size;
  const facilities = new Set(refs.filter((r) => r.type === 'HEALTH_FACILITY').map((r) => r.ref)).size;
  return [
    ok(
      'routing',
      `${offices} office${offices === 1 ? '' : 's'} (CRVS_OFFICE) and ${facilities} facilit${facilities === 1 ? 'y' : 'ies'} (HEALTH_FACILITY) found in OpenCRVS`,
    ),
  ];
}
