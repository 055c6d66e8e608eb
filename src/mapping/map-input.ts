// `map --input`: every subject in a bundle against every mapping; one result for a person to read. `map --ref`
// picks its result the same way (mapCandidates) from a record read live.
import { dhis2InputFetcher } from './dhis2-input.js';
import { bundleFetcher, normalizeReference } from './fetcher.js';
import type { MappingSet } from './set.js';
import {
  asJson,
  type MapOptions,
  type MappedResult,
  type MapResult,
  type Resource,
  type ResourceFetcher,
} from './types.js';

/** Subjects of documents first (they say who the record is about), then the others in input order. */
function candidates(resources: Resource[], type: string): string[] {
  const refs: string[] = [];
  const byRef = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
  for (const r of resources) {
    const subject =
      r.resourceType === 'Composition' ? (asJson(r).subject as { reference?: unknown } | undefined) : undefined;
    if (typeof subject?.reference !== 'string') continue;
    const ref = normalizeReference(subject.reference);
    const target = byRef.get(ref) ?? resources.find((x) => `urn:uuid:${x.id}` === subject.reference);
    if (target?.resourceType === type) refs.push(`${target.resourceType}/${target.id}`);
  }
  for (const r of resources) if (r.resourceType === type) refs.push(`${r.resourceType}/${r.id}`);
  return [...new Set(refs)];
}

/**
 * `map`'s answer: a mapping result, and for a skip, what the person running it should know about the input
 * (`hint`): a lone subject holds none of the context its mappings read.
 */
export type DryRunResult = MapResult & { hint?: string };

/** A subject to try with one mapping. */
export interface Candidate {
  mappingId: string;
  subjectRef: string;
}

export async function mapInput(set: MappingSet, input: unknown, options: MapOptions = {}): Promise<DryRunResult> {
  // DHIS2 tracker JSON goes to the dhis2 mappings, anything else is read as FHIR.
  const dhis2 = dhis2InputFetcher(input);
  const fetcher = dhis2 ?? bundleFetcher(input);
  const kind = dhis2 ? 'dhis2' : 'fhir';
  const mappings = set.mappings.filter((m) => m.source === kind);
  if (mappings.length === 0) return { status: 'skipped', reason: `no ${kind} mapping loaded for this ${kind} input` };
  const tried = mappings.flatMap((mapping) =>
    candidates(fetcher.resources, mapping.subjectType).map((subjectRef) => ({ mappingId: mapping.id, subjectRef })),
  );
  const types = [...new Set(mappings.map((m) => m.subjectType))].join(' or ');
  const { result, noEvidence } = await mapCandidates(set, tried, fetcher, options, `no ${types} in the input`);
  // A FHIR subject alone (the child's Patient, exported on its own): its mappings' evidence is in records
  // that point to it (encounters, observations, a mother's RelatedPerson), none of which the input holds.
  const [only] = fetcher.resources;
  if (kind === 'fhir' && noEvidence && only && fetcher.resources.length === 1 && tried.length > 0)
    return { ...result, hint: loneSubjectHint(only.resourceType) };
  return result;
}

function loneSubjectHint(type: string): string {
  return (
    `the input holds only the ${type}, not the records the mappings find the event in (its encounters, ` +
    'observations, related persons, documents): give a Bundle with them (docs/mappings.md, "The dry run"), ' +
    `or read the record with its context from the source: map --ref ${type}/<id> --config FILE`
  );
}

/**
 * Maps each candidate and gives the result a person should see: the first that maps (with warnings naming
 * the others), else the first invalid, exclusion or the mappings' reasons not to map; `none` when there is
 * no candidate. `noEvidence`: nothing mapped, and every candidate was simply no event of its mapping's type.
 */
export async function mapCandidates(
  set: MappingSet,
  tried: readonly Candidate[],
  fetcher: ResourceFetcher,
  options: MapOptions,
  none: string,
): Promise<{ result: MapResult; noEvidence: boolean }> {
  const mapped: MappedResult[] = [];
  let invalid: MapResult | undefined;
  let excluded: MapResult | undefined;
  let noEvidence = tried.length > 0;
  // The first non-match of each mapping: a dry run on a birth must not answer only "no death evidence".
  const others = new Map<string, MapResult>();
  for (const { mappingId, subjectRef } of tried) {
    const evaluated = await set.mapSubjectDetailed(mappingId, subjectRef, fetcher, options);
    const { result } = evaluated;
    if (!evaluated.noEvidence) noEvidence = false;
    if (result.status === 'mapped') mapped.push(result);
    else if (result.status === 'invalid') invalid ??= result;
    else if (evaluated.excluded) excluded ??= result;
    else if (!others.has(mappingId)) others.set(mappingId, result);
  }
  const best = mapped[0];
  if (best) {
    const warnings = [...best.warnings];
    const otherMappings = [...new Set(mapped.filter((m) => m.mappingId !== best.mappingId).map((m) => m.mappingId))];
    if (otherMappings.length) {
      warnings.push(
        `this input also maps with ${otherMappings.join(', ')}; shown: ${best.mappingId} (use --mapping to choose)`,
      );
    }
    const sameMapping = mapped.filter((m) => m.mappingId === best.mappingId).length;
    if (sameMapping > 1)
      warnings.push(`${sameMapping} subjects in this input map with ${best.mappingId}; shown: the first`);
    return { result: { ...best, warnings }, noEvidence: false };
  }
  const result = invalid ?? excluded ?? combined([...others.values()]) ?? { status: 'skipped', reason: none };
  return { result, noEvidence };
}

/** One skipped result naming every mapping's reason (the first result's subject and mapping). */
function combined(results: MapResult[]): MapResult | undefined {
  const [first] = results;
  if (first?.status !== 'skipped' || results.length === 1) return first;
  const reasons = results.map((r) => (r.status === 'skipped' ? `${r.mappingId ?? '?'}: ${r.reason}` : ''));
  return { ...first, reason: reasons.filter(Boolean).join('; ') };
}
