import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MinuteTally } from '../../src/observability/minute-tally.js';

describe('MinuteTally', () => {
  it('gives the first count at once, then the count since the last line once a minute has passed', () => {
    const tally = new MinuteTally();
    assert.equal(tally.add(0), 1);
    assert.equal(tally.add(1_000), undefined);
    assert.equal(tally.add(59_999, 3), undefined);
    assert.equal(tally.add(60_000), 5, 'the three calls since the last line, one of them counting 3');
    assert.equal(tally.add(60_001), undefined);
    assert.equal(tally.add(200_000, 2), 3);
  });
});
