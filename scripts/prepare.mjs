// Runs on `npm install` / `npm ci` in a checkout: compiles src/ to dist/ so the `opencrvs-bridge`
// bin works right after the README's install command. A production install (`npm ci --omit=dev`)
// has no TypeScript compiler; it must ship a prebuilt dist/ (the Dockerfile's build stage does that).

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (!existsSync('src')) process.exit(0); // installed as a dependency from a packed tarball
if (tsc) {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
} else if (!existsSync('dist/cli.js')) {
  console.error('opencrvs-bridge: no TypeScript compiler and no dist/: run `npm ci` (with dev dependencies) first.');
  process.exit(1);
}
