// The DHIS2 poller's reading of the tracked entities births read as their context (the mothers, usually not
// in the programme it lists), against an in-memory stand-in for DHIS2's `trackedEntities=…&updatedAfter=…`
// list and DHIS2's clock, which no fixed server can be made to move at a chosen moment: its cursor, a reading
// carried across passes, a change made while a reading runs, a reading whose results could not be recorded.
// The same over HTTP, against the DHIS2 and OpenCRVS simulators: test/integration/context-only-change.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import type { Dhis2Client } from '../../src/sources/dhis2/client.js';
import {
  DHIS2_CONTEXT_BEGUN,
  DHIS2_CONTEXT_CURSOR,
  DHIS2_CONTEXT_READING,
  Dhis2Poller,
  MAX_CONTEXT_BATCHES,
} from '../../src/sources/dhis2/poller.js';
import type { SourcePipeline } from '../../src/sources/pipeline.js';

const EARLY = '2026-01-01T08:00:00.000';
/** A mother's name here as the DHIS2 uid it is known by (the poller asks for no other). */
const uidOf = (i: number) => `m${String(i).padStart(3, '0')}`.padEnd(11, 'Q');

const DAY_MS = 86_400_000;

/**
 * `mothers` known to the ledger (all at EARLY unless changed), `pageSize` the poll's (the uids asked per
 * request). `now` is DHIS2's clock, read by the pass at its start; `bridge.now` the bridge's (ms), at which
 * each mother's row was last updated (`rowUpdated`) unless a test says otherwise: the ledger lists the
 * mothers of rows updated since the `since` it is asked with.
 */
function world(mothers: number, { pageSize = 2, overlapSeconds = 0 } = {}) {
  const updatedAt = new Map<string, string>();
  for (let i = 0; i < mothers; i++) updatedAt.set(uidOf(i), EARLY);
  const clock = { now: '2026-01-01T10:00:00.000' };
  const bridge = { now: Date.parse('2026-01-01T10:00:00.000Z') };
  const rowUpdated = new Map<string, number>();
  for (const uid of updatedAt.keys()) rowUpdated.set(uid, bridge.now);
  const asked: Array<{ uids: string[]; updatedAfter: string | undefined; program: string | undefined }> = [];
  // `refuse`: DHIS2 answers the listing by uid with an error (an outage, a version that will not list it);
  // `uid`: only a listing that asks for that uid; `time: false`: its system/info fails.
  const refusal: { refuse: boolean; time: boolean; uid?: string } = { refuse: false, time: true };
  const client = {
    async serverTime() {
      if (!refusal.time) throw new Error('system/info failed: HTTP 503');
      return clock.now;
    },
    async trackedEntityPage(params: Record<string, string>) {
      // The programme's own pages: no child changed.
      if (params.program) return { entities: [], pageSize: Number(params.pageSize), total: undefined };
      const uids = (params.trackedEntities ?? '').split(',');
      asked.push({ uids, updatedAfter: params.updatedAfter, program: params.program });
      if (refusal.refuse && (refusal.uid === undefined || uids.includes(refusal.uid)))
        throw new Error('list tracked entities failed: HTTP 409');
      const after = params.updatedAfter ?? '';
      const entities = uids
        .filter((uid) => (updatedAt.get(uid) ?? '') >= after)
        .map((uid) => ({ trackedEntity: uid, updatedAt: updatedAt.get(uid) }));
      return { entities, pageSize: Number(params.pageSize), total: undefined };
    },
  } as unknown as Dhis2Client;
  const evaluated: string[] = [];
  const cursors = new Map<string, string>();
  // `settles: false`: a result another evaluation overtook, whose reread failed (nothing of it recorded).
  const behaviour = { settles: true };
  const pipeline = {
    reading: <F>(fetcher: F) => fetcher,
    async finished() {},
    overtakes: () => !behaviour.settles,
    settled: async () => behaviour.settles,
    async evaluate(resources: Array<{ id?: string; meta?: { versionId?: string } }>) {
      for (const r of resources) evaluated.push(`${r.id}@${r.meta?.versionId}`);
      return { results: [] };
    },
    commit(_results: unknown, cursor?: { name: string; value: string }) {
      if (cursor) cursors.set(cursor.name, cursor.value);
      return {
        resources: 0,
        subjects: 0,
        mapped: { inserted: 0, replaced: 0, unchanged: 0, 'updated-after-notification': 0 },
        skipped: 0,
        invalid: 0,
        ledgerIds: [],
      };
    },
  } as unknown as SourcePipeline;
  const refs = (since: number) =>
    [...updatedAt.keys()]
      .filter((uid) => (rowUpdated.get(uid) ?? 0) >= since)
      .map((uid) => `TrackedEntity/${uid}`)
      .sort();
  const warnings: string[] = [];
  const logger = createLogger({
    level: 'warn',
    destination: { write: (line: string) => void warnings.push(JSON.parse(line).msg) },
  });
  // A new process (a `sync --once` run, a restart) over the same ledger and DHIS2.
  const newProcess = () =>
    new Dhis2Poller({
      sourceId: 'hmis',
      client,
      pipeline,
      cursors: {
        getCursor: (_s: string, name: string) => cursors.get(name),
        setCursor: (_s: string, name: string, value: string) => void cursors.set(name, value),
      } as never,
      dhis2: { program: 'IpHINAT79UW', fields: '*' },
      poll: { enabled: true, schedule: '* * * * *', overlapSeconds, pageSize, since: EARLY } as never,
      logger,
      now: () => bridge.now,
      contextRefs: (after, limit, since) =>
        refs(since)
          .filter((ref) => ref > after)
          .slice(0, limit),
    });
  const poller = newProcess();
  const change = (i: number, at: string) => updatedAt.set(uidOf(i), at);
  return {
    poller,
    newProcess,
    asked,
    evaluated,
    cursors,
    clock,
    bridge,
    change,
    behaviour,
    updatedAt,
    rowUpdated,
    refusal,
    warnings,
  };
}

describe('DHIS2 poller: the tracked entities births read as their context', () => {
  it('asks for the known uids changed since its cursor, and moves the cursor to the reading’s start', async () => {
    const w = world(3);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    w.change(1, '2026-01-01T09:30:00.000');
    await w.poller.pollOnce();
    assert.deepEqual(
      w.asked.map((a) => a.uids),
      [[uidOf(0), uidOf(1)], [uidOf(2)]],
      'in batches of the page size, with no programme',
    );
    assert.ok(w.asked.every((a) => a.updatedAfter === '2026-01-01T09:00:00.000' && a.program === undefined));
    assert.deepEqual(w.evaluated, [`${uidOf(1)}@2026-01-01T09:30:00.000`], 'only the changed one');
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000');
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), undefined, "the programme's watermark is its own");

    // Next pass: from the cursor, the same version not mapped again.
    w.clock.now = '2026-01-01T10:05:00.000';
    await w.poller.pollOnce();
    assert.equal(w.evaluated.length, 1);
    assert.equal(w.asked.at(-1)?.updatedAfter, '2026-01-01T10:00:00.000');
  });

  it('a refused listing fails neither the pass nor moves the cursor: the next pass asks again from the same time', async () => {
    const w = world(3);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    w.change(1, '2026-01-01T09:30:00.000');
    w.refusal.refuse = true;
    await w.poller.pollOnce();
    assert.equal(w.asked.length, 1, 'the first refusal ends the reading');
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T09:00:00.000');
    assert.deepEqual(w.evaluated, []);
    w.refusal.refuse = false;
    w.clock.now = '2026-01-01T10:05:00.000';
    await w.poller.pollOnce();
    assert.equal(w.asked.at(-1)?.updatedAfter, '2026-01-01T09:00:00.000');
    assert.deepEqual(w.evaluated, [`${uidOf(1)}@2026-01-01T09:30:00.000`]);
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000', 'the same reading, begun at 10:00');
  });

  it('a first reading asks from DHIS2’s time less the overlap; no known uid asks DHIS2 nothing', async () => {
    const w = world(1, { overlapSeconds: 60 });
    await w.poller.pollOnce();
    assert.equal(w.asked[0]?.updatedAfter, '2026-01-01T09:59:00.000');
    const none = world(0);
    await none.poller.pollOnce();
    assert.equal(none.asked.length, 0);
    assert.equal(none.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000');
  });

  it('a reading longer than a pass asks goes on in the next pass from the same time; a change made meanwhile is found by it or the next', async () => {
    const perPass = 2 * MAX_CONTEXT_BATCHES;
    const w = world(perPass + 3);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    await w.poller.pollOnce();
    assert.equal(w.asked.length, MAX_CONTEXT_BATCHES, 'bounded per pass');
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T09:00:00.000', 'incomplete: not moved');
    // Changed after the reading passed her (uid 0) and before it read the rest (the last uid).
    w.change(0, '2026-01-01T10:01:00.000');
    w.change(perPass + 2, '2026-01-01T10:01:00.000');
    w.clock.now = '2026-01-01T10:02:00.000';
    await w.poller.pollOnce();
    assert.ok(w.asked.slice(MAX_CONTEXT_BATCHES).every((a) => a.updatedAfter === '2026-01-01T09:00:00.000'));
    assert.ok(
      w.asked.slice(MAX_CONTEXT_BATCHES).every((a) => !a.uids.includes(uidOf(0))),
      'goes on, not over',
    );
    assert.deepEqual(w.evaluated, [`${uidOf(perPass + 2)}@2026-01-01T10:01:00.000`]);
    // Complete: the cursor is DHIS2's time when the reading began, not when it ended.
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000');
    // The next reading finds the change to the mother it had passed.
    w.clock.now = '2026-01-01T10:03:00.000';
    await w.poller.pollOnce();
    assert.deepEqual(w.evaluated.slice(1), [`${uidOf(0)}@2026-01-01T10:01:00.000`]);
  });

  it('a reading whose results could not be recorded moves no cursor, and the next asks from the same time again', async () => {
    const w = world(1);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    w.change(0, '2026-01-01T09:30:00.000');
    w.behaviour.settles = false;
    await w.poller.pollOnce();
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T09:00:00.000');
    w.behaviour.settles = true;
    w.clock.now = '2026-01-01T10:05:00.000';
    await w.poller.pollOnce();
    assert.equal(w.asked.at(-1)?.updatedAfter, '2026-01-01T09:00:00.000');
    assert.equal(w.evaluated.length, 2, 'mapped again: the first was not remembered');
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:05:00.000');
  });

  it('a cursor ahead of DHIS2’s time (its clock put back) asks from DHIS2’s time', async () => {
    const w = world(1);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-02T00:00:00.000');
    w.change(0, '2026-01-01T09:59:50.000');
    await w.poller.pollOnce();
    assert.equal(w.asked[0]?.updatedAfter, '2026-01-01T10:00:00.000');
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000', 'moved back');
  });
  it('a first reading refused asks again from the same time: a change made meanwhile is found; warned once a reading', async () => {
    const w = world(1);
    w.refusal.refuse = true;
    await w.poller.pollOnce(); // the first reading, from DHIS2's time now (10:00)
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000', 'stored at once');
    w.clock.now = '2026-01-01T10:01:00.000';
    await w.poller.pollOnce();
    assert.equal(w.warnings.filter((m) => m.includes('could not be listed')).length, 1, 'not every pass');
    w.refusal.refuse = false;
    w.change(0, '2026-01-01T10:02:00.000'); // after the first reading began
    w.clock.now = '2026-01-01T10:05:00.000';
    await w.poller.pollOnce();
    assert.ok(w.asked.every((a) => a.updatedAfter === '2026-01-01T10:00:00.000'));
    assert.deepEqual(w.evaluated, [`${uidOf(0)}@2026-01-01T10:02:00.000`]);
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000', "the reading's start");
    assert.equal(w.cursors.get(DHIS2_CONTEXT_READING), '', 'complete: none in progress');
  });

  it('a first reading held asks again from the same time', async () => {
    const w = world(1);
    w.change(0, '2026-01-01T10:00:00.000');
    w.behaviour.settles = false;
    await w.poller.pollOnce();
    w.behaviour.settles = true;
    w.clock.now = '2026-01-01T10:05:00.000';
    await w.poller.pollOnce();
    assert.equal(w.asked.at(-1)?.updatedAfter, '2026-01-01T10:00:00.000');
    assert.equal(w.evaluated.length, 2, 'mapped again: the first was not recorded');
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:05:00.000');
  });

  it('a first pass without DHIS2’s time asks from the programme’s start (a time before any row read her), and so does the next', async () => {
    const w = world(1);
    w.refusal.time = false;
    await w.poller.pollOnce();
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), EARLY, 'no later than any row recorded so far');
    w.refusal.time = true;
    w.change(0, '2026-01-01T10:01:00.000');
    w.clock.now = '2026-01-01T10:05:00.000';
    await w.poller.pollOnce();
    assert.equal(w.asked.at(-1)?.updatedAfter, EARLY);
    assert.equal(w.evaluated.at(-1), `${uidOf(0)}@2026-01-01T10:01:00.000`);
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:05:00.000');
  });

  it('`sync --once` runs (a new process each) go on with the reading, to its end, past what one pass asks', async () => {
    const perPass = 2 * MAX_CONTEXT_BATCHES;
    const w = world(perPass + 3);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    w.change(perPass + 2, '2026-01-01T09:30:00.000');
    await w.newProcess().pollOnce();
    assert.equal(w.asked.length, MAX_CONTEXT_BATCHES);
    w.clock.now = '2026-01-01T11:00:00.000';
    await w.newProcess().pollOnce();
    assert.deepEqual(w.asked[MAX_CONTEXT_BATCHES]?.uids, [uidOf(perPass), uidOf(perPass + 1)], 'goes on, not over');
    assert.ok(w.asked.every((a) => a.updatedAfter === '2026-01-01T09:00:00.000'));
    assert.deepEqual(w.evaluated, [`${uidOf(perPass + 2)}@2026-01-01T09:30:00.000`]);
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000', 'DHIS2’s time when it began');
    w.clock.now = '2026-01-01T12:00:00.000';
    await w.newProcess().pollOnce();
    assert.equal(w.asked.at(-1)?.updatedAfter, '2026-01-01T10:00:00.000', 'the next reading');
  });

  it('a reading refused while her row passes its year still asks for her: her change made within it is mapped', async () => {
    const w = world(1, { overlapSeconds: 60 });
    const day0 = w.bridge.now; // her row last updated
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-12-26T09:00:00.000');
    w.clock.now = '2026-12-26T10:00:00.000';
    w.bridge.now = day0 + 359 * DAY_MS;
    w.refusal.refuse = true;
    await w.poller.pollOnce(); // the reading begins on day 359; DHIS2 refuses it
    assert.deepEqual(w.asked.at(-1)?.uids, [uidOf(0)]);
    w.change(0, '2026-12-27T10:00:00.000'); // day 360: within her row's year
    w.clock.now = '2027-01-02T10:00:00.000';
    w.bridge.now = day0 + 366 * DAY_MS; // past her row's year, the listing still refused
    await w.newProcess().pollOnce();
    w.refusal.refuse = false;
    w.clock.now = '2027-01-06T10:00:00.000';
    w.bridge.now = day0 + 370 * DAY_MS;
    await w.newProcess().pollOnce();
    assert.deepEqual(w.asked.at(-1), { uids: [uidOf(0)], updatedAfter: '2026-12-26T08:59:00.000', program: undefined });
    assert.deepEqual(w.evaluated, [`${uidOf(0)}@2026-12-27T10:00:00.000`]);
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-12-26T10:00:00.000', "the reading's start");
    // The next reading asks from day 359's DHIS2 time, so for the rows within the year before day 359: her too.
    w.clock.now = '2027-01-06T10:05:00.000';
    await w.poller.pollOnce();
    assert.deepEqual(w.asked.at(-1)?.uids, [uidOf(0)]);
    // The one after it, asking from day 370, leaves her out: her row is untouched for more than a year.
    w.asked.length = 0;
    w.clock.now = '2027-01-06T10:10:00.000';
    await w.poller.pollOnce();
    assert.deepEqual(w.asked, []);
  });

  it('a reading that passed her before her change, then refused across her row’s year, is followed by one that still asks for her', async () => {
    const w = world(2, { pageSize: 1, overlapSeconds: 60 });
    const day0 = w.bridge.now; // her row (uid 0) last updated
    w.rowUpdated.set(uidOf(1), day0 + 300 * DAY_MS); // another mother's row, well within its year throughout
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-12-26T09:00:00.000');
    w.clock.now = '2026-12-26T10:00:00.000';
    w.bridge.now = day0 + 359 * DAY_MS;
    w.refusal.refuse = true;
    w.refusal.uid = uidOf(1);
    await w.newProcess().pollOnce(); // day 359: her batch answered (unchanged), the next refused
    assert.deepEqual(
      w.asked.map((a) => a.uids),
      [[uidOf(0)], [uidOf(1)]],
    );
    w.change(0, '2026-12-27T10:00:00.000'); // day 360, after the reading passed her: within her row's year
    w.clock.now = '2027-01-02T10:00:00.000';
    w.bridge.now = day0 + 366 * DAY_MS; // past her row's year, the listing still refused
    await w.newProcess().pollOnce();
    w.refusal.refuse = false;
    w.clock.now = '2027-01-06T10:00:00.000';
    w.bridge.now = day0 + 370 * DAY_MS;
    await w.newProcess().pollOnce(); // the reading completes: the cursor is its DHIS2 start, day 359
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-12-26T10:00:00.000');
    assert.deepEqual(w.evaluated, [], 'her change came after the reading had read her');
    w.clock.now = '2027-01-06T10:05:00.000';
    await w.newProcess().pollOnce();
    assert.deepEqual(w.asked.at(-1), { uids: [uidOf(1)], updatedAfter: '2026-12-26T09:59:00.000', program: undefined });
    assert.deepEqual(w.evaluated, [`${uidOf(0)}@2026-12-27T10:00:00.000`], 'her change, made within her row’s year');
  });

  it('a stored reading without the time it began is taken as begun now', async () => {
    const w = world(1);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    w.cursors.set(
      DHIS2_CONTEXT_READING,
      JSON.stringify({ updatedAfter: '2026-01-01T09:00:00.000', after: '', held: false }),
    );
    w.bridge.now += 365 * DAY_MS;
    await w.poller.pollOnce();
    assert.deepEqual(w.asked.at(-1)?.uids, [uidOf(0)], 'her row within the year before now');
    w.asked.length = 0;
    w.cursors.set(
      DHIS2_CONTEXT_READING,
      JSON.stringify({ updatedAfter: '2026-01-01T09:00:00.000', after: '', held: false }),
    );
    w.bridge.now += DAY_MS;
    await w.poller.pollOnce();
    assert.equal(w.asked.length, 0, 'her row past it');
    // Refused, it keeps the time it was first given: the next pass does not take it as begun later.
    w.refusal.refuse = true;
    w.bridge.now -= 2 * DAY_MS;
    w.cursors.set(
      DHIS2_CONTEXT_READING,
      JSON.stringify({ updatedAfter: '2026-01-01T09:00:00.000', after: '', held: false }),
    );
    await w.poller.pollOnce();
    const begunAt = w.bridge.now;
    w.bridge.now += 2 * DAY_MS;
    await w.poller.pollOnce();
    assert.equal(JSON.parse(w.cursors.get(DHIS2_CONTEXT_READING) ?? '').begunAt, begunAt);
    assert.deepEqual(
      w.asked.map((a) => a.uids),
      [[uidOf(0)], [uidOf(0)]],
      'asked for her still, within the year before it began',
    );
  });

  it('measures from now when the time stored with the cursor is missing or unreadable, and stores its own when complete', async () => {
    const w = world(1);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    w.bridge.now += 400 * DAY_MS; // her row untouched for more than a year
    for (const stamp of ['', '-1', 'soon', '1e3']) {
      w.cursors.set(DHIS2_CONTEXT_BEGUN, stamp);
      w.cursors.set(DHIS2_CONTEXT_READING, '');
      await w.newProcess().pollOnce();
      assert.deepEqual(w.asked, [], `not from the epoch (${JSON.stringify(stamp)})`);
      assert.equal(w.cursors.get(DHIS2_CONTEXT_BEGUN), String(w.bridge.now), 'its own start, with the cursor');
    }
  });

  it('a stored reading this code cannot read is begun again', async () => {
    const w = world(1);
    w.cursors.set(DHIS2_CONTEXT_CURSOR, '2026-01-01T09:00:00.000');
    w.cursors.set(DHIS2_CONTEXT_READING, '{"after":1}');
    await w.poller.pollOnce();
    assert.deepEqual(
      w.asked.map((a) => [a.uids, a.updatedAfter]),
      [[[uidOf(0)], '2026-01-01T09:00:00.000']],
    );
    assert.equal(w.cursors.get(DHIS2_CONTEXT_CURSOR), '2026-01-01T10:00:00.000');
  });
});
