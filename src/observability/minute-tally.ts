// Refusals and left-out records can come thousands a second (a flood, a forged sender), and a line each
// buries everything else in the log: such lines are written at most once a minute, with how many there
// were since the last one. The receiver, the HTTP server, the subscription routes and the inbox processor
// each kept this count and time by hand.
import { REPEAT_LOG_MS } from './repeated-failure.js';

/** A count of events logged at most every `everyMs`, the first at once. */
export class MinuteTally {
  private count = 0;
  private loggedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly everyMs = REPEAT_LOG_MS) {}

  /**
   * Counts `n` more at `now`. When a line is due, returns the count since the last line (this one
   * included) and starts counting again; else undefined. The caller builds the line's fields only then.
   */
  add(now: number, n = 1): number | undefined {
    this.count += n;
    if (now - this.loggedAt < this.everyMs) return undefined;
    const count = this.count;
    this.count = 0;
    this.loggedAt = now;
    return count;
  }
}
