import type { Command } from 'commander';
import { Bridge } from '../app.js';
import { errorLine } from '../observability/crash.js';
import { healthUrl, removeHealthFile, writeHealthFile } from './health-file.js';
import {
  buildOrReport,
  configPath,
  loadConfigForLog,
  logStorePathWarning,
  reportLedgerInUse,
  reportUnusableLedger,
} from './options.js';
import { listenForSignals, openLeased, processLogger } from './runtime.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the subscription receiver, the pollers, the delivery worker and the admin UI until SIGTERM')
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .action(async (options: { config?: string }) => {
      const config = loadConfigForLog(options.config);
      if (!config) return;
      const logger = buildOrReport(() => processLogger(config));
      if (!logger) return;
      logStorePathWarning(config, logger);
      // Signals are handled from here on, so a SIGTERM during start-up (a ledger migration, OpenCRVS slow
      // to answer the first location lookups) still stops cleanly.
      const signals = listenForSignals(logger);
      let bridge: Bridge | undefined;
      // Read once: an edit applies at the next start; the bridge compares the files meanwhile and says so.
      const file = configPath(options.config);
      const configFile = file ? { path: file, env: process.env } : undefined;
      try {
        bridge = await openLeased(
          () => buildOrReport(() => new Bridge(config, { logger, lease: 'serve', configFile })),
          signals,
          logger,
        );
      } catch (err) {
        // A ledger that cannot be opened, or is damaged where the bridge reads at start: what to do, not a stack.
        if (reportUnusableLedger('serve', config.store.path, err)) return;
        // Another process serves this ledger, as it should: a line saying so and what to do, not a crash.
        // Refused before the ledger was touched (its schema included).
        reportLedgerInUse('serve', err);
        return;
      }
      if (!bridge) return;
      const stopped = signals.stopping(bridge);
      if (signals.signal === undefined) {
        try {
          await bridge.start();
        } catch (err) {
          // Stopped first, whatever the cause: the lease is given back (a next start, or the pod replacing
          // this one, would otherwise wait for it to lapse) and the ledger closed cleanly.
          await bridge.stop();
          const setting = listenerSetting(err);
          if (!setting) throw err;
          // A listener the configuration places cannot be opened (its port in use, a host that is not this
          // machine's, a port this user may not bind): the setting is what to change, as for a bad value
          // in the file (exit 2). A port held by another process may be freed instead; restart policies
          // restart on any non-zero exit, so nothing waits on this choice.
          console.error(`configuration error: ${errorLine(err)}`);
          process.exitCode = 2;
          return;
        }
      }
      // A signal during start-up: stopped, not serving.
      if (signals.signal === undefined)
        logger.info(
          {
            port: bridge.httpPort,
            adminPort: bridge.adminPort,
            sources: bridge.sources.length + bridge.dhis2Sources.length,
          },
          'opencrvs-bridge serving',
        );
      const healthFile = process.env.BRIDGE_HEALTH_FILE;
      let wroteHealthFile = false;
      if (healthFile && signals.signal === undefined && bridge.httpPort !== undefined) {
        const failed = writeHealthFile(healthFile, healthUrl(config.http.host, bridge.httpPort));
        if (failed)
          logger.warn({ code: failed }, 'could not write BRIDGE_HEALTH_FILE: the health check probes 127.0.0.1:8080');
        wroteHealthFile = !failed;
      }
      try {
        await stopped;
      } finally {
        if (wroteHealthFile && healthFile) removeHealthFile(healthFile);
      }
    });
}

/** The key of the listener that could not be opened (listenConfigured: `http.port`, `admin.port`), if that failed. */
function listenerSetting(err: unknown): string | undefined {
  const setting = (err as { setting?: unknown } | null)?.setting;
  return typeof setting === 'string' ? setting : undefined;
}
