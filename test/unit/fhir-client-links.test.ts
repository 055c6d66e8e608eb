// Paging links are followed on the source's own origin: the bearer token goes with every request, so a
// next link naming another host (a proxy's inside address, or a hostile server) must never receive it.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';

const TOKEN = 'source-bearer-token-value';

async function listen(handler: (req: IncomingMessage) => unknown): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(handler(req)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('FHIR source paging links', () => {
  const seen: Array<{ at: string; url?: string; auth?: string }> = [];
  let emr: { server: Server; origin: string };
  let elsewhere: { server: Server; origin: string };

  before(async () => {
    elsewhere = await listen((req) => {
      seen.push({ at: 'elsewhere', url: req.url, auth: req.headers.authorization });
      return { resourceType: 'Bundle', type: 'searchset', entry: [] };
    });
    emr = await listen((req) => {
      seen.push({ at: 'emr', url: req.url, auth: req.headers.authorization });
      if (req.url?.startsWith('/fhir/Patient'))
        return {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: [{ resource: { resourceType: 'Patient', id: 'p1' } }],
          // As a HAPI behind a proxy (or a hostile server) writes it: another origin.
          link: [{ relation: 'next', url: `${elsewhere.origin}/fhir?_getpages=abc&_getpagesoffset=1` }],
        };
      return {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [{ resource: { resourceType: 'Patient', id: 'p2' } }],
      };
    });
  });
  after(async () => {
    await new Promise((resolve) => emr.server.close(resolve));
    await new Promise((resolve) => elsewhere.server.close(resolve));
  });

  it('follows a next link that names another origin on the configured origin, token included, never elsewhere', async () => {
    const settings = {
      id: 'emr',
      kind: 'fhir',
      baseUrl: `${emr.origin}/fhir`,
      timeoutMs: 2000,
      auth: { type: 'bearer', token: TOKEN },
    } as unknown as SourceSettings;
    const client = new FhirSourceClient(settings, { logger: silentLogger, retryBaseMs: 1 });
    const patients = await client.searchAll('Patient', {});
    assert.deepEqual(
      patients.map((p) => p.id),
      ['p1', 'p2'],
    );
    assert.deepEqual(
      seen.filter((s) => s.at === 'elsewhere'),
      [],
      'the other origin got no request',
    );
    const paged = seen.find((s) => s.url?.startsWith('/fhir?_getpages=abc'));
    assert.equal(paged?.at, 'emr');
    assert.equal(paged?.auth, `Bearer ${TOKEN}`);
  });
});
