// `npm ci` (the Dockerfile's install, and the README's) refuses a lock file that lacks an optional
// dependency of a locked package, platform binaries included ("Missing: @biomejs/cli-… from lock
// file"). A registry mirror that lacks some platforms' binaries of a version makes `npm install` write
// such a lock file without a word; this test catches it before a user's `docker build` does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

interface LockPackage {
  version?: string;
  optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
  lockfileVersion: number;
  packages: Record<string, LockPackage>;
};

/** Where npm would resolve `name` from the package at `path` (its own node_modules, then upwards). */
function resolve(path: string, name: string): LockPackage | undefined {
  let base = path;
  for (;;) {
    const found = lock.packages[`${base ? `${base}/` : ''}node_modules/${name}`];
    if (found) return found;
    if (!base) return undefined;
    const at = base.lastIndexOf('node_modules/');
    base = at <= 0 ? '' : base.slice(0, at - 1);
  }
}

describe('package-lock.json', () => {
  it('lists every optional dependency of every locked package, so npm ci accepts it', () => {
    assert.ok(lock.lockfileVersion >= 2);
    const missing: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
        if (!resolve(path, name)) missing.push(`${name} (optional dependency of ${path || 'the project'})`);
      }
    }
    assert.deepEqual(missing, []);
  });
});
