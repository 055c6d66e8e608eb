import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.js';
import { callSignal } from '../../util/call-signal.js';
import {
  buildNotification,
  type EmitterEvent,
  type NotifyStyle,
  type OutboundNotification,
  type StyleContext,
  styleHasStatusMessages,
  styleReports,
} from './notify-styles.js';
import type { ResourceChange } from './repository.js';

export interface SubscriptionEmitter {
  dropNext(n: number): void;
  duplicateNext(n: number): void;
  flush(): Promise<void>;
  sendHeartbeat(): Promise<void>;
  pauseHeartbeats(): void;
  resumeHeartbeats(): void;
  readonly eventCount: number;
}

export interface NotifyOptions {
  url: string;
  style: NotifyStyle;
  secret?: string;
  headers?: Record<string, string>;
  heartbeatSeconds?: number;
  resourceTypes?: string[];
}

// A subscriber that is down should cost the sandbox seconds, not minutes: three retries within about
// 2 s, then the notification is dropped (the bridge's poller is the reconciliation path anyway).
const RETRY_DELAYS_MS = [100, 400, 1600];
const REQUEST_TIMEOUT_MS = 5000;
// Bounds memory when a test writes much faster than the subscriber answers.
const MAX_QUEUED = 10_000;
export const SANDBOX_SUBSCRIPTION_ID = 'sandbox-subscription';

/**
 * Sends notifications for committed writes in one wire style, one at a time and in write order, off
 * the write path. Test hooks create the faults a real receiver must survive: gaps (dropNext),
 * duplicates (duplicateNext) and silence (pauseHeartbeats).
 */
export class NotificationEmitter implements SubscriptionEmitter {
  private readonly ctx: StyleContext;
  private readonly types: Set<string> | undefined;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private events = 0;
  private toDrop = 0;
  private toDuplicate = 0;
  private heartbeatsPaused = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly options: NotifyOptions,
    baseUrl: string,
    logger: Logger,
  ) {
    this.ctx = {
      url: options.url,
      style: options.style,
      secret: options.secret,
      headers: options.headers,
      baseUrl,
      subscriptionId: SANDBOX_SUBSCRIPTION_ID,
    };
    this.types = options.resourceTypes?.length ? new Set(options.resourceTypes) : undefined;
    this.log = logger.child({ component: 'fhir-sandbox-notify', style: options.style });
  }

  get eventCount(): number {
    return this.events;
  }

  /** Handshake first (backport), then heartbeats on their timer. */
  start(): void {
    if (!styleHasStatusMessages(this.options.style)) return;
    void this.enqueue({ kind: 'handshake', eventsSinceStart: this.events });
    const seconds = this.options.heartbeatSeconds;
    if (seconds && seconds > 0) {
      this.timer = setInterval(() => {
        if (!this.heartbeatsPaused) void this.sendHeartbeat();
      }, seconds * 1000);
      this.timer.unref();
    }
  }

  /** Repository listener: called synchronously after each committed write, never blocks it. */
  notify(change: ResourceChange): void {
    if (this.closed) return;
    if (this.types && !this.types.has(change.resourceType)) return;
    if (!styleReports(this.options.style, change.interaction)) return;
    const eventNumber = ++this.events;
    if (this.toDrop > 0) {
      this.toDrop--;
      this.log.debug({ eventNumber }, 'notification dropped on purpose (test hook)');
      return;
    }
    const copies = this.toDuplicate > 0 ? 2 : 1;
    if (copies === 2) this.toDuplicate--;
    const request = buildNotification(this.ctx, { kind: 'event', change, eventNumber });
    if (!request) return;
    for (let i = 0; i < copies; i++) void this.enqueueRequest(request, { eventNumber, type: change.resourceType });
  }

  dropNext(n: number): void {
    this.toDrop += Math.max(0, Math.floor(n));
  }

  duplicateNext(n: number): void {
    this.toDuplicate += Math.max(0, Math.floor(n));
  }

  async flush(): Promise<void> {
    // Deliveries queued while waiting extend the tail; wait until it stops moving.
    let seen: Promise<void> | undefined;
    while (seen !== this.tail) {
      seen = this.tail;
      await seen;
    }
  }

  sendHeartbeat(): Promise<void> {
    if (!styleHasStatusMessages(this.options.style)) return Promise.resolve();
    return this.enqueue({ kind: 'heartbeat', eventsSinceStart: this.events });
  }

  pauseHeartbeats(): void {
    this.heartbeatsPaused = true;
  }

  resumeHeartbeats(): void {
    this.heartbeatsPaused = false;
  }

  /** Stops the heartbeat timer and abandons queued and in-flight deliveries. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.abort.abort();
    await this.tail;
  }

  private enqueue(event: EmitterEvent): Promise<void> {
    const request = buildNotification(this.ctx, event);
    return request ? this.enqueueRequest(request, { kind: event.kind }) : Promise.resolve();
  }

  private enqueueRequest(request: OutboundNotification, about: Record<string, unknown>): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.queued >= MAX_QUEUED) {
      this.log.warn({ ...about, queued: this.queued }, 'notification queue full; notification dropped');
      return Promise.resolve();
    }
    this.queued++;
    const delivery = this.tail.then(() => this.deliver(request, about)).finally(() => this.queued--);
    this.tail = delivery;
    return delivery;
  }

  private async deliver(request: OutboundNotification, about: Record<string, unknown>): Promise<void> {
    let lastError = '';
    for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
      if (this.closed) return;
      if (attempt > 0) {
        try {
          await sleep(RETRY_DELAYS_MS[attempt - 1], undefined, { signal: this.abort.signal });
        } catch {
          return; // closed while waiting
        }
      }
      // Not AbortSignal.any over AbortSignal.timeout: see callSignal.
      const call = callSignal(REQUEST_TIMEOUT_MS, this.abort.signal);
      try {
        const response = await fetch(request.url, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: call.signal,
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return;
        lastError = `HTTP ${response.status}`;
      } catch (err) {
        if (this.closed) return;
        lastError = err instanceof Error ? err.name : 'error';
      } finally {
        call.done();
      }
      this.log.debug({ ...about, attempt: attempt + 1, error: lastError }, 'notification attempt failed');
    }
    // No URL in the log: subscriber URLs can carry credentials.
    this.log.warn(
      { ...about, attempts: RETRY_DELAYS_MS.length + 1, error: lastError },
      'notification dropped after retries',
    );
  }
}
