import { secretLeftUnset } from './secret-files.js';
import type { HttpSettings, SourceSettings } from './types.js';

/**
 * Why a valid source setting is still worth a warning, or undefined. Start-up logs it and `doctor`
 * reports it, so both say the same thing.
 */
export function unauthenticatedSubscriptionWarning(source: SourceSettings): string | undefined {
  const subscription = source.subscription;
  if (
    !subscription ||
    subscriptionSecretGiven(subscription, 'secret') ||
    subscriptionSecretGiven(subscription, 'hmacSecret')
  )
    return undefined;
  // Harmless (a notification is only a hint to re-read the source), but rarely intended.
  return 'subscription without secret or hmacSecret, so anyone who can reach /fhir-subscription/<source> can make the bridge re-read resources';
}

/**
 * A subscription authenticated by `hmacSecret` alone: X-Signature covers the body, not the path nor the
 * headers, so the receiver refuses the path style (`/{Type}/{id}`, HAPI's, which cannot send a signature
 * anyway) and acts on a Medplum delete's `X-Medplum-Deleted-Resource` only when the resource reads as
 * deleted (otherwise it polls). Medplum works so, but a bearer `secret` beside it makes every form usable
 * and is checked before the body is read.
 */
export function signatureOnlySubscriptionWarning(source: SourceSettings): string | undefined {
  const subscription = source.subscription;
  if (!subscription) return undefined;
  if (!subscriptionSecretGiven(subscription, 'hmacSecret') || subscriptionSecretGiven(subscription, 'secret'))
    return undefined;
  return 'subscription with hmacSecret but no secret: X-Signature signs the body only, so /fhir-subscription/<source>/{Type}/{id} notifications are refused (403) and a Medplum delete is acted on only when the resource it names reads as deleted (otherwise a catch-up poll); add secret too, which is checked before the body is read (docs/deployment.md, "Subscriptions on the EMR")';
}

/**
 * Whether the subscription gives this secret: its value, or, for a command that leaves it unread (sync
 * opens no receiver: LoadConfigOptions.secretFiles), its `…File` key or a `${NAME}` left out.
 */
function subscriptionSecretGiven(subscription: object, key: 'secret' | 'hmacSecret'): boolean {
  return (
    Boolean(Reflect.get(subscription, key)) ||
    typeof Reflect.get(subscription, `${key}File`) === 'string' ||
    secretLeftUnset(subscription, key)
  );
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
