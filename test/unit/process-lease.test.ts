// The ledger's process lease (src/ledger/process-lease.ts) against a holder on another host: refused while
// it renews, taken once it has lapsed. The same host's cases run as processes in
// test/integration/process-lease.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openLedger } from '../../src/ledger/index.js';
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
