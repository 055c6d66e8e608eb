// `opencrvs-bridge --version`: which release runs, for a bug report or an upgrade check, from the package's
// own package.json (the container image's is checked in container-entrypoint.test.ts).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
/** The newest ledger migration's number, from the file names (NNN-name.ts). */
const schema = Math.max(
  ...readdirSync(new URL('../../src/ledger/migrations/', import.meta.url))
    .map((file) => /^(\d{3})-/.exec(file)?.[1])
    .filter((n) => n !== undefined)
    .map(Number),
);

describe('opencrvs-bridge --version', () => {
  it("prints package.json's version and the ledger schema it writes, and exits 0, as --version or -V", async () => {
    assert.match(pkg.version, /^\d+\.\d+\.\d+/);
    assert.ok(schema >= 26, `ledger schema ${schema}`);
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      assert.equal(r.code, 0, `${flag}: ${r.stderr}`);
      // A checkout has no BUILD_COMMIT (the image's SOURCE_COMMIT build argument writes one): no commit.
      assert.equal(r.stdout, `${pkg.version} (ledger schema ${schema})\n`, flag);
      assert.equal(r.stderr, '');
    }
    const help = await runCli(['--help']);
    assert.match(help.stdout, /-V, --version\s+print the version, ledger schema and commit\n/);
  });

  it("after a command, --version is that command's own: sandbox --version 1.9 simulates OpenCRVS 1.9", async () => {
    // Every port a free one: the default DHIS2 simulator port may be taken by another sandbox on the machine.
    const ports = ['--opencrvs-port', '0', '--fhir-port', '0', '--dhis2-port', '0'];
    const child = spawnCli(['sandbox', '--version', '1.9', ...ports]);
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

// README's synopsis is what a first-time user runs: an option there that `--help` does not list fails at
// once, and one left out (the simulated OpenCRVS version, the DHIS2 demo counts) is never found.
describe("README's sandbox synopsis", () => {
  it('names only options that sandbox --help lists, the OpenCRVS version and the DHIS2 demo counts among them', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('opencrvs-bridge sandbox ');
    assert.ok(start >= 0, 'README has a sandbox synopsis');
    // The entry runs to the next command's line.
    const entry = readme.slice(start, readme.indexOf('\nopencrvs-bridge ', start));
    const named = new Set([...entry.matchAll(/\[(--[a-z0-9-]+)/g)].map((m) => m[1]));
    const help = await runCli(['sandbox', '--help']);
    assert.equal(help.code, 0, help.stderr);
    const listed = new Set([...help.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z0-9-]+)/gm)].map((m) => m[1]));
    assert.deepEqual(
      [...named].filter((option) => !listed.has(option)),
      [],
      'in README, not in --help',
    );
    for (const option of ['--version', '--opencrvs-port', '--dhis2-births', '--dhis2-deaths'])
      assert.ok(named.has(option), `README names ${option}`);
  });
});
