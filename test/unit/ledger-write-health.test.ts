// A storage error any user of the ledger meets is kept for /readyz `store` (Ledger.writeFailure): a full
// disk lets one small write through (pages the WAL already has) while a delivery's or a poll's fails.
// `PRAGMA max_page_count` at the file's size stands in for the full disk: SQLite's own SQLITE_FULL.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Db } from '../../src/ledger/db.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { MIN_FREE_BYTES, WRITE_FAILURE_HOLD_MS } from '../../src/ledger/write-health.js';
import { eventInput, payload, type TestClock, testClock } from './ledger-helpers.js';

describe('ledger: storage errors kept for readiness', () => {
  let dir: string;
  let clock: TestClock;
  let ledger: Ledger;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-full-'));
    clock = testClock();
    ledger = openLedger(join(dir, 'bridge.db'), {
      now: clock.now,
      // The file system's room is the test's to say (a CI tmpdir may be a small tmpfs).
      freeSpace: () => undefined,
      onOpen: (opened) => {
        db = opened;
      },
    });
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** The disk full: no page past those the file has now. */
  const fillDisk = () => db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
  const freeDisk = () => db.pragma('max_page_count = 1073741823');
  /** What /readyz `store` writes (src/app.ts): its small write, then the proof; a storage error is kept. */
  const storeCheck = (value: string) => {
    try {
      ledger.setMeta('health:lastWriteCheck', value);
      ledger.proveWritable();
    } catch (err) {
      if (!ledger.writeFailure()) throw err;
    }
    return ledger.writeFailure() ? 'red' : 'green';
  };
  /** A record large enough to need new pages. */
  const bigRecord = (n: number) => eventInput(`big-${n}`, payload('Big', { note: 'x'.repeat(64 * 1024) }));

  it('keeps SQLITE_FULL from a write that needed room, while a small write still fits', () => {
    ledger.recordEvent(eventInput('1'));
    assert.equal(ledger.writeFailure(), undefined);
    fillDisk();
    assert.throws(() => ledger.recordEvent(bigRecord(1)), { code: 'SQLITE_FULL' });
    const failure = ledger.writeFailure();
    assert.equal(failure?.code, 'SQLITE_FULL');
    assert.equal(failure?.at, clock.now());
    assert.match(failure?.message ?? '', /full/);
    // The readiness probe's kind of write: an existing row's value changed in place.
    clock.advance(5_000);
    ledger.setMeta('health:lastWriteCheck', 'a');
    assert.equal(ledger.writeFailure()?.code, 'SQLITE_FULL', 'one small write that fits proves nothing');
  });

  it('clears once a write that needs new pages commits a minute after the last failure; not on reads, not within the minute', () => {
    ledger.setMeta('health:lastWriteCheck', 'a');
    fillDisk();
    assert.throws(() => ledger.recordEvent(bigRecord(1)), { code: 'SQLITE_FULL' });
    freeDisk();
    clock.advance(WRITE_FAILURE_HOLD_MS - 1);
    ledger.proveWritable();
    assert.equal(ledger.writeFailure()?.code, 'SQLITE_FULL', 'within the minute: a poll may fail again');
    clock.advance(1);
    ledger.list({});
    ledger.getMeta('health:lastWriteCheck');
    assert.equal(ledger.writeFailure()?.code, 'SQLITE_FULL', 'a read writes nothing');
    ledger.recordEvent(bigRecord(2));
    ledger.setMeta('health:lastWriteCheck', 'b');
    assert.equal(
      ledger.writeFailure()?.code,
      'SQLITE_FULL',
      'other writes do not clear it: they need not have needed room',
    );
    ledger.proveWritable();
    assert.equal(ledger.writeFailure(), undefined);
    assert.equal(ledger.getMeta('health:writeProof'), undefined, 'the scratch value is not kept');
  });

  it("stays failing while the disk is still full: the store check's own write every 5 s, a poll failing every 2 minutes", () => {
    ledger.recordEvent(eventInput('1'));
    ledger.setMeta('health:lastWriteCheck', 'a');
    fillDisk();
    const pagesFull = Number(db.pragma('page_count', { simple: true }));
    for (let round = 0; round < 3; round++) {
      assert.throws(() => ledger.recordEvent(bigRecord(round)), { code: 'SQLITE_FULL' });
      for (let t = 5; t <= 115; t += 5) {
        clock.advance(5_000);
        // Its small write fits in the pages the file has; the proof does not.
        assert.equal(storeCheck(`r${round}-${t}`), 'red', `round ${round}, ${t} s after the poll's failure`);
      }
      clock.advance(5_000);
    }
    assert.equal(Number(db.pragma('page_count', { simple: true })), pagesFull);
    // Space again: the first proof a minute after the last failure clears it.
    freeDisk();
    clock.advance(WRITE_FAILURE_HOLD_MS);
    ledger.proveWritable();
    assert.equal(ledger.writeFailure(), undefined);
  });

  it('stays failing while the disk is still full when readiness is asked a minute or more apart', () => {
    ledger.setMeta('health:lastWriteCheck', 'a');
    fillDisk();
    assert.throws(() => ledger.recordEvent(bigRecord(1)), { code: 'SQLITE_FULL' });
    for (let probe = 1; probe <= 5; probe++) {
      clock.advance(WRITE_FAILURE_HOLD_MS + 5_000);
      assert.equal(storeCheck(`p${probe}`), 'red', `probe ${probe}: the small write fit, the disk is still full`);
    }
  });

  it('stays failing while the file system has little room, though the proof write fits (a WAL rewritten in place)', () => {
    // On a real full disk the proof fits: a checkpointed WAL is written again from its start and a
    // long-lived file has free pages inside it. The file system's own count decides as well.
    let free = 1024 * 1024;
    const size = 100 * MIN_FREE_BYTES;
    const path = join(dir, 'statfs.db');
    const other = openLedger(path, {
      now: clock.now,
      freeSpace: () => ({ free, size }),
      onOpen: (opened) => {
        db = opened;
      },
    });
    try {
      other.recordEvent(eventInput('1'));
      fillDisk();
      assert.throws(() => other.recordEvent(bigRecord(1)), { code: 'SQLITE_FULL' });
      freeDisk(); // SQLite has room: the proof write succeeds
      clock.advance(WRITE_FAILURE_HOLD_MS);
      other.proveWritable();
      assert.equal(other.writeFailure()?.code, 'SQLITE_FULL', '1 MiB free: not enough for a poll and a checkpoint');
      free = MIN_FREE_BYTES;
      other.proveWritable();
      assert.equal(other.writeFailure(), undefined);
    } finally {
      other.close();
    }
  });

  it('asks less room of a small volume, and none for a failure room does not fix (a read-only file)', () => {
    let space = { free: 5 * 1024 * 1024, size: 40 * 1024 * 1024 }; // a tenth of it is 4 MiB
    const other = openLedger(join(dir, 'small.db'), {
      now: clock.now,
      freeSpace: () => space,
      onOpen: (opened) => {
        db = opened;
      },
    });
    try {
      other.recordEvent(eventInput('1'));
      fillDisk();
      assert.throws(() => other.recordEvent(bigRecord(1)), { code: 'SQLITE_FULL' });
      freeDisk();
      clock.advance(WRITE_FAILURE_HOLD_MS);
      other.proveWritable();
      assert.equal(other.writeFailure(), undefined, '5 MiB free of 40: enough for that volume');
      // A file made read-only and writable again: space has nothing to do with it.
      space = { free: 0, size: 40 * 1024 * 1024 };
      db.pragma('query_only = 1');
      assert.throws(() => other.recordEvent(eventInput('2')), { code: 'SQLITE_READONLY' });
      db.pragma('query_only = 0');
      clock.advance(WRITE_FAILURE_HOLD_MS);
      other.proveWritable();
      assert.equal(other.writeFailure(), undefined, 'cleared by the proof alone');
    } finally {
      other.close();
    }
  });

  it('writes no proof while nothing failed', () => {
    const before = db.prepare('SELECT total_changes()').pluck().get();
    ledger.proveWritable();
    assert.equal(db.prepare('SELECT total_changes()').pluck().get(), before);
  });

  it('keeps a failure met inside a transaction, and by the inbox (a notification stored)', () => {
    fillDisk();
    assert.throws(
      () => ledger.transaction(() => ledger.inbox.add('emr', { big: 'x'.repeat(64 * 1024) }, clock.now())),
      { code: 'SQLITE_FULL' },
    );
    assert.equal(ledger.writeFailure()?.code, 'SQLITE_FULL');
  });

  it('keeps a corrupt ledger failing: a proof that fits in pages the damage spared does not clear it', () => {
    ledger.close();
    // The index every new row goes into, overwritten on disk (a failing disk, a file copied over the ledger).
    const path = join(dir, 'bridge.db');
    const raw = new Database(path);
    const pageSize = Number(raw.pragma('page_size', { simple: true }));
    const root = Number(
      raw.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'ledger_rows_state'").pluck().get(),
    );
    raw.close();
    const bytes = readFileSync(path);
    bytes.fill(0xee, (root - 1) * pageSize, root * pageSize);
    writeFileSync(path, bytes);
    ledger = openLedger(path, { now: clock.now, freeSpace: () => undefined });
    assert.throws(() => ledger.recordEvent(eventInput('1')), { code: 'SQLITE_CORRUPT' });
    assert.equal(ledger.writeFailure()?.code, 'SQLITE_CORRUPT');
    clock.advance(WRITE_FAILURE_HOLD_MS + 5_000);
    assert.equal(storeCheck('a'), 'red', 'the proof wrote to the meta table, whose pages are sound');
    assert.equal(ledger.writeFailure()?.code, 'SQLITE_CORRUPT');
  });

  it('keeps what is not a storage error out (a bug, a busy lock)', () => {
    assert.throws(() => ledger.transaction(() => assert.fail('a bug')));
    const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    assert.throws(() =>
      ledger.transaction(() => {
        throw busy;
      }),
    );
    assert.equal(ledger.writeFailure(), undefined);
  });
});
