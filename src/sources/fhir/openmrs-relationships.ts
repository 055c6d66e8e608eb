// The type of a newborn's relationships on OpenMRS, which FHIR2 leaves out of RelatedPerson (its translator
// fills no `relationship`): read from the OpenMRS REST API, opt-in per source (`sources[].openmrs`).
//
// What the REST API answers (openmrs-module-webservices.rest): `GET <rest>/relationship?person=<uuid>` is
// RelationshipSearchHandler's "by person" query, PersonService.getRelationshipsByPerson: the person's unvoided
// relationships, as person A or as person B, paged (`links` rel `next` past the first page). Each result is
// asked in a custom representation (LISTING_REPRESENTATION) with only what typing reads: `v=full` would bring
// every linked person's name, birth date and address (and the relationship's `display`, "<A> is the Parent of
// <B>"), which the bridge has no use for. FHIR2 shows each relationship as a RelatedPerson whose id is the
// relationship's uuid, person A the related person and person B the `patient` (RelatedPersonTranslatorImpl).
// So a child's RelatedPersons are the results with the child as person B, matched by uuid.
//
// The core type "Parent/Child" (uuid 8d91a210-…, aIsToB Parent) with the child as B makes person A its parent:
// a woman the mother (v3 RoleCode MTH), a man the father (FTH), anyone else a parent of no known sex (PRN).
// Any other type keeps its name as the relationship's text and no parental code: the mapping takes a woman so
// linked (a clinician in "Doctor/Patient", an aunt) neither as the mother nor as the one untyped woman linked.
import type { Resource } from '@medplum/fhirtypes';
import { isObject } from '../../util/is-object.js';

/** OpenMRS core's "Parent/Child" relationship type (A is the parent of B). */
export const PARENT_CHILD_TYPE = '8d91a210-c2cc-11de-8d13-0010c6dffd0f';

const ROLE_CODE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';

/** One relationship of the REST listing, as far as typing needs it. */
export interface RestRelationship {
  uuid: string;
  personA: string;
  personB: string;
  /** personA's gender as OpenMRS keeps it (M, F, O, U…), '' when absent. */
  genderA: string;
  typeUuid: string;
  /** The type's name from A to B ("Parent", "Doctor"…), '' when absent. */
  aIsToB: string;
}

/** What the listing answered: its relationships, and whether it had more pages than the one read. */
export interface RestListing {
  relationships: RestRelationship[];
  more: boolean;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * The REST answer read, or undefined when it is no relationship listing (`results` missing: an HTML page, a
 * login page, another resource). Voided relationships are left out (the search gives none; a site's
 * override might), and so is a result without its uuids.
 */
export function parseListing(body: unknown): RestListing | undefined {
  if (!isObject(body) || !Array.isArray(body.results)) return undefined;
  const relationships: RestRelationship[] = [];
  for (const result of body.results) {
    if (!isObject(result) || result.voided === true) continue;
    const a = isObject(result.personA) ? result.personA : {};
    const b = isObject(result.personB) ? result.personB : {};
    const type = isObject(result.relationshipType) ? result.relationshipType : {};
    const relationship = {
      uuid: text(result.uuid),
      personA: text(a.uuid),
      personB: text(b.uuid),
      genderA: text(a.gender).toUpperCase(),
      typeUuid: text(type.uuid),
      aIsToB: text(type.aIsToB),
    };
    if (relationship.uuid && relationship.personA && relationship.personB) relationships.push(relationship);
  }
  const links = Array.isArray(body.links) ? body.links : [];
  const more = links.some((link) => isObject(link) && link.rel === 'next');
  return { relationships, more };
}

/** The relationship code a relationship gives person A towards the child (see the file's comment). */
function relationshipOf(
  rel: RestRelationship,
): NonNullable<Extract<Resource, { resourceType: 'RelatedPerson' }>['relationship']> {
  if (rel.typeUuid !== PARENT_CHILD_TYPE) return [{ text: rel.aIsToB || 'related (OpenMRS relationship type)' }];
  const code = rel.genderA === 'F' ? 'MTH' : rel.genderA === 'M' ? 'FTH' : 'PRN';
  const display = code === 'MTH' ? 'mother' : code === 'FTH' ? 'father' : 'parent';
  return [{ coding: [{ system: ROLE_CODE_SYSTEM, code, display }], text: rel.aIsToB || 'Parent' }];
}

/**
 * The child's RelatedPersons with their relationship typed from the listing: each matched by id to the
 * relationship of that uuid with the child as person B. One the listing does not show so (voided or
 * removed since FHIR2 served it, or not the child's) is left out: its type is not known, and untyped it
 * would be taken for the mother by the mapping's rule for untyped women. One FHIR2 already typed is kept
 * as it is.
 */
export function typedRelations(related: readonly Resource[], childId: string, listing: RestListing): Resource[] {
  const byUuid = new Map(listing.relationships.filter((rel) => rel.personB === childId).map((rel) => [rel.uuid, rel]));
  const typed: Resource[] = [];
  for (const resource of related) {
    if (resource.resourceType !== 'RelatedPerson') continue;
    if (resource.relationship?.length) {
      typed.push(resource);
      continue;
    }
    const rel = resource.id === undefined ? undefined : byUuid.get(resource.id);
    if (rel) typed.push({ ...resource, relationship: relationshipOf(rel) });
  }
  return typed;
}

/**
 * The properties read of each relationship (`v=`): its uuid and `voided`, person A's uuid and gender (mother or
 * father), the type's uuid (Parent/Child) and aIsToB (its name otherwise), person B's uuid (the child?). No
 * name, birth date, address nor `display`. A nested `name:(…)` is that property in a custom representation of
 * its own (openmrs-module-webservices.rest's getCustomRepresentationDescription). `personB:(uuid)` comes last:
 * the module's older parser (before it counted parentheses character by character) took the properties after
 * a one-property nested list as part of it, and failed the request.
 */
export const LISTING_REPRESENTATION =
  'custom:(uuid,voided,personA:(uuid,gender),relationshipType:(uuid,aIsToB),personB:(uuid))';

/** What errors and logs call the listing (the fetcher's, doctor's). */
export const LISTING_OPERATION = 'OpenMRS REST relationship listing';

/** `<restUrl>/relationship?person=<uuid>&v=<LISTING_REPRESENTATION>`: the person's relationships, both sides, one page. */
export function listingUrl(restUrl: string, personUuid: string): string {
  const query = new URLSearchParams({ person: personUuid, v: LISTING_REPRESENTATION });
  return `${restUrl}/relationship?${query.toString()}`;
}
