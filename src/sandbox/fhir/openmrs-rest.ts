// The FHIR sandbox answering as OpenMRS also serves the calls of OpenMRS's REST API the bridge makes
// (`sources[].openmrs`): `GET /ws/rest/v1/relationship?person=<uuid>&v=…`, the person's relationships as
// person A or person B (openmrs-module-webservices.rest's RelationshipSearchHandler, "by person"), under
// `results`, and `GET /ws/rest/v1/relationship/<uuid>` (doctor asks an unknown one: 404). Each relationship
// in the representation asked (openmrs-representation.ts): `full` gives `uuid`, `display` ("<A's name> is the
// Parent of <B's name>"), `personA`/`personB` (uuid, name, gender, birth date, address: what OpenMRS's
// default person shows), `relationshipType` (uuid, aIsToB, bIsToA), `voided`, `startDate`, `endDate`; a
// custom one only the properties it names. They are made from the stored RelatedPersons, as FHIR2 makes its
// RelatedPersons from the relationships: the RelatedPerson's id is the relationship's uuid, its `patient`
// person B (the stored Patient of that id gives B's name), and person A the Person its identifier
// `RelatedPerson|Person/<uuid>` names (the RelatedPerson gives A's name, gender, birth date, address).
//
// FHIR2 gives no type, so a stored RelatedPerson says its own: the extension TYPE_EXTENSION (the type's
// aIsToB name, "Doctor"), else its `relationship` text or code when it is no parental one, else "Parent/Child".
// The extension is the sandbox's own: nothing else reads it, and the FHIR answers stay untyped.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RelatedPerson } from '@medplum/fhirtypes';
import { HttpFailure, outcomeOf, sendJson } from './http-util.js';
import { project, type Representation, representationOf } from './openmrs-representation.js';
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

/**
 * Answers a REST call: the relationship listing by person, and one relationship by uuid (404 when there is
 * none, as OpenMRS answers an unknown uuid); other resources 404, as a resource it lacks. Each in the
 * representation asked (`v`: openmrs-representation.ts).
 */
export async function answerRest(
  repo: SandboxRepository,
  req: IncomingMessage,
  res: ServerResponse,
  before: BeforeRest | undefined,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
  const resource = url.pathname.slice(REST_PATH.length).replace(/^\/+|\/+$/g, '');
  const [name, uuid, ...rest] = resource.split('/');
  if (req.method !== 'GET' || name !== 'relationship' || rest.length > 0)
    throw new HttpFailure(404, outcomeOf('not-found', `no REST resource ${resource}`));
  await before?.(resource, url.searchParams);
  const rep = representationOf(url.searchParams.get('v'));
  const stored = [...repo.recordsOf('RelatedPerson')].map((record) => record.resource as RelatedPerson);
  const shown = (rp: RelatedPerson) => represent(relationshipOf(repo, rp), rep);
  if (uuid !== undefined) {
    const found = stored.find((rp) => rp.id === uuid);
    if (!found) throw new HttpFailure(404, outcomeOf('not-found', "Object with given uuid doesn't exist"));
    return sendRest(res, shown(found));
  }
  const person = url.searchParams.get('person') ?? '';
  const results = stored.filter((rp) => personB(rp) === person || personA(rp) === person).map(shown);
  sendRest(res, { results });
}

/** JSON as OpenMRS's REST API sends it, not as FHIR. */
function sendRest(res: ServerResponse, body: unknown): void {
  sendJson(res, 200, body, { 'Content-Type': 'application/json;charset=UTF-8' });
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

type Named = Pick<RelatedPerson, 'name' | 'gender' | 'birthDate' | 'address'>;

function nameOf(person: Named | undefined): string {
  const name = person?.name?.[0];
  return [...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
}

/** A person as OpenMRS's default representation shows it: with the personal data `v=full` brings along. */
function personOf(uuid: string, person: Named | undefined): Record<string, unknown> {
  const display = nameOf(person);
  const address = person?.address?.[0];
  return {
    uuid,
    display,
    gender: GENDERS[person?.gender ?? 'unknown'] ?? 'U',
    birthdate: person?.birthDate ?? null,
    preferredName: { display },
    preferredAddress: address ? { display: [...(address.line ?? []), address.city].filter(Boolean).join(', ') } : null,
    voided: false,
  };
}

/** The relationship in the full representation (RelationshipResource1_9), from which the others are cut. */
function relationshipOf(repo: SandboxRepository, rp: RelatedPerson): Record<string, unknown> {
  const type = typeOf(rp);
  const child = repo.record('Patient', personB(rp))?.resource as Named | undefined;
  const a = personOf(personA(rp), rp);
  const b = personOf(personB(rp), child);
  return {
    uuid: rp.id,
    display: `${a.display} is the ${type.aIsToB} of ${b.display}`,
    personA: a,
    relationshipType: { display: `${type.aIsToB}/${type.bIsToA}`, ...type, retired: false },
    personB: b,
    voided: false,
    startDate: rp.period?.start ?? null,
    endDate: rp.period?.end ?? null,
  };
}

const refOf = (value: unknown): unknown => {
  const { uuid, display } = value as Record<string, unknown>;
  return { uuid, display };
};

function represent(full: Record<string, unknown>, rep: Representation): Record<string, unknown> {
  if (rep.kind === 'custom') return project(full, rep.fields);
  if (rep.kind === 'full') return full;
  if (rep.kind === 'ref') return refOf(full) as Record<string, unknown>;
  const { personA: a, personB: b, relationshipType: type, ...rest } = full;
  return { ...rest, personA: refOf(a), relationshipType: refOf(type), personB: refOf(b) };
}
