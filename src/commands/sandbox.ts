import { type Command, InvalidArgumentError } from 'commander';
import { MAX_TIMER_SECONDS } from '../config/index.js';
import { errorLine } from '../observability/crash.js';
import type { Logger } from '../observability/logger.js';
import { demoSeed } from '../sandbox/demo/seed.js';
import {
  buildDemoChildProgramme,
  DEFAULT_DHIS2_SIMULATOR_PORT,
  DEFAULT_SANDBOX_AUTH,
  startDhis2Simulator,
} from '../sandbox/dhis2/index.js';
import { NOTIFY_STYLES, type NotifyStyle, startFhirSandbox } from '../sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../sandbox/opencrvs/index.js';
import { buildOrReport } from './options.js';
import { processLogger } from './runtime.js';

function isNotifyStyle(value: string): value is NotifyStyle {
  return (NOTIFY_STYLES as readonly string[]).includes(value);
}

/** All options of the sandbox command, as commander parses them (each simulator reads its own). */
type SandboxOptions = Record<string, string | undefined>;

interface RunningSimulator {
  /** Lines printed once it is up: addresses and (sandbox-only) credentials. */
  summary: string[];
  close(): Promise<void>;
}

/**
 * One simulator of the sandbox command: its flags and how to start it. Adding a simulator (the FHIR
 * server: --fhir-port, --seed, …) is one more entry in SIMULATORS.
 */
interface SimulatorEntry {
  addOptions(command: Command): void;
  start(options: SandboxOptions, logger: Logger): Promise<RunningSimulator>;
}

/**
 * Starts a simulator; a port in use (or a --seed folder that is not there) is said with the flag that
 * chose it, as `serve` names http.port: Node's own words name neither.
 */
async function startNaming<T>(flag: string, port: number, start: () => Promise<T>, seed?: string): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new Error(`${flag} ${port}: the port is in use by another process; choose another (0 = any free port)`);
    }
    if (seed !== undefined && (code === 'ENOENT' || code === 'ENOTDIR')) {
      throw new Error(`--seed ${seed}: no such folder (it holds the FHIR resources or Bundles to load, as *.json)`);
    }
    throw err;
  }
}

function parsePort(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${flag} must be a port number (0-65535)`);
  return port;
}

/**
 * A commander argument parser for --notify-heartbeat (a usage error, exit 2, before anything starts): a
 * value that is no number would turn heartbeats off without a word. The text is kept; start() reads it.
 */
function heartbeatPeriod(value: string): string {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_TIMER_SECONDS) {
    throw new InvalidArgumentError(`a number of seconds above 0 and at most ${MAX_TIMER_SECONDS} (about 24 days)`);
  }
  return value;
}

const openCrvs: SimulatorEntry = {
  addOptions(command) {
    command
      .option('--opencrvs-port <port>', 'port of the OpenCRVS simulator (default 7070; 0 = any free port)')
      .option('--client-id <id>', 'system client id of the OpenCRVS simulator', 'sandbox-client')
      .option('--client-secret <secret>', 'system client secret of the OpenCRVS simulator', 'sandbox-secret')
      .option('--version <version>', 'OpenCRVS version to simulate: 2.0 or 1.9', '2.0')
      .option('--host <host>', 'address to listen on', '127.0.0.1');
  },
  async start(options, logger) {
    const version = options.version ?? '2.0';
    if (version !== '2.0' && version !== '1.9') throw new Error('--version must be 2.0 or 1.9');
    const port = parsePort(options.opencrvsPort, 7070, '--opencrvs-port');
    const sim = await startNaming('--opencrvs-port', port, () =>
      startOpenCrvsSimulator({
        port,
        host: options.host,
        version,
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        logger,
      }),
    );
    const notifyPath = version === '2.0' ? 'POST /events/{eventId}/notify' : 'POST /events/notifications';
    return {
      summary: [
        `OpenCRVS simulator (v${version}, Farajaland) on ${sim.baseUrl}`,
        `  token URL:      ${sim.tokenUrl}`,
        `  events URL:     ${sim.eventsUrl}   (create: POST /events, notify: ${notifyPath})`,
        `  client id:      ${sim.clientId}`,
        `  client secret:  ${sim.clientSecret}   (sandbox credentials, not for real use)`,
        `  control API:    ${sim.baseUrl}/_sandbox/{events,reset,clients,config,requests,locations}`,
        '  location UUIDs are derived from the Farajaland CSV ids; real deployments differ, use externalId.',
      ],
      close: () => sim.close(),
    };
  },
};

const fhir: SimulatorEntry = {
  addOptions(command) {
    command
      .option('--fhir-port <port>', 'port of the FHIR R4 sandbox server (default 8090; 0 = any free port)')
      .option('--seed <dir>', 'seed the FHIR sandbox with every *.json resource or Bundle under this folder')
      .option('--demo-seed', 'seed the FHIR sandbox with the demo births and deaths')
      .option(
        '--fhir-as-openmrs',
        'answer as an OpenMRS FHIR2 server: its resource types and search parameters only (no Composition, no Subscription), and its REST relationship listing (printed: the sources[].openmrs line to use)',
      )
      .option('--notify <url>', 'send a subscription notification to this URL on every create/update')
      .option(
        '--notify-style <style>',
        `wire style of the notifications: ${NOTIFY_STYLES.join(', ')}`,
        'backport-id-only',
      )
      .option('--notify-secret <secret>', 'HMAC key (medplum style) or bearer secret sent in Authorization')
      .option(
        '--notify-heartbeat <seconds>',
        `heartbeat period (backport style; above 0, at most ${MAX_TIMER_SECONDS})`,
        heartbeatPeriod,
      );
  },
  async start(options, logger) {
    const style = options.notifyStyle ?? 'backport-id-only';
    if (!isNotifyStyle(style)) throw new Error(`--notify-style must be one of ${NOTIFY_STYLES.join(', ')}`);
    const secret = options.notifySecret;
    const notify = options.notify
      ? {
          url: options.notify,
          style,
          // Medplum signs with the secret; the other styles send it the way Subscription.channel.header would.
          secret: style === 'medplum' ? secret : undefined,
          headers: style !== 'medplum' && secret ? { Authorization: `Bearer ${secret}` } : undefined,
          heartbeatSeconds: options.notifyHeartbeat ? Number(options.notifyHeartbeat) : undefined,
        }
      : undefined;
    const seed = options.seed ?? (options.demoSeed ? [...demoSeed()] : undefined);
    const port = parsePort(options.fhirPort, 8090, '--fhir-port');
    const sandbox = await startNaming(
      '--fhir-port',
      port,
      () =>
        startFhirSandbox({
          port,
          host: options.host,
          seed,
          notify,
          logger,
          ...(options.fhirAsOpenmrs ? { emulate: 'openmrs' as const } : {}),
        }),
      options.seed,
    );
    // Its base URL does not end in /ws/fhir2/R4, so a source's restUrl cannot be derived from it: given.
    const rest = sandbox.openmrsRestUrl;
    return {
      summary: [
        `FHIR R4 sandbox on ${sandbox.baseUrl}${rest ? ' (answering as OpenMRS FHIR2)' : ''}`,
        ...(rest
          ? [
              `  OpenMRS REST:   ${rest}   (the relationship listing sources[].openmrs asks)`,
              `  in a config:    openmrs: { restUrl: ${rest} }   (under the source; given: the base URL does not end in /ws/fhir2/R4)`,
            ]
          : []),
        ...(notify ? [`  notifications:  ${style} to ${notify.url}`] : []),
      ],
      close: () => sandbox.close(),
    };
  },
};

const dhis2: SimulatorEntry = {
  addOptions(command) {
    command
      .option(
        '--dhis2-port <port>',
        `port of the DHIS2 tracker simulator (default ${DEFAULT_DHIS2_SIMULATOR_PORT}; 0 = any free port)`,
      )
      .option('--dhis2-births <n>', 'demo Child Programme births seeded in the DHIS2 simulator', '10')
      .option('--dhis2-deaths <n>', 'demo death notifications seeded in the DHIS2 simulator', '5');
  },
  async start(options, logger) {
    const births = Number(options.dhis2Births ?? '10');
    const deaths = Number(options.dhis2Deaths ?? '5');
    if (!Number.isInteger(births) || births < 0 || !Number.isInteger(deaths) || deaths < 0)
      throw new Error('--dhis2-births and --dhis2-deaths must be whole numbers');
    const port = parsePort(options.dhis2Port, DEFAULT_DHIS2_SIMULATOR_PORT, '--dhis2-port');
    const sim = await startNaming('--dhis2-port', port, () =>
      startDhis2Simulator({ port, host: options.host, seed: buildDemoChildProgramme({ births, deaths }), logger }),
    );
    return {
      summary: [
        `DHIS2 tracker simulator (2.41) on ${sim.baseUrl}/api   (${births} births, ${deaths} deaths seeded)`,
        `  auth:           ApiToken ${DEFAULT_SANDBOX_AUTH.pat}  or basic ${DEFAULT_SANDBOX_AUTH.username}/${DEFAULT_SANDBOX_AUTH.password}   (sandbox credentials)`,
        `  control API:    ${sim.baseUrl}/_sandbox/{reset,seed,writes}   (reset empties the tracker, without seeding it again)`,
      ],
      close: () => sim.close(),
    };
  },
};

const SIMULATORS: SimulatorEntry[] = [openCrvs, fhir, dhis2];

function waitForShutdownSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export function registerSandbox(program: Command): void {
  const command = program
    .command('sandbox')
    .description('run the simulators (OpenCRVS events API and auth, FHIR R4 server, DHIS2 tracker) until interrupted');
  for (const simulator of SIMULATORS) simulator.addOptions(command);
  command.action(async (options: SandboxOptions) => {
    // The simulators bind their own `component`; a second one here would be written twice on each line.
    // LOG_LEVEL read as the other commands read it: an empty one is unset (pino refused it with a stack
    // trace), `DEBUG` is debug, and one that is no level is a configuration error (exit 2).
    const root = buildOrReport(() => processLogger());
    if (!root) return;
    const logger = root.child({ component: 'sandbox' });
    const running: RunningSimulator[] = [];
    try {
      for (const simulator of SIMULATORS) running.push(await simulator.start(options, root));
    } catch (err) {
      console.error(`opencrvs-bridge sandbox: ${errorLine(err)}`);
      await Promise.allSettled(running.map((sim) => sim.close()));
      process.exitCode = 2;
      return;
    }
    for (const sim of running) console.log(sim.summary.join('\n'));
    console.log('Press Ctrl+C to stop.');
    const signal = await waitForShutdownSignal();
    logger.info({ signal }, 'sandbox stopping');
    await Promise.allSettled(running.map((sim) => sim.close()));
    process.exitCode = 0;
  });
}
