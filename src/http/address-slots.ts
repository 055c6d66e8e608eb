/**
 * Slots shared by every client with a cap per remote address, so that one address cannot take them all:
 * the HTTP server's connections (one host holding 1,000 idle sockets took the bridge offline, health
 * check included) and the receiver's body reads before authentication. Pure bookkeeping: the caller
 * takes a slot when the thing starts and releases it, once, when it ends.
 */
export interface SlotLimits {
  /** Slots in all. */
  total: number;
  /** Slots one address may hold (an IPv6 /64 counts as one address: a host gets a whole /64). */
  perAddress: number;
  /**
   * When set, 127.0.0.1 and ::1 (the host itself: the container's HEALTHCHECK) are not capped per
   * address and may take this many slots beyond `total`, so a health check gets through a full server.
   */
  loopbackReserve?: number;
}

const LOOPBACK = new Set(['127.0.0.1', '::1']);

/** The address a slot is counted under: IPv4 as is, IPv6 by its /64, an IPv4-mapped IPv6 as IPv4. */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, '').toLowerCase(); // a zone id (fe80::1%eth0) is not part of it
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(plain);
  if (mapped?.[1]) return mapped[1];
  if (!plain.includes(':') || LOOPBACK.has(plain)) return plain;
  const [head = '', tail] = plain.split('::');
  const headGroups = head ? head.split(':') : [];
  // An embedded IPv4 (64:ff9b::1.2.3.4) fills two groups; only the first four groups matter here.
  const tailGroups = tail ? tail.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : [];
  const missing = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(Math.max(missing, 0)).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

export class AddressSlots {
  private held = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(private readonly limits: SlotLimits) {}

  /** Takes a slot; returns the key to give back to release(), or undefined when refused. */
  take(address: string | undefined): string | undefined {
    // No address: the socket closed before anyone looked. Nothing to serve.
    if (address === undefined) return undefined;
    const key = addressKey(address);
    const count = this.byAddress.get(key) ?? 0;
    const { total, perAddress, loopbackReserve } = this.limits;
    if (loopbackReserve !== undefined && LOOPBACK.has(key)) {
      if (this.held >= total + loopbackReserve) return undefined;
    } else if (this.held >= total || count >= perAddress) return undefined;
    this.held++;
    this.byAddress.set(key, count + 1);
    return key;
  }

  release(key: string): void {
    const count = this.byAddress.get(key) ?? 0;
    if (count <= 0) return;
    this.held--;
    // Addresses at zero are forgotten: the map holds no more entries than there are slots taken.
    if (count === 1) this.byAddress.delete(key);
    else this.byAddress.set(key, count - 1);
  }

  /** Slots taken in all, and by one address. */
  inUse(address?: string): number {
    return address === undefined ? this.held : (this.byAddress.get(addressKey(address)) ?? 0);
  }
}
