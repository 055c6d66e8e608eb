// Evaluations of one source run side by side: a poll pass, the inbox processor's re-reads of notified
// resources, the worker's recheck before a first send, a replay. Each reads the source at its own time
// and commits later, so without care they commit out of order. A poll page read before an EMR user
// marked an encounter "entered in error" would commit after the notification's evaluation had
// withdrawn the birth, and queue the stale birth again; the other way round, a stale "no event" would
// withdraw a birth a later read had found.
//
// So each evaluation is a session, begun before its first read (a poll pass's cache lives for the whole
// pass, so everything it maps was read after the pass began). A commit for a subject that another
// session committed after this one began is not applied: either may have read the newer data (the one
// begun later may have read first). The subject is read once more instead, as a fresh session
// (SourcePipeline.finished), whose reads follow both.
//
// Sessions and commits are numbered, not timed: a clock stepped back by NTP cannot reorder them. The
// order holds within one process (serve runs every evaluator of its sources); a `sync --once` beside a
// running `serve` is not ordered against it.
import { setBounded } from '../util/bounded-map.js';

/** One evaluation: everything it maps was read after it began (at tick `id`). */
export interface EvaluationSession {
  readonly id: number;
}

/**
 * Subjects remembered while an older session is still open. A poll pass of a first sync commits a
 * subject per patient; past the bound the oldest entries go, which only lets through a commit that
 * would have been refused (the behaviour without this order), never refuses one that should pass.
 */
const MAX_SUBJECTS = 50_000;

export class EvaluationOrder {
  private tick = 0;
  private readonly open = new Set<number>();
  /** Subject → the session that last committed it, and when. */
  private readonly committed = new Map<string, { by: number; at: number }>();

  constructor(private readonly maxSubjects = MAX_SUBJECTS) {}

  begin(): EvaluationSession {
    const session = { id: ++this.tick };
    this.open.add(session.id);
    return session;
  }

  /** The session read and committed all it will; commits no open session can be overtaken by are forgotten. */
  end(session: EvaluationSession): void {
    this.open.delete(session.id);
    if (this.open.size === 0) {
      this.committed.clear();
      return;
    }
    const oldestOpen = Math.min(...this.open);
    // Entries are in commit order (setBounded moves a key to the end), so the forgettable ones lead.
    for (const [subject, entry] of this.committed) {
      if (entry.at > oldestOpen) break;
      this.committed.delete(subject);
    }
  }

  /** Commits remembered (memory bound; tests). */
  get remembered(): number {
    return this.committed.size;
  }

  /** True when another session committed `subject` after `session` began. */
  overtaken(session: EvaluationSession, subject: string): boolean {
    const entry = this.committed.get(subject);
    return entry !== undefined && entry.by !== session.id && entry.at > session.id;
  }

  /** `session` committed `subject` (an event, a skip, a withdrawal, or finding it no event). */
  commit(session: EvaluationSession, subject: string): void {
    // With no other session open, none can be overtaken by this commit: later ones begin after it.
    if (this.open.size > 1) setBounded(this.committed, subject, { by: session.id, at: ++this.tick }, this.maxSubjects);
  }
}
