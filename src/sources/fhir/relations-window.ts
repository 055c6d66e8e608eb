// What one pass holds of a server's relationship listing (relations-listing.ts: OpenMRS): the relationships
// recorded from one day on, read as one listing, then widened back a range at a time. A listing read from a
// birth date holds every later birth's too, so births read oldest first cost one listing; read newest first
// (a pass over a page sorted so, a subscription burst), each older birth asks only the range from its own day
// up to the day the one held starts (`_lastUpdated=ge<day>&_lastUpdated=lt<start>`), not the whole listing
// again. Births mapped side by side (the pipeline's lanes) wait for one range at a time, and it is asked from
// the earliest day any of them waits for: a page of births costs one listing in either order. The bound is a
// birth's, whatever the order: the relationships recorded since its day, the ranges held and the one asked
// together, at most `bound`; past it that birth and every older one go without (a range asked for an older
// birth that runs past it leaves a later one to ask its own).
import type { Resource } from '@medplum/fhirtypes';

/** What a range asked answers: `complete` when read whole within the budget asked. */
export interface RangeAnswer {
  resources: Resource[];
  complete: boolean;
}

/**
 * Asks the relationships recorded from day `from` up to (not on) day `before` (none: up to now), with room
 * for `budget` of them; 'not served' when the server does not serve the listing.
 */
export type ListRange = (
  from: string,
  before: string | undefined,
  budget: number,
) => Promise<RangeAnswer | 'not served'>;

/** What `from` answers: the relationships since that day, or why there are none to read. */
export type WindowAnswer = Resource[] | 'past bound' | 'not served';

export class RelationsWindow {
  /** The relationships recorded from `start` on, read whole. */
  private held: { start: string; resources: Resource[] } | undefined;
  /** The latest day whose relationships since are known to run past the bound (so do every earlier day's). */
  private pastFrom: string | undefined;
  /** The range being asked: one at a time, so a birth waiting behind an older one is served by its range. */
  private turn: Promise<unknown> = Promise.resolve();
  /** The days births wait for a range from, and how many wait for each. */
  private readonly waiting = new Map<string, number>();
  /** Births that came to wait so far (each one's ticket is its number). */
  private tickets = 0;
  /**
   * The last range that failed (from `start` up to `before`, the held listing's start then), and the births
   * waiting then. A birth's own range holds that failed one where its day is no later than `start` and the
   * held listing has not moved: it fails with it rather than ask it again (a server that does not answer
   * would take a page of births one timeout after the other). A later day's range may well be read (what
   * failed may lie before it), the asking birth's own included: the next asked is the latest day waiting,
   * the narrowest range; if that fails too, every birth waiting fails with it. Births that come later ask
   * again.
   */
  private failed: { start: string; before: string | undefined; upTo: number; err: unknown } | undefined;

  constructor(
    private readonly list: ListRange,
    private readonly bound: number,
  ) {}

  /** The relationships recorded from day `from` (YYYY-MM-DD) on. A failure to read them is the caller's. */
  from(from: string): Promise<WindowAnswer> {
    const known = this.known(from);
    if (known) return Promise.resolve(known);
    this.waiting.set(from, (this.waiting.get(from) ?? 0) + 1);
    const ticket = ++this.tickets;
    const asked = this.turn.then(() => this.widen(from, ticket)).finally(() => this.leave(from));
    this.turn = asked.catch(() => undefined);
    return asked;
  }

  private leave(day: string): void {
    const left = (this.waiting.get(day) ?? 1) - 1;
    if (left > 0) this.waiting.set(day, left);
    else this.waiting.delete(day);
  }

  private known(from: string): Resource[] | 'past bound' | undefined {
    if (this.pastFrom !== undefined && from <= this.pastFrom) return 'past bound';
    if (this.held && from >= this.held.start) return this.held.resources;
    return undefined;
  }

  private async widen(from: string, ticket: number): Promise<WindowAnswer> {
    for (;;) {
      const known = this.known(from);
      if (known) return known;
      const held = this.held;
      const { failed } = this;
      const sinceFailed = failed && ticket <= failed.upTo && failed.before === held?.start ? failed : undefined;
      if (sinceFailed && from <= sinceFailed.start) throw sinceFailed.err;
      // The earliest day a birth waits for that is not known yet (this one's at the latest): its range holds
      // every later one's. Past the bound, the next earliest is asked, down to this birth's own. After a failed
      // range, the latest day waiting instead (see `failed`).
      const days = [...this.waiting.keys()].filter((day) => !this.known(day)).sort();
      const start = (sinceFailed ? days.at(-1) : days[0]) ?? from;
      const holding = held?.resources.length ?? 0;
      let answer: RangeAnswer | 'not served';
      try {
        answer = await this.list(start, held?.start, this.bound - holding);
      } catch (err) {
        this.failed = { start, before: held?.start, upTo: this.tickets, err };
        if (from <= start) throw err;
        continue;
      }
      if (answer === 'not served') return answer;
      if (!answer.complete || holding + answer.resources.length > this.bound) {
        this.pastFrom = start;
        continue;
      }
      // A range read ends where the one held starts (`lt` that day, which the held one took as `ge`): none
      // is in both, as a relationship's lastUpdated only grows (one changed meanwhile is in neither: the
      // poll of RelatedPerson brings it to the next pass).
      this.held = { start, resources: held ? [...answer.resources, ...held.resources] : answer.resources };
    }
  }
}
