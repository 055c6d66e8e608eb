// Wrong admin tokens, counted per remote address and over all addresses together. Past a handful from
// one address in a minute, that address's tokens are not compared at all for a while (429): a blocked
// address learns nothing about any token, so the rate at which it can guess is bounded however many
// requests it sends, in parallel or not. Past a generous number from all addresses, every address waits
// for the minute to end, so many addresses together are bounded too. The operator's open page is not
// stopped by either: it carries a session (sessions.ts), which is not a guess and is not throttled.
// No library in the dependencies does this (express-rate-limit and the like are not among them); it is small.
import { setBounded } from '../../util/bounded-map.js';
import { addressKey } from '../address-slots.js';

export interface AuthThrottleLimits {
  /** Failed authentications one address may make within `windowMs`; the last of them starts a block. */
  maxFailures: number;
  windowMs: number;
  /** How long a blocked address is answered 429. */
  blockMs: number;
  /**
   * Failed authentications all addresses together may make within a `windowMs`; then 429 to all until it
   * ends. Infinity: no such block.
   */
  maxGlobalFailures: number;
  /** Addresses counted at most, and as many blocked (each entry is a few dozen bytes). */
  maxAddresses: number;
  /** How long an address that gave the right token is spared the block of all addresses. */
  trustMs: number;
}

/**
 * 10 wrong tokens a minute, then 5 minutes of 429: an operator who mistypes is not stopped, and an
 * address guesses at most 10 tokens every 6 minutes. 100 a minute from all addresses together is far
 * beyond operators mistyping, and takes ten addresses (IPv6 /64s) to reach. 2 × 10,000 addresses is a
 * few megabytes.
 */
export const AUTH_THROTTLE: AuthThrottleLimits = {
  maxFailures: 10,
  windowMs: 60_000,
  blockMs: 300_000,
  maxGlobalFailures: 100,
  maxAddresses: 10_000,
  trustMs: 12 * 3_600_000,
};

/** What a failure started: a block of its address, of all addresses (both at once can happen). */
export interface NewBlocks {
  address: boolean;
  all: boolean;
}

export class AuthThrottle {
  // Apart, so that a flood of new addresses (each one wrong token) evicts other counts, never a block:
  // pushing a block out takes `maxAddresses` other addresses blocked, which blocks the flood itself.
  // Each in order of last change (setBounded): when full, the oldest is forgotten.
  private readonly counting = new Map<string, { windowStart: number; failures: number }>();
  private readonly blocked = new Map<string, number>();
  // All addresses: a fixed window, so that at most `maxGlobalFailures` are compared in any one.
  private globalStart = Number.NEGATIVE_INFINITY;
  private globalFailures = 0;
  // Addresses that gave the right token, until when they are spared the block of all addresses: otherwise
  // wrong tokens from ten fresh addresses a minute (IPv6 /64s cost nothing) keep every operator out for as
  // long as they go on. Their own block still applies: an address shared with a guesser gains nothing.
  private readonly trusted = new Map<string, number>();

  constructor(
    private readonly limits: AuthThrottleLimits = AUTH_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whole seconds until `address` may authenticate again (for Retry-After), or 0 when it may now: the
   * longer of its own block and that of all addresses. An IPv6 address counts by its /64, as the
   * connection slots do: a host gets a whole /64 to rotate in. A `scope` (the subscription receiver's
   * source) counts apart: wrong secrets for one scope never block another from the same address.
   */
  retryAfterSeconds(address: string | undefined, scope = ''): number {
    const key = keyOf(address, scope);
    const trusted = (this.trusted.get(key) ?? 0) > this.now();
    return Math.max(this.addressWait(key), trusted ? 0 : this.globalWait());
  }

  /** The right token came from `address`: it is spared the block of all addresses for `trustMs`. */
  succeeded(address: string | undefined, scope = ''): void {
    setBounded(this.trusted, keyOf(address, scope), this.now() + this.limits.trustMs, this.limits.maxAddresses);
  }

  /** Seconds until all addresses may authenticate again, 0 when they may. */
  globalWait(): number {
    if (this.globalFailures < this.limits.maxGlobalFailures) return 0;
    const left = this.globalStart + this.limits.windowMs - this.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  /** Counts a wrong token (one that was compared: the caller asks retryAfterSeconds first). */
  failed(address: string | undefined, scope = ''): NewBlocks {
    const key = keyOf(address, scope);
    const now = this.now();
    if (now - this.globalStart >= this.limits.windowMs) {
      this.globalStart = now;
      this.globalFailures = 0;
    }
    this.globalFailures++;
    const all = this.globalFailures === this.limits.maxGlobalFailures;
    if (this.addressWait(key) > 0) return { address: false, all };
    const known = this.counting.get(key);
    const entry = known && now - known.windowStart < this.limits.windowMs ? known : { windowStart: now, failures: 0 };
    entry.failures++;
    if (entry.failures < this.limits.maxFailures) {
      setBounded(this.counting, key, entry, this.limits.maxAddresses);
      return { address: false, all };
    }
    this.counting.delete(key);
    // Every block lasts as long, so the oldest one, pushed out when full, is the next to end anyway.
    setBounded(this.blocked, key, now + this.limits.blockMs, this.limits.maxAddresses);
    return { address: true, all };
  }

  /** Addresses remembered now (at most `maxAddresses` counting and as many blocked). */
  get size(): number {
    return this.counting.size + this.blocked.size;
  }

  private addressWait(key: string): number {
    const until = this.blocked.get(key);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.blocked.delete(key);
    return 0;
  }
}

// A socket that closed before anyone looked has no address: such requests share one entry (per scope).
// No address holds a newline, so the last one parts scope from address: no two pairs share a key.
const keyOf = (address: string | undefined, scope: string): string =>
  `${scope}\n${address === undefined ? '' : addressKey(address)}`;
