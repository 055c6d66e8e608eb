// Before the recheck withdraws a birth whose tracked entity DHIS2 answers 404 for, it asks DHIS2's list
// with includeDeleted=true whether the entity was deleted (DHIS2 also answers 404 for a live one the user
// may not see). The list's uid parameter changed between versions, and only the asked uid may count.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Dhis2Client, Dhis2SourceError } from '../../src/sources/dhis2/client.js';

const PROGRAM = 'IpHINAT79UW';

describe('Dhis2Client.trackedEntityListing', () => {
  let server: Server;
  let origin: string;
  let version = '2.41.3';
  /** What the list answers, by the uid asked (under either parameter). */
  let listing: (uid: string | null) => Array<Record<string, unknown>> = () => [];
  let status = 200;
  const asked: URLSearchParams[] = [];
  let infoCalls = 0;

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      const url = new URL(req.url ?? '/', 'http://fake.invalid');
      res.setHeader('content-type', 'application/json');
      if (url.pathname === '/api/system/info') {
        infoCalls++;
        res.end(JSON.stringify({ version, serverDate: '2025-01-01T00:00:00.000' }));
        return;
      }
      if (url.pathname === '/api/tracker/trackedEntities') {
        asked.push(url.searchParams);
        if (status !== 200) {
          res.statusCode = status;
          res.end(
            JSON.stringify({ httpStatus: 'Bad Request', httpStatusCode: status, status: 'ERROR', message: 'no' }),
          );
          return;
        }
        const uid = url.searchParams.get('trackedEntities') ?? url.searchParams.get('trackedEntity');
        res.end(JSON.stringify({ pager: { page: 1, pageSize: 50 }, trackedEntities: listing(uid) }));
        return;
      }
      res.statusCode = 500;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());
  beforeEach(() => {
    asked.length = 0;
    infoCalls = 0;
    status = 200;
    version = '2.41.3';
  });

  const client = () =>
    new Dhis2Client(
      {
        id: 'dhis2',
        kind: 'dhis2',
        baseUrl: origin,
        timeoutMs: 2000,
        auth: { type: 'none' },
      } as unknown as SourceSettings,
      { logger: silentLogger, retryBaseMs: 1, attempts: 1 },
    );

  it('says deleted, live or unlisted from deleted of the entry with the uid asked', async () => {
    const c = client();
    listing = (uid) => (uid === 'TeDeleted01' ? [{ trackedEntity: uid, deleted: true }] : []);
    assert.equal(await c.trackedEntityListing('TeDeleted01', PROGRAM), 'deleted');
    listing = (uid) => [{ trackedEntity: uid, deleted: false }];
    assert.equal(await c.trackedEntityListing('TeLive00001', PROGRAM), 'live');
    listing = () => [];
    assert.equal(await c.trackedEntityListing('TeHidden001', PROGRAM), 'unlisted');
    // A server that ignored the uid filter lists others, deleted or not: no word on this one.
    listing = () => [{ trackedEntity: 'TeSomeOther', deleted: true }];
    assert.equal(await c.trackedEntityListing('TeHidden001', PROGRAM), 'unlisted');
    const [first] = asked;
    assert.equal(first?.get('trackedEntities'), 'TeDeleted01');
    assert.equal(first?.get('trackedEntity'), null, '2.41 refuses both parameters at once');
    assert.equal(first?.get('program'), PROGRAM);
    assert.equal(first?.get('includeDeleted'), 'true');
    assert.equal(first?.get('fields'), 'trackedEntity,deleted');
    assert.equal(infoCalls, 1, 'the version is asked once per client');
    c.close();
  });

  it("names the uid with 2.40's trackedEntity, and with trackedEntities from 2.41 on (2.42 dropped the old one)", async () => {
    listing = (uid) => [{ trackedEntity: uid, deleted: true }];
    for (const [v, param] of [
      ['2.40.4.1', 'trackedEntity'],
      ['2.41.0', 'trackedEntities'],
      ['2.42.1', 'trackedEntities'],
      ['2.43-SNAPSHOT', 'trackedEntities'],
    ] as const) {
      version = v;
      asked.length = 0;
      const c = client();
      assert.equal(await c.trackedEntityListing('TeDeleted01', PROGRAM), 'deleted', v);
      assert.equal(asked[0]?.get(param), 'TeDeleted01', `${v}: ${param}`);
      c.close();
    }
  });

  it('fails (it does not guess) when the list cannot be read', async () => {
    status = 400;
    const c = client();
    await assert.rejects(c.trackedEntityListing('TeDeleted01', PROGRAM), Dhis2SourceError);
    c.close();
    assert.equal(c.closed, true);
  });

  it('names the org unit filter as the DHIS2 version reads it: orgUnit and ouMode before 2.41', async () => {
    const filter = { program: PROGRAM, orgUnits: 'DiszpKrYNg8,O6uvpzGd5pu', orgUnitMode: 'DESCENDANTS' };
    listing = () => [];
    version = '2.40.4.1';
    await client().trackedEntityPage(filter);
    const old = asked.at(-1);
    assert.equal(old?.get('orgUnit'), 'DiszpKrYNg8;O6uvpzGd5pu');
    assert.equal(old?.get('ouMode'), 'DESCENDANTS');
    assert.deepEqual([old?.get('orgUnits'), old?.get('orgUnitMode')], [null, null]);
    version = '2.41.3';
    await client().trackedEntityPage(filter);
    const current = asked.at(-1);
    assert.equal(current?.get('orgUnits'), 'DiszpKrYNg8,O6uvpzGd5pu');
    assert.equal(current?.get('orgUnitMode'), 'DESCENDANTS');
    assert.equal(current?.get('orgUnit'), null);
    // Without org units in the filter the version is not asked.
    infoCalls = 0;
    await client().trackedEntityPage({ program: PROGRAM });
    assert.equal(infoCalls, 0);
  });
});
