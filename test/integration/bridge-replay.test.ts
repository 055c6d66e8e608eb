// Replaying a dead row maps its record again from the source first: what an operator fixes before pressing
// Replay is the configuration (a route, a mapping) or the record, and a record the mapping refused has no
// payload to send at all. Over HTTP against the FHIR sandbox and the OpenCRVS simulator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
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
      // A bridge without a worker (the `replay` command) starts no delivery: one it claimed (and leased for a
      // recheck at the source) was cut short when the command ended, and the row waited out
      // lockTimeoutSeconds (5 minutes) before the service or the next sync could send it.
      const processNext = h.bridge.worker.processNext;
      let started = 0;
      h.bridge.worker.processNext = () => {
        started += 1;
        return processNext();
      };
      const result = await h.bridge.replay([row.id]);
      h.bridge.worker.processNext = processNext;
      assert.equal(started, 0);
      assert.deepEqual(result, { requeued: [row.id], skipped: [] });
      assert.deepEqual([h.rows()[0]?.state, h.rows()[0]?.lockedBy], ['pending', null]);
      // The next pass delivers it, and says so, though its poll found nothing new.
      const pass = await h.bridge.syncOnce(undefined, { timeoutMs: 20_000 });
      assert.deepEqual(pass.delivered, [row.id]);
      assert.ok(pass.ok);
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

  it('a bridge that only replays (the `replay` command) does not report a worker or itself stopping', async () => {
    const h = await startHarness({ worker: false });
    try {
      const lines: string[] = [];
      const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
      const messages = () => lines.map((line) => String((JSON.parse(line) as { msg?: unknown }).msg));
      const replaying = new Bridge(h.config, { logger, http: false, schedule: false, worker: false });
      const result = await replaying.replay([999]);
      assert.equal(result.skipped[0]?.id, 999);
      await replaying.stop();
      assert.ok(!messages().includes('delivery worker stopped'), messages().join(' | '));
      assert.ok(!messages().includes('stopped'), messages().join(' | '));

      // A pass runs the worker (`sync --once`): its end is reported.
      lines.length = 0;
      const syncing = new Bridge(h.config, { logger, http: false, schedule: false, worker: false });
      await syncing.syncOnce(undefined, { timeoutMs: 20_000 });
      await syncing.stop();
      assert.ok(messages().includes('delivery worker stopped'), messages().join(' | '));
      assert.ok(messages().includes('stopped'), messages().join(' | '));
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
        const result = await offline.replay('dead');
        assert.deepEqual([result.requeued, result.skipped], [[row.id], []]);
        assert.match(
          result.notes?.[0]?.note ?? '',
          /^the source could not be read to map the record again \(.*\); requeued as stored, checked at the source before it is sent/,
        );
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

  it('a record deleted in the EMR is not sent when the replaying process cannot map it (OpenCRVS unreachable)', async () => {
    const h = await startHarness({ worker: false, delivery: { recheckAfterSeconds: 60 } });
    try {
      const resources = birthResources(10);
      for (const r of resources) await h.fhir.upsert(r);
      await h.sim.control.configure({ actionConfirmation: 'reject' });
      await h.bridge.syncOnce();
      const [row] = h.rows();
      assert.equal(row?.state, 'dead');
      await h.sim.control.configure({ actionConfirmation: 'accept' });
      // The EMR voids the record (a merged duplicate, say); a poll never sees a deletion.
      const deleted = await fetch(`${h.fhir.baseUrl}/Patient/e2e-birth-10-child`, { method: 'DELETE' });
      assert.ok(deleted.ok);
      // Replayed at once (it died within recheckAfterSeconds of being queued) by the CLI on a machine that
      // cannot reach OpenCRVS: routing cannot resolve, and nothing is mapped.
      const unreachable = {
        ...h.config,
        opencrvs: {
          ...h.config.opencrvs,
          tokenUrl: 'http://127.0.0.1:9/token',
          eventsUrl: 'http://127.0.0.1:9/events',
        },
      };
      const offline = new Bridge(unreachable, { logger: silentLogger, http: false, schedule: false, worker: false });
      try {
        const result = await offline.replay('dead');
        assert.deepEqual(result.requeued, [row.id]);
        assert.equal(result.notes?.length, 1, 'the answer says it was not read again');
      } finally {
        await offline.stop();
      }
      // The service checks a replayed row at the source before sending it: gone, so withdrawn, not notified.
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      const after = h.rows()[0];
      assert.equal(after?.state, 'skipped', JSON.stringify(after));
      assert.match(after?.skipReason ?? '', /deleted in the source/);
    } finally {
      await h.close();
    }
  });
});

describe('replaying a failed row (an outage over)', () => {
  it('makes it due now instead of after its backoff, under the same transactionIds, and it is delivered once', async () => {
    // A backoff of an hour: what delivery.maxDelayMs leaves a row waiting after OpenCRVS came back.
    const h = await startHarness({ worker: false, delivery: { baseDelayMs: 3_600_000, maxDelayMs: 3_600_000 } });
    try {
      for (const r of birthResources(3)) await h.fhir.upsert(r);
      await h.sim.control.configure({ faults: { errorRate: 1, errorStatus: 500 } });
      // The pass waits for its rows until its deadline: a short one, the row's retry being an hour away.
      const down = await h.bridge.syncOnce(undefined, { timeoutMs: 2_000 });
      assert.equal(down.ok, false);
      const [failed] = h.rows();
      assert.ok(failed);
      assert.equal(failed.state, 'failed');
      // Jittered: within the hour, not before a quarter of it.
      assert.ok(failed.nextRunAt > Date.now() + 600_000, 'waiting out its backoff');
      await h.sim.control.configure({ faults: {} });

      const result = await h.bridge.replay([failed.id]);
      assert.deepEqual(result.requeued, [failed.id]);
      assert.deepEqual(result.skipped, []);
      assert.match(result.notes?.[0]?.note ?? '', /^failed, waiting for its next retry: due now/);
      const due = h.bridge.ledger.get(failed.id);
      assert.ok(due);
      assert.equal(due.state, 'failed');
      assert.ok(due.nextRunAt <= Date.now(), 'due now');
      // Nothing else of the row moved: the retry is the one the backoff would have made.
      assert.deepEqual(
        [due.attempts, due.createTransactionId, due.notifyTransactionId, due.payloadHash],
        [failed.attempts, failed.createTransactionId, failed.notifyTransactionId, failed.payloadHash],
      );

      const pass = await h.bridge.syncOnce(undefined, { timeoutMs: 20_000 });
      assert.deepEqual(pass.delivered, [failed.id]);
      await assertDeliveredOnce(h, 1);
      assert.equal(h.bridge.ledger.get(failed.id)?.notifyTransactionId, failed.notifyTransactionId);
      // Delivered, it is neither dead nor failed: a replay leaves it.
      const again = await h.bridge.replay([failed.id]);
      assert.deepEqual(again.requeued, []);
      assert.match(again.skipped[0]?.reason ?? '', /^is delivered, not dead or failed: only dead rows replay/);
    } finally {
      await h.close();
    }
  });
});
