// The bridge's OpenCRVS client replaced (a lost secret means a new client, with a new id): the events the
// earlier client created name it as their creator. They are still this bridge's own: rows in doubt or
// pending settle as before, and nothing is sent as a new event.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import { ledgerOwnClients } from '../../src/ledger/index.js';
import { createOpenCrvsClient } from '../../src/opencrvs/client.js';
import { birthEvent, clientSettings, fastDelivery, type TestBed, testBed, until } from './delivery-helpers.js';

const NEW_CLIENT = { clientId: 'bridge-client-2', clientSecret: 'bridge-client-2-secret' };

describe("the bridge's OpenCRVS client replaced", () => {
  let bed: TestBed;
  beforeEach(async () => {
    bed = await testBed();
  });
  afterEach(async () => {
    await bed.close();
  });

  /** A single call stored, left pending and its answer lost; then the client is replaced. */
  async function inDoubtThenReplaced(remembered: boolean): Promise<number> {
    await bed.sim.control.configure({
      actionConfirmation: 'pending',
      faults: { commitThenFailRate: 1, operations: ['createAndNotify'], times: 1 },
    });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const api = createOpenCrvsClient(clientSettings(bed.sim), {
      // A bridge of an earlier version kept no list.
      ...(remembered ? { ownClients: ledgerOwnClients(bed.ledger) } : {}),
    });
    const first = createDeliveryWorker({ ledger: bed.ledger, api, settings: { ...fastDelivery, mode: 'single-call' } });
    await until(first, () => bed.ledger.get(row.id)?.state === 'failed');
    await first.stop({ drainMs: 5000 });
    await bed.sim.control.addClient(NEW_CLIENT);
    await bed.sim.control.removeClient(bed.sim.clientId);
    return row.id;
  }

  async function deliverWith(previousClientIds: string[] = []): Promise<void> {
    const api = createOpenCrvsClient(clientSettings(bed.sim, { ...NEW_CLIENT, previousClientIds }), {
      ownClients: ledgerOwnClients(bed.ledger),
    });
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api,
      settings: { ...fastDelivery, mode: 'single-call' },
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    await worker.stop({ drainMs: 5000 });
  }

  async function assertOneNotify(): Promise<void> {
    const events = await bed.sim.control.events();
    assert.equal(events.length, 1, 'one event');
    const notifies = events[0]?.actions.filter((a) => a.type === 'NOTIFY') ?? [];
    assert.equal(notifies.length, 1, 'one NOTIFY');
  }

  it('the ledger remembers the earlier client: the row in doubt settles as pending, no second event', async () => {
    const id = await inDoubtThenReplaced(true);
    await deliverWith();
    assert.equal(bed.ledger.get(id)?.state, 'delivered-pending', bed.ledger.get(id)?.lastError?.message);
    await assertOneNotify();
  });

  it('a client used before the ledger kept the list: dead, naming opencrvs.previousClientIds; listed, it settles', async () => {
    const id = await inDoubtThenReplaced(false);
    await deliverWith();
    const dead = bed.ledger.get(id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.lastError?.kind, 'foreign-event');
    assert.match(dead?.lastError?.message ?? '', /opencrvs\.previousClientIds and replay/);
    // What the message says: the old id listed, and a replay.
    assert.deepEqual(bed.ledger.replay([id]).requeued, [id]);
    await deliverWith([bed.sim.clientId]);
    assert.equal(bed.ledger.get(id)?.state, 'delivered-pending', bed.ledger.get(id)?.lastError?.message);
    await assertOneNotify();
  });

  it("the resend refused (400), the asking that follows meets the earlier client's event: dead, naming opencrvs.previousClientIds", async () => {
    const id = await inDoubtThenReplaced(false);
    await bed.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['createAndNotify'], times: 1 },
    });
    await deliverWith();
    const dead = bed.ledger.get(id);
    assert.equal(dead?.state, 'dead');
    // Dead for the refusal, which stored nothing; the asking's answer says what to do about the event.
    assert.deepEqual([dead?.lastError?.kind, dead?.lastError?.status], ['bad-request', 400]);
    assert.match(
      dead?.lastError?.message ?? '',
      /asking it failed: foreign-event: .*list its id under opencrvs\.previousClientIds and replay/,
    );
    // What the message says: the old id listed, and a replay.
    assert.deepEqual(bed.ledger.replay([id]).requeued, [id]);
    await deliverWith([bed.sim.clientId]);
    assert.equal(bed.ledger.get(id)?.state, 'delivered-pending', bed.ledger.get(id)?.lastError?.message);
    await assertOneNotify();
  });

  it('a rename keeps the transaction ids of a row whose call may be in OpenCRVS', async () => {
    const id = await inDoubtThenReplaced(false);
    await deliverWith();
    const before = bed.ledger.get(id);
    assert.equal(before?.state, 'dead');
    bed.ledger.sources.rename('emr', 'emr-ndola', Date.now());
    assert.equal(bed.ledger.get(id)?.baseTransactionId, before?.baseTransactionId);
  });
});
