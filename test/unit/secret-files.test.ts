// A `…File` secret follows its file (src/config/secret-files.ts): looked at every 30 s on the way of a
// call and at once after a refusal; a file that cannot be used keeps the last good value, said once and
// without the secret; an inbound secret's previous value is accepted for 5 minutes after a rotation.
import assert from 'node:assert/strict';
import {
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { PREVIOUS_SECRET_ACCEPTED_MS, SECRET_FILE_CHECK_MS, secretOf } from '../../src/config/secret-files.js';
import { createLogger } from '../../src/observability/logger.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bridge-secret-files-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A config whose OpenCRVS client secret comes from `file`; the secret as the client would follow it. */
function followed(file: string, clock: { now: number }, logged?: string[]) {
  const config = loadConfig({
    text: `opencrvs:\n  domain: farajaland.example.org\n  clientId: bridge\n  clientSecretFile: ${file}\n`,
  });
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logged?.push(String(chunk));
      done();
    },
  });
  const secret = secretOf(config.opencrvs, 'clientSecret', {
    logger: createLogger({ level: 'debug', destination }),
    now: () => clock.now,
  });
  assert.ok(secret);
  return secret;
}

describe('secret files followed while the bridge runs', () => {
  it('looks at the file every 30 s on the way of a call, and at once after a refusal', () => {
    const file = join(dir, 'periodic');
    writeFileSync(file, 'first-secret-1\n');
    const clock = { now: 1_000_000 };
    const secret = followed(file, clock);
    assert.equal(secret.current(), 'first-secret-1');
    writeFileSync(`${file}.new`, 'second-secret-2\n');
    renameSync(`${file}.new`, file);
    clock.now += SECRET_FILE_CHECK_MS - 1;
    assert.equal(secret.current(), 'first-secret-1', 'not looked at before 30 s');
    clock.now += 1;
    assert.equal(secret.current(), 'second-secret-2');

    writeFileSync(`${file}.new`, 'third-secret-3\n');
    renameSync(`${file}.new`, file);
    assert.equal(secret.refresh(), true, 'a refusal looks at once');
    assert.equal(secret.current(), 'third-secret-3');
    writeFileSync(`${file}.new`, 'fourth-secret-4\n');
    renameSync(`${file}.new`, file);
    assert.equal(secret.refresh(), false, 'not again within 250 ms');
    clock.now += 250;
    assert.equal(secret.refresh(), true);
    assert.equal(secret.current(), 'fourth-secret-4');
    assert.equal(secret.refresh(), false, 'nothing new');
  });

  it('follows a Kubernetes secret volume, whose ..data symlink moves to a new folder', () => {
    const volume = join(dir, 'volume');
    mkdirSync(join(volume, '..2024_01'), { recursive: true });
    mkdirSync(join(volume, '..2024_02'));
    writeFileSync(join(volume, '..2024_01', 'secret'), 'kube-secret-one');
    writeFileSync(join(volume, '..2024_02', 'secret'), 'kube-secret-two');
    symlinkSync('..2024_01', join(volume, '..data'));
    symlinkSync(join('..data', 'secret'), join(volume, 'secret'));
    const clock = { now: 0 };
    const secret = followed(join(volume, 'secret'), clock);
    assert.equal(secret.current(), 'kube-secret-one');
    // The kubelet's atomic swap: a new link renamed over ..data.
    symlinkSync('..2024_02', join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    assert.equal(secret.refresh(), true);
    assert.equal(secret.current(), 'kube-secret-two');
  });

  it('keeps the last good value when the file is gone, empty or holds two lines; says so once, without the secret', () => {
    const file = join(dir, 'broken');
    writeFileSync(file, 'good-secret-value\n');
    const clock = { now: 0 };
    const logged: string[] = [];
    const secret = followed(file, clock, logged);
    unlinkSync(file);
    clock.now += SECRET_FILE_CHECK_MS;
    assert.equal(secret.current(), 'good-secret-value');
    clock.now += SECRET_FILE_CHECK_MS;
    assert.equal(secret.current(), 'good-secret-value');
    writeFileSync(file, '');
    clock.now += 1000;
    assert.equal(secret.refresh(), false);
    writeFileSync(file, 'two\nlines-of-secret\n');
    clock.now += 1000;
    assert.equal(secret.refresh(), false);
    assert.equal(secret.current(), 'good-secret-value');
    const warnings = logged.filter((line) => line.includes('"level":"warn"'));
    assert.equal(warnings.length, 1, logged.join(''));
    assert.match(warnings[0] ?? '', /opencrvs\.clientSecretFile/);
    assert.match(warnings[0] ?? '', /ENOENT/);

    writeFileSync(file, 'repaired-secret-value\n');
    clock.now += 1000;
    assert.equal(secret.refresh(), true);
    assert.equal(secret.current(), 'repaired-secret-value');
    for (const line of logged)
      for (const value of ['good-secret-value', 'lines-of-secret', 'repaired-secret-value'])
        assert.ok(!line.includes(value), `logged: ${line}`);
  });

  it('accepts the value it replaced for 5 minutes', () => {
    const file = join(dir, 'inbound');
    writeFileSync(file, 'inbound-old-secret');
    const clock = { now: 0 };
    const secret = followed(file, clock);
    assert.deepEqual(secret.accepted(), ['inbound-old-secret']);
    writeFileSync(file, 'inbound-new-secret');
    clock.now += 1000;
    assert.equal(secret.refresh(), true);
    assert.deepEqual(secret.accepted(), ['inbound-new-secret', 'inbound-old-secret']);
    clock.now += PREVIOUS_SECRET_ACCEPTED_MS - 1;
    assert.deepEqual(secret.accepted(), ['inbound-new-secret', 'inbound-old-secret']);
    clock.now += 1;
    assert.deepEqual(secret.accepted(), ['inbound-new-secret']);
  });

  it('counts the 5 minutes from when the file changed, not from when the change was noticed', () => {
    const file = join(dir, 'inbound-noticed-late');
    writeFileSync(file, 'leaked-old-admin-token');
    const clock = { now: Date.now() };
    const secret = followed(file, clock);
    assert.deepEqual(secret.accepted(), ['leaked-old-admin-token']);
    // Rotated an hour ago; nothing used the secret since, so this process looks only now.
    writeFileSync(file, 'rotated-admin-token');
    const anHourAgo = (clock.now - 3_600_000) / 1000;
    utimesSync(file, anHourAgo, anHourAgo);
    clock.now += SECRET_FILE_CHECK_MS;
    assert.deepEqual(secret.accepted(), ['rotated-admin-token'], 'the old token is not let in again');
  });

  it('sets the end of the overlap when it reads the new value: a later touch of the file, the value unchanged, moves it neither way', () => {
    const file = join(dir, 'inbound-touched');
    writeFileSync(file, 'inbound-old-secret');
    const clock = { now: Date.now() };
    const secret = followed(file, clock);
    writeFileSync(file, 'inbound-new-secret');
    const changed = statSync(file).mtimeMs;
    clock.now = changed + 1000;
    assert.equal(secret.refresh(), true);
    const both = ['inbound-new-secret', 'inbound-old-secret'];
    assert.deepEqual(secret.accepted(), both);
    // The file's time moved back 10 minutes, then forward an hour: the same value, so no new overlap.
    for (const moved of [changed - 600_000, changed + 3_600_000]) {
      utimesSync(file, moved / 1000, moved / 1000);
      clock.now += 250;
      assert.equal(secret.refresh(), false, 'no new value');
      assert.deepEqual(secret.accepted(), both);
    }
    clock.now = changed + PREVIOUS_SECRET_ACCEPTED_MS - 1;
    assert.deepEqual(secret.accepted(), both);
    clock.now += 1;
    assert.deepEqual(secret.accepted(), ['inbound-new-secret'], '5 minutes after the change it read');
  });

  it('does not read a file far larger than a secret', () => {
    const file = join(dir, 'huge');
    writeFileSync(file, 'small-secret-value');
    const clock = { now: 0 };
    const logged: string[] = [];
    const secret = followed(file, clock, logged);
    writeFileSync(file, 'x'.repeat(70_000));
    clock.now += 1000;
    assert.equal(secret.refresh(), false);
    assert.equal(secret.current(), 'small-secret-value');
    assert.ok(logged.some((line) => line.includes('larger than 65536 bytes')));
  });

  it('an inline secret stays as configured', () => {
    const config = loadConfig({
      text: 'opencrvs:\n  domain: farajaland.example.org\n  clientId: bridge\n  clientSecret: inline-secret\n',
    });
    const secret = secretOf(config.opencrvs, 'clientSecret');
    assert.equal(secret?.current(), 'inline-secret');
    assert.equal(secret?.refresh(), false);
  });

  it('an inbound secret (trim) is taken without its surrounding spaces, configured and rotated; another as written', () => {
    const file = join(dir, 'admin-token-spaced');
    writeFileSync(file, '  admin-token-first-0123456789 \n');
    const config = loadConfig({
      text: `opencrvs:\n  domain: farajaland.example.org\n  clientId: bridge\n  clientSecret: "  outbound-secret "\nadmin:\n  tokenFile: ${file}\n`,
    });
    const clock = { now: 0 };
    const token = secretOf(config.admin, 'token', { trim: true, now: () => clock.now });
    assert.deepEqual(token?.accepted(), ['admin-token-first-0123456789']);
    writeFileSync(file, 'admin-token-second-9876543210\t \n');
    clock.now += 1000;
    assert.equal(token?.refresh(), true);
    assert.deepEqual(token?.accepted(), ['admin-token-second-9876543210', 'admin-token-first-0123456789']);
    // Spaces added around the same secret are no rotation.
    writeFileSync(file, ' admin-token-second-9876543210\n');
    clock.now += 1000;
    assert.equal(token?.refresh(), false);
    // Without `trim` (an outbound secret, an HMAC key), the value is used as written.
    assert.equal(secretOf(config.opencrvs, 'clientSecret')?.current(), '  outbound-secret ');
  });
});
