// Ledger benchmark (`npm run bench:ledger`). Prints figures; asserts nothing (no wall-clock tests).
//  1. enqueue rows/s with synchronous=FULL, one transaction per enqueue (what a sender's ack needs);
//  2. claim + complete rows/s (claim 4, settle each as delivered);
//  3. time per claim with 1,000 and with 100,000 pending rows, and their ratio;
//  4. peak RSS with 100,000 pending rows;
//  5. a `replay --dead` of 5,000 dead rows as serve's admin API runs it (sources/replay.ts): its time and
//     the longest the event loop waited meanwhile (what /healthz and senders' acknowledgements wait).
// Targets: ≥ 2,000 enqueues/s, claim ratio (100k/1k) ≤ 1.5, peak RSS ≤ 200 MB.
// The database lives in the OS temp dir (override with BENCH_DIR) on a real disk: fsync cost counts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  hashPayload,
  type Ledger,
  type LedgerPayload,
  openLedger,
  type RecordEventInput,
} from '../src/ledger/index.js';
import { silentLogger } from '../src/observability/logger.js';
import { replayRows } from '../src/sources/replay.js';
import { median } from './helpers/median.js';

const OFFICE = '028d2c85-ca31-426d-b5d1-2cef545a4902';
const ENQUEUES = Number(process.env.BENCH_ENQUEUES ?? 3000);
const CLAIM_ROWS = Number(process.env.BENCH_CLAIM_ROWS ?? 3000);
const CLAIM_SAMPLES = Number(process.env.BENCH_CLAIM_SAMPLES ?? 400);
const REPLAY_ROWS = Number(process.env.BENCH_REPLAY_ROWS ?? 5000);
const LARGE = 100_000;
const SMALL = 1_000;

/** A birth notification of realistic size (about 1 kB of JSON), distinct per subject. */
function payloadFor(i: number): LedgerPayload {
  return {
    office: OFFICE,
    facility: 'a3d1c0b2-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    declaration: {
      'child.name': { firstname: `Child${i}`, surname: 'Benchmark' },
      'child.gender': i % 2 ? 'female' : 'male',
      'child.dob': '2026-01-02',
      'child.placeOfBirth': 'HEALTH_FACILITY',
      'child.birthLocation': 'a3d1c0b2-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      'child.attendantAtBirth': 'PHYSICIAN',
      'child.birthType': 'SINGLE',
      'child.weightAtBirth': 3.2,
      'mother.name': { firstname: `Mother${i}`, surname: 'Benchmark' },
      'mother.dob': '1994-05-06',
      'mother.nationality': 'FAR',
      'mother.idType': 'NATIONAL_ID',
      'mother.nid': String(1_000_000_000 + i),
      'mother.address': {
        country: 'FAR',
        addressType: 'DOMESTIC',
        administrativeArea: '62a0ccb4-880d-4f30-8882-f256007dfff9',
        streetLevelDetails: { town: 'Ibombo', residentialArea: 'Ward 3', street: 'Example Road', number: '12' },
      },
      'informant.relation': 'MOTHER',
      'informant.phoneNo': '0911111111',
    },
  };
}

function inputFor(i: number, prefix: string): RecordEventInput {
  const payload = payloadFor(i);
  return {
    sourceId: 'bench',
    eventType: 'birth',
    subjectKey: `Patient/${prefix}-${i}`,
    sourceRef: `Encounter/${prefix}-${i}`,
    sourceVersion: '1',
    mappingId: 'birth.fhir',
    payloadHash: hashPayload(payload),
    payload,
    // What a birth's context reaches by reference (the mother's Patient, the maternity encounter), kept with
    // the row in the same transaction (migration 023).
    contextReads: [`Patient/${prefix}-${i}-mother`, `Encounter/${prefix}-${i}-maternity`],
  };
}

function fresh(dir: string, name: string): Ledger {
  return openLedger(join(dir, `${name}.db`));
}

function enqueueRate(dir: string): number {
  const ledger = fresh(dir, 'enqueue');
  const inputs = Array.from({ length: ENQUEUES }, (_, i) => inputFor(i, 'e'));
  const t0 = performance.now();
  for (const input of inputs) ledger.recordEvent(input); // each its own immediate transaction + fsync
  const seconds = (performance.now() - t0) / 1000;
  ledger.close();
  return ENQUEUES / seconds;
}

function fill(ledger: Ledger, count: number, prefix: string): void {
  const BATCH = 5000;
  for (let start = 0; start < count; start += BATCH) {
    ledger.transaction(() => {
      for (let i = start; i < Math.min(count, start + BATCH); i++) ledger.recordEvent(inputFor(i, prefix));
    });
  }
}

function claimCompleteRate(dir: string): number {
  const ledger = fresh(dir, 'claim-complete');
  fill(ledger, CLAIM_ROWS, 'c');
  let done = 0;
  const t0 = performance.now();
  for (;;) {
    const rows = ledger.claimDue('bench', 4);
    if (rows.length === 0) break;
    for (const row of rows) {
      ledger.settle({
        id: row.id,
        workerId: 'bench',
        claimedPayloadHash: row.payloadHash,
        step: 'notify',
        startedAt: Date.now(),
        settlement: { outcome: 'delivered', eventId: `e-${row.id}`, trackingId: 'BENCH1' },
      });
      done++;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  ledger.close();
  return done / seconds;
}

class Rollback extends Error {}

/**
 * Time of one claim (of 4 rows) at a constant queue size, two ways:
 * - `statement`: the claim inside a transaction that is rolled back. This is the part that could grow
 *   with the queue (index lookup, update, RETURNING) without the commit's fsync, whose cost is the
 *   same at any queue size and whose jitter would hide any growth;
 * - `committed`: the claim as the worker runs it (its own transaction + fsync), then handed back untimed.
 */
function claimTimes(ledger: Ledger): { statementMs: number; committedMs: number } {
  const statement: number[] = [];
  const committed: number[] = [];
  for (let i = 0; i < CLAIM_SAMPLES + 20; i++) {
    let elapsed = 0;
    try {
      ledger.transaction(() => {
        const t0 = performance.now();
        ledger.claimDue('bench', 4);
        elapsed = performance.now() - t0;
        throw new Rollback();
      });
    } catch (err) {
      if (!(err instanceof Rollback)) throw err;
    }
    const t0 = performance.now();
    const rows = ledger.claimDue('bench', 4);
    const commitElapsed = performance.now() - t0;
    ledger.handBack(
      rows.map((r) => r.id),
      'bench',
    );
    if (i >= 20) {
      // the first ones warm the page cache
      statement.push(elapsed);
      committed.push(commitElapsed);
    }
  }
  return { statementMs: median(statement), committedMs: median(committed) };
}

/**
 * A `--dead` replay of REPLAY_ROWS rows OpenCRVS refused (dead, with their payload), their source not in
 * the configuration (so they are requeued as stored, with a note): the ledger's part of a replay alone.
 * A turn of the event loop is asked for again and again meanwhile; the longest gap between two is the
 * longest stall.
 */
async function replayStall(dir: string): Promise<{ seconds: number; stallMs: number; requeued: number }> {
  const ledger = fresh(dir, 'replay');
  fill(ledger, REPLAY_ROWS, 'r');
  ledger.transaction(() => {
    for (let rows = ledger.claimDue('bench', 500); rows.length > 0; rows = ledger.claimDue('bench', 500))
      for (const row of rows)
        ledger.settle({
          id: row.id,
          workerId: 'bench',
          claimedPayloadHash: row.payloadHash,
          step: 'notify',
          startedAt: Date.now(),
          settlement: {
            outcome: 'dead',
            error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'bench' },
          },
        });
  });
  let stallMs = 0;
  let last = performance.now();
  let done = false;
  const tick = () => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  const t0 = performance.now();
  const result = await replayRows({ ledger, runners: new Map(), logger: silentLogger }, 'dead');
  const seconds = (performance.now() - t0) / 1000;
  done = true;
  await new Promise((resolve) => setImmediate(resolve));
  ledger.close();
  return { seconds, stallMs, requeued: result.requeued.length };
}

/** The disk's ceiling: commits/s of a one-row insert with synchronous=FULL, nothing else. */
function rawCommitRate(dir: string): number {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const n = Math.min(ENQUEUES, 2000);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) db.transaction(() => insert.run('x'.repeat(1000))).immediate();
  const rate = n / ((performance.now() - t0) / 1000);
  db.close();
  return rate;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'ledger-bench-'));
  try {
    const raw = rawCommitRate(dir);
    const enqueues = enqueueRate(dir);
    const claimComplete = claimCompleteRate(dir);
    const replay = await replayStall(dir);

    const small = fresh(dir, 'claim-1k');
    fill(small, SMALL, 's');
    const smallTimes = claimTimes(small);
    small.close();

    const large = fresh(dir, 'claim-100k');
    fill(large, LARGE, 'l');
    const largeTimes = claimTimes(large);
    const pending = large.counts().find((c) => c.state === 'pending')?.count ?? 0;
    large.close();
    // maxRSS is the process's peak resident set (kB on Linux), reached while holding 100k pending rows.
    const peakRssMb = process.resourceUsage().maxRSS / 1024;

    const ratio = largeTimes.statementMs / smallTimes.statementMs;
    const committedRatio = largeTimes.committedMs / smallTimes.committedMs;
    const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
    const big = pending.toLocaleString('en');
    const rows: Array<[string, string, string]> = [
      ['disk ceiling: bare 1-row commits, synchronous=FULL', `${raw.toFixed(0)} tx/s`, ''],
      [
        'enqueue (synchronous=FULL, 1 tx each)',
        `${enqueues.toFixed(0)} rows/s`,
        enqueues >= 2000 ? 'ok ≥ 2000' : 'MISS ≥ 2000',
      ],
      ['claim + complete (claim 4, settle each)', `${claimComplete.toFixed(0)} rows/s`, ''],
      [
        `replay --dead of ${REPLAY_ROWS.toLocaleString('en')} rows (${replay.requeued.toLocaleString('en')} requeued)`,
        `${replay.seconds.toFixed(2)} s`,
        '',
      ],
      ['  longest event-loop stall meanwhile', `${replay.stallMs.toFixed(0)} ms`, ''],
      [`claim statement, ${SMALL.toLocaleString('en')} pending`, us(smallTimes.statementMs), ''],
      [`claim statement, ${big} pending`, us(largeTimes.statementMs), ''],
      ['claim statement ratio 100k / 1k', ratio.toFixed(2), ratio <= 1.5 ? 'ok ≤ 1.5' : 'MISS ≤ 1.5'],
      [`claim committed, ${SMALL.toLocaleString('en')} pending`, us(smallTimes.committedMs), ''],
      [`claim committed, ${big} pending`, us(largeTimes.committedMs), ''],
      ['claim committed ratio 100k / 1k', committedRatio.toFixed(2), committedRatio <= 1.5 ? 'ok ≤ 1.5' : 'MISS ≤ 1.5'],
      [
        'peak RSS (100k pending rows)',
        `${peakRssMb.toFixed(0)} MB`,
        peakRssMb <= 200 ? 'ok ≤ 200 MB' : 'MISS ≤ 200 MB',
      ],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    console.log(`ledger benchmark (node ${process.version}, ${ENQUEUES} enqueues, ${CLAIM_SAMPLES} claim samples)`);
    for (const [name, value, target] of rows) console.log(`  ${name.padEnd(width)}  ${value.padStart(13)}  ${target}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
