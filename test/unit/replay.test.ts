// Replay's bookkeeping (sources/replay.ts) with a real ledger and stand-in sources: what the answer says
// of each row, and how a source that cannot be read is handled. The end-to-end replays over HTTP are in
// test/integration/bridge-replay.test.ts.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Ledger } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { SubjectRecheck } from '../../src/sources/recheck.js';
import { replayRows } from '../../src/sources/replay.js';
import { eventInput, payload, settleRow, tempLedger } from './ledger-helpers.js';

describe('replay', () => {
  let ledger: Ledger;
  let cleanup: () => void;
  beforeEach(() => {
    ({ ledger, cleanup } = tempLedger());
  });
  afterEach(() => cleanup());

  /** A row refused by the mapping (dead, no payload) of source `sourceId`. */
  const refused = (subject: string, sourceId = 'emr') =>
    ledger.recordInvalid({
      ...eventInput(subject),
      sourceId,
      errors: [{ field: 'child.gender', message: 'not one of male, female, unknown' }],
    }).row;
  /** A row OpenCRVS refused (dead, with its payload). */
  const rejected = (subject: string, sourceId = 'emr') => {
    const { row } = ledger.recordEvent({ ...eventInput(subject), sourceId });
    settleRow(ledger, row.id, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'x' },
    });
    return row;
  };

  it('counts a row its source queued again as requeued, even once the worker delivered it', async () => {
    const row = refused('1');
    const emr: SubjectRecheck = async (subjects) => {
      for (const subject of subjects) ledger.recordEvent(eventInput(subject.replace('Patient/', ''), payload('Fixed')));
      // The worker, running meanwhile, delivers it at once.
      const [claimed] = ledger.claimDue('worker', 10);
      assert.ok(claimed);
      ledger.settle({
        id: claimed.id,
        workerId: 'worker',
        claimedPayloadHash: claimed.payloadHash,
        step: 'notify',
        startedAt: 0,
        settlement: { outcome: 'delivered', eventId: 'e', trackingId: 'T' },
      });
    };
    const result = await replayRows({ ledger, runners: new Map([['emr', emr]]), logger: silentLogger }, [row.id]);
    assert.deepEqual(result, { requeued: [row.id], skipped: [] });
  });

  it('notes a row its source withdrew while an OpenCRVS event exists: requeued for the worker to settle', async () => {
    const { row } = ledger.recordEvent(eventInput('w'));
    settleRow(
      ledger,
      row.id,
      { outcome: 'dead', error: { classification: 'retryable', kind: 'server', status: 500, message: 'x' } },
      { created: { eventId: 'event-w', trackingId: 'TRKW' } },
    );
    const emr: SubjectRecheck = async () => {
      ledger.cancelUnsent({ ...eventInput('w'), reason: 'deleted in the source before it was sent' });
    };
    const result = await replayRows({ ledger, runners: new Map([['emr', emr]]), logger: silentLogger }, 'dead');
    assert.deepEqual(result.requeued, [row.id]);
    assert.match(
      result.notes?.[0]?.note ?? '',
      /^withdrawn by the source \(deleted in the source before it was sent\): OpenCRVS is asked first/,
    );
  });

  it('replays a row named twice once: one requeue, one generation, counted once', async () => {
    const asStored = rejected('twice'); // its source leaves it dead: requeued as stored
    const fixed = refused('fixed'); // its source queues it again
    const emr: SubjectRecheck = async (subjects) => {
      if (subjects.includes('Patient/fixed')) ledger.recordEvent(eventInput('fixed', payload('Fixed')));
    };
    const notDead = ledger.recordEvent(eventInput('pending')).row;
    const result = await replayRows({ ledger, runners: new Map([['emr', emr]]), logger: silentLogger }, [
      asStored.id,
      fixed.id,
      asStored.id,
      notDead.id,
      fixed.id,
      notDead.id,
    ]);
    assert.deepEqual(result, {
      requeued: [asStored.id, fixed.id].sort((a, b) => a - b),
      skipped: [
        {
          id: notDead.id,
          reason: 'is pending, not dead or failed: only dead rows replay, and failed rows are made due now',
        },
      ],
    });
    assert.deepEqual([ledger.get(asStored.id)?.requeues, ledger.get(fixed.id)?.requeues], [1, 1]);
  });

  it('says how many dead rows a --dead replay left for the next one', async () => {
    for (const subject of ['a', 'b', 'c', 'd', 'e']) refused(subject);
    const emr: SubjectRecheck = async () => {};
    const result = await replayRows(
      { ledger, runners: new Map([['emr', emr]]), logger: silentLogger, maxRows: 3 },
      'dead',
    );
    assert.equal(result.skipped.length, 3, 'the three it took still cannot be mapped');
    assert.equal(result.leftDead, 2);
  });

  it('counts the dead rows a --dead replay left as they are at one moment, whatever changes while it counts', async () => {
    for (const subject of ['a', 'b', 'c', 'd', 'e']) refused(subject);
    const emr: SubjectRecheck = async () => {};
    // An operator dismisses a dead row the replay did not take (serve's admin page, on this event loop) while
    // the replay counts what it left: read apart, before that and after it, the count is off by that row.
    let dismissed: number | undefined;
    const dismissOne = () => {
      if (dismissed !== undefined) return;
      dismissed = ledger.list({ states: ['dead'] }).find((row) => !taken.has(row.id))?.id;
      if (dismissed !== undefined) ledger.dismiss([dismissed], 'duplicate');
    };
    const taken = new Set<number>();
    const counting: Ledger = {
      ...ledger,
      replay: (ids) => {
        if (ids !== 'dead') for (const id of ids) taken.add(id);
        return ledger.replay(ids);
      },
      counts: () => {
        const counts = ledger.counts();
        if (taken.size > 0) setImmediate(dismissOne);
        return counts;
      },
      deadExcept: (ids) => {
        dismissOne();
        return ledger.deadExcept(ids);
      },
    };
    const result = await replayRows(
      { ledger: counting, runners: new Map([['emr', emr]]), logger: silentLogger, maxRows: 3, chunkRows: 1 },
      'dead',
    );
    assert.ok(dismissed !== undefined, 'a row was dismissed while the replay counted');
    assert.equal(result.skipped.length, 3, 'the three it took still cannot be mapped');
    const left = ledger.list({ states: ['dead'] }).filter((row) => !taken.has(row.id));
    assert.equal(left.length, 1);
    assert.equal(result.leftDead, left.length);
  });

  it('requeues a few hundred dead rows a chunk at a time, with turns of the event loop between', async () => {
    const dead = Array.from({ length: 300 }, (_, i) => rejected(`many${i}`));
    let turnsBeforeRead: number | undefined;
    const emr: SubjectRecheck = async () => {
      turnsBeforeRead ??= seen.length;
    };
    // What serve does meanwhile (its /healthz, a sender's acknowledgement): a turn of the event loop,
    // scheduled before the replay, noting how many rows are still dead each time it runs.
    const seen: number[] = [];
    let done = false;
    const tick = () => {
      if (done) return;
      seen.push(ledger.counts().reduce((n, c) => n + (c.state === 'dead' ? c.count : 0), 0));
      setImmediate(tick);
    };
    setImmediate(tick);
    const result = await replayRows(
      { ledger, runners: new Map([['emr', emr]]), logger: silentLogger, chunkRows: 50 },
      'dead',
    );
    done = true;
    assert.deepEqual(
      result.requeued,
      dead.map((r) => r.id),
    );
    assert.deepEqual(result.skipped, []);
    assert.ok((turnsBeforeRead ?? 0) > 0, 'the event loop turned while the dead rows were read from the ledger');
    assert.ok(
      seen.some((n) => n > 0 && n < dead.length),
      `the loop turned between two requeued chunks (dead rows seen: ${[...new Set(seen)].join(', ')})`,
    );
  });

  it('leaves the rows of chunks not yet committed dead when it stops half-way, for the next replay', async () => {
    const dead = Array.from({ length: 120 }, (_, i) => rejected(`cut${i}`));
    const emr: SubjectRecheck = async () => {};
    // The process stops after the first chunk's commit: the chunks after it never run.
    let chunks = 0;
    const stopping: Ledger = {
      ...ledger,
      replay: (ids) => {
        if (++chunks > 1) throw new Error('the process stopped');
        return ledger.replay(ids);
      },
    };
    await assert.rejects(
      replayRows({ ledger: stopping, runners: new Map([['emr', emr]]), logger: silentLogger, chunkRows: 50 }, 'dead'),
      /the process stopped/,
    );
    const ids = dead.map((r) => r.id);
    const left = ids.filter((id) => ledger.get(id)?.state === 'dead');
    assert.equal(left.length, 70, 'the first chunk is committed, the rest is dead as before');
    assert.equal(ids.filter((id) => ledger.get(id)?.state === 'pending').length, 50);

    const again = await replayRows(
      { ledger, runners: new Map([['emr', emr]]), logger: silentLogger, chunkRows: 50 },
      'dead',
    );
    assert.deepEqual(again, { requeued: left, skipped: [] });
    assert.deepEqual(
      ids.map((id) => ledger.get(id)?.state),
      Array(120).fill('pending'),
    );
  });

  it('stops reading a source after a failed batch, requeues stored payloads with a note, and skips the rest', async () => {
    const stored = Array.from({ length: 60 }, (_, i) => rejected(`s${i}`, 'down'));
    const unmappable = refused('u', 'down');
    let calls = 0;
    const down: SubjectRecheck = async () => {
      calls += 1;
      throw new Error('list Patient failed: timeout');
    };
    const result = await replayRows({ ledger, runners: new Map([['down', down]]), logger: silentLogger }, 'dead');
    assert.equal(calls, 1, 'one failed batch stands for the rest: no timeouts per batch');
    assert.deepEqual(
      result.requeued,
      stored.map((r) => r.id).sort((a, b) => a - b),
    );
    assert.equal(result.notes?.length, 60);
    assert.match(
      result.notes?.[0]?.note ?? '',
      /could not be read to map the record again \(list Patient failed: timeout\); requeued as stored/,
    );
    assert.deepEqual(
      result.skipped.map((s) => s.id),
      [unmappable.id],
    );
    assert.match(result.skipped[0]?.reason ?? '', /^the source could not be read/);
    // Requeued as stored: due, keeping their queued time, so the worker confirms them at the source first.
    const after = ledger.get(stored[0]?.id ?? 0);
    assert.deepEqual([after?.state, after?.recheckedAt], ['pending', null]);
  });
});
