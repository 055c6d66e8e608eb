// Paging links are followed on the source's own origin: the bearer token goes with every request, so a
// next link naming another host (a proxy's inside address, or a hostile server) must never receive it.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';

const TOKEN = 'source-bearer-token-value';

async function listen(handler: (req: IncomingMessage) => unknown): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    req.resume();
    const answer = handler(req);
    res.writeHead(200, { 'content-type': typeof answer === 'string' ? 'text/plain' : 'application/fhir+json' });
    res.end(typeof answer === 'string' ? answer : JSON.stringify(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A FHIR source client at `baseUrl` that sends the bearer TOKEN with every call. */
function bearerClient(baseUrl: string): FhirSourceClient {
  const settings = { id: 'emr', kind: 'fhir', baseUrl, timeoutMs: 2000, auth: { type: 'bearer', token: TOKEN } };
  return new FhirSourceClient(settings as unknown as SourceSettings, { logger: silentLogger, retryBaseMs: 1 });
}

describe('what a FHIR or DHIS2 source answers', () => {
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
      // A body that is not JSON, naming a patient (a login page, a proxy error, a misrouted report).
      if (req.url?.includes('garbled') || req.url?.includes('/api/'))
        return 'Xylophonia Quetzal NID-998877 born 1987-07-23';
      if (req.url?.startsWith('/emr-a/fhir/Patient') && !req.url.includes('_getpages'))
        return {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: [{ resource: { resourceType: 'Patient', id: 'a1' } }],
          // A HAPI behind a gateway that serves it under another path writes its own inside address.
          link: [{ relation: 'next', url: `${elsewhere.origin}/fhir/Patient?_getpages=def&_getpagesoffset=1` }],
        };
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
    const client = bearerClient(`${emr.origin}/fhir`);
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

  it('follows a next link written for the server inside a gateway on the gateway path that was configured', async () => {
    const client = bearerClient(`${emr.origin}/emr-a/fhir`);
    const patients = await client.searchAll('Patient', {});
    assert.deepEqual(
      patients.map((p) => p.id),
      ['a1', 'p2'],
    );
    const paged = seen.find((s) => s.url?.includes('_getpages=def'));
    assert.equal(paged?.at, 'emr');
    assert.match(paged?.url ?? '', /^\/emr-a\/fhir\/Patient\?_getpages=def/);
  });

  it('fail without quoting the body in the error or its cause (FHIR and DHIS2 alike)', async () => {
    const base = { id: 'emr', timeoutMs: 2000, auth: { type: 'none' } };
    const fhir = new FhirSourceClient(
      { ...base, kind: 'fhir', baseUrl: `${emr.origin}/fhir` } as unknown as SourceSettings,
      {
        logger: silentLogger,
        retryBaseMs: 1,
        attempts: 1,
      },
    );
    const dhis2 = new Dhis2Client({ ...base, kind: 'dhis2', baseUrl: emr.origin } as unknown as SourceSettings, {
      logger: silentLogger,
      retryBaseMs: 1,
      attempts: 1,
    });
    for (const call of [() => fhir.read('Patient', 'garbled'), () => dhis2.trackedEntity('TeGarbled01')]) {
      const err = await call().then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e as Error,
      );
      const shown = JSON.stringify({ message: err.message, cause: String(err.cause), stack: err.stack });
      assert.ok(!shown.includes('Xylophonia'), shown);
    }
  });

  /** Headers, then a body that never ends: slowly (`…/trickle…`), or as fast as the socket takes it (`…/flood…`). */
  async function endlessServer(opening: string) {
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(opening);
      const chunk = Buffer.alloc(req.url?.includes('flood') ? 1_048_576 : 1024, 32);
      const pump = () => {
        if (res.destroyed) return;
        res.write(chunk, () => setTimeout(pump, req.url?.includes('flood') ? 0 : 10));
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      requests,
      close: async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  it('a DHIS2 answer whose body never ends fails at the timeout, and one past 64 MB is refused', {
    timeout: 60_000,
  }, async () => {
    const endless = await endlessServer('{"trackedEntities":[');
    try {
      const dhis2At = (path: string, timeoutMs: number) =>
        new Dhis2Client(
          {
            id: 'tracker',
            kind: 'dhis2',
            baseUrl: `${endless.origin}/${path}`,
            timeoutMs,
            auth: { type: 'none' },
          } as never,
          { logger: silentLogger, retryBaseMs: 1, attempts: 1 },
        );
      await assert.rejects(dhis2At('trickle', 800).trackedEntityPage({}), /list tracked entities failed/);
      const flood = dhis2At('flood', 30_000);
      await assert.rejects(flood.trackedEntityPage({}), /larger than 64 MB.*pageSize/);
    } finally {
      await endless.close();
    }
  });

  it('a FHIR answer past 64 MB is refused at once and not asked again; one that never ends fails at the timeout', {
    timeout: 60_000,
  }, async () => {
    // fhir-kit-client reads answers whole: without the bridge's dispatcher, the flood grew memory until
    // the timeout cut it (bandwidth × timeout), and each retry read it again.
    const endless = await endlessServer('{"resourceType":"Bundle","type":"searchset","entry":[');
    try {
      const fhirAt = (path: string, timeoutMs: number) =>
        new FhirSourceClient(
          { id: 'emr', kind: 'fhir', baseUrl: `${endless.origin}/${path}`, timeoutMs, auth: { type: 'none' } } as never,
          { logger: silentLogger, retryBaseMs: 1 },
        );
      const flood = fhirAt('flood', 30_000);
      await assert.rejects(flood.searchPage('Patient', {}), (err: Error) => {
        assert.match(
          err.message,
          /^search Patient failed: the answer is larger than 64 MB \(lower sources\[\]\.poll\.pageSize of source emr\)$/,
        );
        assert.equal((err as { retryable?: boolean }).retryable, false);
        return true;
      });
      await assert.rejects(flood.read('Patient', 'p1'), {
        name: 'FhirSourceError',
        message: 'read Patient failed: the answer is larger than 64 MB',
      });
      assert.equal(endless.requests.length, 2, 'one request per call: an answer too large is not asked for again');
      flood.close();
      await assert.rejects(fhirAt('trickle', 800).searchPage('Patient', {}), /search Patient failed: timeout/);
    } finally {
      await endless.close();
    }
  });

  it('close() ends a FHIR or DHIS2 call waiting on a silent server at once, and refuses the next', {
    timeout: 30_000,
  }, async () => {
    const silent = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const base = { id: 'slow', timeoutMs: 60_000, auth: { type: 'none' } };
      const fhir = new FhirSourceClient({ ...base, kind: 'fhir', baseUrl: `${origin}/fhir` } as never, {
        logger: silentLogger,
      });
      const dhis2 = new Dhis2Client({ ...base, kind: 'dhis2', baseUrl: origin } as never, { logger: silentLogger });
      const waiting = [fhir.searchPage('Patient', {}), dhis2.trackedEntityPage({})];
      for (const call of waiting) call.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 100)); // both requests are out
      fhir.close();
      dhis2.close();
      for (const call of waiting) await assert.rejects(call, /stopping/);
      await assert.rejects(fhir.read('Patient', 'x'), /stopping/);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
  it('times a call out even when garbage collection runs while it waits (FHIR and DHIS2)', {
    timeout: 30_000,
  }, async () => {
    // Node 20 can collect an AbortSignal.timeout held only inside AbortSignal.any (nodejs/node#57736).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const silent = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const collecting = setInterval(gc, 20);
    try {
      const base = { id: 'slow', timeoutMs: 500, auth: { type: 'none' } };
      const fhir = new FhirSourceClient({ ...base, kind: 'fhir', baseUrl: `${origin}/fhir` } as never, {
        logger: silentLogger,
        attempts: 1,
      });
      const dhis2 = new Dhis2Client({ ...base, kind: 'dhis2', baseUrl: origin } as never, {
        logger: silentLogger,
        attempts: 1,
      });
      await assert.rejects(fhir.searchPage('Patient', {}), /timeout/);
      await assert.rejects(dhis2.trackedEntityPage({}), /timeout/);
    } finally {
      clearInterval(collecting);
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
