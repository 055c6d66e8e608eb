// A 400 that is a servlet container's or proxy's HTML page (Tomcat's "Request header is too large") refuses
// the request's length, not a value of it: `foreign`, so the fetcher steps the batch down and keeps the size.
// A 400 that is no FHIR answer but no page either (a non-conformant server's `{"error": …}` as
// application/json) still concerns the record asked for: not foreign, so the pipeline keeps that record dead
// and the pass goes on, as before the Tomcat rule.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { mayConcernOneRecord } from '../../src/sources/shared/source-error.js';

const ANSWERS: Record<string, { type: string; body: string }> = {
  tomcat: {
    type: 'text/html;charset=utf-8',
    body: '<!doctype html><html lang="en"><head><title>HTTP Status 400 – Bad Request</title></head><body><p><b>Message</b> Request header is too large</p></body></html>',
  },
  untyped: { type: '', body: '<html><body>400 Bad Request</body></html>' },
  json: { type: 'application/json', body: '{"error":"invalid id"}' },
  text: { type: 'text/plain', body: 'invalid id' },
};

describe('FHIR source client: a 400 that is no FHIR answer', () => {
  let server: Server;
  let client: FhirSourceClient;

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      const answer = ANSWERS[(req.url ?? '').split('/').pop() ?? ''];
      res.writeHead(400, answer?.type ? { 'content-type': answer.type } : {});
      res.end(answer?.body ?? '');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const settings = {
      id: 'emr',
      kind: 'fhir',
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`,
      timeoutMs: 2000,
      auth: { type: 'none' },
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

  const failureOf = async (id: string) => {
    const err = await client.read('Patient', id).then(
      () => assert.fail('expected the read to fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FhirSourceError);
    return err;
  };

  for (const page of ['tomcat', 'untyped']) {
    it(`takes an HTML page (${page}) for a front refusing the request`, async () => {
      const err = await failureOf(page);
      assert.equal(err.status, 400);
      assert.equal(err.foreign, true);
      assert.equal(mayConcernOneRecord(err), false);
    });
  }

  for (const body of ['json', 'text']) {
    it(`takes a ${body} body for the server's own answer about the record`, async () => {
      const err = await failureOf(body);
      assert.equal(err.status, 400);
      assert.equal(err.foreign, false);
      assert.equal(mayConcernOneRecord(err), true);
    });
  }
});
