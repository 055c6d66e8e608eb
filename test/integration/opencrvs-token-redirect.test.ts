// An OpenCRVS token endpoint that answers a redirect (a proxy moved, http instead of https), over HTTP: the
// bridge never follows it (the request's query carries the client secret), asks it once in a delivery
// pass, holds the queue as for refused credentials, and says where the redirect points by its origin
// alone: no path, no query, no secret.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import express from 'express';
import { createDeliveryWorker, type DeliveryOutcome } from '../../src/delivery/index.js';
import { createOpenCrvsClient } from '../../src/opencrvs/client.js';
import { birthEvent, clientSettings, fastDelivery, type TestBed, testBed } from './delivery-helpers.js';

const ELSEWHERE = 'https://login.example:8443';

describe('an OpenCRVS token endpoint answering a redirect', () => {
  let bed: TestBed;
  let server: Server;
  let tokenUrl = '';
  let asked: Array<{ method: string; secret: unknown }> = [];

  beforeEach(async () => {
    bed = await testBed();
    asked = [];
    const app = express();
    app.all('/auth/token', (req, res) => {
      asked.push({ method: req.method, secret: req.query.client_secret });
      res.redirect(307, `${ELSEWHERE}/realms/opencrvs/token?client_secret=${bed.sim.clientSecret}&next=Patient%2F9`);
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth/token`;
  });
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    await bed.close();
  });

  it('is asked once in a delivery pass; the queue is held naming where it points, without its path or query', async () => {
    for (let i = 0; i < 8; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const outcomes: DeliveryOutcome[] = [];
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim, { tokenUrl })),
      settings: { ...fastDelivery, concurrency: 4 },
      onOutcome: (o) => outcomes.push(o),
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 }); // returns once held
    assert.equal(asked.length, 1, 'one token request for the whole pass');
    assert.equal(asked[0]?.secret, bed.sim.clientSecret, 'the redirecting endpoint is the configured one');

    const reason = worker.held()?.reason ?? '';
    const stored = bed.ledger.getHold();
    for (const text of [reason, stored?.reason ?? '']) {
      assert.match(text, /redirect to https:\/\/login\.example:8443, which is not followed: set opencrvs\.tokenUrl/);
      for (const leak of ['/realms', 'client_secret', bed.sim.clientSecret, 'Patient'])
        assert.ok(!text.includes(leak), `no ${leak} in: ${text}`);
    }
    assert.equal(stored?.status, 307);
    // Held as for refused credentials: no row dead, no attempt counted, nothing reached OpenCRVS.
    assert.equal(bed.ledger.list({ states: ['dead'] }).length, 0);
    for (const row of bed.ledger.list({ states: ['pending', 'failed'] })) assert.equal(row.attempts, 0);
    assert.equal(bed.ledger.list({ states: ['pending', 'failed'] }).length, 8);
    assert.equal((await bed.sim.control.events()).length, 0);
    assert.ok(outcomes.some((o) => o.type === 'held'));

    // The hold's probe does not ask again within the backoff; it fails with the same words.
    assert.equal(await worker.probe(), false);
    assert.equal(asked.length, 1, 'not asked again before the backoff ends');
    assert.match(worker.held()?.reason ?? '', /redirect to https:\/\/login\.example:8443/);
  });
});
