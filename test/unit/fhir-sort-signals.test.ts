// What a search answer says about whether the FHIR server sorted it by _lastUpdated, as asked.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bundle } from '@medplum/fhirtypes';
import { sortEchoed, sortSignals } from '../../src/sources/fhir/sort-signals.js';

const answer = (self?: string, total?: number): Bundle => ({
  resourceType: 'Bundle',
  type: 'searchset',
  ...(self ? { link: [{ relation: 'self', url: self }] } : {}),
  ...(total !== undefined ? { total } : {}),
});

describe('sort signals of a search answer', () => {
  it('sorted: the self link names _sort=_lastUpdated (HAPI, OpenMRS and Medplum echo the search)', () => {
    const page = answer(
      'http://emr/fhir/Patient?_count=500&_lastUpdated=ge2026-01-01T00%3A00%3A00Z&_sort=_lastUpdated',
    );
    assert.equal(sortEchoed(page), true);
    assert.equal(sortSignals(page), 'sorted');
    assert.equal(sortSignals(answer('http://emr/fhir/Patient?_sort=_lastUpdated,_id&_count=5')), 'sorted');
  });

  it('unsorted: the self link names the search but not the sort, or another sort first', () => {
    assert.equal(sortSignals(answer('http://emr/fhir/Patient?_count=500&_lastUpdated=ge2026-01-01')), 'unsorted');
    assert.equal(sortSignals(answer('http://emr/fhir/Patient?_sort=-_lastUpdated&_count=5')), 'unsorted');
  });

  it('blind: neither a self link with a query nor Bundle.total; a total alone is enough to tell', () => {
    assert.equal(sortSignals(answer()), 'blind');
    assert.equal(sortSignals(answer('http://emr/fhir/Patient')), 'blind');
    assert.equal(sortSignals(answer(undefined, 0)), 'sorted');
  });
});
