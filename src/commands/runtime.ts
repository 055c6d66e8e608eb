import type { Bridge } from '../app.js';
import type { BridgeConfig } from '../config/types.js';
import { createLogger, type Logger } from '../observability/logger.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * The process logger for long-running commands; the level comes from the config (LOG_LEVEL overrides).
 * `toStderr`: for commands whose standard output is data (`sync --json`).
 */
export function processLogger(config?: BridgeConfig, options: { toStderr?: boolean } = {}): Logger {
  const fromEnv = process.env.LOG_LEVEL;
  // pino's own complaint ("default level:bogus must be included in custom levels") names neither.
  if (fromEnv !== undefined && !LEVELS.includes(fromEnv))
    throw new Error(`LOG_LEVEL=${fromEnv} is not a log level (${LEVELS.join(', ')})`);
  const level = fromEnv ?? config?.logging.level ?? 'info';
  return createLogger(options.toStderr ? { level, destination: process.stderr } : { level });
}

/**
 * Stops the bridge on SIGINT/SIGTERM (drain in-flight deliveries, hand back claimed rows, close the
 * store) and resolves when it has stopped. A second signal exits at once.
 */
export function stopOnSignals(
  bridge: Bridge,
  logger: Logger,
  extra: () => Promise<void> = async () => {},
): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without draining');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      bridge
        .stop()
        .then(extra)
        .catch((err) => logger.error({ err }, 'error while stopping'))
        .finally(() => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve();
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
