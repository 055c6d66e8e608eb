// A deleted resource's last version comes from the source's instance history. Servers differ: HAPI and
// Medplum serve it, OpenMRS answers a 4xx for any `_history`, some list versions oldest first. A server
// that cannot answer now (5xx, 429) has no last version to give either, but it is
// then said in the log, and the deletion itself is still recorded (the read showed it): a history read that
// failed the whole evaluation let a deleted birth be sent. The sandbox serves real history
// (bridge-subscription.test.ts); this server stands in for the ones it does not imitate.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';

const version = (versionId: string, lastUpdated: string, valueInteger: number) => ({
  resource: { resourceType: 'Observation', id: 'oldest-first', meta: { versionId, lastUpdated }, valueInteger },
});

/** What the server answers for `Observation/<id>/_history`, by id. */
const ANSWERS: Record<string, { status: number; body: unknown }> = {
  // Oldest first, with the deletion last and another resource's entry in between.
  'oldest-first': {
    status: 200,
    body: {
      resourceType: 'Bundle',
      type: 'history',
      entry: [
        version('1', '2026-11-01T08:00:00Z', 1),
        { resource: { resourceType: 'Observation', id: 'other', meta: { lastUpdated: '2026-11-09T00:00:00Z' } } },
        version('2', '2026-11-01T10:00:00.000+02:00', 2),
        version('3', '2026-11-01T08:30:00Z', 3),
        { request: { method: 'DELETE', url: 'Observation/oldest-first' } },
        // A server that gives the deletion a placeholder resource (no content): not a version to read.
        {
          resource: {
            resourceType: 'Observation',
            id: 'oldest-first',
            meta: { versionId: '4', lastUpdated: '2026-11-02T00:00:00Z' },
          },
          request: { method: 'DELETE', url: 'Observation/oldest-first' },
          response: { status: '410 Gone' },
        },
      ],
    },
  },
  'no-versions': { status: 200, body: { resourceType: 'Bundle', type: 'history' } },
  // Newest first as R4 asks, with no times at all: the first listed is the newest.
  untimed: {
    status: 200,
    body: {
      resourceType: 'Bundle',
      type: 'history',
      entry: [
        { request: { method: 'DELETE', url: 'Observation/untimed' } },
        ...[3, 2, 1].map((v) => ({ resource: { resourceType: 'Observation', id: 'untimed', valueInteger: v } })),
      ],
    },
  },
  'not-supported': { status: 400, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error' }] } },
  'not-found': { status: 404, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error' }] } },
  unavailable: { status: 503, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error' }] } },
  throttled: { status: 429, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error' }] } },
};

describe('reading the last version of a deleted resource', () => {
  let server: Server;
  let client: FhirSourceClient;
  const paths: string[] = [];
  const lines: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      paths.push(req.url ?? '');
      const id = /^\/fhir\/Observation\/([^/]+)\/_history/.exec(req.url ?? '')?.[1] ?? '';
      const answer = ANSWERS[id] ?? { status: 404, body: {} };
      res.writeHead(answer.status, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
    const settings = { id: 'emr', kind: 'fhir', baseUrl, timeoutMs: 2000, auth: { type: 'none' } };
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    client = new FhirSourceClient(settings as unknown as SourceSettings, { logger, retryBaseMs: 1 });
  });
  after(() => {
    client.close();
    server.close();
  });

  it('takes the newest version by lastUpdated, whatever order the server lists them in', async () => {
    const last = await client.lastVersion('Observation', 'oldest-first');
    // 10:00+02:00 is 08:00Z, before 08:30Z: compared as instants, not as strings.
    assert.equal((last as { valueInteger?: number } | undefined)?.valueInteger, 3);
    assert.ok(paths.some((p) => p === '/fhir/Observation/oldest-first/_history?_count=5'));
  });

  it('has none when the server keeps no version or serves no history (a 4xx)', async () => {
    assert.equal(await client.lastVersion('Observation', 'no-versions'), undefined);
    assert.equal(await client.lastVersion('Observation', 'not-supported'), undefined);
    assert.equal(await client.lastVersion('Observation', 'not-found'), undefined);
  });

  it('takes the first listed among versions without a time (R4 lists the newest first)', async () => {
    const last = await client.lastVersion('Observation', 'untimed');
    assert.equal((last as { valueInteger?: number } | undefined)?.valueInteger, 3);
  });

  it('has none, and says so in the log, when the server cannot answer now (5xx, 429)', async () => {
    for (const id of ['unavailable', 'throttled']) {
      lines.length = 0;
      assert.equal(await client.lastVersion('Observation', id), undefined);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0] ?? '', /the last version of a deleted resource could not be read/);
      assert.doesNotMatch(lines[0] ?? '', new RegExp(id), 'the id is not logged');
    }
    lines.length = 0;
    await client.lastVersion('Observation', 'not-supported');
    assert.deepEqual(lines, [], 'a server without history is no problem to report');
  });
});
