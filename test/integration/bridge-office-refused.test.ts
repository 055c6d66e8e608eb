// A routed office OpenCRVS stops knowing (deleted from its locations): OpenCRVS refuses it with 400
// "createdAtLocation must be a valid location id", and the queue holds for the operator, who corrects the
// route and restarts. End to end over HTTP: the FHIR sandbox, the OpenCRVS simulator, the Bridge as `serve`
// builds it, restarted on the same ledger with the corrected config.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { birthResources, bridgeConfigObject, type Harness, ROUTING, startHarness } from './helpers/bridge-harness.js';

/** The routing table with every reference to `from` (an externalId) turned into `to`, and the keys that named it. */
function rerouted(from: string, to: string): { routing: typeof ROUTING; keys: string[] } {
  const keys: string[] = [];
  const swap = (ref: string, key: string) => {
    if (ref !== from) return ref;
    keys.push(key);
    return to;
  };
  const facilities = Object.fromEntries(
    Object.entries(ROUTING.facilities).map(([k, r]) => [
      k,
      { ...r, office: swap(r.office, `routing.facilities['${k}'].office`) },
    ]),
  );
  const routing = { defaultOffice: swap(ROUTING.defaultOffice, 'routing.defaultOffice'), facilities };
  return { routing: routing as unknown as typeof ROUTING, keys };
}

/**
 * Births recorded and sent after OpenCRVS deleted the office the first one is routed to: the queue holds,
 * and every birth routed there waits. Returns the office's externalId and UUID, and those rows' ids.
 */
async function heldOnDeletedOffice(h: Harness): Promise<{ externalId: string; id: string; rowIds: number[] }> {
  for (let i = 1; i <= 6; i++) for (const r of birthResources(i)) await h.fhir.upsert(r);
  const [source] = h.bridge.sources;
  assert.ok(source);
  await source.poller.pollOnce();
  const office = h.rows()[0]?.office;
  const routed = h.sim.locations.find((l) => l.id === office);
  assert.ok(routed?.externalId, 'the row went to a routed office');
  const rowIds = h
    .rows()
    .filter((r) => r.office === routed.id)
    .map((r) => r.id);
  assert.ok(rowIds.length >= 2 && rowIds.length < h.rows().length, 'births routed there and elsewhere');
  await h.sim.control.removeLocation(routed.id);
  await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
  const hold = h.bridge.ledger.getHold();
  assert.equal(hold?.kind, 'unknown-office', JSON.stringify(hold));
  assert.ok(rowIds.includes(hold?.rowId ?? 0));
  for (const id of rowIds) assert.match(h.bridge.ledger.get(id)?.state ?? '', /^(pending|failed)$/);
  return { externalId: routed.externalId, id: routed.id, rowIds };
}

/** An office of the simulator no routing reference names. */
function unroutedOffice(h: Harness): { externalId: string; id: string } {
  const routed = new Set<string>([ROUTING.defaultOffice, ...Object.values(ROUTING.facilities).map((r) => r.office)]);
  const found = h.sim.locations.find((l) => l.locationType === 'CRVS_OFFICE' && !routed.has(l.externalId ?? ''));
  assert.ok(found?.externalId);
  return { externalId: found.externalId, id: found.id };
}

describe('bridge: a routed office OpenCRVS deleted, the route corrected and the bridge restarted', () => {
  it('the first probe after the restart sends the held row mapped again, to the new office, and the others follow', async () => {
    const h = await startHarness({ worker: false });
    let restarted: Bridge | undefined;
    try {
      const deleted = await heldOnDeletedOffice(h);
      const target = unroutedOffice(h);
      const { routing, keys } = rerouted(deleted.externalId, target.externalId);
      // The hold names what routes there (ledger's banner): the keys of the config that chose the office.
      assert.deepEqual(h.bridge.ledger.getHold()?.routingKeys, keys);
      assert.equal(h.bridge.ledger.getHold()?.office, deleted.id);
      // /readyz fails `routing` as doctor does for that office: the table resolved at start no longer holds.
      const { checks } = (await (await fetch(`${h.bridgeUrl}/readyz`)).json()) as {
        checks: Record<string, { ok: boolean; detail?: string }>;
      };
      assert.equal(checks.routing?.ok, false);
      const detail = checks.routing?.detail ?? '';
      assert.ok(detail.includes(`office ${deleted.id} (${keys.join(', ')})`), detail);
      for (const row of h.rows()) assert.ok(!detail.includes(row.subjectKey), 'no record named');
      await h.bridge.stop();
      const object = bridgeConfigObject({ sim: h.sim, fhirBaseUrl: h.fhir.baseUrl, dbPath: h.config.store.path });
      restarted = new Bridge(configFromObject({ ...object, routing }), {
        logger: silentLogger,
        schedule: false,
        http: false,
        worker: false,
      });
      const held: string[] = [];
      restarted.onDeliveryOutcome((o) => {
        if (o.type === 'held') held.push(o.reason ?? '');
      });
      await restarted.start();
      const heldRow = restarted.ledger.getHold()?.rowId;
      assert.ok(restarted.worker.held(), 'still held after the restart, until a probe says otherwise');
      // The first round after the start is the hold's probe (a hold found at start is probed at once).
      await restarted.worker.processNext();
      assert.equal(restarted.worker.held(), undefined, 'the first probe delivered it: the hold ended');
      assert.deepEqual(
        [restarted.ledger.get(heldRow ?? 0)?.state, restarted.ledger.get(heldRow ?? 0)?.office],
        ['delivered', target.id],
      );
      // The other rows routed there are mapped again before their sends too: no hold again.
      await restarted.worker.runUntilIdle({ timeoutMs: 20_000 });
      assert.deepEqual(held, [], 'no refusal after the restart');
      for (const id of deleted.rowIds) assert.equal(restarted.ledger.get(id)?.office, target.id);
      assert.ok(restarted.ledger.list().every((r) => r.state === 'delivered'));
      const events = await h.events();
      assert.equal(events.length, restarted.ledger.list().length, 'one OpenCRVS event per birth');
      const notifies = events.flatMap((e) => e.actions.filter((a) => a.type === 'NOTIFY'));
      const accepted = notifies.filter((a) => a.status === 'Accepted').map((a) => a.createdAtLocation);
      assert.equal(accepted.length, events.length, 'one NOTIFY accepted per event');
      assert.equal(accepted.filter((office) => office === target.id).length, deleted.rowIds.length);
      assert.ok(!notifies.some((a) => a.createdAtLocation === deleted.id), 'no NOTIFY at the deleted office');
    } finally {
      await restarted?.stop();
      await h.close();
    }
  });
  it('a probe before the route was corrected mapped the held row again: the first probe after the restart still does', async () => {
    const h = await startHarness({ worker: false });
    let restarted: Bridge | undefined;
    try {
      const deleted = await heldOnDeletedOffice(h);
      const target = unroutedOffice(h);
      const { routing } = rerouted(deleted.externalId, target.externalId);
      const heldRow = h.bridge.ledger.getHold()?.rowId ?? 0;
      // A probe of the uncorrected service (the harness probes every second): it maps the row again, to the
      // same deleted office, which OpenCRVS refuses again. The row is now rechecked after the hold began.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      await h.bridge.worker.processNext();
      assert.ok(h.bridge.worker.held(), 'refused again: still held');
      assert.ok(
        (h.bridge.ledger.get(heldRow)?.recheckedAt ?? 0) > (h.bridge.ledger.getHold()?.since ?? Infinity),
        'mapped again after the hold began',
      );
      await h.bridge.stop();
      const object = bridgeConfigObject({ sim: h.sim, fhirBaseUrl: h.fhir.baseUrl, dbPath: h.config.store.path });
      restarted = new Bridge(configFromObject({ ...object, routing }), {
        logger: silentLogger,
        schedule: false,
        http: false,
        worker: false,
      });
      await restarted.start();
      // The restart is what applies the corrected route: a row mapped before it is mapped again.
      await restarted.worker.processNext();
      assert.equal(restarted.worker.held(), undefined, 'the first probe after the restart delivered it');
      assert.deepEqual(
        [restarted.ledger.get(heldRow)?.state, restarted.ledger.get(heldRow)?.office],
        ['delivered', target.id],
      );
    } finally {
      await restarted?.stop();
      await h.close();
    }
  });
  it('the EMR unreadable after the restart: the held row is not sent as recorded, and the hold stands', async () => {
    const h = await startHarness({ worker: false });
    let restarted: Bridge | undefined;
    try {
      const deleted = await heldOnDeletedOffice(h);
      const target = unroutedOffice(h);
      const { routing } = rerouted(deleted.externalId, target.externalId);
      await h.bridge.stop();
      // The EMR does not answer: the held row's record cannot be mapped again.
      const object = bridgeConfigObject({
        sim: h.sim,
        fhirBaseUrl: 'http://127.0.0.1:9/fhir',
        dbPath: h.config.store.path,
      });
      restarted = new Bridge(configFromObject({ ...object, routing }), {
        logger: silentLogger,
        schedule: false,
        http: false,
        worker: false,
      });
      await restarted.start();
      const heldRow = restarted.ledger.getHold()?.rowId ?? 0;
      const events = (await h.events()).length;
      assert.equal(await restarted.worker.probe(), false, 'the probe proved nothing');
      assert.ok(restarted.worker.held(), 'still held');
      const row = restarted.ledger.get(heldRow);
      assert.match(row?.state ?? '', /^(pending|failed)$/);
      assert.equal(row?.office, deleted.id, 'not mapped again');
      assert.ok((row?.nextRunAt ?? 0) > Date.now(), 'it waits out the lease of the recheck that failed');
      assert.equal((await h.events()).length, events, 'nothing sent');
    } finally {
      await restarted?.stop();
      await h.close();
    }
  });
});
