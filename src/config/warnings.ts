import type { SourceSettings } from './types.js';

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
