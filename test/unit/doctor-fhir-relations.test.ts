// What doctor says of a RelatedPerson?patient= search the server does not declare: the fetcher answers it,
// when the server does not serve it, from the RelatedPerson listing by _lastUpdated (relations-listing.ts);
// only where that listing is not declared either may the mother be left out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contextsOff } from '../../src/doctor/source-checks.js';
import { summarizeCapabilities } from '../../src/sources/fhir/capability.js';

function summary(relatedPersonParams: string[]) {
  const found = summarizeCapabilities({
    resourceType: 'CapabilityStatement',
    rest: [
      {
        mode: 'server',
        resource: [{ type: 'RelatedPerson', searchParam: relatedPersonParams.map((name) => ({ name })) }],
      },
    ],
  });
  assert.ok(found);
  return found;
}

const param = (name: string) => ({ name, parts: [] });
const mappings = [
  {
    id: 'birth.fhir',
    subjectType: 'Patient',
    context: [
      { name: 'linkedPersons', kind: 'search' as const, type: 'RelatedPerson', params: [param('patient')], exprs: [] },
      {
        name: 'namedPersons',
        kind: 'search' as const,
        type: 'RelatedPerson',
        params: [param('patient'), param('name')],
        exprs: [],
      },
    ],
  },
];

describe('doctor on a server that declares no RelatedPerson patient parameter', () => {
  it('says the relations are listed by _lastUpdated instead, not left out, when that listing is declared', () => {
    const { undeclared, relations } = contextsOff(summary(['name', '_lastUpdated']), mappings);
    // Only `patient` alone is answered from the listing.
    assert.deepEqual(undeclared, ['birth.fhir namedPersons (RelatedPerson: patient)']);
    assert.match(relations ?? '', /^RelatedPerson\?patient= is not declared, for birth\.fhir linkedPersons: /);
    assert.match(relations ?? '', /born up to 366 days ago are read from the RelatedPerson listing by _lastUpdated/);
    assert.doesNotMatch(relations ?? '', /left out/);
  });

  it('says the mother is left out if the server refuses the listing its statement does not declare', () => {
    const { relations } = contextsOff(summary(['name']), mappings);
    assert.match(relations ?? '', /does not declare _lastUpdated for RelatedPerson either: .* the mother is left out$/);
  });
});
