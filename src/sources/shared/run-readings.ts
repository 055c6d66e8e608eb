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

export type ReadingOutcome = 'complete' | 'again' | 'give-up';

export class RunReadings {
  private readings = 0;
  private fresh = 0;
  private members = new Set<string>();
  private previous: Set<string> | undefined;

  /** True while a run is being read (a reading of it ended and another one is due). */
  get active(): boolean {
    return this.readings > 0;
  }

  /** Every fresh search from the bound starts a reading (of a run, if it turns out to be one). */
  startReading(): void {
    this.fresh = 0;
    this.members = new Set();
  }

  /** A page of the reading: how many of its records were new, and the ids of those at the bound. */
  notePage(fresh: number, membersAtBound: Iterable<string>): void {
    this.fresh += fresh;
    for (const id of membersAtBound) this.members.add(id);
  }

  /**
   * The reading reached the run's end. It is complete only when nothing left the run while it was read,
   * which shows as two readings in a row returning the same members with nothing new among them (one that
   * misses a record because another left differs from the reading before it, which still had the one
   * that left). Until then the caller keeps its watermark at the run, so a crash or a give-up reads it
   * again next pass.
   */
  endReading(): ReadingOutcome {
    this.readings++;
    const previous = this.previous;
    const complete = this.fresh === 0 && previous !== undefined && sameMembers(previous, this.members);
    if (complete) {
      this.readings = 0;
      this.previous = undefined;
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

function sameMembers(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((id) => b.has(id));
}
