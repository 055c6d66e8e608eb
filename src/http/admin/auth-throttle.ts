// Wrong admin tokens, counted per remote address: past a handful in a minute the address's wrong tokens
// are answered 429 for a while. The right token is let through all the same (requireToken): an address
// is shared, and its other users must not be able to lock the operator out. No library
// in the dependencies does this (express-rate-limit and the like are not among them); it is small.
import { setBounded } from '../../sources/shared/bounded-map.js';
import { addressKey } from '../address-slots.js';

export interface AuthThrottleLimits {
  /** Failed authentications one address may make within `windowMs`; the last of them starts a block. */
  maxFailures: number;
  windowMs: number;
  /** How long a blocked address is answered 429. */
  blockMs: number;
  /** Addresses counted at most, and as many blocked (each entry is a few dozen bytes). */
  maxAddresses: number;
}

/**
 * 10 wrong tokens a minute, then 5 minutes of 429: an operator who mistypes is not stopped, and an
 * address guesses at most about 10 tokens every 6 minutes. 2 × 10,000 addresses is a few megabytes.
 */
export const AUTH_THROTTLE: AuthThrottleLimits = {
  maxFailures: 10,
  windowMs: 60_000,
  blockMs: 300_000,
  maxAddresses: 10_000,
};

export class AuthThrottle {
  // Apart, so that a flood of new addresses (each one wrong token) evicts other counts, never a block:
  // pushing a block out takes `maxAddresses` other addresses blocked, which blocks the flood itself.
  // Each in order of last change (setBounded): when full, the oldest is forgotten.
  private readonly counting = new Map<string, { windowStart: number; failures: number }>();
  private readonly blocked = new Map<string, number>();

  constructor(
    private readonly limits: AuthThrottleLimits = AUTH_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whole seconds until `address` may authenticate again (for Retry-After), or 0 when it may now.
   * An IPv6 address counts by its /64, as the connection slots do: a host gets a whole /64 to rotate in.
   */
  retryAfterSeconds(address: string | undefined): number {
    const key = keyOf(address);
    const until = this.blocked.get(key);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.blocked.delete(key);
    return 0;
  }

  /** Counts a wrong token; true when this failure blocks the address (said once per block). */
  failed(address: string | undefined): boolean {
    if (this.retryAfterSeconds(address) > 0) return false;
    const key = keyOf(address);
    const now = this.now();
    const known = this.counting.get(key);
    const entry = known && now - known.windowStart < this.limits.windowMs ? known : { windowStart: now, failures: 0 };
    entry.failures++;
    if (entry.failures < this.limits.maxFailures) {
      setBounded(this.counting, key, entry, this.limits.maxAddresses);
      return false;
    }
    this.counting.delete(key);
    // Every block lasts as long, so the oldest one, pushed out when full, is the next to end anyway.
    setBounded(this.blocked, key, now + this.limits.blockMs, this.limits.maxAddresses);
    return true;
  }

  /** Addresses remembered now (at most `maxAddresses` counting and as many blocked). */
  get size(): number {
    return this.counting.size + this.blocked.size;
  }
}

// A socket that closed before anyone looked has no address: such requests share one entry.
const keyOf = (address: string | undefined): string => (address === undefined ? '' : addressKey(address));
