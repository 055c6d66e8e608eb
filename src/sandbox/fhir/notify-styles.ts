import { createHmac, randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import type { ResourceChange } from './repository.js';

export type NotifyStyle = 'hapi-empty' | 'hapi-payload' | 'medplum' | 'backport-id-only';
export const NOTIFY_STYLES: readonly NotifyStyle[] = ['hapi-empty', 'hapi-payload', 'medplum', 'backport-id-only'];

/** One HTTP request to the subscriber, fully built (the body is signed as sent). */
export interface OutboundNotification {
  method: 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface StyleContext {
  url: string;
  style: NotifyStyle;
  secret?: string;
  headers?: Record<string, string>;
  /** FHIR base of the sandbox, for absolute references in backport bundles. */
  baseUrl: string;
  subscriptionId: string;
}

export type EmitterEvent =
  | { kind: 'event'; change: ResourceChange; eventNumber: number }
  | { kind: 'handshake' | 'heartbeat'; eventsSinceStart: number };

const FHIR_JSON = 'application/fhir+json';
export const BACKPORT_TOPIC = 'http://opencrvs-bridge.example.org/SubscriptionTopic/sandbox-any-change';
const STATUS_PROFILE =
  'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4';
const NOTIFICATION_PROFILE =
  'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4';

/**
 * Whether a style reports this change at all. Classic R4 rest-hooks without payload (HAPI) say
 * nothing about deletes; every other style does (HAPI payload as a DELETE, Medplum with `{}`).
 */
export function styleReports(style: NotifyStyle, interaction: ResourceChange['interaction']): boolean {
  return !(style === 'hapi-empty' && interaction === 'delete');
}

/** Only the backport IG has handshakes and heartbeats. */
export function styleHasStatusMessages(style: NotifyStyle): boolean {
  return style === 'backport-id-only';
}

/** Builds the request for an event in the configured wire style, or undefined if the style sends nothing. */
export function buildNotification(ctx: StyleContext, event: EmitterEvent): OutboundNotification | undefined {
  const base = ctx.url.replace(/\/+$/, '');
  const custom = ctx.headers ?? {};
  if (ctx.style === 'backport-id-only') {
    const body = JSON.stringify(backportBundle(ctx, event));
    return { method: 'POST', url: base, headers: { ...custom, 'Content-Type': FHIR_JSON }, body };
  }
  if (event.kind !== 'event') return undefined;
  const { change } = event;
  switch (ctx.style) {
    case 'hapi-empty':
      return change.interaction === 'delete' ? undefined : { method: 'POST', url: base, headers: { ...custom } };
    case 'hapi-payload': {
      const url = `${base}/${change.resourceType}/${change.id}`;
      if (change.interaction === 'delete') return { method: 'DELETE', url, headers: { ...custom } };
      return {
        method: 'PUT',
        url,
        headers: { ...custom, 'Content-Type': FHIR_JSON },
        body: JSON.stringify(change.resource),
      };
    }
    case 'medplum': {
      const body = change.interaction === 'delete' ? '{}' : JSON.stringify(change.resource);
      const headers: Record<string, string> = {
        ...custom,
        'Content-Type': FHIR_JSON,
        'X-Medplum-Subscription': ctx.subscriptionId,
        'X-Medplum-Interaction': change.interaction,
        // As Medplum's server does: the body of a delete is `{}`, so the header names what went.
        ...(change.interaction === 'delete'
          ? { 'X-Medplum-Deleted-Resource': `${change.resourceType}/${change.id}` }
          : {}),
      };
      if (ctx.secret) headers['X-Signature'] = createHmac('sha256', ctx.secret).update(body).digest('hex');
      return { method: 'POST', url: base, headers, body };
    }
  }
}

/** R4 backport notification Bundle (type history), payload `id-only`: references, no resources. */
export function backportBundle(ctx: StyleContext, event: EmitterEvent): Bundle {
  const subscriptionUrl = `${ctx.baseUrl}/Subscription/${ctx.subscriptionId}`;
  const eventsSinceStart = event.kind === 'event' ? event.eventNumber : event.eventsSinceStart;
  const parameter: ParametersParameter[] = [
    { name: 'subscription', valueReference: { reference: subscriptionUrl } },
    { name: 'topic', valueCanonical: BACKPORT_TOPIC },
    { name: 'status', valueCode: event.kind === 'handshake' ? 'requested' : 'active' },
    { name: 'type', valueCode: event.kind === 'event' ? 'event-notification' : event.kind },
    { name: 'events-since-subscription-start', valueString: String(eventsSinceStart) },
  ];
  const entry: BundleEntry[] = [];
  if (event.kind === 'event') {
    const { change } = event;
    const focusUrl = `${ctx.baseUrl}/${change.resourceType}/${change.id}`;
    parameter.push({
      name: 'notification-event',
      part: [
        { name: 'event-number', valueString: String(event.eventNumber) },
        { name: 'timestamp', valueInstant: change.lastUpdated },
        { name: 'focus', valueReference: { reference: focusUrl } },
      ],
    });
    entry.push({ fullUrl: focusUrl, request: requestOf(change), response: { status: statusOf(change) } });
  }
  const statusId = randomUUID();
  const status: Parameters = {
    resourceType: 'Parameters',
    id: statusId,
    meta: { profile: [STATUS_PROFILE] },
    parameter,
  };
  return {
    resourceType: 'Bundle',
    id: randomUUID(),
    meta: { profile: [NOTIFICATION_PROFILE] },
    type: 'history',
    timestamp: new Date().toISOString(),
    entry: [
      {
        fullUrl: `urn:uuid:${statusId}`,
        resource: status,
        request: { method: 'GET', url: `${subscriptionUrl}/$status` },
        response: { status: '200' },
      },
      ...entry,
    ],
  };
}

function requestOf(change: ResourceChange): BundleEntry['request'] {
  if (change.interaction === 'create') return { method: 'POST', url: change.resourceType };
  const url = `${change.resourceType}/${change.id}`;
  return { method: change.interaction === 'update' ? 'PUT' : 'DELETE', url };
}

function statusOf(change: ResourceChange): string {
  return change.interaction === 'create' ? '201' : change.interaction === 'update' ? '200' : '204';
}
