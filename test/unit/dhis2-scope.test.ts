// Which org units a DHIS2 source's watermark has not covered, from the scope recorded and the configured
// one: only what can be told without the org unit tree (src/sources/dhis2/scope.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Dhis2OrgUnitMode } from '../../src/config/types.js';
import { configuredScope, parseScopeRecord, unreadScope } from '../../src/sources/dhis2/scope.js';

const scope = (orgUnitMode: Dhis2OrgUnitMode, ...orgUnits: string[]) => ({ orgUnits, orgUnitMode });

describe('unreadScope', () => {
  it('the same mode: the org units added, none when removed', () => {
    assert.deepEqual(unreadScope(scope('SELECTED', 'A'), scope('SELECTED', 'A', 'B')), scope('SELECTED', 'B'));
    assert.equal(unreadScope(scope('SELECTED', 'A', 'B'), scope('SELECTED', 'A')), undefined);
    assert.equal(unreadScope(scope('ACCESSIBLE'), scope('ACCESSIBLE')), undefined);
  });

  it('a mode reaching further reads the whole configured scope; a shallower one the org units added', () => {
    assert.deepEqual(unreadScope(scope('SELECTED', 'A'), scope('DESCENDANTS', 'A')), scope('DESCENDANTS', 'A'));
    assert.deepEqual(unreadScope(scope('SELECTED', 'A'), scope('CAPTURE')), scope('CAPTURE'));
    assert.deepEqual(unreadScope(scope('CAPTURE'), scope('SELECTED', 'A')), scope('SELECTED', 'A'));
    assert.equal(unreadScope(scope('DESCENDANTS', 'A'), scope('SELECTED', 'A')), undefined);
    assert.deepEqual(unreadScope(scope('DESCENDANTS', 'A'), scope('CHILDREN', 'A', 'B')), scope('CHILDREN', 'B'));
    assert.equal(unreadScope(scope('ALL'), scope('ACCESSIBLE')), undefined);
    assert.equal(unreadScope(scope('ACCESSIBLE'), scope('SELECTED', 'A')), undefined);
  });
});

describe('the scope record', () => {
  it("DHIS2's default mode is made explicit, the org units sorted once each", () => {
    assert.deepEqual(
      configuredScope({ program: 'p', fields: '*', orgUnits: ['B', 'A', 'B'] }),
      scope('SELECTED', 'A', 'B'),
    );
    assert.deepEqual(configuredScope({ program: 'p', fields: '*' }), scope('ACCESSIBLE'));
  });

  it('one this code cannot read is none; a catch-up it cannot read is dropped', () => {
    for (const value of [undefined, '', '{', 'null', '{"scope":{"orgUnits":"A","orgUnitMode":"SELECTED"}}'])
      assert.equal(parseScopeRecord(value), undefined, String(value));
    assert.deepEqual(
      parseScopeRecord(
        '{"scope":{"orgUnits":["A"],"orgUnitMode":"SELECTED"},"catchUp":{"scope":{"orgUnits":["B"],"orgUnitMode":"NONE"}}}',
      ),
      { scope: scope('SELECTED', 'A') },
    );
  });
});
