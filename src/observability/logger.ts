import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import { errorMessage } from './inner-errors.js';
import { redactDeep, scrubString } from './redact.js';

export type { Logger } from 'pino';

export interface LoggerSettings {
  level?: string;
  /** Where JSON lines go; defaults to stdout. Tests pass a stream to inspect what was logged. */
  destination?: DestinationStream;
}

/**
 * The one logger factory. Every object logged passes through `redactDeep` (sensitive keys at any
 * depth) and every message string through `scrubString` (credentials in URLs, bearer tokens, JWTs).
 * Components take a child: `logger.child({ component: 'delivery' })`.
 */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { service: 'opencrvs-bridge' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => redactDeep(object) as Record<string, unknown>,
      bindings: (bindings) => redactDeep(bindings) as Record<string, unknown>,
    },
    // pino's own `err` serializer would run after the formatter and re-read the redacted error as a
    // plain object (type "Object"); the formatter's output is already the serialized form.
    serializers: { err: (value: unknown) => value },
    hooks: {
      logMethod(args, method) {
        let scrubbed: unknown[] = args.map((arg) => (typeof arg === 'string' ? scrubString(arg) : arg));
        // `log.warn(err)` or `log.warn({ err })` without a message: pino would copy the error's raw
        // message into `msg`, past the formatter. Given here, scrubbed, it is not copied; an
        // AggregateError's empty one is replaced by what its inner errors say.
        const [first] = scrubbed;
        if (scrubbed.length === 1 && typeof first === 'object' && first !== null) {
          const err = first instanceof Error ? first : (first as { err?: unknown }).err;
          if (err instanceof Error)
            scrubbed = [first instanceof Error ? { err: first } : first, scrubString(errorMessage(err))];
        }
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
  };
  const logger = settings.destination ? pino(options, settings.destination) : pino(options);
  // pino applies `formatters.bindings` to the root's bindings only: a child's are written as given. Every
  // child (grandchildren inherit this from the root) has its bindings redacted like a logged object.
  const child = logger.child;
  logger.child = function redactedChild(this: Logger, bindings, childOptions) {
    return child.call(this, redactDeep(bindings) as typeof bindings, childOptions);
  } as Logger['child'];
  return logger;
}

/** A logger that writes nothing, for library code used without a logger. */
export const silentLogger: Logger = pino({ level: 'silent' });
