import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Dhis2Settings } from '../../config/types.js';
import { RecheckNotReady } from '../../delivery/types.js';
import { type Resource, trackedEntityResource } from '../../mapping/index.js';
import type { Logger } from '../../observability/logger.js';
import type { Evaluation, SourcePipeline } from '../pipeline.js';
import type { SubjectRecheck } from '../recheck.js';
import { lastReaderFirst } from '../shared/last-reader.js';
import { failureToThrow, isForeign, SourceCallError } from '../shared/source-error.js';
import { type Dhis2Client, Dhis2SourceError, isDhis2Uid, type TrackedEntityListing } from './client.js';
import { Dhis2Fetcher } from './fetcher.js';
import type { TrackerTrackedEntity } from './schemas.js';

const TRACKED_ENTITY = 'TrackedEntity/';

/** How DHIS2 refused to show a tracked entity read in the programme: its 404, or its 403 (older versions). */
type Refusal = 404 | 403;

/**
 * Reads each tracked entity again (in the source's programme, with its fields) and evaluates it again,
 * so a deactivation or a cleared date counts too.
 *
 * DHIS2's refusal of that read does not mean deleted. Since dhis2-core #20280 (DHIS2-19210) it answers 404
 * alike for a soft-deleted tracked entity and for a live one whose program owner org unit is outside the
 * user's capture scope (ownership transferred to another district, or the bridge user's org units
 * narrowed). Before it, the same read of such a live one answers 403 (`OWNERSHIP_ACCESS_DENIED`;
 * `PROGRAM_ACCESS_CLOSED` in a closed programme; the registering org unit outside the user's search
 * scope: "User has no read access to organisation unit"). A 403 used to fail the recheck, and the worker
 * sent every row of the batch as recorded, a birth DHIS2 may have withdrawn meanwhile among them. So on
 * either the list is asked with includeDeleted=true (Dhis2Client.trackedEntityListing), and only
 * `deleted: true` withdraws the unsent row (a poll by updatedAfter never returns a deleted one again).
 *
 * Otherwise DHIS2 cannot tell the bridge (it lists the entity live but will not let the user read it,
 * does not list it at all: out of scope, or purged, or the list could not be asked). Then neither
 * withdrawing (a live birth lost) nor sending what was recorded (a deleted duplicate registered, unseen)
 * is right: a person decides. The rows are kept dead as the pipeline keeps a record the source will not
 * serve (SourcePipeline.unserved: error kind `source-read`): counted and shown (`ledger --status dead`,
 * the admin page), never sent by the worker, and a replay reads the record again first, so once the user
 * sees it again it goes out under its transactionIds, once; one deleted meanwhile is withdrawn then. Not
 * `cancelUnsent` (skipped reads as settled and does not replay), and not left pending (the worker would
 * send it, or recheck it again and again with nobody told).
 *
 * Another source of the same DHIS2 server and programme (`sharing`: one split by district, each source with
 * a user of its own district) may be shown what this one's user is not: a child transferred to the other
 * district while its row waited. Its user is asked before the list (each such source once per subject and
 * recheck, the one that last read the record for this row first; refused too, its list is asked after this
 * source's, so a child deleted after the move is withdrawn), and what it reads is evaluated and committed
 * through that source's pipeline, which records it on this source's row (SourcePipeline ownerOf, noting
 * the reader as read_by_source): the row keeps its source and transactionIds, so it goes out once, as the
 * record is now. Held dead only when no configured source's user is shown it, the reason saying so. Lists
 * that disagree (one says deleted, another live: not DHIS2's own answers, see readSubject) make the row
 * wait, neither withdrawn nor held dead, the reason in the worker's log.
 *
 * A list (this source's or another's), or a read through another source, asked once DHIS2 refused this
 * source's user the record, that DHIS2 did not answer now (a gateway's 502, 503 or 504 while it restarts,
 * no answer, a 429: notAnsweredNow) makes the row wait, alone, asked again at the next recheck: held dead,
 * it would wait for a person after an outage that ends by itself. DHIS2's own failure there (a 500) still
 * holds it dead, the reason saying so.
 *
 * The row's own read failing (a 5xx through the client's retries, no answer) leaves out that subject
 * alone, as in the FHIR recheck (fhir/reevaluate.ts): what the other reads show is recorded (withdrawn,
 * updated, held dead), then the failure is thrown. The worker sends only the unread subjects' rows as
 * recorded (an outage of the source does not stop registrations), where before one failed read sent the
 * whole batch so, a birth DHIS2 had deleted meanwhile among them. A proxy's page, to a read, a list or a
 * context read, says nothing of the record: the row waits (RecheckNotReady naming its subject), and only
 * it: the others read fine go on.
 */
export function dhis2Recheck(deps: {
  sourceId: string;
  client: Dhis2Client;
  pipeline: SourcePipeline;
  dhis2: Dhis2Settings;
  logger: Logger;
  /**
   * The other sources of the same DHIS2 server and programme whose users may be shown a record this
   * source's user is not (asked when it is refused: see above). Called at each recheck.
   */
  sharing?: () => readonly Dhis2Reader[];
  /** The source that last read this subject's record for this source's row (its read_by_source), if any. */
  lastReader?: (subjectKey: string) => string | undefined;
}): SubjectRecheck {
  const { sourceId, client, pipeline, dhis2 } = deps;
  const log = deps.logger.child({ component: 'dhis2-recheck', source: sourceId });
  return async (subjectKeys) => {
    // Aborted when the evaluation stops for the source: the context reads under way end then too.
    const stop = new AbortController();
    const fetcher = pipeline.reading(new Dhis2Fetcher(client, dhis2.fields, { signal: stop.signal }));
    // Each read that failed (readSubject): its subject is left out, the others go on.
    const failures: unknown[] = [];
    const others = deps.sharing?.() ?? [];
    try {
      const resources: Resource[] = [];
      const held: Evaluation[] = [];
      /** Records read through another source's user, by that source. */
      const through = new Map<Dhis2Reader, Resource[]>();
      try {
        const keys = subjectKeys.filter((key) => key.startsWith(TRACKED_ENTITY));
        // Read together (the client bounds the calls in flight), each failure kept apart: a DHIS2 that does
        // not answer costs one read's tries, not one per subject, and a read that fails leaves out that
        // subject alone.
        const reads = await Promise.all(keys.map((key) => readSubject(key)));
        // Stopping: not checked, the rows wait (delivery/worker.ts).
        if (client.closed && failures.length > 0) throw recheckFailure(failures);
        // Each deletion is its own durable transaction (an fsync) and a ledger search: a recheck or a
        // `replay --dead` finding many tracked entities deleted held serve's event loop for hundreds of ms
        // (/healthz, senders' acknowledgements waiting). A turn of the loop between them, as in the FHIR
        // recheck (fhir/reevaluate.ts); each one is whole in itself (its rows, its order marks), so what runs
        // in between is no more than another evaluation committing.
        let deleted = 0;
        for (const [i, key] of keys.entries()) {
          const read = reads[i];
          if (read?.deleted) {
            if (deleted++ > 0) await nextTurn();
            pipeline.recordDeleted(key, fetcher);
          } else if (read?.held) held.push(...pipeline.unserved(key, read.held, fetcher));
          else if (read?.resource && read.via) through.set(read.via, [...(through.get(read.via) ?? []), read.resource]);
          else if (read?.resource) resources.push(read.resource);
        }
      } finally {
        // One commit for them all, made even when the reads fail: the worker sends the rows of a recheck
        // that failed as recorded, and these must not go with them.
        if (held.length > 0) {
          pipeline.commit(held);
          // Counts only: which records is in the ledger.
          log.warn(
            { rows: held.length },
            'DHIS2 would not show tracked entities it does not list as deleted (404 or 403 to a read in the program), or their uid is not a DHIS2 uid: rows held dead',
          );
        }
      }
      fetcher.prime(resources);
      // Partial: a subject whose context reads fail (a mother's read timing out, a 429) is left out and
      // its failure kept, and the others' evaluations are committed. Evaluated as a whole, one such read
      // would drop every correction and withdrawal the batch found, and the worker would send them all as
      // recorded (as the FHIR recheck, sources/fhir/reevaluate.ts).
      // The rows' subjects only, not the rows that read them as context (SourcePipeline.evaluate `readers`).
      const evaluated = await pipeline.evaluate(resources, fetcher, undefined, { partial: true, stop, readers: false });
      for (const { subjectRef, error } of evaluated.failures ?? []) failed(subjectRef, error, client);
      pipeline.commit(evaluated.results);
      for (const [reader, read] of through) {
        // Counts only: which records is in the ledger (the row's read_by_source).
        log.info(
          { subjects: read.length, via: reader.sourceId },
          "tracked entities this source's user is not shown read through another source of the same DHIS2 programme",
        );
        await evaluateThrough(reader, read);
      }
      // What was read is recorded (a birth deleted or withdrawn meanwhile is not sent); now the failure, so
      // the worker sends only the unread subjects' rows as recorded, and those that must wait (a proxy's
      // page) wait, neither sent unchecked nor withdrawn.
      if (failures.length > 0) throw recheckFailure(failures);
    } finally {
      await pipeline.finished(fetcher);
    }

    /**
     * Evaluates and commits through `reader`'s pipeline (with a fetcher of its client: its user reads the
     * context too), which records the results on this source's rows (SourcePipeline ownerOf).
     */
    async function evaluateThrough(reader: Dhis2Reader, read: Resource[]): Promise<void> {
      const stop = new AbortController();
      const readerFetcher = reader.pipeline.reading(
        new Dhis2Fetcher(reader.client, reader.dhis2.fields, { signal: stop.signal }),
      );
      try {
        readerFetcher.prime(read);
        const evaluated = await reader.pipeline.evaluate(read, readerFetcher, undefined, {
          partial: true,
          stop,
          readers: false,
        });
        for (const { subjectRef, error } of evaluated.failures ?? []) failed(subjectRef, error, reader.client);
        reader.pipeline.commit(evaluated.results);
      } finally {
        await reader.pipeline.finished(readerFetcher);
      }
    }

    /** What DHIS2 showed of one subject; undefined when its read failed (the failure kept in `failures`). */
    async function readSubject(key: string): Promise<SubjectRead | undefined> {
      const uid = key.slice(TRACKED_ENTITY.length);
      // Not asked (the client refuses it): failing the recheck would send the batch's rows unchecked.
      if (!isDhis2Uid(uid)) return { held: NOT_A_UID };
      let entity: TrackerTrackedEntity | Refusal;
      try {
        entity = await readInProgram(client, uid, dhis2);
      } catch (err) {
        failed(key, err, client);
        return undefined;
      }
      if (typeof entity === 'object') return { resource: trackedEntityResource(entity) };
      const asked: OthersAsked = { refused: [], failed: [] };
      for (const reader of inOrder(key)) {
        let seen: TrackerTrackedEntity | Refusal;
        try {
          seen = await readInProgram(reader.client, uid, reader.dhis2);
        } catch (err) {
          // Stopping, a page that is not DHIS2's (a proxy's), or DHIS2 not answering now (a gateway's 502,
          // 503, 504 while it restarts; no answer): the row waits and is asked again, as for this source's
          // own read of a proxy's page. Otherwise (DHIS2's own 500, say) that source's failure is said in the
          // reason of a row held dead: this source's user was refused the record, so it is not sent as
          // recorded on a guess either.
          if (waitsOn(key, err, reader.client)) return undefined;
          asked.failed.push({ sourceId: reader.sourceId, message: err instanceof Error ? err.message : String(err) });
          continue;
        }
        if (typeof seen === 'object') return { resource: trackedEntityResource(seen), via: reader };
        asked.refused.push({ sourceId: reader.sourceId, refusal: seen });
      }
      const listing = await listingOf(client, uid, dhis2, key);
      if (listing === WAIT) return undefined;
      // A child deleted after moving district is listed only to the users who search where it is owned:
      // the other sources' users that were refused its read are asked too, in the same order, even when
      // this source's list answered, since any `live` vetoes a `deleted` (below).
      const deletedTo = listing === 'deleted' ? [sourceId] : [];
      const liveTo = listing === 'live' ? [sourceId] : [];
      for (const refused of asked.refused) {
        const reader = others.find((other) => other.sourceId === refused.sourceId);
        if (!reader) continue;
        const theirs = await listingOf(reader.client, uid, reader.dhis2, key);
        if (theirs === WAIT) return undefined;
        if (theirs instanceof Error) refused.listFailed = theirs.message;
        else if (theirs === 'deleted') deletedTo.push(reader.sourceId);
        else if (theirs === 'live') liveTo.push(reader.sourceId);
      }
      // Withdrawn only when some list says deleted and none says live. DHIS2 soft-deletes for good (a
      // deleted uid is never imported again) and lists a record alike to every user who may search where
      // it is owned, so two lists disagree only when one answer is not what DHIS2 holds now (a cache or a
      // proxy in front of it, a server restored from a backup behind the same address). Of the two,
      // `deleted` is the likelier truth (the later state, which no later change undoes); but nothing here
      // tells which answer is stale, and the mistakes are not alike: a withdrawal settles the row for good
      // (a live birth never registered, nobody told), a wait costs time and ends by itself once the lists
      // agree. So a `live` vetoes: the row is neither withdrawn nor held dead (a person would have to
      // replay it, for what the next recheck may settle); it waits, as for a proxy's page, alone (its
      // batch's other rows go on), and is asked again at each recheck, the reason in the worker's log.
      if (deletedTo.length > 0 && liveTo.length > 0) {
        failures.push(new RecheckNotReady(disagreeing(deletedTo, liveTo), { subjectKeys: [key] }));
        return undefined;
      }
      if (listing === 'deleted' || deletedTo.length > 0) return { deleted: true };
      return { held: notShown(entity, listing, asked) };
    }

    /**
     * What `reader`'s list with includeDeleted=true says of `uid`, or the error of a list DHIS2 refused or
     * failed (its own 500, say); WAIT when the bridge is stopping, the answer was not DHIS2's (a proxy's
     * page) or DHIS2 did not answer now (a gateway's 5xx, no answer: notAnsweredNow), so that the row of
     * `key` waits (waitFor), as for a read: neither held dead for an outage nor withdrawn on another list.
     */
    async function listingOf(
      reader: Dhis2Client,
      uid: string,
      settings: Dhis2Settings,
      key: string,
    ): Promise<TrackedEntityListing | Error | typeof WAIT> {
      try {
        return await reader.trackedEntityListing(uid, settings.program);
      } catch (err) {
        if (waitsOn(key, err, reader)) return WAIT;
        return err instanceof Error ? err : new Error(String(err));
      }
    }

    /**
     * Whether `err`, a call through `reader` asked once this source's user was refused the record (another
     * source's read, a list), makes `key`'s row wait (waitFor) rather than be held dead: the bridge stopping,
     * a page that is not DHIS2's (a proxy's), or DHIS2 not answering now (notAnsweredNow).
     */
    function waitsOn(key: string, err: unknown, reader: Dhis2Client): boolean {
      if (!reader.closed && !isForeign(err) && !notAnsweredNow(err)) return false;
      waitFor(key, err, reader);
      return true;
    }

    /**
     * `key`'s row waits for `err`, alone (RecheckNotReady naming its subject): the batch's other rows go on
     * as their reads left them. A failure of a stopping bridge (`reader` closed) is kept as it is: the worker
     * leaves every row then.
     */
    function waitFor(key: string, err: unknown, reader: Dhis2Client): void {
      if (reader.closed) failures.push(err);
      else failures.push(new RecheckNotReady(err instanceof Error ? err.message : String(err), { subjectKeys: [key] }));
    }

    /**
     * `key`'s read (or its evaluation's context reads) through `reader` failed. A proxy's page says nothing
     * of the record, nor of the others: that row waits alone, where before every row of the source waited
     * with it (app.ts), recheck after recheck while the page lasted. Anything else (DHIS2's 5xx through the
     * retries, no answer) is kept as it is: the worker sends that row as recorded, as in the FHIR recheck.
     */
    function failed(key: string, err: unknown, reader: Dhis2Client): void {
      if (isForeign(err)) waitFor(key, err, reader);
      else failures.push(err);
    }

    /** The other sources to ask for `key`, each once: the one that last read it for this row first. */
    function inOrder(key: string): readonly Dhis2Reader[] {
      if (others.length < 2) return others;
      return lastReaderFirst(others, (reader) => reader.sourceId, deps.lastReader?.(key));
    }
  };
}

/** Another DHIS2 source of the same server and programme, with its own user (sources/overlap.ts sourcesSharingRecords). */
export interface Dhis2Reader {
  sourceId: string;
  client: Dhis2Client;
  pipeline: SourcePipeline;
  dhis2: Dhis2Settings;
}

/** What the other sources answered for a record this source's user is refused. */
interface OthersAsked {
  /** Refused its read; `listFailed`: its list could not be asked either (the error). */
  refused: Array<{ sourceId: string; refusal: Refusal; listFailed?: string }>;
  /** Its read failed (so its list was not asked). */
  failed: Array<{ sourceId: string; message: string }>;
}

/** A list that must be asked again later (listingOf): the rows wait. */
const WAIT = Symbol('wait');

/**
 * The one failure a recheck throws for them all. The rows that wait (RecheckNotReady naming their
 * subjects: a proxy's page to their read or list, DHIS2 not answering a read or list after a refusal, lists that disagree) wait
 * alone, and the other failure, if any, goes with it: the worker sends the unread subjects' rows as
 * recorded, as without them. A proxy's page no subject was named for (failureToThrow puts it first) makes
 * every row of the source wait (app.ts).
 */
function recheckFailure(failures: readonly unknown[]): unknown {
  const waiting = failures.filter((err): err is RecheckNotReady => err instanceof RecheckNotReady);
  const other = failureToThrow(failures.filter((err) => !(err instanceof RecheckNotReady)));
  const [first] = waiting;
  if (!first || isForeign(other)) return other;
  return new RecheckNotReady(first.message, {
    subjectKeys: waiting.flatMap((err) => err.subjectKeys ?? []),
    otherFailure: other,
  });
}

/**
 * Why a row waits when DHIS2's lists disagree (see readSubject): source ids only, no uid (it is logged,
 * and the worker's log names no record).
 */
function disagreeing(deletedTo: readonly string[], liveTo: readonly string[]): string {
  return (
    `DHIS2's lists with includeDeleted=true disagree on whether a tracked entity none of the sources' users may read ` +
    `was deleted: deleted to the user of ${deletedTo.join(', ')}, not deleted to that of ${liveTo.join(', ')}. ` +
    'DHIS2 deletes for good, so one answer is not its own now (a cache or proxy in front of it at sources[].baseUrl?): ' +
    'neither withdrawn nor held dead, the row waits and is asked again at the next recheck'
  );
}

/**
 * A subject read: its record (none when DHIS2 gave nothing to map; `via` the other source whose user it was
 * read as), deleted, or held dead for this reason.
 */
interface SubjectRead {
  resource?: Resource;
  via?: Dhis2Reader;
  deleted?: boolean;
  held?: string;
}

/** A page that is not DHIS2's own (a proxy's or firewall's 404 or 403: Dhis2Client), saying nothing of the record. */

/**
 * DHIS2 could not be asked just now, through the client's tries: no answer (its deadline, a connection
 * refused or reset), a 408 or 429, or a gateway in front of it answering for it (502, 503, 504: an nginx
 * while DHIS2 restarts). It says nothing of the record, and a row held dead for it would wait for a person
 * after the outage ends by itself. Not DHIS2's own 500, which may concern the record (answered again at
 * each recheck, it would keep the row waiting for ever, nobody told): that is said in a dead row's reason.
 */
function notAnsweredNow(err: unknown): boolean {
  if (!(err instanceof SourceCallError) || !err.retryable || err.badId) return false;
  return err.status === undefined || [408, 429, 502, 503, 504].includes(err.status);
}

/** The tracked entity read in the programme, or how DHIS2 refused it (see dhis2Recheck). */
async function readInProgram(
  client: Dhis2Client,
  uid: string,
  dhis2: Dhis2Settings,
): Promise<TrackerTrackedEntity | Refusal> {
  try {
    return (await client.trackedEntity(uid, { program: dhis2.program, fields: dhis2.fields })) ?? 404;
  } catch (err) {
    // DHIS2's own 403 only: a proxy's or firewall's page (no WebMessage: see Dhis2Client) says nothing of
    // the record; it fails the read, and the row waits. Nor one refusing the programme (2.42+: the user has
    // no access to it), which fails the read as the source's configuration.
    if (err instanceof Dhis2SourceError && err.status === 403 && !err.foreign && !err.programRefused) return 403;
    throw err;
  }
}

const NOT_A_UID =
  'its uid is not a DHIS2 uid (11 letters and digits, a letter first), so the bridge does not ask DHIS2 for it: ' +
  'DHIS2 issues no such uid, and the answer that listed it was not its own. Not sent and not withdrawn: check ' +
  'what answers at sources[].baseUrl (or leave it dead: a dead row is never sent)';

/**
 * Why a row is held: no personal data (a uid is DHIS2's system id, the error names the call and status;
 * source ids are the configuration's).
 */
function notShown(
  refusal: Refusal,
  listing: Exclude<TrackedEntityListing, 'deleted'> | Error,
  asked: OthersAsked,
): string {
  const decide =
    'Not sent and not withdrawn: check it in DHIS2, then replay this row once the user sees it again ' +
    '(or leave it dead: a dead row is never sent)';
  const others = othersSaid(asked);
  if (listing === 'live')
    return (
      `DHIS2 lists it as not deleted, yet a read in the program answers ${refusal} to the bridge's user: its ` +
      `program owner org unit is outside the user's capture scope (ownership transferred, or the user's org units narrowed).${others} ${decide}`
    );
  if (listing === 'unlisted')
    return (
      `DHIS2 no longer shows it to the bridge's user (a read answers ${refusal} and the list with includeDeleted=true ` +
      "does not have it): deleted for good, or its program owner org unit moved outside the user's capture " +
      `scope.${others} ${decide}`
    );
  return (
    `DHIS2 answered ${refusal} to a read, and whether it was deleted could not be asked (${listing.message}).${others} ` +
    'Not sent and not withdrawn: replay this row to ask again (or leave it dead: a dead row is never sent)'
  );
}

/** What the other sources of the programme answered, as a sentence of the reason (empty when there are none). */
function othersSaid({ refused, failed }: OthersAsked): string {
  let said = '';
  if (refused.length > 0) {
    // Each source once: one whose list failed after its read was refused says both in its parentheses.
    const whom = refused
      .map(({ sourceId, refusal, listFailed }) =>
        listFailed === undefined
          ? `${sourceId} (${refusal})`
          : `${sourceId} (${refusal}; whether it was deleted could not be asked through it: ${listFailed})`,
      )
      .join(', nor to that of ');
    const which = refused.length === 1 ? 'the other source' : 'the other sources';
    said += ` Nor does DHIS2 show it to the user of ${whom}, ${which} of this server and programme`;
    said += failed.length === 0 ? ": no configured source's user is shown it." : '.';
  }
  if (failed.length > 0) {
    const where = failed.map(({ sourceId, message }) => `${sourceId} (${message})`).join(', nor through ');
    said += ` It could not be asked through ${where}: replay this row to ask again.`;
  } else if (refused.some(({ listFailed }) => listFailed !== undefined)) said += ' Replay this row to ask again.';
  return said;
}
