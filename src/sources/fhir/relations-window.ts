// What one pass holds of a server's relationship listing (relations-listing.ts: OpenMRS): the relationships
// recorded from one day on, read as one listing, then widened back a range at a time. A listing read from a
// birth date holds every later birth's too, so births read oldest first cost one listing; read newest first
// (a pass over a page sorted so, a subscription burst), each older birth asks only the range from its own day
// up to the day the one held starts (`_lastUpdated=ge<day>&_lastUpdated=lt<start>`), not the whole listing
// again. The bound is a birth's, whatever the order: the relationships recorded since its day, the ranges
// held and the one asked together, at most `bound`; past it that birth and every older one go without.
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

  constructor(
    private readonly list: ListRange,
    private readonly bound: number,
  ) {}

  /** The relationships recorded from day `from` (YYYY-MM-DD) on. A failure to read them is the caller's. */
  from(from: string): Promise<WindowAnswer> {
    const known = this.known(from);
    if (known) return Promise.resolve(known);
    const asked = this.turn.then(() => this.widen(from));
    this.turn = asked.catch(() => undefined);
    return asked;
  }

  private known(from: string): Resource[] | 'past bound' | undefined {
    if (this.pastFrom !== undefined && from <= this.pastFrom) return 'past bound';
    if (this.held && from >= this.held.start) return this.held.resources;
    return undefined;
  }

  private async widen(from: string): Promise<WindowAnswer> {
    const known = this.known(from);
    if (known) return known;
    const held = this.held;
    const holding = held?.resources.length ?? 0;
    const answer = await this.list(from, held?.start, this.bound - holding);
    if (answer === 'not served') return answer;
    if (!answer.complete || holding + answer.resources.length > this.bound) {
      this.pastFrom = from;
      return 'past bound';
    }
    // A range read ends where the one held starts (`lt` that day, which the held one took as `ge`): none
    // is in both, as a relationship's lastUpdated only grows.
    this.held = { start: from, resources: held ? [...answer.resources, ...held.resources] : answer.resources };
    return this.held.resources;
  }
}
