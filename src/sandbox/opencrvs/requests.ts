import type { SimOperation } from './types.js';

/** What the simulator counts: every events-API operation, and the token endpoint. */
export type CountedRequest = SimOperation | 'token';

/**
 * Requests the simulator received, by operation, whatever their answer (a fault's too): lets a test tell
 * how often the bridge asked OpenCRVS for something (its location list, a token) rather than only what
 * came of it. In 1.9 mode the gateway's v1 location API counts as `locations`.
 */
export class RequestCounter {
  #counts = new Map<CountedRequest, number>();
  #abandoned = new Map<SimOperation, number>();

  count(request: CountedRequest): void {
    this.#counts.set(request, (this.#counts.get(request) ?? 0) + 1);
  }

  /** A request held by a delay fault whose client closed the connection before it was answered. */
  abandon(operation: SimOperation): void {
    this.#abandoned.set(operation, (this.#abandoned.get(operation) ?? 0) + 1);
  }

  snapshot(): Partial<Record<CountedRequest, number>> {
    return Object.fromEntries(this.#counts);
  }

  /** Lets a test tell that the bridge cut off a call it stopped waiting for, rather than leave it running. */
  abandoned(): Partial<Record<SimOperation, number>> {
    return Object.fromEntries(this.#abandoned);
  }

  reset(): void {
    this.#counts.clear();
    this.#abandoned.clear();
  }
}
