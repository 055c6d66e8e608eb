import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { Bridge, type SyncSummary, syncDone } from '../app.js';
import { type BridgeConfig, configFromObject } from '../config/index.js';
import { errorLine } from '../observability/crash.js';
import { DEMO_STATIC_EXPECTED, demoSeed } from '../sandbox/demo/seed.js';
import {
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  buildDemoChildProgramme,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  ORG_UNITS,
  startDhis2Simulator,
} from '../sandbox/dhis2/index.js';
import { startFhirSandbox } from '../sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../sandbox/opencrvs/index.js';
import { buildOrReport, wholeNumber } from './options.js';
import { processLogger, stopOnSignals } from './runtime.js';

interface DemoOptions {
  exit?: boolean;
  port: number;
  adminPort: number;
  opencrvsPort: number;
  fhirPort: number;
  births: number;
  deaths: number;
  dhis2Births: number;
  dhis2Deaths: number;
}

// Checked as they are parsed: `--births abc` made the demo expect NaN births and fail its own check.
const MAX_GENERATED = 100_000;

function printSummary(
  summary: SyncSummary,
  expected: { births: number; deaths: number },
  addresses: string[],
): boolean {
  const delivered = summary.rows.filter((row) => row.state === 'delivered' || row.state === 'delivered-pending');
  const skipped = summary.rows.filter((row) => row.state === 'skipped');
  const problems = summary.rows.filter((row) => !syncDone(row));
  const births = delivered.filter((row) => row.eventType === 'birth').length;
  const deaths = delivered.filter((row) => row.eventType === 'death').length;
  console.log('\nopencrvs-bridge demo');
  for (const line of addresses) console.log(`  ${line}`);
  console.log(
    `\nEvents: ${summary.rows.length} found: ${delivered.length} delivered (${births} births, ${deaths} deaths; ` +
      `expected ${expected.births} and ${expected.deaths}), ${skipped.length} skipped, ${problems.length} not delivered`,
  );
  for (const row of summary.rows) {
    const outcome =
      row.state === 'skipped'
        ? `skipped: ${row.skipReason ?? ''}`
        : row.trackingId
          ? `${row.state}, tracking id ${row.trackingId}`
          : `${row.state}${row.lastError ? ` (${row.lastError.message.slice(0, 120)})` : ''}`;
    console.log(`  ${`#${row.id}`.padEnd(5)} ${row.eventType.padEnd(5)} ${row.sourceRef.padEnd(44)} ${outcome}`);
  }
  return births === expected.births && deaths === expected.deaths && problems.length === 0;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run everything on embedded defaults: an OpenCRVS simulator, a FHIR server seeded with births and deaths, a DHIS2 tracker simulator, the bridge; print a summary, then keep serving (Ctrl-C stops)',
    )
    .option('--exit', 'exit after the summary: status 0 only if every expected event was delivered')
    .option(
      '--port <n>',
      'bridge HTTP port (health, metrics, subscriptions; 0 = any free port)',
      wholeNumber(65_535),
      8080,
    )
    .option('--admin-port <n>', 'admin page port, on 127.0.0.1 (0 = any free port)', wholeNumber(65_535), 9080)
    .option('--opencrvs-port <n>', 'OpenCRVS simulator port (0 = any free port)', wholeNumber(65_535), 0)
    .option('--fhir-port <n>', 'FHIR sandbox port (0 = any free port)', wholeNumber(65_535), 0)
    .option('--births <n>', 'generated births added to the fixture records', wholeNumber(MAX_GENERATED), 8)
    .option('--deaths <n>', 'generated deaths added to the fixture records', wholeNumber(MAX_GENERATED), 4)
    .option('--dhis2-births <n>', 'births in the DHIS2 simulator (Child Programme)', wholeNumber(MAX_GENERATED), 3)
    .option('--dhis2-deaths <n>', 'deaths in the DHIS2 simulator', wholeNumber(MAX_GENERATED), 2)
    .action(async (options: DemoOptions) => {
      // Said with the demo's own flags: the configuration check would name admin.port and http.port.
      if (options.port !== 0 && options.port === options.adminPort) {
        console.error(
          `demo: --port and --admin-port are both ${options.port}: give one of them another port (0 = any free port)`,
        );
        process.exitCode = 2;
        return;
      }
      // The demo prints a summary; logs stay at warn unless LOG_LEVEL asks for more. An empty LOG_LEVEL
      // asks for nothing, here as for serve, sync and replay (logLevelFromEnv reads it as unset).
      // A LOG_LEVEL that is no level: a configuration error (exit 2), before anything starts.
      const logger = buildOrReport(() => processLogger(undefined, { defaultLevel: 'warn' }));
      if (!logger) return;
      const { births, deaths, dhis2Births, dhis2Deaths } = options;
      const opencrvs = await startOpenCrvsSimulator({ port: options.opencrvsPort, logger });
      const seed = demoSeed(births, deaths);
      const fhir = await startFhirSandbox({ port: options.fhirPort, seed, logger });
      const dhis2 = await startDhis2Simulator({
        port: 0,
        seed: buildDemoChildProgramme({ births: dhis2Births, deaths: dhis2Deaths, seed: 1 }),
        logger,
      });
      const adminToken = randomBytes(16).toString('hex');
      const dataDir = mkdtempSync(join(tmpdir(), 'opencrvs-bridge-demo-'));
      // The ledger and the configuration file (the simulator's secret, the admin token) go with the demo
      // on every way out: until the demo serves, a signal ends it at once (a demo has nothing to drain).
      process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
      const endNow = (signal: NodeJS.Signals) => process.exit(signal === 'SIGINT' ? 130 : 143);
      process.once('SIGINT', endNow);
      process.once('SIGTERM', endNow);
      const configObject = {
        opencrvs: {
          tokenUrl: opencrvs.tokenUrl,
          eventsUrl: opencrvs.eventsUrl,
          clientId: opencrvs.clientId,
          clientSecret: opencrvs.clientSecret,
        },
        store: { path: join(dataDir, 'bridge.db') },
        http: { host: '127.0.0.1', port: options.port },
        delivery: { baseDelayMs: 200, maxDelayMs: 5000, pollIntervalMs: 200 },
        sources: [
          {
            id: 'demo-emr',
            kind: 'fhir',
            baseUrl: fhir.baseUrl,
            poll: { schedule: '*/10 * * * * *' },
            // The tracking id goes back onto the patient as an identifier (If-Match on its version).
            writeBack: { target: 'identifier', identifierSystem: 'http://opencrvs.org/tracking-id' },
          },
          {
            id: 'demo-dhis2-births',
            kind: 'dhis2',
            baseUrl: dhis2.baseUrl,
            auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
            poll: { schedule: '*/10 * * * * *' },
            dhis2: { program: CHILD_PROGRAMME },
            mappings: ['birth.dhis2'],
            writeBack: { dataElement: BIRTH_DATA_ELEMENTS.trackingId, programStage: BIRTH_STAGE },
          },
          {
            id: 'demo-dhis2-deaths',
            kind: 'dhis2',
            baseUrl: dhis2.baseUrl,
            auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
            poll: { schedule: '*/10 * * * * *' },
            dhis2: { program: DEATH_PROGRAMME, orgUnits: [ORG_UNITS.sierraLeone], orgUnitMode: 'DESCENDANTS' },
            mappings: ['death.dhis2'],
            writeBack: { dataElement: DEATH_DATA_ELEMENTS.trackingId },
          },
        ],
        routing: {
          // Farajaland externalIds (the CSV ids); the bridge resolves them to this deployment's UUIDs.
          defaultOffice: 'LHUYvwY2Aq1', // HQ Office
          facilities: {
            'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
            'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
            'Location/location-south-hospital': { office: 'Ap0mxDoJJ9s', facility: '8OrJQUdLE4r' },
            // DHIS2 org units (the Sierra Leone demo database's) route like EMR locations.
            [ORG_UNITS.ngelehunChc]: { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
            [ORG_UNITS.gbenikoroMchp]: { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
          },
        },
        admin: { token: adminToken, port: options.adminPort },
        // The printed configuration, used by `ledger`, `replay` and `doctor` beside the demo, logs alike.
        logging: { level: logger.level },
      };
      // The same configuration as a file, so `ledger`, `replay` and `doctor` can be tried on the demo while
      // it serves. Its secrets are the simulator's and this run's admin token (printed below anyway).
      // Written once the listeners are open, with the ports they got (`--admin-port 0`): `replay` asks the
      // demo's admin API at admin.port, and at port 0 it could not, and would replay beside the demo.
      const configFile = join(dataDir, 'bridge.yaml');
      // The demo's ledger holds only generated records; it goes with the demo.
      const stopSandboxes = async () => {
        await dhis2.close();
        await fhir.close();
        await opencrvs.close();
        rmSync(dataDir, { recursive: true, force: true });
      };
      let config: BridgeConfig;
      let bridge: Bridge | undefined;
      try {
        config = configFromObject(configObject);
        // The lease serve takes: `sync` or `serve` on the printed configuration is refused while the demo
        // runs (two processes on one ledger: docs/deployment.md §1), and `replay` goes through its admin
        // API. Its ledger is new, in a folder of its own, so no earlier run's lease is ever in the way.
        bridge = new Bridge(config, { logger, schedule: false, lease: 'demo', scratchLedger: true });
        await bridge.start();
        writeFileSync(
          configFile,
          stringify({
            ...configObject,
            http: { ...configObject.http, port: bridge.httpPort ?? configObject.http.port },
            admin: { ...configObject.admin, port: bridge.adminPort ?? configObject.admin.port },
          }),
          { mode: 0o600 },
        );
      } catch (err) {
        // Leave nothing running behind: the sandboxes' servers would keep the process alive.
        console.error(`demo: ${errorLine(err)}`);
        // A busy port (8080 on many workstations): say which flag chooses another.
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
          console.error(
            (err as { setting?: string }).setting === 'admin.port'
              ? 'demo: another port for the admin page: npm start -- --admin-port 19080 (or opencrvs-bridge demo --admin-port N)'
              : 'demo: another port for the bridge: npm start -- --port 18080 (or opencrvs-bridge demo --port N)',
          );
        await bridge?.stop().catch(() => undefined);
        await stopSandboxes();
        process.exitCode = 2;
        return;
      }
      const summary = await bridge.syncOnce(undefined, { timeoutMs: 60_000 });
      const base = `http://127.0.0.1:${bridge.httpPort}`;
      const ok = printSummary(
        summary,
        {
          births: births + DEMO_STATIC_EXPECTED.births + dhis2Births,
          deaths: deaths + DEMO_STATIC_EXPECTED.deaths + dhis2Deaths,
        },
        [
          `OpenCRVS simulator  ${opencrvs.baseUrl}  (client ${opencrvs.clientId})`,
          `FHIR sandbox        ${fhir.baseUrl}  (${seed.length} resources seeded)`,
          `DHIS2 simulator     ${dhis2.baseUrl}/api  (${dhis2Births} births, ${dhis2Deaths} deaths)`,
          `Bridge              ${base}  health ${base}/healthz  ready ${base}/readyz  metrics ${base}/metrics`,
          // The browser asks for a user name and a password (HTTP Basic): the token is the password.
          `Admin UI            http://127.0.0.1:${bridge.adminPort}/admin  (any user name, the token ${adminToken} as password)`,
          `Ledger              ${config.store.path}`,
          // Under --exit the folder goes with the demo: nothing to try it on.
          `Its configuration   ${configFile}${options.exit ? '' : `  (try: npx opencrvs-bridge ledger --config ${configFile} --find '#1')`}`,
        ],
      );
      const writeBacks = bridge.writeBacks?.store.list() ?? [];
      const written = writeBacks.filter((item) => item.doneAt !== null && item.outcome !== 'abandoned').length;
      console.log(
        `\nTracking ids written back to the source record (FHIR identifier, DHIS2 data element): ${written} of ${writeBacks.length}`,
      );
      console.log(
        ok ? '\nresult: every expected event was delivered' : '\nresult: some expected events were not delivered',
      );
      if (options.exit) {
        console.log('(--exit: the simulators, the bridge and its ledger stop and are removed now)');
        await bridge.stop();
        await stopSandboxes();
        process.exitCode = ok ? 0 : 1;
        return;
      }
      bridge.enableSchedules();
      console.log('\nServing; the FHIR sandbox is polled every 10 s. Ctrl-C stops.');
      process.off('SIGINT', endNow);
      process.off('SIGTERM', endNow);
      await stopOnSignals(bridge, logger, stopSandboxes);
    });
}
