// AuthThrottle on a clock the test moves: wrong admin tokens counted per address (an IPv6 /64 as one),
// a block with its Retry-After, what time forgets, and the bound on addresses remembered.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUTH_THROTTLE, AuthThrottle } from '../../src/http/admin/auth-throttle.js';

function throttle(limits: Partial<typeof AUTH_THROTTLE> = {}) {
  const clock = { now: 1_000_000 };
  return { clock, throttle: new AuthThrottle({ ...AUTH_THROTTLE, ...limits }, () => clock.now) };
}

describe('AuthThrottle', () => {
  it('blocks an address at its 10th wrong token within a minute, for 5 minutes, saying so once', () => {
    const { clock, throttle: t } = throttle();
    const blocked: boolean[] = [];
    for (let i = 0; i < 10; i++) {
      assert.equal(t.retryAfterSeconds('10.0.0.1'), 0, `attempt ${i + 1} may try`);
      blocked.push(t.failed('10.0.0.1'));
      clock.now += 1_000;
    }
    assert.deepEqual(blocked, [...Array(9).fill(false), true], 'the 10th failure blocks, and only it says so');
    assert.equal(t.retryAfterSeconds('10.0.0.1'), 299);
    assert.equal(t.failed('10.0.0.1'), false, 'a failure counted while blocked does not block (log) again');
    assert.equal(t.retryAfterSeconds('10.0.0.2'), 0, 'another address is not affected');
    clock.now += 299_000;
    assert.equal(t.retryAfterSeconds('10.0.0.1'), 0, 'the block is over');
    assert.equal(t.failed('10.0.0.1'), false, 'and its count starts again');
  });

  it('does not add up failures further apart than the window', () => {
    const { clock, throttle: t } = throttle();
    for (let i = 0; i < 30; i++) {
      assert.equal(t.failed('10.0.0.1'), false, `failure ${i + 1}`);
      clock.now += i % 9 === 8 ? 60_000 : 100;
    }
    assert.equal(t.retryAfterSeconds('10.0.0.1'), 0);
  });

  it('counts an IPv6 /64 as one address, and an IPv4-mapped address as the IPv4 one', () => {
    const { throttle: t } = throttle({ maxFailures: 3 });
    t.failed('2001:db8:1:2::a');
    t.failed('2001:db8:1:2:ffff::b');
    assert.equal(t.failed('2001:db8:1:2:1:2:3:4'), true);
    assert.ok(t.retryAfterSeconds('2001:db8:1:2::99') > 0);
    assert.equal(t.retryAfterSeconds('2001:db8:1:3::1'), 0, 'the next /64 is another host');
    t.failed('10.1.1.1');
    t.failed('::ffff:10.1.1.1');
    assert.equal(t.failed('10.1.1.1'), true);
  });

  it('remembers a bounded number of addresses; a flood of new ones does not push a block out', () => {
    const { throttle: t } = throttle({ maxFailures: 2, maxAddresses: 100 });
    t.failed('192.0.2.1');
    t.failed('192.0.2.1'); // blocked for 5 minutes
    for (let i = 0; i < 5_000; i++) t.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    assert.ok(t.size <= 200, `${t.size} addresses remembered`);
    assert.ok(t.retryAfterSeconds('192.0.2.1') > 0, 'the blocked address is still blocked');
  });
});
