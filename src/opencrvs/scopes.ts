// Reads OpenCRVS system-client scopes (docs/opencrvs-api.md, "Token") to tell whether a token may create
// and notify each event type the mappings produce.
// v2.0: `type=record.create&event=birth,death` (no `event=`: every event type).
// v1.9: `record.create[event=birth|death]` (no brackets: every event type).
import type { OpenCrvsVersion } from '../config/types.js';

interface ParsedScope {
  type: string;
  /** undefined = every event type. */
  events?: string[];
}

export function parseScope(scope: string, version: OpenCrvsVersion): ParsedScope | undefined {
  if (version === '2.0' || scope.startsWith('type=')) {
    const params = new URLSearchParams(scope);
    const type = params.get('type');
    if (!type) return undefined;
    const event = params.get('event');
    return event === null ? { type } : { type, events: event.split(',').filter(Boolean) };
  }
  const match = /^([a-z.-]+)(?:\[(.*)\])?$/i.exec(scope);
  if (!match?.[1]) return undefined;
  // Options inside the brackets are `key=value` pairs separated by commas.
  const options = new URLSearchParams((match[2] ?? '').replaceAll(',', '&'));
  const event = options.get('event');
  return event === null ? { type: match[1] } : { type: match[1], events: event.split('|').filter(Boolean) };
}

export function allows(scopes: string[], version: OpenCrvsVersion, type: string, eventType: string): boolean {
  return scopes.some((scope) => {
    const parsed = parseScope(scope, version);
    return parsed?.type === type && (parsed.events === undefined || parsed.events.includes(eventType));
  });
}

/** The grants the bridge needs and the token lacks, e.g. `record.notify for death`. */
export function missingGrants(scopes: string[], version: OpenCrvsVersion, eventTypes: string[]): string[] {
  const missing: string[] = [];
  for (const eventType of eventTypes) {
    for (const type of ['record.create', 'record.notify']) {
      if (!allows(scopes, version, type, eventType)) missing.push(`${type} for ${eventType}`);
    }
  }
  return missing;
}
