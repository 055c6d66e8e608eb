// Compiles src/ and test/ once for a test run, so that the test files (256 processes in a run) and the CLI
// processes they start (hundreds more) load plain JavaScript instead of each paying tsx's hooks on every module
// it imports: Node 20 runs those hooks on a thread of their own and asks it about every module, from
// node_modules too, about 0.4 s of CPU for a file that tests one module, a second for a file that starts the
// bridge. The compiler is esbuild with tsx's own settings, file for file, so a test runs the same code it ran
// under tsx (each file with its source map: a failure's stack names the .ts file and line).
//
// The build is a folder of its own in the checkout (`.test-run-<pid>/`): `src/` and `test/` compiled, and every
// other entry of the checkout (package.json, node_modules, profiles/, mappings/, docs/, test/fixtures, …) linked
// into it, so what a module finds relative to itself is what it finds in the checkout. A test that reads the
// TypeScript sources themselves, or copies the checkout, asks test/support/checkout.ts where the checkout is.
//
// The CLI is also bundled with most of its packages (CLI_BUNDLE), the entry the tests' CLI processes start
// from: finding and loading some 500 CommonJS files of node_modules cost each 0.3-0.4 s of CPU. Every module
// of src/ keeps its place in that bundle: its import.meta.url is its file's URL in the file-for-file build
// beside it, so what it finds relative to itself (package.json, profiles/, mappings/, a worker's module) is
// what it finds there. The packages that read files beside their own, or are native, stay outside.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const PREFIX = '.test-run-';
/** The bundled CLI, in the build's src/: test/support/child-source.ts names the same. */
export const CLI_BUNDLE = join('.bundle', 'cli.js');
/** Packages that read files beside their own (pino's and node-cron's workers, medplum's definitions), or native. */
const EXTERNAL = ['better-sqlite3', 'pino', 'node-cron', '@medplum/*', 'tsx', 'esbuild'];
/** Compiled, not linked: the rest of the checkout is linked as it is. */
const COMPILED = ['src', 'test'];

/**
 * Builds src/ and test/ under `root` into a folder of this process's own; returns its absolute path (its
 * `src/` is what test/support/child-source.ts starts children from, its `test/` holds the test files).
 */
export async function buildTestRun(root) {
  removeLeftovers(root);
  const out = join(root, `${PREFIX}${process.pid}`);
  mkdirSync(out);
  for (const name of readdirSync(root)) {
    if (name === '.git' || name.startsWith(PREFIX) || COMPILED.includes(name)) continue;
    symlinkSync(join(root, name), join(out, name));
  }
  const { build } = await import('esbuild');
  const common = {
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node}`,
    keepNames: true,
    logLevel: 'error',
  };
  for (const name of COMPILED) {
    const entryPoints = mirror(join(root, name), join(out, name));
    await build({ ...common, entryPoints, outdir: join(out, name), outbase: join(root, name), sourcemap: 'inline' });
  }
  const src = join(root, 'src');
  await build({
    ...common,
    entryPoints: [join(src, 'cli.ts')],
    outdir: join(out, 'src', dirname(CLI_BUNDLE)),
    bundle: true,
    splitting: true,
    external: EXTERNAL,
    // CommonJS modules in an ES module bundle require Node's own modules through `require`.
    banner: {
      js: "import { createRequire as __testBuildRequire } from 'node:module'; const require = __testBuildRequire(import.meta.url);",
    },
    plugins: [ownPlace(src, join(out, 'src'))],
  });
  return out;
}

/**
 * Makes `to` the compiled image of folder `from`: its folders made, a folder without TypeScript below it
 * (test/fixtures) and every other file linked; returns the TypeScript files to compile.
 */
function mirror(from, to) {
  mkdirSync(to, { recursive: true });
  const sources = [];
  for (const name of readdirSync(from)) {
    const path = join(from, name);
    if (statSync(path).isDirectory()) {
      if (holdsTypeScript(path)) sources.push(...mirror(path, join(to, name)));
      else symlinkSync(path, join(to, name));
    } else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) sources.push(path);
    else symlinkSync(path, join(to, name));
  }
  return sources;
}

function holdsTypeScript(dir) {
  return readdirSync(dir, { recursive: true }).some((name) => String(name).endsWith('.ts'));
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
