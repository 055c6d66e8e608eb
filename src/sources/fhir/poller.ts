import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { PollSettings } from '../../config/types.js';
import type { Logger } from '../../observability/logger.js';
import { PassCoverage, versionKey } from '../coverage.js';
import { type CursorStore, firstSyncStart, type PollerStatus, trackedPass } from '../pass.js';
import { addReports, emptyReport, type PassReport, type SourcePipeline } from '../pipeline.js';
import { CachingFetcher } from './fetcher.js';
import type { FhirSourceClient } from './fhir-client.js';

export type { CursorStore, PollerStatus } from '../pass.js';

export interface FhirPollerDeps {
  sourceId: string;
  client: FhirSourceClient;
  pipeline: SourcePipeline;
  cursors: CursorStore;
  /** The resource types whose changes can make or change an event (from the mappings). */
  resourceTypes: string[];
  poll: PollSettings;
  logger: Logger;
  /** Upper bound on pages per resource type and pass, so one pass always ends. */
  maxPagesPerType?: number;
}

const cursorName = (type: string) => `lastUpdated:${type}`;

function lastUpdatedOf(resource: Resource): string | undefined {
  return resource.meta?.lastUpdated;
}

/**
 * Incremental sync by `_lastUpdated`. Per resource type: `_lastUpdated=ge<W − overlap>`,
 * `_sort=_lastUpdated`, paging through `Bundle.link[next]` exactly as given. The watermark W is the
 * highest `meta.lastUpdated` the server stamped (its clock, not ours), committed per page in the
 * same transaction as the ledger rows the page produced. The overlap re-reads recent changes to
 * cover clock skew and slow commits; versions already seen are skipped by (type, id, versionId).
 */
export class FhirPoller {
  private readonly log: Logger;
  private readonly seen = new Map<string, number>();
  private running: Promise<PassReport> | undefined;
  private queued: Promise<PassReport> | undefined;
  readonly status: PollerStatus = { consecutiveFailures: 0, watermarks: {} };

  constructor(private readonly deps: FhirPollerDeps) {
    this.log = deps.logger.child({ component: 'fhir-poller', source: deps.sourceId });
    for (const type of deps.resourceTypes) {
      this.status.watermarks[type] = deps.cursors.getCursor(deps.sourceId, cursorName(type));
    }
  }

  /**
   * One pass over every resource type that starts no earlier than this call; passes never overlap.
   * A call while a pass runs must not just join it: that pass may already have read past a change
   * the caller was told about (a subscription ping), so one more pass is queued after it, shared by
   * every call made meanwhile.
   */
  pollOnce(): Promise<PassReport> {
    if (!this.running) {
      this.running = this.pass().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.pollOnce();
      });
    return this.queued;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when no pass is running or queued (shutdown waits for this; it starts nothing). */
  async idle(): Promise<void> {
    while (this.running || this.queued) await (this.queued ?? this.running)?.catch(() => undefined);
  }

  private pass(): Promise<PassReport> {
    const fetcher = new CachingFetcher(this.deps.client);
    const coverage = new PassCoverage();
    return trackedPass(this.status, this.log, async () => {
      const report = emptyReport();
      for (const type of this.deps.resourceTypes) addReports(report, await this.pollType(type, fetcher, coverage));
      return { report, reads: fetcher.reads };
    });
  }

  private searchParams(type: string): Record<string, string> {
    const { poll } = this.deps;
    const params: Record<string, string> = { _sort: '_lastUpdated', _count: String(poll.pageSize) };
    const { cursors, sourceId } = this.deps;
    const stored = cursors.getCursor(sourceId, cursorName(type));
    // The overlap re-reads what a watermark may have raced; a first sync's start (poll.since, the
    // go-live) is a boundary the operator chose, not a watermark, and is taken as given.
    const watermark = stored ?? firstSyncStart(poll, cursors, sourceId);
    if (watermark) {
      const from = new Date(Date.parse(watermark) - (stored ? poll.overlapSeconds * 1000 : 0));
      // UTC with Z: a '+' offset in a query string would need encoding.
      params._lastUpdated = `ge${from.toISOString()}`;
    }
    return params;
  }

  private async pollType(type: string, fetcher: CachingFetcher, coverage: PassCoverage): Promise<PassReport> {
    const report = emptyReport();
    const maxPages = this.deps.maxPagesPerType ?? 1_000;
    let page: Bundle | undefined = await this.deps.client.searchPage(type, this.searchParams(type));
    for (let pages = 0; page && pages < maxPages; pages++) {
      const resources = (page.entry ?? [])
        .map((entry) => entry.resource)
        .filter((resource): resource is Resource => resource?.resourceType === type);
      const fresh = resources.filter((resource) => !this.seen.has(versionKey(resource)));
      fetcher.prime(resources);
      const { results } = await this.deps.pipeline.evaluate(fresh, fetcher, coverage);
      const pageMax = resources.map(lastUpdatedOf).reduce<string | undefined>(laterOf, undefined);
      const current = this.status.watermarks[type];
      const next = laterOf(current, pageMax);
      const pageReport = this.deps.pipeline.commit(
        results,
        next && next !== current ? { name: cursorName(type), value: next } : undefined,
      );
      pageReport.resources = resources.length;
      addReports(report, pageReport);
      this.status.watermarks[type] = next;
      for (const resource of fresh) this.remember(resource);
      page = await this.deps.client.nextPage(page);
    }
    this.prune(type);
    return report;
  }

  private remember(resource: Resource): void {
    this.seen.set(versionKey(resource), Date.parse(lastUpdatedOf(resource) ?? '') || Date.now());
  }

  /** Forgets versions older than the overlap window: they can no longer come back in a search. */
  private prune(type: string): void {
    const watermark = this.status.watermarks[type];
    if (!watermark) return;
    const horizon = Date.parse(watermark) - (this.deps.poll.overlapSeconds + 60) * 1000;
    for (const [key, at] of this.seen) {
      if (key.startsWith(`${type}/`) && at < horizon) this.seen.delete(key);
    }
  }
}

function laterOf(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}
