// A call to a FHIR source that times out says which setting to change: a poll page's size is
// sources[].poll.pageSize, so its message names that and the timeout; a read's, or one record's context
// search's, only the timeout (poll.pageSize does not set their size).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';

describe('a FHIR call that times out', () => {
  let silent: Server;
  let client: FhirSourceClient;

  before(async () => {
    silent = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/fhir`;
    client = new FhirSourceClient(
      { id: 'slow', kind: 'fhir', baseUrl, timeoutMs: 300, auth: { type: 'none' } } as never,
      {
        logger: silentLogger,
        attempts: 1,
      },
    );
  });

  after(async () => {
    client.close();
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('names timeoutMs and poll.pageSize for a search page, and is marked timed out', async () => {
    await assert.rejects(client.searchPage('Patient', { _sort: '_lastUpdated', _count: '100' }), (err) => {
      assert.ok(err instanceof FhirSourceError);
      assert.equal(
        err.message,
        'search Patient failed: timeout: no answer within 300 ms (raise sources[].timeoutMs or lower sources[].poll.pageSize of source slow)',
      );
      assert.equal(err.timedOut, true);
      assert.equal(err.retryable, true);
      return true;
    });
  });

  it('names only timeoutMs for a read and for one record context search', async () => {
    await assert.rejects(client.read('Patient', 'p1'), {
      message: 'read Patient failed: timeout: no answer within 300 ms (raise sources[].timeoutMs of source slow)',
    });
    await assert.rejects(new CachingFetcher(client).search('Encounter', { subject: 'Patient/p1' }), {
      message: 'search Encounter failed: timeout: no answer within 300 ms (raise sources[].timeoutMs of source slow)',
    });
  });
});
