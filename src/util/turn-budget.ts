// A budget for the work done in one turn of the event loop by tasks that yield with setImmediate.
//
// Node runs, in one check phase, every immediate queued before that phase began, and polls for I/O only
// after the last of them. The pipeline's 64 mapping lanes each yield before a subject; resumed together,
// they mapped a whole batch of notified births (50, some 0.5 ms each) back to back, and a subscription
// acknowledgement that arrived meanwhile waited for all of them. With a budget, the lanes that resume after
// the turn's work has passed it yield again, to a later turn, and the loop polls (answers the ack) between.
import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Work one turn of the loop takes before the lanes still waiting yield to the next (ms). Lanes resumed in
 * different turns ask their reads apart, so a smaller budget costs reads: draining 2,200 notified births
 * took 634 FHIR calls unbounded, 813 at 3 ms, 759 at 5 ms and 749 at 8 ms (e2e bench (d), a loaded
 * machine). 5 ms keeps a turn well inside the acknowledgement's 20 ms target.
 */
export const TURN_BUDGET_MS = 5;

export class TurnBudget {
  /** When the first task let through in the current turn started; undefined before one was. */
  private turnStartedAt: number | undefined;
  /** Each wait's number, in the order the waits began. */
  private nextTicket = 0;
  /**
   * The waits turned away at least once and still waiting. A task let through queues its next turn before
   * the ones turned away queue their retry, so, first in every later check phase, the same tasks would
   * take each turn's budget until the batch ran dry, and a subject a lane turned away holds would wait for
   * all of it; while one waits, a younger wait gives way to it.
   */
  private readonly turnedAway = new Set<number>();

  constructor(
    private readonly budgetMs = TURN_BUDGET_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Resolves in a later turn of the loop, the first whose work so far is within the budget. Tasks that
   * resume in the same turn still run side by side up to the budget (the reads they ask in that turn
   * leave together: fhir/fetcher.ts), at least one runs in every turn, however long it takes, and a task
   * turned away goes before those that asked after it.
   */
  async turn(): Promise<void> {
    await nextTurn();
    await this.pass();
  }

  /**
   * Goes on in this turn while its work is within the budget (the first call of a turn starts the count),
   * else in the first later turn that is. For continuations resumed together by one I/O callback (a
   * batched read's answer resolving the reads of 50 lanes): they too ran back to back before.
   */
  async pass(): Promise<void> {
    const ticket = this.nextTicket++;
    if (this.admitted(ticket)) return;
    this.turnedAway.add(ticket);
    try {
      do await nextTurn();
      while (!this.admitted(ticket));
    } finally {
      this.turnedAway.delete(ticket);
    }
  }

  private admitted(ticket: number): boolean {
    for (const waiting of this.turnedAway) if (waiting < ticket) return false;
    const now = this.now();
    if (this.turnStartedAt === undefined) {
      this.turnStartedAt = now;
      // Queued in this check phase, so it runs in the next one, before the immediates tasks queue
      // after it (those deferred now among them): the next turn starts with a budget of its own.
      setImmediate(() => {
        this.turnStartedAt = undefined;
      });
      return true;
    }
    return now - this.turnStartedAt < this.budgetMs;
  }
}

/** One budget for the whole process: evaluations running side by side share the loop's turns. */
export const loopTurns = new TurnBudget();
