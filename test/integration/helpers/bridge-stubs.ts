// Stand-ins for the unit tests of the poller and the inbox processor: a FHIR client that serves pages
// from memory (and records every search it was asked), and a pipeline that records what it evaluated
// and keeps cursors in a Map, so the cursor and gap logic is tested without a server or a mapping.
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { SourceSettings } from '../../../src/config/types.js';
import type { Ledger } from '../../../src/ledger/index.js';
import { MappingSet, type ResourceFetcher } from '../../../src/mapping/index.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { FhirSourceClient, FhirSourceError } from '../../../src/sources/fhir/fhir-client.js';
import type { InboxRow, InboxStore } from '../../../src/sources/fhir/inbox.js';
import type { MetaStore } from '../../../src/sources/fhir/inbox-processor.js';
import type { ParsedNotification } from '../../../src/sources/fhir/notification.js';
import { type CursorStore, FhirPoller } from '../../../src/sources/fhir/poller.js';
import { type Evaluation, emptyReport, type PassReport, SourcePipeline } from '../../../src/sources/pipeline.js';

export const STUB_SETTINGS: SourceSettings = {
  id: 'stub',
  kind: 'fhir',
  baseUrl: 'http://stub.invalid/fhir',
  auth: { type: 'none' },
  timeoutMs: 1000,
  poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 10, pageSize: 2 },
  mappings: [],
};

export function stamped(type: string, id: string, lastUpdated: string, versionId = '1'): Resource {
  return { resourceType: type, id, meta: { versionId, lastUpdated } } as Resource;
}

/**
 * Serves `resources` of a type sorted by lastUpdated, filtered by `_lastUpdated=ge…`, `_count` a page,
 * with opaque `next` links. `gate`, when set, is awaited inside a search after its snapshot is taken
 * (a slow server: the answer reflects the moment the search started).
 * `paging: 'offset'` pages as OpenMRS does: a `next` link runs the query again and skips the records of
 * earlier pages, so a change between pages shifts what later pages hold. `unsorted` ignores `_sort`
 * (insertion order). `beforePage` runs before each page is served (searches and `next` links alike).
 */
export class StubFhirClient extends FhirSourceClient {
  readonly store = new Map<string, Resource>();
  readonly searches: Array<{ type: string; params: Record<string, string> }> = [];
  readonly followed: string[] = [];
  gate: Promise<void> | undefined;
  failNextPageAfter: number | undefined;
  /** The search after this many searches fails (a server that went away mid-pass). */
  failSearchAfter: number | undefined;
  paging: 'snapshot' | 'offset' = 'snapshot';
  unsorted = false;
  /** The server's own cap on `_count` (OpenMRS, HAPI cap it): a larger `_count` gets this many. */
  maxCount: number | undefined;
  /** Ties on lastUpdated come in a different order on every page (SQL ORDER BY with LIMIT/OFFSET). */
  unstableTies = false;
  /** Answers `_summary=count` with `Bundle.total` (and `_lastUpdated=eq…`), as HAPI and the sandbox do. */
  counts = false;
  beforePage: ((served: number) => void) | undefined;
  private served = 0;
  private readonly pending = new Map<string, Bundle>();
  private readonly offsets = new Map<string, { type: string; params: Record<string, string>; offset: number }>();
  private pageNo = 0;

  constructor() {
    super(STUB_SETTINGS, { logger: silentLogger, attempts: 1 });
  }

  put(resource: Resource): void {
    this.store.delete(`${resource.resourceType}/${resource.id}`); // a changed record moves to the end
    this.store.set(`${resource.resourceType}/${resource.id}`, resource);
  }

  override async read(type: string, id: string): Promise<Resource | undefined> {
    return this.store.get(`${type}/${id}`);
  }

  /**
   * The stub keeps no history: a resource read as gone has no last version, as from a server without
   * history support. Not overridden, the call went to STUB_SETTINGS' baseUrl, which never answers, and
   * waited out its timeout (1 s) for the same undefined: 20 s for a test's 80 records read as gone.
   */
  override async lastVersion(): Promise<Resource | undefined> {
    return undefined;
  }

  /**
   * The stub serves no CapabilityStatement: the call fails at once, as a server that never answers it ends
   * (searches then go on without it), instead of waiting out the 1 s timeout against STUB_SETTINGS' baseUrl.
   */
  override async capabilityStatement(): Promise<Resource> {
    throw new FhirSourceError('capabilities failed: the stub serves no CapabilityStatement', undefined, true);
  }

  override async searchPage(type: string, params: Record<string, string>): Promise<Bundle> {
    this.searches.push({ type, params: { ...params } });
    if (this.failSearchAfter !== undefined && this.searches.length > this.failSearchAfter) {
      throw new Error('stub: search failed');
    }
    this.beforePage?.(this.served++);
    const matches = this.matches(type, params);
    if (this.counts && params._summary === 'count')
      return { resourceType: 'Bundle', type: 'searchset', total: matches.length };
    const gate = this.gate;
    if (gate) await gate;
    const count = this.countOf(params);
    if (this.paging === 'offset') return this.offsetPage(type, params, matches, 0, count);
    return this.paged(matches, count);
  }

  override async nextPage(bundle: Bundle): Promise<Bundle | undefined> {
    const url = bundle.link?.find((l) => l.relation === 'next')?.url;
    if (!url) return undefined;
    this.followed.push(url);
    if (this.failNextPageAfter !== undefined && this.followed.length > this.failNextPageAfter) {
      throw new Error('stub: next page failed');
    }
    this.beforePage?.(this.served++);
    const query = this.offsets.get(url);
    if (query) {
      const count = this.countOf(query.params);
      return this.offsetPage(query.type, query.params, this.matches(query.type, query.params), query.offset, count);
    }
    const page = this.pending.get(url);
    if (!page) throw new Error(`stub: unknown next link ${url}`);
    return page;
  }

  private countOf(params: Record<string, string>): number {
    return Math.min(Number(params._count ?? 100), this.maxCount ?? Number.POSITIVE_INFINITY);
  }

  private matches(type: string, params: Record<string, string>): Resource[] {
    const from = params._lastUpdated?.startsWith('ge') ? Date.parse(params._lastUpdated.slice(2)) : -Infinity;
    const only = params._lastUpdated?.startsWith('eq') ? Date.parse(params._lastUpdated.slice(2)) : undefined;
    const matches = [...this.store.values()].filter((r) => {
      const at = Date.parse(r.meta?.lastUpdated ?? '');
      return r.resourceType === type && at >= from && (only === undefined || at === only);
    });
    if (this.unsorted) return matches;
    const at = (r: Resource) => Date.parse(r.meta?.lastUpdated ?? '');
    // Unstable: ties ordered by a key that changes with every page served (deterministic, never the same twice).
    const tie = (r: Resource) => (this.unstableTies ? hashOf(`${this.served}:${r.id}`) : 0);
    return matches.sort((a, b) => at(a) - at(b) || tie(a) - tie(b));
  }

  private offsetPage(
    type: string,
    params: Record<string, string>,
    matches: Resource[],
    offset: number,
    count: number,
  ): Bundle {
    const page: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: matches.slice(offset, offset + count).map((resource) => ({ resource, search: { mode: 'match' } })),
    };
    if (matches.length > offset + count) {
      const url = `http://stub.invalid/fhir?_getpages=opaque-${++this.pageNo}`;
      this.offsets.set(url, { type, params, offset: offset + count });
      page.link = [{ relation: 'next', url }];
    }
    return page;
  }

  private paged(matches: Resource[], count: number): Bundle {
    const pages: Bundle[] = [];
    for (let at = 0; at === 0 || at < matches.length; at += count) {
      pages.push({
        resourceType: 'Bundle',
        type: 'searchset',
        entry: matches.slice(at, at + count).map((resource) => ({ resource, search: { mode: 'match' } })),
      });
    }
    for (let i = 0; i < pages.length - 1; i++) {
      const url = `http://stub.invalid/fhir?_cursor=opaque-${++this.pageNo}`;
      const page = pages[i];
      const next = pages[i + 1];
      if (page && next) {
        page.link = [{ relation: 'next', url }];
        this.pending.set(url, next);
      }
    }
    return pages[0] ?? { resourceType: 'Bundle', type: 'searchset' };
  }
}

/** Records evaluated resources and committed cursors; evaluation maps nothing. */
export class RecordingPipeline extends SourcePipeline implements CursorStore {
  readonly evaluated: string[] = [];
  readonly cursors = new Map<string, string>();
  readonly commits: Array<{ refs: string[]; cursor?: string; reconciled?: boolean }> = [];
  failEvaluate: ((resource: Resource) => boolean) | undefined;
  private lastRefs: string[] = [];

  constructor() {
    // The deps are unused: both methods are replaced.
    super({ sourceId: 'stub', mappings: new MappingSet([]), ledger: unusedLedger(), logger: silentLogger });
  }

  getCursor(_sourceId: string, name: string): string | undefined {
    return this.cursors.get(name);
  }

  setCursor(_sourceId: string, name: string, value: string): void {
    this.cursors.set(name, value);
  }

  override async evaluate(resources: Resource[], _fetcher: ResourceFetcher) {
    for (const resource of resources) {
      if (this.failEvaluate?.(resource)) throw new Error('stub: evaluation failed');
    }
    this.lastRefs = resources.map((r) => `${r.resourceType}/${r.id}/${r.meta?.versionId}`);
    this.evaluated.push(...this.lastRefs);
    return { results: [] as Evaluation[], subjects: resources.length };
  }

  override commit(
    _results: Evaluation[],
    cursor?: { name: string; value: string },
    options?: { reconciled?: boolean },
  ): PassReport {
    if (cursor) this.cursors.set(cursor.name, cursor.value);
    this.commits.push({
      refs: this.lastRefs,
      cursor: cursor?.value,
      ...(options?.reconciled ? { reconciled: true } : {}),
    });
    return emptyReport();
  }
}

/**
 * Checks every cursor the pipeline commits against the records the client holds at that moment: a
 * watermark may never pass a record (its current version) that was not evaluated yet, since a search from
 * it (`ge`, no overlap) would never return that record again. Returns the violations found so far.
 */
export function guardWatermark(client: StubFhirClient, pipeline: RecordingPipeline): string[] {
  const violations: string[] = [];
  const commit = pipeline.commit.bind(pipeline);
  pipeline.commit = (results, cursor, options) => {
    if (cursor) {
      const at = Date.parse(cursor.value);
      for (const r of client.store.values()) {
        const key = `${r.resourceType}/${r.id}/${r.meta?.versionId}`;
        if (Date.parse(r.meta?.lastUpdated ?? '') < at && !pipeline.evaluated.includes(key))
          violations.push(`${cursor.value} passed ${key}, not evaluated`);
      }
    }
    return commit(results, cursor, options);
  };
  return violations;
}

function unusedLedger(): Ledger {
  return new Proxy({} as Ledger, {
    get() {
      throw new Error('stub pipeline: the ledger is not used');
    },
  });
}

/** The inbox table in memory (same contract as the ledger's). */
/**
 * A poller of Patients over `client`, recording into a fresh pipeline (no overlap: a watermark that passed a
 * record would never read it again), with the watermark guard on (see guardWatermark).
 */
export function guardedPatientPoller(client: StubFhirClient, pageSize: number) {
  const pipeline = new RecordingPipeline();
  const violations = guardWatermark(client, pipeline);
  const poller = new FhirPoller({
    sourceId: 'stub',
    client,
    pipeline,
    cursors: pipeline,
    resourceTypes: ['Patient'],
    poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 0, pageSize },
    logger: silentLogger,
  });
  return { pipeline, poller, violations };
}

export class MemoryInbox implements InboxStore {
  readonly rows: Array<InboxRow & { processedAt?: number; outcome?: string; nextAttemptAt: number; error?: string }> =
    [];

  add(sourceId: string, notification: ParsedNotification, receivedAt: number): number {
    const id = this.rows.length + 1;
    this.rows.push({ id, sourceId, notification, receivedAt, attempts: 0, nextAttemptAt: receivedAt });
    return id;
  }

  due(limit: number, now: number): InboxRow[] {
    return this.rows.filter((r) => r.processedAt === undefined && r.nextAttemptAt <= now).slice(0, limit);
  }

  done(id: number, now: number): void {
    const row = this.find(id);
    row.processedAt = now;
    row.outcome = 'processed';
  }

  doneAll(ids: number[], now: number): void {
    for (const id of ids) this.done(id, now);
  }

  retry(id: number, nextAttemptAt: number, error: string): void {
    const row = this.find(id);
    row.attempts++;
    row.nextAttemptAt = nextAttemptAt;
    row.error = error;
  }

  abandon(id: number, error: string, now: number): void {
    const row = this.find(id);
    row.attempts++;
    row.processedAt = now;
    row.outcome = 'abandoned';
    row.error = error;
  }

  backlog(): { depth: number; bytes: number } {
    const waiting = this.rows.filter((r) => r.processedAt === undefined);
    const bytes = waiting.reduce((sum, r) => sum + Buffer.byteLength(JSON.stringify(r.notification)), 0);
    return { depth: waiting.length, bytes };
  }

  /** Rows pruned so far (kept in `rows`, where ids index them). */
  readonly pruned = new Set<number>();

  prune(before: number, limit: number): number {
    const old = this.rows.filter(
      (r) => !this.pruned.has(r.id) && r.processedAt !== undefined && r.processedAt < before,
    );
    for (const row of old.slice(0, limit)) this.pruned.add(row.id);
    return Math.min(old.length, limit);
  }

  private find(id: number) {
    const row = this.rows[id - 1];
    if (!row) throw new Error(`no inbox row ${id}`);
    return row;
  }
}

export class MemoryMeta implements MetaStore {
  readonly values = new Map<string, string>();
  getMeta(key: string): string | undefined {
    return this.values.get(key);
  }
  setMeta(key: string, value: string | null): void {
    if (value === null) this.values.delete(key);
    else this.values.set(key, value);
  }
}

function hashOf(text: string): number {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) % 1_000_003;
  return hash;
}
