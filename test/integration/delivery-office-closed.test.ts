// An office OpenCRVS 2.0 closes stays listed, with `validUntil` set, and its id is still taken by the events
// API: only the bridge can keep records from going to a queue nobody works. Real client, real simulator.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import { createOpenCrvsClient, LocationResolver } from '../../src/opencrvs/index.js';
import {
  birthEvent,
  clientSettings,
  fastDelivery,
  otherOffice,
  type TestBed,
  testBed,
  until,
} from './delivery-helpers.js';

describe('an office OpenCRVS closed (validUntil)', () => {
  let bed: TestBed;
  let open: string;
  beforeEach(async () => {
    bed = await testBed();
    open = otherOffice(bed.sim, bed.office);
  });
  afterEach(async () => {
    await bed.close();
  });

  it('is refused at start-up with the routing key, and named as closed', async () => {
    await bed.sim.control.closeLocation(bed.office, '2026-01-31T00:00:00.000Z');
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)));
    await assert.rejects(
      resolver.preload([
        { ref: bed.office, type: 'CRVS_OFFICE', key: 'routing.defaultOffice' },
        { ref: open, type: 'CRVS_OFFICE', key: "routing.facilities['a'].office" },
      ]),
      (err: Error) => {
        assert.match(err.message, /routing\.defaultOffice: location .* closed on 2026-01-31T00:00:00\.000Z/);
        assert.doesNotMatch(err.message, /routing\.facilities/, 'the open office is not named');
        return true;
      },
    );
    assert.equal(resolver.resolveSync(bed.office, 'CRVS_OFFICE'), undefined, 'a mapping gets no closed office');
    assert.equal(resolver.resolveSync(open, 'CRVS_OFFICE'), open);
  });

  it('an office closing in a future date is routed to until then', async () => {
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)));
    await bed.sim.control.closeLocation(bed.office, new Date(Date.now() + 3_600_000).toISOString());
    assert.equal((await resolver.resolve(bed.office, 'CRVS_OFFICE')).id, bed.office);
    assert.equal(await resolver.officeClosedOn(bed.office), undefined);
  });

  it('closed while the bridge runs: its rows are dead with what to do, the others delivered', async () => {
    let now = Date.now();
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    // Resolved at start, as the routing table is, while both offices are open.
    await resolver.preload([
      { ref: bed.office, type: 'CRVS_OFFICE' },
      { ref: open, type: 'CRVS_OFFICE' },
    ]);
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
      officeClosedOn: (office) => resolver.officeClosedOn(office),
    });
    try {
      bed.ledger.recordEvent(birthEvent(bed.office, 1));
      await until(worker, () => bed.ledger.list({ states: ['delivered'] }).length === 1);

      await bed.sim.control.closeLocation(bed.office, new Date(now - 60_000).toISOString());
      // An hour on, the resolver asks OpenCRVS again about the offices it found.
      now += 61 * 60_000;
      const closed = bed.ledger.recordEvent(birthEvent(bed.office, 2)).row;
      const elsewhere = bed.ledger.recordEvent(birthEvent(open, 3)).row;
      await until(worker, () => bed.ledger.get(closed.id)?.state === 'dead');
      await until(worker, () => bed.ledger.get(elsewhere.id)?.state === 'delivered');
      assert.equal(worker.held(), undefined, 'the queue is not held');
      const dead = bed.ledger.get(closed.id);
      assert.equal(dead?.lastError?.kind, 'office-closed');
      assert.match(
        dead?.lastError?.message ?? '',
        /office .* was closed on .*\(its validUntil\); nothing was sent.*replay/,
      );
      assert.equal((await bed.sim.control.events()).length, 2, 'nothing was created for the closed office');
      assert.deepEqual(await bed.sim.control.events({ transactionId: closed.createTransactionId }), []);
    } finally {
      await worker.stop({ drainMs: 5000 });
    }
  });

  it('a NOTIFY in doubt is resent to its office, closed since, when the record named it too', async () => {
    let now = Date.now();
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    const event = birthEvent(bed.office, 1);
    assert.ok(event.payload);
    const { row } = bed.ledger.recordEvent({ ...event, payload: { ...event.payload, officeFromRecord: true } });
    await bed.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['notify'], times: 1 } });
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
      // As src/app.ts wires them: whether the record's office is listed, and whether it is closed, apart.
      officeOfRecord: async (office) => {
        await resolver.resolve(office, 'CRVS_OFFICE', { closedToo: true });
      },
      officeClosedOn: (office) => resolver.officeClosedOn(office),
    });
    try {
      await until(worker, () => bed.ledger.get(row.id)?.state === 'failed');
      await bed.sim.control.closeLocation(bed.office, new Date(now - 60_000).toISOString());
      now += 61 * 60_000;
      const closedOn = new Date(now - 61 * 60_000 - 60_000).toISOString();
      assert.equal(await resolver.officeClosedOn(bed.office), `closed on ${closedOn} (its validUntil)`);
      await until(worker, () => bed.ledger.get(row.id)?.state === 'delivered');
    } finally {
      await worker.stop({ drainMs: 5000 });
    }
    const [stored] = await bed.sim.control.events({ transactionId: bed.ledger.get(row.id)?.createTransactionId });
    assert.equal(stored?.trackingId, bed.ledger.get(row.id)?.trackingId, 'the one event OpenCRVS holds');
  });

  it('a closure seen through the office id reaches the externalId the routing table names', async () => {
    let now = Date.now();
    const office = bed.sim.locations.find((l) => l.id === bed.office);
    assert.ok(office?.externalId);
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    await resolver.preload([{ ref: office.externalId, type: 'CRVS_OFFICE' }]);
    assert.equal(resolver.resolveSync(office.externalId, 'CRVS_OFFICE'), bed.office);
    await bed.sim.control.closeLocation(bed.office, new Date(now - 60_000).toISOString());
    now += 61 * 60_000;
    assert.ok(await resolver.officeClosedOn(bed.office), 'the worker asks by id');
    assert.equal(resolver.resolveSync(office.externalId, 'CRVS_OFFICE'), undefined, 'mapping sees it closed');
    assert.equal(resolver.closedSync(office.externalId), true);
  });

  it('a refresh OpenCRVS cannot answer is not asked again for every row: the office found stands a minute', async () => {
    let now = Date.now();
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    await resolver.resolve(bed.office, 'CRVS_OFFICE');
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, operations: ['locations'] } });
    const asked = async () => (await bed.sim.control.requests()).locations ?? 0;
    const before = await asked();
    now += 61 * 60_000;
    for (let i = 0; i < 5; i++) assert.equal(await resolver.officeClosedOn(bed.office), undefined);
    assert.equal((await asked()) - before, 1, 'one refresh tried, not one per row');
    now += 61_000;
    await resolver.officeClosedOn(bed.office);
    assert.equal((await asked()) - before, 2, 'tried again a minute later');
  });

  it('while OpenCRVS cannot be asked again, an office found open stays open', async () => {
    let now = Date.now();
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    await resolver.resolve(bed.office, 'CRVS_OFFICE');
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, operations: ['locations'] } });
    now += 61 * 60_000;
    assert.equal(await resolver.officeClosedOn(bed.office), undefined);
    assert.equal((await resolver.resolve(bed.office, 'CRVS_OFFICE')).id, bed.office);
  });
});

// OpenCRVS 1.9 has no validUntil: an office is archived by setting its FHIR status to `inactive`, and the v1
// location API still lists it (unless asked for `status=active`), while createdAtLocation takes any leaf.
describe('an office OpenCRVS 1.9 deactivated (status inactive)', () => {
  let bed: TestBed;
  let open: string;
  beforeEach(async () => {
    bed = await testBed({ version: '1.9' });
    open = otherOffice(bed.sim, bed.office);
  });
  afterEach(async () => {
    await bed.close();
  });

  it('is refused at start-up with the routing key, and named as deactivated, with no date', async () => {
    await bed.sim.control.deactivateLocation(bed.office);
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)));
    await assert.rejects(
      resolver.preload([
        { ref: bed.office, type: 'CRVS_OFFICE', key: 'routing.defaultOffice' },
        { ref: open, type: 'CRVS_OFFICE', key: "routing.facilities['a'].office" },
      ]),
      (err: Error) => {
        assert.match(
          err.message,
          /routing\.defaultOffice: location .* is an office OpenCRVS deactivated \(its status is inactive/,
        );
        assert.doesNotMatch(err.message, /closed on|validUntil/, 'no date is claimed');
        assert.doesNotMatch(err.message, /routing\.facilities/, 'the open office is not named');
        return true;
      },
    );
    assert.equal(resolver.resolveSync(bed.office, 'CRVS_OFFICE'), undefined, 'a mapping gets no deactivated office');
    assert.equal(resolver.closedSync(bed.office), true, 'nor passes it through as a UUID the record named');
    assert.equal(resolver.resolveSync(open, 'CRVS_OFFICE'), open);
  });

  it('deactivated while the bridge runs: mapping sees it under the externalId routed to, its rows are dead, the others delivered', async () => {
    let now = Date.now();
    const office = bed.sim.locations.find((l) => l.id === bed.office);
    assert.ok(office?.externalId);
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)), { now: () => now });
    // Resolved at start, as the routing table is, while both offices are active.
    await resolver.preload([
      { ref: office.externalId, type: 'CRVS_OFFICE' },
      { ref: open, type: 'CRVS_OFFICE' },
    ]);
    assert.equal(resolver.resolveSync(office.externalId, 'CRVS_OFFICE'), bed.office);
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
      officeClosedOn: (id) => resolver.officeClosedOn(id),
    });
    try {
      bed.ledger.recordEvent(birthEvent(bed.office, 1));
      await until(worker, () => bed.ledger.list({ states: ['delivered'] }).length === 1);

      await bed.sim.control.deactivateLocation(bed.office);
      // An hour on, the resolver asks OpenCRVS again about the offices it found.
      now += 61 * 60_000;
      const closed = bed.ledger.recordEvent(birthEvent(bed.office, 2)).row;
      const elsewhere = bed.ledger.recordEvent(birthEvent(open, 3)).row;
      await until(worker, () => bed.ledger.get(closed.id)?.state === 'dead');
      await until(worker, () => bed.ledger.get(elsewhere.id)?.state === 'delivered');
      assert.equal(worker.held(), undefined, 'the queue is not held');
      const dead = bed.ledger.get(closed.id);
      assert.equal(dead?.lastError?.kind, 'office-closed');
      assert.match(
        dead?.lastError?.message ?? '',
        /office .* was deactivated \(its status is inactive.*\); nothing was sent.*replay/,
      );
      assert.deepEqual(await bed.sim.control.events({ transactionId: closed.createTransactionId }), []);
      assert.equal((await bed.sim.control.events()).length, 2, 'nothing was created for the deactivated office');
      // The worker asked by id; mapping reads the externalId the routing table names.
      assert.equal(resolver.resolveSync(office.externalId, 'CRVS_OFFICE'), undefined, 'mapping sees it deactivated');
      assert.equal(resolver.closedSync(office.externalId), true);
    } finally {
      await worker.stop({ drainMs: 5000 });
    }
  });

  it('a health facility deactivated is still a place of birth', async () => {
    const facility = bed.sim.locations.find((l) => l.locationType === 'HEALTH_FACILITY');
    assert.ok(facility);
    await bed.sim.control.deactivateLocation(facility.id);
    const resolver = new LocationResolver(createOpenCrvsClient(clientSettings(bed.sim)));
    assert.equal((await resolver.resolve(facility.id, 'HEALTH_FACILITY')).id, facility.id);
    assert.equal(resolver.resolveSync(facility.id, 'HEALTH_FACILITY'), facility.id);
  });
});
