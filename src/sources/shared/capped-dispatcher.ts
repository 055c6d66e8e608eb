// A fetch() dispatcher that refuses answers past a size. fhir-kit-client reads every answer whole with
// `response.text()`, so an EMR (or a misrouted proxy) sending an endless or enormous body grew the
// bridge's memory until the call's timeout cut it: bandwidth × timeout, gigabytes on a LAN. The only
// place to count bytes under fhir-kit is the dispatcher its Request is given (`requestOptions`).
import { Agent, type Dispatcher } from 'undici';
import { ResponseTooLargeError } from './read-body.js';

/**
 * An undici Agent whose answers stop at `maxBytes`: the connection is torn down and fetch() rejects,
 * with the ResponseTooLargeError as the cause (see `tooLargeIn`).
 */
export function cappedAgent(maxBytes: number): Dispatcher {
  return new Agent().compose((dispatch) => (options, handler) => dispatch(options, capped(handler, maxBytes)));
}

/**
 * The handler with its body callbacks counted. Node's own fetch hands over the handler style of the
 * undici it bundles: `onData(chunk)` up to undici 6 (Node 20 and 22), `onResponseData(controller,
 * chunk)` from undici 7 (Node 24). Both are counted; everything else passes through untouched.
 */
function capped(handler: Dispatcher.DispatchHandler, maxBytes: number): Dispatcher.DispatchHandler {
  let size = 0;
  const count = (chunk: Uint8Array) => {
    size += chunk.byteLength;
    return size > maxBytes;
  };
  return new Proxy(handler, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'onData') {
        return (chunk: Buffer) => {
          // Thrown from onData, undici destroys the socket and fails the request with this error.
          if (count(chunk)) throw new ResponseTooLargeError(maxBytes);
          return value.call(target, chunk);
        };
      }
      if (property === 'onResponseData') {
        return (controller: { abort(reason: Error): void }, chunk: Buffer) => {
          if (count(chunk)) return controller.abort(new ResponseTooLargeError(maxBytes));
          return value.call(target, controller, chunk);
        };
      }
      return value.bind(target);
    },
  });
}

/** The ResponseTooLargeError behind a failed fetch() (fetch wraps it: `TypeError: terminated`). */
export function tooLargeIn(err: unknown): ResponseTooLargeError | undefined {
  for (let cause = err, depth = 0; cause && depth < 5; depth++) {
    if (cause instanceof ResponseTooLargeError) return cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}
