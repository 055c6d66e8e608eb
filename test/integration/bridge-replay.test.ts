// Replaying a dead row maps its record again from the source first: what an operator fixes before pressing
// Replay is the configuration (a route, a mapping) or the record, and a record the mapping refused has no
// payload to send at all. Over HTTP against the FHIR sandbox and the OpenCRVS simulator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { silentLogger } from '../../src/observability/logger.js';
import { assertDeliveredOnce, birthResources, officeOf, ROUTING, startHarness } from './helpers/bridge-harness.js';

describe('replaying a dead row', () => {
  it('maps a birth the mapping refused (no office) again from the EMR once the route exists, and delivers it once', async () => {
    const h = await startHarness({ worker: false });
    try {
      const resources: Resource[] = birthResources(8);
      for (const r of resources) await h.fhir.upsert(r);
      // The bridge as first deployed: no route for the hospital and no default office.
      const unrouted = { ...h.config, routing: { facilities: {} } };
      const first = new Bridge(unrouted, { logger: silentLogger, http: false, schedule: false, worker: false });
      try {
        await first.syncOnce();
        const [dead] = h.rows();
        assert.equal(dead?.state, 'dead');
        assert.equal(dead?.payload, null, 'the mapping refused it: nothing stored to send');
        assert.match(dead?.lastError?.message ?? '', /routing\.defaultOffice/);
        // Found by the record an engineer holds: its birth encounter (the evidence), not only the child.
        assert.equal(dead?.sourceRef, 'Encounter/e2e-birth-8-birth');
        assert.deepEqual(
          h.bridge.ledger.list({ find: 'Encounter/e2e-birth-8-birth' }).map((r) => r.id),
          [dead?.id],
        );
        // Replayed before the fix: still refused, and the answer says why.
        const early = await first.replay([dead?.id ?? 0]);
        assert.deepEqual(early.requeued, []);
        assert.match(early.skipped[0]?.reason ?? '', /^the record still cannot be mapped: .*routing/);
        assert.equal(h.rows()[0]?.state, 'dead');
      } finally {
        await first.stop();
      }

      // The route is added (h.bridge runs with the full routing table) and the row replayed.
      const [row] = h.rows();
      assert.ok(row);
      const result = await h.bridge.replay([row.id]);
      assert.deepEqual(result, { requeued: [row.id], skipped: [] });
      assert.notEqual(h.rows()[0]?.state, 'dead');
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      const [event] = await assertDeliveredOnce(h, 1);
      assert.ok(event);
      const route = ROUTING.facilities['Location/emr-loc-ibombo-hospital'];
      const routes: Array<{ office: string }> = [route, ROUTING.facilities['Location/emr-loc-isamba-hospital']];
      assert.ok(
        routes.some((r) => h.location(r.office).id === officeOf(event)),
        'created at the office the new route names',
      );
    } finally {
      await h.close();
    }
  });

  it('sends what is stored when the source cannot be read', async () => {
    const h = await startHarness({ worker: false });
    try {
      for (const r of birthResources(9)) await h.fhir.upsert(r);
      // OpenCRVS refuses it: dead, with the payload it refused.
      await h.sim.control.configure({ actionConfirmation: 'reject' });
      await h.bridge.syncOnce();
      const [row] = h.rows();
      assert.equal(row?.state, 'dead');
      assert.ok(row?.payload, 'a refused row keeps its payload');
      await h.sim.control.configure({ actionConfirmation: 'accept' });
      // Replayed by a bridge whose EMR cannot be reached: the stored payload goes out.
      const unreachable = {
        ...h.config,
        sources: h.config.sources.map((s) => ({ ...s, baseUrl: 'http://127.0.0.1:9/fhir' })),
      };
      const offline = new Bridge(unreachable, { logger: silentLogger, http: false, schedule: false, worker: false });
      try {
        assert.deepEqual(await offline.replay('dead'), { requeued: [row.id], skipped: [] });
      } finally {
        await offline.stop();
      }
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      assert.equal(h.rows()[0]?.state, 'delivered');
      await assertDeliveredOnce(h, 1);
    } finally {
      await h.close();
    }
  });
});
