// A re-read that answers "not found" withdraws a birth not sent yet: the EMR deleted it. Only the source
// itself can say so. A 404 page from a proxy or gateway in front of it (a route missing while it
// reloads) says nothing about the record, and taking it for a deletion lost the birth for good: a poll
// never brings back a record whose version it has seen. Such a 404 is a failed call, tried again.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Dhis2Client, Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';

const GATEWAY_PAGE = '<html><body><h1>404 Not Found</h1><hr>nginx</body></html>';
const NOT_FOUND_OUTCOME = {
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code: 'not-found', diagnostics: 'Resource Patient/x is not known' }],
};
// DHIS2's WebMessage for a tracked entity it does not have.
const DHIS2_NOT_FOUND = {
  httpStatus: 'Not Found',
  httpStatusCode: 404,
  status: 'ERROR',
  message: 'TrackedEntity with id TeGone00001 could not be found.',
};

/** Answers by the last path segment: the status, the content type and the body. */
const ANSWERS: Record<string, [number, string, string]> = {
  'fhir-gone': [404, 'application/fhir+json', JSON.stringify(NOT_FOUND_OUTCOME)],
  'fhir-deleted': [410, 'application/fhir+json', ''],
  'behind-gateway': [404, 'text/html', GATEWAY_PAGE],
  'empty-404': [404, 'text/plain', ''],
  TeGone00001: [404, 'application/json', JSON.stringify(DHIS2_NOT_FOUND)],
  TeGateway01: [404, 'text/html', GATEWAY_PAGE],
};

describe('what counts as a record the source no longer has', () => {
  let server: Server;
  let fhir: FhirSourceClient;
  let dhis2: Dhis2Client;
  const calls = new Map<string, number>();

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      const last = (req.url ?? '').split('?')[0]?.split('/').pop() ?? '';
      calls.set(last, (calls.get(last) ?? 0) + 1);
      const [status, type, body] = ANSWERS[last] ?? [500, 'text/plain', 'unexpected'];
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const base = { id: 'emr', timeoutMs: 2000, auth: { type: 'none' } };
    const options = { logger: silentLogger, retryBaseMs: 1, attempts: 2 };
    fhir = new FhirSourceClient(
      { ...base, kind: 'fhir', baseUrl: `${origin}/fhir` } as unknown as SourceSettings,
      options,
    );
    dhis2 = new Dhis2Client({ ...base, kind: 'dhis2', baseUrl: origin } as unknown as SourceSettings, options);
  });
  after(() => {
    fhir.close();
    dhis2.close();
    server.close();
  });

  it("FHIR: a 404 with the server's OperationOutcome, or a 410, is a record gone", async () => {
    assert.equal(await fhir.read('Patient', 'fhir-gone'), undefined);
    assert.equal(await fhir.read('Patient', 'fhir-deleted'), undefined);
    assert.equal(calls.get('fhir-gone'), 1, 'not retried: the server answered');
  });

  it('FHIR: a 404 that is no FHIR answer (a gateway page, an empty body) is a failed call, retried', async () => {
    for (const id of ['behind-gateway', 'empty-404']) {
      const err = await fhir.read('Patient', id).then(
        (found) => assert.fail(`taken for a deletion: ${JSON.stringify(found)}`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof FhirSourceError);
      assert.equal(err.retryable, true);
      assert.equal(err.foreign, true, 'marked: the recheck leaves its rows waiting');
      assert.match(err.message, /HTTP 404 \(not a FHIR answer\)/);
      assert.equal(calls.get(id), 2, 'tried again, like a 5xx');
    }
  });

  it("DHIS2: only DHIS2's own 404 is a tracked entity gone; a gateway's is a failed call, retried", async () => {
    assert.equal(await dhis2.trackedEntity('TeGone00001'), undefined);
    const err = await dhis2.trackedEntity('TeGateway01').then(
      (found) => assert.fail(`taken for a deletion: ${JSON.stringify(found)}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof Dhis2SourceError);
    assert.equal(err.retryable, true);
    assert.equal(err.foreign, true);
    assert.match(err.message, /HTTP 404 \(not a DHIS2 answer\)/);
    assert.equal(calls.get('TeGateway01'), 2);
  });
});
