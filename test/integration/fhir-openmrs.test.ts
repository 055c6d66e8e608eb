// The shipped FHIR mappings against a server that answers as OpenMRS FHIR2 does (the FHIR sandbox's
// `emulate: 'openmrs'`): no Composition (404 "Unknown resource type"), no Observation?focus= nor
// RelatedPerson?patient= (400 not-supported), and a CapabilityStatement that lists neither. Before, every
// Patient's context failed on the Composition search: a dead row for each, and every pass failed. Only the
// server's "not supported" makes a search empty: a 5xx, or a 400 about a value, still fails it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { HttpFailure, outcomeOf } from '../../src/sandbox/fhir/http-util.js';
import { type FhirSandbox, startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { assertDeliveredOnce, eventsBySubject, type Harness, startHarness } from './helpers/bridge-harness.js';

describe('FHIR source that answers as OpenMRS FHIR2', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ fhirEmulate: 'openmrs' });
  });
  after(async () => {
    await h?.close();
  });

  it('delivers births and deaths with the shipped mappings, each once, and passes', async () => {
    await h.writeBirths(0, 2);
    await h.writeDeaths(0, 1);
    const first = await h.bridge.syncOnce();
    assert.ok(first.ok, `sync ok: ${JSON.stringify(first.rows.map((r) => [r.state, r.lastError]))}`);
    await assertDeliveredOnce(h, 3);
    const types = [...(await eventsBySubject(h)).values()].map((event) => event.type).sort();
    assert.deepEqual(types, ['birth', 'birth', 'death']);
    const again = await h.bridge.syncOnce();
    assert.ok(again.ok);
    assert.equal(again.report.mapped.inserted, 0);
  });
});

describe('context searches of an OpenMRS-like server', () => {
  let sandbox: FhirSandbox;
  let client: FhirSourceClient;
  before(async () => {
    sandbox = await startFhirSandboxWith(
      { port: 0, emulate: 'openmrs', logger: silentLogger },
      {
        beforeSearch: (type, query) => {
          if (type === 'Encounter') throw new HttpFailure(503, outcomeOf('transient', 'database unavailable'));
          if (query.get('date') === 'never') throw new HttpFailure(400, outcomeOf('invalid', 'bad date'));
        },
      },
    );
    client = new FhirSourceClient(
      {
        id: 'emr',
        kind: 'fhir',
        baseUrl: sandbox.baseUrl,
        auth: { type: 'none' },
        timeoutMs: 5_000,
        poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 30, pageSize: 100 },
        mappings: ['birth.fhir'],
      },
      { logger: silentLogger, attempts: 1 },
    );
  });
  after(async () => {
    client?.close();
    await sandbox?.close();
  });

  it('finds nothing where the server does not serve the search, and fails where it fails', async () => {
    const fetcher = new CachingFetcher(client);
    assert.deepEqual(await fetcher.search('Composition', { subject: 'Patient/a' }), []);
    assert.deepEqual(await fetcher.search('Observation', { focus: 'Patient/a', code: 'x' }), []);
    assert.deepEqual(await fetcher.search('Observation', { focus: 'Patient/b', code: 'x' }), []);
    // Composition not asked at all (its CapabilityStatement), the focus search once (its 400 not-supported).
    assert.equal(fetcher.reads, 1);
    const status = (code: number) => (err: unknown) => err instanceof FhirSourceError && err.status === code;
    await assert.rejects(fetcher.search('Encounter', { subject: 'Patient/a' }), status(503));
    await assert.rejects(fetcher.search('Observation', { subject: 'Patient/a', date: 'never' }), status(400));
  });
});
