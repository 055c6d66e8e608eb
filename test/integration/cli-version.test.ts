// `opencrvs-bridge --version`: which release runs, for a bug report or an upgrade check, from the package's
// own package.json (the container image's is checked in container-entrypoint.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';

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

  it("after a command, --version is that command's own: sandbox --version 1.9 simulates OpenCRVS 1.9", async () => {
    const child = spawnCli(['sandbox', '--version', '1.9', '--opencrvs-port', '0', '--fhir-port', '0']);
    const run = finished(child, 60_000);
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    for (let waited = 0; !out.includes('Press Ctrl+C') && waited < 40_000; waited += 50) {
      if (child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGTERM');
    const { stdout, stderr } = await run;
    assert.match(stdout, /OpenCRVS simulator \(v1\.9/, stderr);
    assert.doesNotMatch(stdout, new RegExp(`^${pkg.version.replaceAll('.', '\\.')}$`, 'm'));
  });
});
