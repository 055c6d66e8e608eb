// Compiles src/ once for a test run, so that the CLI processes tests start (hundreds in a run) load plain
// JavaScript instead of each paying tsx's hooks on every module it imports: about a second a process on a
// two-core runner. The compiler is esbuild with tsx's own settings, file for file, so a child runs the same
// code it ran under tsx, and in the layout of dist/ (a folder beside src/: `../package.json`, the mappings
// and node_modules resolve as they do there).
//
// The CLI is also bundled with most of its packages (CLI_BUNDLE), the entry the tests' CLI processes start
// from: finding and loading some 500 CommonJS files of node_modules cost each 0.3-0.4 s of CPU. Every module
// of src/ keeps its place in that bundle: its import.meta.url is its file's URL in the file-for-file build
// beside it, so what it finds relative to itself (package.json, profiles/, mappings/, a worker's module) is
// what it finds there. The packages that read files beside their own, or are native, stay outside.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const PREFIX = '.test-src-';
/** The bundled CLI, in the build: test/support/child-source.ts names the same. */
export const CLI_BUNDLE = join('.bundle', 'cli.js');
/** Packages that read files beside their own (pino's and node-cron's workers, medplum's definitions), or native. */
const EXTERNAL = ['better-sqlite3', 'pino', 'node-cron', '@medplum/*', 'tsx', 'esbuild'];

/** Builds src/ under `root` into a folder of this process's own; returns its absolute path. */
export async function buildSrc(root) {
  removeLeftovers(root);
  const out = join(root, `${PREFIX}${process.pid}`);
  const src = join(root, 'src');
  const entryPoints = readdirSync(src, { recursive: true })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(src, name));
  const { build } = await import('esbuild');
  const common = {
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node}`,
    keepNames: true,
    logLevel: 'error',
  };
  await build({ ...common, entryPoints, outdir: out, outbase: src });
  await build({
    ...common,
    entryPoints: [join(src, 'cli.ts')],
    outdir: join(out, dirname(CLI_BUNDLE)),
    bundle: true,
    splitting: true,
    external: EXTERNAL,
    // CommonJS modules in an ES module bundle require Node's own modules through `require`.
    banner: {
      js: "import { createRequire as __testBuildRequire } from 'node:module'; const require = __testBuildRequire(import.meta.url);",
    },
    plugins: [ownPlace(src, out)],
  });
  return out;
}

/** Each src/ module's import.meta.url in the bundle: its file in the file-for-file build. */
function ownPlace(src, out) {
  return {
    name: 'own-place',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (!args.path.startsWith(src)) return undefined;
        const url = pathToFileURL(join(out, relative(src, args.path).replace(/\.ts$/, '.js'))).href;
        const text = readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(url));
        return { contents: text, loader: 'ts' };
      });
    },
  };
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

/** Whether a process of that pid runs (one of another user's too: EPERM). */
export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
