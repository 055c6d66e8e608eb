// A source's request slots (maxConcurrentRequests): a call queued for a slot whose signal fires rejects at
// once, rather than when a slot comes free (with every slot held by reads waiting out sources[].timeoutMs,
// that was as late as the timeout), never runs, and leaves no listener on the signal.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import type { SourceSettings } from '../../src/config/types.js';
import { sourceRequestLimit } from '../../src/sources/shared/request-limit.js';

const oneSlot = { maxConcurrentRequests: 1 } as SourceSettings;

/** A call that holds its slot until `release` is called. */
function holding(): { call: () => Promise<string>; release: () => void } {
  let release = () => {};
  const held = new Promise<string>((resolve) => {
    release = () => resolve('held');
  });
  return { call: () => held, release };
}

describe('source request limit', () => {
  it('a queued call whose signal fires rejects at once with its reason, and never runs', async () => {
    const limit = sourceRequestLimit(oneSlot);
    const first = holding();
    const running = limit([], first.call);
    const stop = new AbortController();
    let ran = false;
    const queued = limit([undefined, stop.signal], async () => {
      ran = true;
      return 'queued';
    });
    const alsoQueued = limit([stop.signal], async () => 'also queued');
    const reason = new Error('the evaluation stopped');
    stop.abort(reason);
    await assert.rejects(alsoQueued, reason);
    // Settled while the slot is still held: not when a slot comes free.
    const outcome = await Promise.race([
      queued.then(
        () => 'answered',
        (err: unknown) => err,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still queued'), 200)),
    ]);
    assert.equal(outcome, reason);
    assert.equal(getEventListeners(stop.signal, 'abort').length, 0, 'no listener left on the signal');
    first.release();
    assert.equal(await running, 'held');
    // The slot it was queued for is free for the next call, and it never ran.
    assert.equal(await limit([], async () => 'next'), 'next');
    assert.equal(ran, false);
  });

  it('a signal that fired before the call rejects it without queueing it', async () => {
    const limit = sourceRequestLimit(oneSlot);
    const stop = new AbortController();
    stop.abort(new Error('stopping'));
    await assert.rejects(
      limit([stop.signal], async () => 'ran'),
      /stopping/,
    );
  });

  it('a call that got its slot leaves no listener on its signals, and runs to its answer whatever fires after', async () => {
    const limit = sourceRequestLimit(oneSlot);
    const closing = new AbortController();
    const caller = new AbortController();
    const first = holding();
    const answer = limit([closing.signal, caller.signal], first.call);
    const others = Array.from({ length: 20 }, () => limit([closing.signal], async () => 'other'));
    await new Promise((resolve) => setImmediate(resolve)); // p-limit starts a call on a later tick
    assert.equal(getEventListeners(closing.signal, 'abort').length, 1, 'one listener for the queued calls');
    // Ending a call under way is its own callSignal's business: the limit does not reject it.
    caller.abort(new Error('late'));
    first.release();
    assert.equal(await answer, 'held');
    assert.deepEqual(await Promise.all(others), Array(20).fill('other'));
    assert.equal(getEventListeners(closing.signal, 'abort').length, 0);
    assert.equal(getEventListeners(caller.signal, 'abort').length, 0);
  });
});
