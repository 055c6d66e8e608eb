// The FHIR sandbox as an OpenMRS FHIR2 server (openmrs-module-fhir2) answers: only the resource types it has
// providers for, and only the search parameters their @Search methods take. OpenMRS serves FHIR through
// HAPI's plain RestfulServer, whose answers are imitated: a type without a provider is a 404
// ("HAPI-0302: Unknown resource type …"), a search with a parameter no method takes a 400 whose
// OperationOutcome issue is `not-supported` ("HAPI-0303: … does not know how to handle GET operation[…]
// with parameters […]"), and the CapabilityStatement lists what the providers declare. Parameters that
// start with `_` are HAPI's own (_count, _sort, _id, _lastUpdated…) and pass. No Composition, and no
// Subscription: an OpenMRS site polls.
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { sandboxStatement } from './capability.js';
import { HttpFailure, outcomeOf } from './http-util.js';

const ADDRESS = ['address-city', 'address-state', 'address-postalcode', 'address-country'];

/**
 * The search parameters of the FHIR2 providers the bridge meets (providers/r4/*FhirResourceProvider.java),
 * less the `_` ones. RelatedPerson takes no `patient` (a client lists it by `_lastUpdated` and keeps a child's
 * by `patient`: relations-listing.ts); Observation no `focus`; Task no `focus`.
 */
export const OPENMRS_SEARCH_PARAMS: Readonly<Record<string, readonly string[]>> = {
  Patient: ['name', 'given', 'family', 'identifier', 'gender', 'birthdate', 'death-date', 'deceased', ...ADDRESS],
  Person: ['name', 'gender', 'birthdate', ...ADDRESS],
  RelatedPerson: ['name', 'gender', 'birthdate', ...ADDRESS],
  Encounter: ['date', 'location', 'participant', 'subject', 'patient', 'type'],
  Observation: [
    'encounter',
    'subject',
    'patient',
    'has-member',
    'value-concept',
    'value-date',
    'value-quantity',
    'value-string',
    'date',
    'code',
    'category',
  ],
  Task: ['based-on', 'owner', 'status'],
  Location: ['name', 'partof', ...ADDRESS],
  Practitioner: ['identifier', 'name', 'given', 'family', ...ADDRESS],
};

/** The 404 HAPI's RestfulServer answers for a type it has no provider for. */
export function refuseUnknownType(type: string): never {
  throw new HttpFailure(
    404,
    outcomeOf(
      'processing',
      `HAPI-0302: Unknown resource type '${type}' - Server knows how to handle: [${Object.keys(OPENMRS_SEARCH_PARAMS).join(', ')}]`,
    ),
  );
}

/** The 400 HAPI's RestfulServer answers for a search no @Search method of the type takes. */
export function refuseUnknownParams(type: string, query: URLSearchParams, method = 'GET'): void {
  const known = new Set(OPENMRS_SEARCH_PARAMS[type] ?? []);
  // A modifier or a chain (`code:text`, `subject.identifier`) names its parameter before it.
  const unknown = [...new Set(query.keys())].filter((name) => {
    const base = name.split(/[:.]/)[0] ?? name;
    return !base.startsWith('_') && !known.has(base);
  });
  if (unknown.length === 0) return;
  const names = [...new Set(query.keys())].sort().join(', ');
  throw new HttpFailure(
    400,
    outcomeOf(
      'not-supported',
      `HAPI-0303: Invalid request: The FHIR endpoint on this server does not know how to handle ${method} operation[${type}] with parameters [[${names}]]`,
    ),
  );
}

export function servesType(type: string): boolean {
  return Object.hasOwn(OPENMRS_SEARCH_PARAMS, type);
}

/** What HAPI generates from the FHIR2 providers: their types, interactions and search parameters. */
export function openmrsCapabilityStatement(): CapabilityStatement {
  return sandboxStatement('OpenMRS FHIR2 (imitated by the opencrvs-bridge FHIR sandbox)', {
    mode: 'server',
    resource: Object.entries(OPENMRS_SEARCH_PARAMS).map(
      ([type, params]): CapabilityStatementRestResource => ({
        type: type as CapabilityStatementRestResource['type'],
        interaction: (['read', 'search-type', 'create', 'update', 'delete'] as const).map((code) => ({ code })),
        // The bridge reads the names; HAPI gives each its type too, which nothing here needs.
        searchParam: [...params, '_id', '_lastUpdated'].map((name) => ({ name, type: 'special' })),
      }),
    ),
  });
}
