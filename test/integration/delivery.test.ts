import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import { hashPayload, type Ledger, openLedger } from '../../src/ledger/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { createOpenCrvsClient } from '../../src/opencrvs/client.js';
import {
  assertExactlyOnce,
  birthEvent,
  birthPayload,
  clientSettings,
  fastDelivery,
  type TestBed,
  testBed,
  until,
} from './delivery-helpers.js';

describe('delivery to the OpenCRVS simulator', () => {
  let bed: TestBed;
  beforeEach(async () => {
    bed = await testBed();
  });
  afterEach(async () => {
    await bed.close();
  });
  /** One worker on `ledger` until nothing is left to do. */
  const run = async (ledger: Ledger) => {
    const worker = createDeliveryWorker({
      ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    await worker.stop({ drainMs: 5000 });
  };

  it('creates and notifies each queued event once, two calls per event, and records the tracking ids', async () => {
    for (let i = 0; i < 12; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 60_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 12);
    const [event] = await bed.sim.control.events();
    assert.ok(event?.actions.find((a) => a.type === 'NOTIFY' && a.status === 'Requested')?.declaration['child.dob']);
  });

  it('logs each delivery with its source id and tracking ID, never its source reference', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    // A resource id that is the medical record number, as some EMRs have it.
    const { row } = bed.ledger.recordEvent({
      ...birthEvent(bed.office, 0),
      subjectKey: 'Patient/MRN-77120',
      sourceRef: 'Encounter/MRN-77120-birth',
    });
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
      logger,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    await worker.stop({ drainMs: 5000 });
    const delivered = bed.ledger.get(row.id);
    assert.equal(delivered?.state, 'delivered');
    const [event] = await bed.sim.control.events();
    assert.ok(event?.trackingId, 'the simulator gave a tracking ID');
    assert.equal(delivered?.trackingId, event.trackingId);
    const line = lines.find((l) => l.msg === 'delivered to OpenCRVS');
    assert.ok(line, JSON.stringify(lines));
    // grep the log for the tracking ID on the certificate: that line, its row and its source.
    assert.equal(line.trackingId, event.trackingId);
    assert.equal(line.source, 'emr');
    assert.equal(line.rowId, row.id);
    assert.doesNotMatch(JSON.stringify(lines), /MRN-77120/, 'a source reference may be a medical record number');
  });

  it('delivers with one create-and-notify call in single-call mode, with the same transactionId scheme', async () => {
    for (let i = 0; i < 5; i++) bed.ledger.recordEvent(birthEvent(bed.office, i));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: { ...fastDelivery, mode: 'single-call' },
    });
    await worker.runUntilIdle({ timeoutMs: 60_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 5);
    const row = bed.ledger.list({ limit: 1 })[0];
    const events = await bed.sim.control.events({ transactionId: row?.baseTransactionId });
    assert.equal(events.length, 1);
  });

  it('switching from two-step to single-call after a create finds the same event', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    await api.createEvent({ type: 'birth', transactionId: row.createTransactionId, createdAtLocation: bed.office });
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api,
      settings: { ...fastDelivery, mode: 'single-call' },
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 1);
  });

  it('switching from single-call to two-step after a single call whose answer was lost sends no second NOTIFY', async () => {
    // The single call is stored, left pending by the country configuration, and its answer lost.
    await bed.sim.control.configure({
      actionConfirmation: 'pending',
      faults: { commitThenFailRate: 1, operations: ['createAndNotify'], times: 1 },
    });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    const single = createDeliveryWorker({
      ledger: bed.ledger,
      api,
      settings: { ...fastDelivery, mode: 'single-call' },
    });
    await until(single, () => bed.ledger.get(row.id)?.state === 'failed');
    await single.stop({ drainMs: 5000 });
    const twoStep = createDeliveryWorker({ ledger: bed.ledger, api, settings: fastDelivery });
    await twoStep.runUntilIdle({ timeoutMs: 30_000 });
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered-pending');
    const [event, ...others] = await bed.sim.control.events();
    assert.equal(others.length, 0, 'one event');
    const notifies = event?.actions.filter((a) => a.type === 'NOTIFY').map((a) => `${a.status} ${a.transactionId}`);
    assert.deepEqual(notifies, [`Requested ${row.baseTransactionId}`], "the single call's NOTIFY alone");
  });

  it('shows a notification the country configuration has not confirmed yet as delivered-pending', async () => {
    await bed.sim.control.configure({ actionConfirmation: 'pending' });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    const done = bed.ledger.get(row.id);
    assert.equal(done?.state, 'delivered-pending');
    assert.ok(done?.trackingId);
  });

  it('a failed confirmation leaves the NOTIFY undecided: dead with what to do; decided later, a replay settles it', async () => {
    await bed.sim.control.configure({ actionConfirmation: 'fail' });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    const dead = bed.ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.lastError?.kind, 'confirmation-failed');
    assert.match(dead?.lastError?.message ?? '', /stays undecided.*confirm or reject that request, then replay/);
    const [event] = await bed.sim.control.events();
    assert.ok(event);
    const requested = () => event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested');
    assert.equal(requested().length, 1);
    // A correction from the EMR meanwhile requeues the row; the request still stands undecided: still dead.
    await bed.sim.control.configure({ actionConfirmation: 'accept' });
    bed.ledger.recordEvent(birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' }));
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    assert.deepEqual(
      [bed.ledger.get(row.id)?.state, bed.ledger.get(row.id)?.lastError?.kind],
      ['dead', 'confirmation-failed'],
    );
    // The country configuration, mended, confirms the request; the replay asks before sending.
    await bed.sim.control.confirm(event.id, 'accept');
    assert.deepEqual(bed.ledger.replay([row.id]).requeued, [row.id]);
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    await worker.stop({ drainMs: 5000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 1);
    assert.equal(
      bed.ledger.get(row.id)?.updatesAfterNotification,
      1,
      'OpenCRVS holds the first copy, not the correction',
    );
    const [after] = await bed.sim.control.events();
    assert.equal(after?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested').length, 1);
  });

  it('a ledger lost after a rejected NOTIFY was replayed and accepted: the new ledger records it delivered', async () => {
    await bed.sim.control.configure({ actionConfirmation: 'reject' });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await run(bed.ledger);
    assert.equal(bed.ledger.get(row.id)?.state, 'dead');
    await bed.sim.control.configure({ actionConfirmation: 'accept' });
    bed.ledger.replay([row.id]);
    await run(bed.ledger);
    assert.equal(bed.ledger.get(row.id)?.state, 'delivered');
    // The ledger is lost; the record is read again into a fresh one, at generation 0.
    const fresh = openLedger(join(bed.dir, 'fresh.db'));
    try {
      const { row: again } = fresh.recordEvent(birthEvent(bed.office, 1));
      await run(fresh);
      const settled = fresh.get(again.id);
      assert.equal(settled?.state, 'delivered', settled?.lastError?.message);
      assert.equal(settled?.trackingId, bed.ledger.get(row.id)?.trackingId);
    } finally {
      fresh.close();
    }
    const [event] = await bed.sim.control.events();
    assert.deepEqual(
      event?.actions.filter((a) => a.type === 'NOTIFY').map((a) => a.status),
      ['Requested', 'Rejected', 'Requested', 'Accepted'],
      'no NOTIFY sent from the fresh ledger',
    );
  });

  it('a ledger restored from a backup taken between create and NOTIFY asks OpenCRVS before it notifies', async () => {
    // Rejected, then replayed under generation r1, whose NOTIFY waits for the country configuration.
    await bed.sim.control.configure({ actionConfirmation: 'reject' });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await run(bed.ledger);
    assert.equal(bed.ledger.get(row.id)?.state, 'dead');
    await bed.sim.control.configure({ actionConfirmation: 'pending' });
    bed.ledger.replay([row.id]);
    await run(bed.ledger);
    const first = bed.ledger.get(row.id);
    assert.equal(first?.state, 'delivered-pending');
    // The backup knew the event (its create had answered) but no NOTIFY, and no replay: generation 0.
    const restored = openLedger(join(bed.dir, 'restored.db'));
    try {
      const { row: again } = restored.recordEvent(birthEvent(bed.office, 1));
      restored.recordCreated(again.id, first?.eventId ?? '', first?.trackingId ?? '');
      await run(restored);
      const settled = restored.get(again.id);
      assert.equal(settled?.state, 'delivered-pending', settled?.lastError?.message);
      assert.equal(settled?.trackingId, first?.trackingId);
    } finally {
      restored.close();
    }
    const [event] = await bed.sim.control.events();
    assert.deepEqual(
      event?.actions.filter((a) => a.type === 'NOTIFY').map((a) => `${a.status} ${a.transactionId}`),
      [
        `Requested ${row.notifyTransactionId}`,
        `Rejected ${row.notifyTransactionId}`,
        `Requested ${first?.notifyTransactionId}`,
      ],
      'no NOTIFY sent from the restored ledger',
    );
  });

  it('a restored row resends r0, which OpenCRVS rejected since, while r1 stands accepted: delivered, not dead', async () => {
    // docs/deployment.md: a ledger is restored from a backup no newer than OpenCRVS's. The backup is taken
    // after a 503 to the first NOTIFY (nothing stored); since then, that NOTIFY was resent and rejected,
    // the corrected record requeued the row under r1, and r1 was accepted.
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    await bed.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, operations: ['notify'], times: 1 } });
    const w = createDeliveryWorker({ ledger: bed.ledger, api, settings: fastDelivery });
    await until(w, () => bed.ledger.get(row.id)?.state === 'failed' && bed.ledger.get(row.id)?.eventId !== null);
    await w.stop({ drainMs: 2000 });
    bed.ledger.close();
    const backup = join(bed.dir, 'backup.db');
    copyFileSync(bed.dbPath, backup);
    let ledger = openLedger(bed.dbPath);
    try {
      await bed.sim.control.configure({ actionConfirmation: 'reject', faults: {} });
      const w1 = createDeliveryWorker({ ledger, api, settings: fastDelivery });
      await until(w1, () => ledger.get(row.id)?.state === 'dead');
      await bed.sim.control.configure({ actionConfirmation: 'accept' });
      ledger.recordEvent(birthEvent(bed.office, 1, { 'child.dob': '2026-01-03' }));
      await until(w1, () => ledger.get(row.id)?.state === 'delivered');
      await w1.stop({ drainMs: 2000 });
      const delivered = ledger.get(row.id);
      ledger.close();
      copyFileSync(backup, bed.dbPath);
      ledger = openLedger(bed.dbPath);
      const restored = ledger.get(row.id);
      assert.equal(restored?.state, 'failed');
      assert.equal(restored?.requeues, 0);
      const w2 = createDeliveryWorker({ ledger, api, settings: fastDelivery });
      await until(w2, () => !['failed', 'pending', 'delivering'].includes(ledger.get(row.id)?.state ?? ''));
      await w2.stop({ drainMs: 2000 });
      const now = ledger.get(row.id);
      assert.equal(now?.state, 'delivered', now?.lastError?.message);
      assert.equal(now?.trackingId, delivered?.trackingId);
      // OpenCRVS holds the corrected copy, the restored row the first one: an update after notification.
      assert.notEqual(now?.updatedAfterNotificationAt, null);
      const events = await bed.sim.control.events();
      assert.equal(events.length, 1);
      const notifies = events.flatMap((e) => e.actions).filter((a) => a.type === 'NOTIFY');
      assert.deepEqual(
        notifies.map((a) => `${a.status} ${a.transactionId}`),
        [
          `Requested ${row.notifyTransactionId}`,
          `Rejected ${row.notifyTransactionId}`,
          `Requested ${delivered?.notifyTransactionId}`,
          `Accepted ${delivered?.notifyTransactionId}`,
        ],
        'the resend of r0 answered with its rejection, nothing new stored',
      );
    } finally {
      ledger.close();
    }
  });

  it('sends a notification the country configuration rejects to dead with the reason', async () => {
    await bed.sim.control.configure({ actionConfirmation: 'reject' });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    const dead = bed.ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.attempts, 1);
    assert.equal(dead?.lastError?.kind, 'rejected');
    assert.equal(dead?.lastError?.classification, 'permanent');
  });

  it('rejected for its copy while a correction came: the correction goes next, on the same event, and is accepted', async () => {
    await bed.sim.control.configure({ actionConfirmation: 'reject' });
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    const api = createOpenCrvsClient(clientSettings(bed.sim));
    const notify = api.notify.bind(api);
    let notifies = 0;
    api.notify = async (input) => {
      notifies++;
      if (notifies === 1) {
        // The EMR corrects the record while the first NOTIFY is on its way; the country configuration
        // rejects that first copy, and accepts what comes after.
        const corrected = birthEvent(bed.office, 1, { 'child.gender': 'male' });
        bed.ledger.recordEvent({ ...corrected, sourceVersion: '2' });
        try {
          return await notify(input); // throws the rejection
        } finally {
          await bed.sim.control.configure({ actionConfirmation: 'accept' });
        }
      }
      return notify(input);
    };
    const worker = createDeliveryWorker({ ledger: bed.ledger, api, settings: fastDelivery });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    const delivered = bed.ledger.get(row.id);
    assert.equal(delivered?.state, 'delivered');
    assert.match(delivered?.notifyTransactionId ?? '', /:notify:r1$/);
    assert.deepEqual(
      bed.ledger.attempts(row.id).map((a) => [a.step, a.outcome, a.error?.kind ?? null]),
      [
        ['notify', 'dead', 'rejected'],
        ['notify', 'delivered', null],
      ],
    );
    const [event, ...others] = await bed.sim.control.events();
    assert.equal(others.length, 0, 'one event');
    const statuses = event?.actions.filter((a) => a.type === 'NOTIFY').map((a) => a.status);
    assert.deepEqual(statuses, ['Requested', 'Rejected', 'Requested', 'Accepted']);
    const accepted = event?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested').at(-1);
    assert.equal(accepted?.declaration['child.gender'], 'male', 'the correction is what OpenCRVS accepted');
  });

  it('a 400 goes to dead with the OpenCRVS field message, and the corrected record delivers it once', async () => {
    const { row } = bed.ledger.recordEvent(birthEvent(bed.office, 1, { 'child.favouriteColour': 'green' }));
    bed.ledger.recordEvent(birthEvent(bed.office, 2));
    const worker = createDeliveryWorker({
      ledger: bed.ledger,
      api: createOpenCrvsClient(clientSettings(bed.sim)),
      settings: fastDelivery,
    });
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    const dead = bed.ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.attempts, 1, 'no retries for a permanent error');
    assert.equal(dead?.lastError?.status, 400);
    assert.match(dead?.lastError?.message ?? '', /Unexpected field/);
    assert.match(dead?.lastError?.message ?? '', /child\.favouriteColour/);
    assert.doesNotMatch(dead?.lastError?.message ?? '', /green/, 'the echoed value is not stored');
    assert.equal(bed.ledger.attempts(row.id)[0]?.error?.status, 400);

    // The source maps the record again (a replay does this first; see sources/replay.ts), now without the
    // field: the dead row is queued again with the new payload and a fresh budget.
    const fixed = bed.ledger.recordEvent(birthEvent(bed.office, 1));
    assert.equal(fixed.change, 'replaced');
    assert.equal(fixed.row.state, 'pending');
    assert.equal(bed.ledger.get(row.id)?.payloadHash, hashPayload(birthPayload(bed.office, 1)));
    await worker.runUntilIdle({ timeoutMs: 30_000 });
    await assertExactlyOnce(bed.sim, bed.ledger, 2);
  });
});
