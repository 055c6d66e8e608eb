// Which context searches can be asked once for many subjects, and how to split the answer. A search
// qualifies when exactly one parameter is the subject's own reference (`{%subjectRef}`) and every
// other parameter is fixed text or a code set: `Encounter?subject=Patient/a,Patient/b,…` (FHIR's OR)
// then answers for every subject at once, and each result belongs to the subject it references.
import { fixedTemplateValue, type TemplatePart } from './compile.js';
import { normalizeReference, referencesAtPath, SEARCH_PARAM_PATHS } from './fetcher.js';
import type { MappingSet } from './set.js';
import type { Resource } from './types.js';

export interface BatchableSearch {
  type: string;
  /** The parameter that carries the subject reference (subject, patient, focus, …). */
  refParam: string;
  /** Every other parameter, expanded exactly as context assembly expands it. */
  fixed: Record<string, string>;
  /** Equal for the same search declared by different mappings. */
  key: string;
}

function isSubjectRef(parts: TemplatePart[]): boolean {
  const only = parts.length === 1 ? parts[0] : undefined;
  return only !== undefined && 'expr' in only && only.expr.text.trim() === '%subjectRef';
}

/** The distinct batchable searches of the given mappings. */
export function batchableSearches(set: MappingSet, mappingIds: Iterable<string>): BatchableSearch[] {
  const out = new Map<string, BatchableSearch>();
  for (const id of new Set(mappingIds)) {
    for (const item of set.get(id)?.context ?? []) {
      if (item.kind !== 'search' || !item.type || !item.params) continue;
      const refParams = item.params.filter((p) => isSubjectRef(p.parts));
      if (refParams.length !== 1 || !SEARCH_PARAM_PATHS[refParams[0]?.name ?? '']) continue;
      const fixed: Record<string, string> = {};
      let batchable = true;
      for (const p of item.params) {
        if (p === refParams[0]) continue;
        const value = fixedTemplateValue(p.parts);
        if (value === undefined) batchable = false;
        else fixed[p.name] = value;
      }
      if (!batchable) continue;
      const refParam = refParams[0]?.name ?? '';
      const key = JSON.stringify([item.type, refParam, Object.entries(fixed).sort()]);
      out.set(key, { type: item.type, refParam, fixed, key });
    }
  }
  return [...out.values()];
}

/** Splits the answer of a batched search by the subject each resource references. */
export function splitByReference<R extends Resource>(
  search: BatchableSearch,
  resources: R[],
  refs: string[],
): Map<string, R[]> {
  const byRef = new Map<string, R[]>(refs.map((ref) => [normalizeReference(ref), []]));
  const paths = SEARCH_PARAM_PATHS[search.refParam]?.(search.type) ?? [];
  for (const resource of resources) {
    const owners = new Set(paths.flatMap((path) => referencesAtPath(resource, path).map(normalizeReference)));
    for (const owner of owners) byRef.get(owner)?.push(resource);
  }
  return byRef;
}
