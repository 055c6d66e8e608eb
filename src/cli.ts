// First: it turns off the debug output of libraries before they load (see the module).
import './observability/debug-guard.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerDemo } from './commands/demo.js';
import { registerDismiss } from './commands/dismiss.js';
import { registerDoctor } from './commands/doctor.js';
import { registerLedger } from './commands/ledger.js';
import { registerMap } from './commands/map.js';
import { registerReplay } from './commands/replay.js';
import { registerSandbox } from './commands/sandbox.js';
import { registerServe } from './commands/serve.js';
import { registerSubscriptions } from './commands/subscriptions.js';
import { registerSync } from './commands/sync.js';
import { registerValidate } from './commands/validate.js';
import { registerWriteBacks } from './commands/write-backs.js';
import { MIGRATIONS } from './ledger/migrations/index.js';
import { installCrashHandlers } from './observability/crash.js';
import { nodeDebugVerdict } from './observability/node-debug.js';

export { errorLine } from './observability/crash.js';

/**
 * The package's version, from its package.json: one directory up from this module both in a checkout
 * (src/cli.ts) and once built (dist/cli.js; /app/dist/cli.js beside /app/package.json in the image).
 * Never a reason for a command to fail: without a readable one, `--version` says so.
 */
export function packageVersion(): string {
  try {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    if (typeof version === 'string') return version;
  } catch {
    // said below
  }
  return 'unknown (no readable package.json above the CLI module)';
}

/**
 * What `--version` prints, on one line: the package's version, which stays 0.1.0 from build to build, so also
 * the ledger schema this build migrates a ledger to (an image with a higher one migrates it, and an older
 * bridge then refuses it: CHANGELOG.md, docs/deployment.md §7), and the source commit when the build recorded
 * one in BUILD_COMMIT beside package.json (the image's SOURCE_COMMIT build argument; a checkout or a tarball
 * has none, and says nothing of it).
 */
export function versionText(): string {
  const schema = Math.max(...MIGRATIONS.map((m) => m.version));
  const commit = buildCommit();
  return `${packageVersion()} (ledger schema ${schema}${commit ? `, commit ${commit}` : ''})`;
}

function buildCommit(): string | undefined {
  try {
    const text = readFileSync(new URL('../BUILD_COMMIT', import.meta.url), 'utf8').trim();
    return /^[0-9a-f]{7,40}$/i.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Builds the command line. Each command lives in src/commands/<name>.ts and sets `process.exitCode`. */
export function buildProgram(): Command {
  const program = new Command('opencrvs-bridge')
    .description(
      'Delivers births and deaths from hospital systems (FHIR R4, DHIS2) to OpenCRVS exactly once.\n' +
        'Configuration: --config FILE or the BRIDGE_CONFIG environment variable.',
    )
    .version(versionText(), '-V, --version', 'print the version, ledger schema and commit')
    // Program options only before a command: `sandbox --version 1.9` is the sandbox's own option (the
    // OpenCRVS version simulated), not a request for this program's version.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  for (const register of [
    registerServe,
    registerSync,
    registerMap,
    registerValidate,
    registerDoctor,
    registerSubscriptions,
    registerLedger,
    registerReplay,
    registerDismiss,
    registerWriteBacks,
    registerSandbox,
    registerDemo,
  ]) {
    register(program);
  }
  return program;
}

/** The commands that call OpenCRVS or a source (and read their secrets): what NODE_DEBUG would show. */
const CALLING_OUT = new Set(['serve', 'sync', 'replay', 'doctor', 'subscriptions']);

/** Whether `command` calls out: those above, and `map --ref`, which reads the record at its source. */
function callsOut(command: { name(): string; opts(): Record<string, unknown> }): boolean {
  return CALLING_OUT.has(command.name()) || (command.name() === 'map' && command.opts().ref !== undefined);
}

/** Thrown by the pre-action check to end main() with exit code 2, the line already said. */
class RefusedToStart extends Error {}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  installCrashHandlers();
  exitOnSignalsNobodyHandles();
  const program = buildProgram();
  // Before a command's action runs (help and usage errors are not refused): see node-debug.ts.
  program.hook('preAction', (_program, action) => {
    let command = action;
    while (command.parent && command.parent !== program) command = command.parent;
    if (!callsOut(command)) return;
    const verdict = nodeDebugVerdict(command.name(), process.env);
    if (!verdict) return;
    if ('warning' in verdict) {
      console.error(verdict.warning);
      return;
    }
    console.error(verdict.refusal);
    throw new RefusedToStart(verdict.refusal);
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof RefusedToStart) return 2;
    // Commander exits 1 on a usage error (an unknown or missing option), which a scheduler would read as
    // "something is dead": usage errors are 2, like a bad configuration. Help and version stay 0.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

/**
 * SIGINT and SIGTERM end every command. As PID 1 (a container) a signal with no handler is dropped, so a
 * command other than serve, sync and demo (which drain deliveries on their own handlers: listenForSignals)
 * ignored Ctrl-C and `docker stop` until its calls timed out. Exits the way a shell reports a signal
 * (128 + its number), unless a command's own handler is listening.
 */
let signalsHandled = false;
function exitOnSignalsNobodyHandles(): void {
  if (signalsHandled) return; // main() run twice in one process
  signalsHandled = true;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      if (process.listenerCount(signal) === 1) process.exit(code);
    });
  }
}
