// The write-back worker: delivery outcomes with a tracking id become jobs (write_backs table), a timer loop
// runs due jobs against the source's target with its own retry budget and backoff. It never touches the
// ledger row: a source that refuses the write leaves the event delivered, with the job's error visible.
import { MAX_TIMER_MS } from '../../config/limits.js';
import type { WriteBackSettings } from '../../config/types.js';
import type { Ledger } from '../../ledger/index.js';
import type { Logger } from '../../observability/logger.js';
import { RepeatedFailure } from '../../observability/repeated-failure.js';
import { callSignal } from '../../util/call-signal.js';
import { lastReaderFirst } from '../shared/last-reader.js';
import { writeBackDelay } from './policy.js';
import { type WriteBackItem, WriteBackStore } from './store.js';
import {
  WriteBackError,
  type WriteBackJob,
  type WriteBackTarget,
  withoutReferences,
  writeBackErrorKind,
} from './types.js';

export interface WriteBackSource {
  sourceId: string;
  settings: WriteBackSettings;
  target: WriteBackTarget;
  /**
   * Other sources reading the same records (DHIS2 sources of one server and programme, split by org unit:
   * sources/overlap.ts sourcesSharingRecords). A row's write-back that its own source's user is not shown
   * goes through theirs (see writeThrough).
   */
  sharesRecordsWith?: readonly string[];
}

/** The part of a delivery outcome (src/delivery DeliveryOutcome) a write-back needs. */
export interface DeliveredOutcome {
  type: string;
  row?: { id: number; sourceId: string; trackingId: string | null };
}

export interface WriteBackRunnerDeps {
  ledger: Ledger;
  sources: WriteBackSource[];
  logger: Logger;
  now?: () => number;
  random?: () => number;
  /** How often due jobs are looked for (default 1000 ms). */
  pollIntervalMs?: number;
  /** Jobs run at once per tick (default 4): write-backs are a trickle next to deliveries. */
  batchSize?: number;
  /** How long a claimed job is leased before another claim may retry it (default 120 s). */
  leaseMs?: number;
  /** Jobs one run claims at most (default 5000); the rest wait for the next run. */
  maxJobsPerRun?: number;
  /**
   * A job of this source was abandoned by this runner (its outcome recorded; not when its claim was taken
   * over). serve's bridge_write_backs_abandoned_total: the state gauge goes down with a re-queue. Must not throw.
   */
  onAbandoned?: (sourceId: string) => void;
}

/** A job a run tried and that failed: ledger row, source, its error (the call, the status, codes: no personal data). */
export interface WriteBackFailure {
  rowId: number;
  sourceId: string;
  /** `failing`: tried again after its backoff; `abandoned`: refused for good, or out of attempts. */
  state: 'failing' | 'abandoned';
  /** Attempts made so far, this one included. */
  attempts: number;
  error: string;
}

/** What one run did with the jobs it claimed (the summary of `sync --once`). */
export interface WriteBackRunReport {
  /**
   * Jobs claimed whose outcome the run recorded: the sum of the five counts below. A job whose claim was
   * taken over before its write ended (see WriteBackClaim) is left to the newer claim and not counted.
   */
  tried: number;
  written: number;
  /** The source held the tracking id already. */
  already: number;
  failing: number;
  abandoned: number;
  /** Cut off by the bridge (its stop, the pass's deadline): handed back uncounted, run again later. */
  cutOff: number;
  /** The failing and abandoned jobs, as many as the run tried at most. */
  failures: WriteBackFailure[];
}

function emptyRunReport(): WriteBackRunReport {
  return { tried: 0, written: 0, already: 0, failing: 0, abandoned: 0, cutOff: 0, failures: [] };
}

/** The event types of one person whose tracking ids may share a record (see otherEvents). */
const OTHER_EVENT_TYPES = ['birth', 'death'];
const ENABLED_META = (sourceId: string) => `writeBack.enabledAt:${sourceId}`;
/** Jobs created per source by one catch-up scan. */
const CATCH_UP_LIMIT = 1000;
/**
 * Jobs one run claims at most: a bulk import (hundreds of births delivered in one pass) is written back in
 * the same run, batch after batch, and a backlog after a long outage still ends a run now and then (the
 * next tick or pass goes on with it).
 */
const MAX_JOBS_PER_RUN = 5000;

export class WriteBackRunner {
  readonly store: WriteBackStore;
  private readonly log: Logger;
  private readonly sources = new Map<string, WriteBackSource>();
  private readonly now: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<WriteBackRunReport> | undefined;
  private stopped = false;
  /** Fired by stop(): the writes in flight are cut off, and handed back uncounted (see run). */
  private readonly stopping = new AbortController();
  /** A full disk fails every tick: logged at once, then once a minute with the count. */
  private readonly tickFailures: RepeatedFailure;

  constructor(private readonly deps: WriteBackRunnerDeps) {
    this.store = new WriteBackStore(deps.ledger.path);
    this.log = deps.logger.child({ component: 'write-back' });
    this.now = deps.now ?? Date.now;
    this.tickFailures = new RepeatedFailure(this.log, 'write-back tick failed', { level: 'error', now: this.now });
    this.random = deps.random ?? Math.random;
    for (const source of deps.sources) this.sources.set(source.sourceId, source);
    // Remember when write-back was first enabled per source: the catch-up scan looks no further back, so
    // enabling it does not write to every record ever delivered.
    for (const source of deps.sources) {
      if (!deps.ledger.getMeta(ENABLED_META(source.sourceId)))
        deps.ledger.setMeta(ENABLED_META(source.sourceId), String(this.now()));
    }
  }

  /**
   * The delivery outcome listener (Bridge.onDeliveryOutcome): must not throw. Only an accepted NOTIFY is
   * written back: one answered pending may still be rejected by the country configuration, and the EMR
   * would then show a tracking id for a notification no registrar sees. Its acceptance, learned later,
   * comes here as `delivered` too.
   */
  onOutcome(outcome: DeliveredOutcome): void {
    const row = outcome.row;
    if (outcome.type !== 'delivered' || !row?.trackingId) return;
    if (!this.sources.has(row.sourceId)) return;
    try {
      if (this.store.enqueue(row.id, row.sourceId, row.trackingId, this.now())) this.wake();
    } catch (err) {
      // The catch-up scan at the next start finds the row again.
      this.log.error({ err, rowId: row.id }, 'write-back job could not be stored');
    }
  }

  /** The sources whose write-back is configured now (a job of any other source is abandoned when it runs). */
  sourceIds(): string[] {
    return [...this.sources.keys()];
  }

  /** An operator's retry of an abandoned job (see WriteBackStore.requeue); runs it soon when the loop runs. */
  requeue(rowId: number): boolean {
    const requeued = this.store.requeue(rowId, this.now());
    if (requeued) this.wake();
    return requeued;
  }

  /** Creates the jobs a crash between "delivered" and "job stored" lost. Returns how many. */
  catchUp(): number {
    let created = 0;
    for (const sourceId of this.sources.keys()) {
      const since = Number(this.deps.ledger.getMeta(ENABLED_META(sourceId)) ?? this.now());
      for (const { rowId, trackingId } of this.store.missing(sourceId, since, CATCH_UP_LIMIT)) {
        if (this.store.enqueue(rowId, sourceId, trackingId, this.now())) created++;
      }
    }
    if (created) this.log.info({ created }, 'write-back jobs recreated for delivered rows');
    return created;
  }

  start(): void {
    this.stopped = false;
    this.catchUp();
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.processDue()
        .then(
          () => this.tickFailures.recovered('write-back ticks run again'),
          (err: unknown) => this.tickFailures.failed(err),
        )
        .finally(() => this.schedule(this.deps.pollIntervalMs ?? 1000));
    }, delayMs);
    this.timer.unref();
  }

  private wake(): void {
    if (this.timer && !this.running) this.schedule(0);
  }

  /** Runs the jobs due now, batch after batch (up to maxJobsPerRun). Shared if already running. */
  processDue(): Promise<WriteBackRunReport> {
    return this.runOnce();
  }

  private runOnce(timeoutMs?: number): Promise<WriteBackRunReport> {
    this.running ??= this.batches(timeoutMs).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** `timeoutMs`: how long the run may take; at its end no job is claimed and the writes in flight are cut off. */
  private async batches(timeoutMs?: number): Promise<WriteBackRunReport> {
    if (timeoutMs !== undefined && timeoutMs <= 0) return emptyRunReport();
    // The run ends when the runner stops, or at its time limit (the rest of a sync pass's --timeout).
    const limit =
      timeoutMs === undefined ? undefined : callSignal(Math.min(timeoutMs, MAX_TIMER_MS), this.stopping.signal);
    const signal = limit?.signal ?? this.stopping.signal;
    try {
      return await this.claimAndRun(signal);
    } finally {
      limit?.done();
    }
  }

  private async claimAndRun(signal: AbortSignal): Promise<WriteBackRunReport> {
    const report = emptyRunReport();
    // The jobs due when the run starts, each at most once: a job that fails is due again only after
    // now + its backoff, later than this, so a run (a tick, the drain of `sync --once`) never spends a
    // job's retry budget on itself while the source is down. A 1 ms backoff used to abandon a job
    // within one drain.
    const dueBy = this.now();
    // Batch after batch while jobs are due, the run's time allows (the signal) and up to its bound.
    const batchSize = Math.max(1, this.deps.batchSize ?? 4);
    let left = Math.max(1, this.deps.maxJobsPerRun ?? MAX_JOBS_PER_RUN);
    while (left > 0 && !this.stopped && !signal.aborted) {
      const items = this.store.claimDue(Math.min(batchSize, left), this.now(), this.deps.leaseMs ?? 120_000, dueBy);
      if (items.length === 0) break;
      left -= items.length;
      await Promise.all(items.map((item) => this.run(item, signal, report)));
    }
    return report;
  }

  /**
   * Every job due now, each at most once (sync --once and tests): failures wait for their backoff, not
   * for this call. With `timeoutMs` (what is left of the pass's --timeout) no job is claimed after it,
   * and a write still in flight at it is cut off and handed back uncounted: the next pass runs it.
   */
  async drain(options: { timeoutMs?: number } = {}): Promise<WriteBackRunReport> {
    while (this.running) await this.running.catch(() => undefined);
    this.catchUp();
    return this.runOnce(options.timeoutMs);
  }

  private async run(item: WriteBackItem, signal: AbortSignal, report: WriteBackRunReport): Promise<void> {
    // The claim taken over meanwhile (its lease ran out, and another run or process claimed the job): the
    // job is the newer claim's to finish and report, this attempt's outcome is dropped.
    const lost = (result: string) => {
      this.log.warn(
        { rowId: item.rowId, source: item.sourceId, attempt: item.attempts, result },
        'write-back finished after its claim was taken over; result not recorded',
      );
    };
    const failed = (state: WriteBackFailure['state'], error: string) => {
      report.tried++;
      report[state]++;
      report.failures.push({
        rowId: item.rowId,
        sourceId: item.sourceId,
        state,
        attempts: item.attempts,
        error: error.slice(0, 500),
      });
      if (state === 'abandoned') this.deps.onAbandoned?.(item.sourceId);
    };
    const source = this.sources.get(item.sourceId);
    const row = this.deps.ledger.get(item.rowId);
    if (!source || !row) {
      const error = source ? 'ledger row not found' : 'write-back no longer configured';
      if (!this.store.done(item, 'abandoned', this.now(), error)) return lost('abandoned');
      failed('abandoned', error);
      return;
    }
    const job: WriteBackJob = {
      rowId: row.id,
      sourceId: row.sourceId,
      eventType: row.eventType,
      subjectKey: row.subjectKey,
      sourceRef: row.sourceRef,
      trackingId: item.trackingId,
      earlierTrackingIds: item.earlierTrackingIds,
      eventId: row.eventId,
    };
    // Never the references themselves (see withoutReferences): their resource types say enough.
    const log = {
      rowId: row.id,
      source: row.sourceId,
      subjectType: typeOf(row.subjectKey),
      triggerType: typeOf(row.sourceRef),
      attempt: item.attempts,
    };
    try {
      const { result: answer, via } = await this.writeThrough(source, job, signal);
      const wrote = typeof answer === 'string' ? answer : answer.result;
      // A replacement of the row's own earlier tracking id is a write like any other for the job and its
      // counts; the log line says it (never either value).
      const result = wrote === 'replaced' ? 'written' : wrote;
      // Other tracking ids kept beside this one: the job keeps a note (the admin page, `ledger --find`).
      const others = typeof answer === 'string' ? undefined : this.otherEvents(row, answer.othersHeld);
      const note =
        typeof answer === 'string' || !others
          ? undefined
          : others.unexplained.length > 0
            ? answer.note
            : `the record also holds the tracking id of the same person's ${others.ownEvents.map((e) => `${e.eventType} (#${e.rowId}): ${e.trackingId}`).join(', ')}, kept beside this one (not a duplicate)`;
      if (!this.store.done(item, result, this.now(), undefined, note)) return lost(result);
      report.tried++;
      report[result]++;
      const replaced = wrote === 'replaced' ? { replaced: 'earlier tracking id of this row' } : {};
      const viaOther = via === source.sourceId ? {} : { via };
      const besideOwn = others?.ownEvents.length ? { besideRows: others.ownEvents.map((e) => e.rowId) } : {};
      if (others && others.unexplained.length > 0) {
        // A sign of a duplicate registration for a registrar to resolve: warned. Tracking ids are no
        // personal data; the event id finds the event in OpenCRVS.
        this.log.warn(
          {
            ...log,
            result,
            ...viaOther,
            ...besideOwn,
            eventId: row.eventId,
            trackingId: job.trackingId,
            otherTrackingIds: others.unexplained.slice(0, 5).map((id) => id.slice(0, 40)),
          },
          'tracking id written back beside another of its system: a duplicate registration?',
        );
      } else this.log.info({ ...log, result, ...replaced, ...viaOther, ...besideOwn }, 'tracking id written back');
    } catch (err) {
      if (signal.aborted) {
        // Cut off by the bridge itself (stopping, the pass's deadline), not failed by the source: counting
        // it would spend the job's budget (up to abandoning it) and replace its last error with "the
        // bridge is stopping" or a timeout of ours. Handed back.
        if (!this.store.release(item, this.now())) return lost('cut off');
        report.tried++;
        report.cutOff++;
        this.log.info(log, 'write-back cut off by the bridge; it runs again later, its attempt not counted');
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      const permanent = err instanceof WriteBackError && err.permanent;
      const logged = { ...log, ...writeBackErrorKind(err), error: withoutReferences(message, job) };
      if (permanent || item.attempts >= source.settings.maxAttempts) {
        if (!this.store.done(item, 'abandoned', this.now(), message)) return lost('abandoned');
        failed('abandoned', message);
        this.log.warn({ ...logged, permanent }, 'write-back abandoned');
        return;
      }
      const { baseDelayMs, maxDelayMs } = source.settings;
      const delay = writeBackDelay(item.attempts, baseDelayMs, maxDelayMs, this.random);
      if (!this.store.retry(item, this.now() + delay, message, this.now())) return lost('failing');
      failed('failing', message);
      this.log.warn({ ...logged, delayMs: delay }, 'write-back failed; retrying later');
    }
  }

  /**
   * Writes the job through the row's own source, whose `writeBack` settings made it a job; when that
   * source's user is not shown the record (WriteBackError.notShown), through the other sources of the same
   * records that write back, the one that last read it (the row's read_by_source) first, each with its own
   * credentials and settings. Its own source's error stands when none of them is shown it either, or the
   * first other error met (a 5xx: retried later, starting again with the row's own source).
   *
   * A DHIS2 split by district may give each district's source a user of that district only. A record
   * transferred to the other district before its tracking id was written (its delivery waited, or the
   * write failed and was retried) is then no longer shown to the user of the source that recorded the
   * row: the write through it was abandoned ("no longer exists") while the other source's user could make
   * it. DHIS2 showing the record to a user is what says who may write to it now; read_by_source is only a
   * hint (a record transferred back leaves it naming the other source), so it orders the tries, no more.
   */
  private async writeThrough(
    source: WriteBackSource,
    job: WriteBackJob,
    signal: AbortSignal,
  ): Promise<{ result: Awaited<ReturnType<WriteBackTarget['write']>>; via: string }> {
    // The next source is asked only when this one's user is not shown the record.
    const passesOn = (err: unknown) => err instanceof WriteBackError && err.notShown && !signal.aborted;
    try {
      return { result: await source.target.write(job, signal), via: source.sourceId };
    } catch (err) {
      if (!passesOn(err)) throw err;
      for (const other of this.othersFor(source, job.rowId)) {
        try {
          return { result: await other.target.write(job, signal), via: other.sourceId };
        } catch (otherErr) {
          if (!passesOn(otherErr)) throw otherErr;
        }
      }
      throw err;
    }
  }

  /**
   * Which of the other tracking ids a record holds are this ledger's own events of the same subject (a
   * child's birth and its death in infancy: expected, no duplicate), looked up by key in every source that
   * writes back (sources of one FHIR server are often split by event type); the rest are unexplained.
   */
  private otherEvents(
    row: { id: number; eventType: string; subjectKey: string },
    others: readonly string[],
  ): { ownEvents: Array<{ rowId: number; eventType: string; trackingId: string }>; unexplained: string[] } {
    const ownEvents: Array<{ rowId: number; eventType: string; trackingId: string }> = [];
    const types = OTHER_EVENT_TYPES.filter((type) => type !== row.eventType);
    for (const sourceId of this.sources.keys()) {
      for (const eventType of types) {
        const other = this.deps.ledger.findByKey(sourceId, eventType, row.subjectKey);
        if (!other || other.id === row.id || !other.trackingId) continue;
        // The other row's earlier tracking ids too: after OpenCRVS lost its event and it was delivered
        // again, its FHIR write kept the old id beside the new one (a FHIR write never removes one).
        const job = this.store.get(other.id);
        const itsIds = [other.trackingId, ...(job ? [job.trackingId, ...job.earlierTrackingIds] : [])];
        for (const trackingId of itsIds)
          if (others.includes(trackingId) && !ownEvents.some((e) => e.trackingId === trackingId))
            ownEvents.push({ rowId: other.id, eventType, trackingId });
      }
    }
    const explained = new Set(ownEvents.map((e) => e.trackingId));
    return { ownEvents, unexplained: others.filter((id) => !explained.has(id)) };
  }

  /** The sources that write back for `source`'s records, the one that last read the row first. */
  private othersFor(source: WriteBackSource, rowId: number): WriteBackSource[] {
    const ids = source.sharesRecordsWith ?? [];
    if (ids.length === 0) return [];
    return lastReaderFirst(ids, (id) => id, this.deps.ledger.readBy(rowId)).flatMap((id) => {
      const other = this.sources.get(id);
      return other ? [other] : [];
    });
  }

  /** Cuts the writes in flight off (handed back, not counted) and waits for the run to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    this.store.close();
  }
}

/** `Patient` of `Patient/<id>`; undefined for a reference of no such shape. */
function typeOf(ref: string): string | undefined {
  return /^([A-Z][A-Za-z]+)\//.exec(ref)?.[1];
}
