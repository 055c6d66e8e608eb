import type { SimVersion } from './types.js';

// Scope strings of OpenCRVS system clients (docs/opencrvs-api.md, "Token").
// v2.0: `type=record.create&event=birth,death` (no `event=` allows every event type).
// v1.9: `record.create[event=birth|death]`, plus the plain `notification-api` scope.

const HEALTH_EVENTS = ['birth', 'death', 'tennis-club-membership'];

/** The scopes a "Health" integration client gets in each version. */
export function defaultHealthScopes(version: SimVersion): string[] {
  if (version === '2.0') {
    const events = HEALTH_EVENTS.join(',');
    return [`type=record.create&event=${events}`, `type=record.notify&event=${events}`];
  }
  const events = HEALTH_EVENTS.join('|');
  return ['notification-api', `record.create[event=${events}]`, `record.notify[event=${events}]`];
}

interface ParsedScope {
  type: string;
  /** undefined = every event type. */
  events?: string[];
}

function parseScope(scope: string, version: SimVersion): ParsedScope | undefined {
  if (version === '2.0') {
    const params = new URLSearchParams(scope);
    const type = params.get('type');
    if (!type) return undefined;
    const event = params.get('event');
    return event === null ? { type } : { type, events: event.split(',').filter(Boolean) };
  }
  const match = /^([a-z.-]+)(?:\[(.*)\])?$/i.exec(scope);
  if (!match?.[1]) return undefined;
  const options = new URLSearchParams((match[2] ?? '').replaceAll(',', '&'));
  const event = options.get('event');
  return event === null ? { type: match[1] } : { type: match[1], events: event.split('|').filter(Boolean) };
}

/** Whether the scopes hold `type` at all (for any event type). */
export function hasScopeType(scopes: string[], type: string, version: SimVersion): boolean {
  return scopes.some((scope) => parseScope(scope, version)?.type === type);
}

/** Whether the scopes allow `type` for `eventType`. */
export function allowsEvent(scopes: string[], type: string, eventType: string, version: SimVersion): boolean {
  return scopes.some((scope) => {
    const parsed = parseScope(scope, version);
    return parsed?.type === type && (parsed.events === undefined || parsed.events.includes(eventType));
  });
}
