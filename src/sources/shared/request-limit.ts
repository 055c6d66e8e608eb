import pLimit from 'p-limit';
import type { SourceSettings } from '../../config/types.js';

/** Calls in flight to one source when `maxConcurrentRequests` is not set (the schema's default). */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 8;

/**
 * Runs `call` in one of the source's slots. A call still queued for a slot when one of `stops` fires (the
 * client closing, the caller's deadline, a partial evaluation that stopped) rejects at once with that
 * signal's reason and never runs; once it has a slot, stopping it is the call's own business (its
 * callSignal). Without this, a queued call noticed the abort only when a slot came free: with every slot
 * held by reads waiting out sources[].timeoutMs, that is as late as the timeout.
 */
export type RequestLimit = <T>(stops: ReadonlyArray<AbortSignal | undefined>, call: () => Promise<T>) => Promise<T>;

/**
 * The slots a source's client sends its calls through. A source is a hospital's production system: a
 * poll pass's batched searches, the inbox's reads and the write-backs share these slots instead of
 * each opening as many connections as it has work.
 */
export function sourceRequestLimit(settings: SourceSettings): RequestLimit {
  const limit = pLimit(settings.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS);
  // One listener per signal for all the calls queued on it, not one per call: a backlog queues hundreds
  // on the client's closing signal (Node warns of a leak past 10 listeners).
  const waiting = new Map<AbortSignal, Set<() => void>>();
  const onAbort = (event: Event) => {
    const stop = event.target as AbortSignal;
    for (const giveUp of waiting.get(stop) ?? []) giveUp();
  };
  const listen = (stop: AbortSignal, giveUp: () => void) => {
    let calls = waiting.get(stop);
    if (!calls) {
      calls = new Set();
      waiting.set(stop, calls);
      stop.addEventListener('abort', onAbort, { once: true });
    }
    calls.add(giveUp);
  };
  const forget = (stop: AbortSignal, giveUp: () => void) => {
    const calls = waiting.get(stop);
    calls?.delete(giveUp);
    if (calls?.size !== 0) return;
    waiting.delete(stop);
    stop.removeEventListener('abort', onAbort);
  };
  return <T>(stops: ReadonlyArray<AbortSignal | undefined>, call: () => Promise<T>): Promise<T> => {
    const signals = stops.filter((stop): stop is AbortSignal => stop !== undefined);
    const fired = signals.find((stop) => stop.aborted);
    if (fired) return Promise.reject(fired.reason);
    if (signals.length === 0) return limit(call);
    return new Promise<T>((resolve, reject) => {
      let gaveUp = false;
      const giveUps = signals.map((stop) => {
        const giveUp = () => {
          gaveUp = true;
          done();
          reject(stop.reason);
        };
        listen(stop, giveUp);
        return [stop, giveUp] as const;
      });
      // Listening ends as soon as the call has a slot or gave up.
      function done() {
        for (const [stop, giveUp] of giveUps) forget(stop, giveUp);
      }
      // A call that gave up frees its slot as soon as it gets it, without running.
      limit(async () => {
        done();
        if (gaveUp) return;
        await call().then(resolve, reject);
      }).catch(reject);
    });
  };
}
