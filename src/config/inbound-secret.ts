// The secrets other parties present to the bridge (the admin token, a subscription's bearer secret and
// HMAC key) are compared by the bridge, so their strength is the bridge's to check: a one-character
// secret, or one copied from an example, is guessed or known.
import { createHash, timingSafeEqual } from 'node:crypto';

/** The shortest inbound secret taken (the schema says the same of each as written). */
export const MIN_INBOUND_SECRET_LENGTH = 16;
/**
 * A placeholder: examples/bridge.yaml once carried `change-me-local-admin-token`, and a running `serve`
 * took it, so whoever had read the example could open the ledger browser. Any secret naming itself
 * "change me" is one nobody generated.
 */
const PLACEHOLDER = /change[-_ ]?me/i;

/**
 * What is wrong with an inbound secret (never quoting it), or undefined. `noun` is what the message calls
 * it ("token", "secret"). Also asked of a rotated file, which is then not taken (secret-files.ts).
 */
export function guessableSecretProblem(value: string, noun: string): string | undefined {
  const generate = 'generate one: openssl rand -base64 32';
  if (PLACEHOLDER.test(value))
    return `is a placeholder ("change me"), of the kind examples and templates carry: anyone who has read one knows it; ${generate}`;
  // The schema counts the spaces a secret is written with; the checks compare it trimmed.
  if (value.trim().length < MIN_INBOUND_SECRET_LENGTH)
    return `is shorter than ${MIN_INBOUND_SECRET_LENGTH} characters without its surrounding spaces: a short ${noun} is guessed; ${generate}`;
  return undefined;
}

/** A subscription's `secret` or `hmacSecret`; asked at load and of a rotated `secretFile`/`hmacSecretFile`. */
export const subscriptionSecretProblem = (value: string): string | undefined => guessableSecretProblem(value, 'secret');

/**
 * Whether a secret sent equals the one expected, the same way for every inbound secret (admin token,
 * subscription bearer secret and signature): in constant time whatever the lengths, by comparing digests
 * of fixed length. Neither side is trimmed here: the expected one was when read (secretOf's `trim`).
 */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
