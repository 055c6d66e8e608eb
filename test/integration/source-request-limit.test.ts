// A source is a hospital's production system: however much work a pass or a burst of notifications
// brings, the bridge keeps at most `maxConcurrentRequests` calls in flight to it, and every call still
// gets its answer.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { sourceSettings } from './helpers/source-settings.js';

/**
 * Holds every GET until as many as the test expects are held at once (then 50 ms more, time for a call past the
 * bound to arrive too), or until none arrived for 300 ms (fewer than expected), counting the requests it holds
 * at once. Answering after a fixed delay instead let a loaded machine answer the first calls before the last
 * were sent, and a bound of 8 was seen as 6.
 */
function slowServer(answer: (path: string) => unknown) {
  const seen = { inFlight: 0, maxInFlight: 0, requests: 0, expected: 1 };
  let held: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    const now = held;
    held = [];
    for (const send of now) send();
  };
  const server = createServer((req, res) => {
    seen.requests++;
    seen.inFlight++;
    seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
    held.push(() => {
      seen.inFlight--;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer(req.url ?? '')));
    });
    clearTimeout(timer);
    timer = setTimeout(release, held.length >= seen.expected ? 50 : 300);
  });
  /** A new test: `expected` calls held at once release them. */
  const expect = (expected: number) => Object.assign(seen, { maxInFlight: 0, expected });
  return { server, seen, expect };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const settings = (kind: 'fhir' | 'dhis2', baseUrl: string, maxConcurrentRequests?: number) =>
  sourceSettings(baseUrl, { kind, maxConcurrentRequests });

describe('calls in flight to a source are bounded', () => {
  const fhir = slowServer((path) => ({ resourceType: 'Patient', id: path.split('/').pop() }));
  const dhis2 = slowServer((path) => ({ trackedEntity: path.split('?')[0]?.split('/').pop() }));
  let fhirUrl = '';
  let dhis2Url = '';

  before(async () => {
    fhirUrl = `${await listen(fhir.server)}/fhir`;
    dhis2Url = await listen(dhis2.server);
  });

  after(() => {
    fhir.server.close();
    dhis2.server.close();
  });

  it('FHIR: 30 reads at once reach the server at most 3 at a time, and all are answered', async () => {
    fhir.expect(3);
    const client = new FhirSourceClient(settings('fhir', fhirUrl, 3), { logger: silentLogger });
    const ids = Array.from({ length: 30 }, (_, i) => `p${i}`);
    const read = await Promise.all(ids.map((id) => client.read('Patient', id)));
    assert.deepEqual(
      read.map((r) => r?.id),
      ids,
    );
    assert.equal(fhir.seen.maxInFlight, 3);
  });

  it('FHIR: the default is 8', async () => {
    fhir.expect(8);
    const client = new FhirSourceClient(settings('fhir', fhirUrl), { logger: silentLogger });
    await Promise.all(Array.from({ length: 30 }, (_, i) => client.read('Patient', `q${i}`)));
    assert.equal(fhir.seen.maxInFlight, 8);
  });

  it('DHIS2: 20 tracked-entity reads at once reach the server at most 2 at a time', async () => {
    dhis2.expect(2);
    const client = new Dhis2Client(settings('dhis2', dhis2Url, 2), { logger: silentLogger });
    const uids = Array.from({ length: 20 }, (_, i) => `te${String(i).padStart(9, '0')}`);
    const read = await Promise.all(uids.map((uid) => client.trackedEntity(uid)));
    assert.deepEqual(
      read.map((r) => r?.trackedEntity),
      uids,
    );
    assert.equal(dhis2.seen.maxInFlight, 2);
  });
});
