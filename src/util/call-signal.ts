// One call's abort signal: its timeout, the client closing (shutdown), or the caller's own signal (the
// write-back's deadline), whichever comes first.
// Not AbortSignal.any([AbortSignal.timeout(ms), closing]): on Node 20 the inner timeout signal can be
// garbage-collected before it fires (nodejs/node#57736), and the call then waits forever. A review saw
// an EMR call hang for minutes (polling and the inbox stalled) and an endless answer grow to 20 GB.
// Here a timer the caller clears holds the controller.

export interface CallSignal {
  signal: AbortSignal;
  /** Clears the timer and the listeners; call it when the call is over, body included. */
  done(): void;
}

export function callSignal(timeoutMs: number, ...stops: Array<AbortSignal | undefined>): CallSignal {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
    timeoutMs,
  );
  const listening: Array<[AbortSignal, () => void]> = [];
  for (const stop of stops) {
    if (!stop) continue;
    const onStop = () => controller.abort(stop.reason);
    if (stop.aborted) onStop();
    else {
      stop.addEventListener('abort', onStop, { once: true });
      listening.push([stop, onStop]);
    }
  }
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      for (const [stop, onStop] of listening) stop.removeEventListener('abort', onStop);
    },
  };
}

/** Waits `ms` (a retry's backoff), or less when one of the signals fires first. Never rejects. */
export function pause(ms: number, ...stops: Array<AbortSignal | undefined>): Promise<void> {
  return new Promise((resolve) => {
    const call = callSignal(ms, ...stops);
    const end = () => {
      call.done();
      resolve();
    };
    if (call.signal.aborted) end();
    else call.signal.addEventListener('abort', end, { once: true });
  });
}
