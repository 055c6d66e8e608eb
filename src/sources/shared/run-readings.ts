// Both pollers read pages as a keyset: each page asks again from the newest timestamp seen, so a record
// that changes while a pass runs moves to the end instead of shifting unseen records onto a page already
// read. That stops working inside a run of records sharing one timestamp that is longer than a page: such
// a run can only be read by the server's own paging (page numbers in DHIS2, `next` links in FHIR), which
// offsets into a live query. A record of the run that changes (or is deleted) after its page was read
// leaves the run, every later record moves back by one, and one of them slips onto the page already read.
// This tracks the readings of one run until one can be trusted, and what a pass that gave up on a run leaves
// to the next (CarriedRuns).

/** Readings of one run in a pass before the poller leaves it to the next pass. */
export const MAX_RUN_READINGS = 5;
/** Pages a pass may spend reading runs (10 million records at a page size of 100). */
export const MAX_RUN_PAGES = 100_000;
/**
 * The largest page asked for to read a run of one timestamp in one piece: FHIR servers cap `_count` near it,
 * and a DHIS2 page of 1,000 tracked entities with every field is already a few MB.
 */
export const MAX_RUN_COUNT = 1_000;

/**
 * Pages a counted reading may take beyond what the server's count fills before stale pages end it (see
 * ReadingPages): a page short of the widest (voided records left out), a record that joined after the count.
 */
export const ENDLESS_SLACK_PAGES = 4;

/**
 * The page to ask for next when a whole page held nothing but the run: a larger one, so the run may fit in
 * one page and need no paging inside it (a server whose ties come in no fixed order pages a run unreliably).
 */
export function largerRunPage(size: number): number {
  return Math.min(size * 4, MAX_RUN_COUNT);
}

/**
 * Runs (by their timestamp in ms) whose larger page (largerRunPage) the server did not answer: the largest page
 * size it did answer there. Kept by a poller (per resource type) across passes, so later passes read such a run
 * in pages of that size straight away, without asking for the larger page (and waiting out its timeout) again.
 */
export class RunPageCaps {
  private readonly caps = new Map<number, number>();

  /** The larger pages asked in one pass (a reading of the source from its bound). */
  pass(): LargerRunPage {
    return new LargerRunPage(this.caps);
  }

  /** Runs earlier than `at` (the watermark less the overlap) can no longer come back in a poll. */
  forgetBefore(at: number): void {
    for (const run of this.caps.keys()) if (run < at) this.caps.delete(run);
  }
}

/**
 * A larger page asked for a run is an optimisation, not a necessity: it is asked once, and when the server does
 * not answer it (a slow server times out on 1,000 records with every field, a gateway gives up on it), the run
 * is read by the server's own paging at the size it did answer, rather than failing the pass at the same run
 * every pass, for good. Other failures (the usual page) fail the pass as before. What a poller does in between:
 * `enlarge` when a whole page held nothing but the run, `callOptions` for the page it asks next, then
 * `answered` or `refused`.
 */
export class LargerRunPage {
  /** Set while the page asked is a larger page: the size it was enlarged from, which the server answered. */
  private from: number | undefined;

  constructor(private readonly caps: Map<number, number>) {}

  /** For the page about to be asked: a larger page is tried once, not retried (the run can do without it). */
  get callOptions(): { attempts?: number } {
    return this.from === undefined ? {} : { attempts: 1 };
  }

  /**
   * A whole page of `size` held nothing but the run at `at`: the larger size to ask it in next, or undefined
   * when there is none (`size` already reaches the size the server answered for this run, or MAX_RUN_COUNT).
   */
  enlarge(at: number | undefined, size: number): number | undefined {
    const cap = (at !== undefined ? this.caps.get(at) : undefined) ?? MAX_RUN_COUNT;
    if (size >= cap) return undefined;
    this.from = size;
    return Math.min(largerRunPage(size), cap);
  }

  /** The page asked was answered. */
  answered(): void {
    this.from = undefined;
  }

  /**
   * The page asked failed: the size to read the run at `at` in instead (the size the server answered there,
   * remembered for later passes), or undefined when the failure is the pass's (it was not a larger page).
   */
  refused(at: number | undefined): number | undefined {
    const from = this.from;
    if (from === undefined || at === undefined) return undefined;
    this.caps.set(at, from);
    this.from = undefined;
    return from;
  }
}

/**
 * The page size of the next reading of a run whose readings met a member twice: on a server whose tie order
 * depends on LIMIT/OFFSET every reading with the same page size would miss the same members. Another page
 * size for every reading (the size the server allowed, then one less, …), carried on across passes by
 * `tried` (RunReadings.varied of the runs given up before), shifts the offsets, the order changes, and the
 * readings' union grows until it reaches the server's count of the run. `readings` is 1 for the second
 * reading (the first asked the larger page), so a pass that gives up used tried + 1 … tried + 4, and the next
 * goes on from tried + 5: every size from `served` down to 1 comes round, each a reading of its own.
 */
export function readingPageSize(served: number, readings: number, tried: number): number {
  return served - ((readings + tried) % served);
}

/**
 * The most members of runs given up that a poller carries to its next pass (per resource type for FHIR),
 * a few MB of ids. A longer run (one import of 100,000s of records) is not carried: each pass reads it
 * afresh and the count completes it only if that pass's readings cover it, as before carrying; such a run
 * needs 10,000s of pages a reading anyway, and MAX_RUN_PAGES bounds what a pass spends on it.
 */
export const MAX_CARRIED_MEMBERS = 100_000;

/**
 * Runs given up in a pass, kept for the next: per run (its timestamp in ms), the server's count and the members
 * read after the count. On a server whose tie order depends on the offset only the count completes a run, once
 * the members read reach it, and one pass's readings (each about two thirds of the run) rarely read every
 * member of a run of a few hundred; carried, the members read add up pass after pass.
 *
 * Why a union carried at an equal count is sound. The union holds only members read after a count, and a
 * record leaves a run (an edit stamps it now) but does not join one at a timestamp already past, so every
 * member read after the first count C1 was in the set S1 it counted: the union stays within S1 however many
 * passes add to it. A count may come out too large, never too small (see the pollers' runSize), so C1 ≥ |S1|,
 * and a union of C1 members is S1 itself, which holds every member the run has now. A member that left
 * between passes makes the next count smaller, a record imported late with the run's timestamp makes it
 * larger: either way what was carried is dropped and the run is read afresh. One that left and one that
 * joined in the same interval balance unseen, as a record joining after the count does within one pass.
 */
export class CarriedRuns {
  private readonly runs = new Map<number, { expected: number; union: ReadonlySet<string> }>();
  private held = 0;

  /** How many members are carried, over every run. */
  get members(): number {
    return this.held;
  }

  /**
   * The members carried for the run at `at` if the server counts it as before; none otherwise, and what was
   * carried for it is dropped: a count that changed means members left the run (or joined it) since.
   */
  resume(at: number, expected: number): ReadonlySet<string> {
    const carried = this.runs.get(at);
    if (carried === undefined) return new Set();
    if (carried.expected === expected) return carried.union;
    this.drop(at);
    return new Set();
  }

  /** Keeps the members read of a run given up (a copy), in place of what was carried for it. */
  keep(at: number, expected: number, union: ReadonlySet<string>): void {
    this.drop(at);
    if (union.size > MAX_CARRIED_MEMBERS) return;
    // Runs kept longest ago make room first (a Map iterates in the order runs were kept).
    for (const other of this.runs.keys()) {
      if (this.held + union.size <= MAX_CARRIED_MEMBERS) break;
      this.drop(other);
    }
    this.runs.set(at, { expected, union: new Set(union) });
    this.held += union.size;
  }

  /** The run was completed, or its count cannot be trusted: nothing is carried for it. */
  drop(at: number): void {
    const carried = this.runs.get(at);
    if (carried === undefined) return;
    this.held -= carried.union.size;
    this.runs.delete(at);
  }

  /** Runs earlier than the watermark have been passed: a pass no longer holds one of them. */
  forgetBefore(at: number): void {
    for (const run of [...this.runs.keys()]) if (run < at) this.drop(run);
  }
}

/** Pages in a row that bring no record the reading had not read, before its paging counts as endless. */
export const ENDLESS_STALE_PAGES = 3;

/**
 * The pages of one reading through a server's own paging (`next` links, page numbers), to tell paging that
 * does not end: a server that hands out a new `next` link (`_getpages=…&_offset=N+50`) or takes any page
 * number, and serves the same records again, would otherwise be paged until the pass's page bound, every
 * pass, with no word while the watermark never moves. A reading has stopped bringing records when
 * ENDLESS_STALE_PAGES pages in a row bring none it had not read, past twice the pages its distinct records
 * fill and as many as the server's count fills (plus ENDLESS_SLACK_PAGES). Pages that each bring something
 * new are honest however short they are (a server that leaves voided records out of its pages), and one
 * whose tie order depends on the offset repeats records (about a third of a reading) but brings new ones.
 */
export class ReadingPages {
  private pages = 0;
  private widest = 0;
  private stale = 0;
  private readonly read = new Set<string>();

  /** A page of the reading, by the ids (or versions) of every record on it. */
  note(entries: readonly string[]): void {
    this.pages++;
    this.widest = Math.max(this.widest, entries.length);
    const before = this.read.size;
    for (const id of entries) this.read.add(id);
    this.stale = this.read.size > before ? 0 : this.stale + 1;
  }

  /** `expected`: how many records the server counts in what is read, if it says. */
  endless(expected?: number): boolean {
    const width = Math.max(1, this.widest);
    const allowed = Math.max(2 * Math.ceil(this.read.size / width), Math.ceil((expected ?? 0) / width));
    return this.stale >= ENDLESS_STALE_PAGES && this.pages > allowed + ENDLESS_SLACK_PAGES;
  }

  get progress(): { pages: number; records: number } {
    return { pages: this.pages, records: this.read.size };
  }
}

export type ReadingOutcome = 'complete' | 'again' | 'give-up';

export class RunReadings {
  private readings = 0;
  private fresh = 0;
  private members = new Set<string>();
  private previous: Set<string> | undefined;
  /** A member came twice in one reading: the server's tie order depends on the offset asked. */
  private duplicated = false;
  private untrusted = false;
  /** Every member read in any reading of this run (those of passes before, if carried), and the server's count. */
  private union = new Set<string>();
  private expected: number | undefined;
  /** The reading in progress noted members before the count was taken: it adds none to the union. */
  private readBeforeCount = false;
  /** Members of the reading in progress on a page whose rows were not recorded: they add nothing to the union. */
  private unrecordedMembers = new Set<string>();
  /** The run's timestamp (ms), once counted: the key of what is carried for it across passes. */
  private at: number | undefined;
  /** The pages of the reading in progress: whether its paging ends. */
  private paging = new ReadingPages();

  /** `carried`: the poller's runs given up in earlier passes, for the one it counts to resume from. */
  constructor(private readonly carried?: CarriedRuns) {}

  /** True while a run is being read (a reading of it ended and another one is due). */
  get active(): boolean {
    return this.readings > 0;
  }

  /** Every fresh search from the bound starts a reading (of a run, if it turns out to be one). */
  startReading(): void {
    this.fresh = 0;
    this.members = new Set();
    this.unrecordedMembers = new Set();
    this.duplicated = false;
    this.paging = new ReadingPages();
  }

  /**
   * A page of the reading: how many of its records were new, the ids of those at the bound, and the ids of
   * every record on it (by default those at the bound: a page inside a run holds nothing else).
   */
  notePage(fresh: number, membersAtBound: readonly string[], entries: readonly string[] = membersAtBound): void {
    this.fresh += fresh;
    for (const id of membersAtBound) {
      if (this.members.has(id)) this.duplicated = true;
      this.members.add(id);
    }
    this.paging.note(entries);
  }

  /** The server's paging of this reading does not end (see ReadingPages), judged with the server's count. */
  get endless(): boolean {
    return this.paging.endless(this.expected);
  }

  /** Pages and distinct records of the reading in progress, for the warning when it is abandoned. */
  get readingProgress(): { pages: number; records: number } {
    return this.paging.progress;
  }

  /**
   * The reading in progress is abandoned (its paging did not end) and the run given up for this pass. Its
   * members add nothing to the union (a server whose paging is broken says nothing reliable about the run);
   * what the readings before it read is carried to the next pass, as at a give-up.
   */
  abandon(): void {
    if (this.expected !== undefined && this.at !== undefined) this.carried?.keep(this.at, this.expected, this.union);
  }

  /**
   * The rows of a page with these members were not recorded (a result overtaken and not read again): the
   * pass holds its watermark for the page, but a union carried to the next pass must not hold them, or the
   * count could complete the run there with a member never recorded and not read again.
   */
  unrecorded(membersAtBound: Iterable<string>): void {
    for (const id of membersAtBound) this.unrecordedMembers.add(id);
  }

  /** Some reading of this run met a member twice: only the server's count can complete it. */
  get untrustworthy(): boolean {
    return this.untrusted;
  }

  /**
   * How many records share the run's timestamp, as the server counts them (undefined: it does not say).
   * The pollers count a run once its first page shows it is one, so members were read before the count: one
   * of them edited in between has left the run, the count leaves it out, and a union holding it could reach
   * the count while a member was never read. The reading in progress adds nothing to the union; every later
   * reading was read after the count, and a member leaving after it was counted.
   *
   * `at`, the run's timestamp in ms: a run given up at it in an earlier pass and counted alike then resumes
   * from the members read then (see CarriedRuns). The count is taken once a pass, so the reading under way
   * adds nothing in every pass, and the union carried holds only members read after a count.
   */
  expect(count: number | undefined, at?: number): void {
    this.expected = count;
    this.readBeforeCount = this.members.size > 0;
    this.at = at;
    if (count !== undefined && at !== undefined && this.carried)
      for (const id of this.carried.resume(at, count)) this.union.add(id);
  }

  /**
   * The reading reached the run's end. Until a reading can be trusted the caller keeps its watermark at the
   * run, so a crash or a give-up reads it again next pass.
   *
   * With the server's count of the run, the run is complete once the members read over all its readings (with
   * those carried from passes that gave it up) are exactly that many. More than counted means the count cannot be trusted (a filter it ignored, records
   * that joined the run since), and the run is judged as without one.
   *
   * With or without a count, it is also complete when nothing left the run while it was read, which shows as two
   * readings in a row returning the same members with nothing new among them (one that misses a record
   * because another left differs from the reading before it, which still had the one that left).
   * That holds only while no reading met a member twice: a server whose ties come in an order that
   * depends on the offset (SQL ORDER BY on a non-unique column with LIMIT/OFFSET) shows every reading the
   * same subset of the run, so readings agree on a run they each read only in part. A reading without a
   * repeated member held as many distinct members as the run had places: all of it, if none left.
   */
  endReading(): ReadingOutcome {
    this.readings++;
    if (!this.readBeforeCount) for (const id of this.members) if (!this.unrecordedMembers.has(id)) this.union.add(id);
    this.readBeforeCount = false;
    if (this.duplicated) this.untrusted = true;
    if (this.expected !== undefined && this.union.size > this.expected) {
      this.expected = undefined;
      this.forget();
    }
    const previous = this.previous;
    // The count completes a run the readings cannot; it never holds back one they can: a server that counts
    // more than it holds (it ignored `_lastUpdated=eq`) would otherwise keep the watermark at the run for good.
    // Only on a reading that found nothing new: within one reading a member that left (edited) and another
    // that joined balance, and the union reaches the count while the member pushed onto a page already read
    // was never seen. Read again, that member comes as new, or the readings agree.
    const counted = this.expected !== undefined && this.union.size === this.expected && this.fresh === 0;
    const agreed = !this.untrusted && this.fresh === 0 && previous !== undefined && sameMembers(previous, this.members);
    const complete = counted || agreed;
    if (complete) {
      this.forget();
      this.readings = 0;
      this.previous = undefined;
      this.untrusted = false;
      this.union = new Set();
      this.expected = undefined;
      this.at = undefined;
      return 'complete';
    }
    if (this.readings < MAX_RUN_READINGS) {
      this.previous = this.members;
      return 'again';
    }
    // Given up with a count: the next pass resumes from the members read, if it counts the run alike. Without
    // one this pass adds nothing, and whatever an earlier pass carried stays for a pass that counts again.
    if (this.expected !== undefined && this.at !== undefined) this.carried?.keep(this.at, this.expected, this.union);
    return 'give-up';
  }

  get count(): number {
    return this.readings;
  }

  /**
   * The readings after the first, whose page size readingPageSize chose: what a run given up adds to `tried`.
   * Adding every reading would skip one size a pass, and the same ones for good (with 10 served, 10 and 5).
   */
  get varied(): number {
    return Math.max(0, this.readings - 1);
  }

  /** How many members the readings have read (after the count) and how many the server counts, for the warning. */
  get progress(): { read: number; counted: number | undefined } {
    return { read: this.union.size, counted: this.expected };
  }

  private forget(): void {
    if (this.at !== undefined) this.carried?.drop(this.at);
  }
}

/** Why a run was given up, for the warning: a repeated member is the server's order, not edits. */
export function giveUpReason(run: RunReadings, what: string): string {
  return run.untrustworthy
    ? `the server gave one record twice in a reading of ${what} (its order among equal timestamps depends on the page asked): the watermark stays at the run, the records after it are still read`
    : `${what} kept changing while it was read: the watermark stays at the run, the next pass reads it again`;
}

function sameMembers(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((id) => b.has(id));
}
