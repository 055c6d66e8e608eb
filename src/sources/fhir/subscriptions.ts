// The Subscription resources that make an EMR notify the bridge: one rest-hook per resource type the
// source's mappings watch (the types the poller reads), pointed at `/fhir-subscription/<source>` and
// carrying the secrets the receiver checks. Built here, not by hand, because each server wants its own
// dialect: HAPI refuses a criteria without '?', Medplum fires only `active` subscriptions and signs with
// a secret held in its own extension.
import type { Bundle, BundleEntry, Subscription } from '@medplum/fhirtypes';
import type { SubscriptionSettings } from '../../config/types.js';
import { isLoopbackHost } from '../../config/warnings.js';

/** The wire styles of `sandbox --notify-style`, minus backport (its topics are defined by each server). */
export const SUBSCRIPTION_STYLES = ['hapi-empty', 'hapi-payload', 'medplum'] as const;
export type SubscriptionStyle = (typeof SUBSCRIPTION_STYLES)[number];

/** Medplum puts the hex HMAC-SHA256 of each body, keyed with this extension's value, in `X-Signature`. */
export const MEDPLUM_SECRET_EXTENSION = 'https://www.medplum.com/fhir/StructureDefinition/subscription-secret';

export interface SubscriptionPlan {
  sourceId: string;
  /** The bridge as the EMR reaches it: scheme, host, port and any path prefix of a proxy. */
  bridgeUrl: string;
  types: string[];
  style: SubscriptionStyle;
  /** The receiver's secrets (or placeholders standing in for them). */
  secrets: Pick<SubscriptionSettings, 'secret' | 'hmacSecret'>;
}

export class SubscriptionPlanError extends Error {
  override readonly name = 'SubscriptionPlanError';
}

/** Where the receiver listens for this source. */
export function receiverEndpoint(bridgeUrl: string, sourceId: string): string {
  return `${bridgeUrl.replace(/\/+$/, '')}/fhir-subscription/${encodeURIComponent(sourceId)}`;
}

/**
 * What to say of a `bridgeUrl` the EMR would reach without TLS, or undefined: every notification would
 * carry the bearer secret (and, with a payload, the resource: a birth's personal data) in clear to anyone
 * on the way. A warning, not a refusal: an EMR in the same cluster, or behind the same host, may reach the
 * bridge by plain HTTP on a network nobody else reads; on loopback there is no one on the way at all.
 */
export function clearTextBridgeUrlWarning(bridgeUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(bridgeUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' || isLoopbackHost(url.hostname)) return undefined;
  return `warning: --bridge-url is plain http: the EMR would send each notification to ${url.host}, with the subscription's bearer secret and the resources it names, in clear; give the bridge's https:// address (a TLS proxy in front of it, docs/deployment.md), unless only a network nobody else can read (the same cluster or host) lies between the EMR and the bridge`;
}

/**
 * Refuses plans the receiver would turn away: it checks every secret it is configured with, and only
 * Medplum can sign. Medplum also splits each header at every ':', so a bearer secret holding one
 * would arrive cut short.
 */
export function checkPlan(plan: SubscriptionPlan): void {
  const { secret, hmacSecret } = plan.secrets;
  if (hmacSecret !== undefined && plan.style !== 'medplum') {
    throw new SubscriptionPlanError(
      `subscription.hmacSecret is configured but ${plan.style} sends no X-Signature: the receiver would refuse every notification (remove hmacSecret, or use --style medplum)`,
    );
  }
  if (secret?.includes(':') && plan.style === 'medplum') {
    throw new SubscriptionPlanError(
      "subscription.secret contains ':', which Medplum cuts its headers at: choose a secret without one",
    );
  }
  if (plan.types.length === 0) throw new SubscriptionPlanError('the source mappings watch no resource type');
}

function subscriptionFor(plan: SubscriptionPlan, type: string, endpoint: string): Subscription {
  const { secret, hmacSecret } = plan.secrets;
  const medplum = plan.style === 'medplum';
  return {
    resourceType: 'Subscription',
    // `requested` is what a client submits (HAPI activates it); Medplum acts on `active` ones only.
    status: medplum ? 'active' : 'requested',
    reason: `opencrvs-bridge, source ${plan.sourceId}: ${type} changes, for birth and death notifications`,
    // Every change of the type: the bridge re-reads and decides itself. HAPI requires "Type?[params]".
    criteria: medplum ? type : `${type}?`,
    channel: {
      type: 'rest-hook',
      endpoint,
      // Without a payload HAPI POSTs an empty body; with one it PUTs to {endpoint}/{Type}/{id}.
      ...(plan.style === 'hapi-empty' ? {} : { payload: 'application/fhir+json' }),
      ...(secret !== undefined ? { header: [`Authorization: Bearer ${secret}`] } : {}),
    },
    ...(medplum && hmacSecret !== undefined
      ? { extension: [{ url: MEDPLUM_SECRET_EXTENSION, valueString: hmacSecret }] }
      : {}),
  };
}

/**
 * A transaction of conditional creates (`ifNoneExist` on endpoint and criteria): applying it twice
 * leaves one subscription per type, not two.
 */
export function subscriptionBundle(plan: SubscriptionPlan): Bundle<Subscription> {
  checkPlan(plan);
  const endpoint = receiverEndpoint(plan.bridgeUrl, plan.sourceId);
  const entry: BundleEntry<Subscription>[] = plan.types.map((type) => {
    const resource = subscriptionFor(plan, type, endpoint);
    const ifNoneExist = new URLSearchParams({ url: endpoint, criteria: resource.criteria ?? type }).toString();
    return { resource, request: { method: 'POST', url: 'Subscription', ifNoneExist } };
  });
  return { resourceType: 'Bundle', type: 'transaction', entry };
}
