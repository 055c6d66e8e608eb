// InboxProcessor: stored notifications are hints (the resource is re-read from the source); pings,
// jumps in backport event numbers, heartbeats counting unseen events and heartbeat silence all end
// in a catch-up poll; duplicates do not; failing rows back off and are finally left to the poller.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { InboxProcessor } from '../../src/sources/fhir/inbox-processor.js';
import type { ParsedNotification } from '../../src/sources/fhir/notification.js';
import {
  MemoryInbox,
  MemoryMeta,
  RecordingPipeline,
  StubFhirClient,
  stamped,
} from '../integration/helpers/bridge-stubs.js';

const event = (n: number, ref = `Patient/p${n}`): ParsedNotification => ({
  kind: 'event',
  style: 'backport',
  refs: [ref],
  eventNumbers: [n],
});
const heartbeat = (eventsSinceStart: number): ParsedNotification => ({
  kind: 'heartbeat',
  style: 'backport',
  eventsSinceStart,
});

function setup(
  options: {
    heartbeatSeconds?: number;
    meta?: MemoryMeta;
    catchUp?: () => Promise<unknown>;
    polled?: boolean;
    coalesceMs?: number;
  } = {},
) {
  let clock = 1_000_000;
  const client = new StubFhirClient();
  const pipeline = new RecordingPipeline();
  const inbox = new MemoryInbox();
  const meta = options.meta ?? new MemoryMeta();
  const catchUps: number[] = [];
  const processor = new InboxProcessor({
    inbox,
    meta,
    logger: silentLogger,
    now: () => clock,
    maxAttempts: 3,
    coalesceMs: options.coalesceMs,
    sources: [
      {
        id: 'emr',
        client,
        pipeline,
        heartbeatSeconds: options.heartbeatSeconds,
        polled: options.polled,
        catchUp: async () => {
          catchUps.push(clock);
          await options.catchUp?.();
        },
      },
    ],
  });
  const receive = (notification: ParsedNotification) => inbox.add('emr', notification, clock);
  const advance = (ms: number) => {
    clock += ms;
  };
  const status = () => processor.status('emr');
  return { client, pipeline, inbox, meta, processor, catchUps, receive, advance, status };
}

describe('InboxProcessor', () => {
  it('re-reads the referenced resource from the source and evaluates it; the row is done', async () => {
    const t = setup();
    t.client.put(stamped('Patient', 'p1', '2001-01-01T00:00:00.000Z', '3'));
    t.receive({ kind: 'event', style: 'resource', refs: ['Patient/p1'] });
    assert.equal(await t.processor.processOnce(), 1);
    assert.deepEqual(t.pipeline.evaluated, ['Patient/p1/3'], 'the version on the server, not the notification');
    assert.equal(t.inbox.backlog().depth, 0);
    assert.equal(t.catchUps.length, 0);
  });

  it('takes the notifications of a burst into one round (one batched context read, one commit)', async () => {
    // A window far wider than the burst (5 notifications 2 ms apart), so a loaded machine cannot split it.
    const t = setup({ coalesceMs: 500 });
    for (let n = 1; n <= 5; n++) t.client.put(stamped('Patient', `p${n}`, '2001-01-01T00:00:00.000Z'));
    t.processor.start();
    try {
      // Start-up runs a round at once (the inbox may hold rows from before); let it find nothing.
      await new Promise((resolve) => setTimeout(resolve, 20));
      // As the receiver does: store, then wake the processor, once per notification.
      for (let n = 1; n <= 5; n++) {
        t.receive({ kind: 'event', style: 'resource', refs: [`Patient/p${n}`] });
        t.processor.wake();
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      for (let waited = 0; t.inbox.backlog().depth > 0 && waited < 2000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(t.inbox.backlog().depth, 0);
      assert.deepEqual(
        t.pipeline.commits.map((c) => c.refs.length),
        [5],
      );
    } finally {
      await t.processor.stop();
    }
  });

  it('records without an fsync only for a source the poller reconciles', async () => {
    for (const polled of [true, false]) {
      const t = setup({ polled });
      t.client.put(stamped('Patient', 'p1', '2001-01-01T00:00:00.000Z', '1'));
      t.receive({ kind: 'event', style: 'resource', refs: ['Patient/p1'] });
      await t.processor.processOnce();
      assert.deepEqual(t.pipeline.commits, [
        { refs: ['Patient/p1/1'], cursor: undefined, ...(polled ? { reconciled: true } : {}) },
      ]);
    }
  });

  it('turns a ping (a notification without detail) into a catch-up poll', async () => {
    const t = setup();
    t.receive({ kind: 'ping', style: 'hapi-empty' });
    await t.processor.processOnce();
    assert.equal(t.catchUps.length, 1);
    assert.equal(t.inbox.backlog().depth, 0);
  });

  it('detects a jump in backport event numbers once, and ignores a repeated number', async () => {
    const t = setup();
    t.receive({ kind: 'handshake', style: 'backport', eventsSinceStart: 0 });
    t.receive(event(1));
    t.receive(event(2));
    t.receive(event(2)); // a duplicate
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 0);
    t.receive(event(5)); // 3 and 4 were lost
    t.receive(event(6));
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 1);
    assert.match(t.status()?.lastGapReason ?? '', /jumped from 2 to 5/);
    assert.equal(t.catchUps.length, 1);
    assert.equal(t.meta.getMeta('subscription:emr:eventNumber'), '6');
  });

  it('starts counting again at a handshake (a new subscription)', async () => {
    const t = setup();
    t.receive(event(10));
    t.receive({ kind: 'handshake', style: 'backport', eventsSinceStart: 0 });
    t.receive(event(1));
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 0);
  });

  it('counts each subscription on its own: one handshake or numbering never judges another', async () => {
    const t = setup();
    const a = (n: number): ParsedNotification => ({ ...event(n), subscription: 'Subscription/a' });
    const b = (n: number): ParsedNotification => ({ ...event(n, `Encounter/e${n}`), subscription: 'Subscription/b' });
    t.receive(a(57));
    t.receive({ kind: 'handshake', style: 'backport', subscription: 'Subscription/b', eventsSinceStart: 0 });
    t.receive(a(58)); // A's next event: no gap, whatever B's handshake said
    t.receive(b(1));
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 0);
    t.receive(b(3)); // B lost its event 2
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 1);
    assert.match(t.status()?.lastGapReason ?? '', /jumped from 1 to 3 \(Subscription\/b\)/);
    assert.equal(t.meta.getMeta('subscription:emr:eventNumber:Subscription/a'), '58');
    assert.equal(t.meta.getMeta('subscription:emr:eventNumber:Subscription/b'), '3');
  });

  it('tracks at most 64 subscriptions per source: more names share the source key, the meta table stays bounded', async () => {
    const t = setup();
    for (let i = 0; i < 80; i++) t.receive({ ...event(i + 1), subscription: `Subscription/s${i}` });
    await t.processor.processOnce();
    await t.processor.processOnce();
    const keys = [...t.meta.values.keys()].filter((k) => k.startsWith('subscription:emr:eventNumber'));
    assert.ok(keys.length <= 65, `${keys.length} numbering keys`);
    assert.ok(keys.includes('subscription:emr:eventNumber'), 'the overflow is counted under the source key');
  });

  it('keeps the numbering through a notification with an empty payload (a ping that carries its number)', async () => {
    const t = setup();
    t.receive(event(1));
    t.receive({ kind: 'ping', style: 'backport-empty', eventNumbers: [2] });
    t.receive(event(3));
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 0);
    assert.equal(t.catchUps.length, 1, 'the ping itself asks for one catch-up poll');
  });

  it('treats a heartbeat that counts more events than were seen as a gap, and an equal count as none', async () => {
    const t = setup();
    t.receive({ kind: 'handshake', style: 'backport', eventsSinceStart: 0 });
    t.receive(event(1));
    t.receive(heartbeat(1));
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 0);
    t.receive(heartbeat(3));
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 1);
    assert.match(t.status()?.lastGapReason ?? '', /heartbeat reports 2 unseen/);
    assert.equal(t.catchUps.length, 1);
  });

  it('a heartbeat counting a single unseen event is a gap too (one lost notification)', async () => {
    const t = setup();
    t.receive({ kind: 'handshake', style: 'backport', eventsSinceStart: 0 });
    t.receive(event(1));
    t.receive(heartbeat(2));
    await t.processor.processOnce();
    assert.equal(t.status()?.gaps, 1);
    assert.match(t.status()?.lastGapReason ?? '', /heartbeat reports 1 unseen/);
  });

  it('remembers the last event number across a restart, so a gap spanning the restart is found', async () => {
    const meta = new MemoryMeta();
    const first = setup({ meta });
    first.receive(event(1));
    await first.processor.processOnce();
    const second = setup({ meta });
    second.receive(event(4));
    await second.processor.processOnce();
    assert.equal(second.status()?.gaps, 1);
  });

  it('catches up once when heartbeats stop for more than twice their period, not once per check', async () => {
    const t = setup({ heartbeatSeconds: 10 });
    t.advance(15_000);
    t.processor.checkSilence();
    assert.equal(t.status()?.gaps, 0, '15 s of silence is within two periods');
    t.advance(6_000);
    t.processor.checkSilence();
    assert.equal(t.status()?.gaps, 1);
    assert.match(t.status()?.lastGapReason ?? '', /no notification for 21 s/);
    t.advance(1_000);
    t.processor.checkSilence();
    assert.equal(t.status()?.gaps, 1);
    // A notification restarts the silence clock.
    t.advance(19_000);
    t.receive(heartbeat(0));
    await t.processor.processOnce();
    t.advance(19_000);
    t.processor.checkSilence();
    assert.equal(t.status()?.gaps, 1);
  });

  it('retries a notification whose source read fails with backoff, then leaves it to a catch-up poll', async () => {
    const t = setup();
    t.pipeline.failEvaluate = () => true;
    t.client.put(stamped('Patient', 'p1', '2001-01-01T00:00:00.000Z'));
    t.receive({ kind: 'event', style: 'resource', refs: ['Patient/p1'] });
    await t.processor.processOnce();
    assert.equal(t.inbox.rows[0]?.attempts, 1);
    assert.equal(await t.processor.processOnce(), 0, 'not due again before its backoff');
    t.advance(1_000);
    await t.processor.processOnce();
    t.advance(2_000);
    await t.processor.processOnce();
    assert.equal(t.inbox.rows[0]?.outcome, 'abandoned');
    assert.equal(t.catchUps.length, 1, 'what the notification announced is reconciled by a poll');
  });

  it('tries a failed catch-up poll again with backoff, so a ping is not lost to a source outage', async () => {
    let failing = true;
    const t = setup({
      catchUp: async () => {
        if (failing) throw new Error('source down');
      },
    });
    t.receive({ kind: 'ping', style: 'hapi-empty' });
    t.receive({ kind: 'ping', style: 'hapi-empty' });
    await t.processor.processOnce();
    assert.equal(t.catchUps.length, 1, 'one poll for the round, however many pings');
    assert.equal(t.inbox.backlog().depth, 0);
    assert.ok(t.meta.getMeta('subscription:emr:catchUpOwed'), 'the owed poll is stored');
    await t.processor.processOnce();
    assert.equal(t.catchUps.length, 1, 'not again before the backoff');
    failing = false;
    t.advance(1_000);
    await t.processor.processOnce();
    assert.equal(t.catchUps.length, 2);
    assert.equal(t.meta.getMeta('subscription:emr:catchUpOwed'), undefined);
    t.advance(60_000);
    await t.processor.processOnce();
    assert.equal(t.catchUps.length, 2, 'nothing owed any more');
  });

  it('a catch-up asked for while one runs is run again after it: the running poll may have read past the gap', async () => {
    let t: ReturnType<typeof setup> | undefined;
    let calls = 0;
    t = setup({
      heartbeatSeconds: 10,
      catchUp: async () => {
        if (++calls > 1 || !t) return;
        // Heartbeats fall silent while the first poll runs: a gap it may already have read past.
        t.advance(25_000);
        t.processor.checkSilence();
      },
    });
    t.receive({ kind: 'ping', style: 'hapi-empty' });
    await t.processor.processOnce();
    assert.equal(t.catchUps.length, 1);
    assert.equal(t.status()?.gaps, 1, 'the silence was seen during the poll');
    assert.ok(t.meta.getMeta('subscription:emr:catchUpOwed'), 'the second request outlives the first poll');
    await t.processor.processOnce();
    assert.equal(t.catchUps.length, 2);
    assert.equal(t.meta.getMeta('subscription:emr:catchUpOwed'), undefined);
  });

  it('deletes processed notifications a day old, a chunk a round, and keeps newer and waiting ones', async () => {
    const t = setup();
    for (let i = 0; i < 2_500; i++) t.receive(heartbeat(0));
    while ((await t.processor.processOnce()) > 0);
    t.advance(3_600_000);
    t.receive(heartbeat(0)); // processed an hour later: kept
    await t.processor.processOnce();
    t.pipeline.failEvaluate = () => true;
    t.client.put(stamped('Patient', 'p1', '2001-01-01T00:00:00.000Z'));
    t.receive({ kind: 'event', style: 'resource', refs: ['Patient/p1'] }); // failing: still waiting
    await t.processor.processOnce();
    t.advance(23 * 3_600_000 + 1);
    await t.processor.processOnce();
    assert.equal(t.inbox.pruned.size, 2_000, 'one chunk in a round');
    await t.processor.processOnce();
    assert.equal(t.inbox.pruned.size, 2_500, 'the next round goes on at once; the newer one is kept');
    assert.equal(t.inbox.backlog().depth, 1, 'the waiting notification is not touched');
    t.advance(3_600_000);
    await t.processor.processOnce();
    assert.equal(t.inbox.pruned.size, 2_501, 'the newer one too, once a day old');
  });

  it('runs a catch-up poll that was owed when the process stopped', async () => {
    const meta = new MemoryMeta();
    const crashed = setup({ meta, catchUp: () => new Promise(() => {}) }); // the process dies mid-poll
    crashed.receive({ kind: 'ping', style: 'hapi-empty' });
    void crashed.processor.processOnce();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(crashed.inbox.backlog().depth, 0, 'the ping row itself was done');
    const restarted = setup({ meta });
    await restarted.processor.processOnce();
    assert.equal(restarted.catchUps.length, 1);
    assert.equal(meta.getMeta('subscription:emr:catchUpOwed'), undefined);
  });
});
