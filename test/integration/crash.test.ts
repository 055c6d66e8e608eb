// Crash safety: a worker process is SIGKILLed at random moments, at least ten times, while OpenCRVS
// (the simulator, alive in this process) answers with commit-then-fail and 5xx faults. Whatever the
// moment of each kill (between create and notify, after OpenCRVS committed but before the ledger
// recorded it, mid-write to SQLite), the end state must be exactly one OpenCRVS event per source
// event with exactly one accepted NOTIFY, and every ledger row delivered.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, it } from 'node:test';
import { testChild } from '../support/child-source.js';
import { assertExactlyOnce, birthEvent, type TestBed, testBed } from './delivery-helpers.js';

const CHILD = testChild(new URL('./helpers/worker-child.ts', import.meta.url));
const EVENTS = 500;
const KILLS = 12;

function startChild(bed: TestBed): { child: ChildProcess; ready: Promise<void>; exit: Promise<number | null> } {
  const { sim } = bed;
  const child = spawn(
    process.execPath,
    [...CHILD.flags, CHILD.file, bed.dbPath, sim.tokenUrl, sim.eventsUrl, sim.clientId, sim.clientSecret, '2'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'silent' } },
  );
  const exit = once(child, 'exit').then(([code]) => (typeof code === 'number' ? code : null));
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready')) resolve();
    });
    exit.then(() => reject(new Error('worker child exited before it was ready')));
  });
  ready.catch(() => {});
  return { child, ready, exit };
}

function deliveredCount(bed: TestBed): number {
  return bed.ledger.counts().find((c) => c.state === 'delivered')?.count ?? 0;
}

describe('crash safety', () => {
  let bed: TestBed | undefined;
  let running: ChildProcess | undefined;
  afterEach(async () => {
    if (running && running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
    await bed?.close();
  });

  it('a worker killed at random moments ten times or more still delivers each of 500 events exactly once', async (t) => {
    bed = await testBed();
    const local = bed;
    local.ledger.transaction(() => {
      for (let i = 0; i < EVENTS; i++) local.ledger.recordEvent(birthEvent(local.office, i));
    });
    await local.sim.control.configure({
      seed: 42,
      faults: { errorRate: 0.1, errorStatus: 503, commitThenFailRate: 0.2 },
    });

    let killsWithWorkLeft = 0;
    for (let k = 0; k < KILLS; k++) {
      const run = startChild(local);
      running = run.child;
      await run.ready;
      // A random moment: after a random amount of progress (5 to 35 more rows delivered, or 3 s), plus
      // a random few milliseconds, so kills land before, between and after create and notify calls
      // whatever the speed of the machine, and work is still left for the next kill.
      const target = deliveredCount(local) + 5 + Math.floor(Math.random() * 30);
      const deadline = Date.now() + 3000;
      while (deliveredCount(local) < target && Date.now() < deadline && run.child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 30)));
      if (run.child.exitCode !== null) break; // finished on its own: nothing left to interrupt
      run.child.kill('SIGKILL');
      await run.exit;
      if (local.ledger.outstanding() > 0) killsWithWorkLeft++;
    }
    const delivered = deliveredCount(local);
    assert.ok(killsWithWorkLeft >= 10, `killed ${killsWithWorkLeft} times with work left`);
    assert.ok(delivered < EVENTS, 'the kills interrupted the work');

    const last = startChild(local);
    running = last.child;
    assert.equal(await last.exit, 0, 'the last worker ran to idle');

    await assertExactlyOnce(local.sim, local.ledger, EVENTS);
    const attempts = local.ledger.list({ limit: EVENTS }).flatMap((r) => local.ledger.attempts(r.id));
    const serverErrors = attempts.filter((a) => a.error?.kind === 'server').length;
    const lostAnswers = attempts.filter((a) => a.error?.kind === 'network').length;
    assert.ok(serverErrors > 0, '5xx faults were met and retried');
    assert.ok(lostAnswers > 0, 'commit-then-fail answers were met and retried');
    t.diagnostic(
      `${killsWithWorkLeft} kills with work left; ${delivered} delivered before the last run; ` +
        `${serverErrors} 5xx and ${lostAnswers} lost answers retried`,
    );
  });
});
