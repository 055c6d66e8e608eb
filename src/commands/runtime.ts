import type { Bridge } from '../app.js';
import { ConfigError } from '../config/errors.js';
import type { BridgeConfig } from '../config/types.js';
import { LedgerInUse } from '../ledger/process-lease.js';
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
  /** Waits `ms`; resolves false at once when a signal comes first (or came already), else true. */
  sleep(ms: number): Promise<boolean>;
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
  const sleepers = new Set<() => void>();
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      logger.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    received = signal;
    logger.info({ signal }, 'stopping');
    for (const wake of sleepers) wake();
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
    sleep(ms) {
      if (received) return Promise.resolve(false);
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          sleepers.delete(wake);
          resolve(false);
        };
        const timer = setTimeout(() => {
          sleepers.delete(wake);
          resolve(true);
        }, ms);
        sleepers.add(wake);
      });
    },
  };
}

/**
 * Builds the bridge of a command that takes the ledger's lease (serve, sync). When the lease's holder may
 * be this container before it restarted (LedgerInUse.retryInMs: our pid in another pid namespace of this
 * host name, renewed lately), waits once, until it would count as gone, and tries again: a holder that
 * still runs has renewed meanwhile and refuses the second try too. Undefined when a signal came during
 * the wait (or `build` said why it built nothing); a refusal is thrown (LedgerInUse).
 */
export async function openLeased(
  build: () => Bridge | undefined,
  signals: Pick<SignalStop, 'sleep'>,
  logger: Logger,
): Promise<Bridge | undefined> {
  try {
    return build();
  } catch (err) {
    if (!(err instanceof LedgerInUse) || err.retryInMs === undefined) throw err;
    // A little past the moment: the holder must have been quiet for the whole period.
    const waitMs = err.retryInMs + 500;
    logger.warn(
      { waitSeconds: Math.ceil(waitMs / 1000) },
      `${err.message}: waiting to see whether it still renews its lease`,
    );
    if (!(await signals.sleep(waitMs))) return undefined;
    return build();
  }
}

/** listenForSignals for a bridge that already exists. */
export function stopOnSignals(bridge: Bridge, logger: Logger, extra?: () => Promise<void>): Promise<void> {
  return listenForSignals(logger).stopping(bridge, extra);
}
