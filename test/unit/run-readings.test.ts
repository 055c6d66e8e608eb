// RunReadings on its own: when a run of records sharing one timestamp may be taken as read whole.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CarriedRuns,
  giveUpReason,
  MAX_CARRIED_MEMBERS,
  MAX_RUN_COUNT,
  MAX_RUN_READINGS,
  ReadingPages,
  RunPageCaps,
  RunReadings,
} from '../../src/sources/shared/run-readings.js';

/** One reading: `fresh` new records, the members at the bound in the order the pages gave them. */
function read(run: RunReadings, fresh: number, members: string[]) {
  run.startReading();
  run.notePage(fresh, members);
  return run.endReading();
}

describe('RunReadings', () => {
  it('is complete at the second of two agreeing readings with nothing new', () => {
    const run = new RunReadings();
    assert.equal(read(run, 3, ['a', 'b', 'c']), 'again');
    assert.equal(read(run, 0, ['a', 'b', 'c']), 'complete');
  });

  it('never trusts agreeing readings once one met a member twice, and says why when it gives up', () => {
    const run = new RunReadings();
    const outcomes = Array.from({ length: MAX_RUN_READINGS }, (_, i) => read(run, i === 0 ? 3 : 0, ['a', 'b', 'a']));
    assert.deepEqual(outcomes.slice(0, -1), Array(MAX_RUN_READINGS - 1).fill('again'));
    assert.equal(outcomes.at(-1), 'give-up');
    assert.match(giveUpReason(run, 'a run'), /gave one record twice in a reading of a run/);
  });

  it('with a count: complete when the readings together hold that many, at a reading with nothing new', () => {
    const run = new RunReadings();
    run.expect(4);
    assert.equal(read(run, 2, ['a', 'b', 'a']), 'again');
    assert.equal(read(run, 2, ['c', 'd', 'c']), 'again', 'the union reached the count with new members');
    assert.equal(read(run, 0, ['a', 'c', 'a']), 'complete');
  });

  it('a count taken after members were read takes none of that reading: one may have left the run before it', () => {
    // Run a…e on a server whose ties depend on the offset. The first page gives a and b; a is edited out of the
    // run before the count, which says 4 (b…e). With a in the union, {a, b, c, d} would add up to 4 and a
    // reading with nothing new would complete the run, e never read.
    const run = new RunReadings();
    run.startReading();
    run.notePage(2, ['a', 'b']);
    run.expect(4);
    run.notePage(1, ['b', 'c']);
    assert.equal(run.endReading(), 'again');
    assert.equal(read(run, 1, ['d', 'b', 'd']), 'again');
    assert.equal(read(run, 0, ['b', 'c', 'b']), 'again', 'b, c and d are three: e is still to be read');
    assert.equal(read(run, 1, ['e', 'c', 'e']), 'again', 'the union reached the count with a new member');
    assert.equal(read(run, 0, ['d', 'b', 'd']), 'complete');
  });

  it('says a run that kept changing, not a repeated member, when that is why it gave up', () => {
    const run = new RunReadings();
    for (let i = 0; i < MAX_RUN_READINGS; i++) read(run, 1, [`m${i}`]);
    assert.match(giveUpReason(run, 'a run'), /^a run kept changing while it was read/);
  });
});

describe('RunReadings carried across passes (CarriedRuns)', () => {
  const T = Date.parse('2026-01-05T08:00:00.000Z');

  /**
   * One pass over a run of the server's `count` at `at`: its first reading is under way when the run is
   * counted (`first`, then the count), then one reading per entry of `later` (fresh, members).
   */
  function pass(carried: CarriedRuns, at: number, count: number, first: string[], later: [number, string[]][]) {
    const run = new RunReadings(carried);
    run.startReading();
    run.notePage(0, first);
    run.expect(count, at);
    const outcomes = [run.endReading()];
    for (const [fresh, members] of later) {
      run.startReading();
      run.notePage(fresh, members);
      outcomes.push(run.endReading());
      if (outcomes.at(-1) !== 'again') break;
    }
    return { run, outcomes };
  }

  // Run a…f on a server whose ties depend on the offset: every reading repeats a member and misses others.
  const firstPass = (carried: CarriedRuns) =>
    pass(
      carried,
      T,
      6,
      ['a', 'a'],
      [
        [4, ['a', 'b', 'a']],
        [2, ['c', 'd', 'c']],
        [0, ['a', 'c', 'a']],
        [0, ['b', 'd', 'b']],
      ],
    );

  it('a pass that gives up keeps the members read, and the next pass counting the run alike completes it', () => {
    const carried = new CarriedRuns();
    assert.equal(firstPass(carried).outcomes.at(-1), 'give-up');
    assert.equal(carried.members, 4, 'a, b, c and d, read after the count');
    const { outcomes } = pass(
      carried,
      T,
      6,
      ['b', 'b'],
      [
        [2, ['e', 'f', 'e']],
        [0, ['a', 'e', 'a']],
      ],
    );
    // e and f came new: the union reached the count with them, so one more reading with nothing new completes it.
    assert.deepEqual(outcomes, ['again', 'again', 'complete']);
    assert.equal(carried.members, 0, 'a run complete carries nothing');
  });

  it('resets what was carried when the count differs: a member left the run, or one joined it', () => {
    for (const count of [5, 7]) {
      const carried = new CarriedRuns();
      firstPass(carried);
      const { outcomes } = pass(
        carried,
        T,
        count,
        ['b', 'b'],
        [
          [2, ['e', 'f', 'e']],
          [0, ['a', 'e', 'a']],
          [0, ['f', 'e', 'f']],
          [0, ['a', 'f', 'a']],
        ],
      );
      // With a…d carried, {a…f} would reach 6; read afresh, this pass's readings hold a, e and f only.
      assert.equal(outcomes.at(-1), 'give-up', `counted ${count}: not complete from members carried at 6`);
      assert.equal(carried.members, 3, `counted ${count}: only this pass's members are carried`);
    }
  });

  it('does not resume a run at another timestamp from what was carried for this one', () => {
    const carried = new CarriedRuns();
    firstPass(carried);
    const { run, outcomes } = pass(
      carried,
      T + 1000,
      6,
      ['b', 'b'],
      [
        [2, ['e', 'f', 'e']],
        [0, ['a', 'e', 'a']],
      ],
    );
    assert.deepEqual(outcomes, ['again', 'again', 'again']);
    assert.equal(run.progress.read, 3, 'a, e and f: nothing carried from the run at T');
  });

  it('carries no member whose page was not recorded, and nothing once the count is exceeded', () => {
    const carried = new CarriedRuns();
    const run = new RunReadings(carried);
    run.startReading();
    run.notePage(0, ['a']);
    run.expect(3, T);
    run.endReading();
    run.startReading();
    run.notePage(2, ['a', 'b', 'a']);
    run.unrecorded(['b']); // the page's rows were not recorded: the pass holds the watermark for it
    run.endReading();
    for (let i = 2; i < MAX_RUN_READINGS; i++) read(run, 0, ['a', 'a']);
    assert.equal(carried.members, 1, 'a alone');
    // The next pass counts 3 again and reads more than 3 members: the count cannot be trusted, nothing carried.
    const next = pass(
      carried,
      T,
      3,
      ['a'],
      [
        [2, ['b', 'c', 'b']],
        [1, ['d', 'a', 'd']],
      ],
    );
    assert.equal(next.run.progress.counted, undefined);
    assert.equal(carried.members, 0);
  });

  it('bounds what it carries: a run above the cap is not carried, older runs make room for a newer one', () => {
    const carried = new CarriedRuns();
    const ids = (n: number, prefix: string) => new Set(Array.from({ length: n }, (_, i) => `${prefix}${i}`));
    carried.keep(T, MAX_CARRIED_MEMBERS + 10, ids(MAX_CARRIED_MEMBERS + 1, 'x'));
    assert.equal(carried.members, 0, 'a run longer than the cap is read afresh each pass');
    carried.keep(T, 1000, ids(600, 'a'));
    carried.keep(T + 1, 1000, ids(600, 'b'));
    carried.keep(T + 2, MAX_CARRIED_MEMBERS, ids(MAX_CARRIED_MEMBERS - 700, 'c'));
    assert.equal(carried.resume(T, 1000).size, 0, 'kept longest ago: dropped');
    assert.equal(carried.resume(T + 1, 1000).size, 600);
    assert.ok(carried.members <= MAX_CARRIED_MEMBERS);
    carried.forgetBefore(T + 2);
    assert.equal(carried.members, MAX_CARRIED_MEMBERS - 700, 'runs behind the watermark are forgotten');
  });
});

describe('ReadingPages: paging that does not end', () => {
  it('ends a reading whose pages bring nothing new, with or without a count', () => {
    for (const count of [undefined, 60]) {
      const paging = new ReadingPages();
      let pages = 0;
      const page = Array.from({ length: 50 }, (_, i) => `p${i}`);
      while (!paging.endless(count) && pages < 1_000) {
        paging.note(page);
        pages++;
      }
      assert.ok(pages <= 10, `${pages} pages with count ${count}`);
    }
  });

  it('lets a reading whose tie order depends on the offset repeat records while it brings new ones', () => {
    // 300 records served 5 a page; each page repeats two of the records before it (about a third).
    const paging = new ReadingPages();
    let next = 0;
    for (let page = 0; page < 100; page++) {
      const ids = [`r${next++}`, `r${next++}`, `r${next++}`];
      ids.push(`r${Math.max(0, next - 7)}`, `r${Math.max(0, next - 9)}`);
      paging.note(ids);
      assert.equal(paging.endless(), false, `page ${page + 1}`);
      assert.equal(paging.endless(300), false, `page ${page + 1}, counted`);
    }
    // Paged honestly, a counted run ends after about count / page size pages, whatever repeats.
    const counted = new ReadingPages();
    for (let page = 0; page < 12; page++) counted.note(['a', 'b', 'c', 'd', 'e']);
    assert.equal(counted.endless(60), false, 'a count of 60 in pages of 5 allows 12 pages and more');
  });

  it('lets honest short pages go on: a full page, then pages of 5 that are all new (voided records left out)', () => {
    const paging = new ReadingPages();
    let id = 0;
    const page = (n: number) => Array.from({ length: n }, () => `Encounter/${id++}`);
    paging.note(page(50));
    for (let p = 2; p <= 200; p++) {
      paging.note(page(5));
      assert.equal(paging.endless(), false, `page ${p}`);
    }
  });
});

describe('LargerRunPage: the larger page asked once for a run, both pollers', () => {
  it('asks a larger page once, not retried; answered, the next page is asked as usual', () => {
    const larger = new RunPageCaps().pass();
    assert.deepEqual(larger.callOptions, {});
    assert.equal(larger.enlarge(1_000, 50), 200);
    assert.deepEqual(larger.callOptions, { attempts: 1 }, 'an optimisation: one try');
    larger.answered();
    assert.deepEqual(larger.callOptions, {});
    assert.equal(larger.enlarge(1_000, 800), MAX_RUN_COUNT, 'never past the largest page asked for a run');
    larger.answered();
    assert.equal(larger.enlarge(1_000, MAX_RUN_COUNT), undefined);
  });

  it("not answered: the run is read at the size answered, in this pass and the next; other failures are the pass's", () => {
    const caps = new RunPageCaps();
    const pass = caps.pass();
    assert.equal(pass.refused(1_000), undefined, 'the usual page failing fails the pass');
    assert.equal(pass.enlarge(1_000, 50), 200);
    assert.equal(pass.refused(1_000), 50);
    assert.deepEqual(pass.callOptions, {});
    assert.equal(pass.enlarge(1_000, 50), undefined, 'not asked again for that run');
    assert.equal(pass.enlarge(2_000, 50), 200, 'another run is');
    pass.answered();

    const next = caps.pass();
    assert.equal(next.enlarge(1_000, 50), undefined, 'nor in the next pass');
    assert.equal(next.enlarge(1_000, 10), 40, 'a smaller usual page may still grow up to what was answered');
    next.answered();
    caps.forgetBefore(1_001);
    assert.equal(caps.pass().enlarge(1_000, 50), 200, 'a run behind the watermark is forgotten');
  });
});
