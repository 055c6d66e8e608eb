// Secret values a client knows (a configured client secret, password or token, and the tokens it obtains
// at run time) may not reach a log line or an error (message, body, cause, stack): OpenCRVS's token URL
// carries the client secret, every request carries a token. Everything that leaves such a client passes
// through here: known secret values are replaced wherever they appear, and the logger's generic scrubber
// removes query credentials, bearer tokens and JWT-looking text. Here, not in opencrvs/ or sources/,
// because both keep one (and neither imports the other).
import { Echoes, scrubDeep } from './echoes.js';
import { scrubString } from './redact.js';

const MAX_TEXT = 2000;
/** How far past what is kept of a string it is searched: a token quoted in full from before the cut. */
const MAX_SEARCHED_BEYOND = 65_536;
const MAX_DEPTH = 8;
/** How much of one text is searched at all (text()): what value() searches of a string, kept or not. */
const MAX_SEARCHED = MAX_TEXT + MAX_SEARCHED_BEYOND;

/** Tokens remembered: the current one and a few before it (an answer to an older call may quote one). */
const RECENT_TOKENS = 8;
/**
 * Values of configured secrets read anew from their files (rotations), kept apart from the tokens: a
 * client secret is long-lived and may still be quoted (by a proxy, by an answer to a call made before
 * the rotation) long after a few token renewals. Bounded all the same: a Vault agent may rotate hourly.
 */
const RECENT_ROTATIONS = 32;

/**
 * Shorter values are not remembered: replacing every "abc" or "401" in an error text would garble it
 * (a status, a path, a word) and hide nothing an attacker could not guess. The generic scrubber still
 * removes them where they stand as credentials (`Bearer …`, `?password=…`, `user:…@`).
 */
const MIN_SECRET_LENGTH = 4;

export class SecretScrubber {
  private readonly secrets = new Set<string>();
  /** Rotated configured values, oldest first, bounded; only another rotation pushes one out. */
  private readonly rotations: string[] = [];
  /** Renewed values, oldest first, bounded: every renewal added one for good (110k a year, a soak found). */
  private readonly tokens: string[] = [];
  /** The values compiled for searching, kept until the next add: an error body is scrubbed string by string. */
  private compiled: Echoes | undefined;

  /**
   * Remembers a value that must never appear in output (ignored when too short to be a secret). A
   * `renewed` one (an access token) is kept among the last few only; older ones are expired, and the
   * generic scrubber still removes anything shaped like a JWT or a bearer token. A `rotated` one (a
   * configured secret read anew from its file) is kept among the last 32 rotations, whatever the number
   * of tokens renewed since: token churn never pushes a client secret out.
   */
  add(secret: string | undefined, options: { renewed?: boolean; rotated?: boolean } = {}): void {
    if (!secret || secret.length < MIN_SECRET_LENGTH || this.secrets.has(secret)) return;
    if (options.rotated) {
      // Sent again with each token request: already the latest, nothing changes.
      if (this.rotations.at(-1) === secret) return;
      remember(this.rotations, secret, RECENT_ROTATIONS);
    } else if (options.renewed) {
      if (this.tokens.includes(secret) || this.rotations.includes(secret)) return;
      remember(this.tokens, secret, RECENT_TOKENS);
    } else {
      this.secrets.add(secret);
    }
    this.compiled = undefined;
  }

  /** How many values are remembered (for tests). */
  get size(): number {
    return this.secrets.size + this.rotations.length + this.tokens.length;
  }

  private all(): string[] {
    return [...new Set([...this.secrets, ...this.rotations, ...this.tokens])];
  }

  /**
   * The text without any remembered value, found as it is sent and as an answer or an error may quote
   * it: percent-encoded (a query string, a URL), form-encoded (an OAuth2 token request body: spaces as
   * '+'), JSON- or HTML-escaped (a body that echoes it), in another case (observability/echoes.ts).
   */
  text(value: string): string {
    this.compiled ??= new Echoes(this.all(), {
      caselessMinLength: MIN_SECRET_LENGTH,
      lowerCaseToo: true,
    });
    // An error's message or stack is as long as whoever built it made it, and it is searched on the event
    // loop: only its start is. What stood across the cut is dropped with the tail, so no start of a
    // secret is left (an encoded form is at most 12 characters per character of the secret).
    if (value.length <= MAX_SEARCHED) return scrubString(this.compiled.hide(value));
    const hidden = this.compiled.hide(value.slice(0, MAX_SEARCHED));
    const longest = Math.max(0, ...this.all().map((secret) => secret.length));
    return `${scrubString(hidden.slice(0, Math.max(0, hidden.length - 12 * longest)))}… [cut: too long to check]`;
  }

  /**
   * A deep copy with every string and key scrubbed; long strings are truncated (error bodies can be HTML
   * pages), and what is past the budget of one value is cut (observability/echoes.ts, scrubDeep).
   */
  value(value: unknown): unknown {
    // Cut before it is searched (the rest is not kept), with room for a value that starts before the cut.
    return scrubDeep(
      value,
      (text) => truncate(this.text(text)),
      (key) => this.text(key),
      { maxDepth: MAX_DEPTH, window: MAX_TEXT + MAX_SEARCHED_BEYOND },
    );
  }
}

/** Appends `value` to a bounded list, oldest first; one already there moves to the end (it is in use again). */
function remember(list: string[], value: string, max: number): void {
  const at = list.indexOf(value);
  if (at >= 0) list.splice(at, 1);
  list.push(value);
  if (list.length > max) list.shift();
}

function truncate(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}
