// The DHIS2 poller over a run of records sharing one updatedAt, against an in-memory stand-in for DHIS2's
// paging (updatedAfter inclusive, order updatedAt then uid, page numbers, pages of at most 2 so that the
// larger page the poller first asks for cannot hold a run). Records of the run are edited while it is read,
// shifting later pages, which no fixed server can be made to do at a chosen moment. The same case against
// the DHIS2 simulator over HTTP is in test/integration/dhis2-bridge.test.ts. The stand-in can also order ties
// by the page asked, as PostgreSQL may, for runs only DHIS2's count completes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DestinationStream } from 'pino';
import { createLogger, type Logger, silentLogger } from '../../src/observability/logger.js';
import type { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { Dhis2Poller } from '../../src/sources/dhis2/poller.js';
import { naiveMillis } from '../../src/sources/dhis2/time.js';
import type { SourcePipeline } from '../../src/sources/pipeline.js';
import type { CarriedRuns } from '../../src/sources/shared/run-readings.js';

const T = '2026-01-01T10:00:00.000';

/** A 32-bit FNV-1a hash, as the DHIS2 simulator's `offset` tie order uses. */
function fnv1a(text: string): number {
  let h = 2166136261;
  for (const c of text) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

/** A record's name here (`r00`, `later1`) as the DHIS2 uid it is served under (the poller takes no other). */
const asUid = (name: string) => name.padEnd(11, 'Q');
const nameOf = (uid: string) => uid.replace(/Q+$/, '');

/**
 * `ties: 'offset'` orders records of one updatedAt by a key of the page and page size asked, as PostgreSQL may
 * (see the DHIS2 simulator's `tieOrder`); `cap` is the largest page served.
 */
function world(
  runLength: number,
  editsAt: Record<number, string[]>,
  serverDate = '2026-01-02T00:00:00.000',
  later = 3,
  {
    ties = 'uid',
    cap = 2,
    logger = silentLogger,
    maxSeen,
  }: { ties?: 'uid' | 'offset'; cap?: number; logger?: Logger; maxSeen?: number } = {},
) {
  const updatedAt = new Map<string, string>();
  for (let i = 0; i < runLength; i++) updatedAt.set(`r${String(i).padStart(2, '0')}`, T);
  for (let i = 1; i <= later; i++) updatedAt.set(`later${i}`, `2026-01-01T10:0${i}:00.000`);
  let calls = 0;
  let edits = 0;
  // Counts asked for (totalPages=true): not pages, so not among `calls`; answered only when `totals` is set.
  const counts: string[] = [];
  // Pages asked (not counts): updatedAfter, page and the page size served.
  const asked: Array<{ after: string; page: number; size: number }> = [];
  // `ignoresPage`: every page number is answered with the first page (paging that never ends).
  const server = { totals: false, ignoresPage: false };
  const client = {
    async serverTime() {
      return serverDate;
    },
    async trackedEntityPage(params: Record<string, string>) {
      const after = params.updatedAfter ?? '';
      const size = Math.min(Number(params.pageSize), cap);
      const page = server.ignoresPage ? 1 : Number(params.page);
      const tie = (uid: string) => (ties === 'offset' ? fnv1a(`${size}:${page}:${uid}`) : 0);
      const ordered = [...updatedAt]
        .filter(([, at]) => at >= after)
        .sort(([a, x], [b, y]) => (x === y ? tie(a) - tie(b) || a.localeCompare(b) : x.localeCompare(y)));
      if (params.totalPages === 'true') {
        counts.push(after);
        return { entities: [], pageSize: 1, total: server.totals ? ordered.length : undefined };
      }
      calls++;
      asked.push({ after, page, size });
      const out = ordered
        .slice((page - 1) * size, page * size)
        .map(([name, at]) => ({ trackedEntity: asUid(name), updatedAt: at }));
      // Edited in DHIS2 right after this call: the record leaves the run for a newer timestamp.
      for (const uid of editsAt[calls] ?? [])
        updatedAt.set(uid, `2026-01-01T11:00:${String(edits++).padStart(2, '0')}.000`);
      return { entities: out, pageSize: size, total: undefined };
    },
  } as unknown as Dhis2Client;
  const evaluated = new Set<string>();
  const evaluations: string[] = [];
  const cursors = new Map<string, string>();
  const pipeline = {
    reading: <F>(fetcher: F) => fetcher,
    async finished() {},
    overtakes: () => false,
    settled: async () => true,
    async evaluate(resources: Array<{ id?: string; meta?: { versionId?: string } }>) {
      for (const r of resources) if (r.id) evaluated.add(nameOf(r.id));
      for (const r of resources) evaluations.push(`${nameOf(r.id ?? '')}@${r.meta?.versionId}`);
      return { results: [] };
    },
    commit(_results: unknown, cursor?: { name: string; value: string }) {
      if (cursor) cursors.set(cursor.name, cursor.value);
      return { resources: 0, mapped: {}, skipped: 0, invalid: 0, ledgerIds: [] };
    },
  } as unknown as SourcePipeline;
  const poller = new Dhis2Poller({
    sourceId: 'hmis',
    client,
    pipeline,
    cursors: {
      getCursor: (_s: string, name: string) => cursors.get(name),
      setCursor: (_s: string, name: string, value: string) => void cursors.set(name, value),
    } as never,
    dhis2: { program: 'IpHINAT79UW', fields: '*' },
    poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 0, pageSize: 2, since: T } as never,
    logger,
    maxPages: 4,
    maxSeen,
  });
  const missed = () => [...updatedAt.keys()].filter((uid) => !evaluated.has(uid));
  // Versions (uid@updatedAt) evaluated more than once.
  const twice = () => evaluations.filter((version, i) => evaluations.indexOf(version) !== i);
  return {
    poller,
    pipeline,
    missed,
    twice,
    calls: () => calls,
    updatedAt,
    cursors,
    counts,
    asked,
    server,
    evaluations,
  };
}

describe('DHIS2 poller: a run of equal updatedAt read by page numbers', () => {
  it('misses nothing when records leave the run during two readings in a row', async () => {
    // The first page is asked twice (the second time for a larger page, served at 2). r00 leaves after the
    // run's second page (call 3), r01 and r02 after the second reading's first page (call 7): each time a later
    // record slips back onto a page already read, the same one twice. Finding nothing new in the second
    // reading is not enough.
    const w = world(10, { 3: ['r00'], 7: ['r01', 'r02'] });
    await w.poller.pollOnce();
    assert.deepEqual(w.missed(), []);
  });

  it('does not forget members of the run being read for the records after it on its last page', async () => {
    // Pages of 4 (a run of 5 and 3 after it): the run's last page holds the records after it. Remembering
    // them pushed out the members read before (3 versions remembered), each reading found those new, and
    // the run was given up, every pass, the watermark held at it for good.
    const passes = async (maxSeen: number | undefined) => {
      const w = world(5, {}, undefined, 3, { cap: 4, maxSeen });
      for (let pass = 0; pass < 20; pass++) await w.poller.pollOnce().catch(() => undefined);
      return { watermark: w.cursors.get('updatedAt:trackedEntities'), mapped: w.evaluations, twice: w.twice() };
    };
    const uncapped = await passes(undefined);
    const capped = await passes(3);
    assert.equal(capped.watermark, '2026-01-01T10:03:00.000', 'past the run');
    assert.deepEqual(capped.twice, [], 'no version mapped twice');
    assert.equal(capped.mapped.length, uncapped.mapped.length, 'no more mapped than with nothing forgotten');
  });

  it('reads a run longer than maxPages pages to its end instead of stopping inside it every pass', async () => {
    const w = world(20, {}); // 10 pages of run, maxPages 4
    await w.poller.pollOnce();
    assert.deepEqual(w.missed(), [], 'the run and the records after it');
  });

  it('keeps the watermark at a run whose readings never agree, reads on past it, and the next pass reads it again', async () => {
    // One record of the run is edited after every call: each reading differs from the one before, so the
    // poller gives up on the run for this pass. The records after it must not wait for the run to settle.
    const edits: Record<number, string[]> = {};
    for (let call = 1; call <= 40; call++) edits[call] = [`r${String(call - 1).padStart(2, '0')}`];
    const w = world(40, edits, undefined, 8); // later1…8: pages of records after the run
    await w.poller.pollOnce();
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), T, 'the watermark stays at the run');
    const unread = w.missed();
    for (const uid of ['later3', 'later4', 'later5'])
      assert.ok(!unread.includes(uid), `${uid}, after the run, is read`);
    assert.ok(
      unread.some((uid) => uid.startsWith('r')),
      'the case is real: this pass could not read the whole run',
    );
    // Once the run holds still, later passes read it (twice alike) and move past it; each reads at most
    // maxPages plain pages (4 here), so the 40 records edited out of the run take a few passes.
    for (const call of Object.keys(edits)) delete edits[Number(call)];
    const newest = [...w.updatedAt.values()].sort().at(-1);
    for (let pass = 0; pass < 30 && w.cursors.get('updatedAt:trackedEntities') !== newest; pass++)
      await w.poller.pollOnce();
    assert.deepEqual(w.missed(), []);
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), newest);
  });

  it('stops paging that never ends inside a run well before the page bound, warns, fails the pass and reads on past it', async () => {
    // A DHIS2 (or a proxy before it) that ignores `page` answers every page number with the first page's
    // records, always a full page: read until MAX_RUN_PAGES (100,000) every pass, with no word.
    const lines: string[] = [];
    const destination: DestinationStream = { write: (chunk: string) => void lines.push(chunk) };
    const w = world(10, {}, undefined, 3, { logger: createLogger({ level: 'warn', destination }) });
    w.server.totals = true;
    w.server.ignoresPage = true;
    await assert.rejects(w.poller.pollOnce(), /paging of tracked entities did not end/);
    assert.ok(w.calls() <= 40, `${w.calls()} pages asked`);
    assert.equal(w.poller.status.consecutiveFailures, 1);
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), T, 'the watermark stays at the run');
    assert.deepEqual(
      w.missed().filter((uid) => uid.startsWith('later')),
      [],
      'the records after the run are read',
    );
    const warned = lines.map((l) => JSON.parse(l)).find((l) => /does not end/.test(l.msg));
    assert.ok(warned, 'a warning says so');
    assert.equal(warned.source, 'hmis');
    assert.equal(warned.counted, 10);
    assert.ok(!/"r\d\d"/.test(JSON.stringify(warned)), 'no record ids in the warning');

    // The next pass reads the run again; once DHIS2 pages honestly, it is read whole and passed.
    w.server.ignoresPage = false;
    await w.poller.pollOnce();
    assert.equal(w.poller.status.consecutiveFailures, 0);
    assert.deepEqual(w.missed(), []);
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), '2026-01-01T10:03:00.000');
  });

  it('counts the run once a pass, from 1 ms after its updatedAt first', async () => {
    const w = world(10, {});
    w.server.totals = true;
    await w.poller.pollOnce();
    // Asked the other way round, a record edited between the two calls would make the count too small.
    assert.deepEqual(w.counts, ['2026-01-01T10:00:00.001', T]);
    assert.deepEqual(w.missed(), []);
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), '2026-01-01T10:03:00.000', 'past the run');
  });

  it('asks no second count when DHIS2 gives no total for the first', async () => {
    const w = world(10, {});
    await w.poller.pollOnce();
    assert.deepEqual(w.counts, ['2026-01-01T10:00:00.001']);
    assert.deepEqual(w.missed(), []);
  });

  it('moves the watermark on past a page with an overtaken result once its reread recorded it; holds it if that failed', async () => {
    for (const rereadOk of [true, false]) {
      const w = world(0, {});
      w.pipeline.overtakes = () => true;
      w.pipeline.settled = async () => rereadOk;
      await w.poller.pollOnce();
      assert.equal(
        w.cursors.get('updatedAt:trackedEntities'),
        rereadOk ? '2026-01-01T10:03:00.000' : '2026-01-01T10:01:00.000',
        rereadOk ? 'read: past every page' : "held at the first page's oldest record",
      );
    }
  });

  it("never moves the watermark past DHIS2's own time: a record stamped in the future hides no later birth", async () => {
    const w = world(0, {}, '2026-01-01T10:05:00.000'); // DHIS2 says it is 10:05
    w.updatedAt.set('stray', '2026-01-09T00:00:00.000'); // stamped days ahead by a clock that ran fast
    await w.poller.pollOnce();
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), '2026-01-01T10:05:00.000');
    w.updatedAt.set('born', '2026-01-01T10:06:00.000'); // recorded after the clock was put right
    await w.poller.pollOnce();
    assert.deepEqual(w.missed(), []);
  });

  it('reads again from an earlier date when asked (sync --since), never before the go-live, and never starts later than it would', async () => {
    const w = world(0, {});
    await w.poller.pollOnce();
    assert.equal(w.cursors.get('updatedAt:trackedEntities'), '2026-01-01T10:03:00.000');
    // Now in scope, stamped before the watermark: an org unit added to the source's filter, say. One of
    // them before the go-live (poll.since, 10:00 here), registered otherwise: never read.
    w.updatedAt.set('widened', '2026-01-01T10:00:30.000');
    w.updatedAt.set('before-go-live', '2026-01-01T09:00:00.000');
    await w.poller.pollOnce();
    assert.deepEqual(w.missed(), ['widened', 'before-go-live'], 'a plain pass starts at the watermark');
    await w.poller.pollOnce({ from: '2026-01-01' });
    assert.deepEqual(w.missed(), ['before-go-live'], 'read again from the go-live, not before');
    assert.equal(
      w.cursors.get('updatedAt:trackedEntities'),
      '2026-01-01T10:03:00.000',
      'the watermark never moves back',
    );
    // A date after the watermark skips nothing the pass would read.
    w.updatedAt.set('fresh', '2026-01-01T10:04:00.000');
    await w.poller.pollOnce({ from: '2026-03-01' });
    assert.deepEqual(w.missed(), ['before-go-live']);
  });
});

describe('DHIS2 poller: a run whose tie order depends on the page asked, counted by DHIS2', () => {
  // Pages of the run are served at 10 at most, each page and page size in its own order: a reading gives about
  // two thirds of the run, some members twice, and only DHIS2's count can complete the run.
  const CURSOR = 'updatedAt:trackedEntities';
  const PAST = '2026-01-01T10:03:00.000';
  const offsetTies = { ties: 'offset', cap: 10 } as const;

  it('completes a run no single pass reads whole, from the members read over the passes', async () => {
    // 150 members: no pass's readings hold them all (without what earlier passes read, every pass holds the
    // watermark at the run for good); two passes' readings, eight page sizes, do.
    const w = world(150, {}, undefined, 3, offsetTies);
    w.server.totals = true;
    let passes = 0;
    while (passes < 10 && w.cursors.get(CURSOR) !== PAST) {
      passes++;
      await w.poller.pollOnce();
    }
    assert.equal(w.cursors.get(CURSOR), PAST, 'the watermark passed the run');
    assert.ok(passes <= 3, `within three passes (${passes})`);
    assert.deepEqual(w.missed(), []);
    assert.deepEqual(w.twice(), [], 'each version evaluated once');
  });

  it('reads the run afresh when members read leave it between passes (DHIS2 counts fewer), and misses nothing', async () => {
    const w = world(130, {}, undefined, 3, offsetTies);
    w.server.totals = true;
    const carried = (w.poller as unknown as { carriedRuns: CarriedRuns }).carriedRuns;
    await w.poller.pollOnce();
    assert.equal(w.cursors.get(CURSOR), T, 'the first pass gives up on the run');
    const read = carried.resume(naiveMillis(T) ?? 0, 130); // the members read after the count, carried
    assert.ok(
      w.missed().some((uid) => uid.startsWith('r')),
      'the case is real: members of the run never read',
    );
    // As many members read leave the run as the union lacks: with what was carried, the union would make up
    // DHIS2's new count at once while members never read are still unread.
    const leaving = [...read].slice(0, 130 - read.size);
    for (const [i, uid] of leaving.entries())
      w.updatedAt.set(nameOf(uid), `2026-01-01T10:02:${String(10 + i).padStart(2, '0')}.000`);
    let passes = 1;
    while (passes < 10 && w.cursors.get(CURSOR) !== PAST) {
      passes++;
      await w.poller.pollOnce();
    }
    assert.deepEqual(w.missed(), []);
    assert.equal(w.cursors.get(CURSOR), PAST);
    assert.deepEqual(w.twice(), []);
  });

  it('reads the run with every page size from the one served down to 1, pass after pass', async () => {
    // No total from DHIS2: the run is never complete, so each pass gives it up after five readings.
    const w = world(150, {}, undefined, 3, offsetTies);
    for (let pass = 0; pass < 3; pass++) await w.poller.pollOnce();
    assert.equal(w.cursors.get(CURSOR), T, 'held at the run');
    const sizes = new Set(w.asked.filter((a) => a.after === T && a.page === 1).map((a) => a.size));
    // Each size orders the run its own way: one never asked would leave the members only it shows unread.
    assert.deepEqual(
      [...sizes].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });
});
