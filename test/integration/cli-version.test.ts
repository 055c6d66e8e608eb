// `opencrvs-bridge --version`: which release runs, for a bug report or an upgrade check, from the package's
// own package.json (the container image's is checked in container-entrypoint.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runCli } from './helpers/bridge-cli.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('opencrvs-bridge --version', () => {
  it("prints package.json's version and exits 0, as --version or -V", async () => {
    assert.match(pkg.version, /^\d+\.\d+\.\d+/);
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      assert.equal(r.code, 0, `${flag}: ${r.stderr}`);
      assert.equal(r.stdout, `${pkg.version}\n`, flag);
      assert.equal(r.stderr, '');
    }
    const help = await runCli(['--help']);
    assert.match(help.stdout, /-V, --version\s+print the version of opencrvs-bridge and exit/);
  });
});
