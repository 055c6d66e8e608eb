// The ledger key of a listed tracked entity whose uid is no DHIS2 uid (src/sources/dhis2/poller.ts): a
// server or a proxy may send anything there, and no two such records may share a row.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { strayKey } from '../../src/sources/dhis2/poller.js';

describe('strayKey', () => {
  it('keeps lone surrogates apart, though each is written as U+FFFD', () => {
    const keys = ['ab\ud800cd', 'ab\udbffcd', 'ab\udc00cd', 'ab\ufffdcd'].map(strayKey);
    assert.equal(new Set(keys).size, keys.length, keys.join(' '));
    for (const key of keys.slice(0, 3)) assert.match(key, /^TrackedEntity\/ab%EF%BF%BDcd…[0-9a-f]{12}$/);
  });

  it('writes a short well-formed uid percent-encoded, and cuts a long one with a hash of the whole', () => {
    assert.equal(strayKey('..'), 'TrackedEntity/..');
    assert.equal(strayKey('a b'), 'TrackedEntity/a%20b');
    const long = strayKey(`\u001b[31m${'x'.repeat(300)}`);
    assert.ok(long.length < 80 && !long.includes('\u001b'), long);
    assert.notEqual(long, strayKey(`\u001b[31m${'x'.repeat(301)}`));
  });
});
