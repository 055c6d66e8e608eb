import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassCoverage } from '../../src/sources/coverage.js';
import { setBounded } from '../../src/util/bounded-map.js';

describe('setBounded', () => {
  it('keeps at most `max` entries, dropping the oldest; setting a key again makes it the newest', () => {
    const map = new Map<string, number>();
    for (const [key, value] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      setBounded(map, key, value, 3);
    setBounded(map, 'a', 10, 3); // a is now the newest
    setBounded(map, 'd', 4, 3); // b, the oldest, goes
    assert.deepEqual(
      [...map],
      [
        ['c', 3],
        ['a', 10],
        ['d', 4],
      ],
    );
  });

  it('returns the key it dropped, and nothing when it dropped none', () => {
    const map = new Map<string, number>([
      ['a', 1],
      ['b', 2],
    ]);
    assert.equal(setBounded(map, 'a', 10, 2), undefined, 'a key set again drops nothing');
    assert.equal(setBounded(map, 'c', 3, 2), 'b');
    assert.deepEqual([...map.keys()], ['a', 'c']);
  });

  it('bounds the subjects a pass remembers', async () => {
    const coverage = new PassCoverage(2);
    const fetcher = { read: async () => undefined, search: async () => [] };
    for (const subject of ['s1', 's2', 's3']) coverage.recording(subject, fetcher).done();
    assert.equal(coverage.size, 2);
  });
});
