// An in-memory OpenCrvsApi for worker unit tests: scripted failures, call log, idempotent like OpenCRVS.
import type { DeliverySettings } from '../../src/config/types.js';
import { OpenCrvsError, type OpenCrvsErrorInit } from '../../src/opencrvs/errors.js';
import type {
  CreateAndNotifyInput,
  CreateEventInput,
  EventDocument,
  NotifyInput,
  NotifyResult,
  OpenCrvsApi,
} from '../../src/opencrvs/types.js';

/** The worker settings the delivery unit tests start from (each test overrides what it is about). */
export const TEST_DELIVERY_SETTINGS: DeliverySettings = {
  mode: 'two-step',
  concurrency: 4,
  settleSeconds: 0,
  recheckAfterSeconds: 30,
  maxAttempts: 5,
  maxAgeHours: 24,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  pollIntervalMs: 50,
  lockTimeoutSeconds: 300,
  holdProbeSeconds: 60,
  // Outages held only where a test asks (delivery-hold.test.ts): these tests count retries.
  outageHoldSeconds: 3600,
};

export type Call = { op: 'create' | 'notify' | 'createAndNotify' | 'checkToken'; transactionId?: string };

export class FakeOpenCrvs implements OpenCrvsApi {
  readonly calls: Call[] = [];
  /** Failures to throw, by operation, consumed in order. */
  readonly failures: Record<string, OpenCrvsErrorInit[]> = {};
  /** Fails every call of an operation until cleared (an operator problem). */
  readonly always: Record<string, OpenCrvsErrorInit | undefined> = {};
  outcome: 'accepted' | 'pending' = 'accepted';
  private readonly events = new Map<string, EventDocument>();
  private readonly notified = new Set<string>();
  private seq = 0;

  fail(op: string, init: Partial<OpenCrvsErrorInit> & Pick<OpenCrvsErrorInit, 'classification'>, times = 1): void {
    // An answer with a status is OpenCRVS's own (its JSON), unless the test says a proxy's.
    const full: OpenCrvsErrorInit = {
      kind: 'server',
      message: 'boom',
      operation: op,
      fromOpenCrvs: init.status !== undefined,
      ...init,
    };
    this.failures[op] = [...(this.failures[op] ?? []), ...Array.from({ length: times }, () => full)];
  }

  private check(op: string): void {
    const always = this.always[op];
    if (always) throw new OpenCrvsError(always);
    const next = this.failures[op]?.shift();
    if (next) throw new OpenCrvsError(next);
  }

  async createEvent(input: CreateEventInput): Promise<EventDocument> {
    this.calls.push({ op: 'create', transactionId: input.transactionId });
    this.check('create');
    return this.create(input.transactionId, input.type);
  }

  private create(transactionId: string, type: string): EventDocument {
    let event = this.events.get(transactionId);
    if (!event) {
      this.seq++;
      event = {
        id: `event-${this.seq}`,
        type,
        trackingId: `TRK${String(this.seq).padStart(3, '0')}`,
        createdAt: '2026-01-01T00:00:00Z',
        updatedAt: '2026-01-01T00:00:00Z',
        actions: [],
      };
      this.events.set(transactionId, event);
    }
    return event;
  }

  /** Operations whose next scripted failure comes after the change is stored (the answer is lost). */
  readonly commitThenFail = new Set<string>();

  /** Runs as a NOTIFY arrives, before its answer: a source writing meanwhile. */
  onNotify?: () => void;

  async notify(input: NotifyInput): Promise<NotifyResult> {
    this.calls.push({ op: 'notify', transactionId: input.transactionId });
    this.onNotify?.();
    const lost = this.commitThenFail.has('notify');
    if (!lost) this.check('notify');
    const event = [...this.events.values()].find((e) => e.id === input.eventId);
    if (!event) throw new OpenCrvsError({ kind: 'not-found', classification: 'permanent', message: 'Event not found' });
    // Like OpenCRVS: the NOTIFY is an action of the event, and a replay of its transactionId adds none.
    if (!event.actions.some((a) => a.type === 'NOTIFY' && a.transactionId === input.transactionId)) {
      event.actions.push({
        id: `notify-${event.actions.length + 1}`,
        type: 'NOTIFY',
        status: this.outcome === 'accepted' ? 'Accepted' : 'Requested',
        transactionId: input.transactionId,
      });
    }
    this.notified.add(event.id);
    if (lost) this.check('notify');
    return { outcome: this.outcome, event, eventId: event.id, trackingId: event.trackingId };
  }

  async createAndNotify(input: CreateAndNotifyInput): Promise<NotifyResult> {
    this.calls.push({ op: 'createAndNotify', transactionId: input.transactionId });
    this.check('createAndNotify');
    const event = this.create(`${input.transactionId}:create`, input.eventType);
    this.notified.add(event.id);
    return { outcome: this.outcome, event, eventId: event.id, trackingId: event.trackingId };
  }

  async listLocations() {
    return [];
  }

  async checkToken() {
    this.calls.push({ op: 'checkToken' });
    this.check('checkToken');
    return { scopes: ['record.create', 'record.notify'], expiresAt: Date.now() + 600_000 };
  }

  count(op: Call['op']): number {
    return this.calls.filter((c) => c.op === op).length;
  }
}
