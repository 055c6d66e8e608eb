// How a test starts a child process on src/ or on a helper of its own. scripts/run-tests.mjs compiles src/
// and test/ once per run (scripts/test-build.mjs) and names the build's src/ in BRIDGE_TEST_SRC: a child
// imports that JavaScript without tsx's hooks, a second or so less a process. Run without it
// (`node --import tsx --test <file>`), a child runs the TypeScript through tsx as before.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = process.env.BRIDGE_TEST_SRC?.trim();
/** tsx as this checkout has it: `--import tsx` alone is looked up from the child's working directory. */
const TSX = import.meta.resolve('tsx');

/** The node flags a child needs before it imports childModule(): tsx's loader, without a prebuilt src/. */
export const CHILD_NODE_FLAGS: readonly string[] = built ? [] : ['--import', TSX];

/**
 * file: URL of src/`path` (e.g. 'cli.ts') as a child imports it. The CLI's is its bundle in the build
 * (CLI_BUNDLE of scripts/test-build.mjs): the same modules, loaded in a third less CPU.
 */
export function childModule(path: string): string {
  if (!built) return new URL(`../../src/${path}`, import.meta.url).href;
  if (path === 'cli.ts') return pathToFileURL(join(built, '.bundle', 'cli.js')).href;
  return pathToFileURL(join(built, path.replace(/\.ts$/, '.js'))).href;
}

/** Whether the tests run compiled (this module is then JavaScript in the build, beside the test files). */
const compiledTests = import.meta.url.endsWith('.js');

/**
 * How to start a test's own helper module (`url`, its .ts file beside the caller, e.g.
 * `new URL('./helpers/worker-child.ts', import.meta.url)`) as a child: the node flags and the file to run,
 * the compiled helper in a compiled run, the TypeScript through tsx otherwise.
 */
export function testChild(url: URL): { flags: readonly string[]; file: string } {
  const file = fileURLToPath(url);
  return compiledTests ? { flags: [], file: file.replace(/\.ts$/, '.js') } : { flags: ['--import', TSX], file };
}
