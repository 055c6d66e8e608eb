// The ledger keeps declarations (names, birth dates, identifiers) for days: its file and SQLite's -wal and
// -shm beside it are created readable by their owner only, whatever the umask, and doctor warns about a
// ledger (made by an older bridge, copied, restored) that others may read.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { checkStore } from '../../src/doctor/local-checks.js';
import { openLedger } from '../../src/ledger/index.js';
import { MINIMAL_CONFIG } from './config-helpers.js';

const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);

describe('ledger file modes', () => {
  let dir = '';
  let umask = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-mode-'));
    // The usual default: SQLite alone made the files 0644 under it.
    umask = process.umask(0o022);
  });
  after(() => {
    process.umask(umask);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the ledger, its -wal and its -shm 0600', () => {
    const path = join(dir, 'bridge.db');
    const ledger = openLedger(path);
    try {
      // A write while it is open: the -wal and -shm exist now.
      ledger.setMeta('mode-test', '1');
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.ok(existsSync(file), file);
        assert.equal(modeOf(file), '600', file);
      }
    } finally {
      ledger.close();
    }
  });

  it('leaves an existing ledger as it is; doctor warns when others may read it, and not once it is private', () => {
    const path = join(dir, 'older.db');
    openLedger(path).close();
    chmodSync(path, 0o644);
    const config = loadConfig({ text: `${MINIMAL_CONFIG}store:\n  path: ${path}\n` });
    const exposed = checkStore(config).filter((check) => check.name === 'store permissions');
    // doctor holds the ledger open as it looks: SQLite made its -wal and -shm with the file's mode.
    const files = [path, `${path}-wal`, `${path}-shm`];
    assert.deepEqual(
      exposed.map((check) => [check.status, check.detail]),
      [
        [
          'warn',
          `${files.map((file) => `${file} (mode 0644)`).join(', ')}: readable or writable by users other than its owner, and it holds personal data; restrict it: chmod 600 ${files.join(' ')}`,
        ],
      ],
    );
    // Opened again by the bridge (doctor just did): the mode is the operator's to change.
    assert.equal(modeOf(path), '644');
    chmodSync(path, 0o600);
    assert.deepEqual(
      checkStore(config).filter((check) => check.name === 'store permissions'),
      [],
    );
  });
});
