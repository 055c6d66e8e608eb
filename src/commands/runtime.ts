import type { Bridge } from '../app.js';
import type { BridgeConfig } from '../config/types.js';
import { createLogger, type Logger } from '../observability/logger.js';

/** The process logger for long-running commands; the level comes from the config (LOG_LEVEL overrides). */
export function processLogger(config?: BridgeConfig): Logger {
  return createLogger({ level: process.env.LOG_LEVEL ?? config?.logging.level ?? 'info' });
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
