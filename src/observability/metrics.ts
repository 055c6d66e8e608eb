import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The bridge's Prometheus metrics. Labels carry only bounded, non-personal values (state, event
 * type, source id, classification), never record ids or names. Gauges that mirror stored state
 * (events by state, inbox depth, poll lag) are refreshed by `collect` callbacks at scrape time.
 */
export class BridgeMetrics {
  readonly registry = new Registry();
  readonly eventsByState: Gauge<'state' | 'event_type'>;
  readonly deadRows: Counter<'source' | 'event_type'>;
  readonly updatesAfterNotification: Counter<'source' | 'event_type'>;
  readonly deliveries: Counter<'outcome' | 'event_type'>;
  readonly retries: Counter<'classification' | 'kind'>;
  readonly deliveryLatency: Histogram<'event_type'>;
  readonly tokenRenewals: Counter;
  readonly pollLag: Gauge<'source' | 'resource_type'>;
  readonly pollFailures: Gauge<'source'>;
  readonly contextListingFailures: Gauge<'source'>;
  readonly inboxDepth: Gauge;
  readonly inboxBytes: Gauge;
  readonly held: Gauge;
  readonly subscriptionGaps: Counter<'source'>;
  readonly notificationsRefused: Counter<'source' | 'reason'>;
  readonly writeBacks: Gauge<'source' | 'state'>;
  readonly writeBacksAbandoned: Counter<'source'>;
  readonly configChangedOnDisk: Gauge;
  readonly sharedContextRecords: Counter<'source' | 'resource_type'>;
  readonly storeOk: Gauge;
  readonly ready: Gauge;
  readonly oldestWaiting: Gauge;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'bridge_' });
    this.eventsByState = new Gauge({
      name: 'bridge_events',
      help: 'Ledger rows by state and event type',
      labelNames: ['state', 'event_type'],
      registers,
    });
    this.deadRows = new Counter({
      name: 'bridge_events_dead_total',
      help: 'Ledger rows that became dead since start (at intake, on delivery, or decided later), by source and event type',
      labelNames: ['source', 'event_type'],
      registers,
    });
    this.updatesAfterNotification = new Counter({
      name: 'bridge_updates_after_notification_total',
      help: 'Source records changed after OpenCRVS was notified of their event, since start, by source and event type: not sent (the registrar corrects the record in OpenCRVS); ledger --updated-after-notification lists the rows',
      labelNames: ['source', 'event_type'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'bridge_deliveries_total',
      help: 'Delivery attempts by outcome (delivered, pending, retry, dead, held)',
      labelNames: ['outcome', 'event_type'],
      registers,
    });
    this.retries = new Counter({
      name: 'bridge_delivery_errors_total',
      help: 'Failed delivery attempts by error classification and kind',
      labelNames: ['classification', 'kind'],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: 'bridge_delivery_latency_seconds',
      help: 'Time from the source event first seen to OpenCRVS accepting it',
      labelNames: ['event_type'],
      buckets: [0.1, 0.5, 1, 2, 5, 15, 60, 300, 900, 3600, 21600, 86400],
      registers,
    });
    this.tokenRenewals = new Counter({
      name: 'bridge_opencrvs_token_renewals_total',
      help: 'OpenCRVS tokens obtained since start',
      registers,
    });
    this.pollLag = new Gauge({
      name: 'bridge_source_poll_lag_seconds',
      help: 'Now minus the poll watermark, per source and resource type',
      labelNames: ['source', 'resource_type'],
      registers,
    });
    this.pollFailures = new Gauge({
      name: 'bridge_source_poll_consecutive_failures',
      help: 'Consecutive failed poll passes per source',
      labelNames: ['source'],
      registers,
    });
    this.contextListingFailures = new Gauge({
      name: 'bridge_source_context_listing_consecutive_failures',
      help: 'Consecutive poll passes whose listing of the tracked entities births read as their context (the mothers) DHIS2 refused, per DHIS2 source',
      labelNames: ['source'],
      registers,
    });
    this.inboxDepth = new Gauge({
      name: 'bridge_inbox_depth',
      help: 'Subscription notifications stored, not yet processed',
      registers,
    });
    this.inboxBytes = new Gauge({
      name: 'bridge_inbox_bytes',
      help: 'Bytes of the subscription notifications stored, not yet processed',
      registers,
    });
    this.held = new Gauge({
      name: 'bridge_queue_held',
      help: '1 while delivery is held (an operator problem, or OpenCRVS out of reach)',
      registers,
    });
    this.subscriptionGaps = new Counter({
      name: 'bridge_subscription_gaps_total',
      help: 'Subscription gaps detected since start (each triggers a catch-up poll)',
      labelNames: ['source'],
      registers,
    });
    this.notificationsRefused = new Counter({
      name: 'bridge_notifications_refused_total',
      help: 'Subscription notifications refused since start, by source and reason: unauthorized (401), throttled (429), invalid (4xx), unavailable (503); to a source id not configured, as source "(unknown)" and reason unknown-source (answered 401, or 429, as a wrong secret)',
      labelNames: ['source', 'reason'],
      registers,
    });
    this.writeBacks = new Gauge({
      name: 'bridge_write_backs',
      help: 'Write-back jobs (the tracking id written back to the source) by source and state: pending, written, already, abandoned',
      labelNames: ['source', 'state'],
      registers,
    });
    this.writeBacksAbandoned = new Counter({
      name: 'bridge_write_backs_abandoned_total',
      help: 'Write-back jobs abandoned since start (refused for good, or out of attempts), by source; a re-queue does not lower it',
      labelNames: ['source'],
      registers,
    });
    this.sharedContextRecords = new Counter({
      name: 'bridge_shared_context_records_total',
      help: 'Changed records that more ledger rows had read than one change maps again (shared reference data): those rows were not mapped again, by source and resource type',
      labelNames: ['source', 'resource_type'],
      registers,
    });
    this.configChangedOnDisk = new Gauge({
      name: 'bridge_config_changed_on_disk',
      help: '1 while the configuration or a mapping file differs on disk from what serve read at start (a restart applies it)',
      registers,
    });
    this.storeOk = new Gauge({
      name: 'bridge_store_ok',
      help: "1 while /readyz's store check passes; 0 while the ledger cannot be written (full, read-only, I/O errors), is corrupt, or is no longer the file opened",
      registers,
    });
    this.ready = new Gauge({
      name: 'bridge_ready',
      help: '1 while /readyz answers ready (200), 0 while any of its checks fails',
      registers,
    });
    this.oldestWaiting = new Gauge({
      name: 'bridge_oldest_waiting_seconds',
      help: 'Age of the row waiting longest to be delivered (pending, failed or delivering), since it was last queued; 0 when none waits',
      registers,
    });
  }

  /** Prometheus text exposition. `refresh` updates the state-mirroring gauges first. */
  async render(refresh?: () => void | Promise<void>): Promise<{ contentType: string; body: string }> {
    await refresh?.();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
