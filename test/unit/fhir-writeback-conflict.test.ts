// A FHIR server that reports a stale If-Match as 409 (HAPI's version conflict, STU3 servers) rather than
// R4's 412. Our sandbox answers 412 (see writeback-fhir.test.ts), so this server is a stand-in: the first
// conditional PUT loses to a concurrent write, as HAPI reports it.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { FhirWriteBack } from '../../src/sources/writeback/fhir-target.js';

describe('FHIR write-back against a server that answers a version conflict with 409', () => {
  let server: Server;
  let version = 1;
  const requests: string[] = [];
  let stored: Record<string, unknown> | undefined;
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        requests.push(`${req.method} if-match=${req.headers['if-match'] ?? '-'}`);
        res.setHeader('content-type', 'application/fhir+json');
        if (req.method === 'GET') {
          res.end(
            JSON.stringify(stored ?? { resourceType: 'Patient', id: 'p1', meta: { versionId: String(version) } }),
          );
          return;
        }
        if (req.headers['if-match'] !== `W/"${version}"`) {
          res.statusCode = 409;
          res.end(
            JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'conflict' }] }),
          );
          return;
        }
        version++;
        stored = { ...JSON.parse(body), meta: { versionId: String(version) } };
        res.end(JSON.stringify(stored));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads the record again and writes, instead of abandoning the job', async () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const settings = {
      id: 'emr',
      kind: 'fhir',
      baseUrl: `http://127.0.0.1:${port}`,
      auth: { type: 'none' },
      timeoutMs: 5000,
    } as unknown as SourceSettings;
    const client = new FhirSourceClient(settings, { logger: silentLogger });
    // Another write lands between our read and our PUT: the version moves on under us.
    const read = client.read.bind(client);
    let raced = false;
    client.read = async (type, id) => {
      const current = await read(type, id);
      if (!raced) {
        raced = true;
        version++;
      }
      return current;
    };
    const target = new FhirWriteBack(client, {
      enabled: true,
      target: 'identifier',
      resource: 'subject',
      identifierSystem: 'http://opencrvs.org/tracking-id',
      maxAttempts: 12,
      baseDelayMs: 5000,
      maxDelayMs: 3_600_000,
    });
    const job = {
      rowId: 1,
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/p1',
      sourceRef: 'Encounter/e1',
      trackingId: 'B7XK2P',
      eventId: null,
    };
    assert.equal(await target.write(job), 'written');
    assert.deepEqual(requests, ['GET if-match=-', 'PUT if-match=W/"1"', 'GET if-match=-', 'PUT if-match=W/"2"']);
    assert.deepEqual((stored?.identifier as unknown[])?.[0], {
      system: 'http://opencrvs.org/tracking-id',
      value: 'B7XK2P',
    });
  });
});
