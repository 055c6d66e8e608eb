// doctor's store check writes one small value, which fits on a disk all but full: the ledger's file
// system is asked as well, with the room /readyz `store` needs before it clears a full-disk failure.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { checkStore } from '../../src/doctor/local-checks.js';
import { freeSpaceAt, openLedger } from '../../src/ledger/index.js';
import { MINIMAL_CONFIG } from './config-helpers.js';

const MIB = 1024 * 1024;

describe('doctor: the ledger disk', () => {
  let dir = '';
  let path = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'doctor-space-'));
    path = join(dir, 'bridge.db');
    openLedger(path).close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = () => loadConfig({ text: `${MINIMAL_CONFIG}store:\n  path: ${path}\n` });
  const spaceChecks = (free: number, size: number) =>
    checkStore(config(), 'serve', new Date(), () => ({ free, size })).filter((check) => check.name === 'store space');

  it('warns when the file system has less room than readiness asks, naming how much', () => {
    const [low] = spaceChecks(3 * MIB, 10_000 * MIB);
    assert.equal(low?.status, 'warn');
    assert.match(
      low?.detail ?? '',
      /^3 MiB free of 10000 MiB on the file system of .*bridge\.db: polls and deliveries fail/,
    );
    assert.match(low?.detail ?? '', /until 32 MiB are free/);
    // Still writable: the store line itself passes.
    assert.equal(
      checkStore(config(), 'serve', new Date(), () => ({ free: 3 * MIB, size: 10_000 * MIB }))[0]?.status,
      'ok',
    );
  });

  it('asks a small volume for a tenth of it, and says nothing with room enough', () => {
    assert.deepEqual(spaceChecks(5 * MIB, 40 * MIB), [], '5 MiB of a 40 MiB volume: more than a tenth');
    assert.equal(spaceChecks(3 * MIB, 40 * MIB)[0]?.status, 'warn');
    assert.deepEqual(spaceChecks(64 * MIB, 10_000 * MIB), []);
  });

  it('reads the real file system of the ledger file', () => {
    const space = freeSpaceAt(path);
    assert.ok(space, 'statfs answers here');
    assert.ok(space.size > 0 && space.free >= 0 && space.free <= space.size, JSON.stringify(space));
  });
});
