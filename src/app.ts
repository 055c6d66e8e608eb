import type { Server } from 'node:http';
import { basename, resolve } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { ConfigError } from './config/errors.js';
import { subscriptionSecretProblem } from './config/inbound-secret.js';
import { MAX_TIMER_MS } from './config/limits.js';
import type { Env } from './config/load.js';
import {
  baseNamesOnly,
  ConfigOnDisk,
  fileHash,
  LOADED_FILES_META,
  type OnDiskVerdict,
  verifyInWorker,
} from './config/on-disk.js';
import { namedFiles } from './config/on-disk-verify.js';
import { secretOf } from './config/secret-files.js';
import type { BridgeConfig, SourceSettings, WriteBackSettings } from './config/types.js';
import {
  loopbackSubscriptionWarning,
  noSourcesWarning,
  signatureOnlySubscriptionWarning,
  unauthenticatedSubscriptionWarning,
} from './config/warnings.js';
import { createDeliveryWorker, type DeliveryOutcome, type DeliveryWorker, RecheckNotReady } from './delivery/index.js';
// Types only: the listeners' modules (express) are imported by openListeners, which sync --once and replay
// never reach.
import type { AdminTarget, SourceStatusView } from './http/admin/index.js';
import { closeServer } from './http/close-server.js';
import { type ReadinessCheck, readiness } from './http/readiness.js';
import type { MountedRouter } from './http/server.js';
import {
  type HoldState,
  isCorruptCode,
  LEDGER_STATES,
  type Ledger,
  type LedgerRow,
  type LedgerState,
  ledgerOwnClients,
  openLedger,
  type ReplayResult,
  storageErrorCode,
  unaccountedSources,
  unaccountedSourcesMessage,
  type WriteFailure,
} from './ledger/index.js';
import { loadMappings, type MapOptions, type MappingSet, sourceMappingOptions } from './mapping/index.js';
import type { Logger } from './observability/logger.js';
import { BridgeMetrics } from './observability/metrics.js';
import { paced } from './observability/paced.js';
import { RepeatedFailure } from './observability/repeated-failure.js';
import {
  createOpenCrvsClient,
  type LocationMemory,
  LocationResolver,
  type OpenCrvsClient,
  OpenCrvsError,
} from './opencrvs/index.js';
import { isNotListed, KNOWN_MAX } from './opencrvs/locations.js';
import { missingGrants } from './opencrvs/scopes.js';
import { buildDhis2Source, type Dhis2SourceRuntime } from './sources/dhis2/index.js';
import { unreachableMappingWarnings } from './sources/dhis2/mapping-codes.js';
import { FhirSourceClient } from './sources/fhir/fhir-client.js';
import { fhirInbox } from './sources/fhir/inbox.js';
import { InboxProcessor, type ProcessorSource } from './sources/fhir/inbox-processor.js';
import { FhirPoller } from './sources/fhir/poller.js';
import {
  REFUSAL_REASONS,
  SubscriptionReceiver,
  UNKNOWN_SOURCE_LABEL,
  UNKNOWN_SOURCE_REASON,
} from './sources/fhir/receiver.js';
import { fhirRecheck } from './sources/fhir/recheck.js';
import { reevaluate } from './sources/fhir/reevaluate.js';
import { goLiveLaterThanLedger, goLiveRemoved } from './sources/go-live-ledger.js';
import { type IdentifierLookup, identifierLookup } from './sources/identifier-lookup.js';
import { identityChanges, openCrvsIdentity, recordOpenCrvsIdentity, recordSourceIdentity } from './sources/identity.js';
import { checkSourceMappings, sourcesSharingRecords, writeBacksOnServer } from './sources/overlap.js';
import { firstSyncStart, type PassOptions } from './sources/pass.js';
import { addReports, emptyReport, OvertakenReadFailed, type PassReport, SourcePipeline } from './sources/pipeline.js';
import { type SubjectRecheck, sourcesRecheck } from './sources/recheck.js';
import { replayRows } from './sources/replay.js';
import { isForeign } from './sources/shared/source-error.js';
import {
  WRITE_BACK_STATES,
  type WriteBackItem,
  WriteBackRunner,
  type WriteBackRunReport,
  type WriteBackSource,
  writeBackSourceFor,
  writeBackTargetText,
} from './sources/writeback/index.js';
import { pause } from './util/call-signal.js';
import { isUuid } from './util/uuid.js';

/** Refused passes in a row of a DHIS2 source's mothers' listing that /readyz notes (as `source:<id>` fails at). */
const CONTEXT_LISTING_NOTED = 3;

/** How long a readiness check's answer is kept (OpenCRVS and the EMR are not probed on every request). */
const CHECK_TTL_MS = 30_000;
const TOKEN_CHECK_TTL_MS = 300_000;
/** The readiness store check writes at most this often. */
const STORE_WRITE_CHECK_MS = 5_000;
/** Readiness fails when every attempt has failed this long (and at least DELIVERY_FAILING_ATTEMPTS did). */
const DELIVERY_FAILING_MS = 300_000;
const DELIVERY_FAILING_ATTEMPTS = 3;

/** Tries to resolve the routing table are this far apart at first, doubling up to ROUTING_RETRY_MAX_MS. */
const ROUTING_RETRY_MS = 1_000;
const ROUTING_RETRY_MAX_MS = 30_000;
/** Routed offices OpenCRVS refused that /readyz names (the routing table's, so few). */
const REFUSED_OFFICES_MAX = 64;

/** One configured source with everything built for it. */
export interface SourceRuntime {
  settings: SourceSettings;
  mappings: MappingSet;
  client: FhirSourceClient;
  pipeline: SourcePipeline;
  poller: FhirPoller;
  task?: ScheduledTask;
}

export interface BridgeOptions {
  logger: Logger;
  /** Run polls on their cron schedules (serve). Off for `sync --once` and most tests. */
  schedule?: boolean;
  /** Serve HTTP (receiver, health, metrics; admin on its own listener). */
  http?: boolean;
  /** Run the delivery loop on timers. */
  worker?: boolean;
  /** Extra routers (health, metrics and admin are mounted by their own module). */
  routers?: (bridge: Bridge) => MountedRouter[];
  /**
   * The command this process runs (`serve`, `sync`, `demo`: a serve of its own ledger, which `sync` or
   * `serve` on its printed configuration must not run beside, and which `replay` asks as it asks serve): it
   * takes the ledger's lease as it opens the ledger, before upgrading its schema, and the constructor throws
   * LedgerInUse while another process holds it (ledger/process-lease.ts). Unset: no lease (replay, tests
   * that open one ledger twice on purpose), and no schema upgrade while another process holds the lease.
   */
  lease?: 'serve' | 'sync' | 'demo';
  /**
   * The configuration file this process loaded and the environment it read it with (serve): it and the
   * mapping files are compared with the disk while the bridge runs (config/on-disk.ts).
   */
  configFile?: { path: string; env: Env };
  /**
   * The ledger at store.path is made for this process alone (the demo's temporary folder, a bench's run):
   * creating it is what is meant, so the warning a bridge gives when it creates its ledger (for an operator
   * whose store.path names another file) is not given; the ledger's own info line says it instead.
   */
  scratchLedger?: boolean;
}

/** What `sync --once` reports: the rows this pass touched, by final state (no personal data). */
/** A row a sync pass counts as done: delivered (accepted or pending), or skipped. */
export function syncDone(row: LedgerRow): boolean {
  return row.state === 'delivered' || row.state === 'delivered-pending' || row.state === 'skipped';
}

export interface SyncSummary {
  report: PassReport;
  rows: LedgerRow[];
  /**
   * Rows of the synced sources (all of them: retired ones too) that this pass did not touch and that are
   * not done: dead, failing, still waiting, or left `delivering` by a pass that was stopped or another
   * process (at most 1,000 a source).
   */
  earlier: LedgerRow[];
  /** Rows delivered (or answered pending) in this pass, whichever pass or replay queued them. */
  delivered: number[];
  /** Delivery is held for an operator (nothing is sent until it is fixed). */
  held?: HoldState;
  failedSources: string[];
  /** Why each of failedSources could not be polled (the source status's text: no bodies, no queries). */
  sourceErrors: Record<string, string>;
  /** The pass was cut off at its deadline (`sync --timeout`): what it found may not all be recorded. */
  timedOut: boolean;
  /**
   * Sources whose reading from `--since` stopped before the watermark (the deadline): where to read again
   * from, as the source writes its times (`sync --once --since <it> --source <id>` goes on).
   */
  rereadFrom: Record<string, string>;
  /**
   * Why nothing was sent in this pass: OpenCRVS could not confirm the routing table (its locations down),
   * so the records found were recorded on the offices and facilities it gave in an earlier run, each with
   * the references taken unconfirmed marked, for a later pass to check and send. Not done (`ok` false).
   */
  deliverySkipped?: string;
  /**
   * The write-backs this pass ran (the tracking id written back to the source), failures included;
   * undefined when no source writes back, or the pass reached its deadline before them. They never
   * change a delivery, so they do not count towards `ok`.
   */
  writeBacks?: WriteBackRunReport;
  /**
   * A storage error a ledger call of this process met and the ledger keeps (Ledger.writeFailure: damaged
   * pages, a full disk, a read-only file), what serve's /readyz `store` fails on. It may fail nothing else
   * the pass counts (a routing answer not kept), so it is a reason of its own. Not done (`ok` false).
   */
  storeFailure?: WriteFailure;
  ok: boolean;
}

/**
 * The composition root: builds every part from the configuration, starts them in dependency order
 * and stops them in reverse (HTTP first, so no notification is accepted that cannot be stored;
 * the ledger last).
 */
export class Bridge {
  readonly ledger: Ledger;
  readonly opencrvs: OpenCrvsClient;
  readonly locations: LocationResolver;
  readonly worker: DeliveryWorker;
  readonly metrics = new BridgeMetrics();
  readonly sources: SourceRuntime[] = [];
  /** DHIS2 tracker sources (kind: dhis2): polled only, no subscriptions. */
  readonly dhis2Sources: Dhis2SourceRuntime[] = [];
  /** Write-back of tracking ids, when any source configures `writeBack`. */
  readonly writeBacks: WriteBackRunner | undefined;
  readonly inbox: InboxProcessor;
  readonly receiver: SubscriptionReceiver;
  readonly startedAt = Date.now();
  private fileProblemLogged = false;
  httpPort: number | undefined;
  /** The admin listener's port; undefined while it is not open (no admin token, or not started). */
  adminPort: number | undefined;
  private server: Server | undefined;
  private adminServer: Server | undefined;
  private locationsReady = false;
  /** Why the routing table did not resolve at the last try (config keys and OpenCRVS's words; no personal data). */
  private locationsError: string | undefined;
  /**
   * Set while the sources run on the routing table as OpenCRVS last answered it (it cannot be asked now):
   * what each routing reference was taken to be, fixed until OpenCRVS confirms the table.
   */
  private unconfirmedRouting: { taken: Map<string, string | undefined> } | undefined;
  private sourcesStarted = false;
  private deliveryStarted = false;
  /** Set by stop(); start() checks it after every await, so a signal during start-up stops cleanly. */
  private stopping = false;
  private locationRetry: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly outcomeListeners: Array<(outcome: DeliveryOutcome) => void> = [];
  /** The configuration and mapping files as read at start, compared with the disk (BridgeOptions.configFile). */
  readonly configOnDisk: ConfigOnDisk | undefined;

  constructor(
    readonly config: BridgeConfig,
    private readonly options: BridgeOptions,
  ) {
    this.log = options.logger.child({ component: 'bridge' });
    // A new ledger starts the bridge's memory afresh (what was delivered, the cursors, write-back jobs): on a
    // first start that is meant; anywhere else it is a store.path naming another file, or a ledger lost. Said
    // once, as a warning, in place of the ledger's own `ledger created at schema N`; not for a ledger made
    // for this process alone (BridgeOptions.scratchLedger), where it would send an operator looking.
    const told = config.store.path !== ':memory:' && !options.scratchLedger;
    let createdAt: number | undefined;
    this.ledger = openLedger(config.store.path, {
      ...(told
        ? {
            onCreated: (schema: number) => {
              createdAt = schema;
            },
          }
        : {}),
      logger: options.logger,
      payloadRetentionHours: config.store.payloadRetentionHours,
      settleSeconds: config.delivery.settleSeconds,
      // A long-running bridge answers senders from its event loop: checkpoints run beside it.
      backgroundCheckpoints: true,
      countDeadRows: true,
      countUpdatesAfterNotification: true,
      ...(options.lease ? { lease: { command: options.lease, logger: this.log } } : {}),
    });
    if (createdAt !== undefined)
      this.log.warn(
        { schema: createdAt },
        `created a new ledger at ${basename(config.store.path)} (store.path, schema ${createdAt}): nothing has been recorded before it. On a first start this is expected; if this bridge has run before, its ledger is elsewhere or was lost: stop it, and set store.path to the ledger it has (or restore the last backup)`,
      );
    try {
      this.refuseUnaccountedSources();
      this.opencrvs = createOpenCrvsClient(config.opencrvs, {
        logger: options.logger,
        ownClients: ledgerOwnClients(this.ledger),
      });
      this.locations = new LocationResolver(this.opencrvs, { memory: this.locationMemory() });
      const sharing = sourcesSharingRecords(config.sources);
      const writeBacks = writeBacksOnServer(config.sources);
      for (const settings of config.sources) {
        if (settings.kind === 'fhir') this.sources.push(this.buildFhirSource(settings, writeBacks.get(settings.id)));
        if (settings.kind === 'dhis2')
          this.dhis2Sources.push(
            buildDhis2Source(settings, {
              ledger: this.ledger,
              logger: options.logger,
              country: config.opencrvs.country,
              version: config.opencrvs.version,
              routing: config.routing,
              mapOptions: () => this.mapOptions(),
              sharesRecordsWith: sharing.get(settings.id),
              sameServerWriteBacks: writeBacks.get(settings.id),
              dhis2Sources: () => this.dhis2Sources,
              onSharedRecord: (resourceType) =>
                this.metrics.sharedContextRecords.inc({ source: settings.id, resource_type: resourceType }),
            }),
          );
      }
      this.refuseDoubleNotifications();
      this.warnUnreachableMappings();
      this.worker = createDeliveryWorker({
        ledger: this.ledger,
        api: this.opencrvs,
        settings: config.delivery,
        logger: options.logger,
        onOutcome: (outcome) => this.onOutcome(outcome),
        recheck: sourcesRecheck(this.recheckRunners(), this.ledger, options.logger),
        refusedEventType: (eventType) => this.refusedEventType(eventType),
        officeOfRecord: (office) => this.officeOfRecord(office),
        officeClosedOn: (office) => this.locations.officeClosedOn(office),
        locationNow: (ref, type) => this.locationNow(ref, type),
        routingKeysOf: (office) => this.routingKeysOf(office),
      });
      this.writeBacks = this.buildWriteBacks();
      const noSources = noSourcesWarning(config.sources);
      if (noSources) this.log.warn(noSources);
      for (const source of this.sources) {
        const warning =
          unauthenticatedSubscriptionWarning(source.settings) ?? signatureOnlySubscriptionWarning(source.settings);
        if (warning) this.log.warn({ source: source.settings.id }, warning);
        // Only where the receiver listens (serve, demo): sync and replay open no listener.
        const unreachable = options.http !== false && loopbackSubscriptionWarning(config.http, source.settings);
        if (unreachable) this.log.warn({ source: source.settings.id }, unreachable);
      }
      // Said by every command that runs the bridge (serve, sync, replay), until the new address is recorded
      // (after it worked: a mistyped URL put back is no change), and by doctor meanwhile.
      for (const change of identityChanges(this.ledger, config)) {
        const { setting, recorded, configured } = change;
        this.log.warn({ setting, recorded, configured }, `${change.name} changed: ${change.meaning}`);
      }
      for (const later of goLiveLaterThanLedger(config.sources, this.ledger))
        this.log.warn({ source: later.sourceId, since: later.since, ranFrom: later.ranFrom }, later.message);
      for (const removed of goLiveRemoved(config.sources, this.ledger))
        this.log.warn(
          { source: removed.sourceId, goLive: removed.goLive, goLiveSkips: removed.skipped },
          removed.message,
        );
      const inbox = fhirInbox(this.ledger.inbox);
      this.receiver = new SubscriptionReceiver(
        this.sources
          .filter((s) => s.settings.subscription)
          .map((s) => {
            // A `…File` secret follows its file (config/secret-files.ts); a rotated one too weak to be
            // taken at start is not taken then either (the value before stays, with a warning).
            const subscription = s.settings.subscription ?? {};
            const logger = { logger: this.log, check: subscriptionSecretProblem };
            return {
              id: s.settings.id,
              auth: {
                // Compared without its surrounding spaces, as the admin token is; an HMAC key as given.
                secret: secretOf(subscription, 'secret', { ...logger, trim: true }),
                hmacSecret: secretOf(subscription, 'hmacSecret', logger),
              },
              polled: s.settings.poll.enabled,
            };
          }),
        inbox,
        options.logger,
        () => this.inbox.wake(),
        undefined,
        { onRefused: (source, reason) => this.metrics.notificationsRefused.inc({ source, reason }) },
      );
      // Present from start at 0, so that increase() sees the first refusal.
      const subscribed = this.sources.filter((source) => source.settings.subscription);
      for (const s of subscribed)
        for (const reason of REFUSAL_REASONS)
          this.metrics.notificationsRefused.inc({ source: s.settings.id, reason }, 0);
      if (subscribed.length > 0)
        this.metrics.notificationsRefused.inc({ source: UNKNOWN_SOURCE_LABEL, reason: UNKNOWN_SOURCE_REASON }, 0);
      this.inbox = new InboxProcessor({
        inbox,
        meta: this.ledger,
        logger: options.logger,
        sources: this.sources.map(
          (s): ProcessorSource => ({
            id: s.settings.id,
            client: s.client,
            pipeline: s.pipeline,
            catchUp: () => this.pollSource(s),
            heartbeatSeconds: s.settings.subscription?.heartbeatSeconds,
            polled: s.settings.poll.enabled,
            goLive: () => s.poller.goLive(),
            holds: (ref) => this.ledger.list({ sourceId: s.settings.id, find: ref, limit: 1 }).length > 0,
          }),
        ),
      });
      this.configOnDisk = this.watchConfigOnDisk();
    } catch (err) {
      this.ledger.close();
      throw err;
    }
  }

  /**
   * The configuration file and the mapping files its sources name, hashed as just loaded (a change in
   * between is not told apart: it would take an edit within these milliseconds).
   */
  private watchConfigOnDisk(): ConfigOnDisk | undefined {
    const file = this.options.configFile;
    if (!file) return undefined;
    return new ConfigOnDisk(
      namedFiles(file.path, this.config).map((path) => ({ path, hash: fileHash(path) })),
      { logger: this.options.logger, verify: (signal) => this.configOnDiskVerdict(file.path, file.env, signal) },
    );
  }

  /**
   * Whether the files as they are on disk now would start: what serve does before it opens anything
   * (configuration, each source's mappings, their overlap, source ids against the ledger's history).
   * Nothing is applied. Also the files that configuration names, for the watcher to follow. The loading
   * and compiling run on a worker thread (config/on-disk-verify.ts); the ledger is asked here, on its
   * connection.
   */
  private async configOnDiskVerdict(path: string, env: Env, signal: AbortSignal): Promise<OnDiskVerdict> {
    const { problem, files, sourceIds } = await verifyInWorker({ path, env }, signal);
    if (problem || !sourceIds) return { ...(problem ? { problem } : {}), ...(files ? { files } : {}) };
    const unaccounted = unaccountedSources(this.ledger, sourceIds);
    if (unaccounted.length > 0)
      return { problem: `sources[].id: ${unaccountedSourcesMessage(this.ledger, unaccounted, sourceIds)}`, files };
    return { files };
  }

  /** History under a source id no longer configured: a rename would resend everything (source-check.ts). */
  private refuseUnaccountedSources(): void {
    const configured = this.config.sources.map((s) => s.id);
    const unaccounted = unaccountedSources(this.ledger, configured);
    if (unaccounted.length > 0)
      throw new ConfigError('sources[].id', unaccountedSourcesMessage(this.ledger, unaccounted, configured));
  }

  /** Mappings that would notify a record by their order, or twice (sources/overlap.ts). */
  private refuseDoubleNotifications(): void {
    const loaded = new Map([...this.sources, ...this.dhis2Sources].map((s) => [s.settings.id, s.mappings.mappings]));
    checkSourceMappings(this.config, (i) => loaded.get(this.config.sources[i]?.id ?? ''));
  }

  /** DHIS2 mappings that cannot match their source's programme (when none can, the check above refused). */
  private warnUnreachableMappings(): void {
    const loaded = new Map([...this.sources, ...this.dhis2Sources].map((s) => [s.settings.id, s.mappings.mappings]));
    const warnings = unreachableMappingWarnings(this.config.sources, (i) =>
      loaded.get(this.config.sources[i]?.id ?? ''),
    );
    for (const { sourceId, message } of warnings) this.log.warn({ source: sourceId }, message);
  }

  /** `sameServerWriteBacks`: the other FHIR sources' of its server (writeBacksOnServer), for the fingerprint. */
  private buildFhirSource(
    settings: SourceSettings,
    sameServerWriteBacks?: readonly WriteBackSettings[],
  ): SourceRuntime {
    const { opencrvs, routing } = this.config;
    const mappings = loadMappings(sourceMappingOptions(opencrvs, routing, settings, sameServerWriteBacks));
    const client = new FhirSourceClient(settings, { logger: this.options.logger });
    const pipeline = new SourcePipeline({
      sourceId: settings.id,
      mappings,
      ledger: this.ledger,
      logger: this.options.logger,
      mapOptions: () => this.mapOptions(),
      reread: async (refs) => void (await reevaluate({ client, pipeline }, refs)),
      onSharedRecord: (resourceType) =>
        this.metrics.sharedContextRecords.inc({ source: settings.id, resource_type: resourceType }),
      goLive: () => firstSyncStart(settings.poll, this.ledger, settings.id),
      ...(settings.timeZone ? { timeZone: settings.timeZone } : {}),
      // The subject read as its related record was: one resource the EMR will not serve (a 403 for a mother
      // in a restricted location) fails that birth only, not the page (SourcePipeline.unreadable).
      probe: async (subjectRef) => {
        const [type, id] = subjectRef?.split('/') ?? [];
        if (type && id) await client.read(type, id);
        else await client.capabilityStatement();
      },
    });
    const poller = new FhirPoller({
      sourceId: settings.id,
      client,
      pipeline,
      cursors: this.ledger,
      resourceTypes: mappings.watchedResourceTypes(),
      subjectTypes: mappings.mappings.map((mapping) => mapping.subjectType),
      poll: settings.poll,
      logger: this.options.logger,
    });
    return { settings, mappings, client, pipeline, poller };
  }

  /** How each source evaluates a waiting row's subject again before its first send (delivery.recheckAfterSeconds). */
  private recheckRunners(): Map<string, SubjectRecheck> {
    // Mapping needs the routing table resolved in OpenCRVS (polling waits for it too): evaluated without
    // it, every row would come out "office not known" and die. The rows wait (RecheckNotReady) instead.
    const whenRouted =
      (run: SubjectRecheck): SubjectRecheck =>
      async (refs) => {
        if (!this.locationsReady) throw new RecheckNotReady('routing not resolved in OpenCRVS yet');
        try {
          await run(refs);
        } catch (err) {
          // Its commit was overtaken and the reread failed: what the recheck saw (a withdrawal, say) is
          // not recorded, so the rows are not sent as recorded; they wait and are checked again.
          if (err instanceof OvertakenReadFailed) throw new RecheckNotReady(err.message);
          // A page from a proxy in front of the source, not the source's answer: the record may be gone or
          // not, so its row is neither withdrawn nor sent unchecked (as for a source that is down); it waits.
          // The FHIR and DHIS2 rechecks name the subjects whose reads met the page (RecheckNotReady.subjectKeys:
          // sources/fhir/recheck.ts, sources/dhis2/recheck.ts), and the other rows go on; a page that reaches
          // here was tied to no subject, so every row of the source waits.
          if (isForeign(err)) throw new RecheckNotReady(err.message);
          // An OpenCRVS call of the recheck failed (a location lookup no longer throws: the record is mapped
          // with its facility unchecked, which the worker checks before sending): not sent unchecked.
          if (err instanceof OpenCrvsError)
            throw new RecheckNotReady(
              `a location the record names could not be looked up in OpenCRVS (${err.message})`,
            );
          throw err;
        }
      };
    const runners = new Map<string, SubjectRecheck>();
    for (const s of this.sources)
      runners.set(s.settings.id, whenRouted(fhirRecheck({ client: s.client, pipeline: s.pipeline })));
    for (const s of this.dhis2Sources) runners.set(s.settings.id, whenRouted(s.recheck));
    return runners;
  }

  private buildWriteBacks(): WriteBackRunner | undefined {
    const sources: WriteBackSource[] = [];
    for (const s of this.sources) {
      const source = writeBackSourceFor(s.settings, { fhir: s.client });
      if (source) sources.push(source);
    }
    // A record transferred between sources of one DHIS2 programme: see WriteBackRunner.writeThrough.
    const sharing = sourcesSharingRecords(this.config.sources);
    for (const s of this.dhis2Sources) {
      const source = writeBackSourceFor(s.settings, { dhis2: s.client });
      const others = sharing.get(s.settings.id);
      if (source) sources.push(others ? { ...source, sharesRecordsWith: others } : source);
    }
    if (sources.length === 0) return undefined;
    const runner = new WriteBackRunner({
      ledger: this.ledger,
      sources,
      logger: this.options.logger,
      // Same meaning as for deliveries: a claim older than this belongs to a process presumed dead.
      leaseMs: this.config.delivery.lockTimeoutSeconds * 1000,
      pollIntervalMs: this.config.delivery.pollIntervalMs,
      // Counted where it happens: this runner is the only place a job becomes abandoned (a re-queue,
      // here or by `write-backs --requeue`, only takes one out of that state).
      onAbandoned: (source) => this.countAbandoned(source),
    });
    this.onDeliveryOutcome((outcome) => runner.onOutcome(outcome));
    return runner;
  }

  /**
   * Routing refs in the config are UUIDs or externalIds, resolved at start; mappings get them as OpenCRVS
   * UUIDs of the type asked. A facility the record names is looked up as the record is mapped, and one
   * OpenCRVS does not list as a HEALTH_FACILITY is left out of the declaration (neither version checks what
   * a location field names); while OpenCRVS cannot be asked it goes on unchecked and is checked before the
   * row is sent (locationNow). An office the record names goes on as given (a UUID) and is checked
   * before it is sent (officeOfRecord): the row is dead then, as when OpenCRVS 2.0 itself refuses an
   * unknown office.
   */
  mapOptions(): MapOptions {
    return {
      // An office known to be closed is no office, whatever the fallbacks would pass through.
      resolveLocation: (ref, type) =>
        this.locations.resolveSync(ref, type) ??
        (this.locations.closedSync(ref)
          ? undefined
          : (this.unconfirmedRoute(ref, type) ?? (type === 'CRVS_OFFICE' && isUuid(ref) ? ref : undefined))),
      lookupLocations: (refs) => this.locations.lookUp(refs, this.lookupsGivenUp),
      lastKnownLocation: (ref) => this.locations.lastKnown(ref),
      routingUnconfirmed: () => !this.locationsReady,
    };
  }

  private routingRefList: Array<{ ref: string; type: string; key: string }> | undefined;

  /** The routing table's references, each with the type it must be and the config key it comes from. */
  private routingRefs(): Array<{ ref: string; type: string; key: string }> {
    if (this.routingRefList) return this.routingRefList;
    const refs: Array<{ ref: string; type: string; key: string }> = [];
    this.routingRefList = refs;
    const { defaultOffice, facilities } = this.config.routing;
    if (defaultOffice) refs.push({ ref: defaultOffice, type: 'CRVS_OFFICE', key: 'routing.defaultOffice' });
    for (const [from, route] of Object.entries(facilities)) {
      const key = `routing.facilities['${from}']`;
      if (route.office) refs.push({ ref: route.office, type: 'CRVS_OFFICE', key: `${key}.office` });
      if (route.facility) refs.push({ ref: route.facility, type: 'HEALTH_FACILITY', key: `${key}.facility` });
    }
    return refs;
  }

  /** The routing keys whose office is `office` (a UUID) as OpenCRVS answered it: what to correct when it refuses that office. */
  private routingKeysOf(office: string): string[] {
    return this.routingRefs()
      .filter(
        ({ ref, type }) =>
          type === 'CRVS_OFFICE' &&
          (ref === office ||
            this.locations.resolveSync(ref, type) === office ||
            this.locations.lastKnown(ref)?.id === office),
      )
      .map(({ key }) => key);
  }

  /**
   * While OpenCRVS has not confirmed the routing table, a routing reference is what OpenCRVS last answered
   * (an earlier run's answer, in the ledger), or a UUID as given: records are mapped and recorded, and
   * nothing is sent before the table is confirmed (startDelivery). Undefined for anything else.
   */
  private unconfirmedRoute(ref: string, type: string): string | undefined {
    if (this.locationsReady || !this.routingRefs().some((r) => r.ref === ref && r.type === type)) return undefined;
    // Fixed once the sources run on it: an answer meanwhile ("no longer listed") must not turn the records
    // mapped next invalid; OpenCRVS's verdict on the table is for its confirmation to give.
    const taken = this.unconfirmedRouting?.taken;
    if (taken) return taken.get(`${type} ${ref}`);
    const known = this.locations.lastKnown(ref);
    if (known === null) return undefined;
    if (known) return known.locationType === type ? known.id : undefined;
    return isUuid(ref) ? ref : undefined;
  }

  /** The routing references unconfirmedRoute cannot stand in for (never answered, or not of their type). */
  private unconfirmableRoutes(): string[] {
    return this.routingRefs()
      .filter(({ ref, type }) => this.unconfirmedRoute(ref, type) === undefined)
      .map(({ key }) => key);
  }

  /**
   * What OpenCRVS answered about location references, kept in the ledger for the next run (this OpenCRVS's
   * only), one row per reference: a replay or `sync` beside serve writes only the answers it got itself.
   */
  private locationMemory(): LocationMemory {
    const opencrvs = openCrvsIdentity(this.config.opencrvs) ?? this.config.opencrvs.domain ?? '';
    // A ledger that refuses them (corrupt, full) refuses every routed location's answer at once: one line,
    // then at most one a minute with how many more, not a warning and a stack for each.
    const said = 'could not keep an answer of OpenCRVS about a location in the ledger';
    const failures = new RepeatedFailure(this.log, said, { level: 'warn' });
    return {
      load: () => this.ledger.locationAnswers.load(opencrvs, KNOWN_MAX),
      save: (ref, answer) => {
        try {
          this.ledger.locationAnswers.save(opencrvs, ref, answer, KNOWN_MAX);
          failures.recovered('answers of OpenCRVS about locations are kept in the ledger again');
        } catch (err) {
          // A hint for the next run only (a busy or closing ledger): the lookup itself succeeded.
          failures.failed(err);
        }
      },
    };
  }

  /**
   * Before a row goes out to an office its record named (DeliveryWorkerDeps.officeOfRecord): OpenCRVS 1.9
   * checks only that createdAtLocation is a leaf, so an office of another deployment would be "delivered"
   * to a location that does not exist, and 2.0 only that it exists, so a health facility would do.
   */
  private async officeOfRecord(office: string): Promise<void> {
    // Whether it is closed is officeClosedOn's to say: a NOTIFY in doubt is resent to a closed office too.
    await this.locations.resolve(office, 'CRVS_OFFICE', { closedToo: true });
  }

  /**
   * Before a row goes out whose facility or office OpenCRVS could not be asked about when it was mapped
   * (DeliveryWorkerDeps.locationNow): what a mapping gives for the reference now, the UUID of the location
   * of that type OpenCRVS lists under it or nothing, as resolveLocation answers after lookupLocations.
   */
  private async locationNow(ref: string, type: 'HEALTH_FACILITY' | 'CRVS_OFFICE'): Promise<string | undefined> {
    try {
      const location = await this.locations.resolve(ref);
      return location.locationType === type ? location.id : undefined;
    } catch (err) {
      if (isNotListed(err)) return undefined;
      throw err;
    }
  }

  /**
   * Every office and facility named in the routing table, checked against OpenCRVS. `abandoned`: the caller
   * gave up waiting (a sync pass's deadline): the lookups in flight are cut off, and an answer after that
   * marks nothing, whatever it says.
   */
  async resolveLocations(abandoned?: AbortSignal): Promise<void> {
    try {
      await this.locations.preload(this.routingRefs(), abandoned);
    } catch (err) {
      if (abandoned?.aborted) return;
      this.locationsError = ledgerFailed(err) ?? (err instanceof Error ? err.message : String(err));
      throw err;
    }
    if (abandoned?.aborted) return;
    this.locationsError = undefined;
    this.locationsReady = true;
    // This OpenCRVS answered with the offices and facilities routed to: the ledger's deliveries go there now.
    if (recordOpenCrvsIdentity(this.ledger, this.config.opencrvs))
      this.log.info("OpenCRVS's address is recorded in the ledger");
  }

  get ready(): boolean {
    return this.locationsReady;
  }

  /**
   * resolveLocations for a pass: a dropped connection or a 503 from OpenCRVS is tried again (1 s, 2 s,
   * 4 s…) until `deadline`, as a delivery would be; a wrong office or credentials fail at once. A lookup
   * still waiting at the deadline is cut off (resolveLocations' `abandoned`) and fails as a timeout
   * (retryable): each call is within opencrvs.timeoutMs, one group of references after another, so a slow
   * OpenCRVS would otherwise hold the pass that long past its --timeout.
   */
  private async resolveLocationsWithin(deadline: number, within = "the pass's --timeout"): Promise<void> {
    const timeLeft = new AbortController();
    const timer = setTimeout(() => timeLeft.abort(), Math.max(0, deadline - Date.now()));
    try {
      for (let delayMs = 1000; ; delayMs *= 2) {
        try {
          await this.resolveLocations(timeLeft.signal);
        } catch (err) {
          const retryable = err instanceof OpenCrvsError && err.classification === 'retryable';
          if (!retryable || this.stopping || Date.now() + delayMs >= deadline) throw err;
          this.log.warn({ err, retryInMs: delayMs }, 'location lookup failed; trying again within the pass');
          // Woken by a stop: a scheduler's SIGTERM ends the pass now, not up to half its --timeout later (the
          // timer alone also kept the process alive after the stop had handed everything back).
          await pause(delayMs, this.stopSignal.signal);
          if (this.stopping) throw err;
          continue;
        }
        // Given up on, resolveLocations returns having marked nothing.
        if (!timeLeft.signal.aborted) return;
        throw new OpenCrvsError({
          kind: 'timeout',
          classification: 'retryable',
          message: `no answer within ${within}`,
          operation: 'resolveLocation',
        });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The routing table for a `sync` pass, as serve takes it (resolveLocationsUntilReady): when OpenCRVS
   * answered for every routing reference in an earlier run, a retryable failure (its locations down) does
   * not fail the pass; it is tried for a quarter of the pass's time (the rest is for reading), and then the
   * pass reads and records on those answers and sends nothing. Returns why, or undefined once confirmed.
   * Without such answers, as resolveLocationsWithin.
   */
  private async resolveLocationsForPass(deadline: number): Promise<string | undefined> {
    if (this.unconfirmableRoutes().length > 0) {
      await this.resolveLocationsWithin(deadline);
      return undefined;
    }
    try {
      await this.resolveLocationsWithin(Date.now() + (deadline - Date.now()) / 4, "a quarter of the pass's --timeout");
      this.unconfirmedRouting = undefined;
      return undefined;
    } catch (err) {
      const retryable = err instanceof OpenCrvsError && err.classification === 'retryable';
      if (!retryable || this.stopping || this.unconfirmableRoutes().length > 0) throw err;
      this.unconfirmedRouting = { taken: this.takenRoutes() };
      const reason = unconfirmedRouting(err);
      this.log.warn(
        `${reason}; records are read and recorded with those it gave last time, and sent by a later pass once it answers`,
      );
      return reason;
    }
  }

  /**
   * The routing table asked once more after a pass's polling, when it could not be confirmed before
   * (resolveLocationsForPass): one try, within the pass's time left. Returns why delivery is still
   * skipped, or undefined once OpenCRVS confirmed the table: the rows recorded on the kept answers carry
   * their marks (officeUnchecked, facilityUnchecked), so the worker checks each before it is sent.
   * The lookup has no deadline of its own: each call is within opencrvs.timeoutMs, one after another for
   * each group of references, so unbounded it could hold the pass that long past its --timeout. Given up
   * on, its calls are cut off, and an answer that came anyway marks nothing (resolveLocations' `abandoned`).
   */
  private async confirmLocationsAfterPolling(skipped: string, deadline: number): Promise<string | undefined> {
    const abandoned = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeLeft = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          abandoned.abort();
          reject(new Error("no answer within the pass's --timeout"));
        },
        Math.max(0, deadline - Date.now()),
      );
    });
    const lookup = this.resolveLocations(abandoned.signal);
    lookup.catch(() => undefined); // given up on, its failure is nobody's
    try {
      await Promise.race([lookup, timeLeft]);
    } catch (err) {
      if (this.stopping) return skipped;
      const reason = unconfirmedRouting(err);
      this.log.warn(`${reason}, asked again after polling; nothing is sent in this pass`);
      return reason;
    } finally {
      clearTimeout(timer);
    }
    this.unconfirmedRouting = undefined;
    this.log.info('OpenCRVS confirmed the routing table after polling: the rows waiting for it are sent');
    return undefined;
  }

  onDeliveryOutcome(listener: (outcome: DeliveryOutcome) => void): void {
    this.outcomeListeners.push(listener);
  }

  private onOutcome(outcome: DeliveryOutcome): void {
    this.noteRefusedOffice(outcome);
    for (const listener of this.outcomeListeners) listener(outcome);
    // The end of a hold, or a decision on a NOTIFY answered pending, is news for listeners, not a
    // delivery attempt (the pending answer was counted, with its latency).
    if (outcome.type === 'resumed' || outcome.decidedLater) return;
    // Failures of OpenCRVS only: a withdrawal settled next, or a copy refused while a newer one replaced
    // it, is a retry outcome too, but nothing failed.
    const failed = outcome.type === 'retry' && outcome.error?.classification === 'retryable';
    if (failed && outcome.error?.kind !== 'withdrawn') {
      this.failingSince ??= { at: Date.now(), attempts: 0 };
      this.failingSince.attempts++;
      // Kind and status only: /readyz needs no token, and OpenCRVS's text is not ours to repeat there.
      const error = outcome.error;
      this.failingSince.last = error && `${error.kind}${error.status ? ` (HTTP ${error.status})` : ''}`;
    } else if (outcome.type === 'delivered' || outcome.type === 'pending') this.failingSince = undefined;
    const eventType = outcome.row?.eventType ?? 'unknown';
    this.metrics.deliveries.inc({ outcome: outcome.type, event_type: eventType });
    if (outcome.error)
      this.metrics.retries.inc({ classification: outcome.error.classification, kind: outcome.error.kind });
    if ((outcome.type === 'delivered' || outcome.type === 'pending') && outcome.row) {
      this.metrics.deliveryLatency.observe(
        { event_type: eventType },
        Math.max(0, Date.now() - outcome.row.firstSeenAt) / 1000,
      );
    }
  }

  /**
   * Routed offices OpenCRVS refused at delivery as offices it does not know (400 "createdAtLocation must be
   * a valid location id": deleted from its locations), each with the routing keys that chose it, for /readyz
   * `routing`: the table resolved at start no longer holds. Until a row is delivered there (OpenCRVS knows it
   * again); a restart resolves the table anew. The resolver keeps its answer: records read meanwhile are
   * recorded routed there, and mapped again before they are sent (delivery/attempt.ts refusedSinceMapped),
   * where without an office they would be recorded invalid.
   */
  private readonly refusedOffices = new Map<string, string[]>();

  private noteRefusedOffice(outcome: DeliveryOutcome): void {
    const office = outcome.row?.office;
    if (!office) return;
    if (outcome.type === 'held' && outcome.error?.kind === 'unknown-office') {
      if (this.refusedOffices.has(office) || this.refusedOffices.size < REFUSED_OFFICES_MAX)
        this.refusedOffices.set(office, this.routingKeysOf(office));
    } else if (outcome.type === 'delivered' || outcome.type === 'pending') this.refusedOffices.delete(office);
  }

  /**
   * Attempts that failed and will be retried since the last one OpenCRVS took (an outage of the events
   * API, say): retries back off for hours before a row is dead, so readiness says so meanwhile.
   */
  private failingSince: { at: number; attempts: number; last?: string } | undefined;
  private storeWrittenAt = Number.NEGATIVE_INFINITY;
  /** Tokens the OpenCRVS client had obtained when the readiness token check last asked for one. */
  private tokensAtCheck = 0;

  private deliveryProblem(now = Date.now()): string | undefined {
    const failing = this.failingSince;
    if (!failing || failing.attempts < DELIVERY_FAILING_ATTEMPTS || now - failing.at < DELIVERY_FAILING_MS)
      return undefined;
    // Nothing waits for a retry or is being sent any more (gone dead, withdrawn, cancelled): nothing is
    // failing. Asked of the ledger now (one row by the state index), not of the paced counts.
    if (this.ledger.list({ states: ['failed', 'delivering'], limit: 1 }).length === 0) {
      this.failingSince = undefined;
      return undefined;
    }
    const minutes = Math.floor((now - failing.at) / 60_000);
    return `no delivery has succeeded for ${minutes} min: ${failing.attempts} attempts failed and wait for a retry${failing.last ? ` (last: ${failing.last})` : ''}`;
  }

  /** Counts carried by the runtime since start, moved into their Prometheus counters at scrape time. */
  private counted = {
    tokenRenewals: 0,
    gaps: new Map<string, number>(),
    dead: new Map<string, number>(),
    updated: new Map<string, number>(),
  };

  /**
   * bridge_write_backs_abandoned_total: the sources whose series a scrape has shown (at 0 the first time),
   * and the abandonments under any other, held until one has. increase() takes a series' first sample as
   * its start: the jobs of a source no longer writing back are abandoned at the runner's first tick, before
   * any scrape, and counted at once their series would appear at N and never raise the alert.
   */
  private readonly abandonedShown = new Set<string>();
  private readonly abandonedHeld = new Map<string, number>();

  private countAbandoned(source: string): void {
    if (this.abandonedShown.has(source)) {
      this.metrics.writeBacksAbandoned.inc({ source });
      return;
    }
    this.metrics.writeBacksAbandoned.inc({ source }, 0);
    this.abandonedHeld.set(source, (this.abandonedHeld.get(source) ?? 0) + 1);
  }

  /** Counts for scrapes and admin tabs: at most about 2% of the event loop on a large ledger. */
  private readonly ledgerCounts = paced(() => this.ledger.counts(), { share: 0.02, maxAgeMs: 15_000 });
  /** The same for the oldest waiting row (an index seek since migration 028; paced as the other reads). */
  private readonly oldestWaitingQueuedAt = paced(() => this.ledger.oldestWaitingQueuedAt(), {
    share: 0.02,
    maxAgeMs: 15_000,
  });
  /** The same for write-back jobs (an index scan that grows with the table). */
  private readonly writeBackCounts = paced(() => this.writeBacks?.store.counts() ?? [], {
    share: 0.02,
    maxAgeMs: 15_000,
  });

  /** Mirrors stored state into gauges at scrape time. */
  refreshMetrics(): void {
    // A ledger that fails reads (corrupt pages, an I/O error) leaves the gauges it feeds as they were: the
    // scrape still answers, with bridge_store_ok and bridge_ready saying so (the watched call kept the
    // error for /readyz store). Anything else is a bug, and thrown.
    const fromLedger = (read: () => void) => {
      try {
        read();
      } catch (err) {
        if (!storageErrorCode(err)) throw err;
      }
    };
    fromLedger(() => this.refreshLedgerMetrics());
    fromLedger(() => {
      const at = this.oldestWaitingQueuedAt();
      this.metrics.oldestWaiting.set(at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000));
    });
    fromLedger(() => {
      const backlog = this.ledger.inbox.backlog();
      this.metrics.inboxDepth.set(backlog.depth);
      this.metrics.inboxBytes.set(backlog.bytes);
    });
    this.refreshProcessMetrics();
  }

  /** Readiness as /readyz answers it, for bridge_ready and bridge_store_ok. */
  private async refreshReadinessMetrics(): Promise<void> {
    const answer = await readiness(this.readinessChecks());
    this.metrics.ready.set(answer.failed.length === 0 ? 1 : 0);
    this.metrics.storeOk.set(answer.checks.store?.ok ? 1 : 0);
  }

  private refreshLedgerMetrics(): void {
    // Read before any gauge is reset: a read that fails leaves them as they were.
    const counts = this.ledgerCounts();
    const writeBackCounts = this.writeBacks ? this.writeBackCounts() : [];
    this.metrics.eventsByState.reset();
    // Every state of every event type the mappings deliver, at 0 when empty, so a dashboard or a threshold
    // shows 0 rather than no series. Not for increase(): this is a gauge, which a replay or a dismissal
    // lowers (a counter reset to Prometheus); the dead alert uses bridge_events_dead_total, below.
    for (const eventType of this.mappedEventTypes()) {
      for (const state of LEDGER_STATES) this.metrics.eventsByState.set({ state, event_type: eventType }, 0);
    }
    for (const { state, eventType, count } of counts) {
      this.metrics.eventsByState.set({ state, event_type: eventType }, count);
    }
    const writeBacks = this.writeBacks;
    if (writeBacks) {
      // As above: every state of every source that writes back, at 0 when empty. A re-queue lowers
      // `abandoned`: its alert uses bridge_write_backs_abandoned_total.
      this.metrics.writeBacks.reset();
      // Held abandonments count once an earlier scrape has shown their series at 0 (countAbandoned).
      for (const [source, held] of this.abandonedHeld) {
        if (!this.abandonedShown.has(source)) continue;
        this.metrics.writeBacksAbandoned.inc({ source }, held);
        this.abandonedHeld.delete(source);
      }
      for (const source of writeBacks.sourceIds()) {
        for (const state of WRITE_BACK_STATES) this.metrics.writeBacks.set({ source, state }, 0);
        // That counter from 0 (an inc by 0 makes the series), so increase() sees the first abandonment.
        this.metrics.writeBacksAbandoned.inc({ source }, 0);
        this.abandonedShown.add(source);
      }
      for (const source of this.abandonedHeld.keys()) this.abandonedShown.add(source);
      for (const { sourceId, state, count } of writeBackCounts)
        this.metrics.writeBacks.set({ source: sourceId, state }, count);
    }
    // Every source and event type its mappings produce from 0, as for bridge_events: increase() sees a
    // series' first death only if the series was there before it. No error kind as a label for that
    // reason: the kinds are many, and `ledger --status dead` says each row's.
    for (const source of [...this.sources, ...this.dhis2Sources])
      for (const mapping of source.mappings.mappings) {
        this.metrics.deadRows.inc({ source: source.settings.id, event_type: mapping.eventType }, 0);
        this.metrics.updatesAfterNotification.inc({ source: source.settings.id, event_type: mapping.eventType }, 0);
      }
    // The same for source records changed after OpenCRVS was notified (not sent: corrected in OpenCRVS).
    for (const { sourceId, eventType, count } of this.ledger.updatesAfterNotification()) {
      const key = JSON.stringify([sourceId, eventType]);
      const labels = { source: sourceId, event_type: eventType };
      this.metrics.updatesAfterNotification.inc(labels, Math.max(0, count - (this.counted.updated.get(key) ?? 0)));
      this.counted.updated.set(key, count);
    }
    for (const { sourceId, eventType, count } of this.ledger.deadRows()) {
      const key = JSON.stringify([sourceId, eventType]);
      const labels = { source: sourceId, event_type: eventType };
      this.metrics.deadRows.inc(labels, Math.max(0, count - (this.counted.dead.get(key) ?? 0)));
      this.counted.dead.set(key, count);
    }
  }

  private refreshProcessMetrics(): void {
    this.metrics.held.set(this.worker.held() ? 1 : 0);
    this.metrics.configChangedOnDisk.set(this.configOnDisk?.current() ? 1 : 0);
    const renewals = this.opencrvs.tokenRenewals();
    this.metrics.tokenRenewals.inc(Math.max(0, renewals - this.counted.tokenRenewals));
    this.counted.tokenRenewals = renewals;
    const now = Date.now();
    for (const source of [...this.sources, ...this.dhis2Sources]) {
      const id = source.settings.id;
      this.metrics.pollFailures.set({ source: id }, source.poller.status.consecutiveFailures);
      // DHIS2 watermarks carry no zone (the server's local time): read as the bridge's own.
      for (const [type, watermark] of Object.entries(source.poller.status.watermarks)) {
        const at = watermark ? Date.parse(watermark) : Number.NaN;
        if (!Number.isNaN(at)) this.metrics.pollLag.set({ source: id, resource_type: type }, (now - at) / 1000);
      }
    }
    for (const source of this.dhis2Sources)
      this.metrics.contextListingFailures.set(
        { source: source.settings.id },
        source.poller.contextListing.consecutiveRefusals,
      );
    for (const source of this.sources) {
      const id = source.settings.id;
      if (!source.settings.subscription) continue;
      const gaps = this.inbox.status(id)?.gaps ?? 0;
      this.metrics.subscriptionGaps.inc({ source: id }, Math.max(0, gaps - (this.counted.gaps.get(id) ?? 0)));
      this.counted.gaps.set(id, gaps);
    }
  }

  sourceStatuses(): SourceStatusView[] {
    return [...this.sources, ...this.dhis2Sources].map((s) => {
      const status = s.poller.status;
      return {
        id: s.settings.id,
        kind: s.settings.kind,
        watermarks: status.watermarks,
        lastPollStartedAt: status.lastPollStartedAt,
        lastPollFinishedAt: status.lastPollFinishedAt,
        lastError: status.lastError,
        consecutiveFailures: status.consecutiveFailures,
        subscription: s.settings.subscription ? this.inbox.status(s.settings.id) : undefined,
        clockBehind: status.clockBehind,
      };
    });
  }

  /**
   * Puts dead rows back in the queue, each evaluated again at its source first (sources/replay.ts), and
   * delivers them now rather than at the next tick.
   */
  async replay(ids: number[] | 'dead'): Promise<ReplayResult> {
    // Mapping needs the routing table; unresolved, rows with a payload are requeued as stored, and the
    // worker confirms them at the source before sending (sources/replay.ts). The lookup ends with a stop (each
    // call is within opencrvs.timeoutMs, a group of references after another), and then nothing is replayed:
    // the stop closes the ledger meanwhile.
    if (!this.locationsReady) await this.resolveLocations(this.stopSignal.signal).catch(() => undefined);
    if (this.stopping) throw new Error('the bridge is stopping: nothing was replayed');
    const result = await replayRows({ ledger: this.ledger, runners: this.recheckRunners(), logger: this.log }, ids);
    // The operator looks at the counts next: the replayed rows are no longer dead.
    this.ledgerCounts.reset();
    // Only where a worker runs: the `replay` command ends right after, and an attempt it began (or a
    // recheck lease it took) would hold the row until lockTimeoutSeconds passed.
    if (result.requeued.length > 0 && this.options.worker !== false) {
      void this.worker.processNext().catch(() => undefined);
    }
    return result;
  }

  private adminTarget(): AdminTarget {
    const writeBacks = this.writeBacks;
    return {
      ledger: this.ledger,
      counts: this.ledgerCounts,
      held: () => this.worker.held(),
      sourceStatuses: () => this.sourceStatuses(),
      identifierLookup: (value) => this.identifierLookupFor(value),
      replay: (ids) => this.replay(ids),
      // Through the runner's own store connection; the runner (re)wakes its loop for a re-queued job.
      writeBacks: writeBacks && {
        sourceIds: () => writeBacks.sourceIds(),
        search: (filter) => writeBacks.store.search(filter).map((job) => this.withTarget(job)),
        get: (rowId) => {
          const job = writeBacks.store.get(rowId);
          return job && this.withTarget(job);
        },
        counts: this.writeBackCounts,
        requeue: (rowId) => writeBacks.requeue(rowId),
      },
    };
  }

  /** A write-back job with where its source's write-back puts the id now, for the admin page. */
  private withTarget(job: WriteBackItem): WriteBackItem & { target: string | null } {
    const source = this.config.sources.find((s) => s.id === job.sourceId);
    return { ...job, target: (source && writeBackTargetText(source)) ?? null };
  }

  private identifierHelp: { value: string; lookup: IdentifierLookup } | undefined;

  /**
   * The admin page's Find help, worked out once: it reads and parses the sources' mapping files, which a
   * page load need not do again (the page always asks with the same placeholder), and the help then names
   * what the mappings read at start name, as the bridge runs them.
   */
  private identifierLookupFor(value: string): IdentifierLookup {
    if (this.identifierHelp?.value !== value)
      this.identifierHelp = { value, lookup: identifierLookup(this.config.sources, value) };
    return this.identifierHelp.lookup;
  }

  renderMetrics(): Promise<{ contentType: string; body: string }> {
    return this.metrics.render(async () => {
      this.refreshMetrics();
      await this.refreshReadinessMetrics();
    });
  }

  /** The event types the sources' mappings produce. */
  private mappedEventTypes(): Set<string> {
    return new Set([...this.sources, ...this.dhis2Sources].flatMap((s) => s.mappings.mappings.map((m) => m.eventType)));
  }

  /**
   * Why OpenCRVS refuses this event type alone (DeliveryWorkerDeps.refusedEventType): the token lacks
   * its grants but has those of another type the mappings produce. A token with none is a client
   * problem for all, which holds the queue.
   */
  private async refusedEventType(eventType: string): Promise<string | undefined> {
    const { scopes } = await this.opencrvs.checkToken();
    const { version } = this.config.opencrvs;
    const lacking = missingGrants(scopes, version, [eventType]);
    if (lacking.length === 0) return undefined;
    const granted = [...this.mappedEventTypes()].filter(
      (other) => other !== eventType && missingGrants(scopes, version, [other]).length === 0,
    );
    if (granted.length === 0) return undefined;
    return (
      `the OpenCRVS client may not send ${eventType} events: its token lacks ${lacking.join(' and ')} ` +
      `(it may send ${granted.join(', ')}). Grant them to the client in OpenCRVS, or take the ${eventType} ` +
      'mapping out of sources[].mappings; then replay'
    );
  }

  /**
   * The ledger file deleted or replaced under the process: said once in the log, on every probe. The
   * probes (/healthz, /readyz `store`) answer anyone who reaches the port: they name the file by its base
   * name, the log by its full path.
   */
  livenessProblem(): string | undefined {
    const problem = this.ledger.fileProblem();
    if (problem && !this.fileProblemLogged) {
      this.fileProblemLogged = true;
      this.log.error(problem);
    }
    return problem === undefined ? undefined : baseNamesOnly(problem, [this.config.store.path]);
  }

  /** Readiness, each check cached briefly so a scraping orchestrator does not hammer OpenCRVS. */
  readinessChecks(): ReadinessCheck[] {
    return [
      {
        name: 'store',
        run: () => {
          const problem = this.livenessProblem();
          if (problem) return problem;
          // One write every few seconds proves the store writable; one per probe was a commit per
          // unauthenticated request (1,650 a second under a load test, slowing acknowledgements).
          const now = Date.now();
          if (now - this.storeWrittenAt >= STORE_WRITE_CHECK_MS) {
            this.storeWrittenAt = now;
            try {
              this.ledger.setMeta('health:lastWriteCheck', new Date(now).toISOString());
              // That small write fits in pages the ledger has even with the disk full: a failure kept is
              // cleared only by the proof (write-health.ts: a write that needs new pages, and room on disk).
              this.ledger.proveWritable();
            } catch (err) {
              // A storage error is kept by the ledger and said below; anything else is this check's answer.
              if (!this.ledger.writeFailure()) throw err;
            }
          }
          // This small write can still fit in pages the WAL has while a delivery's or a poll's does not (a
          // full disk): what the ledger's users met is the answer.
          return storeWriteProblem(this.ledger.writeFailure(), now);
        },
      },
      {
        name: 'opencrvs-token',
        // A fresh token proves the endpoint and the credentials still work; one every 5 minutes is enough
        // (a probe every few seconds would otherwise renew the token every 30 s). A failure is checked again
        // after 30 s. It is reported even while deliveries go on with the unexpired token: that token runs
        // out, and the operator should know before it does.
        // The client's own state is asked on every request, the endpoint not: a refusal it met since the last
        // check fails this at once while it stands (its backoff, the same secret), and a token it obtained
        // since a failed check passes it. Once the refusal no longer stands (its backoff over, another secret in
        // its file) the check asks anew, whatever it kept from before the refusal: nothing else may ask (an
        // idle bridge), and a client reactivated in OpenCRVS or a rotated secret would never be seen.
        run: () => {
          const state = this.opencrvs.tokenState?.();
          if (state?.refusal) {
            this.checkCache.delete('opencrvs-token');
            return `${state.refusal.message} (${state.refusal.kind})`;
          }
          const hit = this.checkCache.get('opencrvs-token');
          if (hit?.failed && state && state.obtained > this.tokensAtCheck) {
            this.checkCache.set('opencrvs-token', { at: Date.now(), result: Promise.resolve(undefined) });
          }
          return this.cachedCheck(
            'opencrvs-token',
            async () => {
              this.tokensAtCheck = this.opencrvs.tokenState?.().obtained ?? 0;
              try {
                await this.opencrvs.checkToken({ fresh: true });
              } catch (err) {
                // A refusal this check met itself is not kept either: while it stands, it is said above at
                // once; kept, a rotated secret that lifted it before the next request was not seen for 30 s.
                if (this.opencrvs.tokenState?.().refusal) this.checkCache.delete('opencrvs-token');
                // The kind (network, timeout, unauthorized…) says whose problem it is; messages are scrubbed.
                throw err instanceof OpenCrvsError ? new Error(`${err.message} (${err.kind})`) : err;
              }
            },
            TOKEN_CHECK_TTL_MS,
          );
        },
      },
      { name: 'routing', run: () => this.routingProblem() },
      { name: 'queue', run: () => (this.worker.held() ? `held: ${this.worker.held()?.reason}` : undefined) },
      { name: 'delivery', run: () => this.deliveryProblem() },
      ...this.configOnDiskCheck(),
      {
        name: 'inbox',
        run: () => {
          const full = this.receiver.full();
          if (!full) return undefined;
          const held = full.limit === 'bytes' ? ` (${Math.round(full.bytes / 1_048_576)} MB, past the byte limit)` : '';
          return `${full.depth} notifications waiting${held}: new ones are refused (503, to be resent) until they are processed`;
        },
      },
      ...this.sources.map((source) => ({
        name: `source:${source.settings.id}`,
        run: () =>
          source.poller.status.consecutiveFailures >= 3
            ? `${source.poller.status.consecutiveFailures} poll passes failed: ${source.poller.status.lastError}`
            : this.sourceCheck(source.settings.id, source.client, () => source.client.capabilityStatement()),
      })),
      ...this.dhis2Sources.map((source) => ({
        name: `source:${source.settings.id}`,
        run: () =>
          source.poller.status.consecutiveFailures >= 3
            ? `${source.poller.status.consecutiveFailures} poll passes failed: ${source.poller.status.lastError}`
            : this.sourceCheck(source.settings.id, source.client, () => source.client.systemInfo()),
      })),
      // A note: the mothers' listing fails no pass, and births flow without it (Dhis2Poller.contextRecords).
      ...this.dhis2Sources.map((source) => ({
        name: `context:${source.settings.id}`,
        note: true,
        run: () => {
          const { consecutiveRefusals, lastError } = source.poller.contextListing;
          return consecutiveRefusals >= CONTEXT_LISTING_NOTED
            ? `DHIS2 refused the listing of the mothers (tracked entities births read as their context) ${consecutiveRefusals} passes in a row: ${lastError}; their corrections are not seen meanwhile`
            : undefined;
        },
      })),
    ];
  }

  /** Shown, never failing readiness: the running service is as it was, and a restart applies the edit. */
  private configOnDiskCheck(): ReadinessCheck[] {
    const onDisk = this.configOnDisk;
    if (!onDisk) return [];
    const run = () => {
      const change = onDisk.current();
      if (!change) return undefined;
      const verdict = change.problem ? `would NOT load: ${change.problem}` : 'would load';
      // Base names only: /readyz answers anyone (the log names the files in full).
      return baseNamesOnly(
        `${change.files.join(', ')} changed on disk since start; still running the version read at start (validate, then restart to apply); the new version ${verdict}`,
        change.files,
      );
    };
    return [{ name: 'config-on-disk', note: true, run }];
  }

  /** What the routing table lacks, for /readyz: what waits for it, and why (config keys and OpenCRVS's words). */
  private routingProblem(): string | undefined {
    if (this.locationsReady) {
      if (this.refusedOffices.size === 0) return undefined;
      const offices = [...this.refusedOffices].map(
        ([office, keys]) => `${office}${keys.length > 0 ? ` (${keys.join(', ')})` : ''}`,
      );
      return (
        `OpenCRVS refused routed office ${offices.join('; ')} as one it does not know (unknown-office, HTTP 400): ` +
        'correct the route in the config and restart; delivery is held'
      );
    }
    const why = this.locationsError ? `: ${this.locationsError}` : '';
    if (this.sourcesStarted)
      return (
        'offices and facilities not confirmed in OpenCRVS yet; records are read and recorded with those it gave ' +
        `last time, delivery waits${why}`
      );
    const missing = this.unconfirmableRoutes();
    return (
      `offices and facilities not resolved in OpenCRVS yet (${missing.length > 0 ? missing.join(', ') : 'none known'}); ` +
      `polling, notifications and delivery wait for them${why}`
    );
  }

  private readonly checkCache = new Map<
    string,
    { at: number; result: Promise<string | undefined>; failed?: boolean }
  >();

  /**
   * A source's readiness, kept as cachedCheck keeps it, except a failure met while the client holds its token
   * endpoint's answer (a refused client secret): the client itself fails each call with it at once, asking
   * nobody, and asks again once the secret file changes. Kept, it said the refusal for up to 30 s after a
   * rotated secret had lifted it.
   */
  private sourceCheck(
    sourceId: string,
    client: { authHeld(): boolean },
    ask: () => Promise<unknown>,
  ): Promise<string | undefined> {
    const key = `source:${sourceId}`;
    return this.cachedCheck(key, async () => {
      try {
        await ask();
      } catch (err) {
        if (client.authHeld()) this.checkCache.delete(key);
        throw err;
      }
    });
  }

  /** A check's answer, kept `ttlMs` when it passed and 30 s when it failed. */
  private cachedCheck(key: string, run: () => Promise<void>, ttlMs = CHECK_TTL_MS): Promise<string | undefined> {
    const hit = this.checkCache.get(key);
    if (hit && Date.now() - hit.at < (hit.failed ? Math.min(ttlMs, CHECK_TTL_MS) : ttlMs)) return hit.result;
    const entry: { at: number; result: Promise<string | undefined>; failed?: boolean } = {
      at: Date.now(),
      result: Promise.resolve(undefined),
    };
    entry.result = run().then(
      () => undefined,
      (err: unknown) => {
        entry.failed = true;
        return err instanceof Error ? err.message : 'failed';
      },
    );
    this.checkCache.set(key, entry);
    return entry.result;
  }

  async start(): Promise<void> {
    this.ran = true;
    const onDisk = this.configOnDisk;
    if (onDisk) {
      // For `doctor` beside this process: which files it read, as they were (no content, no values).
      // Only a convenience: a ledger that cannot take it now does not stop the start.
      try {
        const config = this.options.configFile && resolve(this.options.configFile.path);
        this.ledger.setMeta(LOADED_FILES_META, JSON.stringify({ config, files: onDisk.loaded }));
      } catch (err) {
        this.log.warn({ err }, 'could not record the loaded configuration files for doctor');
      }
      onDisk.start();
    }
    if (this.options.http !== false) await this.openListeners();
    // Notifications are accepted (stored) at once. Processing and polling need the routing table, since a
    // record cannot be mapped to an office before: while OpenCRVS cannot be asked, they run on what it
    // answered last time (resolveLocationsUntilReady); delivery waits for its answer.
    await this.resolveLocationsUntilReady(ROUTING_RETRY_MS);
  }

  /**
   * The main listener (receiver, health, metrics) on http.host, reachable from the EMR; the admin page
   * and API on a listener of their own (admin.host, loopback by default), so that whoever can reach the
   * receiver cannot reach the ledger browser. Without an admin token the admin listener is not opened.
   * Both are open, or neither: a port that cannot be used fails start-up naming its key.
   */
  private async openListeners(): Promise<void> {
    // Here, not at the module's top: express and the routes load only where a listener opens (serve, demo).
    const [adminHttp, { listenConfigured }, { opsRoutes }, { createHttpApp }, { subscriptionRoutes }] =
      await Promise.all([
        import('./http/admin/index.js'),
        import('./http/listen-configured.js'),
        import('./http/ops-routes.js'),
        import('./http/server.js'),
        import('./http/subscription-routes.js'),
      ]);
    const routers: MountedRouter[] = [
      {
        path: '/fhir-subscription',
        router: subscriptionRoutes(this.receiver, this.config.http.bodyLimitBytes, this.options.logger),
      },
      { path: '/', router: opsRoutes(this) },
      { path: '/admin', router: adminHttp.adminElsewhere() },
      ...(this.options.routers?.(this) ?? []),
    ];
    const { logger } = this.options;
    const main = await listenConfigured(
      'http',
      createHttpApp(routers, logger, { isSource: (id) => this.receiver.hasSource(id) }),
      this.config.http.host,
      this.config.http.port,
    );
    // A signal arrived while we were binding: stop() has already run without this server.
    if (this.stopping) return closeServer(main.server);
    this.server = main.server;
    this.httpPort = main.port;
    this.log.info({ port: main.port }, 'http listening');
    const { admin } = this.config;
    if (!admin.token?.trim()) return;
    const adminApp = createHttpApp(
      [
        { path: '/admin', router: adminHttp.adminRoutes(this.adminTarget(), admin, { logger }) },
        { path: '/', router: adminHttp.adminListenerFallback(admin) },
      ],
      logger,
    );
    const opened = await listenConfigured('admin', adminApp, admin.host, admin.port).catch(async (err: unknown) => {
      this.server = undefined;
      this.httpPort = undefined;
      await closeServer(main.server);
      throw err;
    });
    if (this.stopping) return closeServer(opened.server);
    this.adminServer = opened.server;
    this.adminPort = opened.port;
    this.log.info({ host: admin.host, port: opened.port }, 'admin listening');
  }

  /**
   * Resolves the routing table in OpenCRVS, trying again `delayMs` later (doubling, up to 30 s) until it
   * does. Until then the sources run when every routing reference can be taken as OpenCRVS last answered
   * (unconfirmedRoute): an OpenCRVS that is down when the bridge starts does not stop the EMR being read.
   */
  private async resolveLocationsUntilReady(delayMs: number): Promise<void> {
    if (this.stopping) return;
    try {
      // Ends with a stop: a SIGTERM during start-up is not held until OpenCRVS answers or the calls time out.
      await this.resolveLocations(this.stopSignal.signal);
      if (this.stopping) return;
      // Rows recorded meanwhile carry which references were taken unconfirmed (officeUnchecked,
      // facilityUnchecked): the worker looks each up before it is sent, and has the record mapped again
      // where OpenCRVS now answers otherwise. That holds in a later process too (a restart, `sync`, a
      // replay), where nothing of this one's memory is left.
      this.unconfirmedRouting = undefined;
      this.startSources();
      this.startDelivery();
    } catch (err) {
      // Stopped meanwhile (a SIGTERM during start-up closed the client): that is no routing problem.
      if (this.stopping) return;
      const reason = err instanceof Error ? err.message : String(err);
      // Credentials the token endpoint refused: it is not asked again before its backoff ends (30 s,
      // doubling to 5 min: opencrvs/token.ts), and a try before then meets the same refusal at once, a
      // warning each. But not longer than 30 s: a corrected secret file ends that backoff, and only a try
      // reads the file, so routing (and the sources and delivery behind it) would wait out minutes after the
      // fix. Rounded up to the second: a timer may fire a millisecond early, and the try with it.
      const refusedMs =
        err instanceof OpenCrvsError && err.operation === 'token' && err.classification !== 'retryable'
          ? Math.min(Math.ceil((err.retryAfterMs ?? 0) / 1000) * 1000, ROUTING_RETRY_MAX_MS)
          : 0;
      const waitMs = Math.max(delayMs, refusedMs);
      const retry = `retrying in ${Math.round(waitMs / 1000)} s`;
      const ledger = ledgerFailed(err);
      if (this.sourcesStarted || this.unconfirmableRoutes().length === 0) {
        if (!this.sourcesStarted) {
          this.unconfirmedRouting = { taken: this.takenRoutes() };
          this.startSources();
        }
        this.log.warn(
          `${ledger ? `routing could not be confirmed: ${ledger}` : `routing could not be confirmed in OpenCRVS (${reason})`}; ` +
            `records are read and recorded with the offices and facilities OpenCRVS gave last time, delivery waits; ${retry}`,
        );
      } else {
        this.log.error(
          { err },
          `${ledger ? `routing could not be resolved: ${ledger}` : `routing could not be resolved in OpenCRVS (${reason})`}; ` +
            `polling, notifications and delivery wait; ${retry}`,
        );
      }
      this.locationRetry = setTimeout(
        () => void this.resolveLocationsUntilReady(Math.min(delayMs * 2, ROUTING_RETRY_MAX_MS)),
        waitMs,
      );
      this.locationRetry.unref();
    }
  }

  /** What unconfirmedRoute gives each routing reference now. */
  private takenRoutes(): Map<string, string | undefined> {
    return new Map(this.routingRefs().map(({ ref, type }) => [`${type} ${ref}`, this.unconfirmedRoute(ref, type)]));
  }

  /** Notifications and polls, once: on the routing table OpenCRVS confirmed, or as it answered last time. */
  private startSources(): void {
    if (this.sourcesStarted) return;
    this.sourcesStarted = true;
    // A source that is not polled has no pass to wait for: its notifications are processed from now on.
    for (const source of this.sources)
      if (!source.settings.poll.enabled) recordSourceIdentity(this.ledger, source.settings);
    this.inbox.start();
    if (this.options.schedule !== false) this.enableSchedules();
  }

  /**
   * Deliveries, once OpenCRVS confirmed the routing table: the rows the worker would send after a wait are
   * rechecked at the source first, which means mapping them, and a row must not go to an office OpenCRVS
   * has not confirmed.
   */
  private startDelivery(): void {
    if (this.deliveryStarted || this.options.worker === false || this.stopping) return;
    this.deliveryStarted = true;
    this.worker.start();
    this.writeBacks?.start();
  }

  /**
   * One poll pass of a source. The first that succeeds records the source's address in the ledger: from
   * then on the ledger's rows are that source's (sources/identity.ts).
   */
  private async pollSource(source: SourceRuntime | Dhis2SourceRuntime, options: PassOptions = {}): Promise<PassReport> {
    const report = await source.poller.pollOnce(options);
    // A pass refused because the bridge is stopping read nothing.
    if (!this.stopping && recordSourceIdentity(this.ledger, source.settings))
      this.log.info({ source: source.settings.id }, "the source's address is recorded in the ledger");
    return report;
  }

  /** Starts the cron schedules (serve does at start; the demo after its first summary). */
  enableSchedules(): void {
    for (const source of [...this.sources, ...this.dhis2Sources]) {
      if (source.task) continue;
      if (!source.settings.poll.enabled) continue;
      // node-cron would start a second run while the first is still going; pollOnce shares one.
      source.task = cron.schedule(source.settings.poll.schedule, () => {
        if (!source.poller.busy) this.pollSource(source).catch(() => undefined);
      });
      // First pass now rather than at the first tick.
      this.pollSource(source).catch(() => undefined);
    }
  }

  /**
   * One poll-and-deliver pass over the given sources (all by default), within `timeoutMs` in all: at the
   * deadline the polls end after their current page (calls still waiting on a source are cut off) and
   * delivery stops taking rows. What was committed stays; the next pass goes on from there.
   */
  /** `since`: read again from there too (PassOptions.from). */
  async syncOnce(sourceIds?: string[], options: { timeoutMs?: number; since?: string } = {}): Promise<SyncSummary> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    // The deadline is a timer: Node fires one set past 2^31 - 1 ms after 1 ms instead, which would cut the
    // pass off at once (and NaN would do the same). Refused for every caller, not only the CLI's --timeout.
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMER_MS) {
      throw new RangeError(
        `syncOnce: timeoutMs must be above 0 and at most ${MAX_TIMER_MS} ms (about 24.8 days), not ${timeoutMs}`,
      );
    }
    this.ran = true;
    const deadline = Date.now() + timeoutMs;
    let deliverySkipped = this.locationsReady ? undefined : await this.resolveLocationsForPass(deadline);
    const report = emptyReport();
    const failedSources: string[] = [];
    const sourceErrors: Record<string, string> = {};
    const rereadFrom: Record<string, string> = {};
    const syncing = [...this.sources, ...this.dhis2Sources].filter(
      (source) => !sourceIds || sourceIds.includes(source.settings.id),
    );
    let timedOut = false;
    const pollDeadline = new AbortController();
    this.lookupsGivenUp = AbortSignal.any([this.stopSignal.signal, pollDeadline.signal]);
    const cutOff = setTimeout(
      () => {
        timedOut = true;
        pollDeadline.abort();
        this.log.warn('the pass reached its deadline while polling: polls end after their current page');
        for (const source of syncing) source.poller.stop();
        for (const source of syncing) source.client.close();
      },
      Math.max(0, deadline - Date.now()),
    );
    try {
      for (const source of syncing) {
        if (timedOut) break;
        try {
          // A pass reading from --since stops at its page budget like any pass, but the watermark does not
          // carry its progress: the next pass goes on from where it stopped, while the deadline allows.
          let from = options.since;
          for (;;) {
            const read = await this.pollSource(source, { from });
            addReports(report, read);
            const stopped = read.rereadStoppedAt;
            if (stopped === undefined) break;
            if (stopped === from || timedOut) {
              rereadFrom[source.settings.id] = stopped;
              break;
            }
            from = stopped;
          }
        } catch {
          failedSources.push(source.settings.id);
          sourceErrors[source.settings.id] = source.poller.status.lastError ?? 'failed';
        }
      }
    } finally {
      clearTimeout(cutOff);
      this.lookupsGivenUp = this.stopSignal.signal;
    }
    // OpenCRVS may have come back while the sources were read: asked once more, the rows found (and those
    // earlier passes recorded on the kept answers) go out in this pass rather than wait for the next.
    if (deliverySkipped && !timedOut && Date.now() < deadline)
      deliverySkipped = await this.confirmLocationsAfterPolling(deliverySkipped, deadline);
    // Not after the deadline: the source clients are closed, so a recheck would fail and its rows go out
    // unchecked, as for an EMR that is down (an adversarial review).
    // Delivered in this pass, rows of earlier passes and replays included (the summary counts them).
    const delivered = new Set<number>();
    const noteDelivered = (outcome: DeliveryOutcome) => {
      if ((outcome.type === 'delivered' || outcome.type === 'pending') && outcome.row) delivered.add(outcome.row.id);
    };
    // Nothing goes to an office OpenCRVS has not confirmed (startDelivery): the rows wait for a pass it answers.
    if (!timedOut && !deliverySkipped) {
      this.outcomeListeners.push(noteDelivered);
      try {
        await this.worker.runUntilIdle({ timeoutMs: Math.max(0, deadline - Date.now()) });
      } catch (err) {
        timedOut = true;
        this.log.warn({ err }, 'delivery did not finish within the pass');
      } finally {
        this.outcomeListeners.splice(this.outcomeListeners.indexOf(noteDelivered), 1);
      }
    }
    // Write-backs due now run once each; failures wait for their own backoff (the next pass or `serve`).
    // Within what is left of the deadline: then no job is claimed, and calls still waiting on a source are
    // cut off and handed back uncounted (the next pass runs them). Not at all once the deadline has
    // passed: they are never late (no delivery state waits on them).
    const writeBacks = timedOut
      ? undefined
      : await this.writeBacks?.drain({ timeoutMs: deadline - Date.now() }).catch((err: unknown) => {
          this.log.warn({ err }, 'write-back pass failed');
          return undefined;
        });
    const ids = new Set(report.ledgerIds);
    const rows = [...ids].map((id) => this.ledger.get(id)).filter((row): row is LedgerRow => row !== undefined);
    // What an earlier pass left dead or failing still needs someone: a scheduler's job must not turn green
    // because this pass did not touch those rows.
    const synced = syncing.map((source) => source.settings.id);
    // A whole pass also answers for sources retired with rows not delivered (their payloads still go out,
    // and a dead one is still a birth or death OpenCRVS lacks): retiring does not turn a pass green.
    if (!sourceIds) {
      const configured = new Set(this.config.sources.map((s) => s.id));
      synced.push(...this.ledger.sources.recordedIds().filter((id) => !configured.has(id)));
    }
    // Rows left `delivering` by a pass that was killed wait for their lock to expire: not done either.
    const notDone: LedgerState[] = ['dead', 'failed', 'pending', 'delivering'];
    const earlier = synced
      .flatMap((sourceId) => this.ledger.list({ sourceId, states: notDone, limit: 1000 }))
      .filter((row) => !ids.has(row.id));
    const storeFailure = this.ledger.writeFailure();
    const ok =
      !storeFailure &&
      failedSources.length === 0 &&
      !timedOut &&
      Object.keys(rereadFrom).length === 0 &&
      rows.every(syncDone) &&
      earlier.length === 0 &&
      !deliverySkipped &&
      !this.worker.held();
    const held = this.ledger.getHold();
    return {
      report,
      rows,
      earlier,
      delivered: [...delivered],
      failedSources,
      sourceErrors,
      rereadFrom,
      timedOut,
      ...(held ? { held } : {}),
      ...(deliverySkipped ? { deliverySkipped } : {}),
      ...(writeBacks ? { writeBacks } : {}),
      ...(storeFailure ? { storeFailure } : {}),
      ok,
    };
  }

  private stopped: Promise<void> | undefined;
  /** Fires when the bridge begins to stop. */
  private readonly stopSignal = new AbortController();
  /**
   * When a record's facility lookup (mapOptions' lookupLocations) stops being waited for: at the stop, and
   * during a sync pass's polling at its deadline too. Otherwise a page being mapped waited out each lookup
   * (opencrvs.timeoutMs, one after another) before its poll pass could end, and the stop or the pass with it;
   * given up on, the record is recorded with its facility unchecked, as while OpenCRVS cannot be asked.
   */
  private lookupsGivenUp: AbortSignal = this.stopSignal.signal;
  /** Started, or ran a pass: a bridge built only to replay or look up rows does not report stopping. */
  private ran = false;

  /**
   * Stops everything, once: a signal may stop the bridge while its command is stopping it too. `drainMs`:
   * how long rows in flight may take to finish before they are taken back (default 30 s; a `sync` pass
   * cut off at its deadline gives 0).
   */
  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopped ??= this.stopAll(options.drainMs);
    return this.stopped;
  }

  private async stopAll(drainMs?: number): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    if (this.locationRetry) clearTimeout(this.locationRetry);
    // Ends a verify under way (its worker thread too).
    await this.configOnDisk?.stop();
    for (const source of [...this.sources, ...this.dhis2Sources]) await source.task?.stop();
    // Both listeners at once: each may wait up to its grace period for requests in flight.
    await Promise.all([this.server, this.adminServer].map((server) => server && closeServer(server)));
    // The worker first takes no new row (a recheck the source cut-off below ends must not count as done),
    // and its in-flight attempts drain meanwhile.
    const workerStopped = this.worker.stop(drainMs === undefined ? {} : { drainMs });
    // Write-backs in flight are cut off first, so the client closing below is no failure of theirs: an
    // attempt the bridge ended itself is handed back uncounted, its last error left as the source gave it.
    const writeBacksStopped = this.writeBacks?.stop();
    // Passes end after their current page, and calls still waiting on an EMR are cut off.
    for (const source of [...this.sources, ...this.dhis2Sources]) source.poller.stop();
    for (const source of [...this.sources, ...this.dhis2Sources]) source.client.close();
    await this.inbox.stop();
    await Promise.all([...this.sources, ...this.dhis2Sources].map((s) => s.poller.idle()));
    await workerStopped;
    await writeBacksStopped;
    this.opencrvs.close?.();
    this.ledger.close(); // gives the lease back (BridgeOptions.lease)
    if (this.ran) this.log.info('stopped');
  }
}

/** Why a pass sends nothing while OpenCRVS cannot confirm the routing table (SyncSummary.deliverySkipped). */
function unconfirmedRouting(err: unknown): string {
  const ledger = ledgerFailed(err);
  if (ledger) return `the offices and facilities routed to could not be confirmed: ${ledger}`;
  return `OpenCRVS could not confirm the offices and facilities routed to (${err instanceof Error ? err.message : String(err)})`;
}

/**
 * A storage error of the ledger met while the routing table was resolved (its answers are kept there), said
 * as the ledger's: OpenCRVS may have answered, and an operator told it did not looks in the wrong place.
 */
function ledgerFailed(err: unknown): string | undefined {
  const code = storageErrorCode(err);
  if (!code) return undefined;
  const message = err instanceof Error ? err.message : code;
  return `the ledger failed (${code}: ${message}; /readyz store says what to do)`;
}

/** /readyz `store` for a storage error the ledger's users met (Ledger.writeFailure), else undefined. */
export function storeWriteProblem(failure: WriteFailure | undefined, now: number): string | undefined {
  if (!failure) return undefined;
  const ago = Math.max(0, Math.round((now - failure.at) / 1000));
  const met = `${ago} s ago (${failure.code}: ${failure.message}), at ${new Date(failure.at).toISOString()}`;
  // Free space and permissions mend nothing here: the file's pages are damaged (or it is no database).
  if (isCorruptCode(failure.code))
    return (
      `the ledger is corrupt: a ledger call failed ${met}. Polls, notifications and deliveries that read or write ` +
      'its damaged pages fail, and nothing the bridge does mends it: stop the bridge and restore the last backup ' +
      '(deployment.md §8 "Backup and restore"; runbook: "Ledger corrupt"); this stays failing until then'
    );
  return (
    `the ledger refused a write ${met}: ` +
    'polls, notifications and deliveries that write fail until it can. Free space on its disk or make it ' +
    'writable (runbook: "Ledger disk full or unwritable"); this clears once its 64 KiB proof write succeeds a minute after the last failure (when full: with 32 MiB free on its file system too)'
  );
}
