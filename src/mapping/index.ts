// The mapping layer's public API: load mappings, assemble context through a fetcher, map a subject.
export { mappingFile } from '../config/paths.js';
export { ContextReadError } from './context.js';
export { dhis2InputFetcher, relatedTrackedEntities, trackedEntityResource } from './dhis2-input.js';
export { bundleFetcher, normalizeReference, parseReference, referencesOf, referenceUnderBase } from './fetcher.js';
export {
  type LoadMappingsOptions,
  loadMappings,
  mappingOptionsFromConfig,
  sourceMappingOptions,
} from './load.js';
export { type Candidate, type DryRunResult, mapCandidates, mapInput } from './map-input.js';
export { type BatchableSearch, batchableSearches, splitByReference } from './prefetch.js';
export { MappingSet, mapSubject } from './set.js';
export type {
  LocationKind,
  MapOptions,
  MappedResult,
  MapResult,
  Resource,
  ResourceFetcher,
  RoutingResult,
} from './types.js';
export { MappingLoadError } from './yaml-source.js';
