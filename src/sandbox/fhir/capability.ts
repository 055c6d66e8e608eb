import { globalSchema, isResourceType } from '@medplum/core';
import type { CapabilityStatement, CapabilityStatementRest, CapabilityStatementRestResource } from '@medplum/fhirtypes';

let cached: CapabilityStatement | undefined;

const INTERACTIONS = [
  'read',
  'vread',
  'update',
  'patch',
  'delete',
  'history-instance',
  'create',
  'search-type',
] as const;

/** What the sandbox serves, for clients (and `doctor`) that check `GET [base]/metadata` first. */
export function capabilityStatement(): CapabilityStatement {
  if (cached) return cached;
  const resource: CapabilityStatementRestResource[] = Object.keys(globalSchema.types)
    .filter((type) => isResourceType(type))
    .sort()
    .map((type) => ({
      type,
      versioning: 'versioned',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalUpdate: true,
      interaction: INTERACTIONS.map((code) => ({ code })),
      searchParam: [{ name: '_lastUpdated', type: 'date' }],
    }));
  cached = sandboxStatement('opencrvs-bridge FHIR sandbox (@medplum/fhir-router MemoryRepository)', {
    mode: 'server',
    interaction: [{ code: 'transaction' }, { code: 'batch' }],
    resource,
  });
  return cached;
}

/** A CapabilityStatement of the sandbox as `software` (itself, or the server it imitates) serving `rest`. */
export function sandboxStatement(software: string, rest: CapabilityStatementRest): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: software },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    rest: [rest],
  };
}
