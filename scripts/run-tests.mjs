// Runs node's built-in test runner over TypeScript test files (through tsx), so `npm test`
// needs no glob support from the shell. Usage: node scripts/run-tests.mjs [dir-or-file …]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSrc, removeBuild } from './test-build.mjs';

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['test']).flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// src/ compiled once for the CLI processes the tests start (scripts/test-build.mjs; test/support/child-source.ts).
const built = await buildSrc(fileURLToPath(new URL('..', import.meta.url)));
// A file's whole run is bounded (a hang must not take CI's 90 minutes), at ten minutes: the longest files take
// about three on a quiet two-core machine, and went past five on a loaded one.
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', '--test-reporter=spec', ...files],
  {
    stdio: 'inherit',
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL?.trim() || 'silent', BRIDGE_TEST_SRC: built },
  },
);
removeBuild(built);
process.exit(result.status ?? 1);
