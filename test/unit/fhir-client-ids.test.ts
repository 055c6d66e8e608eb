// A resource id goes into the EMR's URL as one path segment below `<base>/<Type>/`: read, lastVersion and
// update (the write-back's) encode it, and never send `.` or `..`, which a URL resolves to the base itself
// or its parent (a credentialed read of `<base>/` or of the system-wide `<base>/_history`, a PUT there).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';

describe('FHIR source client ids', () => {
  const seen: string[] = [];
  let server: Server;
  let client: FhirSourceClient;

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      seen.push(req.url ?? '');
      res.writeHead(404, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const settings = {
      id: 'emr',
      kind: 'fhir',
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/emr-a/fhir`,
      timeoutMs: 2000,
      auth: { type: 'bearer', token: 'emr-access-token-123456' },
    };
    client = new FhirSourceClient(settings as unknown as SourceSettings, {
      logger: silentLogger,
      attempts: 1,
      retryBaseMs: 1,
    });
  });
  after(() => {
    client.close();
    server.close();
  });
  beforeEach(() => {
    seen.length = 0;
  });

  it('reads a FHIR id as it is, on <base>/<Type>/<id>', async () => {
    assert.equal(await client.read('Patient', 'a.b-1'), undefined, 'a 404 OperationOutcome: gone');
    assert.equal(await client.lastVersion('Patient', 'a.b-1'), undefined);
    assert.deepEqual(seen, ['/emr-a/fhir/Patient/a.b-1', '/emr-a/fhir/Patient/a.b-1/_history?_count=5']);
  });

  it('encodes an id as one path segment: no other path, no query', async () => {
    await client.read('Patient', '../../admin?x=1');
    await client.read('Patient', '..%2Fadmin');
    await client.lastVersion('Patient', 'a/b#c');
    await assert.rejects(client.update({ resourceType: 'Patient', id: '../x?y' }), FhirSourceError);
    assert.deepEqual(seen, [
      '/emr-a/fhir/Patient/..%2F..%2Fadmin%3Fx%3D1',
      '/emr-a/fhir/Patient/..%252Fadmin',
      '/emr-a/fhir/Patient/a%2Fb%23c/_history?_count=5',
      '/emr-a/fhir/Patient/..%2Fx%3Fy',
    ]);
  });

  it('sends nothing for `.` or `..`: read and update refuse them, lastVersion has no version of them', async () => {
    for (const id of ['.', '..', '']) {
      await assert.rejects(
        client.read('Patient', id),
        (err: unknown) => err instanceof FhirSourceError && !err.retryable,
        JSON.stringify(id),
      );
      assert.equal(await client.lastVersion('Patient', id), undefined);
      await assert.rejects(
        client.update({ resourceType: 'Patient', id }),
        (err: unknown) => err instanceof FhirSourceError && !err.retryable,
        `update ${JSON.stringify(id)}`,
      );
    }
    await assert.rejects(client.read('../Patient', '1'), FhirSourceError, 'nor a type that is none');
    assert.deepEqual(seen, [], 'no request reached the EMR');
  });

  it('sends nothing for a type of the right shape that is no FHIR R4 resource type, and does not repeat it', async () => {
    // A reference in a record read from the EMR (`subject.reference: "Aaaa…/x"`) names the type.
    const long = `A${'a'.repeat(300_000)}`;
    for (const type of [long, 'TrackedEntity', 'Maternity']) {
      const refused = (err: unknown) =>
        err instanceof FhirSourceError && !err.retryable && !err.message.includes(type) && err.message.length < 100;
      await assert.rejects(client.read(type, 'x'), refused, type.slice(0, 20));
      assert.equal(await client.lastVersion(type, 'x'), undefined);
      await assert.rejects(client.update({ resourceType: type as 'Patient', id: 'x' }), refused, type.slice(0, 20));
    }
    assert.deepEqual(
      seen.map((url) => url.slice(0, 60)),
      [],
      'no request reached the EMR',
    );
  });
});
