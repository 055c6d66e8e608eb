// RunReadings on its own: when a run of records sharing one timestamp may be taken as read whole.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { giveUpReason, MAX_RUN_READINGS, RunReadings } from '../../src/sources/shared/run-readings.js';

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
