// A loop that fails every tick (a checkpoint every 0.5 s, write-backs every second) on a full disk wrote a
// line per tick, about 155 MB a day with stacks, onto the very disk (Docker's json-file logs sit beside
// /data) the operator was freeing. The inbox's refusals were already logged once a minute with a count
// (sources/fhir/receiver.ts); this is that, for a loop: the first failure of a kind at once, the same kind
// again at most once a minute with the repeats since its last line, and one line when the loop recovers.
// A loop that fails and succeeds in turn (a disk with a little room freed now and then) wrote both lines
// every round: a kind's last line is kept through a success, and a success is said only after a failure line
// or a minute after it was last said.
import type { Logger } from './logger.js';

/** The same kind of failure is logged at most this often. */
export const REPEAT_LOG_MS = 60_000;

/** Kinds remembered at once: a loop meets a handful; past this the one logged longest ago is forgotten. */
const MAX_KINDS = 16;

/**
 * SQLite's codes for storage that cannot be used now (a full disk, an I/O error, a read-only file, a lock
 * held past the busy timeout) or until it is restored (damaged pages, a file that is no database): expected
 * of a loop on a ledger, and its stack says nothing an operator can use (where the damage was met is no
 * more use than where the disk was full: doctor's quick_check names the pages). Any other error may be a bug,
 * and keeps its stack. Not storeUnavailable (ledger/db.ts), only what a retry may get past (freed space, a
 * released lock), nor write-health's STORAGE_CODE, what /readyz keeps, which has no lock codes.
 */
const EXPECTED_CODE = /^SQLITE_(FULL|IOERR|READONLY|BUSY|LOCKED|CANTOPEN|PERM|CORRUPT|NOTADB)(_|$)/;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** `err`'s code when it is an expected storage code (EXPECTED_CODE), else undefined. */
function expectedCode(err: unknown): string | undefined {
  const code = codeOf(err);
  return code !== undefined && EXPECTED_CODE.test(code) ? code : undefined;
}

/**
 * What makes two failures the same: an expected storage code alone (SQLite words it by the operation), else
 * the code (or the error's name) and the message with numbers taken out. A generic code (SQLITE_ERROR) covers
 * unrelated bugs, "no such table" then "no such column": the second must not wait a minute behind the first.
 * Never logged; bounded.
 */
export function failureKind(err: unknown): string {
  const expected = expectedCode(err);
  if (expected !== undefined) return expected;
  const name = codeOf(err) ?? (err instanceof Error ? err.name : typeof err);
  const message = (err as { message?: unknown } | null)?.message;
  return `${name}: ${String(message ?? err)
    .replace(/\d+/g, '#')
    .slice(0, 200)}`;
}

/** `err` as logged: an expected storage error without its stack (its code and SQLite's words say it all). */
function shown(err: unknown): unknown {
  if (err instanceof Error && expectedCode(err) === undefined) return err;
  const code = codeOf(err);
  const message = (err as { message?: unknown } | null)?.message;
  return {
    ...(err instanceof Error ? { type: err.name } : {}),
    ...(code !== undefined ? { code } : {}),
    message: String(message ?? err),
  };
}

export interface RepeatedFailureOptions {
  /** The line's level while failing (recovery is `info`). */
  level: 'warn' | 'error';
  now?: () => number;
  /** Defaults to REPEAT_LOG_MS. */
  everyMs?: number;
}

/**
 * The log of one loop's failures. `failed` for each failure (`err` under `err`, with `fields`); `recovered`
 * when a round succeeds. Fields and errors go through the logger's redaction like any other line.
 *
 * Each failure is logged, or counted once in the `repeats` of a later line: its kind's next failure line, or
 * the next recovery line. A kind's last line is kept through a success, so a loop failing every other round
 * logs that failure once a minute, not once a round. A recovery line follows a failure line (after the last
 * recovery line), or comes a minute after the last one for failures only counted meanwhile; it counts the
 * failures since the last recovery line, `failingMs` from the first of them to the success. A failure after
 * a minute or more of success is a new outage: a recovery line still owed is written first, and the failure
 * is logged at once (its kind's last line is older than that minute).
 */
export class RepeatedFailure {
  private readonly kinds = new Map<string, { loggedAt: number; repeats: number }>();
  /** Failures since the last success. */
  private failures = 0;
  /** Failures since the last recovery line, and when the first of them was. */
  private unsaid = 0;
  private firstAt = 0;
  /** While failures are unsaid: when the loop began to succeed again (undefined while it fails). */
  private recoveredAt: number | undefined;
  /** The recovery line owed while a success is not said yet. */
  private owed: { message: string; fields: Record<string, unknown> } | undefined;
  /** Whether a failure line was written since the last recovery line. */
  private failureLogged = false;
  private recoveryLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly log: Logger,
    private readonly message: string,
    private readonly options: RepeatedFailureOptions,
  ) {}

  private get everyMs(): number {
    return this.options.everyMs ?? REPEAT_LOG_MS;
  }

  /** Whether anything failed since the last success. */
  get failing(): boolean {
    return this.failures > 0;
  }

  failed(err: unknown, fields: Record<string, unknown> = {}): void {
    const at = (this.options.now ?? Date.now)();
    // Healthy for a minute or more: what failed before is said before this new outage.
    if (this.recoveredAt !== undefined && at - this.recoveredAt >= this.everyMs) this.sayRecovered(at);
    this.recoveredAt = undefined;
    if (this.unsaid === 0) this.firstAt = at;
    this.unsaid++;
    this.failures++;
    const kind = failureKind(err);
    const seen = this.kinds.get(kind);
    if (seen && at - seen.loggedAt < this.everyMs) {
      seen.repeats++;
      return;
    }
    this.log[this.options.level](
      { ...fields, err: shown(err), ...(seen ? { repeats: seen.repeats } : {}) },
      this.message,
    );
    this.failureLogged = true;
    this.kinds.delete(kind);
    this.kinds.set(kind, { loggedAt: at, repeats: 0 });
    if (this.kinds.size > MAX_KINDS) this.kinds.delete(this.kinds.keys().next().value as string);
  }

  /**
   * A round succeeded, and another line says so (a whole of which this is a part): no line. Each kind's last
   * line and unlogged repeats are kept, so a part that fails every other round is still logged once a minute.
   */
  forget(): void {
    this.failures = 0;
    this.unsaid = 0;
    this.recoveredAt = undefined;
    this.owed = undefined;
    this.failureLogged = false;
  }

  /**
   * A round succeeded: says so after failures, with how many since the last such line (in all, and unlogged)
   * and for how long; only after a failure line, or a minute after the last such line (see the class).
   */
  recovered(message: string, fields: Record<string, unknown> = {}): void {
    if (this.unsaid === 0) return;
    const at = (this.options.now ?? Date.now)();
    this.recoveredAt ??= at;
    this.failures = 0;
    this.owed = { message, fields };
    if (this.failureLogged || at - this.recoveryLoggedAt >= this.everyMs) this.sayRecovered(at);
  }

  private sayRecovered(at: number): void {
    if (!this.owed || this.recoveredAt === undefined) return;
    // `repeats`: the failures since each kind's last line, which no line counted yet; counted now.
    let repeats = 0;
    for (const kind of this.kinds.values()) {
      repeats += kind.repeats;
      kind.repeats = 0;
    }
    this.log.info(
      { ...this.owed.fields, failures: this.unsaid, repeats, failingMs: this.recoveredAt - this.firstAt },
      this.owed.message,
    );
    this.unsaid = 0;
    this.owed = undefined;
    this.recoveredAt = undefined;
    this.failureLogged = false;
    this.recoveryLoggedAt = at;
  }
}
