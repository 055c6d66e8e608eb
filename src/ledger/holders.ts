// Who holds a lock in the ledger (a delivery worker's row lock, a process's lease): `host:pid:ns<pid
// namespace>-random`, so that a process starting on the same host can tell a holder that is gone from
// one that still runs, and take its locks back at once rather than waiting for them to time out.
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** This process's pid namespace (Linux), or undefined: pids of other processes can then not be checked. */
const PID_NAMESPACE = (() => {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
})();

/** `host:`, the prefix of every holder id of this host. */
export function hostPrefix(): string {
  return `${hostname()}:`;
}

/** A new holder id for something this process holds. */
export function processHolderId(): string {
  return `${hostPrefix()}${process.pid}:${PID_NAMESPACE ? `ns${PID_NAMESPACE}-` : ''}${randomBytes(3).toString('hex')}`;
}

/**
 * How long a holder with this very pid, taken in another pid namespace, must have shown no sign of life
 * before it counts as gone at start: two renewal periods of the process lease (renewed every 10 s).
 */
export const PREDECESSOR_QUIET_MS = 20_000;

/**
 * Whether the process behind a holder id of this host (`host` is hostPrefix()) is known to be gone:
 * - taken in this pid namespace: gone when that pid is this process (an earlier holder of our pid) or
 *   runs no process. A pid reused since reads as alive, and the lock waits for its timeout;
 * - taken in another or an unknown namespace: its pid says nothing here. Only at start, only with this
 *   very pid, and only once it has shown no sign of life (`quietMs`: its lease not renewed) for
 *   PREDECESSOR_QUIET_MS. A container's restart needs that rule (the bridge is pid 1 of the same host
 *   name again, in a new namespace), but so does every other container bridge: two containers share a
 *   host name with host networking, a compose `hostname:`, or `docker compose run bridge sync --once`
 *   beside `serve`, and both are pid 1. Taken at once, a live holder's lease was taken too (a review
 *   showed it). Nothing portable names a container from inside it (the namespace is new at a restart
 *   as for another container; the runtime's paths in /proc differ by runtime), so its silence is what
 *   tells: a live holder renews every 10 s. A restarted container's bridge waits at most 20 s after the
 *   last renewal of the one before it (serve and sync wait for it, commands/runtime.ts). Otherwise it
 *   waits for the lock timeout.
 */
export function holderGone(holder: string, host: string, when: { atStart: boolean; quietMs: number }): boolean {
  if (!holder.startsWith(host)) return false;
  const [pidText, rest = ''] = holder.slice(host.length).split(':');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const namespace = /^ns(\d+)-/.exec(rest)?.[1];
  if (namespace === undefined || namespace !== PID_NAMESPACE)
    return when.atStart && pid === process.pid && when.quietMs >= PREDECESSOR_QUIET_MS;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
