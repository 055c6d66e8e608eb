// A newborn's RelatedPersons typed from OpenMRS's REST relationship listing (openmrs-relationships.ts): the
// cases the HTTP tests (fhir-openmrs.test.ts) do not reach, each of which would otherwise leave a person
// untyped, and so open to being taken for the mother by the mapping's rule for untyped women.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { PARENT_CHILD_TYPE, parseListing, typedRelations } from '../../src/sources/fhir/openmrs-relationships.js';

const CHILD = 'child-uuid';
const related = (id: string, extra: Record<string, unknown> = {}): Resource =>
  ({ resourceType: 'RelatedPerson', id, patient: { reference: `Patient/${CHILD}` }, ...extra }) as Resource;
const result = (uuid: string, genderA: string, typeUuid: string, extra: Record<string, unknown> = {}) => ({
  uuid,
  personA: { uuid: `${uuid}-a`, gender: genderA },
  personB: { uuid: CHILD },
  relationshipType: { uuid: typeUuid, aIsToB: typeUuid === PARENT_CHILD_TYPE ? 'Parent' : 'Doctor', bIsToA: 'Child' },
  voided: false,
  ...extra,
});
const codes = (resources: Resource[]) =>
  resources.map((r) => {
    const concept = r.resourceType === 'RelatedPerson' ? r.relationship?.[0] : undefined;
    return [r.id, concept?.coding?.[0]?.code ?? concept?.text];
  });

describe('OpenMRS relationship types from the REST listing', () => {
  it('types Parent/Child by the parent gender, other types by name, and leaves out what the listing does not show', () => {
    const listing = parseListing({
      results: [
        result('mother', 'F', PARENT_CHILD_TYPE),
        result('father', 'm', PARENT_CHILD_TYPE),
        result('parent', 'U', PARENT_CHILD_TYPE),
        result('doctor', 'F', 'doctor-type'),
        result('voided', 'F', PARENT_CHILD_TYPE, { voided: true }),
        // The child as person A: a relationship of the other person's, not one of the child's RelatedPersons.
        { ...result('own-child', 'F', PARENT_CHILD_TYPE), personB: { uuid: 'someone' } },
      ],
    });
    assert.ok(listing);
    const typed = typedRelations(
      ['mother', 'father', 'parent', 'doctor', 'voided', 'own-child', 'unlisted'].map((id) => related(id)),
      CHILD,
      listing,
    );
    assert.deepEqual(codes(typed), [
      ['mother', 'MTH'],
      ['father', 'FTH'],
      ['parent', 'PRN'],
      ['doctor', 'Doctor'],
    ]);
  });

  it('keeps a RelatedPerson FHIR2 typed itself, and says when the listing had more pages', () => {
    const listing = parseListing({ results: [], links: [{ rel: 'next', uri: 'http://emr/…&startIndex=50' }] });
    assert.equal(listing?.more, true);
    const own = related('own', { relationship: [{ coding: [{ code: 'NMTH' }] }] });
    assert.deepEqual(codes(typedRelations([own], CHILD, listing ?? { relationships: [], more: false })), [
      ['own', 'NMTH'],
    ]);
  });

  it('reads no listing from an answer without results (a login page, another resource)', () => {
    assert.equal(parseListing('<html>'), undefined);
    assert.equal(parseListing({ uuid: 'x' }), undefined);
  });
});
