// `opencrvs-bridge subscriptions`: the Subscription resources that make a FHIR source notify the bridge.
// Printed, the secrets are placeholders (the output lands in terminals, tickets and CI logs); with
// --apply they are posted to the source with the configured secrets and its own credentials, and only
// ids and criteria are printed.
import type { Bundle, Subscription } from '@medplum/fhirtypes';
import type { Command } from 'commander';
import type { BridgeConfig, SourceSettings } from '../config/index.js';
import { loadMappings } from '../mapping/index.js';
import { errorLine } from '../observability/crash.js';
import { silentLogger } from '../observability/logger.js';
import { FhirSourceClient } from '../sources/fhir/fhir-client.js';
import {
  checkPlan,
  clearTextBridgeUrlWarning,
  SUBSCRIPTION_STYLES,
  type SubscriptionPlan,
  SubscriptionPlanError,
  type SubscriptionStyle,
  subscriptionBundle,
} from '../sources/fhir/subscriptions.js';
import { loadConfigOrReport } from './options.js';

interface SubscriptionsOptions {
  config?: string;
  source?: string;
  bridgeUrl: string;
  style: string;
  apply?: boolean;
}

export function registerSubscriptions(program: Command): void {
  program
    .command('subscriptions')
    .description(
      "the Subscription resources that make a FHIR source notify the bridge (one rest-hook per watched resource type, with the receiver's secrets); printed as a transaction Bundle, or posted to the source with --apply",
    )
    .requiredOption('--bridge-url <url>', 'the bridge as the EMR reaches it, e.g. https://bridge.hospital.example')
    .option('--source <id>', 'the FHIR source (default: the only one with a subscription)')
    .option('--style <style>', `the EMR's dialect: ${SUBSCRIPTION_STYLES.join(', ')}`, 'hapi-payload')
    .option('--apply', 'post them to the source with its configured auth (conditional creates: re-running adds none)')
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .action((options: SubscriptionsOptions) => runSubscriptions(options));
}

function usage(message: string): void {
  console.error(message);
  process.exitCode = 2;
}

function pickSource(config: BridgeConfig, id: string | undefined): SourceSettings | string {
  const subscribed = config.sources.filter((s) => s.kind === 'fhir' && s.subscription);
  if (id === undefined) {
    if (subscribed.length === 1 && subscribed[0]) return subscribed[0];
    return subscribed.length === 0
      ? 'no FHIR source has a subscription section: add sources[].subscription (with a secret) first'
      : `several sources take subscriptions (${subscribed.map((s) => s.id).join(', ')}): choose one with --source`;
  }
  const source = config.sources.find((s) => s.id === id);
  if (!source) return `no source "${id}" in the configuration`;
  if (source.kind !== 'fhir') return `source "${id}" is ${source.kind}: subscriptions are for FHIR sources`;
  if (!source.subscription) {
    return `source "${id}" has no subscription section: the bridge would refuse its notifications as it does a wrong secret, 401 (add sources[].subscription with a secret)`;
  }
  return source;
}

function isStyle(value: string): value is SubscriptionStyle {
  return (SUBSCRIPTION_STYLES as readonly string[]).includes(value);
}

async function runSubscriptions(options: SubscriptionsOptions): Promise<void> {
  if (!isStyle(options.style)) return usage(`--style: one of ${SUBSCRIPTION_STYLES.join(', ')}`);
  if (!/^https?:\/\/[^/\s]+/.test(options.bridgeUrl)) return usage('--bridge-url: an http(s) URL');
  // The bridge's own address: the receiver path is added for each source. Given with it, it came twice.
  if (/\/fhir-subscription(\/|$)/.test(options.bridgeUrl)) {
    return usage(
      `--bridge-url: give the bridge's address without /fhir-subscription/… (that path is added per source), e.g. ${options.bridgeUrl.replace(/\/fhir-subscription(\/.*)?$/, '')}`,
    );
  }
  // Said, not refused: plain HTTP inside a cluster or on one host can be right (clearTextBridgeUrlWarning).
  const clearText = clearTextBridgeUrlWarning(options.bridgeUrl);
  if (clearText) console.error(clearText);
  // It calls the EMR, never OpenCRVS: the sources' secrets are read, the others need not be.
  const config = loadConfigOrReport(options.config, undefined, 'sources');
  if (!config) return;
  const source = pickSource(config, options.source);
  if (typeof source === 'string') return usage(source);
  const { country, version } = config.opencrvs;
  const mappings = loadMappings({ names: source.mappings, country, version, routing: config.routing });
  const secrets = source.subscription ?? {};
  const plan = (shown: SubscriptionPlan['secrets']): SubscriptionPlan => ({
    sourceId: source.id,
    bridgeUrl: options.bridgeUrl,
    types: mappings.watchedResourceTypes(),
    style: options.style as SubscriptionStyle,
    secrets: shown,
  });
  try {
    if (!options.apply) {
      const placeholders = {
        ...(secrets.secret !== undefined ? { secret: `<sources[${source.id}].subscription.secret>` } : {}),
        ...(secrets.hmacSecret !== undefined ? { hmacSecret: `<sources[${source.id}].subscription.hmacSecret>` } : {}),
      };
      checkPlan(plan(secrets)); // what the real secrets would break (a ':' for Medplum), not the placeholders
      console.log(JSON.stringify(subscriptionBundle(plan(placeholders)), null, 2));
      if (Object.keys(placeholders).length > 0) {
        console.error('Secrets are shown as <…> placeholders: put the configured values in, or use --apply.');
      }
      return;
    }
    const client = new FhirSourceClient(source, { logger: silentLogger, attempts: 1 });
    const answer = await client.transaction(subscriptionBundle(plan(secrets)));
    // The server's words are printed (statuses, locations): one that echoes what was posted must not
    // print the secrets the Subscriptions carry.
    console.log(client.secrets.text(appliedSummary(answer, plan(secrets).types)));
  } catch (err) {
    if (err instanceof SubscriptionPlanError) return usage(err.message);
    console.error(`posting the subscriptions failed: ${errorLine(err)}`);
    process.exitCode = 1;
  }
}

/** One line per type: the Subscription's id and whether this run created it (201) or found it (200). */
function appliedSummary(answer: Bundle, types: string[]): string {
  return types
    .map((type, i) => {
      const entry = answer.entry?.[i];
      const status = entry?.response?.status ?? '';
      const resource = entry?.resource as Subscription | undefined;
      const where = entry?.response?.location?.replace(/\/_history\/.*$/, '') ?? `Subscription/${resource?.id ?? '?'}`;
      const what = status.startsWith('201') ? 'created' : status.startsWith('200') ? 'already there' : status;
      return `${type}: ${where} ${what}`;
    })
    .join('\n');
}
