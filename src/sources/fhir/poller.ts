import type { Bundle, Resource } from '@medplum/fhirtypes';
import { sinceHasZone } from '../../config/index.js';
import type { PollSettings } from '../../config/types.js';
import type { Logger } from '../../observability/logger.js';
import { RepeatedFailure } from '../../observability/repeated-failure.js';
import { PassCoverage, versionKey } from '../coverage.js';
import {
  type CursorStore,
  commitInOrder,
  firstSyncStart,
  type PassOptions,
  type PollerStatus,
  passFailures,
  readFromEarlier,
  rememberSeen,
  rereadStop,
  rewoundWatermark,
  type SourceTimes,
  trackedPass,
} from '../pass.js';
import { addReports, type Evaluation, emptyReport, type PassReport, type SourcePipeline } from '../pipeline.js';
import {
  CarriedRuns,
  giveUpReason,
  MAX_RUN_PAGES,
  ReadingPages,
  RunPageCaps,
  RunReadings,
  readingPageSize,
} from '../shared/run-readings.js';
import { CachingFetcher } from './fetcher.js';
import { type FhirSourceClient, FhirSourceError } from './fhir-client.js';
import { serverSupportOf } from './server-support.js';
import { sortEchoed } from './sort-signals.js';

export type { CursorStore, PollerStatus } from '../pass.js';

export interface FhirPollerDeps {
  sourceId: string;
  client: FhirSourceClient;
  pipeline: SourcePipeline;
  cursors: CursorStore;
  /** The resource types whose changes can make or change an event (from the mappings). */
  resourceTypes: string[];
  /**
   * Of those, the mappings' subject types: always polled. The others (only linked to a subject: a
   * Composition about the child) are not when the server does not serve them (ServerSupport): their
   * searches in the mappings' contexts are taken as empty too.
   */
  subjectTypes?: readonly string[];
  poll: PollSettings;
  logger: Logger;
  /** Upper bound on pages per resource type and pass, so one pass always ends. */
  maxPagesPerType?: number;
  /** Most versions remembered as mapped (SEEN_VERSIONS_MAX unless a test's). */
  maxSeen?: number;
  /** The clock the failure lines are spaced by (passFailures). Date.now unless a test's. */
  now?: () => number;
}

const cursorName = (type: string) => `lastUpdated:${type}`;

function lastUpdatedOf(resource: Resource): string | undefined {
  return resource.meta?.lastUpdated;
}

/**
 * Incremental sync by `_lastUpdated`. Per resource type: `_lastUpdated=ge<W − overlap>`,
 * `_sort=_lastUpdated`, paged as a keyset (see pollType). The watermark W is the
 * highest `meta.lastUpdated` the server stamped (its clock, not ours), committed per page in the
 * same transaction as the ledger rows the page produced. The overlap re-reads recent changes to
 * cover clock skew and slow commits; versions already seen are skipped by (type, id, versionId).
 */
export class FhirPoller {
  private readonly log: Logger;
  private readonly seen = new Map<string, number>();
  private running: Promise<PassReport> | undefined;
  private warnedUnsorted = false;
  private stopping = false;
  private warnedFuture = false;
  /** Readings of runs given up, per type: the next pass reads such a run with page sizes not tried yet. */
  private readonly runTries = new Map<string, number>();
  /** Runs given up in earlier passes, per type, with the server's count and the members read (CarriedRuns). */
  private readonly carriedRuns = new Map<string, CarriedRuns>();
  /** Runs (per type, by their lastUpdated in ms) whose larger page the server did not answer, and the `_count` it did. */
  private readonly runPageCaps = new Map<string, RunPageCaps>();
  private queued: Promise<PassReport> | undefined;
  readonly status: PollerStatus = { consecutiveFailures: 0, watermarks: {} };
  private readonly failures: RepeatedFailure;
  /**
   * Each type's failures, logged as the pass's are (passFailures): a source that is down fails every type
   * of every pass. No line says a type recovered: the pass's does, as a pass succeeds only when all do.
   */
  private readonly typeFailures = new Map<string, RepeatedFailure>();

  constructor(private readonly deps: FhirPollerDeps) {
    this.log = deps.logger.child({ component: 'fhir-poller', source: deps.sourceId });
    this.failures = passFailures(this.log, deps.now);
    for (const type of deps.resourceTypes) {
      this.status.watermarks[type] = deps.cursors.getCursor(deps.sourceId, cursorName(type));
    }
  }

  /**
   * The source's go-live (`poll.since`, or the start `sinceDays` chose) in epoch ms; undefined when it has
   * none (its whole history is read). What was last changed before it is never read by a pass: a
   * notification naming such a record is held to the same bound (reevaluate, `goLive`).
   */
  goLive(): number | undefined {
    const { poll, cursors, sourceId } = this.deps;
    const start = firstSyncStart(poll, cursors, sourceId);
    return start === undefined ? undefined : Date.parse(fhirInstant(start));
  }

  private typeFailuresOf(type: string): RepeatedFailure {
    let failures = this.typeFailures.get(type);
    if (!failures) {
      failures = new RepeatedFailure(this.log, 'a resource type could not be polled; the others go on', {
        level: 'warn',
        ...(this.deps.now ? { now: this.deps.now } : {}),
      });
      this.typeFailures.set(type, failures);
    }
    return failures;
  }

  /**
   * One pass over every resource type that starts no earlier than this call; passes never overlap.
   * A call while a pass runs must not just join it: that pass may already have read past a change
   * the caller was told about (a subscription ping), so one more pass is queued after it, shared by
   * every call made meanwhile.
   */
  pollOnce(options: PassOptions = {}): Promise<PassReport> {
    if (this.stopping) return Promise.resolve(emptyReport());
    if (!this.running) {
      this.running = this.pass(options).finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.pollOnce(options);
      });
    return this.queued;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Ends the pass in progress after its current page and starts no other (shutdown). */
  stop(): void {
    this.stopping = true;
  }

  /** Resolves when no pass is running or queued (shutdown waits for this; it starts nothing). */
  async idle(): Promise<void> {
    while (this.running || this.queued) await (this.queued ?? this.running)?.catch(() => undefined);
  }

  private pass(options: PassOptions): Promise<PassReport> {
    const fetcher = this.deps.pipeline.reading(new CachingFetcher(this.deps.client));
    const coverage = new PassCoverage();
    const run = trackedPass(this.status, this.log, this.failures, async () => {
      const report = emptyReport();
      // Each type has its own watermark: one the server cannot search (a 404 paging link, a type it
      // refuses) must not stop the others being read. The pass still fails, with the first error.
      let failure: unknown;
      for (const type of this.deps.resourceTypes) {
        if (this.stopping) break;
        if (await this.notServedLink(type)) continue;
        try {
          const read = await this.pollType(type, fetcher, coverage, options);
          this.typeFailures.get(type)?.forget();
          addReports(report, read);
          // Each type stopped where it did: going on from the earliest reads none of them short.
          if (read.rereadStoppedAt !== undefined)
            report.rereadStoppedAt = earlierOf(report.rereadStoppedAt, read.rereadStoppedAt);
        } catch (err) {
          // Cut short by shutdown (the client's calls were ended): no failure, the next start reads it.
          if (this.stopping) break;
          // A 404 "not supported": the server has no such type (learned, and said once).
          const gone = err instanceof FhirSourceError && err.status === 404;
          if (gone && this.linkOnly(type) && serverSupportOf(this.deps.client).learn(type, {}, err)) continue;
          failure ??= err;
          this.typeFailuresOf(type).failed(err, { resourceType: type });
        }
      }
      if (failure !== undefined && !this.stopping) throw failure;
      return { report, reads: fetcher.reads, stopped: this.stopping };
    });
    // A failed reread was logged; the watermark held for it (commitRead), so the next pass redoes it.
    return run.finally(() => this.deps.pipeline.finished(fetcher).catch(() => undefined));
  }

  /** A type the mappings link to a subject, none's subject itself. */
  private linkOnly(type: string): boolean {
    return this.deps.subjectTypes !== undefined && !this.deps.subjectTypes.includes(type);
  }

  /** A linked type the server does not serve (ServerSupport.typeNotServed): not polled. */
  private async notServedLink(type: string): Promise<boolean> {
    return this.linkOnly(type) && (await serverSupportOf(this.deps.client).typeNotServed(type)) !== undefined;
  }

  /** Where this pass starts: the watermark less the overlap, or a first sync's start, or the beginning. */
  private startBound(type: string): string | undefined {
    const { poll, cursors, sourceId } = this.deps;
    const stored = cursors.getCursor(sourceId, cursorName(type));
    // The overlap re-reads what a watermark may have raced; a first sync's start (poll.since, the
    // go-live) is a boundary the operator chose, not a watermark, and is taken as given.
    const watermark = stored ?? firstSyncStart(poll, cursors, sourceId);
    if (!watermark) return undefined;
    return fhirInstant(watermark, stored ? poll.overlapSeconds : 0);
  }

  /**
   * Moves the stored watermark back when it is ahead of the server's time (the searchset's
   * `Bundle.meta.lastUpdated`) by more than the overlap (rewoundWatermark); returns where the search
   * starts again, or undefined when nothing was moved. Stored at once, not with the next page: a pass
   * that finds nothing commits nothing, and the next one would start from the server's time again,
   * leaving what it recorded in between behind.
   */
  private rewindIfAhead(type: string, page: Bundle): string | undefined {
    const { cursors, sourceId, poll } = this.deps;
    const name = cursorName(type);
    const stored = cursors.getCursor(sourceId, name);
    if (!stored) return undefined;
    const serverTime = serverTimeOf(page);
    const to = rewoundWatermark({
      watermark: Date.parse(stored),
      serverTime: Date.parse(serverTime),
      overlapSeconds: poll.overlapSeconds,
      movedAt: cursors.cursorMovedAt?.(sourceId, name),
    });
    if (to === undefined) return undefined;
    const movedTo = new Date(to).toISOString();
    cursors.setCursor(sourceId, name, movedTo);
    this.status.watermarks[type] = movedTo;
    this.status.clockBehind = { at: Date.now(), resourceType: type, watermark: stored, serverTime, movedTo };
    this.log.warn(
      { resourceType: type, watermark: stored, serverTime, movedTo },
      "the stored watermark is ahead of the EMR's own time by more than poll.overlapSeconds (the EMR moved to a server whose clock is behind, or its clock was put back): it is moved back and what the EMR recorded since the last read is read again; nothing already delivered is sent twice",
    );
    return new Date(to - poll.overlapSeconds * 1000).toISOString();
  }

  private searchParams(bound: string | undefined, count: number): Record<string, string> {
    const params: Record<string, string> = { _sort: '_lastUpdated', _count: String(count) };
    if (bound) params._lastUpdated = `ge${new Date(Date.parse(bound)).toISOString()}`;
    return params;
  }

  /**
   * Pages are read as a keyset: after each page the search is asked again from the newest lastUpdated
   * seen (a fresh search, not the page's `next` link). Servers page by offsetting into a live query
   * (OpenMRS runs the query again for every `_getpages` request), so a record edited during the pass
   * moves to the end and every later record moves back by one: following `next` would skip one of them
   * for good, behind a watermark that has already passed it. A fresh search from the newest timestamp
   * cannot skip: what changed comes again at the end. `next` links (followed exactly as given) are used
   * only inside a run of records sharing one lastUpdated that is longer than a page (a transaction Bundle,
   * a bulk import), and such a run is read again until a reading can be trusted (RunReadings), counted
   * by the server when it can (runSize). Each fresh search is also checked for a server that did not sort
   * (inOrderFrom, sortEchoed, brokePromise): the keyset is only safe over sorted results.
   */
  private async pollType(
    type: string,
    fetcher: CachingFetcher,
    coverage: PassCoverage,
    options: PassOptions,
  ): Promise<PassReport> {
    const { client, pipeline } = this.deps;
    const report = emptyReport();
    const maxPages = this.deps.maxPagesPerType ?? 1_000;
    // A run given up is carried to the next pass, which goes on from the members read if the server counts
    // the run alike.
    const carried = this.carriedRuns.get(type) ?? new CarriedRuns();
    this.carriedRuns.set(type, carried);
    let run = new RunReadings(carried);
    const caps = this.runPageCaps.get(type) ?? new RunPageCaps();
    this.runPageCaps.set(type, caps);
    const { poll, cursors, sourceId } = this.deps;
    const goLive = () => firstSyncStart(poll, cursors, sourceId);
    let usual = this.startBound(type);
    let start = readFromEarlier(usual, options.from, goLive, FHIR_TIMES);
    let bound = start;
    let ended = false;
    // The first search tells the server's own time: a stored watermark far ahead of it is moved back first.
    let clockChecked = false;
    // What the last page that left its bound with a `next` link says about the next search (see brokePromise).
    let promise: Promised | undefined;
    // Pages outside runs count against maxPages; a run's pages against their own, larger bound.
    let plainPages = 0;
    let runPages = 0;
    // Set when the page came from a `next` link: the middle of a run.
    let continued: Bundle | undefined;
    const followed = new Set<string>();
    // A run longer than a page is first asked for in one larger page, which needs no paging inside it: a
    // server whose ties come in no fixed order (SQL ORDER BY with LIMIT/OFFSET) pages a run unreliably. It is
    // asked once: not answered, the run is read at the `_count` the server did answer.
    let count = this.deps.poll.pageSize;
    const larger = caps.pass();
    // The most entries the server gave on a page of the run being read: the page size it allows.
    let served = 0;
    // After a run that could not be read reliably, the watermark waits at it; the pass reads on past it.
    let holdAt: string | undefined;
    const capped = (reach: string | undefined) => (holdAt !== undefined ? earlierOf(reach, holdAt) : reach);
    // A run whose paging did not end: the pass reads on past it, then fails for this type.
    let endless: Error | undefined;
    while (plainPages < maxPages && runPages < MAX_RUN_PAGES && !this.stopping) {
      let page: Bundle;
      if (continued) page = continued;
      else {
        // A larger page asked for a run (below) that the server does not answer: the run is read through
        // `next` links at the size the server did answer (LargerRunPage). Other failures fail the type.
        try {
          page = await client.searchPage(type, this.searchParams(bound, count), larger.callOptions);
        } catch (err) {
          const readWith = this.stopping || bound === undefined ? undefined : larger.refused(Date.parse(bound));
          if (readWith === undefined) throw err;
          this.log.warn(
            { err, resourceType: type, count, readWith },
            `the FHIR server did not answer a page of ${count} ${type} resources of a run sharing one lastUpdated (${err instanceof Error ? err.message : String(err)}): the run is read in pages of ${readWith} instead (raise sources[].timeoutMs for fewer calls)`,
          );
          count = readWith;
          continue;
        }
        larger.answered();
      }
      if (!clockChecked) {
        clockChecked = true;
        const from = this.rewindIfAhead(type, page);
        if (from !== undefined) {
          usual = from;
          start = bound = readFromEarlier(from, options.from, goLive, FHIR_TIMES);
          continue;
        }
      }
      const resources = entriesOf(page, type);
      const fromNext = continued !== undefined;
      const at = bound === undefined ? undefined : Date.parse(bound);
      const atBound = (r: Resource) => Date.parse(lastUpdatedOf(r) ?? '') === at;
      if (!continued) {
        run.startReading();
        followed.clear();
        if (
          !inOrderFrom(bound, resources) ||
          !sortEchoed(page) ||
          (await this.brokePromise(promise, page, resources))
        ) {
          // Earlier pages of this pass were read as if sorted, and may have let the keyset jump over records:
          // the unsorted reading starts again where the pass started (what it read before is not evaluated twice).
          const first =
            bound === start ? page : await client.searchPage(type, this.searchParams(start, this.deps.poll.pageSize));
          return addReports(report, await this.unsorted(type, first, fetcher, coverage));
        }
        promise = undefined;
        const wholePageAtBound = resources.length > 0 && resources.every(atBound);
        // Only when the server gave the whole page asked for: one that caps `_count` would answer the same.
        const enlarged =
          wholePageAtBound && !run.active && nextLinkOf(page) && resources.length >= count
            ? larger.enlarge(at, count)
            : undefined;
        if (enlarged !== undefined) {
          count = enlarged;
          continue;
        }
      }
      const fresh = resources.filter((resource) => !this.seen.has(versionKey(resource)));
      // Only the run's own members count as new for it: records after the run, arriving while it is read
      // (live traffic after a bulk import), say nothing about whether the run was read whole.
      run.notePage(
        fresh.filter(atBound).length,
        resources.filter(atBound).map((r) => r.id ?? ''),
        resources.map((r) => r.id ?? ''),
      );
      fetcher.prime(resources);
      const { results } = await pipeline.evaluate(fresh, fetcher, coverage);
      const pageMax = resources.map(lastUpdatedOf).reduce<string | undefined>(laterOf, undefined);
      const inRun = continued !== undefined || run.active;
      if (inRun) runPages++;
      else plainPages++;
      const leaves = pageMax !== undefined && (bound === undefined || Date.parse(pageMax) > Date.parse(bound));
      const last = nextLinkOf(page) === undefined;
      // A page with more to come moves the watermark only to where it was read from: its newest lastUpdated
      // is trusted once the next search from there shows the server sorted (brokePromise), so a crash in
      // between never leaves the watermark past records a server that ignores `_sort` has not yet shown.
      const reach = capped(inRun || !last ? bound : pageMax);
      const unread = await this.commitRead(type, report, results, reach, resources, page, fetcher);
      if (!unread) for (const resource of fresh) this.remember(resource, at);
      else {
        if (unread.oldest !== undefined) holdAt = earlierOf(holdAt, unread.oldest);
        run.unrecorded(resources.filter(atBound).map((r) => r.id ?? ''));
      }
      if (inRun && (last || leaves)) {
        const outcome = run.endReading();
        if (outcome === 'again') {
          // A server whose tie order depends on LIMIT/OFFSET showed a member twice: see readingPageSize.
          const tried = this.runTries.get(type) ?? 0;
          if (run.untrustworthy && served > 1) count = readingPageSize(served, run.count, tried);
          continued = undefined;
          continue;
        }
        if (outcome === 'give-up') {
          this.log.warn(
            { resourceType: type, readings: run.count, ...run.progress },
            giveUpReason(run, 'a run of resources sharing one lastUpdated'),
          );
          if (bound !== undefined) holdAt = earlierOf(holdAt, bound);
          this.runTries.set(type, (this.runTries.get(type) ?? 0) + run.varied);
          run = new RunReadings(carried); // what follows the run is read as plain pages again
        } else {
          // The run is complete: the watermark may pass it (to the page's newest only at the end of the
          // results; otherwise the next search, once it shows the server sorted, moves it on).
          const current = this.status.watermarks[type];
          const reach = capped(last ? pageMax : bound);
          if (laterOf(current, reach) !== current) this.commitPage(type, report, [], reach, 0, page);
        }
      }
      if (last) {
        ended = true;
        break;
      }
      if (leaves && pageMax !== undefined) {
        promise = promisedBy(page, resources, pageMax, !fromNext);
        bound = pageMax;
        count = this.deps.poll.pageSize;
        served = 0;
        continued = undefined;
      } else {
        served = Math.max(served, resources.length);
        // A run longer than the page the server gives: ask the server how many records it holds, once.
        if (!fromNext && !run.active && bound !== undefined)
          run.expect(await this.runSize(type, bound), Date.parse(bound));
        // Paging that does not end (a `next` link met twice in one reading goes round in a circle; new links
        // that bring nothing new go on for ever) would be followed until MAX_RUN_PAGES, every pass, with no
        // word and the watermark never moving. The run is given up for this pass and the pass fails for this
        // type, so readiness, the admin page and `sync --once` show it; the watermark stays at the run, so
        // the next pass reads it again, and the pass reads on past it.
        const link = nextLinkOf(page);
        const circle = link !== undefined && followed.has(link);
        if (circle || run.endless) {
          this.log.warn(
            { resourceType: type, ...run.readingProgress, ...run.progress },
            circle
              ? "the FHIR server's next links inside a run of one lastUpdated go round in a circle: the run is given up for this pass, the watermark stays at it, the records after it are still read"
              : "the FHIR server's paging inside a run of one lastUpdated does not end (its pages bring no record not read yet): the run is given up for this pass, the watermark stays at it, the records after it are still read",
          );
          endless ??= new Error(
            circle
              ? `the FHIR server's next links for ${type} go round in a circle; paging stopped`
              : `the FHIR server's paging of ${type} did not end inside a run of one lastUpdated (${run.readingProgress.pages} pages, ${run.readingProgress.records} records); paging stopped`,
          );
          if (bound === undefined) break; // no timestamp to read on from: the watermark stays
          holdAt = earlierOf(holdAt, bound);
          run.abandon();
          this.runTries.set(type, (this.runTries.get(type) ?? 0) + run.varied);
          run = new RunReadings(carried);
          // On past the run: it holds nothing later than its own millisecond.
          bound = new Date(Date.parse(bound) + 1).toISOString();
          promise = undefined;
          count = this.deps.poll.pageSize;
          served = 0;
          continued = undefined;
          continue;
        }
        if (link) followed.add(link);
        continued = await client.nextPage(page);
        if (!continued) {
          ended = true;
          break;
        }
      }
    }
    report.rereadStoppedAt = rereadStop(ended, bound, usual, FHIR_TIMES);
    this.prune(type);
    if (endless) throw endless;
    return report;
  }

  /**
   * How many records share the run's lastUpdated, as the server counts them (`_summary=count`); undefined
   * when it gives no count or the answer shows it ignored the filter. Readings of the run are then judged
   * without it (RunReadings).
   */
  private async runSize(type: string, bound: string): Promise<number | undefined> {
    const at = Date.parse(bound);
    try {
      const params = { _lastUpdated: `eq${new Date(at).toISOString()}`, _summary: 'count' };
      const answer = await this.deps.client.searchPage(type, params);
      const stray = entriesOf(answer, type).some((r) => Date.parse(lastUpdatedOf(r) ?? '') !== at);
      return stray || typeof answer.total !== 'number' ? undefined : answer.total;
    } catch (err) {
      this.log.debug(
        { err, resourceType: type },
        'the FHIR server did not count a run; its readings are judged without',
      );
      return undefined;
    }
  }

  /**
   * A server that ignores `_sort` but honours `_lastUpdated=ge` can hand out pages that each look sorted
   * while the keyset jumps over records: with [t1 t2 t9 t4 t5] in its own order, the page [t2 t9] is in
   * order, and the next search from t9 never shows t4 or t5. A sorted server cannot do that: the page had
   * a `next` link, so records at or after its newest lastUpdated remain, and the search from there must
   * return one that was not on the page (or, with `Bundle.total`, at least as many as the page left over).
   * When it does not, the page's `next` link is read (one call): an entry stamped earlier than the page's
   * newest shows the server does not sort. Otherwise the records had been deleted, or the link promised
   * nothing: the pass goes on sorted.
   */
  private async brokePromise(promise: Promised | undefined, page: Bundle, resources: Resource[]): Promise<boolean> {
    if (!promise) return false;
    const nothingBeyond = nextLinkOf(page) === undefined && resources.every((r) => promise.atMax.has(r.id ?? ''));
    const short = promise.left !== undefined && page.total !== undefined && page.total < promise.left;
    if (!nothingBeyond && !short) return false;
    const after = await this.deps.client.nextPage(promise.page);
    const max = Date.parse(promise.max);
    return (after?.entry ?? []).some((e) => e.resource && Date.parse(lastUpdatedOf(e.resource) ?? '') < max);
  }

  /**
   * The server ignored `_sort=_lastUpdated` (or the `_lastUpdated` filter): a page's newest timestamp says
   * nothing about what later pages hold, so no keyset and no watermark per page. The result is read to its
   * end through `next` links, and only a complete reading moves the watermark, to the newest lastUpdated seen.
   */
  private async unsorted(type: string, first: Bundle, fetcher: CachingFetcher, coverage: PassCoverage) {
    if (!this.warnedUnsorted) {
      this.warnedUnsorted = true;
      this.log.warn(
        { resourceType: type },
        'the FHIR server does not sort searches by _lastUpdated: each pass reads its results to the end before the watermark moves',
      );
    }
    const report = emptyReport();
    const maxPages = this.deps.maxPagesPerType ?? 1_000;
    let newest: string | undefined;
    let holdAt: string | undefined;
    let page: Bundle | undefined = first;
    let lastRead: Bundle = first;
    // `next` links that never end would be read to maxPages every pass, with no word (see ReadingPages).
    const paging = new ReadingPages();
    for (let pages = 0; page; pages++) {
      lastRead = page;
      if (pages >= maxPages || this.stopping) return report; // incomplete: the watermark stays
      const resources = entriesOf(page, type);
      paging.note(resources.map(versionKey));
      if (paging.endless(page.total)) {
        this.log.warn(
          { resourceType: type, ...paging.progress, total: page.total },
          "the FHIR server's paging does not end (its pages bring no record not read yet in this reading): the reading stops, the watermark stays",
        );
        throw new Error(
          `the FHIR server's paging of ${type} did not end (${paging.progress.pages} pages, ${paging.progress.records} records); paging stopped`,
        );
      }
      const fresh = resources.filter((resource) => !this.seen.has(versionKey(resource)));
      fetcher.prime(resources);
      const { results } = await this.deps.pipeline.evaluate(fresh, fetcher, coverage);
      const unread = await this.commitRead(type, report, results, undefined, resources, page, fetcher);
      if (!unread) for (const resource of fresh) this.remember(resource);
      else if (unread.oldest !== undefined) holdAt = earlierOf(holdAt, unread.oldest);
      newest = resources.map(lastUpdatedOf).reduce<string | undefined>(laterOf, newest);
      page = await this.deps.client.nextPage(page);
    }
    this.commitPage(type, report, [], holdAt !== undefined ? earlierOf(newest, holdAt) : newest, 0, lastRead);
    this.prune(type);
    return report;
  }

  /**
   * Records a page's rows with the watermark it reaches (never moved back), in one ledger transaction.
   * The watermark never passes the server's own time when it answered (`Bundle.meta.lastUpdated`, else
   * this machine's clock): a resource stamped in the future (a clock that jumped ahead, then back; a
   * stray date) would otherwise carry the watermark past every birth recorded until that time, for good.
   */
  private commitPage(
    type: string,
    report: PassReport,
    results: Evaluation[],
    reach: string | undefined,
    resources: number,
    page: Bundle,
  ): void {
    const current = this.status.watermarks[type];
    const now = serverTimeOf(page);
    const ahead = reach !== undefined && Date.parse(reach) > Date.parse(now);
    if (ahead && !this.warnedFuture) {
      this.warnedFuture = true;
      this.log.warn(
        { resourceType: type },
        "the EMR has resources stamped later than its own time (its clock ran ahead): the watermark waits at the server's time, so nothing recorded meanwhile is missed",
      );
    }
    const next = laterOf(current, ahead ? now : reach);
    const pageReport = this.deps.pipeline.commit(
      results,
      next && next !== current ? { name: cursorName(type), value: next } : undefined,
    );
    pageReport.resources = resources;
    addReports(report, pageReport);
    this.status.watermarks[type] = next;
  }

  /** Commits a page in order with the source's other evaluations (commitInOrder); `{ oldest }` when unread. */
  private async commitRead(
    type: string,
    report: PassReport,
    results: Evaluation[],
    reach: string | undefined,
    resources: Resource[],
    page: Bundle,
    fetcher: CachingFetcher,
  ): Promise<{ oldest: string | undefined } | undefined> {
    const oldest = () => resources.map(lastUpdatedOf).reduce<string | undefined>(earlierDefined, undefined);
    const read = await commitInOrder(
      this.deps.pipeline,
      fetcher,
      { results, reach, oldest },
      earlierOf,
      (rs, at, whole) => this.commitPage(type, report, rs, at, whole ? resources.length : 0, page),
    );
    return read ? undefined : { oldest: oldest() };
  }

  /** `runAt`: the time (ms) of the run being read, the pass's bound, whose members are not forgotten for it. */
  private remember(resource: Resource, runAt?: number): void {
    const at = Date.parse(lastUpdatedOf(resource) ?? '') || Date.now();
    rememberSeen(this.seen, versionKey(resource), at, this.deps.maxSeen, runAt);
  }

  /** Forgets versions older than the overlap window: they can no longer come back in a search. */
  private prune(type: string): void {
    const watermark = this.status.watermarks[type];
    if (!watermark) return;
    const horizon = Date.parse(watermark) - (this.deps.poll.overlapSeconds + 60) * 1000;
    for (const [key, at] of this.seen) {
      if (key.startsWith(`${type}/`) && at < horizon) this.seen.delete(key);
    }
    this.carriedRuns.get(type)?.forgetBefore(Date.parse(watermark));
    this.runPageCaps.get(type)?.forgetBefore(horizon);
  }
}

/** What a page that left its bound with a `next` link promises about the search from its newest lastUpdated. */
interface Promised {
  page: Bundle;
  max: string;
  /** Ids of the page's entries stamped at `max`: the next search returns them again. */
  atMax: Set<string>;
  /** With `Bundle.total` on a fresh search: how many records, at least, the next search must count. */
  left: number | undefined;
}

function promisedBy(page: Bundle, resources: Resource[], max: string, fresh: boolean): Promised {
  const at = Date.parse(max);
  const atMax = resources.filter((r) => Date.parse(lastUpdatedOf(r) ?? '') === at);
  // Only a fresh search's total counts from the page's first entry; a `next` page's counts earlier pages too.
  const left = fresh && page.total !== undefined ? page.total - (resources.length - atMax.length) : undefined;
  return { page, max, atMax: new Set(atMax.map((r) => r.id ?? '')), left };
}

/** The server's own time when it answered (`Bundle.meta.lastUpdated`), else this machine's. */
function serverTimeOf(page: Bundle): string {
  return page.meta?.lastUpdated ?? new Date().toISOString();
}

function nextLinkOf(page: Bundle): string | undefined {
  return page.link?.find((link) => link.relation === 'next')?.url;
}

function entriesOf(page: Bundle, type: string): Resource[] {
  return (page.entry ?? [])
    .map((entry) => entry.resource)
    .filter((resource): resource is Resource => resource?.resourceType === type);
}

/** The page is what a server honouring `_lastUpdated=ge<bound>&_sort=_lastUpdated` returns. */
function inOrderFrom(bound: string | undefined, resources: Resource[]): boolean {
  let previous = bound === undefined ? Number.NEGATIVE_INFINITY : Date.parse(bound);
  for (const resource of resources) {
    const at = Date.parse(lastUpdatedOf(resource) ?? '');
    if (Number.isNaN(at)) continue; // no lastUpdated: it cannot move the watermark either way
    if (at < previous) return false;
    previous = at;
  }
  return true;
}

function earlierOf(a: string | undefined, b: string): string {
  if (!a) return b;
  return Date.parse(a) < Date.parse(b) ? a : b;
}

function laterOf(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/** Reducer: the earliest of the times given (undefined ones skipped). */
function earlierDefined(earliest: string | undefined, at: string | undefined): string | undefined {
  if (at === undefined) return earliest;
  return earliest === undefined ? at : earlierOf(earliest, at);
}

const FHIR_TIMES: SourceTimes = { toSource: (value) => fhirInstant(value), earlierOf, laterOf };

/**
 * A start as the search asks for it: UTC with Z (a '+' offset in a query string would need encoding).
 * A date-time written without a zone (`poll.since: 2026-01-31T00:00:00`, `sync --since`) is UTC, as a
 * date alone is: not the bridge host's local time.
 */
function fhirInstant(value: string, lessSeconds = 0): string {
  const zoned = sinceHasZone(value) || !value.includes('T');
  const at = Date.parse(zoned ? value : `${value}Z`);
  return new Date(at - lessSeconds * 1000).toISOString();
}
