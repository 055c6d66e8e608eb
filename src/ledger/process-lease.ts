// One bridge process (`serve`, or one `sync --once` pass) per ledger. The order in which evaluations of
// one record commit is kept within one process (docs/architecture.md, "Exactly once"): two processes on
// one ledger (a Kubernetes rolling update, a second container, a sync run beside serve) can record an
// older version of a record over a newer one, or both send. A lease in meta, renewed while the process
// runs, lets the second refuse to start. A process that crashed blocks the next start only briefly:
// on this host not at all once its pid is gone (a container's restart), elsewhere until the lease,
// no longer renewed, lapses.
import type { Logger } from '../observability/logger.js';
import { holderGone, hostPrefix, processHolderId } from './holders.js';
import type { Ledger } from './types.js';

export const PROCESS_LEASE_META = 'process:lease';
const RENEW_MS = 10_000;
/** Three renewals missed: a process whose event loop stalls that long is not expected to be alive. */
const LAPSE_MS = 30_000;

interface LeaseRecord {
  /** `host:pid:ns<namespace>-random`, as delivery locks are named (processHolderId). */
  holder: string;
  /** The command holding it (`serve`, `sync`). */
  command: string;
  renewedAt: number;
}

export interface ProcessLease {
  release(): void;
}

export class LedgerInUse extends Error {
  override readonly name = 'LedgerInUse';
}

type LeaseStore = Pick<Ledger, 'transaction' | 'getMeta' | 'setMeta'>;

function read(ledger: LeaseStore): LeaseRecord | undefined {
  const text = ledger.getMeta(PROCESS_LEASE_META);
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<LeaseRecord>;
    if (typeof value.holder === 'string' && typeof value.renewedAt === 'number')
      return { holder: value.holder, command: String(value.command ?? 'serve'), renewedAt: value.renewedAt };
  } catch {
    // Unreadable: no live holder can be told from it.
  }
  return undefined;
}

/**
 * Takes the ledger's lease for this process, or throws LedgerInUse naming the holder while another
 * process holds it; renews it on a timer until released (at stop, before the ledger closes).
 */
export function takeProcessLease(
  ledger: LeaseStore,
  options: { command: string; logger: Logger; now?: () => number; renewMs?: number; lapseMs?: number },
): ProcessLease {
  const now = options.now ?? Date.now;
  const lapseMs = options.lapseMs ?? LAPSE_MS;
  const holder = processHolderId();
  const host = hostPrefix();
  ledger.transaction(() => {
    const held = read(ledger);
    // Another holder that renewed lately and is not known gone (this host only: its pid no longer runs).
    if (held && held.holder !== holder && now() - held.renewedAt < lapseMs && !holderGone(held.holder, host, true)) {
      const [heldHost, pid] = held.holder.split(':');
      const ago = Math.max(0, Math.round((now() - held.renewedAt) / 1000));
      throw new LedgerInUse(
        `another bridge process uses this ledger (${held.command} on ${heldHost}, pid ${pid}, renewed ${ago} s ago): ` +
          'two processes on one ledger are not supported (serve, or one sync pass at a time; docs/deployment.md §1). ' +
          'Stop the other first; in Kubernetes give the Deployment strategy Recreate (a rolling update runs the new pod ' +
          `beside the old). If it crashed, its lease lapses ${Math.round(lapseMs / 1000)} s after it was last renewed: start again then`,
      );
    }
    ledger.setMeta(PROCESS_LEASE_META, JSON.stringify({ holder, command: options.command, renewedAt: now() }));
  });
  let warned = false;
  const renew = setInterval(() => {
    try {
      ledger.transaction(() => {
        const held = read(ledger);
        if (held && held.holder !== holder) {
          // Taken while this process did not renew (its event loop stalled past the lapse): say so once; the
          // lease stays with the other, which a restart of this one then finds.
          if (!warned)
            options.logger.error(
              { holder: held.holder },
              'another bridge process took over this ledger while this one did not renew its lease: two processes now use it; stop one',
            );
          warned = true;
          return;
        }
        ledger.setMeta(PROCESS_LEASE_META, JSON.stringify({ holder, command: options.command, renewedAt: now() }));
      });
    } catch (err) {
      options.logger.warn({ err }, 'the ledger lease could not be renewed; trying again');
    }
  }, options.renewMs ?? RENEW_MS);
  renew.unref();
  return {
    release() {
      clearInterval(renew);
      try {
        ledger.transaction(() => {
          if (read(ledger)?.holder === holder) ledger.setMeta(PROCESS_LEASE_META, null);
        });
      } catch (err) {
        // The next start then waits for it to lapse (or finds this pid gone).
        options.logger.warn({ err }, 'the ledger lease could not be released');
      }
    },
  };
}
