// Both pollers read pages as a keyset: each page asks again from the newest timestamp seen, so a record
// that changes while a pass runs moves to the end instead of shifting unseen records onto a page already
// read. That stops working inside a run of records sharing one timestamp that is longer than a page: such
// a run can only be read by the server's own paging (page numbers in DHIS2, `next` links in FHIR), which
// offsets into a live query. A record of the run that changes (or is deleted) after its page was read
// leaves the run, every later record moves back by one, and one of them slips onto the page already read.
// This tracks the readings of one run until one can be trusted.

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
 * The page to ask for next when a whole page held nothing but the run: a larger one, so the run may fit in
 * one page and need no paging inside it (a server whose ties come in no fixed order pages a run unreliably).
 */
export function largerRunPage(size: number): number {
  return Math.min(size * 4, MAX_RUN_COUNT);
}

/**
 * The page size of the next reading of a run whose readings met a member twice: on a server whose tie order
 * depends on LIMIT/OFFSET every reading with the same page size would miss the same members. Another page
 * size for every reading (the size the server allowed, then one less, …), carried on across passes by
 * `tried` (the readings of runs given up before), shifts the offsets, the order changes, and the readings'
 * union grows until it reaches the server's count of the run.
 */
export function readingPageSize(served: number, readings: number, tried: number): number {
  return served - ((readings + tried) % served);
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
  /** Every member read in any reading of this run, and how many the server counts in it. */
  private union = new Set<string>();
  private expected: number | undefined;
  /** The reading in progress noted members before the count was taken: it adds none to the union. */
  private readBeforeCount = false;

  /** True while a run is being read (a reading of it ended and another one is due). */
  get active(): boolean {
    return this.readings > 0;
  }

  /** Every fresh search from the bound starts a reading (of a run, if it turns out to be one). */
  startReading(): void {
    this.fresh = 0;
    this.members = new Set();
    this.duplicated = false;
  }

  /** A page of the reading: how many of its records were new, and the ids of those at the bound. */
  notePage(fresh: number, membersAtBound: Iterable<string>): void {
    this.fresh += fresh;
    for (const id of membersAtBound) {
      if (this.members.has(id)) this.duplicated = true;
      this.members.add(id);
    }
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
   */
  expect(count: number | undefined): void {
    this.expected = count;
    this.readBeforeCount = this.members.size > 0;
  }

  /**
   * The reading reached the run's end. Until a reading can be trusted the caller keeps its watermark at the
   * run, so a crash or a give-up reads it again next pass.
   *
   * With the server's count of the run, the run is complete once the members read over all its readings are
   * exactly that many. More than counted means the count cannot be trusted (a filter it ignored, records
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
    if (!this.readBeforeCount) for (const id of this.members) this.union.add(id);
    this.readBeforeCount = false;
    if (this.duplicated) this.untrusted = true;
    if (this.expected !== undefined && this.union.size > this.expected) this.expected = undefined;
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
      this.readings = 0;
      this.previous = undefined;
      this.untrusted = false;
      this.union = new Set();
      this.expected = undefined;
      return 'complete';
    }
    if (this.readings < MAX_RUN_READINGS) {
      this.previous = this.members;
      return 'again';
    }
    return 'give-up';
  }

  get count(): number {
    return this.readings;
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
