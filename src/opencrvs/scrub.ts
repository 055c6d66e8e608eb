// The client secret travels in the token URL's query string and the access token in every request
// header. Neither may reach a log line or an error (message, body, cause, stack), so everything that
// leaves the client passes through here: known secret values are replaced wherever they appear, and
// the logger's generic scrubber removes query credentials, bearer tokens and JWT-looking text.
import { scrubString } from '../observability/redact.js';

const REDACTED = '[redacted]';
const MAX_TEXT = 2000;
const MAX_DEPTH = 8;

/** Tokens remembered: the current one and a few before it (an answer to an older call may quote one). */
const RECENT_TOKENS = 8;

export class SecretScrubber {
  private readonly secrets = new Set<string>();
  /** Renewed values, oldest first, bounded: every renewal added one for good (110k a year, a soak found). */
  private readonly tokens: string[] = [];

  /**
   * Remembers a value that must never appear in output (ignored when too short to be a secret). A
   * `renewed` one (an access token) is kept among the last few only; older ones are expired, and the
   * generic scrubber still removes anything shaped like a JWT or a bearer token.
   */
  add(secret: string | undefined, options: { renewed?: boolean } = {}): void {
    if (!secret || secret.length < 4) return;
    if (!options.renewed) {
      this.secrets.add(secret);
      return;
    }
    if (this.tokens.includes(secret)) return;
    this.tokens.push(secret);
    if (this.tokens.length > RECENT_TOKENS) this.tokens.shift();
  }

  /** How many values are remembered (for tests). */
  get size(): number {
    return this.secrets.size + this.tokens.length;
  }

  text(value: string): string {
    let out = value;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    for (const token of this.tokens) out = out.split(token).join(REDACTED);
    return scrubString(out);
  }

  /** A deep copy with every string scrubbed; long strings are truncated (error bodies can be HTML pages). */
  value(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return truncate(this.text(value));
    if (value === null || typeof value !== 'object') return value;
    if (depth >= MAX_DEPTH) return '[depth limit]';
    if (Array.isArray(value)) return value.map((item) => this.value(item, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[this.text(key)] = this.value(item, depth + 1);
    return out;
  }
}

/** Strings too short, or too generic, to be personal data worth hiding (option values such as 'male'). */
const MIN_SENT_VALUE = 3;
const UUID_LIKE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The string values of a declaration we sent (names, dates, addresses, numbers written as text). An
 * answer that echoes them (a 5xx that quotes the request, a proxy page) must not carry them into logs or
 * the ledger, whose errors outlive the payload. Location UUIDs are kept: they are no one's data and say
 * which office was refused.
 */
export function sentValues(declaration: unknown): string[] {
  const out = new Set<string>();
  const walk = (value: unknown, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    if (typeof value === 'string') {
      const text = value.trim();
      if (text.length >= MIN_SENT_VALUE && !UUID_LIKE.test(text)) out.add(text);
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, depth + 1);
    } else if (value && typeof value === 'object') {
      for (const item of Object.values(value)) walk(item, depth + 1);
    }
  };
  walk(declaration, 0);
  // Longest first, so a full name goes before the surname inside it.
  return [...out].sort((a, b) => b.length - a.length);
}

/** A deep copy of an answer with every value we sent replaced by [redacted]. */
export function withoutSentValues(value: unknown, sent: readonly string[], depth = 0): unknown {
  if (sent.length === 0) return value;
  if (typeof value === 'string') {
    let out = value;
    for (const item of sent) if (out.includes(item)) out = out.split(item).join(REDACTED);
    return out;
  }
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => withoutSentValues(item, sent, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = withoutSentValues(item, sent, depth + 1);
  return out;
}

function truncate(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

/**
 * OpenCRVS answers a bad declaration with a JSON-encoded list of field problems that echoes each
 * offending `value` (a name, a date of birth). What is kept is the field id and OpenCRVS's message, not
 * the value: errors are stored and logged, and outlive the payload. Other text is returned as it is.
 */
export function withoutValues(message: string): string {
  if (!message.trimStart().startsWith('[')) return message;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return message;
  }
  if (!Array.isArray(parsed)) return message;
  return JSON.stringify(
    parsed.map((item: unknown) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) return item;
      const { value: _dropped, ...rest }: Record<string, unknown> = { ...item };
      return rest;
    }),
  );
}
