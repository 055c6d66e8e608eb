// The address serve leaves for the container's HEALTHCHECK (src/commands/health-file.ts): a wildcard
// bind is probed on loopback, an IPv6 address in brackets, and the file is replaced whole.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { healthUrl, removeHealthFile, writeHealthFile } from '../../src/commands/health-file.js';

const dir = mkdtempSync(join(tmpdir(), 'health-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('health file', () => {
  it('probes a wildcard bind on loopback and any other address as bound', () => {
    assert.equal(healthUrl('0.0.0.0', 8080), 'http://127.0.0.1:8080/healthz');
    assert.equal(healthUrl('::', 18080), 'http://[::1]:18080/healthz');
    assert.equal(healthUrl('fd00::7', 8081), 'http://[fd00::7]:8081/healthz');
    assert.equal(healthUrl('10.1.2.3', 8081), 'http://10.1.2.3:8081/healthz');
    assert.equal(healthUrl('bridge.local', 80), 'http://bridge.local:80/healthz');
  });

  it('replaces the file whole, leaves no temporary file, and says why it could not write', () => {
    const file = join(dir, 'health');
    assert.equal(writeHealthFile(file, 'http://127.0.0.1:1/healthz'), undefined);
    assert.equal(writeHealthFile(file, 'http://127.0.0.1:2/healthz'), undefined);
    assert.equal(readFileSync(file, 'utf8'), 'http://127.0.0.1:2/healthz\n');
    assert.deepEqual(readdirSync(dir), ['health']);
    removeHealthFile(file);
    assert.ok(!existsSync(file));
    assert.equal(writeHealthFile(join(dir, 'missing', 'health'), 'http://127.0.0.1:3/healthz'), 'ENOENT');
    assert.deepEqual(readdirSync(dir), []);
  });
});
