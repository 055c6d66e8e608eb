// The client secret travels in the token URL's query string and the access token in every request
// header. Neither may reach a log line or an error (message, body, cause, stack), so everything that
// leaves the client passes through here: known secret values are replaced wherever they appear, and
// the logger's generic scrubber removes query credentials, bearer tokens and JWT-looking text.
import { scrubString } from '../observability/redact.js';

const REDACTED = '[redacted]';
const MAX_TEXT = 2000;
const MAX_DEPTH = 8;

export class SecretScrubber {
  private readonly secrets = new Set<string>();

  /** Remembers a value that must never appear in output (ignored when too short to be a secret). */
  add(secret: string | undefined): void {
    if (secret && secret.length >= 4) this.secrets.add(secret);
  }

  text(value: string): string {
    let out = value;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
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

function truncate(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}
