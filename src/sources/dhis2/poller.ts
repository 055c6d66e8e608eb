import { createHash } from 'node:crypto';
import type { Dhis2Settings, PollSettings } from '../../config/types.js';
import { contextReadWindowStart } from '../../ledger/context-reads.js';
import { type Resource, type ResourceFetcher, trackedEntityResource } from '../../mapping/index.js';
import { errorMessage } from '../../observability/inner-errors.js';
import type { Logger } from '../../observability/logger.js';
import type { RepeatedFailure } from '../../observability/repeated-failure.js';
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
  RunPageCaps,
  RunReadings,
  readingPageSize,
} from '../shared/run-readings.js';
import { type Dhis2Client, isDhis2Uid } from './client.js';
import { Dhis2Fetcher } from './fetcher.js';
import type { TrackerTrackedEntity } from './schemas.js';
import {
  configuredScope,
  type OrgUnitScope,
  type OrgUnitScopeRecord,
  orgUnitScopeKey,
  parseScopeRecord,
  sameScope,
  storedObject,
  unreadScope,
} from './scope.js';
import { isOfTrackedEntityType, trackedEntityFilter } from './settings.js';
import { earlierDefined, earlierOf, formatNaive, laterOf, minusSeconds, naiveMillis, plusMillis } from './time.js';

export const DHIS2_CURSOR = 'updatedAt:trackedEntities';
/**
 * DHIS2's time at the start of the last complete reading of the tracked entities births' contexts read
 * (contextRecords): the next reading asks for those updated since (less the overlap).
 */
export const DHIS2_CONTEXT_CURSOR = 'updatedAt:contextTrackedEntities';
/**
 * That reading's progress while it runs (JSON of ContextReading; '' when none), so that a new process (a
 * `sync --once` run, a restart) goes on with it rather than begin again from the first uid.
 */
export const DHIS2_CONTEXT_READING = 'reading:contextTrackedEntities';
/**
 * The bridge's time (ms, decimal) when the reading whose DHIS2 time DHIS2_CONTEXT_CURSOR holds began,
 * written with it: the next reading measures its window of rows from it (ContextReading.windowFrom).
 */
export const DHIS2_CONTEXT_BEGUN = 'begunAt:contextTrackedEntities';

/** Said when a pass's part of the mothers' reading ends with no listing asked after refusals. */
const NONE_LEFT_TO_LIST =
  'no tracked entity births read as their context (mothers) is left to list: the refusals of their listing are no longer counted';
/**
 * Uids asked for in one request of that reading (`trackedEntities=uid1,uid2,…`: 12 characters each, a URL
 * of some 1.3 kB, well within what servers and proxies take), and requests at most per pass: a ledger of
 * more mothers is read across passes, so a pass never grows with the ledger.
 */
export const CONTEXT_BATCH = 100;
export const MAX_CONTEXT_BATCHES = 20;
/** The one watched "type" in status.watermarks (same shape as the FHIR poller's, for the admin page and metrics). */
const WATERMARK_KEY = 'TrackedEntity';

export interface Dhis2PollerDeps {
  sourceId: string;
  client: Dhis2Client;
  pipeline: SourcePipeline;
  cursors: CursorStore;
  dhis2: Dhis2Settings;
  poll: PollSettings;
  logger: Logger;
  /** Upper bound on pages per pass, so one pass always ends. */
  maxPages?: number;
  /** Most versions remembered as mapped (SEEN_VERSIONS_MAX unless a test's). */
  maxSeen?: number;
  /**
   * Up to `limit` refs (`TrackedEntity/<uid>`) this source's rows' contexts read, after `after` in ref order
   * (Ledger.contextReadRefs), read by a row updated since `since` (ms, the bridge's clock): the tracked
   * entities read after the programme's (contextRecords). Without it, none are.
   */
  contextRefs?: (after: string, limit: number, since: number) => string[];
  /** The bridge's clock (ms), as the ledger's: when a reading of those began. Date.now unless a test's. */
  now?: () => number;
  /**
   * The ledger's meta, where the org units the watermark has covered are kept (scope.ts): without it, org
   * units added to the configuration are not read back to go-live.
   */
  meta?: { getMeta(key: string): string | undefined; setMeta(key: string, value: string | null): void };
}

/** A reading of org units the watermark has not covered, from `from` (go-live) up to `until` (the watermark). */
interface ScopeCatchUp {
  scope: OrgUnitScope;
  filter: Record<string, string>;
  from: string | undefined;
  until: string;
}

/**
 * Incremental sync of a tracker programme by `updatedAfter` (inclusive in DHIS2: `lastupdated >= :start`).
 * Pages are read in `updatedAt` order as a keyset: each page asks again from the newest `updatedAt` seen,
 * so records that change while the pass runs move to the end instead of shifting unseen records onto an
 * already-read page; page numbers are used only across a run of equal timestamps longer than the largest
 * page asked for, which is read again until a reading can be trusted, counted by DHIS2 when it can (see
 * pages()). The watermark W (the newest `updatedAt` DHIS2 stamped) is committed per page in the same ledger
 * transaction as the rows the page produced; the next pass starts at W − overlap and skips (uid, updatedAt)
 * pairs it has already mapped. The bridge's own write-back bumps `updatedAt`: the entity comes back, maps to the same
 * payload hash, and the ledger records it as unchanged.
 */
export class Dhis2Poller {
  private readonly log: Logger;
  private readonly seen = new Map<string, number>();
  private running: Promise<PassReport> | undefined;
  private stopping = false;
  private serverNow: string | undefined;
  private warnedFuture = false;
  /** Readings of runs given up in earlier passes: the next pass reads such a run with page sizes not tried yet. */
  private runTries = 0;
  /** Runs given up in earlier passes, with DHIS2's count and the members read: the next pass resumes from them. */
  private readonly carriedRuns = new CarriedRuns();
  /** Runs (by their updatedAt, in ms) whose larger page DHIS2 did not answer, and the size it did answer there. */
  private readonly runPageCaps = new RunPageCaps();
  /** The reading (its `updatedAfter` and `startedAt`) whose refused listing was warned of: once a reading, not every pass. */
  private contextRefusalWarned: string | undefined;
  readonly status: PollerStatus = { consecutiveFailures: 0, watermarks: {} };
  private readonly failures: RepeatedFailure;
  /**
   * The listing of the mothers (contextRecords), for /metrics and /readyz: it fails no pass, and is warned
   * of once a reading, so a DHIS2 that always refuses it would otherwise show nowhere after the first warning.
   */
  readonly contextListing: ContextListingStatus = { consecutiveRefusals: 0 };

  constructor(private readonly deps: Dhis2PollerDeps) {
    this.log = deps.logger.child({ component: 'dhis2-poller', source: deps.sourceId });
    this.failures = passFailures(this.log, deps.now);
    this.status.watermarks[WATERMARK_KEY] = deps.cursors.getCursor(deps.sourceId, DHIS2_CURSOR);
  }

  /** One pass. Concurrent calls share the pass in progress (never overlap). */
  pollOnce(options: PassOptions = {}): Promise<PassReport> {
    if (this.stopping) return Promise.resolve(emptyReport());
    this.running ??= this.pass(options).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Ends the pass in progress after its current page and starts no other (shutdown). */
  stop(): void {
    this.stopping = true;
  }

  /** Resolves when no pass is running (shutdown waits for this; it starts nothing). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private pass(options: PassOptions): Promise<PassReport> {
    const fetcher = this.deps.pipeline.reading(new Dhis2Fetcher(this.deps.client, this.deps.dhis2.fields));
    const run = trackedPass(this.status, this.log, this.failures, async () => {
      // The watermark is held at DHIS2's own time (see commitPage); without it this pass holds nothing.
      this.serverNow = await this.deps.client.serverTime().catch(() => undefined);
      const widened = this.scopeRecord();
      const { report } = await this.pages(fetcher, options);
      await this.contextRecords(fetcher, report);
      // Last: a catch-up DHIS2 refuses fails the pass, but holds back none of the configured scope's births.
      if (widened) await this.catchUp(fetcher, report, widened);
      return { report, reads: fetcher.reads, stopped: this.stopping };
    });
    // A failed reread was logged; the watermark held for it (see pages), so the next pass redoes it.
    return run.finally(() => this.deps.pipeline.finished(fetcher).catch(() => undefined));
  }

  private startBound(): string | undefined {
    const { poll, cursors, sourceId } = this.deps;
    const watermark = this.rewindIfAhead(cursors.getCursor(sourceId, DHIS2_CURSOR));
    if (watermark) return minusSeconds(watermark, poll.overlapSeconds);
    const start = firstSyncStart(poll, cursors, sourceId);
    return start === undefined ? undefined : naiveStart(start);
  }

  /**
   * The stored watermark, moved back first when it is ahead of DHIS2's own time (its system/info
   * `serverDate`, read at the start of the pass) by more than the overlap (rewoundWatermark). Stored at
   * once: a pass that finds nothing commits nothing, and the next would start from DHIS2's time again,
   * leaving what DHIS2 recorded in between behind.
   */
  private rewindIfAhead(stored: string | undefined): string | undefined {
    const { cursors, sourceId, poll } = this.deps;
    const serverTime = this.serverNow;
    if (stored === undefined || serverTime === undefined) return stored;
    const to = rewoundWatermark({
      watermark: naiveMillis(stored) ?? Number.NaN,
      serverTime: naiveMillis(serverTime) ?? Number.NaN,
      overlapSeconds: poll.overlapSeconds,
      movedAt: cursors.cursorMovedAt?.(sourceId, DHIS2_CURSOR),
    });
    if (to === undefined) return stored;
    const movedTo = formatNaive(to);
    cursors.setCursor(sourceId, DHIS2_CURSOR, movedTo);
    this.status.watermarks[WATERMARK_KEY] = movedTo;
    this.status.clockBehind = { at: Date.now(), resourceType: WATERMARK_KEY, watermark: stored, serverTime, movedTo };
    this.log.warn(
      { watermark: stored, serverTime, movedTo },
      "the stored watermark is ahead of DHIS2's own time by more than poll.overlapSeconds (DHIS2 moved to a server whose clock or time zone is behind, or its clock was put back): it is moved back and what DHIS2 recorded since the last read is read again; nothing already delivered is sent twice",
    );
    return movedTo;
  }

  /**
   * The pass's reading of tracked entities: from the watermark (or, asked, an earlier time), or for
   * `catchUp`, org units the watermark has not covered from go-live up to it, which moves no watermark and
   * carries no run to the next pass. `ended`: it read to the end; `held`: some of it was not recorded (a
   * run given up, a reread that failed); `resumeFrom`: where reading again misses nothing it did not
   * record (its bound, or earlier where it held).
   */
  private async pages(
    fetcher: Dhis2Fetcher,
    options: PassOptions,
    catchUp?: ScopeCatchUp,
  ): Promise<{ report: PassReport; ended: boolean; held: boolean; resumeFrom: string | undefined }> {
    const { poll, client, pipeline } = this.deps;
    const report = emptyReport();
    const filter = catchUp?.filter ?? trackedEntityFilter(this.deps.dhis2);
    const maxPages = this.deps.maxPages ?? 1_000;
    const goLive = () => firstSyncStart(this.deps.poll, this.deps.cursors, this.deps.sourceId);
    const usual = catchUp ? undefined : this.startBound();
    let bound = catchUp ? catchUp.from : readFromEarlier(usual, options.from, goLive, DHIS2_TIMES);
    const carriedRuns = catchUp ? new CarriedRuns() : this.carriedRuns;
    let ended = false;
    let page = 1;
    // A run of equal `updatedAt` longer than a page is read by page numbers, again until a reading can be
    // trusted (see RunReadings); until then the watermark stays at the run. A run given up is carried to the
    // next pass, which goes on from the members read if DHIS2 counts the run alike (CarriedRuns).
    let run = new RunReadings(carriedRuns);
    // Such a run is first asked for in one larger page, which needs no paging inside it: a server whose ties
    // come in no fixed order (PostgreSQL, under DHIS2, with ORDER BY a non-unique column and LIMIT/OFFSET)
    // pages a run unreliably. It is asked once: not answered, the run is read at the size DHIS2 did answer.
    let size = poll.pageSize;
    const larger = this.runPageCaps.pass();
    // The most records the server gave on a page of the run being read: the page size it allows.
    let served = 0;
    // After a run that could not be read reliably, the watermark waits at it and the pass reads on past
    // it: a large import that clinicians keep editing would otherwise hold back every later birth.
    let holdAt: string | undefined;
    const capped = (reach: string | undefined) =>
      catchUp ? undefined : holdAt !== undefined ? earlierOf(reach, holdAt) : reach;
    // Pages outside runs count against maxPages; a run's pages against their own, larger bound, or a run
    // longer than maxPages pages (one bulk import) would stop every pass inside it, for good.
    let plainPages = 0;
    let runPages = 0;
    // A run whose paging did not end: the pass reads on past it, then fails.
    let endless: Error | undefined;
    while (plainPages < maxPages && runPages < MAX_RUN_PAGES && !this.stopping) {
      if (page === 1) run.startReading();
      const params: Record<string, string> = {
        ...filter,
        order: 'updatedAt:asc',
        page: String(page),
        pageSize: String(size),
      };
      if (bound) params.updatedAfter = bound;
      const at = bound === undefined ? undefined : naiveMillis(bound);
      // A larger page asked for a run (below) that DHIS2 does not answer: the run is read by page numbers
      // at the size DHIS2 did answer (LargerRunPage). Other failures fail the pass.
      let answer: Awaited<ReturnType<Dhis2Client['trackedEntityPage']>>;
      try {
        answer = await client.trackedEntityPage(params, larger.callOptions);
      } catch (err) {
        // Cut short by the stop (shutdown, a sync pass's deadline: the client's calls were ended): no
        // failure, as for a FHIR source; the watermark stays at what was committed, the next pass reads on.
        if (this.stopping) break;
        const readWith = larger.refused(at);
        if (readWith === undefined) throw err;
        this.log.warn(
          { err, pageSize: size, readWith },
          `DHIS2 did not answer a page of ${size} records of a run sharing one updatedAt (${err instanceof Error ? err.message : String(err)}): the run is read in pages of ${readWith} instead (raise sources[].timeoutMs for fewer calls)`,
        );
        size = readWith;
        continue;
      }
      larger.answered();
      const entities = answer.entities;
      // A page shorter than the size the server applied is the last; a server that serves less than asked says
      // so in its pager, and a full page of it must not pass for the end of the results.
      const last = entities.length < (answer.pageSize ?? size);
      const atBound = entities.filter((te) => at !== undefined && naiveMillis(te.updatedAt ?? '') === at);
      // Only when the server gave the whole page asked for: one that serves less would answer the same.
      const wholePageAtBound = entities.length >= size && atBound.length === entities.length;
      const enlarged = page === 1 && !run.active && !last && wholePageAtBound ? larger.enlarge(at, size) : undefined;
      if (enlarged !== undefined) {
        size = enlarged;
        continue;
      }
      const { kept, strays } = this.recordable(entities);
      const resources = kept.map(trackedEntityResource).filter((r): r is Resource => r !== undefined);
      const fresh = resources.filter((r) => !this.seen.has(versionKey(r)));
      const freshStrays = strays.filter((r) => !this.seen.has(versionKey(r)));
      // Only the run's own members count as new for it (records after it may arrive while it is read).
      const members = new Set(atBound.map((te) => te.trackedEntity));
      run.notePage(
        fresh.filter((r) => members.has(r.id ?? '')).length,
        atBound.map((te) => te.trackedEntity),
        entities.map((te) => te.trackedEntity),
      );
      fetcher.prime(resources);
      const { results: evaluated } = await pipeline.evaluate(fresh, fetcher);
      const results = [...evaluated, ...(await this.strayResults(freshStrays, fetcher))];
      const pageMax = entities.map((te) => te.updatedAt).reduce<string | undefined>(laterOf, undefined);
      const inRun = page > 1 || run.active;
      if (inRun) runPages++;
      else plainPages++;
      const leaves = pageMax !== undefined && advances(bound, pageMax);
      // In order with the source's other evaluations (commitInOrder): a page whose overtaken result could
      // not be read again holds the watermark at its oldest record, its versions not remembered.
      const oldest = () => entities.map((te) => te.updatedAt).reduce<string | undefined>(earlierDefined, undefined);
      const reach = capped(inRun && leaves ? bound : pageMax);
      const read = await commitInOrder(pipeline, fetcher, { results, reach, oldest }, earlierOf, (rs, at, whole) =>
        this.commitPage(report, rs, at, whole ? entities.length : 0),
      );
      if (read) for (const resource of [...fresh, ...freshStrays]) this.remember(resource, at);
      else {
        const at = oldest();
        if (at !== undefined) holdAt = earlierOf(holdAt, at);
        run.unrecorded(members);
      }
      if (inRun && (last || leaves)) {
        const outcome = run.endReading();
        if (outcome === 'again') {
          // A server whose tie order depends on LIMIT/OFFSET showed a member twice: see readingPageSize.
          if (run.untrustworthy && served > 1) size = readingPageSize(served, run.count, this.runTries);
          page = 1;
          continue;
        }
        if (outcome === 'give-up') {
          this.log.warn(
            { readings: run.count, ...run.progress },
            giveUpReason(run, 'a run of records sharing one updatedAt'),
          );
          if (bound !== undefined) holdAt = earlierOf(holdAt, bound);
          this.runTries += run.varied;
          run = new RunReadings(carriedRuns); // what follows the run is read as plain pages again
        } else {
          // The run is complete: the watermark may pass it.
          const current = this.status.watermarks[WATERMARK_KEY];
          const reach = capped(pageMax);
          if (laterOf(current, reach) !== current) this.commitPage(report, [], reach, 0);
        }
      }
      if (last) {
        ended = true;
        break;
      }
      if (leaves && pageMax) {
        bound = pageMax;
        // A catch-up ends at the watermark: from there (less the overlap) the usual pages read the whole scope.
        if (catchUp && (naiveMillis(pageMax) ?? 0) >= (naiveMillis(catchUp.until) ?? Infinity)) {
          ended = true;
          break;
        }
        page = 1;
        size = poll.pageSize;
        served = 0;
      } else {
        served = Math.max(served, entities.length);
        // A run longer than the page the server gives: ask DHIS2 how many records it holds, once.
        if (page === 1 && !run.active && bound !== undefined)
          run.expect(await this.runSize(filter, bound), naiveMillis(bound));
        // Page numbers that never run out of full pages (a server that ignores `page` and serves the same
        // records again) would be read until MAX_RUN_PAGES, every pass, with no word and the watermark never
        // moving (ReadingPages). The run is given up for this pass and the pass fails, so readiness, the
        // admin page and `sync --once` show it; the watermark stays at the run, so the next pass reads it
        // again, and this one reads on past it.
        if (run.endless) {
          this.log.warn(
            { ...run.readingProgress, ...run.progress },
            "DHIS2's paging inside a run of one updatedAt does not end (its pages bring no record not read yet): the run is given up for this pass, the watermark stays at it, the records after it are still read",
          );
          endless ??= new Error(
            `DHIS2's paging of tracked entities did not end inside a run of one updatedAt (${run.readingProgress.pages} pages, ${run.readingProgress.records} records); paging stopped`,
          );
          const past = bound === undefined ? undefined : plusMillis(bound, 1);
          if (bound === undefined || past === undefined) break; // no timestamp to read on from: the watermark stays
          holdAt = earlierOf(holdAt, bound);
          run.abandon();
          this.runTries += run.varied;
          run = new RunReadings(carriedRuns);
          // On past the run: it holds nothing later than its own millisecond (updatedAfter is inclusive).
          bound = past;
          page = 1;
          size = poll.pageSize;
          served = 0;
          continue;
        }
        page++;
      }
    }
    if (!catchUp) report.rereadStoppedAt = rereadStop(ended, bound, usual, DHIS2_TIMES);
    this.prune();
    if (endless) throw endless;
    const resumeFrom = holdAt === undefined ? bound : earlierOf(bound, holdAt);
    return { report, ended, held: holdAt !== undefined, resumeFrom };
  }

  /**
   * The org-unit scope the watermark has covered, from the ledger's meta, against the configured one: the
   * catch-up to read when the configured scope holds org units the covered one lacks (unreadScope), going
   * on from where a catch-up of the same units stopped. Otherwise the configured scope is recorded at once:
   * a first pass (its watermark starts at go-live), a narrower scope, and a ledger whose watermark moved
   * before the scope was recorded (an upgrade), whose configured scope is taken as covered.
   */
  private scopeRecord(): ScopeCatchUp | undefined {
    const { meta, sourceId, cursors, dhis2 } = this.deps;
    if (!meta) return undefined;
    const key = orgUnitScopeKey(sourceId);
    const configured = configuredScope(dhis2);
    const stored = parseScopeRecord(meta.getMeta(key));
    const watermark = cursors.getCursor(sourceId, DHIS2_CURSOR);
    const unread = stored && watermark !== undefined ? unreadScope(stored.scope, configured) : undefined;
    if (!unread) {
      if (!stored || stored.catchUp || !sameScope(stored.scope, configured))
        meta.setMeta(key, JSON.stringify({ scope: configured } satisfies OrgUnitScopeRecord));
      // An upgrade: what the watermark covered before is not known, so nothing is read back; an org unit
      // added in the same window would never be read unless the operator hears of it (docs/dhis2.md).
      if (!stored && watermark !== undefined)
        this.log.info(
          { orgUnits: configured.orgUnits.length, orgUnitMode: configured.orgUnitMode },
          `the source's org-unit scope (${configured.orgUnits.length} org units, ${configured.orgUnitMode}) is recorded as covered ` +
            'by its watermark, as no scope was recorded yet (a ledger from before this version): org units added to ' +
            `sources[].dhis2 since go-live, before this version, were not read back; read them once with \`sync --once --source ${sourceId} --since <go-live date>\``,
        );
      return undefined;
    }
    const goLive = firstSyncStart(this.deps.poll, cursors, sourceId);
    const resumed = stored?.catchUp && sameScope(stored.catchUp.scope, unread) ? stored.catchUp.from : undefined;
    const from = resumed ?? (goLive === undefined ? undefined : naiveStart(goLive));
    const filter = trackedEntityFilter({ ...dhis2, orgUnits: unread.orgUnits, orgUnitMode: unread.orgUnitMode });
    return { scope: unread, filter, from, until: watermark as string };
  }

  /**
   * Reads the org units the watermark has not covered (scopeRecord) and, once read to the watermark with
   * every record recorded, records the configured scope as covered. Stopped short (its page budget, a
   * shutdown, a run it could not read) it stores where it goes on from; failed, it stores nothing: the next
   * pass reads again from where the last stored reading stopped, so no part is ever skipped.
   */
  private async catchUp(fetcher: Dhis2Fetcher, report: PassReport, reading: ScopeCatchUp): Promise<void> {
    const { meta, sourceId, dhis2 } = this.deps;
    if (!meta || this.stopping) return;
    const key = orgUnitScopeKey(sourceId);
    const stored = parseScopeRecord(meta.getMeta(key));
    if (!stored) return;
    const read = await this.pages(fetcher, {}, reading);
    addReports(report, read.report);
    if (read.ended && !read.held) {
      meta.setMeta(key, JSON.stringify({ scope: configuredScope(dhis2) } satisfies OrgUnitScopeRecord));
      this.log.info(
        { orgUnitsAdded: reading.scope.orgUnits.length, orgUnitMode: reading.scope.orgUnitMode },
        "org units added to sources[].dhis2 (orgUnits, orgUnitMode) were read from go-live up to the watermark, once; the source's scope is recorded as covered",
      );
      return;
    }
    const from = read.resumeFrom;
    const catchUp = { scope: reading.scope, ...(from !== undefined ? { from } : {}) };
    meta.setMeta(key, JSON.stringify({ scope: stored.scope, catchUp } satisfies OrgUnitScopeRecord));
  }

  /**
   * The tracked entities the ledger's rows read as their context (the mother, at the end of a relationship)
   * that changed, read by uid: she is usually not enrolled in the programme the pages list, so no page
   * brings her correction. Each found is evaluated as a page's records are, so the pipeline maps again the
   * births whose context read her (SourcePipeline.subjectsOf); an unchanged birth records nothing.
   *
   * The cheapest query that finds her wherever she is registered: `trackedEntities=uid1,…` with
   * `updatedAfter`, no programme (she is in none, or another), no tracked entity type (the mother's may
   * differ from the child's), no org unit but `orgUnitMode=ACCESSIBLE` (the org units of
   * `sources[].dhis2.orgUnits` are the children's). Not every mother a read by uid serves is listed: DHIS2
   * joins the list with the accessible programmes of her type (docs/dhis2.md, "Mothers"). Changes are few, so
   * the answers are short; the requests are ⌈known mothers / CONTEXT_BATCH⌉, at most MAX_CONTEXT_BATCHES
   * a pass. A listing of every changed tracked entity of a type would cost one request but miss a mother of
   * another type, and read every person edited anywhere in DHIS2.
   *
   * The uids are read in ref order, one reading carried across passes when they are more than a pass asks
   * for. A reading asks from the cursor (DHIS2_CONTEXT_CURSOR) less the overlap, and when complete moves the
   * cursor to DHIS2's time when it began: a change at any moment is after the start of the reading before
   * the one that begins next, so that one finds it (a birth recorded since read her then). A reading whose
   * results could not all be recorded moves nothing: the next one asks again from the same time. A refused
   * listing ends the pass's part, not the reading: the next pass asks that batch again. The reading's
   * progress is stored (DHIS2_CONTEXT_READING), so a new process goes on with it. It asks for the mothers of
   * rows updated within CONTEXT_READ_WINDOW_DAYS (and the overlap) before the bridge's time when the reading
   * it asks from began (the one whose DHIS2 time the cursor holds: ContextReading.windowFrom), not of each
   * batch's now, nor of its own start: a reading DHIS2 refuses for weeks would otherwise drop a row that
   * passes its year meanwhile, and complete past a change to her made while the row was within it. Only
   * its own rows' mothers are asked: a row's set is kept under the source that last read it
   * (ledger/context-reads.ts), which is the one whose user could read her, and whose reading finds her.
   */
  private async contextRecords(fetcher: Dhis2Fetcher, report: PassReport): Promise<void> {
    const { contextRefs, cursors, sourceId, client, pipeline, poll, dhis2 } = this.deps;
    if (!contextRefs || this.stopping) return;
    const reading = this.contextReading();
    if (!reading) return; // no time to ask from: the next pass asks DHIS2 again
    const batch = Math.max(1, Math.min(CONTEXT_BATCH, poll.pageSize));
    const since = contextReadWindowStart(reading.windowFrom) - poll.overlapSeconds * 1000;
    for (let asked = 0; asked < MAX_CONTEXT_BATCHES && !this.stopping; asked++) {
      const refs = contextRefs(reading.after, batch, since);
      const uids = refs.map((ref) => ref.slice(ref.indexOf('/') + 1)).filter(isDhis2Uid);
      if (uids.length > 0) {
        let answer: Awaited<ReturnType<typeof client.trackedEntityPage>>;
        try {
          // Not `includeDeleted`: her deletion corrects no birth, and DHIS2 before DHIS2-16255 does not stamp
          // it in `updatedAt` (docs/dhis2.md, "Mothers").
          answer = await client.trackedEntityPage({
            trackedEntities: uids.join(','),
            updatedAfter: reading.updatedAfter,
            orgUnitMode: 'ACCESSIBLE',
            fields: dhis2.fields,
            page: '1',
            pageSize: String(batch),
          });
        } catch (err) {
          // The programme's pages are recorded: a DHIS2 that refuses this listing (an outage, a version that
          // will not list by uid without a programme) must not fail the pass, and with it the source's
          // readiness, while births flow. The reading is kept (stored): the next pass asks again from this
          // batch and the same time. Warned once a reading: a DHIS2 that always refuses would warn every pass.
          const which = `${reading.updatedAfter} ${reading.startedAt ?? ''}`;
          if (!this.stopping) {
            this.contextListing.consecutiveRefusals++;
            this.contextListing.lastError = err instanceof Error ? errorMessage(err) : String(err);
          }
          if (!this.stopping && this.contextRefusalWarned !== which) {
            this.contextRefusalWarned = which;
            this.log.warn(
              { err },
              'the tracked entities births read as their context (mothers) could not be listed: asked again by the next passes from the same time (warned once a reading)',
            );
          }
          return;
        }
        this.contextListingUnrefused('the tracked entities births read as their context (mothers) are listed again');
        // A server that serves fewer than the uids asked, a full page of them: some may be left out.
        if (answer.pageSize !== undefined && answer.pageSize < uids.length && answer.entities.length >= answer.pageSize)
          reading.held = true;
        const wanted = new Set(uids);
        // Only what was asked for: a server that ignored the filter lists others, which no row read.
        const listed = answer.entities.filter((te) => wanted.has(te.trackedEntity ?? ''));
        const resources = listed.map(trackedEntityResource).filter((r): r is Resource => r !== undefined);
        const fresh = resources.filter((r) => !this.seen.has(versionKey(r)));
        if (fresh.length > 0) {
          fetcher.prime(fresh);
          const { results } = await pipeline.evaluate(fresh, fetcher);
          const read = await commitInOrder(
            pipeline,
            fetcher,
            { results, reach: undefined, oldest: () => undefined },
            earlierOf,
            (rs) => {
              const pageReport = pipeline.commit(rs);
              pageReport.resources = 0;
              addReports(report, pageReport);
            },
          );
          report.resources += fresh.length;
          if (read) for (const resource of fresh) this.remember(resource);
          else reading.held = true;
        }
      }
      const last = refs.at(-1);
      if (last === undefined || refs.length < batch) {
        if (!reading.held && reading.startedAt !== undefined) {
          cursors.setCursor(sourceId, DHIS2_CONTEXT_CURSOR, reading.startedAt);
          cursors.setCursor(sourceId, DHIS2_CONTEXT_BEGUN, String(reading.begunAt));
        } else if (reading.held)
          this.log.warn(
            'some changed tracked entities that births read as their context could not be recorded: they are asked for again from the same time by the next pass',
          );
        // After the cursor: a process stopped in between completes the same reading again, which moves it the same.
        cursors.setCursor(sourceId, DHIS2_CONTEXT_READING, '');
        this.contextListingUnrefused(NONE_LEFT_TO_LIST);
        return;
      }
      reading.after = last;
      cursors.setCursor(sourceId, DHIS2_CONTEXT_READING, JSON.stringify(reading));
    }
    if (!this.stopping) this.contextListingUnrefused(NONE_LEFT_TO_LIST);
  }

  /**
   * The listing's refusals end: one was answered, or the pass's part of the reading ended with none refused
   * (a part may ask none: its rows' mothers all dismissed or out of the window, it completes with no request,
   * and a count kept from earlier refusals would report them on the gauge and /readyz for good). `said` is
   * logged when refusals were counted.
   */
  private contextListingUnrefused(said: string): void {
    if (this.contextListing.consecutiveRefusals > 0)
      this.log.info({ refusals: this.contextListing.consecutiveRefusals }, said);
    this.contextListing.consecutiveRefusals = 0;
    this.contextListing.lastError = undefined;
  }

  /**
   * The reading in progress, as stored (DHIS2_CONTEXT_READING), or a new one. Stored, not kept in memory: a
   * `sync --once` run or a restart goes on with it, where it began anew from the first uid, and a ledger of
   * more mothers than one pass asks for was never read to its end. A new reading asks from the cursor less
   * the overlap, or from DHIS2's time when it is ahead (its clock put back). With no cursor (the first
   * reading) it asks from DHIS2's time now, or without it the programme's own start (a time at or before
   * that of every row recorded so far), and stores that at once: a first reading that does not complete
   * (refused, held, stopped) is then followed by one from the same time, not from a later one that skips
   * what changed in between. Its window of rows is measured from the bridge's time stored with the cursor
   * (DHIS2_CONTEXT_BEGUN), for the same reason.
   */
  private contextReading(): ContextReading | undefined {
    const { cursors, sourceId, poll } = this.deps;
    const now = (this.deps.now ?? Date.now)();
    const stored = cursors.getCursor(sourceId, DHIS2_CONTEXT_READING);
    const kept = parseContextReading(stored, now);
    if (kept) {
      // One stored without the time it began keeps the first it is given: a refused pass does not move it on.
      const json = JSON.stringify(kept);
      if (json !== stored) cursors.setCursor(sourceId, DHIS2_CONTEXT_READING, json);
      return kept;
    }
    const cursor = cursors.getCursor(sourceId, DHIS2_CONTEXT_CURSOR);
    const from = cursor === undefined ? (this.serverNow ?? this.startBound()) : earlierDefined(cursor, this.serverNow);
    if (from === undefined) return undefined;
    if (cursor === undefined) {
      cursors.setCursor(sourceId, DHIS2_CONTEXT_CURSOR, from);
      cursors.setCursor(sourceId, DHIS2_CONTEXT_BEGUN, String(now));
    }
    const stamp = cursors.getCursor(sourceId, DHIS2_CONTEXT_BEGUN);
    const begun = stamp !== undefined && /^\d{1,15}$/.test(stamp) ? Number(stamp) : Number.NaN;
    const reading: ContextReading = {
      updatedAfter: minusSeconds(from, poll.overlapSeconds) ?? from,
      startedAt: this.serverNow,
      begunAt: now,
      // A cursor stored without it (before it was kept): from now, as then.
      windowFrom: Number.isFinite(begun) ? Math.min(begun, now) : now,
      after: '',
      held: false,
    };
    cursors.setCursor(sourceId, DHIS2_CONTEXT_READING, JSON.stringify(reading));
    return reading;
  }

  /**
   * How many records share the run's updatedAt, as DHIS2 counts them (`totalPages=true`); undefined when it
   * does not say. `updatedAfter` is inclusive, so the run is the count from its updatedAt less the count from
   * 1 ms later. The later one is asked first: a record that changes between the two calls (an edit stamps it
   * now, after both bounds) is counted by the second call and not the first, so the difference can only come
   * out too large, which completes no run (see RunReadings), never too small, which could complete one early.
   */
  private async runSize(filter: Record<string, string>, bound: string): Promise<number | undefined> {
    const after = plusMillis(bound, 1);
    if (after === undefined) return undefined;
    const total = async (updatedAfter: string) => {
      const params = { ...filter, fields: 'trackedEntity', updatedAfter, page: '1', pageSize: '1', totalPages: 'true' };
      return (await this.deps.client.trackedEntityPage(params)).total;
    };
    try {
      const later = await total(after);
      const from = later === undefined ? undefined : await total(bound);
      return from === undefined || later === undefined || from < later ? undefined : from - later;
    } catch (err) {
      this.log.debug({ err }, 'DHIS2 did not count a run; its readings are judged without');
      return undefined;
    }
  }

  /**
   * The page's tracked entities split by their uid: `kept`, DHIS2 uids, and `strays`, the others (as
   * resources; one with no uid at all cannot be named and is only counted). DHIS2 issues no such uid (its
   * import refuses one), so the answer was not DHIS2's own (a proxy rewriting it, a broken or hostile
   * server), and such a record can never be read again, rechecked before its send, nor have its tracking id
   * written back: the client refuses the uid (Dhis2Client.checkUid). A stray is not mapped for delivery but
   * kept in the ledger as a dead row (strayResults), so `ledger` and the admin page show it; failing the
   * pass on it would hold every later birth behind it, pass after pass. The watermark goes past it as past
   * any record read. Only the page's paging reads `entities` whole.
   *
   * First, those not of the source's `dhis2.trackedEntityType` are left out: DHIS2 will not filter a list by
   * programme and type at once (trackedEntityFilter), and two sources of one server filtered to different
   * types are let through as reading different records (sources/overlap.ts), which holds only if neither
   * maps a tracked entity of the other's type.
   */
  private recordable(listed: TrackerTrackedEntity[]): { kept: TrackerTrackedEntity[]; strays: Resource[] } {
    const { dhis2 } = this.deps;
    const entities = listed.filter((te) => isOfTrackedEntityType(dhis2, te));
    // Counts and uids of metadata only. DHIS2 enrols only tracked entities of the programme's own type, so
    // this is a trackedEntityType that is not the programme's, which leaves the source nothing to read.
    if (entities.length < listed.length)
      this.log.warn(
        { trackedEntities: listed.length - entities.length, program: dhis2.program },
        `DHIS2 listed tracked entities of programme ${dhis2.program} that are not of sources[].dhis2.trackedEntityType ${dhis2.trackedEntityType}: they are left alone, neither mapped nor recorded (if that is not the programme's own tracked entity type, the source reads nothing: run doctor)`,
      );
    const kept = entities.filter((te) => isDhis2Uid(te.trackedEntity));
    const left = entities.length - kept.length;
    // Counts only: the uid is whatever the answer held.
    if (left > 0)
      this.log.warn(
        { trackedEntities: left },
        "DHIS2's list of tracked entities held uids that are not DHIS2 uids (11 letters and digits, a letter first): those entries are kept as dead rows, never sent nor asked of DHIS2, and the pass reads on; check what answers at sources[].baseUrl (a proxy rewriting answers, a server that is not DHIS2)",
      );
    const strays = entities
      .filter((te) => !isDhis2Uid(te.trackedEntity))
      .map(trackedEntityResource)
      .filter((r): r is Resource => r !== undefined);
    return { kept, strays };
  }

  /**
   * Dead rows (error kind `source-read`, like a row the recheck holds for such a uid) for listed tracked
   * entities whose uid is no DHIS2 uid, one per mapping the record is an event of. Which mappings is told
   * by the listed record alone: a read of anything else (the mother) answers nothing, as nothing may be
   * asked of DHIS2 with this uid. Only mappings that find their evidence in it get a row (a child gets no
   * dead death row); a mapping that fails on it gets one all the same. The row keeps no payload, and its
   * reason quotes the uid (bounded, see strayKey), nothing else of the record.
   */
  private async strayResults(strays: Resource[], fetcher: ResourceFetcher): Promise<Evaluation[]> {
    if (strays.length === 0) return [];
    const { pipeline } = this.deps;
    const session = pipeline.session(fetcher);
    const out: Evaluation[] = [];
    for (const resource of strays) {
      const id = String(resource.id);
      // Evaluated under a stand-in uid: the mapping engine takes `TrackedEntity/..` for no record at all.
      const standIn: Resource = Object.assign({}, resource, { id: STAND_IN_UID, trackedEntity: STAND_IN_UID });
      const listedOnly: ResourceFetcher = {
        read: (type, uid) =>
          Promise.resolve(type === resource.resourceType && uid === STAND_IN_UID ? standIn : undefined),
        search: () => Promise.resolve([]),
      };
      const subjectRef = strayKey(id);
      for (const mapping of pipeline.mappings.mappings) {
        if (mapping.subjectType !== resource.resourceType) continue;
        let evidence = true;
        try {
          const { result, excluded, noEvidence } = await pipeline.mappings.mapSubjectDetailed(
            mapping.id,
            `${resource.resourceType}/${STAND_IN_UID}`,
            listedOnly,
          );
          evidence = result.status !== 'skipped' && excluded !== true && noEvidence !== true;
        } catch {
          // Kept visible rather than dropped on a guess.
        }
        if (!evidence) continue;
        out.push({
          result: {
            status: 'invalid',
            mappingId: mapping.id,
            eventType: mapping.eventType,
            subjectRef,
            sourceRef: subjectRef,
            errors: [{ field: 'subject', message: strayReason(id) }],
            unreadable: true,
          },
          excluded: false,
          session,
        });
      }
    }
    return out;
  }

  /** Records a page's rows with the watermark it reaches (never moved back), in one ledger transaction. */
  private commitPage(
    report: PassReport,
    results: Awaited<ReturnType<SourcePipeline['evaluate']>>['results'],
    reach: string | undefined,
    resources: number,
  ): void {
    const current = this.status.watermarks[WATERMARK_KEY];
    // Never past DHIS2's own time when the pass began: one record stamped in the future (a clock that
    // jumped ahead and back) would carry the watermark past every birth recorded until then, for good.
    const now = this.serverNow;
    const ahead =
      reach !== undefined && now !== undefined && (naiveMillis(reach) ?? 0) > (naiveMillis(now) ?? Infinity);
    if (ahead && !this.warnedFuture) {
      this.warnedFuture = true;
      this.log.warn(
        "DHIS2 has records stamped later than its own time (its clock ran ahead): the watermark waits at the server's time, so nothing recorded meanwhile is missed",
      );
    }
    const next = laterOf(current, ahead ? now : reach);
    const pageReport = this.deps.pipeline.commit(
      results,
      next && next !== current ? { name: DHIS2_CURSOR, value: next } : undefined,
    );
    pageReport.resources = resources;
    addReports(report, pageReport);
    this.status.watermarks[WATERMARK_KEY] = next;
  }

  /** `runAt`: the time (ms) of the run being read, the pass's bound, whose members are not forgotten for it. */
  private remember(resource: Resource, runAt?: number): void {
    const at = naiveMillis(resource.meta?.versionId ?? '') ?? Date.now();
    rememberSeen(this.seen, versionKey(resource), at, this.deps.maxSeen, runAt);
  }

  /** Forgets versions older than the overlap window: they can no longer come back in a poll. */
  private prune(): void {
    const watermark = this.status.watermarks[WATERMARK_KEY];
    const at = watermark ? naiveMillis(watermark) : undefined;
    if (at === undefined) return;
    const horizon = at - (this.deps.poll.overlapSeconds + 60) * 1000;
    for (const [key, seenAt] of this.seen) if (seenAt < horizon) this.seen.delete(key);
    this.carriedRuns.forgetBefore(at);
    this.runPageCaps.forgetBefore(horizon);
  }
}

/** How the listing of the contexts' tracked entities by uid fares (Dhis2Poller.contextListing). */
export interface ContextListingStatus {
  /** Passes in a row whose listing DHIS2 refused (one refusal ends a pass's part); 0 once one is answered. */
  consecutiveRefusals: number;
  /** The last refusal's message (the client's: no record's content), while they continue. */
  lastError?: string;
}

/** A reading of the contexts' tracked entities by uid (Dhis2Poller.contextRecords). */
interface ContextReading {
  /** What it asks DHIS2 for: records updated since (inclusive). */
  updatedAfter: string;
  /** DHIS2's time when it began: the cursor it moves to when complete, unless `held`. */
  startedAt: string | undefined;
  /** The bridge's time (ms) when it began: stored with the cursor when it moves it (DHIS2_CONTEXT_BEGUN). */
  begunAt: number;
  /**
   * The bridge's time (ms) it asks for the mothers of rows updated in the window before: when the reading
   * whose DHIS2 time it asks from (the cursor) began. A change made after that reading passed her uid is
   * this one's to find, and her row was within its year when that reading began; measured from this one's
   * own start, a reading refused for days across her row's year would leave her out, and her change with her.
   */
  windowFrom: number;
  /** The last ref read (keyset), '' before the first. */
  after: string;
  /** Some of its results were not recorded, or a page may have been cut short: it moves no cursor. */
  held: boolean;
}

/**
 * A stored reading (DHIS2_CONTEXT_READING), or undefined for none or one this code cannot read (a new one
 * begins). One stored before `begunAt` was kept is taken as begun `now`, as it was read before.
 */
function parseContextReading(value: string | undefined, now: number): ContextReading | undefined {
  const parsed = storedObject(value);
  if (!parsed) return undefined;
  const { updatedAfter, startedAt, begunAt, windowFrom, after, held } = parsed;
  if (typeof updatedAfter !== 'string' || naiveMillis(updatedAfter) === undefined) return undefined;
  if (startedAt !== undefined && (typeof startedAt !== 'string' || naiveMillis(startedAt) === undefined))
    return undefined;
  if (begunAt !== undefined && (typeof begunAt !== 'number' || !Number.isFinite(begunAt))) return undefined;
  if (windowFrom !== undefined && (typeof windowFrom !== 'number' || !Number.isFinite(windowFrom))) return undefined;
  if (typeof after !== 'string' || typeof held !== 'boolean') return undefined;
  // Not later than now: a bridge clock put back would otherwise leave out rows now within the window.
  const begun = Math.min(begunAt ?? now, now);
  // One stored before `windowFrom` was kept measured its window from its own start.
  return { updatedAfter, startedAt, begunAt: begun, windowFrom: Math.min(windowFrom ?? begun, now), after, held };
}

/** The uid a stray is mapped under to tell its event types (see strayResults): never asked of DHIS2. */
const STAND_IN_UID = 'StrayRecord';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** How much of a uid that is no DHIS2 uid a ledger key and a reason quote (a server may send anything). */
const MAX_STRAY_UID = 40;

/**
 * The ledger subject of a listed tracked entity whose uid is no DHIS2 uid: `TrackedEntity/` and the uid
 * percent-encoded (no control character reaches a terminal through `ledger`; `..` stays `..`, so
 * `--find TrackedEntity/..` finds it), a long one cut short with a hash of the whole, so two strays never
 * share a row.
 */
export function strayKey(uid: string): string {
  // A lone surrogate (JSON's "\ud800" parses to one) makes encodeURIComponent throw, which failed the page,
  // and every pass after it: written as U+FFFD, with the hash of the uid as received (hashed as JSON, which
  // escapes each lone surrogate: UTF-8 would make them all U+FFFD first), so none share a row.
  const wellFormed = uid.replace(LONE_SURROGATE, '\uFFFD');
  const encoded = encodeURIComponent(wellFormed);
  if (encoded.length <= MAX_STRAY_UID && wellFormed === uid) return `TrackedEntity/${encoded}`;
  const hash = createHash('sha256').update(JSON.stringify(uid)).digest('hex').slice(0, 12);
  return `TrackedEntity/${encoded.slice(0, MAX_STRAY_UID)}…${hash}`;
}

function strayReason(uid: string): string {
  const shown = JSON.stringify(uid.length > MAX_STRAY_UID ? `${uid.slice(0, MAX_STRAY_UID)}…` : uid);
  return (
    `DHIS2's list of tracked entities named this record by the uid ${shown}, which is not a DHIS2 uid (11 letters ` +
    'and digits, a letter first). DHIS2 issues no such uid, so that answer was not its own (a proxy rewriting it, ' +
    'a server that is not DHIS2): nothing is asked of DHIS2 with it (no read, no recheck, no write-back) and it is ' +
    'never sent. Check what answers at sources[].baseUrl; once DHIS2 lists the record under its real uid it is ' +
    'recorded there, and this row can be dismissed'
  );
}

/** (uid, updatedAt): the same version of a tracked entity is mapped once per process. */
function versionKey(resource: Resource): string {
  return `${resource.id}@${resource.meta?.versionId ?? ''}`;
}

function advances(bound: string | undefined, pageMax: string): boolean {
  if (!bound) return true;
  return (naiveMillis(pageMax) ?? 0) > (naiveMillis(bound) ?? 0);
}

const DHIS2_TIMES: SourceTimes = { toSource: naiveStart, earlierOf, laterOf };

/** A start given as a date or date-time (`poll.since`, `sync --since`) in the export's naive format. */
function naiveStart(value: string): string | undefined {
  const ms = naiveMillis(value);
  return ms === undefined ? undefined : formatNaive(ms);
}
