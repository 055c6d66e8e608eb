import type { HttpSettings, SourceSettings } from './types.js';

/**
 * Why a valid source setting is still worth a warning, or undefined. Start-up logs it and `doctor`
 * reports it, so both say the same thing.
 */
export function unauthenticatedSubscriptionWarning(source: SourceSettings): string | undefined {
  const subscription = source.subscription;
  if (!subscription || subscription.secret || subscription.hmacSecret) return undefined;
  // Harmless (a notification is only a hint to re-read the source), but rarely intended.
  return 'subscription without secret or hmacSecret: anyone who can reach /fhir-subscription/<source> can make the bridge re-read resources';
}

/** An address only this machine (or container) reaches: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h.endsWith('.localhost');
}

/**
 * A subscription is the EMR calling the bridge: with `http.host` on loopback only a process on this
 * machine can, which in a container is none (its loopback is its own, and the health check still passes).
 * An EMR on loopback itself (the sandboxes) can, so that is no warning. Nor is it wrong behind a TLS proxy
 * on the same host forwarding to 127.0.0.1, which the bridge cannot see: the warning says so, and does not
 * simply say 0.0.0.0, which outside a container would expose plain HTTP. Start-up logs it where a receiver
 * listens, and `doctor` reports it.
 */
export function loopbackSubscriptionWarning(http: HttpSettings, source: SourceSettings): string | undefined {
  if (!source.subscription || !isLoopbackHost(http.host)) return undefined;
  let emrHost: string;
  try {
    emrHost = new URL(source.baseUrl).hostname;
  } catch {
    return undefined;
  }
  if (isLoopbackHost(emrHost)) return undefined;
  return `subscription configured but http.host is ${http.host}: unless a proxy on this machine forwards to it, the EMR cannot reach /fhir-subscription/${source.id} from another machine or from outside the container (only polls will bring events); in a container set http.host 0.0.0.0 and publish the port (examples/production.yaml), outside one put a TLS proxy in front (docs/deployment.md)`;
}

/** No source: valid (a bridge kept for `replay`, or one being set up), but nothing will ever be read. */
export function noSourcesWarning(sources: readonly SourceSettings[]): string | undefined {
  if (sources.length > 0) return undefined;
  return 'no sources configured (sources is empty): nothing will be read or delivered; add a FHIR or DHIS2 source under sources';
}
