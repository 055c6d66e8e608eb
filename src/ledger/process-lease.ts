// One bridge process (`serve`, or one `sync --once` pass) per ledger. The order in which evaluations of
// one record commit is kept within one process (docs/architecture.md, "Exactly once"): two processes on
// one ledger (a Kubernetes rolling update, a second container, a sync run beside serve) can record an
// older version of a record over a newer one, or both send. A lease in meta, renewed while the process
// runs, lets the second refuse to start. A process that crashed blocks the next start only briefly:
// on this host not at all once its pid is gone; the container before a restart (our pid, another pid
// namespace) for 20 s after its last renewal (holders.ts); elsewhere until the lease, no longer
// renewed, lapses.
//
// The lease is checked, and taken, before the ledger's schema is upgraded (openLedger, upgradeGuard): a
// newer image started beside a running bridge (a rolling update, a CronJob on a newer tag) must not
// migrate the ledger under it and then exit, leaving the older bridge refusing the ledger at its next
// start ("schema version N is newer"). Commands without a lease (replay, doctor) do not upgrade a
// ledger a live process holds either.
import { existsSync } from 'node:fs';
import type { Logger } from '../observability/logger.js';
import { RepeatedFailure } from '../observability/repeated-failure.js';
import type { Db, UpgradeGuard } from './db.js';
import { hasTable } from './has-table.js';
import { holderGone, hostPrefix, PREDECESSOR_QUIET_MS, processHolderId } from './holders.js';
import type { Ledger } from './types.js';

export const PROCESS_LEASE_META = 'process:lease';
const RENEW_MS = 10_000;
/** Three renewals missed: a process whose event loop stalls that long is not expected to be alive. */
const LAPSE_MS = 30_000;

interface LeaseRecord {
  /** `host:pid:ns<namespace>-random`, as delivery locks are named (processHolderId). */
  holder: string;
  /** The command holding it (`serve`, `sync`, `demo`). */
  command: string;
  renewedAt: number;
}

export interface ProcessLease {
  release(): void;
}

export class LedgerInUse extends Error {
  override readonly name = 'LedgerInUse';
  /**
   * Set when the holder may be this container before its restart (our pid, another pid namespace of
   * this host name, renewed lately: holders.ts): in this many ms it counts as gone unless it renews
   * meanwhile. Worth one wait and one more try (commands/runtime.ts, openLeased).
   */
  readonly retryInMs: number | undefined;

  constructor(message: string, retryInMs?: number) {
    super(message);
    this.retryInMs = retryInMs;
  }
}

type LeaseStore = Pick<Ledger, 'transaction' | 'getMeta' | 'setMeta'>;

/**
 * The lease's store over a bare connection, before the ledger is built on it and its schema brought up
 * to date: a file without a meta table yet (a new ledger) holds no lease.
 */
function leaseStoreOf(db: Db): LeaseStore {
  return {
    transaction: <T>(fn: () => T): T => db.transaction(fn).immediate(),
    getMeta: (key) =>
      hasTable(db, 'meta')
        ? db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)?.value
        : undefined,
    setMeta: (key, value) => {
      if (value === null) db.prepare('DELETE FROM meta WHERE key = ?').run(key);
      else
        db.prepare(
          `INSERT INTO meta (key, value, updated_at) VALUES (?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        ).run(key, value, Date.now());
    },
  };
}

function read(ledger: Pick<LeaseStore, 'getMeta'>): LeaseRecord | undefined {
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
 * The lease's holder when it is another process that may still run: one that renewed within `lapseMs`
 * and is not known gone (this host only: its pid no longer runs).
 */
function liveHolder(ledger: Pick<LeaseStore, 'getMeta'>, now: number, lapseMs: number): LeaseRecord | undefined {
  const held = read(ledger);
  if (!held || now - held.renewedAt >= lapseMs) return undefined;
  if (holderGone(held.holder, hostPrefix(), { atStart: true, quietMs: now - held.renewedAt })) return undefined;
  return held;
}

/** The process holding a ledger's lease, as a command without a lease (replay) sees it. */
export interface LeaseHolder {
  /** `serve`, `sync` or `demo` (a serve with simulators of its own: commands/demo.ts). */
  command: string;
  /** On this host name: the same machine or container, where its listeners are on this loopback. */
  onThisHost: boolean;
  /** `serve on host-a, pid 12, renewed 3 s ago`. */
  description: string;
}

/** The process holding the ledger's lease now, when it may still run. */
export function currentLeaseHolder(ledger: Pick<Ledger, 'getMeta'>, now = Date.now()): LeaseHolder | undefined {
  const held = liveHolder(ledger, now, LAPSE_MS);
  if (!held) return undefined;
  return { command: held.command, onThisHost: held.holder.startsWith(hostPrefix()), description: describe(held, now) };
}

/** When a live holder will count as gone if it does not renew meanwhile (holders.ts), sooner than it lapses. */
function goneIfQuietInMs(held: LeaseRecord, now: number): number | undefined {
  if (!holderGone(held.holder, hostPrefix(), { atStart: true, quietMs: Number.POSITIVE_INFINITY })) return undefined;
  return Math.max(0, held.renewedAt + PREDECESSOR_QUIET_MS - now);
}

/** `serve on host-a, pid 12, renewed 3 s ago`. */
function describe(held: LeaseRecord, now: number): string {
  const [heldHost, pid] = held.holder.split(':');
  const ago = Math.max(0, Math.round((now - held.renewedAt) / 1000));
  return `${held.command} on ${heldHost}, pid ${pid}, renewed ${ago} s ago`;
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
  ledger.transaction(() => {
    const held = liveHolder(ledger, now(), lapseMs);
    if (held && held.holder !== holder) {
      const retryInMs = goneIfQuietInMs(held, now());
      const crashed =
        retryInMs === undefined
          ? `If it crashed, its lease lapses ${Math.round(lapseMs / 1000)} s after it was last renewed: start again then`
          : 'It runs with this pid under this host name in another pid namespace: another container with this host ' +
            `name, or this one before it restarted, whose lease is taken once it has not been renewed for ${PREDECESSOR_QUIET_MS / 1000} s`;
      throw new LedgerInUse(
        `another bridge process uses this ledger (${describe(held, now())}): ` +
          'two processes on one ledger are not supported (serve, or one sync pass at a time; docs/deployment.md §1). ' +
          'Stop the other first; in Kubernetes give the Deployment strategy Recreate (a rolling update runs the new pod ' +
          `beside the old). ${crashed}`,
        retryInMs,
      );
    }
    ledger.setMeta(PROCESS_LEASE_META, JSON.stringify({ holder, command: options.command, renewedAt: now() }));
  });
  let warned = false;
  // A full disk fails every renewal: logged at once, then once a minute with the count.
  const renewFailures = new RepeatedFailure(options.logger, 'the ledger lease could not be renewed; trying again', {
    level: 'warn',
    now,
  });
  const renew = setInterval(() => {
    try {
      const renewed = ledger.transaction(() => {
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
          return false;
        }
        ledger.setMeta(PROCESS_LEASE_META, JSON.stringify({ holder, command: options.command, renewedAt: now() }));
        return true;
      });
      if (renewed) renewFailures.recovered('the ledger lease is renewed again');
    } catch (err) {
      renewFailures.failed(err);
    }
  }, options.renewMs ?? RENEW_MS);
  renew.unref();
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
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

/**
 * Whether no process has the ledger file open, as far as its files tell, looked at before this process
 * opens it (its connection makes them). In WAL mode every connection works with the -shm file beside the
 * ledger (and the -wal) while it is open, and the last to close removes both: a file with neither is no
 * running bridge's, whatever lease it carries. So is a copy (a backup, `VACUUM INTO`'s, which takes the
 * running bridge's lease along) and a backup put back (§8 says to remove stale -wal and -shm files): a
 * lease in it was the original's. A process that crashed leaves them, and its lease is judged as before.
 */
function openInNoProcess(path: string): boolean {
  if (path === '' || path === ':memory:' || path.startsWith('file:') || !existsSync(path)) return false;
  return !existsSync(`${path}-wal`) && !existsSync(`${path}-shm`);
}

/**
 * What openLedger does around the schema upgrade (db.ts, UpgradeGuard):
 * - with `lease` (serve, sync): takes the lease before any schema change, so a process refused by a
 *   live holder leaves its ledger as it found it; on a new ledger (no meta table yet) right after the
 *   schema is created. The lease is released when the ledger closes.
 * - without (replay, doctor, tests): upgrades no ledger whose lease a live process holds (an older
 *   bridge would then refuse it); a ledger already up to date opens beside it as before. A file no
 *   process has open (openInNoProcess: the copy `doctor` checks an upgrade on, docs/deployment.md §7) is
 *   upgraded whatever lease it carries. serve and sync still honour such a lease: it lapses 30 s after
 *   the copy was taken, and a second bridge on the same file must never be let in on a guess.
 */
export function upgradeGuard(
  path: string,
  lease: { command: string; logger: Logger } | undefined,
): UpgradeGuard & { lease(): ProcessLease | undefined } {
  let taken: ProcessLease | undefined;
  const openNowhere = openInNoProcess(path);
  const take = (db: Db) => {
    if (lease && !taken) taken = takeProcessLease(leaseStoreOf(db), lease);
  };
  return {
    lease: () => taken,
    before(db, pending) {
      if (lease) {
        // No meta table: a new ledger, which no one holds; taken once the schema exists (after).
        if (hasTable(db, 'meta')) take(db);
        return;
      }
      const upgrades = pending();
      if (upgrades.length === 0 || openNowhere) return;
      const held = liveHolder(leaseStoreOf(db), Date.now(), LAPSE_MS);
      if (!held) return;
      const latest = Math.max(...upgrades.map((m) => m.version));
      throw new LedgerInUse(
        `the ledger ${path} (store.path) is used by another bridge process (${describe(held, Date.now())}) ` +
          `and this bridge would upgrade its schema (to ${latest}), after which that bridge, an older one, would ` +
          'refuse it: run this command with the version that bridge runs, or stop it first and upgrade it ' +
          '(docs/deployment.md §7)',
      );
    },
    after: take,
    abandon() {
      taken?.release();
      taken = undefined;
    },
  };
}
