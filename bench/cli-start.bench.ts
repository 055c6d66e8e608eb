// npm run bench:cli-start — what each command costs before it answers: wall time and CPU (user + system) of
// `node bin/opencrvs-bridge.js <command>` on the built dist/ (`npm run build` first), against a ledger of 50
// rows and examples/bridge.yaml's configuration. RUNS=N runs each N times (5). The commands that map nothing (ledger, dismiss,
// write-backs) should stay far below those that compile the mappings (validate, map).
// Median of a few runs: on a shared machine single runs vary by half.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLedger } from '../src/ledger/index.js';
import { eventInput } from '../test/unit/ledger-helpers.js';
import { median } from './helpers/median.js';

const root = fileURLToPath(new URL('../', import.meta.url));
/** CLI_ROOT: another built checkout's root, to compare (e.g. a worktree at the commit before a change). */
const cliRoot = process.env.CLI_ROOT ?? root;
const bin = join(cliRoot, 'bin', 'opencrvs-bridge.js');
const RUNS = Number(process.env.RUNS ?? 5);

if (!existsSync(join(cliRoot, 'dist', 'cli.js'))) {
  console.error('no dist/: run npm run build first');
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'cli-start-'));
const config = join(dir, 'bridge.yaml');
copyFileSync(join(root, 'examples', 'bridge.yaml'), config); // store.path ./bridge.db: beside it
const ledger = openLedger(join(dir, 'bridge.db'));
for (let i = 1; i <= 50; i++) ledger.recordEvent({ ...eventInput(String(i)), sourceId: 'demo-emr' });
ledger.close();
const birth = join(root, 'test', 'fixtures', 'fhir', 'bfdr', 'Bundle-bundle-provider-live-birth-babyg-quinn.json');

const COMMANDS: Array<[string, string[]]> = [
  ['--version', ['--version']],
  // The listing of every command, made without loading them (src/cli.ts, LISTED); `help ledger` loads one.
  ['--help', ['--help']],
  ['help ledger', ['help', 'ledger']],
  ['ledger', ['ledger', '--config', config]],
  ['ledger --find', ['ledger', '--config', config, '--find', 'Patient/3']],
  ['dismiss (a row not dead)', ['dismiss', '3', '--reason', 'bench', '--config', config]],
  ['write-backs', ['write-backs', '--config', config]],
  ['ledger retire-source', ['ledger', 'retire-source', 'gone', '--config', config]],
  ['validate', ['validate', '--config', config]],
  ['map --input', ['map', '--input', birth, '--config', config]],
];

/** One run: wall ms, and the child's own CPU ms, which it writes on fd 3 as it exits. */
async function run(args: string[]): Promise<{ wall: number; cpu: number }> {
  // `node -e` has no script in argv, where main() expects bin's path: put back.
  const entry = `process.argv.splice(1, 0, ${JSON.stringify(bin)}); process.on('exit', () => { const u = process.cpuUsage(); require('node:fs').writeSync(3, String((u.user + u.system) / 1000)); }); import(${JSON.stringify(`file://${bin}`)});`;
  const start = performance.now();
  const child = spawn(process.execPath, ['-e', entry, '--', ...args], {
    cwd: dir,
    env: { ...process.env, BRIDGE_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  let cpu = '';
  child.stdio[3]?.on('data', (chunk: Buffer) => {
    cpu += chunk.toString();
  });
  await once(child, 'close');
  return { wall: performance.now() - start, cpu: Number(cpu) };
}

try {
  console.log(`command                      wall ms (median of ${RUNS})   CPU ms`);
  for (const [name, args] of COMMANDS) {
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { wall, cpu } = await run(args);
      walls.push(wall);
      cpus.push(cpu);
    }
    console.log(`${name.padEnd(28)} ${median(walls).toFixed(0).padStart(8)}   ${median(cpus).toFixed(0).padStart(24)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
