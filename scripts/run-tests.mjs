// Runs node's built-in test runner over the TypeScript test files, compiled ahead (scripts/test-build.mjs),
// so `npm test` needs no glob support from the shell. Usage: node scripts/run-tests.mjs [dir-or-file …]
// A single file also runs as it is, through tsx: `node --import tsx --test test/unit/x.test.ts`.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, buildTestRun, removeBuild } from './test-build.mjs';

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
/** statfs's type of a tmpfs (linux/magic.h). */
const TMPFS = 0x01021994;
const SCRATCH_PREFIX = 'opencrvs-bridge-tests-';

/**
 * A folder in RAM for the files the tests throw away (os.tmpdir(): ledgers, configurations, secret files),
 * when TMPDIR names none and /dev/shm is a tmpfs with a gigabyte free; else undefined (the system's own).
 * A new ledger commits each of its 30-odd migrations to disk in turn (synchronous=FULL): 0.1-0.3 s of
 * waiting a ledger on a busy disk, and a run creates hundreds. No test rests on a write reaching the disk
 * (a crash test kills the process, not the machine), so none proves less there. World-writable and sticky
 * like /tmp: a test's child running as another user (test/support/bundle-for-nobody.ts) makes its own
 * folders in it.
 */
function scratchDir() {
  if (process.env.TMPDIR?.trim()) return undefined;
  const shm = '/dev/shm';
  try {
    const fs = statfsSync(shm);
    if (fs.type !== TMPFS || fs.bavail * fs.bsize < 2 ** 30) return undefined;
    for (const name of readdirSync(shm)) {
      const pid = Number(name.slice(SCRATCH_PREFIX.length));
      // Another run's, left by a run killed before its end: its pid gone and a day old, since /dev/shm may be
      // shared with runs in other PID namespaces (containers), whose live pids are not seen from here.
      const left = name.startsWith(SCRATCH_PREFIX) && Number.isInteger(pid) && pid > 0 && !alive(pid);
      if (left && Date.now() - statSync(join(shm, name)).mtimeMs > 86_400_000) {
        rmSync(join(shm, name), { recursive: true, force: true });
      }
    }
    const dir = join(shm, `${SCRATCH_PREFIX}${process.pid}`);
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    return dir;
  } catch {
    return undefined;
  }
}

const root = fileURLToPath(new URL('..', import.meta.url));
// Each test file's place in the build: the same path below it, .js for .ts.
const inCheckout = files.map((file) => {
  const path = relative(root, resolve(file));
  if (path === '..' || path.startsWith(`..${sep}`) || isAbsolute(path)) {
    console.error(`${file} is not in this checkout (${root})`);
    process.exit(1);
  }
  return path.replace(/\.ts$/, '.js');
});
const built = await buildTestRun(root);
const scratch = scratchDir();
// A file's whole run is bounded (a hang must not take CI's 90 minutes), at ten minutes: the longest files take
// about three on a quiet two-core machine, and went past five on a loaded one. Source maps: tsx turned them on,
// a failure's stack names the .ts file and line.
const result = spawnSync(
  process.execPath,
  [
    '--enable-source-maps',
    '--test',
    '--test-concurrency=2',
    '--test-timeout=600000',
    '--test-reporter=spec',
    ...inCheckout.map((path) => join(built, path)),
  ],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      LOG_LEVEL: process.env.LOG_LEVEL?.trim() || 'silent',
      // Where the children the tests start load src/ from (test/support/child-source.ts), and where the
      // checkout is for a test that reads its TypeScript or copies it (test/support/checkout.ts).
      BRIDGE_TEST_SRC: join(built, 'src'),
      BRIDGE_TEST_CHECKOUT: root,
      ...(scratch ? { TMPDIR: scratch } : {}),
    },
  },
);
removeBuild(built);
if (scratch) rmSync(scratch, { recursive: true, force: true });
process.exit(result.status ?? 1);
