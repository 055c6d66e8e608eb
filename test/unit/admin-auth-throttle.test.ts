// AuthThrottle on a clock the test moves: wrong admin tokens counted per address (an IPv6 /64 as one)
// and over all addresses, a block with its Retry-After, what time forgets, and the bound on addresses
// remembered.
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
      blocked.push(t.failed('10.0.0.1').address);
      clock.now += 1_000;
    }
    assert.deepEqual(blocked, [...Array(9).fill(false), true], 'the 10th failure blocks, and only it says so');
    assert.equal(t.retryAfterSeconds('10.0.0.1'), 299);
    assert.equal(t.failed('10.0.0.1').address, false, 'a failure counted while blocked does not block (log) again');
    assert.equal(t.retryAfterSeconds('10.0.0.2'), 0, 'another address is not affected');
    clock.now += 299_000;
    assert.equal(t.retryAfterSeconds('10.0.0.1'), 0, 'the block is over');
    assert.equal(t.failed('10.0.0.1').address, false, 'and its count starts again');
  });

  it('does not add up failures further apart than the window', () => {
    const { clock, throttle: t } = throttle();
    for (let i = 0; i < 30; i++) {
      assert.equal(t.failed('10.0.0.1').address, false, `failure ${i + 1}`);
      clock.now += i % 9 === 8 ? 60_000 : 100;
    }
    assert.equal(t.retryAfterSeconds('10.0.0.1'), 0);
  });

  it('counts an IPv6 /64 as one address, and an IPv4-mapped address as the IPv4 one', () => {
    const { throttle: t } = throttle({ maxFailures: 3 });
    t.failed('2001:db8:1:2::a');
    t.failed('2001:db8:1:2:ffff::b');
    assert.equal(t.failed('2001:db8:1:2:1:2:3:4').address, true);
    assert.ok(t.retryAfterSeconds('2001:db8:1:2::99') > 0);
    assert.equal(t.retryAfterSeconds('2001:db8:1:3::1'), 0, 'the next /64 is another host');
    t.failed('10.1.1.1');
    t.failed('::ffff:10.1.1.1');
    assert.equal(t.failed('10.1.1.1').address, true);
  });

  it('blocks every address once all of them together sent 100 wrong tokens in a window, until it ends', () => {
    const { clock, throttle: t } = throttle();
    const blocksAll: boolean[] = [];
    // 25 addresses, 4 wrong tokens each: none of them near its own limit.
    for (let i = 0; i < 100; i++) {
      assert.equal(t.retryAfterSeconds(`10.0.1.${i % 25}`), 0, `failure ${i + 1} may be tried`);
      blocksAll.push(t.failed(`10.0.1.${i % 25}`).all);
      clock.now += 100;
    }
    assert.deepEqual(blocksAll, [...Array(99).fill(false), true], 'the 100th blocks all, and only it says so');
    // The window began at the first failure, 10 s ago: 50 s left, for an address never seen too.
    assert.equal(t.retryAfterSeconds('192.0.2.77'), 50);
    assert.equal(t.globalWait(), 50);
    clock.now += 50_000;
    assert.equal(t.retryAfterSeconds('192.0.2.77'), 0, 'a new window');
    assert.equal(t.failed('192.0.2.77').all, false);
  });

  it('spares an address that gave the right token the block of all, for 12 hours, but not its own block', () => {
    const { clock, throttle: t } = throttle();
    t.succeeded('192.0.2.10'); // the operator, this morning
    clock.now += 3_600_000;
    // Ten fresh /64s a minute, ten wrong tokens each, for an hour: the block of all never ends.
    for (let minute = 0; minute < 60; minute++) {
      for (let i = 0; i < 100; i++) {
        const address = `2001:db8:${minute}:${Math.floor(i / 10)}::1`;
        if (t.retryAfterSeconds(address) === 0) t.failed(address);
      }
      assert.ok(t.retryAfterSeconds('192.0.2.99') > 0, `minute ${minute}: all addresses are blocked`);
      assert.equal(t.retryAfterSeconds('192.0.2.10'), 0, `minute ${minute}: the operator's address is not`);
      clock.now += 60_000;
    }
    for (let i = 0; i < 10; i++) t.failed('192.0.2.10');
    assert.ok(t.retryAfterSeconds('192.0.2.10') > 0, 'its own wrong tokens still block it');
    clock.now += 12 * 3_600_000;
    for (let i = 0; i < 100; i++) t.failed(`2001:db8:ff:${i}::1`);
    assert.ok(t.retryAfterSeconds('192.0.2.10') > 0, 'spared 12 hours from its last right token');
  });

  it('remembers a bounded number of addresses; a flood of new ones does not push a block out', () => {
    const { throttle: t } = throttle({ maxFailures: 2, maxAddresses: 100, maxGlobalFailures: 1_000_000 });
    t.failed('192.0.2.1');
    t.failed('192.0.2.1'); // blocked for 5 minutes
    for (let i = 0; i < 5_000; i++) t.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    assert.ok(t.size <= 200, `${t.size} addresses remembered`);
    assert.ok(t.retryAfterSeconds('192.0.2.1') > 0, 'the blocked address is still blocked');
  });
});
