// What a write-back target (one per source with `writeBack` configured) is given and may answer.
import { isFhirId } from '../fhir/notification.js';
import { SourceCallError } from '../shared/source-error.js';

/** One tracking id to write back, with the ledger row's references (no personal data). */
export interface WriteBackJob {
  rowId: number;
  sourceId: string;
  eventType: string;
  /** The subject of the event: `Patient/<id>` (FHIR) or `TrackedEntity/<uid>` (DHIS2). */
  subjectKey: string;
  /** The resource that triggered it: e.g. `Encounter/<id>` or `Event/<uid>`. */
  sourceRef: string;
  trackingId: string;
  /**
   * The tracking ids this row's job had before (WriteBackItem.earlierTrackingIds): values the source may
   * hold because this job wrote them, which a target that never overwrites another value may replace.
   */
  earlierTrackingIds?: readonly string[];
  eventId: string | null;
}

/**
 * `written`: the source now holds the tracking id; `already`: it held it before (nothing was written);
 * `replaced`: written over one of the row's earlier tracking ids (recorded as written, logged as a replacement).
 */
export type WriteResult = 'written' | 'already' | 'replaced';

/**
 * A write that left other tracking ids beside this one (FHIR: identifiers of the write-back system with
 * another value, which a target that appends keeps): a sign of a second registration of the record in
 * OpenCRVS, or of another event of the same person. `note` says so for the job (no personal data: the
 * resource type, the system and the tracking ids); `othersHeld` are those ids, for the log line.
 */
export interface WriteAnswer {
  result: 'written' | 'already';
  othersHeld: readonly string[];
  note: string;
}

export interface WriteBackTarget {
  /**
   * `signal` fires when the bridge wants no answer any more (it is stopping, or the sync pass reached its
   * deadline): the calls in flight end at once, and the write rejects.
   */
  write(job: WriteBackJob, signal?: AbortSignal): Promise<WriteResult | WriteAnswer>;
}

/** A write-back failure; `permanent` ones are not retried (the record is gone, the source refused the shape). */
export class WriteBackError extends Error {
  /**
   * The source did not show the record to these credentials (DHIS2's own 404 or 403 to a read in the
   * programme: deleted, or owned by an org unit outside the user's capture scope). Another source of the
   * same records, with another user, may see it (WriteBackRunner).
   */
  readonly notShown: boolean;

  constructor(
    message: string,
    readonly permanent: boolean,
    options?: { cause?: unknown; notShown?: boolean },
  ) {
    super(message, options);
    this.name = 'WriteBackError';
    this.notShown = options?.notShown === true;
  }
}

/** HTTP statuses that will not change on retry: the request itself is wrong for this source. */
export function isPermanentStatus(status: number | undefined): boolean {
  return status === 400 || status === 404 || status === 405 || status === 409 || status === 410 || status === 422;
}

/**
 * Any failure of a write-back as a WriteBackError: a source call refused with a status that will not
 * change on retry is permanent, and so is one the source client gave up on at once without a status (an
 * answer that is no FHIR resource, one too large, a reference that is no resource type and id) or refused
 * for its id (badId): the same call brings the same answer, so the job is abandoned with the reason rather
 * than spending its attempts. Not a call the bridge cut off itself (stopping, a deadline), nor one whose
 * token endpoint refused the source's credentials: an operator fixes those (as a 401 or 403), and the job
 * is retried within its budget. Network errors, timeouts, 429 and 5xx (and anything unexpected) retry.
 */
export function toWriteBackError(err: unknown, what: string): WriteBackError {
  if (err instanceof WriteBackError) return err;
  if (err instanceof SourceCallError) {
    const answeredForGood =
      isPermanentStatus(err.status) || (err.status === undefined && !err.cutOff && !refusedCredentials(err));
    return new WriteBackError(`${what}: ${err.message}`, err.badId || (!err.retryable && answeredForGood), {
      cause: err,
    });
  }
  return new WriteBackError(`${what}: ${err instanceof Error ? err.message : String(err)}`, false, { cause: err });
}

/** The source's OAuth2 token endpoint refused it (its SourceAuthError, kept as the cause by name: a scrubbed copy). */
function refusedCredentials(err: SourceCallError): boolean {
  return err.cause instanceof Error && err.cause.name === 'SourceAuthError';
}

/**
 * `Type/id` → parts; undefined for anything else. The id is written to as `<base>/<Type>/<id>` with the
 * source's credentials: it must be a FHIR id by the rule the subscription receiver applies (isFhirId), so
 * neither `.` nor `..` (the base itself, its parent) can steer the write elsewhere. DHIS2 uids are FHIR ids.
 */
export function splitRef(ref: string): { type: string; id: string } | undefined {
  const match = /^([A-Z][A-Za-z]+)\/([^/]*)$/.exec(ref);
  const [, type, id] = match ?? [];
  return type && id !== undefined && isFhirId(id) ? { type, id } : undefined;
}

/**
 * What kind of failure a write-back met, for the log line that may not carry its message's record
 * references: `not-shown` (the source's user is not shown the record), `credentials` (its token endpoint
 * refused them), `timeout`, `status` (the source answered with an HTTP status: logged beside it),
 * `no-answer` (network, cut off), `record` (the target's own finding: the record is gone, has no place for
 * the id, keeps changing), `unexpected`.
 */
export function writeBackErrorKind(err: unknown): { kind: string; status?: number } {
  if (!(err instanceof WriteBackError)) return { kind: 'unexpected' };
  if (err.notShown) return { kind: 'not-shown' };
  const cause = err.cause;
  if (cause instanceof SourceCallError) {
    if (refusedCredentials(cause)) return { kind: 'credentials' };
    if (cause.status !== undefined) return { kind: 'status', status: cause.status };
    if (cause.timedOut) return { kind: 'timeout' };
    return { kind: 'no-answer' };
  }
  return { kind: cause === undefined ? 'record' : 'unexpected' };
}

/**
 * A write-back error's message as it may be logged: the job's own references (`Patient/<id>`, the id
 * alone, as `Patient <id>` says it) replaced by `<Type>/{id}` and `{id}`. The message stays whole in the
 * write-back job (the `write-backs` command, the admin API), but a log line never names the record: some
 * EMRs use the medical record number as the resource id (docs/deployment.md, Logs). A short numeric id
 * also hides that number where it means something else; a log line less clear is the price.
 */
export function withoutReferences(message: string, job: Pick<WriteBackJob, 'sourceRef' | 'subjectKey'>): string {
  let text = message;
  const refs = [job.sourceRef, job.subjectKey].filter((ref) => ref !== '');
  // Whole references first, longest first (one may contain the other), then the ids alone.
  for (const ref of [...refs].sort((a, b) => b.length - a.length)) {
    const slash = ref.indexOf('/');
    text = text.split(ref).join(slash > 0 ? `${ref.slice(0, slash)}/{id}` : '{ref}');
  }
  const ids = refs.map((ref) => ref.slice(ref.indexOf('/') + 1)).filter((id) => id !== '');
  for (const id of [...new Set(ids)].sort((a, b) => b.length - a.length)) {
    // As a word of its own: not inside a longer id, and not the `{id}` put in above.
    const word = new RegExp(`(?<![\\w.{-])${escapeRegExp(id)}(?![\\w}-]|\\.\\w)`, 'g');
    text = text.replace(word, '{id}');
  }
  return text;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
