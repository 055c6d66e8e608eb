import type { CountedRequest } from './requests.js';
import type { SandboxConfig, SimClientInput, SimEvent, SimOperation } from './types.js';

export type { SandboxConfig, SimEvent } from './types.js';

const TIMEOUT_MS = 10_000;

function isSimEventList(value: unknown): value is SimEvent[] {
  return (
    Array.isArray(value) &&
    value.every(
      (e) =>
        typeof e === 'object' &&
        e !== null &&
        typeof e.id === 'string' &&
        typeof e.trackingId === 'string' &&
        Array.isArray(e.actions),
    )
  );
}

/** A typed client of the simulator's /_sandbox control API, for tests and the demo. */
export class OpenCrvsSandboxControl {
  readonly #root: string;

  /** `baseUrl` is the simulator's base URL (`simulator.baseUrl`). */
  constructor(baseUrl: string) {
    this.#root = `${baseUrl.replace(/\/+$/, '')}/_sandbox`;
  }

  async #call(method: string, path: string, body?: unknown): Promise<Response> {
    const response = await fetch(`${this.#root}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!response.ok) {
      throw new Error(`sandbox control ${method} ${path}: HTTP ${response.status} ${await response.text()}`);
    }
    return response;
  }

  /** Deletes every event, restores the seeded clients and clears faults and confirmation mode. */
  async reset(): Promise<void> {
    await this.#call('POST', '/reset');
  }

  /** Sets the confirmation mode and/or replaces the faults (see SandboxConfig). */
  async configure(config: SandboxConfig): Promise<void> {
    await this.#call('POST', '/config', config);
  }

  /** Adds or replaces a client; replacing revokes the tokens it already holds. */
  async addClient(client: SimClientInput): Promise<void> {
    await this.#call('POST', '/clients', client);
  }

  /** Removes a client: its tokens are answered 401 from now on. */
  async removeClient(clientId: string): Promise<void> {
    await this.#call('DELETE', `/clients/${encodeURIComponent(clientId)}`);
  }

  /** Removes a location from the events API (v2.0): creates and NOTIFYs naming it get a 400; reset restores it. */
  async removeLocation(locationId: string): Promise<void> {
    await this.#call('DELETE', `/locations/${encodeURIComponent(locationId)}`);
  }

  /** Closes a location as OpenCRVS v2.0 does: still listed, with `validUntil`; events naming it are still taken. */
  async closeLocation(locationId: string, validUntil: string): Promise<void> {
    await this.#call('POST', `/locations/${encodeURIComponent(locationId)}/close`, { validUntil });
  }

  /** Archives a location as OpenCRVS 1.9 does (1.9 mode only): still listed, `status: inactive`; events naming it are still taken. */
  async deactivateLocation(locationId: string): Promise<void> {
    await this.#call('POST', `/locations/${encodeURIComponent(locationId)}/deactivate`);
  }

  /** The country configuration's later answer to the NOTIFY of `eventId` it left pending. */
  async confirm(eventId: string, decision: 'accept' | 'reject'): Promise<void> {
    await this.#call('POST', `/events/${encodeURIComponent(eventId)}/confirm`, { decision });
  }

  /**
   * Requests received since start or the last reset, by operation (`token`, `locations`, `create`, …), whatever
   * they were answered; an operation never asked is absent.
   */
  async requests(): Promise<Partial<Record<CountedRequest, number>>> {
    const body: unknown = await (await this.#call('GET', '/requests')).json();
    if (typeof body !== 'object' || body === null || Object.values(body).some((n) => typeof n !== 'number'))
      throw new Error('sandbox control: unexpected /requests answer');
    return body as Partial<Record<CountedRequest, number>>;
  }

  /**
   * Requests held by a delay fault whose client closed the connection before they were answered, since start
   * or the last reset, by operation: the calls the bridge cut off rather than waited out.
   */
  async abandonedRequests(): Promise<Partial<Record<SimOperation, number>>> {
    const body: unknown = await (await this.#call('GET', '/requests/abandoned')).json();
    if (typeof body !== 'object' || body === null || Object.values(body).some((n) => typeof n !== 'number'))
      throw new Error('sandbox control: unexpected /requests/abandoned answer');
    return body as Partial<Record<SimOperation, number>>;
  }

  /** Every stored event with its actions; `transactionId` keeps those with an action of that id. */
  async events(filter: { transactionId?: string; type?: string } = {}): Promise<SimEvent[]> {
    const query = new URLSearchParams();
    if (filter.transactionId) query.set('transactionId', filter.transactionId);
    if (filter.type) query.set('type', filter.type);
    const qs = query.size > 0 ? `?${query}` : '';
    const body: unknown = await (await this.#call('GET', `/events${qs}`)).json();
    if (!isSimEventList(body)) throw new Error('sandbox control: unexpected /events answer');
    return body;
  }
}
