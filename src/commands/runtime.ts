import type { Bridge } from '../app.js';
import { ConfigError } from '../config/errors.js';
import type { BridgeConfig } from '../config/types.js';
import { createLogger, type Logger } from '../observability/logger.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * The process logger for long-running commands; the level comes from the config (LOG_LEVEL overrides).
 * `toStderr`: for commands whose standard output is their answer (`sync`, `replay`). `defaultLevel`:
 * for commands without a config (`demo`, `sandbox`), the level when LOG_LEVEL is unset or empty.
 */
export function processLogger(
  config?: BridgeConfig,
  options: { toStderr?: boolean; defaultLevel?: string } = {},
): Logger {
  const level = logLevelFromEnv() ?? config?.logging.level ?? options.defaultLevel ?? 'info';
  return createLogger(options.toStderr ? { level, destination: process.stderr } : { level });
}

/**
 * `LOG_LEVEL`, as a level name (lower case), or undefined when it is not set. Empty (or blanks) counts
 * as not set: `LOG_LEVEL=` in a compose file or `LOG_LEVEL= cmd` is how a shell unsets it for one run.
 */
export function logLevelFromEnv(): string | undefined {
  // `DEBUG` and `debug` alike: environment variables are often written in capitals.
  const fromEnv = process.env.LOG_LEVEL?.trim().toLowerCase() || undefined;
  // pino's own complaint ("default level:bogus must be included in custom levels") names neither. A
  // configuration error (exit 2), as a bad logging.level in the file is.
  if (fromEnv !== undefined && !LEVELS.includes(fromEnv))
    throw new ConfigError('LOG_LEVEL', `${process.env.LOG_LEVEL} is not a log level (${LEVELS.join(', ')})`);
  return fromEnv;
}

/** SIGINT/SIGTERM handling that starts before the bridge exists (see listenForSignals). */
export interface SignalStop {
  /** The first signal received, if any. */
  readonly signal: NodeJS.Signals | undefined;
  /**
   * Stops `bridge` on a signal (at once if one came while it was being built), then runs `extra`;
   * resolves when it has stopped.
   */
  stopping(bridge: Bridge, extra?: () => Promise<void>): Promise<void>;
}

/**
 * Catches SIGINT and SIGTERM from now on. Installed before the bridge is built: opening the ledger may
 * run a long migration, and as PID 1 (a container) a signal that finds no handler is dropped, so the
 * process would start serving after it was told to stop. The stop drains in-flight deliveries, hands
 * back claimed rows and closes the store. A second signal exits at once.
 */
export function listenForSignals(logger: Logger): SignalStop {
  let received: NodeJS.Signals | undefined;
  let stop: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      logger.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    received = signal;
    logger.info({ signal }, 'stopping');
    stop?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get signal() {
      return received;
    },
    stopping(bridge, extra = async () => {}) {
      return new Promise((resolve) => {
        stop = () => {
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
        if (received) stop();
      });
    },
  };
}

/** listenForSignals for a bridge that already exists. */
export function stopOnSignals(bridge: Bridge, logger: Logger, extra?: () => Promise<void>): Promise<void> {
  return listenForSignals(logger).stopping(bridge, extra);
}
