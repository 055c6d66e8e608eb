// An OpenCRVS client granted births but not deaths: each death is refused with 403. Holding the whole
// queue for it (as for a revoked client) would stop the births too, for a grant that may never come: the
// deaths are dead letters that say what to grant, the births go out. Over HTTP, with the simulator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { birthResources, deathResources, startHarness } from './helpers/bridge-harness.js';

describe('an OpenCRVS client granted one event type only', () => {
  it('delivers that type, dead-letters the other with what to grant, and holds nothing', async () => {
    const h = await startHarness({ worker: false });
    try {
      // Replacing a client revokes the tokens it was given before: the bridge's start-up token too.
      await h.sim.control.addClient({
        clientId: h.sim.clientId,
        clientSecret: h.sim.clientSecret,
        scopes: ['type=record.create&event=birth', 'type=record.notify&event=birth'],
      });
      for (const r of [...birthResources(1), ...birthResources(2), ...deathResources(1)]) await h.fhir.upsert(r);
      await h.bridge.syncOnce();
      assert.equal(h.bridge.worker.held(), undefined, 'the queue is not held');
      const byType = (type: string) => h.rows().filter((r) => r.eventType === type);
      assert.deepEqual(
        byType('birth').map((r) => r.state),
        ['delivered', 'delivered'],
      );
      const [death] = byType('death');
      assert.equal(death?.state, 'dead');
      assert.match(
        death?.lastError?.message ?? '',
        /^the OpenCRVS client may not send death events: its token lacks record\.create for death and record\.notify for death \(it may send birth\)/,
      );

      // A client with no grant at all is a problem for every type: that still holds the queue.
      await h.sim.control.addClient({ clientId: h.sim.clientId, clientSecret: h.sim.clientSecret, scopes: [] });
      for (const r of birthResources(3)) await h.fhir.upsert(r);
      await h.bridge.syncOnce();
      assert.match(h.bridge.worker.held()?.reason ?? '', /403/);
    } finally {
      await h.close();
    }
  });
});
