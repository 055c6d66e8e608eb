import { randomInt, randomUUID } from 'node:crypto';
import type { SimAction, SimEvent } from './types.js';

const TRACKING_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function actionKey(transactionId: string, type: string, status: string): string {
  return `${transactionId}\u0000${type}\u0000${status}`;
}

/**
 * The simulator's event storage: a Map, with the unique keys OpenCRVS enforces in its database:
 * an event per (transactionId, event type) and an action per (transactionId, actionType, status)
 * across all events.
 */
export class EventStore {
  readonly #events = new Map<string, SimEvent>();
  readonly #byCreateKey = new Map<string, string>();
  readonly #actionOwners = new Map<string, string>();
  readonly #trackingIds = new Set<string>();

  reset(): void {
    this.#events.clear();
    this.#byCreateKey.clear();
    this.#actionOwners.clear();
    this.#trackingIds.clear();
  }

  get(eventId: string): SimEvent | undefined {
    return this.#events.get(eventId);
  }

  findCreated(eventType: string, transactionId: string): SimEvent | undefined {
    const id = this.#byCreateKey.get(`${eventType}\u0000${transactionId}`);
    return id ? this.#events.get(id) : undefined;
  }

  /** The event holding an action with this (transactionId, type, status), on any event. */
  actionOwner(transactionId: string, type: string, status: string): SimEvent | undefined {
    const id = this.#actionOwners.get(actionKey(transactionId, type, status));
    return id ? this.#events.get(id) : undefined;
  }

  list(): SimEvent[] {
    return [...this.#events.values()];
  }

  get size(): number {
    return this.#events.size;
  }

  /** Stores a new event whose first action is the given CREATE action. */
  create(eventType: string, create: SimAction): SimEvent {
    const event: SimEvent = {
      id: randomUUID(),
      type: eventType,
      trackingId: this.#newTrackingId(),
      createdAt: create.createdAt,
      updatedAt: create.createdAt,
      actions: [],
    };
    this.#events.set(event.id, event);
    this.#byCreateKey.set(`${eventType}\u0000${create.transactionId}`, event.id);
    this.append(event, [create]);
    return event;
  }

  /** Adds actions in order; the caller has checked the unique keys. */
  append(event: SimEvent, actions: SimAction[]): void {
    for (const action of actions) {
      event.actions.push(action);
      this.#actionOwners.set(actionKey(action.transactionId, action.type, action.status), event.id);
      event.updatedAt = action.createdAt;
    }
  }

  // 36^6 ≈ 2.2 billion ids: a free one is found at the first try in any realistic run; the bound only
  // guards the loop.
  #newTrackingId(): string {
    for (let attempt = 0; attempt < 1000; attempt++) {
      let id = '';
      for (let i = 0; i < 6; i++) id += TRACKING_ALPHABET[randomInt(TRACKING_ALPHABET.length)];
      if (!this.#trackingIds.has(id)) {
        this.#trackingIds.add(id);
        return id;
      }
    }
    throw new Error('no free tracking id');
  }
}
