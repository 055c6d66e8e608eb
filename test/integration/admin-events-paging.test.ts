// Paging `GET /admin/api/events` through a ledger of a few thousand rows over HTTP: the `before` cursor
// (`next` in each answer) visits every row the filters select exactly once, newest first, whichever
// index the ledger reads them through (a time bound few rows meet is read through its own, migration
// 021); `offset` pages alike; a bad cursor is a 400 that names it. What each filter selects is asked of
// the SQLite file directly, not of the code under test.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type AdminTarget, adminRoutes } from '../../src/http/admin/index.js';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { hashPayload, type Ledger, type LedgerPayload, openLedger } from '../../src/ledger/index.js';
import { TIME_INDEX_MAX_ROWS } from '../../src/ledger/queries.js';
import { silentLogger } from '../../src/observability/logger.js';

const TOKEN = 'admin-paging-token-0123456789';
const ROWS = 3000;
/** Left pending (never claimed): the newest rows. */
const PENDING = 200;
const MINUTE = 60_000;
const START = Date.parse('2026-01-01T00:00:00Z');

interface Bed {
  base: string;
  path: string;
  /** Old rows dismissed at the very end: their last update is long after their arrival. */
  touchedLate: number[];
  /** When the last row arrived, and when the rows were settled, dismissed. */
  times: { arrived: number; settled: number; dismissed: number };
  close(): Promise<void>;
}

/**
 * ROWS rows a minute apart, of two sources and two event types; all but the newest settled a minute apart
 * (every 11th dead); then a few old dead rows dismissed, a day later.
 */
function fill(ledger: Ledger, clock: { now: number }): Bed['times'] & { touchedLate: number[] } {
  const payload: LedgerPayload = { office: 'office-1', declaration: { 'child.dob': '2026-01-02' } };
  ledger.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      clock.now += MINUTE;
      ledger.recordEvent({
        sourceId: i % 7 === 0 ? 'clinic' : 'emr',
        eventType: i % 5 === 0 ? 'death' : 'birth',
        subjectKey: `Patient/p${i}`,
        sourceRef: `Encounter/e${i}`,
        sourceVersion: '1',
        mappingId: 'birth.fhir',
        payloadHash: hashPayload(payload),
        payload,
      });
    }
  });
  const arrived = clock.now;
  clock.now += MINUTE;
  const settled = clock.now;
  const dead: number[] = [];
  ledger.transaction(() => {
    for (const row of ledger.claimDue('paging-test', ROWS - PENDING, clock.now)) {
      clock.now += MINUTE;
      const died = row.id % 11 === 0;
      if (died) dead.push(row.id);
      ledger.settle({
        id: row.id,
        workerId: 'paging-test',
        claimedPayloadHash: row.payloadHash,
        step: 'notify',
        startedAt: clock.now,
        settlement: died
          ? { outcome: 'dead', error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'x' } }
          : { outcome: 'delivered', eventId: `ev-${row.id}`, trackingId: `T${row.id}` },
      });
    }
  });
  clock.now += 24 * 60 * MINUTE;
  const dismissed = clock.now;
  const touchedLate = dead.slice(0, 5);
  assert.deepEqual(ledger.dismiss(touchedLate, 'test rows').dismissed, touchedLate);
  return { arrived, settled, dismissed, touchedLate };
}

async function startBed(): Promise<Bed> {
  const dir = mkdtempSync(join(tmpdir(), 'admin-paging-'));
  const path = join(dir, 'bridge.db');
  const clock = { now: START };
  const ledger = openLedger(path, { now: () => clock.now });
  const { touchedLate, ...times } = fill(ledger, clock);
  const target: AdminTarget = {
    ledger,
    counts: () => ledger.counts(),
    held: () => undefined,
    sourceStatuses: () =>
      ['emr', 'clinic'].map((id) => ({ id, kind: 'fhir' as const, watermarks: {}, consecutiveFailures: 0 })),
    replay: async (ids) => ledger.replay(ids),
  };
  const app = createHttpApp(
    [
      {
        path: '/admin',
        router: adminRoutes(target, { token: TOKEN, showPersonalData: false }, { logger: silentLogger }),
      },
    ],
    silentLogger,
  );
  const { server, port }: { server: Server; port: number } = await listen(app, 0, '127.0.0.1');
  return {
    base: `http://127.0.0.1:${port}`,
    path,
    touchedLate,
    times,
    close: async () => {
      await closeServer(server, 1000);
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function get(bed: Bed, query: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${bed.base}/admin/api/events?${query}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(5000),
  });
  const body: unknown = await response.json();
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), 'a JSON object');
  return { status: response.status, body: { ...body } };
}

function idsOf(body: Record<string, unknown>): number[] {
  const events = body.events;
  assert.ok(Array.isArray(events), 'events is a list');
  return events.map((e: { id?: unknown }) => {
    assert.equal(typeof e.id, 'number');
    return e.id as number;
  });
}

/** Every page from the first, each asked with the `next` of the one before; the ids in the order seen. */
async function pageByCursor(bed: Bed, filters: string, limit: number): Promise<{ ids: number[]; pages: number }> {
  const ids: number[] = [];
  let query = `${filters}&limit=${limit}`;
  for (let pages = 1; pages <= ROWS; pages++) {
    const { status, body } = await get(bed, query);
    assert.equal(status, 200, `${query}: ${JSON.stringify(body)}`);
    const page = idsOf(body);
    ids.push(...page);
    if (!body.hasMore) {
      assert.equal(body.next, null, `${query}: no next on the last page`);
      return { ids, pages };
    }
    assert.equal(page.length, limit, `${query}: a page before the last is full`);
    assert.equal(body.next, page.at(-1), `${query}: next is the last row's id`);
    query = `${filters}&limit=${limit}&before=${body.next}`;
  }
  assert.fail(`${filters}: more pages than rows`);
}

async function pageByOffset(bed: Bed, filters: string, limit: number): Promise<number[]> {
  const ids: number[] = [];
  for (let offset = 0; ; offset += limit) {
    const { status, body } = await get(bed, `${filters}&limit=${limit}&offset=${offset}`);
    assert.equal(status, 200, JSON.stringify(body));
    ids.push(...idsOf(body));
    if (!body.hasMore) return ids;
  }
}

describe('admin events API: paging a few thousand rows', () => {
  let bed: Bed;
  let db: Database.Database;
  /** What the filter selects, newest first, asked of the file itself. */
  const expected = (where: string, params: Record<string, string | number> = {}) =>
    db
      .prepare(`SELECT id FROM ledger_rows ${where ? `WHERE ${where}` : ''} ORDER BY id DESC`)
      .pluck()
      .all(params) as number[];

  before(async () => {
    bed = await startBed();
    db = new Database(bed.path, { readonly: true });
  });
  after(async () => {
    db?.close();
    await bed?.close();
  });

  it('the cursor pages cover every row exactly once, newest first, alone and with each filter', async () => {
    const { arrived, settled, dismissed } = bed.times;
    // `lastDay`: the rows dismissed a day after the rest, old ids all (few rows: read through the time index);
    // `lastHours`: the newest settled rows and those (more than the time index is used for: walked by id);
    // `untilMid`: the oldest settled rows, and the newest (still pending, untouched since they arrived).
    const lastDay = dismissed - 60 * MINUTE;
    const lastHours = settled + (ROWS - PENDING - 1500) * MINUTE;
    const untilMid = settled + 1500 * MINUTE;
    const cases: Array<[string, string, Record<string, string | number>]> = [
      ['', '', {}],
      ['state=dead,pending', "state IN ('dead', 'pending')", {}],
      ['state=skipped', "state = 'skipped'", {}],
      ['source=clinic', "source_id = 'clinic'", {}],
      ['source=clinic&eventType=death', "source_id = 'clinic' AND event_type = 'death'", {}],
      ['state=dead&source=emr&eventType=birth', "state = 'dead' AND source_id = 'emr' AND event_type = 'birth'", {}],
      [`since=${lastDay}`, 'updated_at >= @t', { t: lastDay }],
      [`since=${lastHours}`, 'updated_at >= @t', { t: lastHours }],
      [`since=${lastHours}&source=clinic`, "updated_at >= @t AND source_id = 'clinic'", { t: lastHours }],
      [`since=${lastHours}&state=dead,skipped`, "updated_at >= @t AND state IN ('dead', 'skipped')", { t: lastHours }],
      [`until=${untilMid}`, 'updated_at <= @t', { t: untilMid }],
      [`until=${arrived}&eventType=death`, "updated_at <= @t AND event_type = 'death'", { t: arrived }],
      [
        `since=${START}&until=${settled + 100 * MINUTE}`,
        'updated_at BETWEEN @a AND @b',
        { a: START, b: settled + 100 * MINUTE },
      ],
    ];
    // Both ways a time bound is read are met: by its index, and by the walk newest first.
    const inBound = (t: number) => expected('updated_at >= @t', { t }).length;
    assert.ok(inBound(lastDay) > 0 && inBound(lastDay) < TIME_INDEX_MAX_ROWS, 'few rows in the last day');
    assert.ok(inBound(lastHours) > TIME_INDEX_MAX_ROWS, 'many rows in the last hours');
    assert.ok(expected('updated_at <= @t', { t: untilMid }).length > TIME_INDEX_MAX_ROWS, 'many until the middle');
    assert.deepEqual(expected('updated_at >= @t', { t: lastDay }), [...bed.touchedLate].reverse());

    for (const [filters, where, params] of cases) {
      const want = expected(where, params);
      assert.ok(want.length > 0, `${filters || 'no filter'} selects rows`);
      const { ids, pages } = await pageByCursor(bed, filters, 97);
      assert.equal(new Set(ids).size, ids.length, `${filters}: no row twice`);
      assert.deepEqual(ids, want, `${filters || 'no filter'}: every row, newest first`);
      assert.equal(pages, Math.max(1, Math.ceil(want.length / 97)), `${filters}: no empty page at the end`);
    }
  });

  it('offset still pages alike', async () => {
    const filters = `source=emr&state=delivered,dead&since=${START}`;
    const byOffset = await pageByOffset(bed, filters, 250);
    assert.deepEqual(byOffset, (await pageByCursor(bed, filters, 250)).ids);
    assert.deepEqual(byOffset, expected("source_id = 'emr' AND state IN ('delivered', 'dead')"));
  });

  it('a cursor past the newest row starts at the newest; one at the oldest row answers an empty last page', async () => {
    const [newest] = expected('');
    const oldest = expected('').at(-1);
    assert.ok(newest !== undefined && oldest !== undefined);
    const fromTop = await get(bed, `before=${newest + 1000}&limit=3`);
    assert.deepEqual(idsOf(fromTop.body), [newest, newest - 1, newest - 2]);
    assert.equal(fromTop.body.before, newest + 1000, 'the cursor asked with is echoed');
    const end = await get(bed, `before=${oldest}`);
    assert.equal(end.status, 200);
    assert.deepEqual([idsOf(end.body), end.body.hasMore, end.body.next], [[], false, null]);
  });

  it('answers a bad cursor with 400 naming it', async () => {
    for (const cursor of ['abc', '0', '-5', '1.5', '12abc', '1e3', '%20', '1&before=2', '9999999999']) {
      const { status, body } = await get(bed, `before=${cursor}`);
      assert.equal(status, 400, cursor);
      assert.match(String(body.error), /^before: /, cursor);
    }
    const both = await get(bed, 'before=100&offset=5');
    assert.equal(both.status, 400);
    assert.match(String(both.body.error), /^offset: not with before/);
  });
});
