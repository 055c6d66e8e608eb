// The ledger's process lease (src/ledger/process-lease.ts) against a holder on another host: refused while
// it renews, taken once it has lapsed; checked before the schema is upgraded. The same host's cases run
// as processes in test/integration/process-lease.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Bridge } from '../../src/app.js';
import { openLeased } from '../../src/commands/runtime.js';
import { migrate } from '../../src/ledger/db.js';
import { openLedger } from '../../src/ledger/index.js';
import { MIGRATIONS } from '../../src/ledger/migrations/index.js';
import { LedgerInUse, PROCESS_LEASE_META, takeProcessLease } from '../../src/ledger/process-lease.js';
import { silentLogger } from '../../src/observability/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-lease-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the ledger lease', () => {
  it('is refused while a process on another host renews it, and taken once that lapsed', () => {
    const ledger = openLedger(join(dir, 'lease.db'));
    try {
      const now = 1_800_000_000_000;
      const other = (renewedAt: number) =>
        ledger.setMeta(
          PROCESS_LEASE_META,
          JSON.stringify({ holder: 'other-pod:1:ns9-abcdef', command: 'serve', renewedAt }),
        );
      other(now - 29_000);
      assert.throws(
        () => takeProcessLease(ledger, { command: 'serve', logger: silentLogger, now: () => now }),
        (err: unknown) =>
          err instanceof LedgerInUse &&
          /\(serve on other-pod, pid 1, renewed 29 s ago\).*lapses 30 s after it was last renewed/.test(err.message),
      );
      other(now - 31_000); // crashed on its node: no longer renewed
      const lease = takeProcessLease(ledger, { command: 'serve', logger: silentLogger, now: () => now });
      const held = JSON.parse(ledger.getMeta(PROCESS_LEASE_META) ?? '{}');
      assert.match(held.holder, new RegExp(`:${process.pid}:`));
      lease.release();
      assert.equal(ledger.getMeta(PROCESS_LEASE_META), undefined);
    } finally {
      ledger.close();
    }
  });

  it('a holder with our pid in another pid namespace is taken only once it has not renewed for 20 s', () => {
    // Two containers with one host name (host networking, compose `hostname:`, `compose run … sync` beside
    // serve) are both pid 1: the other's id differs from ours only by its namespace, as a holder-id of the
    // container before our restart does.
    const ledger = openLedger(join(dir, 'same-hostname.db'));
    try {
      const now = 1_800_000_000_000;
      const take = () => takeProcessLease(ledger, { command: 'sync', logger: silentLogger, now: () => now });
      const held = (holder: string, renewedAt: number) =>
        ledger.setMeta(PROCESS_LEASE_META, JSON.stringify({ holder, command: 'serve', renewedAt }));
      const twin = `${hostname()}:${process.pid}:ns1-abcdef`;
      held(twin, now - 5_000); // renews every 10 s: may well run
      assert.throws(
        take,
        (err: unknown) =>
          err instanceof LedgerInUse &&
          err.retryInMs === 15_000 &&
          /in another pid namespace: another container with this host name, or this one before it restarted/.test(
            err.message,
          ),
      );
      assert.equal(JSON.parse(ledger.getMeta(PROCESS_LEASE_META) ?? '{}').holder, twin, 'left to it');
      held(twin, now - 19_999);
      assert.throws(take, LedgerInUse);
      // Another pid: nothing to tell from it; it waits for the lapse, with no retry in between.
      held(`${hostname()}:${process.pid + 1}:ns1-abcdef`, now - 21_000);
      assert.throws(take, (err: unknown) => err instanceof LedgerInUse && err.retryInMs === undefined);
      held(twin, now - 20_000); // silent for two renewals: the container before this one's restart
      take().release();
    } finally {
      ledger.close();
    }
  });

  it('serve and sync wait once for a holder that may be their container before its restart', async () => {
    const logs: string[] = [];
    const logger = { warn: (_: unknown, message: string) => logs.push(message) } as unknown as typeof silentLogger;
    const slept: number[] = [];
    const signals = {
      sleep: async (ms: number) => {
        slept.push(ms);
        return true;
      },
    };
    const bridge = {} as Bridge;
    const refusal = (retryInMs?: number) => new LedgerInUse('another bridge process uses this ledger', retryInMs);
    // Quiet until then: taken at the second try.
    let tries = 0;
    const built = await openLeased(
      () => {
        if (tries++ === 0) throw refusal(15_000);
        return bridge;
      },
      signals,
      logger,
    );
    assert.equal(built, bridge);
    assert.deepEqual(slept, [15_500]);
    assert.match(logs[0] ?? '', /waiting to see whether it still renews its lease/);
    // Renewed meanwhile: the second refusal is the answer.
    await assert.rejects(
      openLeased(
        () => {
          throw refusal(12_000);
        },
        signals,
        logger,
      ),
      LedgerInUse,
    );
    assert.deepEqual(slept, [15_500, 12_500]);
    // A plain refusal (another host, another pid) is not waited for; nor is anything after a signal.
    await assert.rejects(
      openLeased(
        () => {
          throw refusal();
        },
        signals,
        logger,
      ),
      LedgerInUse,
    );
    assert.equal(slept.length, 2);
    const stopped = await openLeased(
      () => {
        throw refusal(1_000);
      },
      { sleep: async () => false },
      logger,
    );
    assert.equal(stopped, undefined);
  });

  it('a release leaves a lease another process took alone', () => {
    const ledger = openLedger(join(dir, 'release.db'));
    try {
      const lease = takeProcessLease(ledger, { command: 'sync', logger: silentLogger });
      const taken = JSON.stringify({ holder: 'other-pod:1:ns9-abcdef', command: 'serve', renewedAt: Date.now() });
      ledger.setMeta(PROCESS_LEASE_META, taken);
      lease.release();
      assert.equal(ledger.getMeta(PROCESS_LEASE_META), taken);
    } finally {
      ledger.close();
    }
  });
});

/** A ledger as the release before this one left it (all migrations but the last), `lease` in its meta. */
function olderLedger(path: string, lease?: { holder: string; renewedAt: number }): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    migrate(db, MIGRATIONS.slice(0, -1), silentLogger, Date.now());
    if (lease)
      db.prepare('INSERT INTO meta (key, value, updated_at) VALUES (?, ?, ?)').run(
        PROCESS_LEASE_META,
        JSON.stringify({ ...lease, command: 'serve' }),
        Date.now(),
      );
  } finally {
    db.close();
  }
}

function lease(path: string): string | undefined {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT value FROM meta WHERE key = ?').get(PROCESS_LEASE_META) as { value: string } | undefined)
      ?.value;
  } finally {
    db.close();
  }
}

function schemaVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
  } finally {
    db.close();
  }
}

describe('the ledger lease and schema upgrades', () => {
  const latest = Math.max(...MIGRATIONS.map((m) => m.version));
  /** The schema of the release before (olderLedger): versions may skip a number. */
  const before = MIGRATIONS.at(-2)?.version;
  const live = { holder: 'other-pod:1:ns9-abcdef', renewedAt: Date.now() };

  it('a serve or sync refused by a live holder leaves the older ledger unmigrated', () => {
    // A newer image started beside the running (older) bridge: a rolling update, a CronJob on a newer tag.
    const path = join(dir, 'refused.db');
    olderLedger(path, live);
    assert.throws(
      () => openLedger(path, { lease: { command: 'serve' } }),
      (err: unknown) =>
        err instanceof LedgerInUse && /another bridge process uses this ledger \(serve on other-pod/.test(err.message),
    );
    assert.equal(schemaVersion(path), before, 'the running bridge can still open it after');
  });

  /** The holder's own connection, open as a running bridge keeps it (its -wal and -shm beside the file). */
  function openedByHolder(path: string): InstanceType<typeof Database> {
    const db = new Database(path);
    db.prepare('SELECT COUNT(*) FROM meta').get();
    return db;
  }

  it('a command without a lease (replay, doctor) upgrades no ledger a live process holds', () => {
    const path = join(dir, 'no-upgrade.db');
    olderLedger(path, live);
    const holder = openedByHolder(path);
    try {
      assert.throws(
        () => openLedger(path),
        (err: unknown) =>
          err instanceof LedgerInUse &&
          new RegExp(
            `used by another bridge process \\(serve on other-pod, pid 1, .*upgrade its schema \\(to ${latest}\\)`,
          ).test(err.message),
      );
      assert.equal(schemaVersion(path), before);
    } finally {
      holder.close();
    }
  });

  it("doctor upgrades a fresh copy of a held ledger (the upgrade check): the holder's lease came with it", () => {
    // docs/deployment.md §7 step 2: a VACUUM INTO backup taken seconds ago, copied for the check.
    const path = join(dir, 'held.db');
    olderLedger(path, live);
    const holder = openedByHolder(path);
    const copy = join(dir, 'upgrade-check.db');
    try {
      holder.prepare('VACUUM INTO ?').run(copy);
      assert.equal(JSON.parse(lease(copy) ?? '{}').holder, live.holder, 'the copy carries the live lease');
      const checked = openLedger(copy);
      checked.close();
      assert.equal(schemaVersion(copy), latest);
      // The original, which the holder has open, is still refused: exactly once rests on it.
      assert.throws(() => openLedger(path), LedgerInUse);
      assert.throws(() => openLedger(path, { lease: { command: 'serve' } }), LedgerInUse);
      assert.equal(schemaVersion(path), before);
    } finally {
      holder.close();
    }
  });

  it('upgrades once the holder has lapsed, taking the lease first; a current ledger opens beside a holder', () => {
    const path = join(dir, 'lapsed.db');
    olderLedger(path, { holder: 'other-pod:1:ns9-abcdef', renewedAt: Date.now() - 31_000 });
    const ledger = openLedger(path, { lease: { command: 'sync' } });
    try {
      assert.equal(schemaVersion(path), latest);
      const held = JSON.parse(ledger.getMeta(PROCESS_LEASE_META) ?? '{}');
      assert.equal(held.command, 'sync');
      assert.match(held.holder, new RegExp(`:${process.pid}:`));
    } finally {
      ledger.close();
    }
    assert.equal(lease(path), undefined, 'given back at close');
    // Up to date: replay and doctor open it beside a running process, as before.
    const running = openLedger(path);
    running.setMeta(PROCESS_LEASE_META, JSON.stringify({ ...live, command: 'serve' }));
    openLedger(path).close();
    running.close();
  });

  it('takes the lease of a new ledger once its schema exists', () => {
    const path = join(dir, 'new.db');
    const ledger = openLedger(path, { lease: { command: 'serve' } });
    try {
      assert.match(JSON.parse(ledger.getMeta(PROCESS_LEASE_META) ?? '{}').holder, new RegExp(`:${process.pid}:`));
    } finally {
      ledger.close();
    }
  });
});
