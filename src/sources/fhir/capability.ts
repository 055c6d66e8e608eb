// Reads what a FHIR server's CapabilityStatement says about the resource types the bridge needs. The
// statement crosses a boundary, so it is walked as unknown data: servers omit or vary most fields.
import { isObject } from '../../util/is-object.js';

export interface TypeSupport {
  listed: boolean;
  /** undefined when the server lists the type without interactions (then only a live call can tell). */
  interactions?: Set<string>;
  searchParams: Set<string>;
}

export interface CapabilitySummary {
  fhirVersion?: string;
  software?: string;
  types: Map<string, TypeSupport>;
  /** Search parameters declared for every type (rest.searchParam). */
  commonSearchParams: Set<string>;
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function stringsAt(items: Record<string, unknown>[], key: string): Set<string> {
  const out = new Set<string>();
  for (const item of items) if (typeof item[key] === 'string') out.add(item[key]);
  return out;
}

export function summarizeCapabilities(statement: unknown): CapabilitySummary | undefined {
  if (!isObject(statement) || statement.resourceType !== 'CapabilityStatement') return undefined;
  const types = new Map<string, TypeSupport>();
  const commonSearchParams = new Set<string>();
  for (const rest of records(statement.rest)) {
    if (rest.mode !== undefined && rest.mode !== 'server') continue;
    for (const name of stringsAt(records(rest.searchParam), 'name')) commonSearchParams.add(name);
    for (const resource of records(rest.resource)) {
      if (typeof resource.type !== 'string') continue;
      const interactions = Array.isArray(resource.interaction)
        ? stringsAt(records(resource.interaction), 'code')
        : undefined;
      types.set(resource.type, {
        listed: true,
        interactions,
        searchParams: stringsAt(records(resource.searchParam), 'name'),
      });
    }
  }
  const software = isObject(statement.software) ? statement.software.name : undefined;
  return {
    fhirVersion: typeof statement.fhirVersion === 'string' ? statement.fhirVersion : undefined,
    software: typeof software === 'string' ? software : undefined,
    types,
    commonSearchParams,
  };
}

/** What the statement says is missing for polling `type` (search by _lastUpdated) and reading it. */
export function capabilityGaps(summary: CapabilitySummary, type: string): string[] {
  const support = summary.types.get(type);
  if (!support) return [`${type} is not listed`];
  const gaps: string[] = [];
  if (support.interactions) {
    if (!support.interactions.has('search-type')) gaps.push(`${type} search is not listed`);
    if (!support.interactions.has('read')) gaps.push(`${type} read is not listed`);
  }
  return gaps;
}

/** Whether `_lastUpdated` is declared (servers often leave common parameters out, so only a hint). */
export function declaresLastUpdated(summary: CapabilitySummary, type: string): boolean {
  return summary.commonSearchParams.has('_lastUpdated') || !!summary.types.get(type)?.searchParams.has('_lastUpdated');
}

/**
 * Whether the statement lists `type`'s interactions without `history-instance`. The bridge reads a
 * deleted resource's last version from its history to find the records it was about (a deleted
 * fetal-death report lets a birth be notified); a type listed without interactions is given the benefit.
 */
export function lacksInstanceHistory(summary: CapabilitySummary, type: string): boolean {
  const interactions = summary.types.get(type)?.interactions;
  return interactions !== undefined && !interactions.has('history-instance');
}
