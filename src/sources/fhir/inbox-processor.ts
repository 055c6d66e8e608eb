import type { Logger } from '../../observability/logger.js';
import { MinuteTally } from '../../observability/minute-tally.js';
import { RepeatedFailure } from '../../observability/repeated-failure.js';
import type { SourcePipeline } from '../pipeline.js';
import type { FhirSourceClient } from './fhir-client.js';
import type { InboxRow, InboxStore } from './inbox.js';
import type { ParsedNotification } from './notification.js';
import { reevaluate } from './reevaluate.js';

export interface MetaStore {
  getMeta(key: string): string | undefined;
  /** `null` deletes the key. */
  setMeta(key: string, value: string | null): void;
}

export interface ProcessorSource {
  id: string;
  client: FhirSourceClient;
  pipeline: SourcePipeline;
  /** A reconciliation pass (the poller's pollOnce): run on pings, gaps and heartbeat silence. */
  catchUp: () => Promise<unknown>;
  heartbeatSeconds?: number;
  /** The source is polled too: what a notification recorded, a poll would record again if lost. */
  polled?: boolean;
  /**
   * The source's go-live in epoch ms (poll.since, sinceDays; FhirPoller.goLive), undefined for none: what a
   * notification names and was last changed before it is not evaluated unless `holds` (reevaluate, `goLive`).
   */
  goLive?: () => number | undefined;
  /** The ledger holds a row of this source naming `ref` (as its subject or its source resource). */
  holds?: (ref: string) => boolean;
}

export interface SubscriptionStatus {
  lastNotificationAt?: number;
  lastEventNumber?: number;
  gaps: number;
  lastGapAt?: number;
  lastGapReason?: string;
  catchUps: number;
}

export interface InboxProcessorDeps {
  inbox: InboxStore;
  sources: ProcessorSource[];
  meta: MetaStore;
  logger: Logger;
  now?: () => number;
  /** Rows per processing round (bounded work per tick). */
  batchSize?: number;
  /** Tries per inbox row before it is left to the poller. */
  maxAttempts?: number;
  idleIntervalMs?: number;
  /**
   * How long a notification waits for others before its round starts. Notifications of one burst
   * then share one batched context read (one search for all their encounters, one for all their
   * observations…) instead of a handful of reads each; 0 processes each at once.
   */
  coalesceMs?: number;
}

const DEFAULT_BATCH_SIZE = 50;
/**
 * Processed notifications are kept this long (to look into a sender's behaviour), then deleted: nothing
 * reads them, and heartbeats alone add rows while nothing happens (a soak review: 191k rows, 34 MB of
 * bodies, after 55k events). Until then a row keeps a summary of its notification, not the whole of it
 * (ledger/inbox.ts, SHRUNK_BODY_SQL).
 */
const INBOX_RETENTION_MS = 24 * 3_600_000;
/** Deleted per pruning, so one never holds the event loop long; prunings are a minute apart at most. */
const PRUNE_CHUNK = 2_000;
const PRUNE_EVERY_MS = 60_000;
const DEFAULT_COALESCE_MS = 25;

/** Backport event numbers count per Subscription; a server that does not name it has one numbering. */
const eventNumberKey = (sourceId: string, subscription?: string) =>
  subscription ? `subscription:${sourceId}:eventNumber:${subscription}` : `subscription:${sourceId}:eventNumber`;
/** Subscriptions (event numberings) tracked per source: one per watched type is the usual set-up. */
const MAX_NUMBERINGS = 64;
/** Set (to the reason) while a catch-up poll is owed; cleared only once one has succeeded. */
const catchUpOwedKey = (sourceId: string) => `subscription:${sourceId}:catchUpOwed`;

/** A catch-up poll owed to a source; `generation` counts requests, so one made during a poll is kept. */
interface OwedCatchUp {
  generation: number;
  failures: number;
  notBefore: number;
}

/**
 * Works through stored notifications in arrival order: re-reads each referenced resource from the
 * source (a notification is a hint, never registration data), maps and records it; turns pings,
 * event-number gaps and heartbeat silence into catch-up polls. Duplicates change nothing because
 * the ledger is keyed by the source event, not by the notification.
 */
export class InboxProcessor {
  private readonly log: Logger;
  private readonly sources = new Map<string, ProcessorSource>();
  private readonly statuses = new Map<string, SubscriptionStatus>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private dueAt = 0;
  private silenceTimer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = true;
  /** Set by stop() (not before start(): processOnce may run on its own, as `sync` and tests run it). */
  private stopping = false;
  private readonly owed = new Map<string, OwedCatchUp>();
  /**
   * Each source's failed catch-up polls: a source down for hours fails one every 5 minutes (the backoff),
   * a full disk too; the first is logged at once, then the same failure at most once a minute with `repeats`.
   */
  private readonly catchUpFailures = new Map<string, RepeatedFailure>();
  /** The last event number per numbering (eventNumberKey), read from meta when first needed. */
  private readonly eventNumbers = new Map<string, number | undefined>();

  constructor(private readonly deps: InboxProcessorDeps) {
    this.log = deps.logger.child({ component: 'inbox' });
    this.now = deps.now ?? Date.now;
    for (const source of deps.sources) {
      this.sources.set(source.id, source);
      this.catchUpFailures.set(
        source.id,
        new RepeatedFailure(this.log, 'catch-up poll failed; will retry', { level: 'warn', now: this.now }),
      );
      const stored = deps.meta.getMeta(eventNumberKey(source.id));
      this.statuses.set(source.id, {
        gaps: 0,
        catchUps: 0,
        lastEventNumber: stored === undefined ? undefined : Number(stored),
        // Silence is measured from start-up until the first notification arrives.
        lastNotificationAt: this.now(),
      });
      // A catch-up that was owed when the process stopped (or crashed) is still owed.
      if (deps.meta.getMeta(catchUpOwedKey(source.id)))
        this.owed.set(source.id, { generation: 1, failures: 0, notBefore: 0 });
    }
  }

  status(sourceId: string): SubscriptionStatus | undefined {
    return this.statuses.get(sourceId);
  }

  start(): void {
    this.stopped = false;
    this.stopping = false;
    this.schedule(0);
    const periods = this.deps.sources.map((s) => s.heartbeatSeconds).filter((s): s is number => !!s);
    if (periods.length > 0) {
      this.silenceTimer = setInterval(() => this.checkSilence(), Math.min(...periods) * 500);
      this.silenceTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.silenceTimer) clearInterval(this.silenceTimer);
    await this.running?.catch(() => undefined);
  }

  /** Called by the receiver after a store: process soon instead of at the next idle tick. */
  wake(): void {
    if (this.stopped) return;
    const coalesceMs = this.deps.coalesceMs ?? DEFAULT_COALESCE_MS;
    // A round already due within the window takes this notification along.
    if (this.timer && this.dueAt <= performance.now() + coalesceMs) return;
    this.schedule(coalesceMs);
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    // Timers run on real time even where tests pass a clock of their own.
    this.dueAt = performance.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.processOnce()
        .then((count) => {
          if (this.stopped) return;
          // A full batch means a backlog: go on at once. Otherwise wait for the window (or the idle tick).
          const batchSize = this.deps.batchSize ?? DEFAULT_BATCH_SIZE;
          if (count >= batchSize) this.schedule(0);
          else if (count > 0) this.schedule(this.deps.coalesceMs ?? DEFAULT_COALESCE_MS);
          else if (!this.timer) this.schedule(this.deps.idleIntervalMs ?? 1000);
        })
        .catch((err) => {
          this.log.error({ err }, 'inbox round failed');
          if (!this.stopped) this.schedule(this.deps.idleIntervalMs ?? 1000);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** Processes up to one batch of due rows; returns how many rows were handled. */
  processOnce(): Promise<number> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * A round takes the due rows in arrival order. Bookkeeping (event numbers, pings) runs per row; the
   * resources the rows announce are then evaluated together, one evaluation and one commit per source,
   * so a burst of notifications costs one batched context read and one fsync, not one per row. If a
   * batch fails, its rows are handled one by one, so a single bad notification cannot hold the others.
   */
  private async round(): Promise<number> {
    this.prune();
    const rows = this.deps.inbox.due(this.deps.batchSize ?? DEFAULT_BATCH_SIZE, this.now());
    const batches = new Map<
      string,
      { source: ProcessorSource; rows: InboxRow[]; refs: Set<string>; vouched: Set<string> }
    >();
    const done: number[] = [];
    for (const row of rows) {
      const source = this.sources.get(row.sourceId);
      if (!source) {
        this.deps.inbox.abandon(row.id, 'source no longer configured', this.now());
        continue;
      }
      const status = this.statusOf(source, row);
      const notification = row.notification;
      this.trackEventNumbers(source, status, notification);
      if (notification.kind === 'ping')
        this.catchUp(source, status, `notification without detail (${notification.style})`);
      if (notification.kind === 'event') {
        // Changed or deleted alike: each is read again, and one that reads as gone is a deletion.
        const batch = batches.get(source.id) ?? {
          source,
          rows: [],
          refs: new Set<string>(),
          vouched: new Set<string>(),
        };
        batch.rows.push(row);
        for (const ref of notification.refs) {
          batch.refs.add(ref);
          if (!notification.unsigned) batch.vouched.add(ref);
        }
        batches.set(source.id, batch);
      } else {
        done.push(row.id);
      }
    }
    this.deps.inbox.doneAll(done, this.now());
    for (const batch of batches.values()) {
      // Stopping: what is not processed yet stays in the inbox for the next start.
      if (this.stopping) break;
      try {
        const unsigned = new Set([...batch.refs].filter((ref) => !batch.vouched.has(ref)));
        await this.evaluate(batch.source, [...batch.refs], unsigned);
        this.deps.inbox.doneAll(
          batch.rows.map((row) => row.id),
          this.now(),
        );
      } catch {
        for (const row of batch.rows) {
          if (this.stopping) break;
          await this.handle(row);
        }
      }
    }
    if (!this.stopping) await this.runOwedCatchUps();
    return rows.length;
  }

  private nextPruneAt = 0;

  /** Deletes a chunk of processed rows past the retention; again at once while whole chunks go. */
  private prune(): void {
    const now = this.now();
    if (now < this.nextPruneAt) return;
    const pruned = this.deps.inbox.prune(now - INBOX_RETENTION_MS, PRUNE_CHUNK);
    this.nextPruneAt = pruned >= PRUNE_CHUNK ? 0 : now + PRUNE_EVERY_MS;
  }

  private statusOf(source: ProcessorSource, row: InboxRow): SubscriptionStatus {
    const status = this.statuses.get(source.id) ?? { gaps: 0, catchUps: 0 };
    status.lastNotificationAt = Math.max(status.lastNotificationAt ?? 0, row.receivedAt);
    return status;
  }

  /**
   * One catch-up poll per source that is owed one, however many pings or gaps asked for it. The
   * request was stored (meta) before the notification that caused it was marked done, and is
   * cleared only after a poll succeeded: a ping is never lost to a crash or a source outage.
   */
  private async runOwedCatchUps(): Promise<void> {
    for (const [sourceId, owed] of [...this.owed]) {
      const source = this.sources.get(sourceId);
      if (!source) {
        this.owed.delete(sourceId);
        continue;
      }
      if (owed.notBefore > this.now()) continue;
      const generation = owed.generation;
      try {
        await source.catchUp();
        this.catchUpFailures.get(sourceId)?.recovered('catch-up polls succeed again', { source: sourceId });
        if (this.owed.get(sourceId)?.generation === generation) {
          this.owed.delete(sourceId);
          this.deps.meta.setMeta(catchUpOwedKey(sourceId), null);
        }
      } catch (err) {
        owed.failures++;
        // 1 s, 2 s, 4 s … capped at 5 minutes, like a failing notification.
        owed.notBefore = this.now() + Math.min(1000 * 2 ** (owed.failures - 1), 300_000);
        this.catchUpFailures.get(sourceId)?.failed(err, { source: sourceId, failures: owed.failures });
      }
    }
  }

  private async handle(row: InboxRow): Promise<void> {
    const source = this.sources.get(row.sourceId);
    if (!source) {
      this.deps.inbox.abandon(row.id, 'source no longer configured', this.now());
      return;
    }
    const status = this.statusOf(source, row);
    const notification = row.notification;
    try {
      // Event numbers and pings were handled when the round took the row; this is its own evaluation.
      if (notification.kind === 'event')
        await this.evaluate(source, notification.refs, new Set(notification.unsigned ? notification.refs : []));
      this.deps.inbox.done(row.id, this.now());
    } catch (err) {
      const attempts = row.attempts + 1;
      const message = err instanceof Error ? err.message : String(err);
      if (attempts >= (this.deps.maxAttempts ?? 8)) {
        this.deps.inbox.abandon(row.id, message, this.now());
        this.log.warn({ inboxId: row.id, source: source.id, attempts }, 'notification abandoned; reconciling by poll');
        this.catchUp(source, status, 'notification could not be processed');
      } else {
        // 1 s, 2 s, 4 s … capped at 5 minutes.
        const delay = Math.min(1000 * 2 ** (attempts - 1), 300_000);
        this.deps.inbox.retry(row.id, this.now() + delay, message);
      }
    }
  }

  /**
   * See reevaluate: every notified resource is read again; one that is gone withdraws its rows. One last
   * changed before the source's go-live is left out as a poll leaves it (unrecorded), unless the ledger
   * holds it: a notification is no way around `poll.since`. `unsigned`: refs named outside what
   * authenticated their notification (a Medplum delete's header, beside the signature of its `{}` body),
   * acted on only if they read as gone; one that still reads asks for a catch-up poll, as a ping does.
   */
  private async evaluate(source: ProcessorSource, refs: string[], unsigned: ReadonlySet<string>): Promise<void> {
    const notBefore = source.goLive?.();
    const goLive =
      notBefore === undefined
        ? undefined
        : {
            notBefore,
            holds: (ref: string) => source.holds?.(ref) ?? false,
            leftOut: (count: number) => this.leftOutBeforeGoLive(source.id, count),
          };
    let stillThere = 0;
    const deletionsOnly = { refs: unsigned, stillThere: () => stillThere++ };
    try {
      await reevaluate(source, refs, {
        reconciled: source.polled === true,
        ...(goLive ? { goLive } : {}),
        ...(unsigned.size > 0 ? { deletionsOnly } : {}),
      });
    } finally {
      if (stillThere > 0) {
        const status = this.statuses.get(source.id) ?? { gaps: 0, catchUps: 0 };
        this.catchUp(source, status, 'a deletion named outside the signature reads as not deleted');
      }
    }
  }

  private readonly beforeGoLive = new Map<string, MinuteTally>();

  /** Counted, and logged once a minute at most per source (a sender can name old records at any rate). */
  private leftOutBeforeGoLive(sourceId: string, count: number): void {
    const tally = this.beforeGoLive.get(sourceId) ?? new MinuteTally();
    this.beforeGoLive.set(sourceId, tally);
    const resources = tally.add(this.now(), count);
    if (resources === undefined) return;
    // Counts only: which records is not for the log.
    this.log.info(
      { source: sourceId, resources },
      "notified resources last changed before the source's go-live (poll.since, poll.sinceDays) were left out, as a poll leaves them: nothing is recorded or sent for them",
    );
  }

  /**
   * Backport event numbers: a jump means notifications were lost; catch up by polling. Each Subscription
   * numbers its own events, so one subscription's handshake or numbers never judge another's.
   */
  private trackEventNumbers(
    source: ProcessorSource,
    status: SubscriptionStatus,
    notification: ParsedNotification,
  ): void {
    if (notification.style !== 'backport' && notification.style !== 'backport-empty') return;
    const key = this.numberingKey(source.id, notification.subscription);
    if (!this.eventNumbers.has(key)) {
      const stored = this.deps.meta.getMeta(key);
      this.eventNumbers.set(key, stored === undefined ? undefined : Number(stored));
    }
    const known = this.eventNumbers.get(key);
    const named = notification.subscription ? ` (${notification.subscription})` : '';
    let last = known;
    if (notification.kind === 'handshake') {
      last = notification.eventsSinceStart ?? 0;
    } else if (notification.kind === 'heartbeat') {
      const total = notification.eventsSinceStart;
      if (total !== undefined && last !== undefined && total > last) {
        this.gap(source, status, `heartbeat reports ${total - last} unseen event(s)${named}`);
      }
      if (total !== undefined) last = Math.max(last ?? 0, total);
    } else if ('eventNumbers' in notification && notification.eventNumbers && notification.eventNumbers.length > 0) {
      const numbers = [...notification.eventNumbers].sort((a, b) => a - b);
      const first = numbers[0] ?? 0;
      if (last !== undefined && first > last + 1)
        this.gap(source, status, `event numbers jumped from ${last} to ${first}${named}`);
      last = Math.max(last ?? 0, numbers[numbers.length - 1] ?? 0);
    }
    if (last !== undefined && last !== known) {
      this.eventNumbers.set(key, last);
      status.lastEventNumber = last;
      this.deps.meta.setMeta(key, String(last));
    }
  }

  /**
   * The meta key of a numbering. Subscriptions a source's notifications name are counted: past
   * MAX_NUMBERINGS (a sender without a secret inventing names) new ones share the source's own key, so
   * the meta table cannot grow without bound.
   */
  private numberingKey(sourceId: string, subscription: string | undefined): string {
    const key = eventNumberKey(sourceId, subscription);
    if (!subscription || this.eventNumbers.has(key)) return key;
    const prefix = eventNumberKey(sourceId, 'Subscription/');
    const named = [...this.eventNumbers.keys()].filter((k) => k.startsWith(prefix)).length;
    if (named < MAX_NUMBERINGS) return key;
    this.log.warn({ source: sourceId }, 'too many subscriptions name this source; counting the new ones together');
    return eventNumberKey(sourceId);
  }

  private gap(source: ProcessorSource, status: SubscriptionStatus, reason: string): void {
    status.gaps++;
    status.lastGapAt = this.now();
    status.lastGapReason = reason;
    this.log.warn({ source: source.id, reason }, 'subscription gap detected');
    this.catchUp(source, status, reason);
  }

  /** Records (durably) that a catch-up poll is owed; the current or next round runs it. */
  private catchUp(source: ProcessorSource, status: SubscriptionStatus, reason: string): void {
    status.catchUps++;
    this.log.info({ source: source.id, reason }, 'catch-up poll');
    this.deps.meta.setMeta(catchUpOwedKey(source.id), reason.slice(0, 200));
    const owed = this.owed.get(source.id);
    if (owed) {
      owed.generation++;
      owed.notBefore = 0;
    } else {
      this.owed.set(source.id, { generation: 1, failures: 0, notBefore: 0 });
    }
  }

  /** Heartbeats stopped for longer than twice their period: something is lost; poll. */
  checkSilence(): void {
    const now = this.now();
    for (const source of this.deps.sources) {
      if (!source.heartbeatSeconds) continue;
      const status = this.statuses.get(source.id);
      if (!status) continue;
      const silentFor = now - (status.lastNotificationAt ?? now);
      if (silentFor > 2 * source.heartbeatSeconds * 1000) {
        // Restart the silence clock so one outage triggers one catch-up per period, not one per tick.
        status.lastNotificationAt = now;
        this.gap(source, status, `no notification for ${Math.round(silentFor / 1000)} s`);
        this.wake();
      }
    }
  }
}
