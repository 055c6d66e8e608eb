// Secrets given as `…File` follow their file while the bridge runs. A rotated Kubernetes Secret is
// swapped in place (the `..data` symlink of the volume moves to a new folder) and a Vault agent rewrites
// its file: a value read once at start kept the bridge on the old secret until a restart, so the source
// answered 401 for good, OpenCRVS refused every token request, and the EMR's notifications signed with
// the new secret were refused. load.ts records which keys came from which file; each consumer asks for
// its secret here and reads `current()` at the moment of use.
import { readFileSync, type Stats, statSync } from 'node:fs';
import type { Logger } from '../observability/logger.js';

/** The file is looked at (a stat, through the symlinks) at most this often on the way of a call. */
export const SECRET_FILE_CHECK_MS = 30_000;
/**
 * After a refusal (401, 403, invalid_client) the file is looked at now, but not more than this often: a
 * flood of wrong inbound secrets costs a few stats a second. Shorter than a source call's first retry
 * delay (500 ms), so the retry of a call refused just after another one sends the new value.
 */
const REFRESH_MIN_MS = 250;
/**
 * An inbound secret (subscription, admin) replaced in its file is still accepted this long: the EMR or
 * the operator's scripts switch to the new one at their own time.
 */
export const PREVIOUS_SECRET_ACCEPTED_MS = 5 * 60_000;

export interface Secret {
  /** The value to use now; read again from its file when the file changed (looked at every 30 s at most). */
  current(): string;
  /**
   * After the other side refused the value: looks at the file now (at most 4 times a second) and says
   * whether a new value was read. Always false for an inline secret.
   */
  refresh(): boolean;
  /** Values an inbound check accepts: the current one, and the one it replaced for 5 minutes. */
  accepted(): string[];
}

interface SecretFile {
  path: string;
  /** The key as written, for the log: `sources[0].auth.tokenFile`. */
  keyPath: string;
  /** fileSignature() of the file before the loader read it. */
  signature?: string;
}

/** The settings object (an `auth`, a `subscription`, `opencrvs`, `admin`) → its key → the file it came from. */
const files = new WeakMap<object, Map<string, SecretFile>>();
/** One live secret per settings key, shared by its consumers (one stat, one warning). */
const live = new WeakMap<object, Map<string, Secret>>();

/** Called by the loader for each `…File` it read into `key` of `owner`. */
export function rememberSecretFile(owner: object, key: string, file: SecretFile): void {
  const keys = files.get(owner) ?? new Map<string, SecretFile>();
  files.set(owner, keys.set(key, file));
}

/**
 * Secrets written as a `${NAME}`, left out unread, set or not (the loader's `secretFiles`) for a command
 * that uses none: like a `…File` left unread, the secret is given, just not read here.
 */
const unsetReferences = new WeakMap<object, Set<string>>();

/** Called by the loader for a secret key of `owner` written as a `${NAME}` it left out unread. */
export function rememberUnsetSecret(owner: object, key: string): void {
  unsetReferences.set(owner, (unsetReferences.get(owner) ?? new Set<string>()).add(key));
}

/** Whether `owner[key]` was given as a `${NAME}` left out unread. */
export function secretLeftUnset(owner: object, key: string): boolean {
  return unsetReferences.get(owner)?.has(key) ?? false;
}

export interface SecretOptions {
  /** Where a file that cannot be read is said (once, until it can be again). */
  logger?: Logger;
  /** A problem with a value read (said instead of taking it), or undefined when it is fine. */
  check?: (value: string) => string | undefined;
  /**
   * An inbound secret compared with what a client sends (the admin token, a subscription's bearer
   * secret): its surrounding spaces are dropped once, as configured and as each rotation is read, since
   * HTTP drops them from a header value. Not for a key whose every byte counts (an HMAC key, an outbound
   * secret, sent as configured).
   */
  trim?: boolean;
  now?: () => number;
}

/**
 * The secret `owner[key]` (undefined when not set): following its file when it came from one, else the
 * value as configured. The first caller's options (logger, check) serve every later one.
 */
export function secretOf(owner: object, key: string, options: SecretOptions = {}): Secret | undefined {
  const value = Reflect.get(owner, key);
  if (typeof value !== 'string') return undefined;
  const secrets = live.get(owner) ?? new Map<string, Secret>();
  live.set(owner, secrets);
  let secret = secrets.get(key);
  if (!secret) {
    const file = files.get(owner)?.get(key);
    const taken = options.trim ? value.trim() : value;
    secret = file ? fileSecret(taken, file, options) : fixedSecret(taken);
    secrets.set(key, secret);
  }
  return secret;
}

export function fixedSecret(value: string): Secret {
  return { current: () => value, refresh: () => false, accepted: () => [value] };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
const CONTROL = /[\u0000-\u001f\u007f]/;

/** What says that a file may have changed: through the symlinks, a swap gives another inode. */
export function fileSignature(path: string): string {
  return signatureOf(statSync(path));
}

function signatureOf(stat: Stats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}

/** A secret is one line: a file much larger is no secret file, and is not read into memory (4 reads a second). */
const MAX_SECRET_FILE_BYTES = 65_536;

function fileSecret(initial: string, file: SecretFile, options: SecretOptions): Secret {
  const now = options.now ?? Date.now;
  let value = initial;
  let previous: { value: string; until: number } | undefined;
  // Taken before the loader read the file: a change made since is seen at the first look.
  let signature = file.signature;
  let checkedAt = now();
  let refreshedAt = Number.NEGATIVE_INFINITY;
  let warned = false;

  /** Keeps the last good value when the file cannot be read or holds no secret; says so once. */
  const keepLast = (reason: string) => {
    if (warned) return;
    warned = true;
    options.logger?.warn(
      { key: file.keyPath, file: file.path, reason },
      'a secret file cannot be used: the value read before stays in use until the file holds a secret again',
    );
  };

  /**
   * Looks at the file; true when a new value was taken. `force` reads it whatever its signature says: a
   * file rewritten in place with as many bytes within one tick of the file system's clock looks the same.
   */
  const look = (force = false): boolean => {
    checkedAt = now();
    let seen: string;
    let text: string;
    let changedAt: number;
    try {
      const stat = statSync(file.path);
      seen = signatureOf(stat);
      if (seen === signature && !force) return false;
      if (stat.size > MAX_SECRET_FILE_BYTES) {
        keepLast(`the file is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
        return false;
      }
      changedAt = stat.mtimeMs;
      text = readFileSync(file.path, 'utf8');
    } catch (err) {
      keepLast((err as NodeJS.ErrnoException).code ?? 'unreadable');
      return false;
    }
    // As the loader reads it (load.ts): a byte-order mark and the trailing newline are no part of it.
    const line = text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '');
    const read = options.trim ? line.trim() : line;
    const problem = !read
      ? 'the file is empty'
      : CONTROL.test(read)
        ? 'a line break or another control character in it'
        : options.check?.(read);
    // A writer that truncates before it writes is caught half-way: the signature is not kept, so the
    // next look reads the file again.
    if (problem) {
      keepLast(problem);
      return false;
    }
    signature = seen;
    if (warned) options.logger?.info({ key: file.keyPath }, 'the secret file holds a secret again');
    warned = false;
    if (read === value) return false;
    // The overlap counts from when the file changed, not from when this process noticed: a secret is
    // looked at only on the way of a call, so a leaked admin token rotated an hour ago would otherwise be
    // let in by the attacker's own next request, and for 5 minutes after it. Set here, with a new value
    // only: a later touch of the file (the value unchanged) returns above and moves it neither way.
    previous = { value, until: Math.min(now(), changedAt) + PREVIOUS_SECRET_ACCEPTED_MS };
    value = read;
    options.logger?.info({ key: file.keyPath }, 'secret file changed: its new value is in use');
    return true;
  };

  const current = () => {
    if (now() - checkedAt >= SECRET_FILE_CHECK_MS) look();
    return value;
  };
  return {
    current,
    refresh() {
      if (now() - refreshedAt < REFRESH_MIN_MS) return false;
      refreshedAt = now();
      return look(true);
    },
    accepted() {
      const taken = current();
      return previous && now() < previous.until ? [taken, previous.value] : [taken];
    },
  };
}
