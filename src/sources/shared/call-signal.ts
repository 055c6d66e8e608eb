// One call's abort signal: its timeout, or the client closing (shutdown), whichever comes first.
// Not AbortSignal.any([AbortSignal.timeout(ms), closing]): on Node 20 the inner timeout signal can be
// garbage-collected before it fires (nodejs/node#57736), and the call then waits forever. A review saw
// an EMR call hang for minutes (polling and the inbox stalled) and an endless answer grow to 20 GB.
// Here a timer the caller clears holds the controller.

export interface CallSignal {
  signal: AbortSignal;
  /** Clears the timer and the listener; call it when the call is over, body included. */
  done(): void;
}

export function callSignal(timeoutMs: number, closing: AbortSignal): CallSignal {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
    timeoutMs,
  );
  const onClose = () => controller.abort(closing.reason);
  if (closing.aborted) onClose();
  else closing.addEventListener('abort', onClose, { once: true });
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      closing.removeEventListener('abort', onClose);
    },
  };
}
