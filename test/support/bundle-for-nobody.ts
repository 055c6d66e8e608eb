// A module of src/ bundled into a temporary folder that any user may read, for tests that run a child as
// nobody (uid 65534) because root reads and writes any file. Such a child cannot be started on the checkout
// through tsx: nobody may not enter the checkout (a CI clone under root's 0700 home: "Cannot find package
// 'tsx'"), nor write tsx's cache under TMPDIR (a runner's own, not /tmp's 1777: EACCES). esbuild is the
// compiler tsx runs on; better-sqlite3 stays a package (its native binding cannot be bundled), copied beside.
import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CHECKOUT } from './checkout.js';

const modules = fileURLToPath(new URL('../../node_modules/', import.meta.url));
const SQLITE_FILES = [
  'better-sqlite3/package.json',
  'better-sqlite3/lib',
  'better-sqlite3/build/Release/better_sqlite3.node',
  'bindings',
  'file-uri-to-path',
];

export interface NobodyBundle {
  /** file: URL of the bundled module, to import() from the child. */
  url: string;
  dir: string;
  remove(): void;
}

/** Bundles `entry` (a path relative to the repository, e.g. 'src/config/index.ts'). */
export async function bundleForNobody(entry: string): Promise<NobodyBundle> {
  const dir = mkdtempSync(join(tmpdir(), 'bundle-for-nobody-'));
  const outfile = join(dir, 'module.mjs');
  const { build } = await import('esbuild');
  await build({
    entryPoints: [join(CHECKOUT, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    external: ['better-sqlite3'],
    logLevel: 'error',
    banner: {
      js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);",
    },
  });
  for (const file of SQLITE_FILES) cpSync(join(modules, file), join(dir, 'node_modules', file), { recursive: true });
  readableByAll(dir);
  return { url: pathToFileURL(outfile).href, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function readableByAll(path: string): void {
  const folder = statSync(path).isDirectory();
  chmodSync(path, folder ? 0o755 : 0o644);
  if (folder) for (const name of readdirSync(path)) readableByAll(join(path, name));
}
