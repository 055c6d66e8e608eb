import type { ContextReader } from '../ledger/context-reads.js';
import type { Ledger, LedgerRow, RecordChange, SlowRecordStrikes } from '../ledger/index.js';
import {
  ContextReadError,
  type MapOptions,
  type MappingSet,
  type MapResult,
  type Resource,
  type ResourceFetcher,
} from '../mapping/index.js';
import type { Logger } from '../observability/logger.js';
import { setBounded } from '../util/bounded-map.js';
import { loopTurns, type TurnBudget } from '../util/turn-budget.js';
import type { PassCoverage } from './coverage.js';
import { EvaluationOrder, type EvaluationSession } from './evaluation-order.js';
import { beforeGoLive, goLiveDate, skippedBeforeGoLive, undatedDeath } from './go-live.js';
import { mayConcernOneRecord, noAnswerInTime, SourceCallError } from './shared/source-error.js';

/** A fetcher that can answer many subjects' context searches at once before they are mapped. */
export interface PrefetchingFetcher extends ResourceFetcher {
  prefetch(set: MappingSet, subjects: Array<{ mappingId: string; subjectRef: string }>): Promise<void>;
}

function isPrefetching(fetcher: ResourceFetcher): fetcher is PrefetchingFetcher {
  return typeof (fetcher as Partial<PrefetchingFetcher>).prefetch === 'function';
}

/**
 * A mapping result; `excluded` when an exclusion rule fired (e.g. a fetal death), not a mere non-match;
 * `noEvidence` when the record is (now) no event of the mapping's type.
 */
export interface Evaluation {
  result: MapResult;
  excluded: boolean;
  noEvidence?: boolean;
  /** The evaluation's session (the fetcher it read through, see `reading`): orders its commit. */
  session?: Reading;
  /** What the ledger keeps as the records the mapping reached (Evaluated.contextReads): see subjectsOf. */
  contextReads?: readonly string[];
}

/** What one evaluation pass recorded, for logs, `sync` and the admin page (no personal data). */
export interface PassReport {
  resources: number;
  subjects: number;
  mapped: Record<RecordChange, number>;
  skipped: number;
  invalid: number;
  /**
   * Rows skipped as before the go-live that this pass requeued to be sent (the go-live moved earlier or
   * removed, and their records read again): said in a log line, so that a rollback's sends are seen.
   */
  goLiveSkipsSent: number;
  ledgerIds: number[];
  /** A pass that read from an earlier date stopped here, behind the watermark (see rereadStop). */
  rereadStoppedAt?: string;
}

export function emptyReport(): PassReport {
  return {
    resources: 0,
    subjects: 0,
    mapped: { inserted: 0, replaced: 0, unchanged: 0, 'updated-after-notification': 0 },
    skipped: 0,
    invalid: 0,
    goLiveSkipsSent: 0,
    ledgerIds: [],
  };
}

export function addReports(into: PassReport, from: PassReport): PassReport {
  into.resources += from.resources;
  into.subjects += from.subjects;
  for (const key of Object.keys(into.mapped) as RecordChange[]) into.mapped[key] += from.mapped[key];
  into.skipped += from.skipped;
  into.invalid += from.invalid;
  into.goLiveSkipsSent += from.goLiveSkipsSent;
  into.ledgerIds.push(...from.ledgerIds);
  return into;
}

export interface PipelineDeps {
  sourceId: string;
  mappings: MappingSet;
  ledger: Ledger;
  logger: Logger;
  mapOptions?: () => MapOptions;
  /**
   * Subjects mapped at once (default 64). Their context reads overlap instead of queueing one by one,
   * and reads asked together go to the source as one batched search (CachingFetcher.read), so more
   * lanes mean fewer, larger requests, not more of them; the source client bounds calls in flight.
   */
  concurrency?: number;
  /** The lanes' turns of the event loop (default: the process's loopTurns, shared by every pipeline). */
  turns?: TurnBudget;
  /**
   * Evaluates these subjects again with fresh reads and records the outcome (the source's recheck
   * runner): for subjects whose commit another evaluation overtook (evaluation-order.ts).
   */
  reread?: (subjectKeys: string[]) => Promise<void>;
  /**
   * Reads something of the source the way a failed context read went, and throws when that fails too:
   * `subjectRef` (the subject itself, whose related record could not be read), or, undefined, anything
   * (the subject was what failed). Tells one record the source will not serve from a source that is
   * down. Without it every failed read fails the evaluation (the caller's pass), as a source-wide one.
   */
  probe?: (subjectRef: string | undefined) => Promise<void>;
  /**
   * Other sources that read the same records (DHIS2 sources of one server and programme with disjoint
   * org units, sources/overlap.ts sourcesSharingRecords). A record one of them already holds a row for is
   * recorded on that row (see ownerOf), not on a row of this source's own.
   */
  sharesRecordsWith?: readonly string[];
  /**
   * A monotonic clock in ms (default performance.now(), read at each call): what spaces a slow record's
   * strikes (SLOW_RECORD_STRIKE_GAP_MS) within this process. A wall clock put forward must not turn a
   * record dead sooner.
   */
  now?: () => number;
  /**
   * The wall clock in ms since the epoch (default Date.now()): what the ledger keeps a slow record's last
   * strike as, so another process (a restart, the next `sync --once`) spaces the next one (see strikeCounts).
   */
  wallClock?: () => number;
  /**
   * Rows whose context may read one record before it is taken as shared reference data (default
   * MAX_CONTEXT_READERS): a change to it then maps none of them again (see subjectsOf).
   */
  maxContextReaders?: number;
  /** Called with the resource type of each such record a change was skipped for (a metric counts them). */
  onSharedRecord?: (resourceType: string) => void;
  /**
   * The source's go-live (`poll.since`, or the start `sinceDays` chose: firstSyncStart), undefined for none.
   * An event dated before its day that OpenCRVS holds nothing of is recorded as skipped, not notified
   * (go-live.ts); asked only for a mapped or invalid result.
   */
  goLive?: () => string | undefined;
  /** The source's zone (SourceSettings.timeZone): the go-live's date is its date there (goLiveDate). */
  timeZone?: string;
}

const DEFAULT_CONCURRENCY = 64;
/**
 * The most ledger rows a changed record maps again for having been read by their context (subjectsOf). A
 * mother's own Patient is read by her children's births, a maternity encounter by twins' or triplets': a
 * handful. A record read by more is reference data shared by many births (a ward's Location a site's mapping
 * watches, a placeholder "unknown mother" Patient): mapping them all again for one change of it would
 * re-read thousands of births in one pass, for a change that, were it theirs to carry, is corrected with
 * `sync --once --since` (docs/mappings.md, "Which changes a poll sees").
 */
export const MAX_CONTEXT_READERS = 20;
/** Shared records' versions a pipeline remembers having warned of (contextReadersOf); the oldest go first. */
const SHARED_SEEN = 1000;
/** Rereads of one subject in flight at once (each further one needs yet another commit meanwhile). */
const MAX_REREAD_ROUNDS = 3;

/**
 * Separate evaluations (each through its own fetcher: a poll pass, an inbox round, a recheck) in which one
 * record's reads got no answer in time while the source answered the other records, before that record is
 * kept dead rather than failing its page once more (see slowRecords).
 */
const SLOW_RECORD_STRIKES = 3;
/**
 * The least time between two of a record's strikes: an evaluation sooner after the last strike fails its
 * page as before, but counts for nothing. Evaluations come close together (an inbox round retries after 1 s
 * and 2 s, each through a new fetcher; a recheck may follow a poll at once), so without it three strikes
 * took about three timeouts: one busy moment of the EMR (a report run, a backup's I/O, a lock held). With
 * it the three are at least 10 minutes apart, with one in between: the record was too slow at three moments
 * over a quarter of an hour's schedule (polls run every minute by default), longer than such a moment, while
 * the births behind it wait about 10 minutes more, not hours.
 */
export const SLOW_RECORD_STRIKE_GAP_MS = 5 * 60_000;
/**
 * Of one evaluation's records, at most one in this many may time out as a slow record, and an evaluation
 * of fewer records gives no strike at all: an inbox round of two notifications, or a recheck of three
 * rows, says nothing of whether the source answers the others.
 */
const SLOW_RECORD_SHARE = 10;
/**
 * Failures of a partial evaluation's subjects in a row, of the kind that concerns every call (no answer, a
 * 429, a 5xx: see sourceFailure), with no subject read in between, after which it starts no new subject.
 * Each is already a call that failed through every try of the client, so three in a row with nothing
 * answered is the source, not three records; one or two alone stop nothing, as lanes that fail together
 * on one batched read (CachingFetcher.read) or a short burst of 429s would otherwise end a large recheck.
 */
const PARTIAL_STOP_AFTER = 3;
const STRIKE_GAP_MINUTES = SLOW_RECORD_STRIKE_GAP_MS / 60_000;
/**
 * Records whose timeouts are counted, per source, in memory and in the ledger (oldest out first): a record
 * pushed out starts counting again.
 */
const MAX_SLOW_RECORDS = 1_000;
/**
 * Strikes older than this by the wall clock are forgotten (the record counts from nothing): the ledger
 * keeps no strike of a record not seen again (one withdrawn, dismissed, or of a source removed) for good.
 * A week: longer than any schedule polls apart (a daily `sync --once` still reaches three strikes).
 */
const SLOW_RECORD_FORGET_MS = 7 * 24 * 60 * 60_000;

/** A subject whose context reads got no answer in time, held until the evaluation's other subjects are done. */
interface TimedOut {
  index: number;
  mappingId: string;
  subjectRef: string;
  error: ContextReadError;
}

/** A subject whose evaluation failed (a read the source did not answer), in a `partial` evaluation. */
export interface SubjectFailure {
  subjectRef: string;
  /** The source's own error, as `evaluate` would throw it. */
  error: unknown;
}

/** A subject whose context reads got no answer in time in an evaluation that counted (see slowRecords). */
interface SlowRecord {
  strikes: number;
  /** When the last strike counted by the wall clock (wallClock()): what the ledger keeps. */
  struckAt: number;
  /** When the last strike counted by now(), if this pipeline counted it (not one read from the ledger). */
  struck?: number;
  /** The last evaluation of this pipeline it timed out in (fetcherIds), and how. */
  fetcher?: number;
  error?: ContextReadError;
}

/** One mapping of one record: what an evaluation maps. */
interface Subject {
  mappingId: string;
  subjectRef: string;
}

/**
 * One evaluation's subjects and what came of each, shared by its lanes (SourcePipeline.evaluate), with the
 * rules that end it early: a failed read fails the evaluation, or, `partial`, that subject alone, unless the
 * failure shows the source itself is the problem (see `fail`), after which no new subject is started.
 */
class EvaluationRun {
  readonly subjects: readonly Subject[];
  readonly partial: boolean;
  readonly fetcher: ResourceFetcher;
  /** See SourcePipeline.fetcherId. */
  readonly fetcherId: number;
  readonly coverage: PassCoverage | undefined;
  readonly options: MapOptions;
  readonly session: Reading | undefined;
  /** Results keep the subjects' order whatever order the lanes finish in, so the commit is the same. */
  readonly results: Evaluation[];
  readonly failures: Array<SubjectFailure & { index: number }> = [];
  /** Per evaluation: a subject (or the source, '') probed once, whatever its mappings ask. */
  readonly probes = new Map<string, Promise<boolean>>();
  /**
   * Subjects whose reads got no answer in time, held for slowRecords, and their records: records, not
   * subjects, as a record is a subject of each mapping of its type (birth and death).
   */
  readonly timedOut: TimedOut[] = [];
  readonly slowRefs = new Set<string>();
  /** Records held as slow at most: one in SLOW_RECORD_SHARE of the evaluation's (subjects, not related records). */
  readonly maxSlowRefs: number;
  /** Records read in full (see slowRecords). */
  readonly answered = new Set<string>();
  /** Subjects with strikes read in time now: their strikes are forgotten (forgetSlow). */
  readonly readInTime: Subject[] = [];
  private next = 0;
  /** A failure failed the evaluation (not partial): the other lanes take no new subject. */
  private failed = false;
  /** Partial: the failure that showed the source itself is the problem (no new subject is started). */
  private stopped: { error: unknown } | undefined;
  /** Partial: failures that concern every call since the last subject the source answered for. */
  private inARow = 0;
  /** Aborted when the evaluation stops, so that a fetcher taking its signal ends the calls under way. */
  private readonly abort: AbortController | undefined;

  constructor(input: {
    subjects: readonly Subject[];
    partial: boolean;
    stop?: AbortController | undefined;
    fetcher: ResourceFetcher;
    fetcherId: number;
    coverage: PassCoverage | undefined;
    options: MapOptions;
    session: Reading | undefined;
  }) {
    this.subjects = input.subjects;
    this.partial = input.partial;
    this.abort = input.stop;
    this.fetcher = input.fetcher;
    this.fetcherId = input.fetcherId;
    this.coverage = input.coverage;
    this.options = input.options;
    this.session = input.session;
    this.results = new Array(input.subjects.length);
    this.maxSlowRefs = Math.floor(new Set(input.subjects.map((s) => s.subjectRef)).size / SLOW_RECORD_SHARE);
  }

  /** The next subject to evaluate; none once every one is taken, or the evaluation failed or stopped. */
  take(): { index: number; subject: Subject } | undefined {
    if (this.failed || this.stopped || this.next >= this.subjects.length) return undefined;
    const index = this.next++;
    const subject = this.subjects[index];
    return subject && { index, subject };
  }

  /**
   * The failure that stopped a partial evaluation, if one did. A method, not the field: a lane asks again
   * after each await, where TypeScript would keep the field narrowed by the loop's test.
   */
  stop(): { error: unknown } | undefined {
    return this.stopped;
  }

  /** The subject's outcome, read (mapped or not) or kept dead: the source answered for it. */
  read(index: number, outcome: Omit<Evaluation, 'session'>): void {
    this.results[index] = { ...outcome, session: this.session };
    this.inARow = 0;
  }

  /**
   * A subject whose read failed with `error` (the source's own): named in `failures` (partial), stopping
   * the evaluation when the failure shows the source is the problem; else thrown, failing the evaluation.
   */
  fail(index: number, subjectRef: string, error: unknown): void {
    if (!this.partial) {
      this.failed = true;
      throw error;
    }
    this.failures.push({ index, subjectRef, error });
    this.stopped ??= this.stopsPartial(error);
  }

  /** A subject not read (or no further) since the evaluation stopped: it fails with the stop. */
  notRead(index: number, subjectRef: string, stop: { error: unknown }): void {
    this.failures.push({ index, subjectRef, error: stop.error });
  }

  /** Stopped: the subjects no lane took fail with the stop. True when the evaluation stopped. */
  failUntaken(): boolean {
    const stop = this.stopped;
    if (!stop) return false;
    for (let index = this.next; index < this.subjects.length; index++) {
      const subject = this.subjects[index];
      if (subject) this.notRead(index, subject.subjectRef, stop);
    }
    return true;
  }

  /**
   * Whether `error` stops a partial evaluation: one that concerns the source whatever the record at once,
   * one that concerns every call at PARTIAL_STOP_AFTER in a row (see sourceFailure).
   */
  private stopsPartial(error: unknown): { error: unknown } | undefined {
    const kind = sourceFailure(error);
    if (kind === 'every-call') this.inARow++;
    if (kind !== 'source' && (kind !== 'every-call' || this.inARow < PARTIAL_STOP_AFTER)) return undefined;
    this.abort?.abort(new NotReadStopped());
    return { error };
  }
}

/** A record whose commit another evaluation overtook was not read again; what would redo it must be kept. */
export class OvertakenReadFailed extends Error {
  override readonly name = 'OvertakenReadFailed';
}

/** An evaluation session with the rereads of the subjects its commits were refused for. */
interface Reading extends EvaluationSession {
  rereads: Promise<void>;
  /** The first reread that failed. */
  failure?: unknown;
}

/**
 * The part every source shares: changed resources → the subjects they affect → mapping (with
 * context fetched through the source) → one ledger transaction that records the results together
 * with whatever cursor the caller passes, so a watermark never runs ahead of the rows it covers.
 */
export class SourcePipeline {
  private readonly log: Logger;
  private readonly order = new EvaluationOrder();
  private readonly readings = new WeakMap<ResourceFetcher, Reading>();
  /** Rereads in flight per subject: a subject overtaken again and again is read at most this often at once. */
  private readonly rereadRounds = new Map<string, number>();
  /**
   * Subjects (mapping and record) whose context reads got no answer in time while the source answered the
   * other records: in how many evaluations, the last one's fetcher, when the last strike was, the failure.
   * The ledger's slow_records of this source, read at the first evaluation (loadSlow) and written through
   * (the process lease keeps a second bridge off the ledger meanwhile): strikes outlive the process.
   */
  private readonly slow = new Map<string, SlowRecord>();
  private slowLoaded = false;
  private readonly fetcherIds = new WeakMap<ResourceFetcher, number>();
  private fetchers = 0;
  /** Versions of shared records already warned of and counted (contextReadersOf): `Type/id version`. */
  private readonly sharedSeen = new Map<string, true>();

  private readonly turns: TurnBudget;

  constructor(private readonly deps: PipelineDeps) {
    this.turns = deps.turns ?? loopTurns;
    this.log = deps.logger.child({ component: 'pipeline', source: deps.sourceId });
  }

  private now(): number {
    return this.deps.now?.() ?? performance.now();
  }

  private wallClock(): number {
    return this.deps.wallClock?.() ?? Date.now();
  }

  get mappings(): MappingSet {
    return this.deps.mappings;
  }

  /**
   * Begins an evaluation session for reads through `fetcher`, before its first read (its cache is what
   * makes an evaluation's reads as old as the fetcher). Every `evaluate` through it commits in order
   * with the source's other evaluations (evaluation-order.ts); `finished` ends the session.
   */
  reading<F extends ResourceFetcher>(fetcher: F): F {
    this.readings.set(fetcher, { ...this.order.begin(), rereads: Promise.resolve() });
    return fetcher;
  }

  /** `fetcher`'s session, for results a source builds without mapping, to commit in the same order. */
  session(fetcher: ResourceFetcher): Evaluation['session'] {
    return this.readings.get(fetcher);
  }

  /**
   * Ends `fetcher`'s session once the rereads of its overtaken subjects have ended. Rejects (with an
   * OvertakenReadFailed) when one of them failed: the caller keeps what would redo it (a notification
   * stays in the inbox; the worker's recheck leaves its rows waiting; a poller holds its watermark).
   */
  async finished(fetcher: ResourceFetcher): Promise<void> {
    const reading = this.readings.get(fetcher);
    if (!reading) return;
    this.readings.delete(fetcher);
    this.order.end(reading);
    await reading.rereads;
    if (reading.failure !== undefined) throw reading.failure;
  }

  /**
   * True when committing `results` now would refuse one (overtaken: evaluation-order.ts). A poller asks
   * before it commits a page: it commits that page's watermark no further than the page's oldest
   * record, then waits for the reread (`settled`), so a crash or a failed reread leaves the page to be
   * read again.
   */
  overtakes(results: Evaluation[]): boolean {
    return results.some(({ result, session }) => session !== undefined && this.overtakenResult(session, result));
  }

  /**
   * Another evaluation committed the result's record after `session` began, or deleted the resource
   * that was its evidence (a poll never sees a deletion, so only this order stops the older read).
   */
  private overtakenResult(session: EvaluationSession, result: MapResult): boolean {
    if (!result.eventType || !result.subjectRef) return false;
    if (this.order.overtaken(session, subjectOf(result.eventType, result.subjectRef))) return true;
    const evidence = result.status === 'skipped' ? undefined : result.sourceRef;
    return evidence !== undefined && this.order.overtaken(session, deletedMark(evidence));
  }

  /** Waits for the rereads `fetcher`'s session started so far; false when one failed. */
  async settled(fetcher: ResourceFetcher): Promise<boolean> {
    const reading = this.readings.get(fetcher);
    if (!reading) return true;
    await reading.rereads;
    return reading.failure === undefined;
  }

  /** Reads the overtaken subjects again at once (a session's reads are over by the time it commits). */
  private reread(reading: Reading, subjects: Set<string>): void {
    const { reread } = this.deps;
    if (subjects.size === 0 || !reread) return;
    const allowed = [...subjects].filter((subject) => (this.rereadRounds.get(subject) ?? 0) < MAX_REREAD_ROUNDS);
    if (allowed.length < subjects.size) {
      // Each round needed yet another evaluation to commit meanwhile. This session's view is not recorded:
      // as for a failed reread, its caller keeps what would redo it.
      reading.failure ??= new OvertakenReadFailed('overtaken again while being read again, round after round');
      this.log.warn(
        { subjects: subjects.size - allowed.length },
        'records overtaken while being read again, round after round: left to the next poll or notification',
      );
    }
    if (allowed.length === 0) return;
    for (const subject of allowed) this.rereadRounds.set(subject, (this.rereadRounds.get(subject) ?? 0) + 1);
    // Counts only: which records is in the ledger.
    this.log.info({ subjects: allowed.length }, 'records another evaluation committed meanwhile are read again');
    reading.rereads = reading.rereads.then(async () => {
      try {
        await reread(allowed);
      } catch (err) {
        reading.failure ??= new OvertakenReadFailed('a record another evaluation overtook could not be read again', {
          cause: err,
        });
        this.log.warn(
          { err, subjects: allowed.length },
          'records overtaken by another evaluation could not be read again',
        );
      } finally {
        for (const subject of allowed) {
          const rounds = (this.rereadRounds.get(subject) ?? 1) - 1;
          if (rounds > 0) this.rereadRounds.set(subject, rounds);
          else this.rereadRounds.delete(subject);
        }
      }
    });
  }

  /**
   * Maps every subject affected by `resources`. Fetch errors propagate: the caller retries the pass.
   * With `coverage` (one per pass), a subject whose evaluation earlier in the pass already saw this
   * version of the resource is not evaluated again for it.
   *
   * `partial` (a recheck, a notification: evaluations with no watermark to hold back): a subject whose
   * reads fail is left out of `results` and named in `failures` instead of failing the call, and the other
   * subjects are evaluated all the same, so their outcome can be recorded. Before, a neighbour's context
   * search that timed out (or a 429) threw away the whole batch's results: the worker's recheck then sent
   * every row as recorded, a birth the EMR had entered in error meanwhile among them.
   *
   * A partial evaluation still starts no new subject, and asks nothing more for those under way, once a
   * failure shows the source itself is the problem: a page that is not the source's (a proxy's), a call the
   * bridge cut off (it is stopping), a refused credential, or PARTIAL_STOP_AFTER failures in a row that
   * concern every call (no answer, a 429, a 5xx) with no subject read in between. The subjects not read are
   * named in `failures` with that error, so the caller treats them as any other failed read. Otherwise, with
   * the source down, each subject waited out the client's every try and timeout in turn while the recheck's
   * rows stayed locked. A failure that may concern one record, or a timeout held for the slow-record rule,
   * stops nothing. `stop` is aborted then, with the reason those not read fail with: a fetcher that takes
   * its signal (the FHIR CachingFetcher) ends the calls under way at once, rather than let each wait out
   * its timeout and tries.
   *
   * `readers: false` (a recheck, a replay: the resources are the subjects of rows named to be checked, not
   * records that changed) maps only the subjects they name, not the rows that read them as context
   * (subjectsOf): a mother's death row rechecked would map her children's births too, and a child's search
   * that timed out would fail her recheck, or stop a replay's remaining batches, for rows nobody asked about.
   */
  async evaluate(
    resources: Resource[],
    fetcher: ResourceFetcher,
    coverage?: PassCoverage,
    { partial = false, stop, readers = true }: { partial?: boolean; stop?: AbortController; readers?: boolean } = {},
  ): Promise<{ results: Evaluation[]; subjects: number; failures?: SubjectFailure[] }> {
    const list = this.subjectsOf(resources, coverage, readers);
    const options = this.deps.mapOptions?.() ?? {};
    const session = this.readings.get(fetcher);
    // A live source answers the subjects' context searches in batches first (see CachingFetcher.prefetch).
    if (isPrefetching(fetcher)) await fetcher.prefetch(this.deps.mappings, list);
    const fetcherId = this.fetcherId(fetcher);
    this.loadSlow();
    const run = new EvaluationRun({ subjects: list, partial, stop, fetcher, fetcherId, coverage, options, session });
    const lanes = Math.min(Math.max(1, this.deps.concurrency ?? DEFAULT_CONCURRENCY), list.length);
    // Every lane settles before the first error propagates: no mapping keeps running after evaluate ends.
    const settled = await Promise.allSettled(Array.from({ length: lanes }, () => this.lane(run)));
    this.forgetSlow(run.readInTime);
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected) throw rejected.reason;
    // Not said when the bridge itself cut the reads off (stopping, a caller's deadline): no failure of the
    // source, and an operator stopping serve mid-round read it as the EMR's.
    if (run.failUntaken() && !cutOffByBridge(run.stop()?.error)) {
      // Counts only: which records is not for the log.
      this.log.warn(
        { subjects: list.length, failed: run.failures.length + run.timedOut.length, answered: run.answered.size },
        'the source failed in a way that concerns every call: the rest of this evaluation was not read, and its records are taken as failed reads',
      );
    }
    await this.judgeTimedOut(run);
    const { results, failures } = run;
    const unread = results.filter((r) => r.result.status === 'invalid' && r.result.unreadable).length;
    // Counts only: which records, and what could not be read, is on their ledger rows.
    if (unread > 0)
      this.log.warn(
        { records: unread },
        'records whose context the source would not serve are kept as dead rows naming what could not be read (replay them once it does); the other records went on',
      );
    if (!partial) return { results, subjects: list.length };
    failures.sort((a, b) => a.index - b.index);
    return {
      // Without the failed subjects' holes, in the subjects' order still.
      results: results.filter((evaluation) => evaluation !== undefined),
      subjects: list.length,
      failures: failures.map(({ subjectRef, error }) => ({ subjectRef, error })),
    };
  }

  /**
   * The subjects `resources` affect (one mapping of one record each, once), less those `coverage` says an
   * evaluation earlier in the pass already saw this version of the resource for: those a resource names
   * (MappingSet.subjectsFor), and those of the ledger rows whose context last reached it other than by a
   * search keyed on their subject (the mother's own Patient, the maternity encounter: contextReaders). A
   * record more than maxContextReaders rows read is shared reference data: it maps none of them again, and
   * is logged (its type, no reference) and counted (onSharedRecord). Mapping a subject whose content did not
   * change records nothing new: the ledger compares payload hashes and fingerprints.
   */
  private subjectsOf(resources: Resource[], coverage: PassCoverage | undefined, withReaders: boolean): Subject[] {
    const subjects = new Map<string, Subject>();
    const add = (subject: Subject, resource: Resource, searchable: boolean) => {
      const key = slowKeyOf(subject);
      if (!subjects.has(key) && !coverage?.covers(key, resource, searchable))
        subjects.set(key, { mappingId: subject.mappingId, subjectRef: subject.subjectRef });
    };
    const shared = new Map<string, number>();
    for (const resource of resources) {
      for (const subject of this.deps.mappings.subjectsFor(resource)) add(subject, resource, subject.searchable);
      if (!withReaders || typeof resource.id !== 'string') continue;
      const version = resource.meta?.versionId ?? resource.meta?.lastUpdated;
      for (const row of this.contextReadersOf(`${resource.resourceType}/${resource.id}`, shared, version)) {
        const mappingId = this.readerMapping(row);
        if (mappingId) add({ mappingId, subjectRef: row.subjectKey }, resource, true);
      }
    }
    this.warnShared(shared);
    return [...subjects.values()];
  }

  /**
   * The rows whose last reading reached `ref` as context (Ledger.contextReaders), none when more than
   * maxContextReaders did: shared reference data, counted (onSharedRecord) and tallied by type in `shared`
   * for one warning a call (warnShared), once a `version` of the record: the same version seen again (a
   * poll's overlap, a notification then the poll after it) is no other change to warn of.
   */
  private contextReadersOf(ref: string, shared: Map<string, number>, version: string | undefined): ContextReader[] {
    const cap = this.contextReaderCap();
    // One more than the cap tells a shared record without reading all its readers.
    const readers = this.deps.ledger.contextReaders(this.deps.sourceId, ref, cap + 1);
    if (readers.length <= cap) return readers;
    const seen = `${ref} ${version ?? ''}`;
    if (this.sharedSeen.has(seen)) return [];
    setBounded(this.sharedSeen, seen, true, SHARED_SEEN);
    const type = ref.slice(0, ref.indexOf('/'));
    shared.set(type, (shared.get(type) ?? 0) + 1);
    this.deps.onSharedRecord?.(type);
    return [];
  }

  private contextReaderCap(): number {
    return Math.max(0, this.deps.maxContextReaders ?? MAX_CONTEXT_READERS);
  }

  private warnShared(shared: ReadonlyMap<string, number>): void {
    if (shared.size === 0) return;
    // Types and counts only: which record is personal data, as the rows are.
    this.log.warn(
      {
        records: Object.fromEntries(shared),
        maxReaders: this.contextReaderCap(),
      },
      'changed records read by more ledger rows than the bridge maps again for one change were taken as shared reference data: those rows were not mapped again (sync --once --since reads them again)',
    );
  }

  /**
   * The mapping a row that read a changed record is mapped again with: its own, if this source still loads
   * it, else the one of its event type for its subject's type; none when neither is loaded.
   */
  private readerMapping(row: { eventType: string; subjectKey: string; mappingId: string | null }): string | undefined {
    const { mappings } = this.deps;
    const own = row.mappingId ? mappings.get(row.mappingId) : undefined;
    if (own) return own.id;
    const type = row.subjectKey.slice(0, row.subjectKey.indexOf('/'));
    return mappings.mappings.find((m) => m.eventType === row.eventType && m.subjectType === type)?.id;
  }

  /** One lane of `run`: evaluates its subjects one after the other until none is left or the run ends. */
  private async lane(run: EvaluationRun): Promise<void> {
    for (let taken = run.take(); taken; taken = run.take()) {
      // Mapping from a warm cache never leaves the microtask queue; yielding to I/O between subjects
      // keeps the receiver's acknowledgements (and health checks) prompt during a large batch. Not a bare
      // setImmediate: the lanes resume in one check phase, and a batch of 50 was mapped there back to back
      // (util/turn-budget.ts).
      await this.turns.turn();
      // Stopped by another lane while this one yielded.
      const stop = run.stop();
      if (stop) {
        run.notRead(taken.index, taken.subject.subjectRef, stop);
        break;
      }
      await this.evaluateSubject(run, taken.index, taken.subject);
    }
  }

  /**
   * One subject of `run`: read and mapped (readSubject), or, when its reads got no answer in time (now, or
   * through this fetcher before: another resource type's page of the pass, not waited out again), held for
   * the slow-record rule or failed (holdTimeout).
   */
  private async evaluateSubject(run: EvaluationRun, index: number, subject: Subject): Promise<void> {
    const slow = this.slow.get(slowKeyOf(subject));
    const judged = slow?.fetcher === run.fetcherId;
    const earlier = judged ? slow.error : undefined;
    const timeout = earlier ?? (await this.readSubject(run, index, subject, slow !== undefined));
    if (timeout) this.holdTimeout(run, index, subject, timeout, judged);
  }

  /**
   * Maps `subject` through the run's fetcher and keeps what came of it in `run`: its result; a dead result
   * when the source will not serve the record (see unreadable); else a failure of the subject (partial) or
   * of the evaluation (thrown). Returns the error instead when the reads got no answer in time.
   */
  private async readSubject(
    run: EvaluationRun,
    index: number,
    subject: Subject,
    hadStrikes: boolean,
  ): Promise<ContextReadError | undefined> {
    const { mappingId, subjectRef } = subject;
    try {
      const recording = run.coverage?.recording(slowKeyOf(subject), run.fetcher);
      // Paced: a lane resumed by a read's answer maps on only within the turn's budget (util/turn-budget.ts).
      const reading = paced(recording?.fetcher ?? run.fetcher, this.turns);
      const { result, excluded, noEvidence, contextReads } = await this.deps.mappings.mapSubjectDetailed(
        mappingId,
        subjectRef,
        run.partial ? untilStopped(reading, () => run.stop()) : reading,
        run.options,
      );
      recording?.done();
      run.read(index, {
        result,
        excluded: excluded === true,
        noEvidence: noEvidence === true,
        ...(contextReads ? { contextReads } : {}),
      });
      run.answered.add(subjectRef);
      if (hadStrikes) {
        this.slow.delete(slowKeyOf(subject));
        run.readInTime.push(subject);
      }
      return undefined;
    } catch (err) {
      const stop = run.stop();
      if (stop && err instanceof ContextReadError && err.cause instanceof NotReadStopped) {
        run.notRead(index, subjectRef, stop);
        return undefined;
      }
      if (err instanceof ContextReadError && noAnswerInTime(err.cause)) return err;
      const unreadable = await this.unreadable(err, mappingId, subjectRef, run.probes);
      // The source answered the probe: this record is what it will not serve.
      if (unreadable) run.read(index, { result: unreadable, excluded: false, noEvidence: false });
      // The source's own error, as before context reads were named: callers look at its kind.
      else run.fail(index, subjectRef, err instanceof ContextReadError ? err.cause : err);
      return undefined;
    }
  }

  /**
   * A subject whose reads got no answer in time: held until the others are read, for slowRecords to judge;
   * more than one in SLOW_RECORD_SHARE, and it is the source that is slow, so it fails as any failed read.
   * One judged through this fetcher already (an earlier page of the pass) is held whatever this page's
   * size: slowRecords gives it the same outcome as there.
   */
  private holdTimeout(
    run: EvaluationRun,
    index: number,
    { mappingId, subjectRef }: Subject,
    timeout: ContextReadError,
    judged: boolean,
  ): void {
    if (this.deps.probe && (judged || run.slowRefs.has(subjectRef) || run.slowRefs.size < run.maxSlowRefs)) {
      run.slowRefs.add(subjectRef);
      run.timedOut.push({ index, mappingId, subjectRef, error: timeout });
      return;
    }
    run.fail(index, subjectRef, timeout.cause);
  }

  /**
   * Once the lanes are done: the subjects held for the slow-record rule, dead or failed (slowRecords), into
   * `run`; a failure fails a whole evaluation that is not partial.
   */
  private async judgeTimedOut(run: EvaluationRun): Promise<void> {
    const { timedOut, answered } = run;
    for (const subjectRef of run.slowRefs) answered.delete(subjectRef); // one of its mappings read, not all
    // Stopped, the source did not answer the others: a timeout held is no record's strike (as in a pass the
    // source's failure fails before it is judged), only a failed read.
    const slow = run.stop()
      ? { dead: [], failed: { items: timedOut, error: timedOut[0]?.error.cause } }
      : await this.slowRecords(timedOut, answered.size, run.fetcherId, run.probes);
    if (slow.failed && !run.partial) throw slow.failed.error;
    for (const { index, result } of slow.dead) run.read(index, { result, excluded: false, noEvidence: false });
    for (const { index, subjectRef, error } of slow.failed?.items ?? [])
      run.failures.push({ index, subjectRef, error: error.cause });
  }

  /**
   * A subject whose context could not be read because of that one record, not the source: the result
   * that keeps it in the ledger (a dead row, replayable, naming what could not be read), or undefined
   * when the failure concerns the source (it fails the evaluation, so the caller's pass, as before).
   *
   * Before, any failed read failed the page, so one related record the source will not serve (a mother
   * DHIS2 answers 403 for, outside the user's search scope; a corrupt record it answers 500 for after
   * every retry) stopped the watermark there and every later birth of the source behind it, with a message
   * naming no record. A failure that may concern one record (mayConcernOneRecord) counts as that record's
   * only once the source answers a probe made the same way (the subject itself, read as the failed read
   * was): a source that is down, or refuses every such read, fails that too.
   */
  private async unreadable(
    err: unknown,
    mappingId: string,
    subjectRef: string,
    probes: Map<string, Promise<boolean>>,
  ): Promise<MapResult | undefined> {
    const mapping = this.deps.mappings.get(mappingId);
    if (!mapping || !(err instanceof ContextReadError) || !mayConcernOneRecord(err.cause)) return undefined;
    if (!(await this.answersProbe(err, subjectRef, probes))) return undefined;
    return unservedResult(
      { mappingId, eventType: mapping.eventType },
      subjectRef,
      err.ofSubject ? 'subject' : 'context',
      `${err.message}; the source answers otherwise, so only this record waits: replay it once the source serves ${err.ref}`,
    );
  }

  /**
   * The source answers the probe made the way `err`'s read went (the subject itself, or the source when
   * the subject was what failed): asked once per evaluation. False without a probe.
   */
  private answersProbe(
    err: ContextReadError,
    subjectRef: string,
    probes: Map<string, Promise<boolean>>,
  ): Promise<boolean> {
    const { probe } = this.deps;
    if (!probe) return Promise.resolve(false);
    const key = err.ofSubject ? '' : subjectRef;
    let answered = probes.get(key);
    if (!answered) {
      answered = probe(err.ofSubject ? undefined : subjectRef).then(
        () => true,
        () => false,
      );
      probes.set(key, answered);
    }
    return answered;
  }

  /**
   * The subjects whose context reads got no answer in time (every try of the client), now that the
   * evaluation's other subjects are read: dead results for those that are slow records, and those that
   * are not (yet), `failed`, with the error (the first one's source error, as any failed read) that fails
   * the evaluation, so the caller's pass (a `partial` evaluation fails those subjects only).
   *
   * Before, such a timeout always counted as the source's: a patient with a history too large to search
   * within sources[].timeoutMs failed its page on every pass, and the watermark never moved past it, so no
   * birth behind it was delivered. A timeout counts as that record's only when the source answered the
   * other records of the evaluation (at least SLOW_RECORD_SHARE - 1 for each one that timed out, so at most
   * one in SLOW_RECORD_SHARE timed out and a small evaluation gives no strike: a source slow for everything
   * fails the pass as before, and no record turns dead for it), answers the probe made the way the read
   * went, and the record has timed out so in SLOW_RECORD_STRIKES separate evaluations, each at least
   * SLOW_RECORD_STRIKE_GAP_MS after the last that counted (a busy moment of the EMR is not enough). Until
   * then its page fails as before.
   */
  private async slowRecords(
    timedOut: TimedOut[],
    /** Other records of the evaluation read in full. */
    answered: number,
    fetcherId: number,
    probes: Map<string, Promise<boolean>>,
  ): Promise<{ dead: Array<{ index: number; result: MapResult }>; failed?: { items: TimedOut[]; error: unknown } }> {
    // Those judged through this fetcher already (on an earlier page of the pass, whose other records the
    // pass does not evaluate again) are not judged again.
    const fresh = timedOut.filter((item) => this.slow.get(slowKeyOf(item))?.fetcher !== fetcherId);
    const [first] = fresh;
    const slowCount = new Set(timedOut.map((item) => item.subjectRef)).size;
    if (first && answered < (SLOW_RECORD_SHARE - 1) * slowCount)
      return { dead: [], failed: { items: timedOut, error: first.error.cause } };
    for (const { error, subjectRef } of fresh)
      if (!(await this.answersProbe(error, subjectRef, probes)))
        return { dead: [], failed: { items: timedOut, error: error.cause } };
    const dead: Array<{ index: number; result: MapResult }> = [];
    const waiting: TimedOut[] = [];
    const now = this.now();
    const wall = this.wallClock();
    const written: SlowRecordStrikes[] = [];
    const pushedOut: Array<{ mappingId: string; subjectRef: string }> = [];
    for (const item of timedOut) {
      const key = slowKeyOf(item);
      const kept = this.slow.get(key);
      // Struck longer ago than the ledger keeps strikes: counted from nothing, as after a restart.
      const known = kept && wall - kept.struckAt <= SLOW_RECORD_FORGET_MS ? kept : undefined;
      const counts = !known || strikeCounts(known, fetcherId, now, wall);
      const strikes = counts ? (known?.strikes ?? 0) + 1 : known.strikes;
      // A last strike later than the wall clock now (it was put back) is taken as now: the next one waits
      // the gap from here, not until the clock reaches it again.
      const struckAt = counts ? wall : Math.min(known.struckAt, wall);
      const struck = counts ? now : known.struck;
      const out = this.setSlow(key, {
        strikes,
        struckAt,
        ...(struck !== undefined ? { struck } : {}),
        fetcher: fetcherId,
        error: item.error,
      });
      if (out) pushedOut.push(out);
      if (strikes !== kept?.strikes || struckAt !== kept.struckAt)
        written.push({ mappingId: item.mappingId, subjectRef: item.subjectRef, strikes, struckAt });
      const mapping = this.deps.mappings.get(item.mappingId);
      if (strikes < SLOW_RECORD_STRIKES || !mapping) {
        waiting.push(item);
        continue;
      }
      const { error } = item;
      dead.push({
        index: item.index,
        result: unservedResult(
          { mappingId: item.mappingId, eventType: mapping.eventType },
          item.subjectRef,
          error.ofSubject ? 'subject' : 'context',
          `${error.message}; no answer in time in ${strikes} reads at least ${STRIKE_GAP_MINUTES} minutes apart while the source answered the other records, so only this record waits: replay it once the source answers ${error.ref} in time`,
        ),
      });
    }
    this.deps.ledger.slowRecords.write(this.deps.sourceId, written, pushedOut);
    const [firstWaiting] = waiting;
    if (!firstWaiting) return { dead };
    // Counts only: which record is not for the log.
    this.log.warn(
      { records: slowCount, strikesBeforeDead: SLOW_RECORD_STRIKES, minutesBetweenStrikes: STRIKE_GAP_MINUTES },
      'the source answered the other records, but not the context reads of these in time: they are read again; a record that times out so in several reads is kept as a dead row so the others go on',
    );
    return { dead, failed: { items: waiting, error: firstWaiting.error.cause } };
  }

  /**
   * Reads this source's strikes from the ledger once, at the first evaluation: those a process before this
   * one counted (a restart, the last `sync --once`). Old ones, and those beyond the bound, are forgotten.
   */
  private loadSlow(): void {
    if (this.slowLoaded) return;
    const wall = this.wallClock();
    const kept = this.deps.ledger.slowRecords.load(this.deps.sourceId, {
      before: wall - SLOW_RECORD_FORGET_MS,
      after: wall + SLOW_RECORD_FORGET_MS,
      keep: MAX_SLOW_RECORDS,
    });
    this.slowLoaded = true;
    // Oldest strike first: the first out when the map is full. No `struck`: another process counted them.
    for (const { mappingId, subjectRef, strikes, struckAt } of kept)
      this.slow.set(slowKeyOf({ mappingId, subjectRef }), { strikes, struckAt });
  }

  /** Sets a subject's strikes as the newest; returns the subject pushed out for it, if the map was full. */
  private setSlow(key: string, record: SlowRecord): { mappingId: string; subjectRef: string } | undefined {
    const out = setBounded(this.slow, key, record, MAX_SLOW_RECORDS);
    return out === undefined ? undefined : slowSubjectOf(out);
  }

  /**
   * Forgets in the ledger the strikes of subjects read in time (gone from `slow` already), unless another
   * evaluation struck them again meanwhile.
   */
  private forgetSlow(subjects: Array<{ mappingId: string; subjectRef: string }>): void {
    const gone = subjects.filter((subject) => !this.slow.has(slowKeyOf(subject)));
    if (gone.length > 0) this.deps.ledger.slowRecords.write(this.deps.sourceId, [], gone);
  }

  /** A number for `fetcher` (an evaluation session): timeouts through one count once (see slowRecords). */
  private fetcherId(fetcher: ResourceFetcher): number {
    let id = this.fetcherIds.get(fetcher);
    if (id === undefined) {
      id = ++this.fetchers;
      this.fetcherIds.set(fetcher, id);
    }
    return id;
  }

  /**
   * Results that keep the unsent rows of `subjectRef` dead as a record the source will not serve, as
   * `evaluate` keeps one whose read failed for that record alone (error kind `source-read`, replayable,
   * the reason naming the subject): for a source that can tell the record is not shown to it but not
   * whether it was withdrawn (DHIS2's 404 or 403 to a read in the programme, dhis2/recheck.ts), where
   * sending what was recorded and withdrawing it are both wrong. To `commit`, with the evaluation's other
   * results, through `fetcher`'s session. A delivered row stands; none unsent, none.
   */
  unserved(subjectRef: string, reason: string, fetcher: ResourceFetcher): Evaluation[] {
    const session = this.readings.get(fetcher);
    return this.unsent(subjectRef)
      .filter((row) => row.subjectKey === subjectRef && row.state !== 'delivering')
      .map((row) => ({
        result: unservedResult(
          {
            mappingId:
              row.mappingId ?? this.deps.mappings.mappings.find((m) => m.eventType === row.eventType)?.id ?? '',
            eventType: row.eventType,
          },
          subjectRef,
          'subject',
          `${subjectRef} (the subject) could not be read: ${reason}`,
        ),
        excluded: false,
        session,
      }));
  }

  /** This source's rows naming `ref` (as subject or source resource) not delivered yet, in flight included. */
  private unsent(ref: string): LedgerRow[] {
    const { ledger, sourceId } = this.deps;
    return ledger.list({ sourceId, find: ref, states: ['pending', 'failed', 'dead', 'delivering'] });
  }

  /**
   * The source deleted `ref` (a delete notification, its absence confirmed by a read). A row of which it
   * was the subject and that was not sent yet is withdrawn; a delivered one stands (OpenCRVS has the
   * event). Returns the subjects to evaluate again, as they may be no event any more, or an event now:
   * those of unsent rows that named it as their source resource (the encounter that was the evidence,
   * say), and, given the resource's `lastVersion` (read from the source's history), every subject it
   * was about (a fetal-death report that kept a birth from being notified leaves no row naming it).
   * With `readers` (a notification, not a recheck: see evaluate), also those of the rows that read it as
   * context (the mother's Patient, the maternity encounter deleted: her children's births), as a change to
   * it maps them again (subjectsOf), under the same cap.
   */
  recordDeleted(
    ref: string,
    fetcher?: ResourceFetcher,
    lastVersion?: Resource,
    { readers = false }: { readers?: boolean } = {},
  ): string[] {
    const { ledger, sourceId } = this.deps;
    const session = fetcher && this.readings.get(fetcher);
    const overtaken = new Set<string>();
    // In flight too: the ledger marks such a row withdrawn and the worker settles it (record.ts).
    const unsent = this.unsent(ref);
    const recheck = new Set<string>();
    if (lastVersion)
      for (const { subjectRef } of this.deps.mappings.subjectsFor(lastVersion))
        if (subjectRef !== ref) recheck.add(subjectRef);
    if (readers) {
      const shared = new Map<string, number>();
      for (const row of this.contextReadersOf(ref, shared, 'deleted'))
        if (row.subjectKey !== ref) recheck.add(row.subjectKey);
      this.warnShared(shared);
    }
    const applied: string[] = [];
    ledger.transaction(() => {
      for (const row of unsent) {
        if (row.subjectKey === ref) {
          if (!this.inOrder(session, row.eventType, ref, overtaken)) continue;
          const input = { sourceId, eventType: row.eventType, subjectKey: row.subjectKey, sourceRef: row.sourceRef };
          ledger.cancelUnsent({ ...input, reason: 'deleted in the source before it was sent' });
          applied.push(subjectOf(row.eventType, ref));
        } else if (row.sourceRef === ref) {
          recheck.add(row.subjectKey);
        }
      }
    });
    if (session) {
      for (const subject of applied) this.order.commit(session, subject);
      // The deletion is this session's word on the record even where no row was cancelled (none yet): an
      // older evaluation that read it before must not record it now, as the record or as the evidence.
      const [type] = ref.split('/');
      for (const mapping of this.deps.mappings.mappings)
        if (mapping.subjectType === type) this.order.commit(session, subjectOf(mapping.eventType, ref));
      this.order.commit(session, deletedMark(ref));
      this.reread(session, overtaken);
    }
    return [...recheck];
  }

  /**
   * False when another evaluation committed this subject after this one began (evaluation-order.ts):
   * either may hold the older reads, so the subject goes into `overtaken`, to be read again instead.
   */
  private inOrder(
    session: EvaluationSession | undefined,
    eventType: string,
    subjectRef: string,
    overtaken: Set<string>,
  ): boolean {
    if (!session || !this.order.overtaken(session, subjectOf(eventType, subjectRef))) return true;
    overtaken.add(subjectRef);
    return false;
  }

  /**
   * The source whose ledger row records this result: this one, unless it has no row for the record and a
   * source reading the same records (sharesRecordsWith) has one.
   *
   * Transaction ids derive from (source, event type, subject). Two DHIS2 sources of one programme split by
   * district read one tracked entity each in turn when its enrollment moves from one district to the other
   * (a transfer after delivery, an ordinary tracker update): the second source saw a new record and sent it
   * again under ids of its own, a second registration in OpenCRVS, then wrote its tracking id over the
   * first in DHIS2. Recorded on the first source's row instead, the record keeps one event and one
   * tracking id: delivered, the new version is an update after notification (never sent), with the source
   * that read it noted on the row (read_by_source); not yet sent, it replaces the payload, so it goes out
   * once, routed where the record is now; dead, it requeues the row. The write-back stays the first
   * source's job, under its settings. Chosen over sharing transaction ids between two rows: one row per
   * record keeps "what happened to this birth" in one place, and no second row can write back.
   */
  private ownerOf(result: MapResult): string {
    const { sharesRecordsWith: others, sourceId, ledger } = this.deps;
    if (!others?.length || !result.eventType || !result.subjectRef) return sourceId;
    return ledger.ownerOf(sourceId, others, result.eventType, result.subjectRef) ?? sourceId;
  }

  /**
   * Why a mapped event is not notified, being dated before the source's go-live (go-live.ts), or undefined;
   * an invalid one too, which would otherwise be a dead row to alert on for a birth registered otherwise.
   * For a record the ledger holds no row for, and for one whose row never had a notification reach
   * OpenCRVS (notifiedRow): a dead row (a year-month birth date, completed later), one excluded at first
   * (an inactive record reactivated), dismissed or withdrawn, would otherwise go out as a new birth when
   * its record changed. A row OpenCRVS holds anything of keeps its course: a birth notified before the
   * go-live was moved later is still an update after notification when its record changes, not a skip that
   * would hide the OpenCRVS event it has.
   */
  private beforeGoLive(
    owner: string,
    result: Exclude<MapResult, { status: 'skipped' }>,
    goLiveOf: () => string | undefined,
  ): { skip: string } | { dead: string } | undefined {
    // Asked only for an event that may be before it.
    const undated = result.eventDate === undefined;
    if (!this.deps.goLive || (undated && !(result.status === 'mapped' && result.eventType === 'death')))
      return undefined;
    const goLive = goLiveOf();
    const skip = beforeGoLive(result, goLive);
    // Only a mapped death: an invalid one is a dead row already, with its own errors.
    const dead = result.status === 'mapped' ? undatedDeath(result, goLive) : undefined;
    if (!skip && !dead) return undefined;
    const row = this.deps.ledger.findByKey(owner, result.eventType, result.subjectRef);
    if (row && this.notifiedRow(row)) return undefined;
    return skip ? { skip } : dead ? { dead } : undefined;
  }

  /**
   * Whether a notification of the row may have reached OpenCRVS: delivered, being sent, with an OpenCRVS
   * event, or with any NOTIFY (or single call) ever sent, whatever came of it (a NOTIFY in doubt, or a
   * rejected one OpenCRVS keeps). Such a row is never skipped by the go-live: that could say "not sent" of
   * a registration OpenCRVS holds. One refused before OpenCRVS stored anything keeps its course too.
   */
  private notifiedRow(row: LedgerRow): boolean {
    return (
      row.eventId !== null ||
      row.state === 'delivered' ||
      row.state === 'delivered-pending' ||
      row.state === 'delivering' ||
      this.deps.ledger.notifySentSince(row.id, 'ever')
    );
  }

  /**
   * Records `result` as a dead row with `errors` (an invalid reading, or an undated death: beforeGoLive),
   * `unreadable` as a source read's failure. The same dead row again is no change of this pass (sync lists
   * it among the earlier ones).
   */
  private recordDead(
    owner: string,
    result: Exclude<MapResult, { status: 'skipped' }>,
    errors: Array<{ field: string; message: string }>,
    contextReads: Evaluation['contextReads'],
    report: PassReport,
    unreadable = false,
  ): void {
    const { row, changed } = this.deps.ledger.recordInvalid({
      sourceId: owner,
      eventType: result.eventType,
      subjectKey: result.subjectRef,
      sourceRef: result.sourceRef,
      mappingId: result.mappingId,
      errors,
      ...(unreadable ? { kind: 'source-read' as const } : {}),
      ...(result.sourceFingerprint ? { sourceFingerprint: result.sourceFingerprint } : {}),
      ...(result.ownOnlyFingerprint ? { ownOnlyFingerprint: result.ownOnlyFingerprint } : {}),
      ...(contextReads ? { contextReads, contextReadBy: this.deps.sourceId } : {}),
    });
    report.invalid++;
    if (changed) report.ledgerIds.push(row.id);
  }

  /**
   * Records results (and the cursor, if given) in one transaction. `reconciled`: the results came
   * from a subscription hint of a source that also polls, so a commit lost to a power cut is redone by
   * the next poll (under the same transactionIds): it skips the fsync that would stall the event loop
   * answering senders. A commit that moves a cursor is always durable.
   */
  commit(
    results: Evaluation[],
    cursor?: { name: string; value: string },
    options?: { reconciled?: boolean },
  ): PassReport {
    const report = emptyReport();
    const { ledger, sourceId } = this.deps;
    const committed: Array<{ session: EvaluationSession; subject: string }> = [];
    const overtaken = new Map<Reading, Set<string>>();
    ledger.transaction(
      () => {
        // The go-live's date, once per commit at the first result that needs it: sinceDays keeps its start
        // in the ledger, so each asking is a read and, with a timeZone, a date formatted in that zone (20 to
        // 45 µs a record, in the write transaction); nothing can move it while the transaction runs.
        let goLive: { date: string | undefined } | undefined;
        const goLiveOf = () => {
          goLive ??= { date: goLiveDate(this.deps.goLive?.(), this.deps.timeZone) };
          return goLive.date;
        };
        for (const { result, excluded, noEvidence, session, contextReads } of results) {
          const owner = this.ownerOf(result);
          // Every outcome for a subject counts, a non-match too: it may be what withdrew a row.
          if (session && result.eventType && result.subjectRef) {
            if (this.overtakenResult(session, result)) {
              overtaken.set(session, (overtaken.get(session) ?? new Set<string>()).add(result.subjectRef));
              continue;
            }
            committed.push({ session, subject: subjectOf(result.eventType, result.subjectRef) });
          }
          const beforeGoLive = result.status === 'skipped' ? undefined : this.beforeGoLive(owner, result, goLiveOf);
          if (result.status !== 'skipped' && beforeGoLive && 'skip' in beforeGoLive) {
            const { row, changed } = ledger.recordSkipped({
              sourceId: owner,
              eventType: result.eventType,
              subjectKey: result.subjectRef,
              sourceRef: result.sourceRef,
              reason: beforeGoLive.skip,
            });
            report.skipped++;
            if (changed) report.ledgerIds.push(row.id);
          } else if (result.status === 'mapped' && beforeGoLive && 'dead' in beforeGoLive) {
            // Kept, with the reason, where an engineer looks for a death that did not arrive (undatedDeath).
            const errors = [{ field: 'eventDetails.date', message: beforeGoLive.dead }];
            this.recordDead(owner, result, errors, contextReads, report);
          } else if (result.status === 'mapped') {
            const office = result.routing.office;
            if (!office) {
              // mapSubject reports a missing office as invalid; this guards the contract.
              report.invalid++;
              continue;
            }
            const { row, change, skippedFor } = ledger.recordEvent({
              sourceId: owner,
              eventType: result.eventType,
              subjectKey: result.subjectRef,
              sourceRef: result.sourceRef,
              sourceVersion: result.sourceVersion,
              mappingId: result.mappingId,
              payloadHash: result.payloadHash,
              ...(result.sourceFingerprint ? { sourceFingerprint: result.sourceFingerprint } : {}),
              ...(result.ownOnlyFingerprint ? { ownOnlyFingerprint: result.ownOnlyFingerprint } : {}),
              ...(contextReads ? { contextReads, contextReadBy: sourceId } : {}),
              payload: {
                declaration: result.declaration,
                office,
                facility: result.routing.facility,
                ...(result.routing.officeFromRecord ? { officeFromRecord: true as const } : {}),
                ...(result.routing.facilityUnchecked ? { facilityUnchecked: result.routing.facilityUnchecked } : {}),
                ...(result.routing.officeUnchecked ? { officeUnchecked: result.routing.officeUnchecked } : {}),
              },
            });
            report.mapped[change]++;
            // A row skipped as before the go-live that goes out now because the go-live was moved earlier (or
            // removed): counted and said, as a rollback's sends must not pass unseen (deployment.md). Not one
            // whose own date was corrected: the go-live it was skipped against is still the source's. The row
            // as it was comes with the recording (skippedFor), not from a read of its own per record.
            if (row.state === 'pending' && skippedFor !== undefined) {
              const skippedAgainst = skippedBeforeGoLive(skippedFor);
              const now = skippedAgainst === undefined ? undefined : goLiveOf();
              if (skippedAgainst !== undefined && (now === undefined || now < skippedAgainst)) report.goLiveSkipsSent++;
            }
            if (change !== 'unchanged') report.ledgerIds.push(row.id);
            // Said on the row, where an engineer asking "why updated after notification?" looks.
            if (owner !== sourceId) ledger.noteReadBy(row.id, sourceId);
            // Kept with the row: "left out, with a warning" must be visible after a dry run too.
            // (A new row starts with none: no write for the usual record without warnings.)
            if ((change === 'inserted' && result.warnings.length > 0) || change === 'replaced')
              ledger.setMappingWarnings(row.id, result.warnings);
          } else if (result.status === 'invalid') {
            this.recordDead(owner, result, result.errors, contextReads, report, result.unreadable === true);
          } else if (result.eventType && result.subjectRef && (excluded || noEvidence)) {
            const key = {
              sourceId: owner,
              eventType: result.eventType,
              subjectKey: result.subjectRef,
              sourceRef: result.subjectRef,
            };
            // An exclusion is kept visible ("why was this stillbirth not notified?"). A plain non-match
            // leaves no row, but withdraws one recorded earlier and not sent yet: the EMR removed the
            // evidence (an encounter entered in error, say) before delivery.
            // A row goes into the pass's list only when this commit wrote it: a stillbirth read again by
            // every poll (its record unchanged) is no news of each pass.
            let written: LedgerRow | undefined;
            if (excluded) {
              const { row, changed } = ledger.recordSkipped({ ...key, reason: result.reason });
              report.skipped++;
              if (changed) written = row;
            } else {
              written = ledger.cancelUnsent({ ...key, reason: `no longer notifiable: ${result.reason}` });
              if (written) report.skipped++;
            }
            if (written) report.ledgerIds.push(written.id);
          }
        }
        if (cursor) ledger.setCursor(sourceId, cursor.name, cursor.value);
      },
      { reconciled: options?.reconciled === true && !cursor },
    );
    for (const { session, subject } of committed) this.order.commit(session, subject);
    for (const [reading, subjects] of overtaken) this.reread(reading, subjects);
    report.subjects = results.length;
    if (report.invalid > 0) this.log.warn({ invalid: report.invalid }, 'records could not be mapped; see the ledger');
    if (report.goLiveSkipsSent > 0)
      this.log.warn(
        { goLiveSkipsSent: report.goLiveSkipsSent },
        "rows skipped as before the source's go-live are queued to be sent now: the go-live (poll.since) was moved earlier or removed; if that was not meant, set it back at once (docs/runbook.md, Go-live moved earlier)",
      );
    return report;
  }
}

/** A dead row for a record the source would not serve (see `unreadable`, `unserved`): kept as `source-read`. */
function unservedResult(
  mapping: { mappingId: string; eventType: string },
  subjectRef: string,
  field: string,
  message: string,
): MapResult {
  return {
    status: 'invalid',
    ...mapping,
    subjectRef,
    sourceRef: subjectRef,
    errors: [{ field, message }],
    unreadable: true,
  };
}

/** A call the bridge ended itself (SourceCallError.cutOff): no answer of the source's. */
function cutOffByBridge(error: unknown): boolean {
  return error instanceof SourceCallError && error.cutOff;
}

/**
 * What the failure of a partial evaluation's subject (the source's own error) says of the source: 'source'
 * when it is the problem whatever the record (a page that is not the source's, a call the bridge cut off as
 * it stops, a refused credential), which stops the evaluation at once; 'every-call' when it may be (no
 * answer: a network error or a timeout not held as a slow record's; a 408, a 429, a 5xx), which stops it
 * at PARTIAL_STOP_AFTER in a row. Undefined for a failure that may concern one record (a 403, a 404, a
 * 400, an id that is no id of the source) and for an error that is not the source's: they stop nothing.
 */
function sourceFailure(error: unknown): 'source' | 'every-call' | undefined {
  if (!(error instanceof SourceCallError) || error.badId) return undefined;
  if (error.foreign || error.cutOff || error.status === 401 || error.status === 407) return 'source';
  const { status } = error;
  return status === undefined || status === 408 || status === 429 || status >= 500 ? 'every-call' : undefined;
}

/** A read a partial evaluation did not ask once it stopped (untilStopped): its subject fails with the stop. */
class NotReadStopped extends Error {
  override readonly name = 'NotReadStopped';
  constructor() {
    super('not read: the evaluation stopped for the source');
  }
}

/**
 * `fetcher`, asking nothing more of the source once the evaluation stopped: with the default 64 lanes, a
 * recheck's subjects are all started at once, and each goes on to its next context read (the mother, the
 * encounters) after its first, so stopping new subjects alone would leave those reads to wait out the
 * client's tries too.
 */
function untilStopped(fetcher: ResourceFetcher, stopped: () => unknown): ResourceFetcher {
  const refused = () => Promise.reject(new NotReadStopped());
  return {
    read: (type, id) => (stopped() ? refused() : fetcher.read(type, id)),
    search: (type, params) => (stopped() ? refused() : fetcher.search(type, params)),
    resolveAbsolute: (ref) => fetcher.resolveAbsolute?.(ref),
    otherServerHint: fetcher.otherServerHint,
  };
}

/** `fetcher`, its answers handed on within `turns`' budget: one answer can resume many lanes at once. */
function paced(fetcher: ResourceFetcher, turns: TurnBudget): ResourceFetcher {
  const within = async <T>(answer: Promise<T>): Promise<T> => {
    const value = await answer;
    await turns.pass();
    return value;
  };
  return {
    read: (type, id) => within(fetcher.read(type, id)),
    search: (type, params) => within(fetcher.search(type, params)),
    resolveAbsolute: (ref) => fetcher.resolveAbsolute?.(ref),
    otherServerHint: fetcher.otherServerHint,
  };
}

/** A subject as `slow` keys it: as PassCoverage does, one mapping of one record. */
function slowKeyOf(subject: { mappingId: string; subjectRef: string }): string {
  return `${subject.mappingId}\n${subject.subjectRef}`;
}

function slowSubjectOf(key: string): { mappingId: string; subjectRef: string } {
  const at = key.indexOf('\n');
  return { mappingId: key.slice(0, at), subjectRef: key.slice(at + 1) };
}

/**
 * Whether a record's timeout in the evaluation through `fetcherId` counts as a strike after `known`, its
 * last one: not through the same evaluation, and only SLOW_RECORD_STRIKE_GAP_MS or more after it.
 *
 * The clocks. Within one process the gap is measured on `now`, the monotonic clock: a wall clock put
 * forward (an NTP step, an operator fixing the time) does not count a strike sooner than the rule allows.
 * The ledger keeps the wall clock, the one clock that spans processes, so a strike a process before this
 * one counted (a restart, the last `sync --once`) is measured on it alone: accepted, as the alternative is
 * no strike across processes at all, and at most the strike after a restart comes early by as much as the
 * clock was put forward while the bridge was down. Both are asked wherever both are known: never two strikes
 * sooner than the gap by either. A wall clock put back makes the next strike wait, at most the gap after
 * that (slowRecords takes a last strike "in the future" as now), never less.
 */
function strikeCounts(known: SlowRecord, fetcherId: number, now: number, wall: number): boolean {
  if (known.fetcher === fetcherId) return false;
  if (known.struck !== undefined && now - known.struck < SLOW_RECORD_STRIKE_GAP_MS) return false;
  return wall - known.struckAt >= SLOW_RECORD_STRIKE_GAP_MS;
}

/** The order's entry for a deleted resource (evaluation-order.ts): results it was the evidence of wait. */
function deletedMark(ref: string): string {
  return `deleted\n${ref}`;
}

/** A subject as the ledger keys its rows: one event type of one record. */
function subjectOf(eventType: string, subjectRef: string): string {
  return `${eventType}\n${subjectRef}`;
}
