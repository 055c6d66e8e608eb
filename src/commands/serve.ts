import type { Command } from 'commander';
import { Bridge } from '../app.js';
import { loadConfigOrReport } from './options.js';
import { processLogger, stopOnSignals } from './runtime.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the subscription receiver, the pollers, the delivery worker and the admin UI until SIGTERM')
    .option('--config <file>', 'configuration file (default: $BRIDGE_CONFIG)')
    .action(async (options: { config?: string }) => {
      const config = loadConfigOrReport(options.config);
      if (!config) return;
      const logger = processLogger(config);
      const bridge = new Bridge(config, { logger });
      await bridge.start();
      logger.info({ port: bridge.httpPort, sources: bridge.sources.length }, 'opencrvs-bridge serving');
      await stopOnSignals(bridge, logger);
    });
}
