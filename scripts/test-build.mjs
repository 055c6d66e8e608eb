// Compiles src/ once for a test run, so that the CLI processes tests start (hundreds in a run) load plain
// JavaScript instead of each paying tsx's hooks on every module it imports: about a second a process on a
// two-core runner. The compiler is esbuild with tsx's own settings, file for file (no bundle), so a child
// runs the same code it ran under tsx, and in the layout of dist/ (a folder beside src/: `../package.json`,
// the mappings and node_modules resolve as they do there).
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const PREFIX = '.test-src-';

/** Builds src/ under `root` into a folder of this process's own; returns its absolute path. */
export async function buildSrc(root) {
  removeLeftovers(root);
  const out = join(root, `${PREFIX}${process.pid}`);
  const src = join(root, 'src');
  const entryPoints = readdirSync(src, { recursive: true })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(src, name));
  const { build } = await import('esbuild');
  await build({
    entryPoints,
    outdir: out,
    outbase: src,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node}`,
    keepNames: true,
    logLevel: 'error',
  });
  return out;
}

export function removeBuild(out) {
  rmSync(out, { recursive: true, force: true });
}

/** Folders of earlier runs that were killed before they removed theirs (their process is gone). */
function removeLeftovers(root) {
  for (const name of readdirSync(root)) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length));
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    rmSync(join(root, name), { recursive: true, force: true });
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
