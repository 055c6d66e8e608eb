// First: it turns off the debug output of libraries before they load (see the module).
import './observability/debug-guard.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
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

/**
 * Each command, in the order `--help` lists them, and where it lives (src/commands/<name>.ts, which sets
 * `process.exitCode`). A command's module brings its whole dependency tree (the sandbox brings medplum's FHIR
 * definitions, everything else the config schema, mappings, ledger…): loading all of them took 1.5-3 s before
 * any command ran, so a command loads only its own (commandsToLoad).
 */
const COMMANDS = {
  serve: async () => (await import('./commands/serve.js')).registerServe,
  sync: async () => (await import('./commands/sync.js')).registerSync,
  map: async () => (await import('./commands/map.js')).registerMap,
  validate: async () => (await import('./commands/validate.js')).registerValidate,
  doctor: async () => (await import('./commands/doctor.js')).registerDoctor,
  subscriptions: async () => (await import('./commands/subscriptions.js')).registerSubscriptions,
  ledger: async () => (await import('./commands/ledger.js')).registerLedger,
  replay: async () => (await import('./commands/replay.js')).registerReplay,
  dismiss: async () => (await import('./commands/dismiss.js')).registerDismiss,
  'write-backs': async () => (await import('./commands/write-backs.js')).registerWriteBacks,
  sandbox: async () => (await import('./commands/sandbox.js')).registerSandbox,
  demo: async () => (await import('./commands/demo.js')).registerDemo,
} satisfies Record<string, () => Promise<(program: Command) => void>>;
type CommandName = keyof typeof COMMANDS;

/**
 * What the program's `--help` says of each command: one line (the command's own `--help` gives its whole
 * description: sync's, with its exit statuses, is twenty lines), and the arguments it takes. The listing is
 * made from these alone, without loading the commands (the program's help took 1.6 s loading all twelve,
 * 0.15 s now: bench:cli-start); a test checks that it is exactly the listing the loaded commands give.
 */
// Typed by COMMANDS' names: a command added there without its line here does not compile.
const LISTED: Record<CommandName, { summary: string; args?: string[] }> = {
  serve: { summary: 'run the receiver, the pollers, the delivery worker and the admin UI until SIGTERM' },
  sync: { summary: 'one poll-and-deliver pass, for cron or a Kubernetes CronJob (exit statuses: sync --help)' },
  map: { summary: 'dry run: map a record to an OpenCRVS declaration and office (nothing is sent)' },
  validate: { summary: 'check the configuration and the mappings without sending' },
  doctor: { summary: 'check a deployment live: config, store, sources, OpenCRVS, routing, mappings' },
  subscriptions: { summary: 'the FHIR Subscriptions that make a source notify the bridge (print or --apply)' },
  ledger: { summary: 'what happened to each event: state, attempts, last error, tracking id' },
  replay: { summary: 'put dead rows back in the delivery queue, mapped again from their source', args: ['[ids...]'] },
  dismiss: { summary: 'close dead rows that must never be delivered (a duplicate, a test record)', args: ['<ids...>'] },
  'write-backs': { summary: 'the tracking ids not written back to their source yet; re-queue abandoned ones' },
  sandbox: { summary: 'run the simulators (OpenCRVS, FHIR R4, DHIS2) until interrupted' },
  demo: { summary: 'run everything on embedded defaults and print a summary (what `npm start` runs)' },
};

/**
 * The commands to load for these arguments (argv without node and the script): the one named when the first
 * argument names one (program options come only before a command: enablePositionalOptions, so a command's
 * help, options and errors are its own), or by `help <command>`; none otherwise (the program's help, an
 * unknown command or option, `--version`), which the listing of every command answers (buildProgram).
 */
export function commandsToLoad(args: readonly string[]): string[] {
  const [first, second] = args;
  if (first !== undefined && Object.hasOwn(COMMANDS, first)) return [first];
  if (first === 'help' && second !== undefined && Object.hasOwn(COMMANDS, second)) return [second];
  return [];
}

/**
 * Builds the command line with the named commands (all of them by default), in COMMANDS' order. The others
 * are listed (LISTED), not loaded: the program's help and its answer to an unknown command name them all.
 */
export async function buildProgram(names: readonly string[] = Object.keys(COMMANDS)): Promise<Command> {
  const program = new Command('opencrvs-bridge')
    .description(
      'Delivers births and deaths from hospital systems (FHIR R4, DHIS2) to OpenCRVS exactly once.\n' +
        'Configuration: --config FILE or the BRIDGE_CONFIG environment variable.\n' +
        'Each command says more, its options too: opencrvs-bridge <command> --help.',
    )
    .version(versionText(), '-V, --version', 'print the version, ledger schema and commit')
    // Program options only before a command: `sandbox --version 1.9` is the sandbox's own option (the
    // OpenCRVS version simulated), not a request for this program's version.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  const all = Object.keys(COMMANDS) as CommandName[];
  const loaded = new Map(
    await Promise.all(
      all.filter((name) => names.includes(name)).map(async (name) => [name, await COMMANDS[name]()] as const),
    ),
  );
  for (const name of all) {
    const { summary, args = [] } = LISTED[name];
    const register = loaded.get(name);
    if (register) {
      register(program);
      program.commands.at(-1)?.summary(summary);
      continue;
    }
    // Listed only. Every command has options, which the listing shows as `[options]`: the hidden one says so.
    const listed = program.command(name).summary(summary).addOption(new Option('--listed-only').hideHelp());
    for (const arg of args) listed.argument(arg);
    listed.action(() => {
      throw new Error(`${name} was listed, not loaded (commandsToLoad)`);
    });
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
  const program = await buildProgram(commandsToLoad(argv.slice(2)));
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
