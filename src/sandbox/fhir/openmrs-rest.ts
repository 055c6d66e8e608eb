// The FHIR sandbox answering as OpenMRS also serves the one call of OpenMRS's REST API the bridge makes
// (`sources[].openmrs`): `GET /ws/rest/v1/relationship?person=<uuid>&v=full`, the person's relationships as
// person A or person B (openmrs-module-webservices.rest's RelationshipSearchHandler, "by person"), each with
// `uuid`, `personA`/`personB` (uuid, gender), `relationshipType` (uuid, aIsToB, bIsToA), `voided`,
// `startDate`, `endDate`, under `results`. They are made from the stored RelatedPersons, as FHIR2 makes its
// RelatedPersons from the relationships: the RelatedPerson's id is the relationship's uuid, its `patient`
// person B, and person A the Person its identifier `RelatedPerson|Person/<uuid>` names.
//
// FHIR2 gives no type, so a stored RelatedPerson says its own: the extension TYPE_EXTENSION (the type's
// aIsToB name, "Doctor"), else its `relationship` text or code when it is no parental one, else "Parent/Child".
// The extension is the sandbox's own: nothing else reads it, and the FHIR answers stay untyped.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RelatedPerson } from '@medplum/fhirtypes';
import { HttpFailure, outcomeOf } from './http-util.js';
import type { SandboxRepository } from './repository.js';

export const REST_PATH = '/ws/rest/v1';
/** A stored RelatedPerson's OpenMRS relationship type, as its aIsToB name (sandbox only). */
export const TYPE_EXTENSION = 'urn:opencrvs-bridge:sandbox:openmrs-relationship-type';
/** OpenMRS core's "Parent/Child" type. */
const PARENT_CHILD = { uuid: '8d91a210-c2cc-11de-8d13-0010c6dffd0f', aIsToB: 'Parent', bIsToA: 'Child' };
/** Codes a stored RelatedPerson may carry for a parent (v3 RoleCode, OpenCRVS v1). */
const PARENTAL = new Set(['MTH', 'FTH', 'NMTH', 'NFTH', 'GESTM', 'PRN', 'MOTHER', 'FATHER']);
const GENDERS: Record<string, string> = { female: 'F', male: 'M', other: 'O', unknown: 'U' };

/** Runs before the REST listing is answered (tests make it fail with an HttpFailure). */
export type BeforeRest = (path: string, query: URLSearchParams) => Promise<void> | void;

export function isRestPath(pathname: string): boolean {
  return pathname === REST_PATH || pathname.startsWith(`${REST_PATH}/`);
}

/** Answers a REST call; the relationship listing by person only (others: 404, as a resource it lacks). */
export async function answerRest(
  repo: SandboxRepository,
  req: IncomingMessage,
  res: ServerResponse,
  before: BeforeRest | undefined,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
  const resource = url.pathname.slice(REST_PATH.length).replace(/^\/+|\/+$/g, '');
  if (req.method !== 'GET' || resource !== 'relationship')
    throw new HttpFailure(404, outcomeOf('not-found', `no REST resource ${resource}`));
  await before?.(resource, url.searchParams);
  const person = url.searchParams.get('person') ?? '';
  const results = [...repo.recordsOf('RelatedPerson')]
    .map((record) => record.resource as RelatedPerson)
    .filter((rp) => personB(rp) === person || personA(rp) === person)
    .map(relationshipOf);
  const text = JSON.stringify({ results });
  res.writeHead(200, { 'Content-Type': 'application/json;charset=UTF-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function personB(rp: RelatedPerson): string {
  const ref = rp.patient?.reference ?? '';
  return ref.startsWith('Patient/') ? ref.slice('Patient/'.length) : '';
}

function personA(rp: RelatedPerson): string {
  const named = rp.identifier?.find((id) => id.system === 'RelatedPerson' && id.value?.startsWith('Person/'));
  return named?.value?.slice('Person/'.length) ?? `${rp.id}-person`;
}

function typeOf(rp: RelatedPerson): { uuid: string; aIsToB: string; bIsToA: string } {
  const named = rp.extension?.find((ext) => ext.url === TYPE_EXTENSION)?.valueString;
  const codes = (rp.relationship ?? []).flatMap((concept) => (concept.coding ?? []).map((coding) => coding.code));
  const given = named ?? (codes.some((code) => code && PARENTAL.has(code)) ? undefined : rp.relationship?.[0]?.text);
  if (given === undefined || given === PARENT_CHILD.aIsToB) return PARENT_CHILD;
  return { uuid: `sandbox-type-${given.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`, aIsToB: given, bIsToA: 'Patient' };
}

function relationshipOf(rp: RelatedPerson): Record<string, unknown> {
  const type = typeOf(rp);
  return {
    uuid: rp.id,
    display: `is the ${type.aIsToB}`,
    personA: { uuid: personA(rp), gender: GENDERS[rp.gender ?? 'unknown'] ?? 'U' },
    relationshipType: { display: `${type.aIsToB}/${type.bIsToA}`, ...type },
    personB: { uuid: personB(rp) },
    voided: false,
    startDate: rp.period?.start ?? null,
    endDate: rp.period?.end ?? null,
  };
}
