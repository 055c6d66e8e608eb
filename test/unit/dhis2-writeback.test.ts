// The write-back queue and worker on a real ledger file with a scripted target: retries with backoff,
// permanent failures, the retry budget, crash catch-up, and the delivery state left untouched throughout.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { WriteBackSettings } from '../../src/config/types.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import {
  WriteBackError,
  type WriteBackItem,
  type WriteBackJob,
  WriteBackRunner,
  WriteBackStore,
  type WriteBackTarget,
  type WriteResult,
  writeBackDelay,
} from '../../src/sources/writeback/index.js';
import { MAX_EARLIER_TRACKING_IDS } from '../../src/sources/writeback/store.js';

const SETTINGS: WriteBackSettings = {
  enabled: true,
  target: 'identifier',
  resource: 'subject',
  identifierSystem: 'http://opencrvs.org/tracking-id',
  maxAttempts: 3,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
};

class ScriptedTarget implements WriteBackTarget {
  calls: WriteBackJob[] = [];
  constructor(readonly script: Array<WriteResult | Error>) {}
  async write(job: WriteBackJob): Promise<WriteResult> {
    this.calls.push(job);
    const next = this.script.shift() ?? 'written';
    if (next instanceof Error) throw next;
    return next;
  }
}

/**
 * Hangs until its signal fires (the runner cutting it off), and then fails as the source clients do; a
 * call nobody cuts off ends at the source's own timeout (1 s here), a real failure of the attempt.
 */
class HangingTarget implements WriteBackTarget {
  calls = 0;
  write(_job: WriteBackJob, signal?: AbortSignal): Promise<WriteResult> {
    this.calls++;
    return new Promise((_resolve, reject) => {
      const timer = setTimeout(
        () => reject(new WriteBackError('DHIS2 write-back: read event failed: timeout', false)),
        1000,
      );
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(new WriteBackError('DHIS2 write-back: read event: cut off by the bridge', false));
        },
        { once: true },
      );
    });
  }
}

/** Fails once as a source that is down does, then hangs (HangingTarget). */
function failingThenHanging(hanging: HangingTarget): WriteBackTarget {
  let failed = false;
  return {
    write: (job, signal) => {
      if (failed) return hanging.write(job, signal);
      failed = true;
      return Promise.reject(new WriteBackError('DHIS2 write-back: tracker import failed: HTTP 503', false));
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    assert.ok(waited < 5000, 'waited 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let dir: string;
let ledger: Ledger;
let clock: number;

function deliveredRow(subject: string, trackingId: string, sourceId = 'dhis2'): number {
  const { row } = ledger.recordEvent({
    sourceId,
    eventType: 'birth',
    subjectKey: `TrackedEntity/${subject}`,
    sourceRef: `Event/${subject}E`,
    payloadHash: `hash-${subject}`,
    payload: { declaration: {}, office: 'office' },
  });
  const [claimed] = ledger.claimDue('worker', 1, clock);
  assert.equal(claimed?.id, row.id);
  assert.ok(
    ledger.settle({
      id: row.id,
      workerId: 'worker',
      claimedPayloadHash: `hash-${subject}`,
      step: 'notify',
      startedAt: clock,
      settlement: { outcome: 'delivered', eventId: `ev-${subject}`, trackingId },
    }),
  );
  return row.id;
}

function runner(
  target: WriteBackTarget,
  sourceId = 'dhis2',
  deps: { batchSize?: number; maxJobsPerRun?: number } = {},
): WriteBackRunner {
  return new WriteBackRunner({
    ledger,
    logger: silentLogger,
    sources: [{ sourceId, settings: SETTINGS, target }],
    now: () => clock,
    random: () => 0,
    ...deps,
  });
}

function emptyReport() {
  return { tried: 0, written: 0, already: 0, failing: 0, abandoned: 0, cutOff: 0, failures: [] };
}

function delivered(rowId: number, trackingId: string, sourceId = 'dhis2') {
  return { type: 'delivered', row: { id: rowId, sourceId, trackingId } };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'writeback-unit-'));
  clock = 1_000_000;
  ledger = openLedger(join(dir, 'bridge.db'), { now: () => clock });
});
afterEach(() => {
  ledger.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('write-back worker', () => {
  it('writes a delivered row once, with the ledger references of the row', async () => {
    const id = deliveredRow('childA', 'TRK-A');
    const target = new ScriptedTarget(['written']);
    const wb = runner(target);
    wb.onOutcome(delivered(id, 'TRK-A'));
    wb.onOutcome(delivered(id, 'TRK-A')); // a repeated outcome is the same job
    assert.equal((await wb.drain()).tried, 1);
    assert.equal((await wb.drain()).tried, 0);
    assert.equal(target.calls.length, 1);
    assert.deepEqual(target.calls[0], {
      rowId: id,
      sourceId: 'dhis2',
      eventType: 'birth',
      subjectKey: 'TrackedEntity/childA',
      sourceRef: 'Event/childAE',
      trackingId: 'TRK-A',
      earlierTrackingIds: [],
      eventId: 'ev-childA',
    });
    assert.equal(wb.store.get(id)?.outcome, 'written');
    await wb.stop();
  });

  it('retries a failed write after its backoff, never changing the delivery state', async () => {
    const id = deliveredRow('childB', 'TRK-B');
    const target = new ScriptedTarget([new WriteBackError('DHIS2 write-back: timeout', false), 'written']);
    const wb = runner(target);
    wb.onOutcome(delivered(id, 'TRK-B'));
    await wb.drain();
    const failed = wb.store.get(id);
    assert.equal(failed?.attempts, 1);
    assert.equal(failed?.doneAt, null);
    assert.equal(failed?.lastError, 'DHIS2 write-back: timeout');
    assert.equal(failed?.nextAttemptAt, clock + writeBackDelay(1, 1000, 60_000, () => 0));
    assert.equal(ledger.get(id)?.state, 'delivered');

    clock += 999; // not yet due
    assert.equal((await wb.drain()).tried, 0);
    clock += 1;
    assert.equal((await wb.drain()).tried, 1);
    assert.equal(wb.store.get(id)?.outcome, 'written');
    assert.equal(wb.store.get(id)?.attempts, 2);
    assert.equal(ledger.get(id)?.state, 'delivered');
    await wb.stop();
  });

  it('abandons after the retry budget or at once on a permanent error, keeping the reason', async () => {
    const budget = deliveredRow('childC', 'TRK-C');
    const permanent = deliveredRow('childD', 'TRK-D');
    const retryable = () => new WriteBackError('FHIR write-back: HTTP 503', false);
    const target = new ScriptedTarget([retryable(), new WriteBackError('DHIS2 refused the write (E1032)', true)]);
    const wb = runner(target);
    wb.onOutcome(delivered(budget, 'TRK-C'));
    wb.onOutcome(delivered(permanent, 'TRK-D'));
    await wb.drain();
    assert.equal(wb.store.get(permanent)?.outcome, 'abandoned');
    assert.equal(wb.store.get(permanent)?.lastError, 'DHIS2 refused the write (E1032)');
    for (let i = 0; i < SETTINGS.maxAttempts; i++) {
      target.calls.length = 0;
      target.script.push(retryable());
      clock += SETTINGS.maxDelayMs;
      await wb.drain();
    }
    const item = wb.store.get(budget);
    assert.equal(item?.outcome, 'abandoned');
    assert.equal(item?.attempts, SETTINGS.maxAttempts);
    assert.match(item?.lastError ?? '', /503/);
    assert.equal(ledger.get(budget)?.state, 'delivered');
    assert.equal(ledger.get(permanent)?.state, 'delivered');
    await wb.stop();
  });

  it("a record its own source's user is not shown goes through the other sources of its records, the last reader first", async () => {
    const notShown = (source: string) =>
      new WriteBackError(`tracked entity is not shown to ${source}'s user`, true, { notShown: true });
    const own = new ScriptedTarget([]);
    const bo = new ScriptedTarget([]);
    const kenema = new ScriptedTarget([]);
    const source = (sourceId: string, target: WriteBackTarget, sharesRecordsWith: string[]) => ({
      sourceId,
      settings: SETTINGS,
      target,
      sharesRecordsWith,
    });
    const wb = new WriteBackRunner({
      ledger,
      logger: silentLogger,
      sources: [
        source('dhis2', own, ['bo', 'kenema']),
        source('bo', bo, ['dhis2', 'kenema']),
        source('kenema', kenema, ['dhis2', 'bo']),
        { sourceId: 'emr', settings: SETTINGS, target: new ScriptedTarget([]) },
      ],
      now: () => clock,
      random: () => 0,
    });
    const calls = () => [own, bo, kenema].map((t) => t.calls.length);
    const reset = () => {
      for (const t of [own, bo, kenema]) t.calls.length = 0;
    };

    // Transferred to Kenema, which read it last: tried there right after its own source.
    const moved = deliveredRow('moved', 'TRK-M');
    ledger.noteReadBy(moved, 'kenema');
    own.script.push(notShown('dhis2'));
    kenema.script.push('written');
    wb.onOutcome(delivered(moved, 'TRK-M'));
    assert.equal((await wb.drain()).written, 1);
    assert.deepEqual(calls(), [1, 0, 1]);
    assert.equal(wb.store.get(moved)?.outcome, 'written');
    assert.equal(wb.store.get(moved)?.sourceId, 'dhis2', "still its own source's job");
    reset();

    // Shown to nobody (deleted): every source asked once, and its own source's error stands.
    const gone = deliveredRow('gone', 'TRK-G');
    own.script.push(notShown('dhis2'));
    bo.script.push(notShown('bo'));
    kenema.script.push(notShown('kenema'));
    wb.onOutcome(delivered(gone, 'TRK-G'));
    assert.equal((await wb.drain()).abandoned, 1);
    assert.deepEqual(calls(), [1, 1, 1]);
    assert.equal(wb.store.get(gone)?.lastError, "tracked entity is not shown to dhis2's user");
    reset();

    // Any other failure of its own source is no reason to write through another.
    const busy = deliveredRow('busy', 'TRK-B');
    own.script.push(new WriteBackError('DHIS2 write-back: HTTP 503', false));
    wb.onOutcome(delivered(busy, 'TRK-B'));
    assert.equal((await wb.drain()).failing, 1);
    assert.deepEqual(calls(), [1, 0, 0]);
    await wb.stop();
  });

  it('recreates jobs lost between "delivered" and "job stored", only for rows delivered since write-back was enabled', async () => {
    const old = deliveredRow('before', 'TRK-OLD');
    clock += 10;
    const target = new ScriptedTarget([]);
    const first = runner(target); // enables write-back now
    await first.stop();
    clock += 10;
    const lost = deliveredRow('lost', 'TRK-LOST'); // delivered, but the process died before onOutcome
    const wb = runner(target);
    assert.equal(wb.catchUp(), 1);
    await wb.drain();
    assert.deepEqual(
      target.calls.map((c) => c.trackingId),
      ['TRK-LOST'],
    );
    assert.equal(wb.store.get(old), undefined, 'rows delivered before write-back was enabled are left alone');
    assert.equal(wb.store.get(lost)?.outcome, 'written');
    await wb.stop();
  });

  it('a job leased by a process that died is retried once the lease runs out', async () => {
    const id = deliveredRow('childE', 'TRK-E');
    const wb = runner(new ScriptedTarget([]));
    wb.onOutcome(delivered(id, 'TRK-E'));
    // Claimed by "another process" that never finished.
    assert.equal(wb.store.claimDue(10, clock, 120_000).length, 1);
    assert.equal((await wb.drain()).tried, 0, 'leased: not due');
    clock += 120_000;
    assert.equal((await wb.drain()).tried, 1);
    assert.equal(wb.store.get(id)?.outcome, 'written');
    assert.equal(wb.store.get(id)?.attempts, 2);
    await wb.stop();
  });

  it('a drain tries each job at most once, even one whose backoff has passed while others ran', async () => {
    const first = deliveredRow('childH', 'TRK-H');
    const second = deliveredRow('childI', 'TRK-I');
    // Each write takes longer than the backoff (1 s): by the time the second job has failed, the first
    // is due again. One batch at a time, as when more jobs are due than a batch takes.
    const slow: WriteBackTarget = {
      write: async () => {
        clock += 5000;
        throw new WriteBackError('DHIS2 write-back: tracker import failed: HTTP 503', false);
      },
    };
    const wb = runner(slow, 'dhis2', { batchSize: 1 });
    wb.onOutcome(delivered(first, 'TRK-H'));
    wb.onOutcome(delivered(second, 'TRK-I'));
    await wb.drain();
    for (const id of [first, second]) {
      assert.equal(wb.store.get(id)?.attempts, 1, `row ${id}: one attempt in one drain`);
      assert.equal(wb.store.get(id)?.outcome, null, `row ${id}: not abandoned by one drain`);
    }
    await wb.stop();
  });

  it('a run claims batch after batch up to its bound; the next run goes on with the rest', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => deliveredRow(`bulk${i}`, `TRK-BULK${i}`));
    const target = new ScriptedTarget([]);
    const wb = runner(target, 'dhis2', { batchSize: 2, maxJobsPerRun: 5 });
    ids.forEach((id, i) => {
      wb.onOutcome(delivered(id, `TRK-BULK${i}`));
    });
    assert.equal((await wb.drain()).written, 5, 'three batches, the last one cut to the bound');
    assert.equal(wb.store.waiting().count, 2);
    assert.equal((await wb.drain()).written, 2);
    assert.equal(target.calls.length, 7);
    await wb.stop();
  });

  it('reports what came of each job a drain tried, the failures with their row, source, attempts and error', async () => {
    const ids = ['childN', 'childO', 'childP', 'childQ'].map((subject, i) => deliveredRow(subject, `TRK-N${i}`));
    const target = new ScriptedTarget([
      'written',
      'already',
      new WriteBackError('DHIS2 write-back: tracker import failed: HTTP 503', false),
      new WriteBackError('DHIS2 write-back: DHIS2 refused the write (E1000)', true),
    ]);
    const wb = runner(target, 'dhis2', { batchSize: 1 }); // one at a time: in row order
    ids.forEach((id, i) => {
      wb.onOutcome(delivered(id, `TRK-N${i}`));
    });
    assert.deepEqual(await wb.drain(), {
      tried: 4,
      written: 1,
      already: 1,
      failing: 1,
      abandoned: 1,
      cutOff: 0,
      failures: [
        {
          rowId: ids[2],
          sourceId: 'dhis2',
          state: 'failing',
          attempts: 1,
          error: 'DHIS2 write-back: tracker import failed: HTTP 503',
        },
        {
          rowId: ids[3],
          sourceId: 'dhis2',
          state: 'abandoned',
          attempts: 1,
          error: 'DHIS2 write-back: DHIS2 refused the write (E1000)',
        },
      ],
    });
    await wb.stop();
  });

  it('logs the failures without the record references, which stay in the job for the operator', async () => {
    // Ids as an EMR that uses the medical record number as resource id would give them.
    const failing = deliveredRow('XMRNC30', 'TRK-R1');
    const gone = deliveredRow('XMRNC31', 'TRK-R2');
    const lines: string[] = [];
    const wb = new WriteBackRunner({
      ledger,
      logger: createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } }),
      sources: [
        {
          sourceId: 'dhis2',
          settings: SETTINGS,
          target: new ScriptedTarget([
            new WriteBackError('no event of program stage st1 for TrackedEntity/XMRNC30 yet', false),
            new WriteBackError('the event that triggered Event/XMRNC31E is gone; tracked entity XMRNC31 too', true),
          ]),
        },
      ],
      now: () => clock,
      random: () => 0,
      batchSize: 1,
    });
    wb.onOutcome(delivered(failing, 'TRK-R1'));
    wb.onOutcome(delivered(gone, 'TRK-R2'));
    await wb.drain();

    assert.match(wb.store.get(failing)?.lastError ?? '', /TrackedEntity\/XMRNC30/, 'the job keeps the reference');
    assert.match(wb.store.get(gone)?.lastError ?? '', /Event\/XMRNC31E/);
    assert.ok(lines.length > 0);
    for (const line of lines) assert.doesNotMatch(line, /XMRNC3/);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const retrying = logged.find((l) => l.msg === 'write-back failed; retrying later');
    assert.equal(retrying?.rowId, failing);
    assert.equal(retrying?.source, 'dhis2');
    assert.equal(retrying?.subjectType, 'TrackedEntity');
    assert.equal(retrying?.triggerType, 'Event');
    assert.equal(retrying?.kind, 'record');
    assert.equal(retrying?.error, 'no event of program stage st1 for TrackedEntity/{id} yet');
    const abandoned = logged.find((l) => l.msg === 'write-back abandoned');
    assert.equal(abandoned?.rowId, gone);
    assert.equal(abandoned?.permanent, true);
    assert.equal(abandoned?.error, 'the event that triggered Event/{id} is gone; tracked entity {id} too');
    await wb.stop();
  });

  it('ignores outcomes without a tracking id and sources without write-back', async () => {
    const id = deliveredRow('childF', 'TRK-F', 'other');
    const wb = runner(new ScriptedTarget([]));
    wb.onOutcome(delivered(id, 'TRK-F', 'other'));
    wb.onOutcome({ type: 'retry', row: { id, sourceId: 'dhis2', trackingId: 'TRK-F' } });
    wb.onOutcome({ type: 'delivered', row: { id, sourceId: 'dhis2', trackingId: null } });
    assert.equal(wb.store.waiting().count, 0);
    await wb.stop();
  });
});

describe('write-back claims', () => {
  it('only the current claim of a job records its outcome: a claim whose lease ran out and was taken again records nothing', () => {
    const id = deliveredRow('childR', 'TRK-R');
    const store = new WriteBackStore(ledger.path);
    try {
      assert.ok(store.enqueue(id, 'dhis2', 'TRK-R', clock));
      const [first] = store.claimDue(10, clock, 1000);
      assert.ok(first);
      clock += 1000; // the first claim's lease is over: another run (or process) claims the job
      const [second] = store.claimDue(10, clock, 1000);
      assert.equal(second?.attempts, 2);
      assert.ok(second);
      const claimedAgain = store.get(id);

      assert.equal(store.done(first, 'written', clock), false, 'the stale holder completes nothing');
      assert.equal(store.retry(first, clock + 5000, 'HTTP 503', clock), false, 'nor reschedules it');
      assert.equal(store.release(first, clock), false, 'nor hands it back');
      assert.deepEqual(store.get(id), claimedAgain, 'the job is as the second claim left it');

      assert.equal(store.retry(second, clock + 5000, 'HTTP 503', clock), true, 'the current claim does');
      assert.equal(store.get(id)?.lastError, 'HTTP 503');
      const [third] = store.claimDue(10, clock + 5000, 1000);
      assert.ok(third);
      assert.equal(store.done(second, 'written', clock + 5000), false, 'a claim ended by retry() is over');
      assert.equal(store.done(third, 'already', clock + 5000), true);
      assert.equal(store.get(id)?.outcome, 'already');
    } finally {
      store.close();
    }
  });

  it('a claim of an earlier tracking id records nothing once the job restarted for a new one', () => {
    const id = deliveredRow('childS', 'TRK-S1');
    const store = new WriteBackStore(ledger.path);
    try {
      store.enqueue(id, 'dhis2', 'TRK-S1', clock);
      const [old] = store.claimDue(10, clock, 1000);
      assert.ok(old);
      clock += 1000;
      assert.ok(store.enqueue(id, 'dhis2', 'TRK-S2', clock), 'restarted: attempts 0, due now');
      const [renewed] = store.claimDue(10, clock, 1000);
      assert.equal(renewed?.trackingId, 'TRK-S2');
      assert.equal(renewed?.attempts, old.attempts, 'the same attempt count as the old claim');
      assert.equal(store.done(old, 'written', clock), false, 'TRK-S1 written says nothing of TRK-S2');
      assert.equal(store.get(id)?.outcome, null);
    } finally {
      store.close();
    }
  });

  it('a job restarted for a new tracking id keeps the ones it had before, oldest first and bounded', () => {
    const id = deliveredRow('childE', 'TRK-E0');
    const store = new WriteBackStore(ledger.path);
    try {
      assert.ok(store.enqueue(id, 'dhis2', 'TRK-E0', clock));
      assert.deepEqual(store.get(id)?.earlierTrackingIds, [], 'a new job has none');
      assert.equal(store.enqueue(id, 'dhis2', 'TRK-E0', clock), false, 'the same id: no restart');
      assert.ok(store.enqueue(id, 'dhis2', 'TRK-E1', clock));
      assert.ok(store.enqueue(id, 'dhis2', 'TRK-E2', clock));
      assert.deepEqual(store.get(id)?.earlierTrackingIds, ['TRK-E0', 'TRK-E1']);
      // Back to an id it had: that id is current again, not earlier, and listed once.
      assert.ok(store.enqueue(id, 'dhis2', 'TRK-E0', clock));
      assert.deepEqual(store.get(id)?.earlierTrackingIds, ['TRK-E1', 'TRK-E2']);
      for (let i = 3; i < 3 + MAX_EARLIER_TRACKING_IDS; i++) store.enqueue(id, 'dhis2', `TRK-E${i}`, clock);
      const earlier = store.get(id)?.earlierTrackingIds ?? [];
      assert.equal(earlier.length, MAX_EARLIER_TRACKING_IDS);
      assert.equal(earlier.at(-1), `TRK-E${1 + MAX_EARLIER_TRACKING_IDS}`, 'the one just replaced, last');
      assert.ok(!earlier.includes('TRK-E1'), 'the oldest forgotten');
    } finally {
      store.close();
    }
  });

  it('the runner hands the target the tracking ids the job had before', async () => {
    const id = deliveredRow('childF', 'TRK-F1');
    const target = new ScriptedTarget(['written', 'replaced']);
    const r = runner(target);
    try {
      r.onOutcome(delivered(id, 'TRK-F1'));
      await r.drain();
      r.onOutcome(delivered(id, 'TRK-F2'));
      const report = await r.drain();
      assert.deepEqual(
        target.calls.map((job) => [job.trackingId, job.earlierTrackingIds]),
        [
          ['TRK-F1', []],
          ['TRK-F2', ['TRK-F1']],
        ],
      );
      assert.equal(report.written, 1, 'a replacement counts as written');
      assert.equal(r.store.get(id)?.outcome, 'written');
    } finally {
      await r.stop();
    }
  });

  it('a run whose claim was taken over while it wrote leaves the job to the newer claim, and counts nothing', async () => {
    const id = deliveredRow('childT', 'TRK-T');
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const other = new WriteBackStore(ledger.path);
    let taken: WriteBackItem | undefined;
    // The write outlives its lease (a source that took minutes to answer), and another process claims
    // the job meanwhile; then the source answers a failure.
    const slow: WriteBackTarget = {
      write: async () => {
        clock += 120_000;
        [taken] = other.claimDue(10, clock, 120_000);
        throw new WriteBackError('DHIS2 write-back: tracker import failed: HTTP 503', false);
      },
    };
    const wb = new WriteBackRunner({
      ledger,
      logger,
      sources: [{ sourceId: 'dhis2', settings: SETTINGS, target: slow }],
      now: () => clock,
      random: () => 0,
    });
    try {
      wb.onOutcome(delivered(id, 'TRK-T'));
      const report = await wb.drain();
      assert.ok(taken, 'the other process claimed the job');
      assert.deepEqual(report, { ...emptyReport(), tried: 0 }, 'nothing counted');
      const job = wb.store.get(id);
      assert.equal(job?.lastError, null, "the stale attempt's error is not recorded");
      assert.equal(job?.nextAttemptAt, taken.nextAttemptAt, "the newer claim's lease stands");
      assert.equal(job?.attempts, 2);
      const warned = lines.filter((line) => line.includes('claim was taken over'));
      assert.equal(warned.length, 1, 'logged once');
      assert.ok(!warned[0]?.includes('TRK-T'), 'without the tracking id');
      assert.ok(other.done(taken, 'written', clock), 'the newer claim finishes the job');
      assert.equal(wb.store.get(id)?.outcome, 'written');
    } finally {
      other.close();
      await wb.stop();
    }
  });
});

describe('write-back attempts the bridge cuts off itself, after another claim took the job', () => {
  it('counts nothing and leaves the job to the newer claim', async () => {
    const id = deliveredRow('childU', 'TRK-U');
    const other = new WriteBackStore(ledger.path);
    let taken: WriteBackItem | undefined;
    // The write outlives its lease, another process claims the job, then the bridge stops this run.
    const target: WriteBackTarget = {
      write: (_job, signal) =>
        new Promise((_resolve, reject) => {
          clock += 120_000;
          [taken] = other.claimDue(10, clock, 120_000);
          signal?.addEventListener('abort', () => reject(new Error('cut off')), { once: true });
        }),
    };
    const wb = runner(target);
    try {
      wb.onOutcome(delivered(id, 'TRK-U'));
      const running = wb.drain();
      await until(() => taken !== undefined);
      await wb.stop();
      const report = await running;
      assert.deepEqual([report.tried, report.cutOff], [0, 0], "neither tried nor cut off: the job is not this run's");
      assert.equal(other.get(id)?.nextAttemptAt, taken?.nextAttemptAt, "the newer claim's lease stands");
    } finally {
      other.close();
    }
  });
});

describe('write-back attempts the bridge cuts off itself', () => {
  it('a stop cuts the write in flight off: no attempt counted, the last error left as the source gave it', async () => {
    const id = deliveredRow('childJ', 'TRK-J');
    const hanging = new HangingTarget();
    const wb = runner(failingThenHanging(hanging));
    wb.onOutcome(delivered(id, 'TRK-J'));
    await wb.drain();
    assert.equal(wb.store.get(id)?.attempts, 1);
    clock += SETTINGS.maxDelayMs; // due again
    const running = wb.drain();
    await until(() => hanging.calls === 1);
    // Waited for, the write would end in the source's timeout, counted with its error (asserted below).
    await wb.stop();
    await running;
    const store = new WriteBackStore(ledger.path);
    try {
      const job = store.get(id);
      assert.equal(job?.attempts, 1, 'the attempt cut off is not counted');
      assert.equal(job?.lastError, 'DHIS2 write-back: tracker import failed: HTTP 503');
      assert.equal(job?.outcome, null);
      assert.ok((job?.nextAttemptAt ?? Number.POSITIVE_INFINITY) <= clock, 'due again at the next start');
    } finally {
      store.close();
    }
  });
});

describe('write-back drain with a time limit', () => {
  it('claims nothing after it, and cuts the write in flight off without counting it', async () => {
    const ids = ['childK', 'childL', 'childM'].map((subject, i) => deliveredRow(subject, `TRK-${i}`));
    const hanging = new HangingTarget();
    const wb = runner(hanging, 'dhis2', { batchSize: 1 });
    ids.forEach((id, i) => {
      wb.onOutcome(delivered(id, `TRK-${i}`));
    });
    // Waited for past the time limit, the write would end in the source's timeout, counted with its error.
    const report = await wb.drain({ timeoutMs: 100 });
    assert.equal(report.tried, 1);
    assert.equal(report.cutOff, 1, 'reported as cut off');
    assert.deepEqual(report.failures, [], 'not as a failure');
    assert.equal(hanging.calls, 1, 'no job claimed after the time limit');
    for (const id of ids) {
      const job = wb.store.get(id);
      assert.equal(job?.attempts, 0, `row ${id}: no attempt counted`);
      assert.equal(job?.lastError, null);
      assert.ok((job?.nextAttemptAt ?? Number.POSITIVE_INFINITY) <= clock, `row ${id}: due at the next drain`);
    }
    assert.equal((await wb.drain({ timeoutMs: 0 })).tried, 0, 'no time left: nothing is claimed');
    assert.equal(hanging.calls, 1);
    await wb.stop();
  });
});

describe('write-back backoff', () => {
  it('doubles from the base delay up to the cap, jitter only shortening it', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => writeBackDelay(n, 5000, 30_000, () => 0)),
      [5000, 10_000, 20_000, 30_000, 30_000],
    );
    assert.equal(
      writeBackDelay(1, 5000, 30_000, () => 1),
      4000,
    );
  });
});

describe('write-back ticks on a ledger that refuses writes', () => {
  it('logs the first failure at once, then once a minute with the repeats, and one line when it recovers', async () => {
    const id = deliveredRow('childQ', 'TRK-Q');
    const target = new ScriptedTarget(['written']);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    const wb = new WriteBackRunner({
      ledger,
      logger,
      sources: [{ sourceId: 'dhis2', settings: SETTINGS, target }],
      now: () => clock,
      random: () => 0,
      pollIntervalMs: 2,
    });
    wb.onOutcome(delivered(id, 'TRK-Q'));
    // The store's own connection refuses every write as a read-only file does (SQLITE_READONLY): each
    // tick's claim fails, as on a full disk.
    const storeDb = (wb.store as unknown as { db: { pragma(sql: string): unknown } }).db;
    storeDb.pragma('query_only = 1');
    const failed = () => lines.filter((l) => l.msg === 'write-back tick failed');
    // Every tick claims first, and a failing tick fails there: counted as they come, so the test waits for
    // ticks, not for a time in which a loaded machine ran too few of them to show a repeat.
    let ticks = 0;
    let failedTicks = 0;
    const claimDue = wb.store.claimDue.bind(wb.store);
    wb.store.claimDue = (...args) => {
      ticks++;
      try {
        return claimDue(...args);
      } catch (err) {
        failedTicks++;
        throw err;
      }
    };
    /** Resolves once `n` more ticks (failing ones, with `failing`) have run. */
    const moreTicks = async (n: number, failing = true) => {
      const count = () => (failing ? failedTicks : ticks);
      const seen = count();
      await until(() => count() >= seen + n);
    };
    wb.start();
    try {
      // Many ticks within one minute: one line, at once, without a stack.
      await until(() => failed().length >= 1);
      await moreTicks(5);
      assert.equal(failed().length, 1, 'one line for every failing tick within the minute');
      const [first] = failed();
      assert.match(String((first?.err as { code?: string })?.code), /^SQLITE_READONLY/);
      assert.equal((first?.err as { stack?: string })?.stack, undefined, 'no stack for a storage error');
      assert.equal(first?.repeats, undefined);

      // Three simulated minutes: one line each, with the ticks that failed unlogged since the last.
      for (let minute = 1; minute <= 3; minute++) {
        await moreTicks(4);
        clock += 60_000;
        await until(() => failed().length === minute + 1);
        const line = failed()[minute];
        assert.ok(Number(line?.repeats) > 3, `repeats counted: ${JSON.stringify(line)}`);
      }
      await moreTicks(4);
      assert.equal(failed().length, 4, 'at most one line a minute');

      storeDb.pragma('query_only = 0'); // space freed
      await until(() => wb.store.get(id)?.outcome === 'written');
      await until(() => lines.some((l) => l.msg === 'write-back ticks run again'));
      const recovered = lines.filter((l) => l.msg === 'write-back ticks run again');
      const repeats = failed().reduce((sum, l) => sum + Number(l.repeats ?? 0), 0);
      assert.equal(recovered.length, 1);
      // Every failing tick is counted: the four logged, the repeats they reported, and those since the last.
      assert.equal(recovered[0]?.failures, 4 + repeats + Number(recovered[0]?.repeats), JSON.stringify(recovered[0]));
      assert.ok(Number(recovered[0]?.failingMs) >= 180_000);
      await moreTicks(4, false);
      assert.equal(lines.filter((l) => l.msg === 'write-back ticks run again').length, 1, 'said once');
    } finally {
      await wb.stop();
    }
  });
});
