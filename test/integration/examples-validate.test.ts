// Every configuration shipped in examples/ passes `validate` as an operator would run it: a copied example
// that does not load is the first thing a new site meets. Secret files named under /run/secrets (the
// container's) are given in a folder of their own, with generated values.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from './helpers/bridge-cli.js';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'examples-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('examples/*.yaml', () => {
  const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));

  it('includes a production-shaped one: every address, the /data volume, secrets in files', () => {
    assert.ok(files.includes('production.yaml'), files.join(', '));
    const text = readFileSync(join(examples, 'production.yaml'), 'utf8');
    assert.match(text, /^http:\n(?: {2}#.*\n)* {2}host: 0\.0\.0\.0\n {2}port: 8080$/m);
    assert.match(text, /^ {2}path: \/data\/bridge\.db$/m);
    assert.doesNotMatch(text, /^\s*(?:clientSecret|password|token|secret): /m, 'no secret written inline');
    // Each `docker run` in the header mounts serve's ledger volume: doctor on an empty one checks nothing.
    const runs = text.match(/^# {3}docker run (?:.*\\\n)*.*$/gm) ?? [];
    assert.equal(runs.length, 2, runs.join('\n'));
    for (const run of runs) assert.match(run, /-v opencrvs-bridge-data:\/data /, run);
    // The image's uid 1000 must enter the secrets folder: root's 0700 keeps it out of every file.
    assert.match(text, /^# {3}mkdir -p secrets && chown 1000 secrets /m);
  });

  for (const name of files) {
    it(`${name} passes validate`, async () => {
      const secrets = join(dir, `${name}-secrets`);
      mkdirSync(secrets);
      const text = readFileSync(join(examples, name), 'utf8').replace(/\/run\/secrets\/([\w.-]+)/g, (_, file) => {
        writeFileSync(join(secrets, file), `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
        return join(secrets, file);
      });
      const file = join(dir, name);
      writeFileSync(file, text);
      const r = await runCli(['validate', '--config', file], { BRIDGE_ADMIN_TOKEN: 'x'.repeat(32) }, 60_000);
      assert.equal(r.code, 0, r.stderr || r.stdout);
      assert.match(r.stdout, /^ok {4}configuration /m);
    });
  }
});
