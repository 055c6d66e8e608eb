// Admin events API benchmark (`npm run bench:admin`). Prints figures; asserts nothing (no wall-clock tests).
// The ledger queries behind `GET /admin/api/events` on a ledger of BENCH_ADMIN_ROWS rows (220,000 by
// default, as a scale review found them): each statement's time (median of a few runs, warm) and its
// plan, for the ways of paging (`offset`, the `before` cursor) and the filters that read the most
// (`since`, a rare state, a small source). Every one of them runs on the event loop that answers senders.
// Targets: a page read by the cursor, at any depth and with any filter, ≤ 20 ms.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { hashPayload, type LedgerPayload, type ListFilter, openLedger } from '../src/ledger/index.js';
import { listQuery, TIME_INDEX_MAX_ROWS, timeNewestQuery, timeProbeQuery } from '../src/ledger/queries.js';
import { median } from './helpers/median.js';

const ROWS = Number(process.env.BENCH_ADMIN_ROWS ?? 220_000);
const RUNS = Number(process.env.BENCH_ADMIN_RUNS ?? 5);
const HOUR = 3_600_000;

/** A ledger of ROWS rows over about a year: most delivered (payload purged), a few dead, two sources. */
function build(path: string, start: number): void {
  const ledger = openLedger(path);
  const payload: LedgerPayload = { office: 'office-1', declaration: { 'child.dob': '2026-01-02' } };
  ledger.recordEvent({
    sourceId: 'emr',
    eventType: 'birth',
    subjectKey: 'Patient/template',
    sourceRef: 'Encounter/template',
    sourceVersion: '1',
    mappingId: 'birth.fhir',
    payloadHash: hashPayload(payload),
    payload,
  });
  ledger.close();
  const db = new Database(path);
  // One row per `step` of the year; every 50th a death, every 1,000th dead, the last 100 pending,
  // one in 20 from the small source `clinic`; a row's last update an hour after its arrival.
  const step = Math.floor((365 * 24 * HOUR) / ROWS);
  db.prepare(`
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @rows)
    INSERT INTO ledger_rows (source_id, event_type, subject_key, source_ref, source_version, mapping_id, state,
      attempts, next_run_at, base_transaction_id, create_transaction_id, notify_transaction_id, office,
      payload_hash, event_id, tracking_id, first_seen_at, queued_at, created_at, updated_at, delivered_at)
    SELECT CASE WHEN i % 20 = 0 THEN 'clinic' ELSE 'emr' END,
      CASE WHEN i % 50 = 0 THEN 'death' ELSE 'birth' END,
      'Patient/p' || i, 'Encounter/e' || i, '1', 'birth.fhir',
      CASE WHEN i > @rows - 100 THEN 'pending' WHEN i % 1000 = 0 THEN 'dead' ELSE 'delivered' END,
      1, @start + i * @step, 'b' || i, 'c' || i, 'n' || i, 'office-1', t.payload_hash, 'ev' || i,
      printf('T%05d', i), @start + i * @step, @start + i * @step, @start + i * @step,
      @start + i * @step + @hour, @start + i * @step + @hour
    FROM n, (SELECT payload_hash FROM ledger_rows LIMIT 1) AS t`).run({ rows: ROWS, start, step, hour: HOUR });
  db.prepare("DELETE FROM ledger_rows WHERE subject_key = 'Patient/template'").run();
  // A few old rows touched lately (replayed, dismissed): `since` cannot stop at the newest ids.
  db.prepare('UPDATE ledger_rows SET updated_at = @now WHERE id % 20011 = 0').run({ now: start + 366 * 24 * HOUR });
  db.close();
}

function main(): void {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'bench-admin-'));
  const path = join(dir, 'ledger.db');
  const start = Date.parse('2025-01-01T00:00:00Z');
  const end = start + 366 * 24 * HOUR;
  try {
    let t0 = performance.now();
    build(path, start);
    console.log(`built a ledger of ${ROWS} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const ledger = openLedger(path);
    const db = new Database(path, { readonly: true });
    const deep = Math.floor(ROWS * 0.9);
    const cases: Array<[string, ListFilter]> = [
      ['newest page', { limit: 101 }],
      [`offset=${deep}`, { limit: 101, offset: deep }],
      [`before=${ROWS - deep} (the same depth)`, { limit: 101, before: ROWS - deep }],
      ['since=the last day', { limit: 101, since: end - 24 * HOUR }],
      ['since=the last day, before=the middle', { limit: 101, since: end - 24 * HOUR, before: ROWS / 2 }],
      ['since=the last 30 days', { limit: 101, since: end - 30 * 24 * HOUR }],
      ['since=the last 30 days, before=the middle', { limit: 101, since: end - 30 * 24 * HOUR, before: ROWS / 2 }],
      ['until=the first month', { limit: 101, until: start + 30 * 24 * HOUR }],
      ['until=the first 11 months', { limit: 101, until: start + 330 * 24 * HOUR }],
      [
        'since=the first day of month 6 until its last',
        { limit: 101, since: start + 150 * 24 * HOUR, until: start + 180 * 24 * HOUR },
      ],
      ['state=delivered,dead', { limit: 101, states: ['delivered', 'dead'] }],
      ['state=dead', { limit: 101, states: ['dead'] }],
      ['state=dead,pending before=the middle', { limit: 101, states: ['dead', 'pending'], before: ROWS / 2 }],
      ['source=clinic, before=the middle', { limit: 101, sourceId: 'clinic', before: ROWS / 2 }],
      ['eventType=death, before=the middle', { limit: 101, eventType: 'death', before: ROWS / 2 }],
    ];
    for (const [name, filter] of cases) {
      // As list() chooses: a time bound few rows meet through its index.
      const timed = filter.since !== undefined || filter.until !== undefined;
      const probe = timed ? timeProbeQuery(filter) : undefined;
      const few = probe ? (db.prepare(probe.sql).pluck().get(probe.params) as number) < TIME_INDEX_MAX_ROWS : false;
      const newest = timed && !few && filter.until !== undefined ? timeNewestQuery(filter) : undefined;
      const upTo = newest ? (db.prepare(newest.sql).pluck().get(newest.params) as number) : undefined;
      const { sql, params } = listQuery(filter, few ? { byTime: true } : upTo !== undefined ? { upTo } : {});
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(params)
        .map((r) => (r as { detail: string }).detail)
        .join('; ');
      const samples: number[] = [];
      let rows = 0;
      for (let i = 0; i < RUNS + 1; i++) {
        t0 = performance.now();
        rows = ledger.list(filter).length;
        if (i > 0) samples.push(performance.now() - t0); // the first warms the page cache
      }
      console.log(
        `${name.padEnd(42)} ${median(samples).toFixed(2).padStart(8)} ms  ${String(rows).padStart(4)} rows  ${plan}`,
      );
    }
    db.close();
    ledger.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
