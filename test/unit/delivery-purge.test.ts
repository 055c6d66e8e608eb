// The payload purge goes a chunk at a time, the event loop turning between chunks: in one statement, a
// backlog (a ledger never purged, a retention lowered: 210,600 payloads at 220,000 rows) held /healthz for
// 2.4 s and grew the WAL to 300 MB in that one transaction.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createDeliveryWorker } from '../../src/delivery/index.js';
import type { Ledger } from '../../src/ledger/index.js';
import { FakeOpenCrvs, TEST_DELIVERY_SETTINGS } from './delivery-fake-api.js';
import { eventInput, settleRow, type TestClock, tempLedger, testClock } from './ledger-helpers.js';

const HOUR_MS = 3_600_000;
const OLD_ROWS = 3000;
const RECENT_ROWS = 200;
const CHUNK = 100;

describe('payload purge', () => {
  let ledger: Ledger;
  let path: string;
  let cleanup: () => void;
  let clock: TestClock;
  let reader: Database.Database;
  let cutoff: number;

  /** Rows delivered before `cutoff` that still hold their payload, read by another connection. */
  const pastRetention = () =>
    (
      reader
        .prepare('SELECT count(*) AS n FROM ledger_rows WHERE payload IS NOT NULL AND delivered_at <= ?')
        .get(cutoff) as { n: number }
    ).n;
  const withinRetention = () =>
    (
      reader
        .prepare('SELECT count(*) AS n FROM ledger_rows WHERE payload IS NOT NULL AND delivered_at > ?')
        .get(cutoff) as { n: number }
    ).n;

  const deliver = (from: number, count: number) =>
    ledger.transaction(() => {
      for (let i = from; i < from + count; i++) {
        const { row } = ledger.recordEvent(eventInput(String(i)));
        settleRow(ledger, row.id, { outcome: 'delivered', eventId: `e${i}`, trackingId: `T${i}` });
      }
    });

  beforeEach(() => {
    clock = testClock();
    ({ ledger, path, cleanup } = tempLedger(clock, 1));
    deliver(0, OLD_ROWS);
    clock.advance(2 * HOUR_MS);
    cutoff = clock.now() - HOUR_MS;
    deliver(OLD_ROWS, RECENT_ROWS);
    reader = new Database(path, { readonly: true });
    assert.equal(pastRetention(), OLD_ROWS);
    assert.equal(withinRetention(), RECENT_ROWS);
  });
  afterEach(() => {
    reader.close();
    cleanup();
  });

  const workerOf = (pollIntervalMs = TEST_DELIVERY_SETTINGS.pollIntervalMs) =>
    createDeliveryWorker({
      ledger,
      api: new FakeOpenCrvs(),
      settings: { ...TEST_DELIVERY_SETTINGS, pollIntervalMs },
      now: clock.now,
      purgeChunkRows: CHUNK,
    });

  it('drops a backlog in chunks, with turns of the event loop between them, and only past retention', async () => {
    const worker = workerOf();
    // Scheduled before the purge starts, and again on each turn: what it reads shows the purge's progress
    // as the rest of the process (an HTTP request, a checkpoint) sees it between chunks.
    const seen: number[] = [];
    let sampling = true;
    const sample = () => {
      seen.push(pastRetention());
      if (sampling) setImmediate(sample);
    };
    setImmediate(sample);
    try {
      await worker.runUntilIdle({ timeoutMs: 30_000 });
    } finally {
      sampling = false;
      await worker.stop();
    }
    const between = [...new Set(seen)].filter((n) => n > 0 && n < OLD_ROWS);
    assert.ok(between.length >= OLD_ROWS / CHUNK / 2, `the loop turned only at ${between.join(', ') || 'no point'}`);
    for (const n of between) assert.equal((OLD_ROWS - n) % CHUNK, 0, `${n} left: not whole chunks`);
    assert.equal(pastRetention(), 0, 'the purge went on until nothing past retention was left');
    assert.equal(withinRetention(), RECENT_ROWS, 'payloads within retention are kept');
  });

  it('stops between chunks at stop(), and the next worker drops the rest', async () => {
    const worker = workerOf(60_000);
    worker.start();
    await new Promise<void>((resolve) => setImmediate(resolve));
    await worker.stop();
    const left = pastRetention();
    assert.ok(left > 0 && left < OLD_ROWS, `${left} of ${OLD_ROWS} left at stop`);
    assert.equal(withinRetention(), RECENT_ROWS);

    const next = workerOf();
    await next.runUntilIdle({ timeoutMs: 30_000 });
    await next.stop();
    assert.equal(pastRetention(), 0);
    assert.equal(withinRetention(), RECENT_ROWS);
  });
});
