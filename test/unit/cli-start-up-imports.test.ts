// The commands that map no record (the ledger's readers and the operator actions on it) load neither the
// mapping compiler nor the source clients nor Ajv (the configuration's validator is compiled ahead):
// FHIRPath, Ajv and its formats, undici, express and medplum cost an operator asking "did this one
// arrive?" half a second of CPU before anything ran, and every such child of the test suite as much. Read off the modules' static imports, which is what
// a command loads before its action runs (a dynamic import() is loaded only when it is reached).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { build, type Metafile } from 'esbuild';
import { CHECKOUT } from '../support/checkout.js';

const root = CHECKOUT;

/** Packages, and modules of src/, that only mapping, serving or calling a source needs. */
const HEAVY = [
  /^fhirpath(\/|$)/,
  // Ajv itself: the configuration's validator is compiled ahead (its runtime helpers are all it imports).
  /^ajv$/,
  /^ajv-formats(\/|$)/,
  /^undici(\/|$)/,
  /^express(\/|$)/,
  /^fhir-kit-client(\/|$)/,
  /^@medplum\//,
  /^prom-client(\/|$)/,
  /^src\/mapping\/compile\.ts$/,
  /^src\/app\.ts$/,
];

/** Every module and package `entry` (a path under src/) loads through static imports. */
async function staticImports(entry: string): Promise<Set<string>> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
  });
  const inputs: Metafile['inputs'] = result.metafile.inputs;
  const seen = new Set<string>([entry]);
  const queue = [entry];
  for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
    for (const imported of inputs[path]?.imports ?? []) {
      if (imported.kind !== 'import-statement' || seen.has(imported.path)) continue;
      seen.add(imported.path);
      if (!imported.external) queue.push(imported.path);
    }
  }
  return seen;
}

describe('what a command that maps nothing loads at start', () => {
  for (const command of ['ledger', 'ledger-sources', 'dismiss', 'write-backs']) {
    it(`${command}: no mapping compiler, no source client`, async () => {
      const loaded = [...(await staticImports(`src/commands/${command}.ts`))];
      const heavy = loaded.filter((path) => HEAVY.some((pattern) => pattern.test(path)));
      assert.deepEqual(heavy, []);
    });
  }

  it('the program itself: commands are imported only when named (src/cli.ts)', async () => {
    const loaded = [...(await staticImports('src/cli.ts'))];
    assert.deepEqual(
      loaded.filter((path) => path.startsWith('src/commands/') || HEAVY.some((pattern) => pattern.test(path))),
      [],
    );
  });

  for (const command of ['sync', 'replay']) {
    it(`${command}: no express (it opens no listener; serve's are loaded as they open)`, async () => {
      const loaded = [...(await staticImports(`src/commands/${command}.ts`))];
      assert.deepEqual(
        loaded.filter((path) => /^express(\/|$)/.test(path)),
        [],
      );
    });
  }

  it('map still loads the compiler (a command that maps compiles everything before it starts)', async () => {
    const loaded = await staticImports('src/commands/map.ts');
    assert.ok(loaded.has('src/mapping/compile.ts'));
    assert.ok([...loaded].some((path) => path.startsWith('fhirpath')));
  });
});
