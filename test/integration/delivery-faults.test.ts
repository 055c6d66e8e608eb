import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createDeliveryWorker, type DeliveryOutcome } from '../../src/delivery/index.js';
import { createOpenCrvsClient } from '../../src/opencrvs/client.js';
import {
  assertExactlyOnce,
  birthEvent,
  clientSettings,
  fastDelivery,
  type TestBed,
  testBed,
} from './delivery-helpers.js';

describe('delivery under faults', () => {
  let bed: TestBed | undefined;
  afterEach(async () => {
    await bed?.close();
    bed = undefined;
  });

  it('30% 503s with Retry-After: every event delivered once, retries waiting at least the Retry-After', async () => {
    bed = await testBed();
    await bed.sim.control.configure({ seed: 7, faults: { errorRate: 0.3, errorStatus: 503, retryAfterSeconds: 1 } });
    for (let i = 0; i < 30; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const retries: DeliveryOutcome[] = [];
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
      onOutcome: (o) => o.type === 'retry' && retries.push(o),
    });
    await worker.runUntilIdle({ timeoutMs: 120_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 30);
    assert.ok(retries.length > 0, 'faults were injected');
    for (const retry of retries) {
      assert.equal(retry.error?.status, 503);
      assert.ok((retry.delayMs ?? 0) >= 1000, 'Retry-After is a floor for the delay');
    }
  });

  it('answers slower than the client timeout: retried, and the late commits are not duplicated', async () => {
    bed = await testBed();
    for (let i = 0; i < 6; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim, { timeoutMs: 150 })),
      settings: fastDelivery,
    });
    await bed.sim.control.configure({ faults: { delayMs: 400 } });
    await worker.processNext();
    const timedOut = bed.ledger.list({ states: ['failed'] });
    assert.equal(timedOut.length, 4, 'the first batch timed out');
    for (const row of timedOut) assert.equal(row.lastError?.kind, 'timeout');
    // Let the slow answers land (OpenCRVS commits after our timeout): the 4 creates are in the simulator.
    // Then heal and finish; the resends must find those events, not make new ones.
    for (let waited = 0; (await bed.sim.control.events()).length < 4; waited += 50) {
      assert.ok(waited < 10_000, 'the late creates never landed');
      await new Promise((r) => setTimeout(r, 50));
    }
    await bed.sim.control.configure({ faults: {} });
    await worker.runUntilIdle({ timeoutMs: 60_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 6);
  });

  it('dropped connections and commit-then-fail answers: all delivered exactly once', async () => {
    bed = await testBed();
    await bed.sim.control.configure({ seed: 11, faults: { dropRate: 0.2, commitThenFailRate: 0.3 } });
    for (let i = 0; i < 30; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 120_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 30);
    const kinds = new Set(
      bed.ledger
        .list({ limit: 100 })
        .flatMap((r) => bed?.ledger.attempts(r.id) ?? [])
        .map((a) => a.error?.kind),
    );
    assert.ok(kinds.has('network'), 'connections were dropped');
  });

  it('tokens expiring mid-run are renewed without losing or doubling anything', async () => {
    bed = await testBed({ tokenTtlSeconds: 1 });
    await bed.sim.control.configure({ seed: 3, faults: { errorRate: 0.2, errorStatus: 503, retryAfterSeconds: 1 } });
    for (let i = 0; i < 20; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    const worker = createDeliveryWorker({ ledger: bed.ledger, api, settings: { ...fastDelivery, concurrency: 2 } });
    await worker.runUntilIdle({ timeoutMs: 120_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 20);
    assert.ok(api.tokenRenewals() > 1, `the token was renewed (${api.tokenRenewals()} obtained)`);
  });
});
