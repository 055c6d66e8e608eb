// Node's fetch (undici) and `net` report a connection that failed on every address it tried (localhost
// is ::1 and 127.0.0.1) as an AggregateError: its own message is empty, its `code` is the first inner
// one's, and the reasons are in `.errors`, which nothing printed. Read here, bounded (a host can resolve
// to many addresses), for the logger and for the texts the ledger and the CLI show. The texts are raw:
// callers scrub them like any other message.

/** Inner errors described; the rest are counted. */
const MAX_SHOWN = 3;
/** Characters kept of each inner error's message. */
const MAX_TEXT = 200;

export interface InnerError {
  type: string;
  code?: string;
  message: string;
}

export interface InnerErrors {
  shown: InnerError[];
  /** How many more there were. */
  more: number;
}

function truncate(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

function codeOf(err: Error): string | undefined {
  const code: unknown = Reflect.get(err, 'code');
  return typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
}

/**
 * The inner errors of an AggregateError (any error with an `errors` array of errors: other values there,
 * a validator's findings, may quote data and are left out); undefined when there are none.
 */
export function innerErrors(err: Error): InnerErrors | undefined {
  const errors: unknown = Reflect.get(err, 'errors');
  if (!Array.isArray(errors)) return undefined;
  const inner = errors.filter((item): item is Error => item instanceof Error);
  if (inner.length === 0) return undefined;
  const shown = inner.slice(0, MAX_SHOWN).map((item) => {
    const code = codeOf(item);
    return { type: item.name, ...(code !== undefined ? { code } : {}), message: truncate(item.message) };
  });
  return { shown, more: inner.length - shown.length };
}

/**
 * An error's message, or for one without (an AggregateError) what its inner errors say, e.g.
 * `connect ECONNREFUSED ::1:3000; connect ECONNREFUSED 127.0.0.1:3000`; then its code, then its type.
 */
export function errorMessage(err: Error): string {
  if (err.message !== '') return err.message;
  const inner = innerErrors(err);
  if (inner) {
    const parts = inner.shown.map((item) => item.message || item.code || item.type);
    if (inner.more > 0) parts.push(`${inner.more} more`);
    return parts.join('; ');
  }
  return codeOf(err) ?? err.name;
}
