// The doctor's reading of OpenCRVS scopes (both formats) and of FHIR CapabilityStatements.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { missingGrants, scopeFormat } from '../../src/opencrvs/scopes.js';
import {
  capabilityGaps,
  declaresLastUpdated,
  lacksInstanceHistory,
  summarizeCapabilities,
} from '../../src/sources/fhir/capability.js';

describe('missingGrants', () => {
  it('accepts v2.0 scopes that list the event types', () => {
    const scopes = ['type=record.create&event=birth,death', 'type=record.notify&event=birth,death'];
    assert.deepEqual(missingGrants(scopes, '2.0', ['birth', 'death']), []);
  });

  it('reads a v2.0 scope without event= as every event type', () => {
    assert.deepEqual(missingGrants(['type=record.create', 'type=record.notify'], '2.0', ['death']), []);
  });

  it('names each missing grant per event type', () => {
    const scopes = ['type=record.create&event=birth,death', 'type=record.notify&event=birth'];
    assert.deepEqual(missingGrants(scopes, '2.0', ['birth', 'death']), ['record.notify for death']);
  });

  it('reads v1.9 bracket scopes, with and without an event list', () => {
    const scopes = ['notification-api', 'record.create[event=birth|death]', 'record.notify'];
    assert.deepEqual(missingGrants(scopes, '1.9', ['birth', 'death']), []);
    assert.deepEqual(missingGrants(['record.create[event=birth]'], '1.9', ['death']), [
      'record.create for death',
      'record.notify for death',
    ]);
  });

  it("reads each scope in the configured version's format only: the other version's grants nothing", () => {
    // A token of mixed formats (scopeFormat names no version for it): a 1.9 server does not read
    // `type=record.create`, nor a 2.0 server `record.create[…]`.
    const mixed = [
      'record.create[event=birth]',
      'record.notify[event=birth]',
      'type=record.create',
      'type=record.notify',
    ];
    assert.deepEqual(missingGrants(mixed, '1.9', ['birth', 'death']), [
      'record.create for death',
      'record.notify for death',
    ]);
    assert.deepEqual(
      missingGrants(['type=record.create&event=birth', 'type=record.notify&event=birth'], '1.9', ['birth']),
      ['record.create for birth', 'record.notify for birth'],
    );
    assert.deepEqual(missingGrants(mixed, '2.0', ['birth', 'death']), []);
    assert.deepEqual(missingGrants(['record.create', 'record.notify[event=birth]'], '2.0', ['birth']), [
      'record.create for birth',
      'record.notify for birth',
    ]);
  });

  it('does not take a similar-looking scope for the one needed', () => {
    assert.deepEqual(missingGrants(['type=record.read&event=birth', 'type=record.notify'], '2.0', ['birth']), [
      'record.create for birth',
    ]);
  });
});

describe('scopeFormat', () => {
  it("tells the version whose format a token's create and notify grants are in", () => {
    assert.equal(scopeFormat(['type=record.create&event=birth', 'type=record.notify']), '2.0');
    assert.equal(scopeFormat(['notification-api', 'record.create[event=birth|death]', 'record.notify']), '1.9');
  });

  it('claims no version from other scopes, from none, or from grants of both formats', () => {
    assert.equal(scopeFormat(['notification-api', 'type=record.read&event=birth']), undefined);
    assert.equal(scopeFormat([]), undefined);
    assert.equal(scopeFormat(['type=record.create', 'record.notify[event=birth]']), undefined);
  });
});

describe('CapabilityStatement summary', () => {
  const statement = {
    resourceType: 'CapabilityStatement',
    fhirVersion: '4.0.1',
    rest: [
      {
        mode: 'server',
        searchParam: [{ name: '_lastUpdated', type: 'date' }],
        resource: [
          { type: 'Patient', interaction: [{ code: 'read' }, { code: 'search-type' }] },
          { type: 'Encounter', interaction: [{ code: 'read' }] },
          { type: 'Observation' },
          { type: 'Composition', interaction: [{ code: 'read' }, { code: 'history-instance' }] },
        ],
      },
    ],
  };

  it('finds what is missing for polling and reading each type', () => {
    const summary = summarizeCapabilities(statement);
    assert.ok(summary);
    assert.deepEqual(capabilityGaps(summary, 'Patient'), []);
    assert.deepEqual(capabilityGaps(summary, 'Encounter'), ['Encounter search is not listed']);
    assert.deepEqual(capabilityGaps(summary, 'Task'), ['Task is not listed']);
    // Listed without interactions: only the live probe can tell.
    assert.deepEqual(capabilityGaps(summary, 'Observation'), []);
    assert.equal(declaresLastUpdated(summary, 'Observation'), true);
  });

  it('finds the types listed without instance history (a deletion then names no records)', () => {
    const summary = summarizeCapabilities(statement);
    assert.ok(summary);
    assert.equal(lacksInstanceHistory(summary, 'Patient'), true);
    assert.equal(lacksInstanceHistory(summary, 'Composition'), false);
    // Listed without interactions, or not listed: no claim either way, so no warning.
    assert.equal(lacksInstanceHistory(summary, 'Observation'), false);
    assert.equal(lacksInstanceHistory(summary, 'Task'), false);
  });

  it('rejects something that is not a CapabilityStatement', () => {
    assert.equal(summarizeCapabilities({ resourceType: 'OperationOutcome' }), undefined);
    assert.equal(summarizeCapabilities('<html>'), undefined);
  });
});
