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

/**
 * A scope read in `version`'s format only: a server grants by its own format, so a 2.0 scope held by a 1.9
 * client (a token of mixed formats) grants nothing there, nor a 1.9 one on 2.0.
 */
export function parseScope(scope: string, version: OpenCrvsVersion): ParsedScope | undefined {
  if (version === '2.0') {
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

/**
 * The version whose format the token's create and notify grants are written in, when they are all of one:
 * a token of another version than opencrvs.version says is read wrong (a 2.0 scope is no 1.9 grant, and a
 * 1.9 one no 2.0 grant), and the fix is that setting, not the client's grants. Only those grants are
 * looked at: other scopes (`notification-api`, a user scope) say nothing of the format the bridge reads.
 * Undefined when there are none, or some of each.
 */
export function scopeFormat(scopes: string[]): OpenCrvsVersion | undefined {
  const v20 = scopes.some((scope) => GRANTS.has(new URLSearchParams(scope).get('type') ?? ''));
  const v19 = scopes.some((scope) => /^record\.(?:create|notify)(?:\[.*\])?$/.test(scope));
  return v20 === v19 ? undefined : v20 ? '2.0' : '1.9';
}

const GRANTS = new Set(['record.create', 'record.notify']);

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
