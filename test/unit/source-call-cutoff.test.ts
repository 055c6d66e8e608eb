// A caller's abort signal ends a source call at once: the write-back hands its signal to the DHIS2 and
// FHIR clients, so the pass's deadline (sync --once --timeout) and a stop cut its calls off instead of
// waiting for the source's timeout, its retries and their backoff.
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SourceSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { SourceCallError } from '../../src/sources/shared/source-error.js';

/** How long each call may take at the source (with three tries, far longer than any cut-off below). */
const SOURCE_TIMEOUT_MS = 2000;

describe('a source call cut off by its caller', () => {
  let server: Server;
  let fhir: FhirSourceClient;
  let dhis2: Dhis2Client;
  let requests = 0;
  const arrived: string[] = [];
  const hanging = new Set<ServerResponse>();

  before(async () => {
    // Never answers, except with a 503 on /busy (retried by the clients, with a backoff between tries).
    server = createServer((req, res) => {
      req.resume();
      requests++;
      arrived.push(req.url ?? '');
      if (req.url?.includes('busy')) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
        return;
      }
      hanging.add(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const base = { id: 'emr', timeoutMs: SOURCE_TIMEOUT_MS, auth: { type: 'none' } };
    const options = { logger: silentLogger, retryBaseMs: 1000, attempts: 3 };
    fhir = new FhirSourceClient(
      { ...base, kind: 'fhir', baseUrl: `${origin}/fhir` } as unknown as SourceSettings,
      options,
    );
    dhis2 = new Dhis2Client({ ...base, kind: 'dhis2', baseUrl: origin } as unknown as SourceSettings, options);
  });
  after(() => {
    fhir.close();
    dhis2.close();
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    server.close();
  });

  /**
   * The call's error, how long it took to end once its signal fired, and the requests it made. The signal
   * fires `afterMs` after the call's request reached the source (its URL holds `marker`): a fixed delay
   * from the start may fire before a loaded machine has even connected.
   */
  async function cutOff(call: (signal: AbortSignal) => Promise<unknown>, marker: string, afterMs: number) {
    const controller = new AbortController();
    const before = requests;
    const from = arrived.length;
    const ended = call(controller.signal).then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    for (let waited = 0; !arrived.slice(from).some((url) => url.includes(marker)); waited += 10) {
      assert.ok(waited < 10_000, `the request for ${marker} never reached the source`);
      await sleep(10);
    }
    await sleep(afterMs);
    const abortedAt = Date.now();
    controller.abort();
    const err = await ended;
    return { err, tookMs: Date.now() - abortedAt, requests: requests - before };
  }

  it('DHIS2: a read waiting for its answer ends when the signal fires, not retried', async () => {
    const {
      err,
      tookMs,
      requests: sent,
    } = await cutOff((signal) => dhis2.event('EvHang00001', { signal }), 'EvHang00001', 100);
    assert.ok(tookMs < 1000, `ended ${tookMs} ms after it was cut off`);
    assert.equal(sent, 1, 'not tried again');
    assert.ok(err instanceof SourceCallError);
    assert.equal(err.retryable, false);
    assert.match(err.message, /cut off/);
  });

  it('DHIS2: an import, and a call waiting for its next try after a 503, end when the signal fires', async () => {
    const { tookMs, requests: sent } = await cutOff(
      (signal) => dhis2.importTracker({ events: [] }, 'UPDATE', { signal }),
      'tracker',
      100,
    );
    assert.ok(tookMs < 1000, `ended ${tookMs} ms after it was cut off`);
    assert.equal(sent, 1);
    // A 503 is tried again after 1 s: the signal ends the wait.
    const busy = new Dhis2Client({ ...dhis2.settings, baseUrl: `${dhis2.baseUrl}/busy` } as SourceSettings, {
      logger: silentLogger,
      retryBaseMs: 1000,
      attempts: 3,
    });
    try {
      const waited = await cutOff((signal) => busy.event('EvBusy00001', { signal }), 'EvBusy00001', 200);
      assert.ok(waited.tookMs < 1000, `ended ${waited.tookMs} ms after it was cut off`);
      assert.equal(waited.requests, 1);
    } finally {
      busy.close();
    }
  });

  it('FHIR: a read and an update waiting for their answer end when the signal fires, not retried', async () => {
    const read = await cutOff((signal) => fhir.read('Patient', 'hang', { signal }), 'Patient/hang', 100);
    assert.ok(read.tookMs < 1000, `read ended ${read.tookMs} ms after it was cut off`);
    assert.equal(read.requests, 1);
    assert.ok(read.err instanceof SourceCallError);
    assert.equal(read.err.retryable, false);
    assert.match(read.err.message, /cut off/);
    const update = await cutOff(
      (signal) => fhir.update({ resourceType: 'Patient', id: 'hang' }, undefined, { signal }),
      'Patient/hang',
      100,
    );
    assert.ok(update.tookMs < 1000, `update ended ${update.tookMs} ms after it was cut off`);
    assert.equal(update.requests, 1);
  });

  it('refuses a call whose signal has fired, and leaves the client to calls with their own signal', async () => {
    const fired = AbortSignal.abort();
    const sent = requests;
    await assert.rejects(dhis2.event('EvHang00002', { signal: fired }), /cut off/);
    await assert.rejects(fhir.read('Patient', 'gone', { signal: fired }), /cut off/);
    assert.equal(requests, sent, 'neither went out');
    await Promise.all([
      cutOff((signal) => dhis2.event('EvHang00003', { signal }), 'EvHang00003', 300),
      cutOff((signal) => fhir.read('Patient', 'other', { signal }), 'Patient/other', 300),
    ]);
    assert.equal(requests - sent, 2, 'both went out');
  });
});
