// A birth whose NOTIFY may be in OpenCRVS (stored, its answer lost) keeps the copy it sent, and resends it,
// when its record is read again and can no longer be mapped. What the EMR holds now is not what OpenCRVS
// may hold: counted once as an update after notification, however often it is read. Through the real
// pipeline: FHIR sandbox, OpenCRVS simulator, the bridge as `serve` builds it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { birthResources, startHarness } from './helpers/bridge-harness.js';

describe('a row in doubt whose record can no longer be mapped', () => {
  it('counts the change once, however often it is read, and delivers the copy it sent', async () => {
    const h = await startHarness({ worker: false });
    try {
      const resources = birthResources(0);
      for (const r of resources) await h.fhir.upsert(r);
      const poller = h.bridge.sources[0]?.poller;
      assert.ok(poller);
      await poller.pollOnce();
      // OpenCRVS stores the NOTIFY and the answer is lost: the row's retry must resend that copy.
      await h.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'] } });
      await h.bridge.worker.processNext();
      const [sent] = h.rows();
      assert.ok(sent?.eventId, 'created in OpenCRVS');
      assert.equal(sent.state, 'failed');
      assert.equal(h.bridge.ledger.notifyInDoubt(sent.id), true);
      const row = () => h.bridge.ledger.get(sent.id);
      const readAgain = () => poller.pollOnce({ from: '2020-01-01' });

      await readAgain();
      assert.equal(row()?.updatesAfterNotification, 0, 'read again unchanged: nothing to say');

      // The EMR cuts the birth date to its month: the mapping keeps such a record as invalid.
      const child = resources.find((r) => r.resourceType === 'Patient' && r.id?.endsWith('-child')) as Patient;
      await h.fhir.upsert({ ...child, birthDate: child.birthDate?.slice(0, 7) } as Patient);
      await poller.pollOnce();
      const counted = row();
      assert.equal(counted?.updatesAfterNotification, 1);
      assert.ok(counted?.updatedAfterNotificationAt);
      assert.deepEqual(
        [counted.state, counted.payloadHash, counted.payload, counted.notifyTransactionId],
        [sent.state, sent.payloadHash, sent.payload, sent.notifyTransactionId],
        'the copy OpenCRVS may hold is kept, under its transactionId',
      );
      await readAgain();
      await readAgain();
      assert.equal(row()?.updatesAfterNotification, 1, 'the same reading again is no second update');

      // OpenCRVS answers again: the retry resends the kept copy, which it holds already.
      await h.sim.control.configure({ faults: {} });
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      const delivered = row();
      assert.deepEqual([delivered?.state, delivered?.updatesAfterNotification], ['delivered', 1]);
      const events = await h.sim.control.events();
      assert.equal(events.length, 1);
      const notifies = events[0]?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested');
      assert.equal(notifies?.length, 1, 'one NOTIFY');
    } finally {
      await h.close();
    }
  });
});
