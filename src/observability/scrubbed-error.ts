// A copy of an error chain that is safe to keep as an error's cause: logged with it, its message, stack,
// inner errors and causes go out as they are, and the runtime's own errors quote what they were given (an
// invalid header value, token and all; a URL). The copy carries the same texts through a scrubber that
// knows the literal secret values, and the fields that say what happened (codes, statuses), never
// bodies or other properties.
import type { SecretScrubber } from './secret-scrubber.js';

/** Fields copied: what the logger keeps and what callers read (the doctor names a cause's `code`). */
const KEPT = ['code', 'errno', 'syscall', 'status', 'kind', 'classification', 'operation', 'retryable'] as const;
/** Causes followed; deeper ones are left out. */
const MAX_DEPTH = 6;

export function scrubbedError(err: unknown, scrubber: SecretScrubber, depth = 0): unknown {
  if (!(err instanceof Error)) return scrubber.value(err);
  const cause =
    err.cause !== undefined && depth < MAX_DEPTH ? scrubbedError(err.cause, scrubber, depth + 1) : undefined;
  const copy = new Error(scrubber.text(err.message), cause === undefined ? undefined : { cause });
  copy.name = err.name;
  copy.stack = err.stack === undefined ? undefined : scrubber.text(err.stack);
  for (const field of KEPT) {
    const value: unknown = Reflect.get(err, field);
    if (typeof value === 'string') Reflect.set(copy, field, scrubber.text(value));
    else if (typeof value === 'number' || typeof value === 'boolean') Reflect.set(copy, field, value);
  }
  // An AggregateError's reasons (its own message is empty); not enumerable, as on the original.
  const errors: unknown = Reflect.get(err, 'errors');
  if (Array.isArray(errors) && depth < MAX_DEPTH) {
    const inner = errors.map((item) => scrubbedError(item, scrubber, depth + 1));
    Object.defineProperty(copy, 'errors', { value: inner, enumerable: false, writable: true, configurable: true });
  }
  return copy;
}
