// The worker's recheck at the source (DeliverySettings.recheckAfterSeconds): which rows are rechecked,
// that the recheck can change them before they are sent, and that a failed recheck loses nothing.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { DeliverySettings } from '../../src/config/types.js';
import { createDeliveryWorker, type DeliveryWorker, type SourceRecheck } from '../../src/delivery/index.js';
import type { Ledger, LedgerPayload, LedgerRow } from '../../src/ledger/index.js';
import { OpenCrvsError } from '../../src/opencrvs/errors.js';
import { FakeOpenCrvs, TEST_DELIVERY_SETTINGS as settings } from './delivery-fake-api.js';
import { eventInput, payload, type TestClock, tempLedger, testClock } from './ledger-helpers.js';

describe('delivery worker: recheck at the source before the first send', () => {
  let clock: TestClock;
  let ledger: Ledger;
  let cleanup: () => void;
  let api: FakeOpenCrvs;
  /** The rows each recheck was given, and what it saw of them in the ledger while it ran. */
  let rechecked: Array<{ ids: number[]; statesDuring: string[] }>;
  let onRecheck: (rows: LedgerRow[]) => void;

  const recheck: SourceRecheck = {
    appliesTo: (row) => row.sourceId === 'emr',
    run: async (rows) => {
      rechecked.push({
        ids: rows.map((r) => r.id),
        statesDuring: rows.map((r) => ledger.get(r.id)?.state ?? 'missing'),
      });
      onRecheck(rows);
    },
  };
  const key = (subject: string) => ({
    sourceId: 'emr',
    eventType: 'birth',
    subjectKey: `Patient/${subject}`,
    sourceRef: `Patient/${subject}`,
  });
  const worker = (overrides: Partial<DeliverySettings> = {}, source: SourceRecheck | undefined = recheck) =>
    createDeliveryWorker({
      ledger,
      api,
      settings: { ...settings, ...overrides },
      workerId: 'w-test',
      now: clock.now,
      random: () => 1,
      ...(source ? { recheck: source } : {}),
    });
  /** Runs the worker until nothing is due (a recheck takes one round, the send the next). */
  const drain = async (w: DeliveryWorker) => {
    for (let i = 0; i < 10 && (await w.processNext()) > 0; i++);
  };

  beforeEach(() => {
    clock = testClock();
    ({ ledger, cleanup } = tempLedger(clock, 1));
    api = new FakeOpenCrvs();
    rechecked = [];
    onRecheck = () => undefined;
  });
  afterEach(() => cleanup());

  it('sends a row recorded moments ago without asking the source', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    clock.advance(29_999);
    await drain(worker());
    assert.equal(rechecked.length, 0);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('has the source recheck a replayed row before sending it, though its age budget starts at the replay', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', { classification: 'permanent', kind: 'bad-request', status: 400 });
    await drain(worker()); // new: sent at once, refused, dead
    assert.equal(ledger.get(row.id)?.state, 'dead');
    assert.equal(rechecked.length, 0);
    ledger.replay([row.id]); // at once: the row has not waited since its replay
    await drain(worker());
    assert.deepEqual(
      rechecked.map((r) => r.ids),
      [[row.id]],
      'it was dead, perhaps for long: the source confirms it first',
    );
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('has the source recheck a row that waited, unclaimed meanwhile, then sends it once', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    clock.advance(30_000);
    await drain(worker());
    assert.deepEqual(rechecked, [{ ids: [row.id], statesDuring: ['pending'] }]);
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered');
    assert.equal(done?.attempts, 1, 'the recheck is no attempt');
    assert.equal(done?.recheckedAt, clock.now());
    assert.equal(api.count('create'), 1);
  });

  it('a backlog that takes longer than recheckAfterSeconds to recheck still drains: a rechecked row keeps its place', async () => {
    // A review's soak: after an outage 9,000 rows waited; each recheck sent its rows to the back of the
    // queue, where they aged past the threshold again before their turn came: nothing was ever sent.
    const ids = ['1', '2', '3'].map((n) => ledger.recordEvent(eventInput(n)).row.id);
    clock.advance(30_000);
    onRecheck = () => clock.advance(31_000); // an EMR that takes longer than the threshold per recheck
    const w = worker({ concurrency: 1 });
    for (let i = 0; i < 12 && ids.some((id) => ledger.get(id)?.state !== 'delivered'); i++) await w.processNext();
    assert.deepEqual(
      ids.map((id) => ledger.get(id)?.state),
      ['delivered', 'delivered', 'delivered'],
    );
    assert.deepEqual(
      rechecked.map((r) => r.ids),
      ids.map((id) => [id]),
      'each rechecked once, then sent',
    );
  });

  it('sends what the recheck recorded: a newer payload, or nothing when it withdrew the row', async () => {
    const { row: updated } = ledger.recordEvent(eventInput('1'));
    const { row: withdrawn } = ledger.recordEvent(eventInput('2'));
    clock.advance(60_000);
    onRecheck = () => {
      ledger.recordEvent(eventInput('1', payload('Corrected'), '2'));
      ledger.cancelUnsent({ ...key('2'), reason: 'deleted in the source before it was sent' });
    };
    await drain(worker());
    assert.equal(rechecked.length, 1, 'one recheck for the rows claimed together');
    assert.deepEqual(rechecked[0]?.ids.sort(), [updated.id, withdrawn.id].sort());
    assert.equal(ledger.get(updated.id)?.state, 'delivered');
    assert.equal(ledger.get(updated.id)?.sourceVersion, '2');
    assert.equal(ledger.get(withdrawn.id)?.state, 'skipped');
    assert.equal(api.count('create'), 1, 'the withdrawn row never reached OpenCRVS');
  });

  it('rechecks at the end of a settle time shorter than recheckAfterSeconds', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    clock.advance(10_000);
    await drain(worker({ settleSeconds: 10, recheckAfterSeconds: 30 }));
    assert.equal(rechecked.length, 1);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('sends the rows as recorded when the recheck fails (an unreachable EMR stops no registration)', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    clock.advance(30_000);
    onRecheck = () => {
      throw new Error('EMR unreachable');
    };
    await drain(worker());
    assert.equal(rechecked.length, 1);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('rechecks a retried row again only after another full wait, its OpenCRVS event created or not', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    clock.advance(30_000);
    api.fail('create', { classification: 'retryable', kind: 'server', status: 502 }, 2);
    const w = worker({ baseDelayMs: 10_000 });
    await drain(w);
    assert.equal(rechecked.length, 1);
    assert.equal(ledger.get(row.id)?.state, 'failed');
    clock.advance(10_000); // retried 10 s after the recheck: no second recheck
    await drain(w);
    assert.equal(rechecked.length, 1);
    assert.equal(ledger.get(row.id)?.state, 'failed');
    clock.advance(30_000); // a full wait since the recheck: rechecked again
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 502 });
    await drain(w);
    assert.equal(rechecked.length, 2);
    assert.ok(ledger.get(row.id)?.eventId, 'created, not notified');
    clock.advance(60_000); // waited again: rechecked though its event exists (a withdrawal is then asked of OpenCRVS)
    await drain(w);
    assert.equal(rechecked.length, 3);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('leaves rows of sources that cannot recheck, and every row when turned off, to be sent as they are', async () => {
    const { row } = ledger.recordEvent({ ...eventInput('1'), sourceId: 'dhis2' });
    const { row: fhirRow } = ledger.recordEvent(eventInput('2'));
    clock.advance(30_000);
    await drain(worker({ recheckAfterSeconds: 0 }));
    await drain(worker());
    assert.equal(rechecked.length, 0);
    assert.equal(ledger.get(row.id)?.state, 'delivered');
    assert.equal(ledger.get(fhirRow.id)?.state, 'delivered');
  });

  it('a crash during the recheck leaves the row due again after the lock timeout, unsent', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    clock.advance(30_000);
    const [claimed] = ledger.claimDue('w-crashed', 1);
    assert.equal(claimed?.id, row.id);
    assert.equal(ledger.deferForRecheck([row.id], 'w-crashed', 300_000), 1);
    // The process dies here: no markRechecked.
    const waiting = ledger.get(row.id);
    assert.equal(waiting?.state, 'pending');
    assert.equal(waiting?.attempts, 0);
    assert.equal(waiting?.lockedBy, null);
    assert.equal(ledger.claimDue('w-test', 1).length, 0, 'not due during the lease');
    clock.advance(300_000);
    await drain(worker());
    assert.equal(rechecked.length, 1, 'rechecked again after the lease');
    assert.equal(ledger.get(row.id)?.state, 'delivered');
  });

  it('a withdrawn row with no OpenCRVS event is skipped without a call', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const [claimed] = ledger.claimDue('other', 1);
    assert.ok(claimed);
    ledger.cancelUnsent({ ...key('1'), reason: 'deleted in the source before it was sent' });
    ledger.handBack([row.id], 'other');
    await drain(worker({}, undefined));
    const done = ledger.get(row.id);
    assert.deepEqual([done?.state, done?.skipReason], ['skipped', 'deleted in the source before it was sent']);
    assert.equal(api.calls.length, 0);
  });

  it('a withdrawn row whose NOTIFY never reached OpenCRVS is skipped, naming the event left there', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 500 });
    const w = worker({ baseDelayMs: 1000 }, undefined);
    await drain(w);
    assert.equal(ledger.get(row.id)?.state, 'failed');
    const tracking = ledger.get(row.id)?.trackingId;
    assert.ok(tracking, 'created in OpenCRVS');
    ledger.cancelUnsent({ ...key('1'), reason: 'deleted in the source before it was sent' });
    assert.equal(ledger.get(row.id)?.state, 'failed', 'not cancelled while a NOTIFY may be in OpenCRVS');
    clock.advance(1000);
    await drain(w);
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'skipped');
    assert.equal(
      done?.skipReason,
      `deleted in the source before it was sent (its OpenCRVS event ${tracking} was created and never notified)`,
    );
    assert.equal(api.count('notify'), 1, 'no NOTIFY after the withdrawal');
  });

  it('a withdrawn record that comes back while OpenCRVS is asked about it is sent after all, not skipped', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 500 });
    const w = worker({ baseDelayMs: 1000 }, undefined);
    await drain(w);
    ledger.cancelUnsent({ ...key('1'), reason: 'deleted in the source before it was sent' });
    const original = api.createEvent.bind(api);
    api.createEvent = async (input) => {
      api.createEvent = original;
      ledger.recordEvent(eventInput('1', payload('Restored'), '2')); // undeleted in the EMR meanwhile
      return original(input);
    };
    clock.advance(1000);
    await drain(w);
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered', JSON.stringify(done));
    assert.equal(done?.skipReason, null);
  });

  it('a withdrawn row whose NOTIFY did reach OpenCRVS (answer lost) is delivered, the withdrawal counted after it', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.commitThenFail.add('notify');
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 500 });
    const w = worker({ baseDelayMs: 1000 }, undefined);
    await drain(w);
    assert.equal(ledger.get(row.id)?.state, 'failed', 'OpenCRVS has it; the bridge does not know');
    api.commitThenFail.clear();
    ledger.cancelUnsent({ ...key('1'), reason: 'inactive record (Patient.active = false)' });
    clock.advance(1000);
    await drain(w);
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered', 'the ledger tells what OpenCRVS holds');
    assert.equal(done?.updatesAfterNotification, 1);
    assert.equal(done?.withdrawnReason, 'inactive record (Patient.active = false)');
    assert.equal(api.count('notify'), 1, 'asked by an idempotent create, not by a second NOTIFY');
  });

  it('a replayed row withdrawn after an earlier NOTIFY reached OpenCRVS is found delivered under that generation', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.commitThenFail.add('notify');
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 500 });
    const w = worker({ baseDelayMs: 1000, maxAttempts: 1 }, undefined);
    await drain(w);
    assert.equal(ledger.get(row.id)?.state, 'dead', 'out of retries; OpenCRVS has the NOTIFY');
    api.commitThenFail.clear();
    assert.deepEqual(ledger.replay([row.id]).requeued, [row.id]);
    assert.match(ledger.get(row.id)?.notifyTransactionId ?? '', /:notify:r1$/);
    ledger.cancelUnsent({ ...key('1'), reason: 'deleted in the source before it was sent' });
    await drain(w);
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered', 'found under the first generation, :notify');
    assert.equal(api.count('notify'), 1, 'no second NOTIFY');
  });

  it('a record withdrawn while its create is under way gets no NOTIFY; the next attempt settles it', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const create = api.createEvent.bind(api);
    api.createEvent = async (input) => {
      const event = await create(input);
      if (api.count('create') === 1)
        ledger.cancelUnsent({ ...key('1'), reason: 'deleted in the source before it was sent' });
      return event;
    };
    await drain(worker({}, undefined));
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'skipped');
    assert.match(done?.skipReason ?? '', /was created and never notified\)$/);
    assert.equal(api.count('notify'), 0);
  });

  it('a withdrawal during a NOTIFY that succeeds is counted as an update after notification', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    const notify = api.notify.bind(api);
    api.notify = async (input) => {
      ledger.cancelUnsent({ ...key('1'), reason: 'deleted in the source before it was sent' });
      return notify(input);
    };
    await drain(worker({}, undefined));
    const done = ledger.get(row.id);
    assert.deepEqual(
      [done?.state, done?.updatesAfterNotification, done?.withdrawnReason],
      ['delivered', 1, 'deleted in the source before it was sent'],
    );
  });

  it('a correction while a NOTIFY is in doubt counts once, however often it is seen', async () => {
    const { row } = ledger.recordEvent(eventInput('1'));
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 500 });
    const w = worker({ baseDelayMs: 1000 }, undefined);
    await drain(w);
    for (let i = 0; i < 3; i++) ledger.recordEvent(eventInput('1', payload('Corrected'), '2'));
    assert.equal(ledger.get(row.id)?.updatesAfterNotification, 1, 'seen three times, one update');
  });

  it('a correction after a NOTIFY refused with 503 (never processed) is sent, not counted', async () => {
    const { row } = ledger.recordEvent(eventInput('2'));
    api.fail('notify', { classification: 'retryable', kind: 'server', status: 503 });
    await drain(worker({ baseDelayMs: 1000 }, undefined));
    assert.equal(ledger.get(row.id)?.state, 'failed');
    const change = ledger.recordEvent(eventInput('2', payload('Corrected'), '2')).change;
    assert.equal(change, 'replaced', 'the correction goes out with the retry');
    assert.equal(ledger.get(row.id)?.updatesAfterNotification, 0);
  });
});

describe('delivery worker: a facility OpenCRVS could not be asked about when the record was mapped', () => {
  const FACILITY = '5b0e1b7a-9a43-4c39-8d0b-6a0e3f1c2d44';
  let clock: TestClock;
  let ledger: Ledger;
  let cleanup: () => void;
  let api: FakeOpenCrvs;
  /** What OpenCRVS lists under the reference now, and how often the worker asked. */
  let listed: string | undefined;
  let lookups: number;
  let remaps: number[][];
  let onRemap: (rows: LedgerRow[]) => void;

  /** The payload a mapping recorded while OpenCRVS could not be asked: the UUID as given, marked. */
  const unchecked = (): LedgerPayload => ({
    ...payload('Test', { 'child.birthLocation': FACILITY, 'child.placeOfBirth': 'HEALTH_FACILITY' }),
    facility: FACILITY,
    facilityUnchecked: FACILITY,
  });
  const recheck: SourceRecheck = {
    appliesTo: (row) => row.sourceId === 'emr',
    run: async (rows) => {
      remaps.push(rows.map((r) => r.id));
      onRemap(rows);
    },
  };
  const worker = (source: SourceRecheck | null = recheck) =>
    createDeliveryWorker({
      ledger,
      api,
      settings: { ...settings, recheckAfterSeconds: 0 },
      workerId: 'w-test',
      now: clock.now,
      random: () => 1,
      locationNow: async (ref, type) => {
        lookups++;
        assert.equal(ref, FACILITY);
        assert.equal(type, 'HEALTH_FACILITY');
        return listed;
      },
      ...(source ? { recheck: source } : {}),
    });
  const drain = async (w: DeliveryWorker) => {
    for (let i = 0; i < 10 && (await w.processNext()) > 0; i++);
  };

  beforeEach(() => {
    clock = testClock();
    ({ ledger, cleanup } = tempLedger(clock, 1));
    api = new FakeOpenCrvs();
    listed = FACILITY;
    lookups = 0;
    remaps = [];
    onRemap = () => undefined;
  });
  afterEach(() => cleanup());

  it('sends the row as recorded when OpenCRVS lists it as it was given', async () => {
    const { row } = ledger.recordEvent(eventInput('1', unchecked()));
    await drain(worker());
    assert.equal(ledger.get(row.id)?.state, 'delivered');
    assert.deepEqual([lookups, remaps.length], [1, 0]);
  });

  it('has the record mapped again before anything is sent when OpenCRVS lists it otherwise, and sends that', async () => {
    const { row } = ledger.recordEvent(eventInput('1', unchecked()));
    listed = undefined; // not a facility of this deployment
    onRemap = () => ledger.recordEvent(eventInput('1', payload('Test')));
    await drain(worker());
    assert.deepEqual(remaps, [[row.id]]);
    assert.equal(api.count('create'), 1, 'sent once, after the mapping');
    const done = ledger.get(row.id);
    assert.equal(done?.state, 'delivered');
    assert.equal(done?.attempts, 1, 'the check that sent nothing is no attempt');
    assert.equal(done?.payload?.facility, undefined);
    assert.equal(done?.payload?.declaration['child.birthLocation'], undefined);
  });

  it('does not send the row as recorded when its record cannot be mapped again: it waits', async () => {
    const { row } = ledger.recordEvent(eventInput('1', unchecked()));
    listed = undefined;
    onRemap = () => {
      throw new Error('EMR unreachable');
    };
    await drain(worker());
    assert.deepEqual(remaps, [[row.id]]);
    assert.equal(api.count('create') + api.count('notify'), 0, 'nothing sent');
    const waiting = ledger.get(row.id);
    assert.equal(waiting?.state, 'pending');
    assert.ok((waiting?.nextRunAt ?? 0) > clock.now(), 'it waits out the lease, then is tried again');
  });

  it('makes the row dead, saying to replay, when no source can map the record again', async () => {
    const { row } = ledger.recordEvent(eventInput('1', unchecked()));
    listed = undefined;
    await drain(worker(null));
    const dead = ledger.get(row.id);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.lastError?.kind, 'facility-changed');
    assert.match(dead?.lastError?.message ?? '', /could not be asked about when it was mapped.*Replay the row/);
    assert.equal(api.count('create'), 0);
  });

  it('retries the row, sending nothing, while OpenCRVS cannot be asked at delivery either', async () => {
    const { row } = ledger.recordEvent(eventInput('1', unchecked()));
    const w = createDeliveryWorker({
      ledger,
      api,
      settings: { ...settings, recheckAfterSeconds: 0 },
      workerId: 'w-test',
      now: clock.now,
      random: () => 1,
      recheck,
      locationNow: async () => {
        throw new OpenCrvsError({ kind: 'server', classification: 'retryable', status: 503, message: 'down' });
      },
    });
    await w.processNext();
    const failed = ledger.get(row.id);
    assert.deepEqual([failed?.state, failed?.lastError?.kind], ['failed', 'server']);
    assert.equal(api.calls.length, 0);
  });

  it('resends a NOTIFY in doubt exactly as it went, without looking the facility up again', async () => {
    const { row } = ledger.recordEvent(eventInput('1', unchecked()));
    api.fail('notify', { classification: 'retryable', kind: 'timeout' });
    await drain(worker());
    assert.equal(ledger.get(row.id)?.state, 'failed');
    assert.equal(lookups, 1);
    listed = undefined; // OpenCRVS answers otherwise now: the copy that may be stored is resent all the same
    clock.advance(60_000);
    await drain(worker());
    assert.equal(ledger.get(row.id)?.state, 'delivered');
    assert.deepEqual([lookups, remaps.length], [1, 0]);
    assert.equal(ledger.get(row.id)?.payload?.facility, FACILITY);
  });
});
