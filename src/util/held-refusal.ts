// A token endpoint's answer that no second ask would change (a refusal of the client, a redirect, an answer
// without a usable token), held as its answer for a while: asked again at once, it answers the same, and
// each ask is a failed login in the IdP's log that may lock the client out. One rule for the OpenCRVS token
// client (opencrvs/token.ts) and the sources' OAuth2 client (sources/shared/source-auth.ts): the answer
// stands until its backoff ends (util/refusal-backoff.ts) or the client secret in its file is no longer the
// one the request sent. Any change of the secret lifts any answer held, not only a refusal: the operator who
// rewrites it has usually fixed what was wrong (an IdP answering a wrong secret with a redirect to its login
// page, or a 200 without a token, refuses it all the same), and the next pass is where they look for it.
import { nextRefusalBackoff } from './refusal-backoff.js';

/** A client secret that follows its file (config/secret-files.ts): `refresh` looks at the file now. */
export interface FollowedSecret {
  current(): string;
  refresh(): unknown;
}

/** The answer held, when the endpoint gave it, and until when it stands for the endpoint. */
export interface Held<T> {
  answer: T;
  at: number;
  until: number;
}

export interface HeldRefusal<T> {
  /**
   * Holds `answer`, given to a request that sent `secret`, and returns its wait: the first backoff, or
   * twice the last one when the answer held before it was never followed by a token (`clear`).
   */
  hold(answer: T, secret: string): number;
  /**
   * The answer while it stands: its backoff runs and the client secret in use is the one it was given to.
   * A secret changed meanwhile drops it (the next one held waits the first backoff again). Compared with
   * the value sent, not told by this look: the change may have been read already, by the look a 401 from
   * the API made (its client's `invalidate`), which left the answer standing.
   */
  standing(): Held<T> | undefined;
  /**
   * Whether an answer is held and its backoff runs, without looking at the secret file (standing() does,
   * when the endpoint would next be asked): a failure it caused may be kept only while it is not.
   */
  holds(): boolean;
  /** A token obtained: nothing stands, and the next answer held waits the first backoff. */
  clear(): void;
}

/** `secretChanged` is told when a changed secret drops an answer still in its backoff (for the log). */
export function heldRefusal<T>(
  clientSecret: FollowedSecret,
  secretChanged: () => void,
  now: () => number = () => Date.now(),
): HeldRefusal<T> {
  let held: (Held<T> & { backoffMs: number; secret: string }) | undefined;
  return {
    hold(answer, secret) {
      const at = now();
      const backoffMs = nextRefusalBackoff(held?.backoffMs);
      held = { answer, at, until: at + backoffMs, backoffMs, secret };
      return backoffMs;
    },
    standing() {
      // Past its backoff it is kept (not dropped): met again, it doubles the wait.
      if (!held || now() >= held.until) return undefined;
      clientSecret.refresh();
      if (clientSecret.current() !== held.secret) {
        held = undefined;
        secretChanged();
        return undefined;
      }
      return { answer: held.answer, at: held.at, until: held.until };
    },
    holds() {
      return held !== undefined && now() < held.until;
    },
    clear() {
      held = undefined;
    },
  };
}
