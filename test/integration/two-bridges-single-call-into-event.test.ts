// Two bridges, X and Y, both calling their EMR `emr`, each with another child as Patient/1: the same
// transactionIds. X created its event and has not notified it yet (its NOTIFY queued, held, or refused)
// when Y, in single-call mode, posts `POST /events/notify`: OpenCRVS keys its create step `<tx>:create`
// across clients, finds X's event, and stores Y's child in it (docs/opencrvs-api.md, Idempotency). Y's
// row once went dead as holding "nothing in OpenCRVS", and X's 409 was recorded delivered: X's child was
// never registered, and Y's rename and replay registered Y's child a second time. Real client, real
// simulator, each bridge with its own ledger and OpenCRVS client.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { DeliverySettings } from '../../src/config/types.js';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import { type Ledger, ledgerOwnClients, openLedger } from '../../src/ledger/index.js';
import { createOpenCrvsClient, type OpenCrvsClient } from '../../src/opencrvs/client.js';
import type { SimEvent } from '../../src/sandbox/opencrvs/index.js';
import { birthEvent, clientSettings, fastDelivery, type TestBed, testBed } from './delivery-helpers.js';

const Y_CLIENT = { clientId: 'bridge-y', clientSecret: 'bridge-y-secret-0001' };
const Y_CHILD = { 'child.name': { firstname: 'Other', surname: 'Kid' } };
const singleCall: DeliverySettings = { ...fastDelivery, mode: 'single-call' };

/** The events whose NOTIFY requests declared a child of that first name, and how many such requests. */
function notifiedWith(events: SimEvent[], firstname: string): { events: string[]; requests: number } {
  const requests = events.flatMap((e) =>
    e.actions
      .filter((a) => a.type === 'NOTIFY' && a.status === 'Requested')
      .filter((a) => (a.declaration?.['child.name'] as { firstname?: string } | undefined)?.firstname === firstname)
      .map(() => e.trackingId),
  );
  return { events: [...new Set(requests)], requests: requests.length };
}

describe('two bridges with one source id: a single call into the other bridge’s event not yet notified', () => {
  let bed: TestBed;
  let dir: string;
  let xLedger: Ledger;
  let yLedger: Ledger;
  let xApi: OpenCrvsClient;
  let yApi: OpenCrvsClient;
  beforeEach(async () => {
    bed = await testBed();
    await bed.sim.control.addClient(Y_CLIENT);
    dir = mkdtempSync(join(tmpdir(), 'bridge-y-'));
    xLedger = bed.ledger;
    yLedger = openLedger(join(dir, 'y.db'));
    xApi = createOpenCrvsClient(clientSettings(bed.sim), { ownClients: ledgerOwnClients(xLedger) });
    yApi = createOpenCrvsClient(clientSettings(bed.sim, Y_CLIENT), { ownClients: ledgerOwnClients(yLedger) });
  });
  afterEach(async () => {
    xApi.close?.();
    yApi.close?.();
    yLedger.close();
    rmSync(dir, { recursive: true, force: true });
    await bed.close();
  });

  const run = async (ledger: Ledger, api: OpenCrvsClient, settings: DeliverySettings) => {
    const w = createDeliveryWorker({ ledger, api, settings });
    try {
      await w.runUntilIdle({ timeoutMs: 20_000 });
    } finally {
      await w.stop({ drainMs: 2000 });
    }
  };

  /** X's birth created in OpenCRVS (two-step), its NOTIFY not sent yet. */
  const xCreated = async () => {
    const { row } = xLedger.recordEvent(birthEvent(bed.office, 1));
    const event = await xApi.createEvent({
      type: 'birth',
      transactionId: row.createTransactionId,
      createdAtLocation: bed.office,
    });
    xLedger.recordCreated(row.id, event.id, event.trackingId);
    return { row, event };
  };

  it('records Y delivered in that event, X dead naming the other client; renames and replays register each child once', async () => {
    const x = await xCreated();
    const { row: yRow } = yLedger.recordEvent(birthEvent(bed.office, 1, Y_CHILD));
    await run(yLedger, yApi, singleCall);

    // Y's child is in OpenCRVS, in the event X created: Y's row says so, with that tracking ID.
    const y = yLedger.get(yRow.id);
    assert.deepEqual([y?.state, y?.eventId, y?.trackingId], ['delivered', x.event.id, x.event.trackingId]);

    await run(xLedger, xApi, fastDelivery);
    const dead = xLedger.get(x.row.id);
    assert.equal(dead?.state, 'dead', 'X is not recorded delivered under an event holding Y’s child');
    assert.equal(dead?.lastError?.kind, 'foreign-notify');
    const message = dead?.lastError?.message ?? '';
    assert.match(message, new RegExp(`event ${x.event.trackingId}, created for this record, holds a NOTIFY`));
    assert.match(message, /another OpenCRVS client \(bridge-y\) made, and none of this row's/);
    assert.match(message, /opencrvs\.previousClientIds.*ledger rename-source emr <new id>.*then replay/);
    assert.doesNotMatch(message, /\bOther\b|\bKid\b|Test1|\bChild\b/, 'no personal data');
    let events = await bed.sim.control.events();
    assert.equal(notifiedWith(events, 'Test1').requests, 0, 'X sent no NOTIFY into that event');

    // Y renames its source (the advice of the other bridge's dead row): nothing of Y's is sent again.
    const yIds = [y?.baseTransactionId, y?.createTransactionId, y?.notifyTransactionId];
    assert.equal(yLedger.sources.rename('emr', 'emr-y', Date.now()).newTransactionIds, 0);
    const renamedY = yLedger.get(yRow.id);
    assert.deepEqual([renamedY?.baseTransactionId, renamedY?.createTransactionId, renamedY?.notifyTransactionId], yIds);
    assert.deepEqual(yLedger.replay([yRow.id]).requeued, [], 'a delivered row is not replayed');
    await run(yLedger, yApi, singleCall);

    // X renames its own (its dead row's advice): the row takes the new ids, forgets that event, and a
    // replay sends X's child as a new event.
    assert.equal(xLedger.sources.rename('emr', 'emr-x', Date.now()).newTransactionIds, 1);
    const renamedX = xLedger.get(x.row.id);
    assert.deepEqual([renamedX?.eventId, renamedX?.trackingId], [null, null]);
    assert.deepEqual(xLedger.replay([x.row.id]).requeued, [x.row.id]);
    await run(xLedger, xApi, fastDelivery);
    const delivered = xLedger.get(x.row.id);
    assert.equal(delivered?.state, 'delivered', delivered?.lastError?.message);
    assert.notEqual(delivered?.trackingId, x.event.trackingId);

    events = await bed.sim.control.events();
    assert.equal(events.length, 2);
    assert.deepEqual(notifiedWith(events, 'Other'), { events: [x.event.trackingId], requests: 1 }, 'Y’s child once');
    assert.deepEqual(notifiedWith(events, 'Test1'), { events: [delivered?.trackingId], requests: 1 }, 'X’s child once');
  });

  it('X’s NOTIFY resent after a failure meets the 409: the event holds Y’s NOTIFY, not X’s, and X is dead', async () => {
    const x = await xCreated();
    // X's NOTIFY fails (a 500, so it is in doubt), and is due again.
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 500, operations: ['notify'], times: 1 } });
    const first = createDeliveryWorker({ ledger: xLedger, api: xApi, settings: fastDelivery });
    await first.processNext();
    await first.stop({ drainMs: 2000 });
    assert.equal(xLedger.get(x.row.id)?.state, 'failed');

    const { row: yRow } = yLedger.recordEvent(birthEvent(bed.office, 1, Y_CHILD));
    await run(yLedger, yApi, singleCall);
    assert.equal(yLedger.get(yRow.id)?.trackingId, x.event.trackingId);

    await run(xLedger, xApi, fastDelivery);
    const dead = xLedger.get(x.row.id);
    assert.deepEqual([dead?.state, dead?.lastError?.kind], ['dead', 'foreign-notify'], dead?.lastError?.message);
    // None of X's NOTIFYs is in that event, the one in doubt neither: a rename gives the row new ids.
    assert.equal(xLedger.sources.rename('emr', 'emr-x', Date.now()).newTransactionIds, 1);
  });

  it('a pending NOTIFY of Y in that event: X sends nothing into it, and Y learns the decision there', async () => {
    await bed.sim.control.configure({ actionConfirmation: 'pending' });
    const x = await xCreated();
    const { row: yRow } = yLedger.recordEvent(birthEvent(bed.office, 1, Y_CHILD));
    await run(yLedger, yApi, singleCall);
    assert.equal(yLedger.get(yRow.id)?.state, 'delivered-pending');

    // The simulator would store X's NOTIFY beside Y's pending one: X looks first, and sends nothing.
    await run(xLedger, xApi, fastDelivery);
    assert.equal(xLedger.get(x.row.id)?.lastError?.kind, 'foreign-notify');
    assert.equal(notifiedWith(await bed.sim.control.events(), 'Test1').requests, 0);

    // Y's pending check asks with the idempotent create, answered with X's event: Y's NOTIFY is in it.
    await bed.sim.control.confirm(x.event.id, 'accept');
    const w = createDeliveryWorker({
      ledger: yLedger,
      api: yApi,
      settings: singleCall,
      now: () => Date.now() + 24 * 3600_000,
    });
    try {
      await w.runUntilIdle({ timeoutMs: 20_000 });
    } finally {
      await w.stop({ drainMs: 2000 });
    }
    const y = yLedger.get(yRow.id);
    assert.deepEqual([y?.state, y?.trackingId], ['delivered', x.event.trackingId], y?.lastError?.message);
  });
});
