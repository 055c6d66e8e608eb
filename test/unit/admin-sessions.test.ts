// AdminSessions on a clock the test moves: a session lasts its lifetime, ends with the token that opened
// it, ends on logout, and the store is bounded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdminSessions, SESSION_LIMITS } from '../../src/http/admin/sessions.js';

describe('AdminSessions', () => {
  it('lets a session in for its lifetime, while the token that opened it is accepted', () => {
    const clock = { now: 1_000_000 };
    const sessions = new AdminSessions(SESSION_LIMITS, () => clock.now);
    const id = sessions.start('token-one');
    assert.match(id, /^[\w-]{43}$/);
    assert.equal(sessions.valid(id, ['token-one']), true);
    assert.equal(sessions.valid(`${id}x`, ['token-one']), false, 'another id');
    assert.equal(sessions.valid(undefined, ['token-one']), false);
    // Rotated: while the old token is still accepted the session goes on, then it ends.
    assert.equal(sessions.valid(id, ['token-two', 'token-one']), true);
    assert.equal(sessions.valid(id, ['token-two']), false);
    clock.now += SESSION_LIMITS.lifetimeMs - 1;
    assert.equal(sessions.valid(id, ['token-one']), true);
    clock.now += 1;
    assert.equal(sessions.valid(id, ['token-one']), false, 'expired');
    assert.equal(sessions.size, 0, 'and forgotten');
  });

  it('ends a session on logout, and holds at most `max`, ending the oldest first', () => {
    const sessions = new AdminSessions({ lifetimeMs: 60_000, max: 3 });
    const ids = ['a', 'b', 'c', 'd'].map(() => sessions.start('t'));
    assert.equal(sessions.size, 3);
    assert.deepEqual(
      ids.map((id) => sessions.valid(id, ['t'])),
      [false, true, true, true],
    );
    sessions.end(ids[2]);
    assert.equal(sessions.valid(ids[2], ['t']), false);
    assert.equal(sessions.valid(ids[3], ['t']), true);
  });
});
