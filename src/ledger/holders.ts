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
 * Whether the process behind a holder id of this host (`host` is hostPrefix()) is known to be gone:
 * - taken in this pid namespace: gone when that pid is this process (an earlier holder of our pid) or
 *   runs no process. A pid reused since reads as alive, and the lock waits for its timeout;
 * - taken in another or an unknown namespace (two containers may share a hostname; a review showed a
 *   live holder in another namespace reads as gone): only at start, and only with this very pid, the
 *   rule a container's restart needs (the bridge is pid 1 of the same host again, in a new namespace).
 *   Otherwise it waits for the lock timeout.
 */
export function holderGone(holder: string, host: string, atStart: boolean): boolean {
  if (!holder.startsWith(host)) return false;
  const [pidText, rest = ''] = holder.slice(host.length).split(':');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const namespace = /^ns(\d+)-/.exec(rest)?.[1];
  if (namespace === undefined || namespace !== PID_NAMESPACE) return atStart && pid === process.pid;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
