// What the request log line keeps of a path: the bridge's routes, ledger row ids, never a record id nor a
// segment of a path the bridge does not serve.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routeShape } from '../../src/http/route-shape.js';

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
