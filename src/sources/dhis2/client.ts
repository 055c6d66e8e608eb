// The bridge's calls to a DHIS2 server (Tracker API, 2.40+): auth (personal access token or basic), a
// timeout on every call, bounded retries with backoff for network errors, timeouts, 408, 429 and 5xx (a
// 429's or 503's Retry-After waited within sources[].timeoutMs: shared/retry-after.ts), and every
// response checked against its schema. Errors name the call and the status, never the query nor the body
// (either may hold personal data), save DHIS2's own message refusing a call that sent no body (it names
// the uids of the query's metadata), scrubbed and bounded.
import type { ValidateFunction } from 'ajv';
import type { SourceSettings } from '../../config/types.js';
import type { Logger } from '../../observability/logger.js';
import type { SecretScrubber } from '../../observability/secret-scrubber.js';
import { callSignal, pause } from '../../util/call-signal.js';
import { isRedirect, NO_REDIRECT, redirectOrigin } from '../../util/redirect.js';
import { ResponseTooLargeError, readBodyCapped } from '../shared/read-body.js';
import { sourceRequestLimit } from '../shared/request-limit.js';
import { callTries, nextTryDelay, retryAfterHint, retryAfterOf } from '../shared/retry-after.js';
import { createSourceAuthenticator, SourceAuthError, type SourceAuthenticator } from '../shared/source-auth.js';
import { loggableCause, noAnswer, SourceCallError } from '../shared/source-error.js';
import { sourceSecrets } from '../shared/source-secrets.js';
import {
  type ImportReport,
  isImportReport,
  isObjectResponse,
  isTrackedEntity,
  isTrackedEntityPage,
  isTrackerEvent,
  schemaProblem,
  type TrackerEvent,
  type TrackerTrackedEntity,
} from './schemas.js';

/** A failed call to DHIS2. */
export class Dhis2SourceError extends SourceCallError {
  override readonly name = 'Dhis2SourceError';
  /**
   * DHIS2 refused the programme the call named (sources[].dhis2.program), not a record: it has no such
   * programme (`missing`: a list's 400, a read's 404), or does not share its data with the source's user
   * (`unshared`: 2.42+'s 403). The source's configuration, or the user's in DHIS2, is to fix; the answer
   * says nothing of any record (never "gone": see isGone) nor of the credentials.
   */
  programRefused: 'missing' | 'unshared' | undefined;
  /**
   * The org unit of sources[].dhis2.orgUnits DHIS2 refused to search because it is outside the user's search
   * scope ("Organisation unit is not part of the search scope: <uid>"): the user's org units in DHIS2, or the
   * key, are to fix; the credentials were accepted.
   */
  orgUnitOutOfScope: string | undefined;
}

export interface Dhis2ClientOptions {
  logger: Logger;
  /** Attempts per call for retryable failures (the poller retries whole passes on top). */
  attempts?: number;
  retryBaseMs?: number;
}

export type ImportStrategy = 'CREATE' | 'UPDATE' | 'CREATE_AND_UPDATE';

/** A caller's hold on one call (the write-back's): its signal ends the call, and any try after it, at once. */
export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * DHIS2's uid rule (dhis2-core CodeGenerator: 11 characters, a letter then letters or digits). DHIS2
 * refuses any other uid on import (E1048), so it never serves a record under one.
 */
const UID = /^[A-Za-z][A-Za-z0-9]{10}$/;

/** True for a DHIS2 uid (see UID): the only ids the client puts in a path or a filter. */
export function isDhis2Uid(value: string): boolean {
  return UID.test(value);
}

/** A page of 1,000 tracked entities with every field is a few MB; far more is a broken or hostile server. */
const MAX_ANSWER_BYTES = 64 * 1_048_576;

export class Dhis2Client {
  /** The server root (without `/api`). */
  readonly baseUrl: string;
  private readonly auth: SourceAuthenticator;
  private readonly attempts: number;
  private readonly retryBaseMs: number;
  private readonly log: Logger;
  private readonly limit: ReturnType<typeof sourceRequestLimit>;
  /** The source's secrets and the tokens obtained for it: every error this client throws is scrubbed of them. */
  readonly secrets: SecretScrubber;

  constructor(
    readonly settings: SourceSettings,
    options: Dhis2ClientOptions,
  ) {
    // Accept both https://dhis2.example.org and https://dhis2.example.org/api.
    this.baseUrl = settings.baseUrl.replace(/\/+$/, '').replace(/\/api$/, '');
    this.secrets = sourceSecrets(settings);
    this.log = options.logger.child({ component: 'dhis2-client', source: settings.id });
    this.auth = createSourceAuthenticator(
      settings.auth,
      settings.timeoutMs,
      this.secrets,
      this.closing.signal,
      this.log,
    );
    this.limit = sourceRequestLimit(settings);
    ({ attempts: this.attempts, retryBaseMs: this.retryBaseMs } = callTries(options, settings.retry));
  }

  private readonly closing = new AbortController();

  /** An OAuth2 token endpoint's answer is held: calls fail at once with it (SourceAuthenticator.held). */
  authHeld(): boolean {
    return this.auth.held();
  }

  /** Ends every call in flight and refuses new ones (shutdown must not wait out a slow server). */
  close(): void {
    this.closing.abort(new Dhis2SourceError('the bridge is stopping', undefined, false, { cutOff: true }));
  }

  /** True once `close` ended the client's calls: a call failing since says nothing of the server. */
  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  private async call<T>(
    operation: string,
    path: string,
    validate: ValidateFunction<T>,
    init: {
      method?: string;
      body?: unknown;
      okStatuses?: number[];
      /** Attempts for this call (default: the client's). */
      attempts?: number;
      /** What to change when the call times out (the settings that bound it), in place of the baseUrl hint. */
      timeoutHint?: string;
      /** The call reads one record: a 403 is DHIS2 refusing that record to the user, not the credentials. */
      oneRecord?: boolean;
      /**
       * The `program` the call names (sources[].dhis2.program): a list's 400 or a read's 404 saying DHIS2 has
       * no such programme names the key (noProgram), and is no answer about a record.
       */
      program?: string;
    } & CallOptions = {},
  ): Promise<T> {
    let lastError: Dhis2SourceError | undefined;
    const attempts = init.attempts ?? this.attempts;
    // Not retried: the caller wants no answer any more (its deadline, the bridge stopping).
    const cutOff = () =>
      new Dhis2SourceError(`${operation}: cut off by the bridge`, undefined, false, { cutOff: true });
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let status: number | undefined;
      try {
        if (init.signal?.aborted) throw cutOff();
        const auth = await this.auth.headers(this.closing.signal, init.signal);
        const headers: Record<string, string> = { accept: 'application/json', ...auth };
        if (init.body !== undefined) headers['content-type'] = 'application/json';
        // One slot per call, body included; the timeout starts when the call leaves, not while it waits.
        const body: unknown = await this.limit([this.closing.signal, init.signal], async () => {
          if (this.closing.signal.aborted) throw this.closing.signal.reason;
          if (init.signal?.aborted) throw cutOff();
          const call = callSignal(this.settings.timeoutMs, this.closing.signal, init.signal);
          const signal = call.signal;
          try {
            const response = await fetch(`${this.baseUrl}/api/${path}`, {
              method: init.method ?? 'GET',
              headers,
              body: init.body === undefined ? undefined : JSON.stringify(init.body),
              signal,
              // Never followed (redirect.ts), and said as what it is rather than as a network error.
              redirect: NO_REDIRECT,
            });
            status = response.status;
            if (isRedirect(status)) {
              await response.body?.cancel().catch(() => undefined);
              // The configured address is not DHIS2's: no retry or other record changes that (foreign: the
              // answer is not DHIS2's, and concerns no record).
              throw new Dhis2SourceError(
                `${operation} failed: the source answered a redirect (HTTP ${status}) to ${redirectOrigin(response.headers.get('location'), `${this.baseUrl}/api/`)}, which is not followed: set sources[].baseUrl of source ${this.settings.id} to the final address`,
                status,
                false,
                { foreign: true },
              );
            }
            if (!response.ok && !(init.okStatuses ?? []).includes(status)) {
              // DHIS2 says "not found" and "forbidden" with its WebMessage. A 404 without one is a proxy's or
              // gateway's page (a route missing while it reloads): nothing is known to be gone. A 403 without
              // one is a proxy's or firewall's (a WAF rule, an IP allow-list): DHIS2 refused no record, and
              // taken for its refusal it held the rechecked row dead. Either concerns the source, not the
              // record, and is retried like a 5xx.
              const refusal =
                status === 404 || status === 403 || status === 400 || status === 409
                  ? await readBodyCapped(response, 65_536, signal).catch(() => '')
                  : '';
              const notDhis2 = (status === 404 || status === 403) && !isWebMessage(refusal);
              // DHIS2 2.40 and 2.41 answer a list naming a programme they do not have with 400, not an empty
              // list. Only the uid the bridge sent is quoted: a 400's message may echo other filters.
              // A read naming one is 404 "Program with id <uid> could not be found." (2.41
              // DefaultTrackedEntityService.getTrackedEntity looks the programme up before the tracked
              // entity): no record's answer, and taken for one the recheck and the write-back would give the
              // record up as deleted.
              // DHIS2 2.42+ answers a list or a read naming a programme whose data is not shared with the user
              // 403 "User has no access to program: <uid>" (OperationsParamsValidator.validateProgramAccess):
              // the credentials are good, and no record was refused.
              const programRefused =
                init.program === undefined ? undefined : programRefusalOf(status, refusal, init.program);
              // A list naming an org unit of sources[].dhis2.orgUnits the user may not search: 2.41+ answers
              // 403 "Organisation unit is not part of the search scope: <uid>" (OperationsParamsValidator
              // .validateOrgUnits, ForbiddenException), 2.40 the same text as an IllegalQueryException.
              // The credentials are good: the user's org units in DHIS2, or the key, are to change.
              const outOfScope = notDhis2 ? undefined : outOfSearchScope(refusal);
              // DHIS2's own words for a refused query ("Organisation unit does not exist: <uid>") name the
              // metadata to fix. Only for calls that send no body (an import's message may quote a value),
              // scrubbed and bounded: a server's text is not trusted to be short or clean.
              const dhis2Said =
                init.body === undefined && !notDhis2 && !init.oneRecord && !programRefused && !outOfScope
                  ? quotedMessage(refusal, this.secrets)
                  : '';
              await response.body?.cancel().catch(() => undefined);
              const notDhis2Hint =
                status === 403
                  ? ` (not a DHIS2 answer: something in front of DHIS2 at sources[].baseUrl of source ${this.settings.id}, a proxy or firewall, refused the bridge)`
                  : ' (not a DHIS2 answer)';
              // Refused credentials: a rotated secret file is looked at now, for the next call. Not for a
              // proxy's or firewall's 403: DHIS2 refused nothing, and with OAuth2 every retry would fetch a
              // new token for a block the token does not lift.
              if (status === 401 || (status === 403 && !init.oneRecord && !notDhis2 && !programRefused && !outOfScope))
                this.auth.invalidate();
              // Name the setting to fix: a refused credential or query is configuration, not an outage.
              const hint =
                programRefused === 'missing'
                  ? ` (DHIS2 has no programme ${init.program}: check sources[].dhis2.program of source ${this.settings.id}; run doctor)`
                  : programRefused === 'unshared'
                    ? ` (DHIS2 does not share programme ${init.program} with the user of sources[].auth of source ${this.settings.id}: give that user data read access to it in DHIS2, or check sources[].dhis2.program; run doctor)`
                    : outOfScope
                      ? ` (DHIS2: org unit ${outOfScope} of sources[].dhis2.orgUnits of source ${this.settings.id} is not in the search scope of the user of sources[].auth: in DHIS2, give that user ${outOfScope}, or an org unit above it, as a search org unit, or remove it from sources[].dhis2.orgUnits; run doctor)`
                      : status === 403 && init.oneRecord
                        ? ` (DHIS2 refused this record to the user of sources[].auth of source ${this.settings.id}: outside its search scope or sharing)`
                        : status === 401 || status === 403
                          ? ` (DHIS2 refused the credentials in sources[].auth of source ${this.settings.id})`
                          : status === 400 || status === 404 || (status === 409 && dhis2Said)
                            ? `${dhis2Said} (check sources[].dhis2 of source ${this.settings.id}: program, orgUnits; run doctor)`
                            : '';
              const retryAfterMs = retryAfterOf(status, response.headers.get('retry-after'));
              // A 504 (a gateway in front of DHIS2 gave up waiting for it) is timedOut by its status. A 408 (DHIS2
              // or a proxy gave up waiting for the request itself) is a connection's trouble, like a reset:
              // tried again, and not timedOut (no smaller page, no slow-record strike).
              const failure = new Dhis2SourceError(
                `${operation} failed: HTTP ${status}${notDhis2 ? notDhis2Hint : hint || retryAfterHint(retryAfterMs)}`,
                status,
                status === 408 || status === 429 || status >= 500 || notDhis2,
                { foreign: notDhis2, retryAfterMs },
              );
              failure.programRefused = programRefused;
              failure.orgUnitOutOfScope = outOfScope;
              throw failure;
            }
            const text = await readBodyCapped(response, MAX_ANSWER_BYTES, signal);
            return JSON.parse(text);
          } finally {
            call.done();
          }
        });
        if (!validate(body)) {
          throw new Dhis2SourceError(`${operation}: unexpected response (${schemaProblem(validate)})`, status, false);
        }
        return body;
      } catch (err) {
        if (init.signal?.aborted && !this.closing.signal.aborted) lastError = cutOff();
        else if (err instanceof Dhis2SourceError) lastError = err;
        else if (err instanceof ResponseTooLargeError)
          lastError = new Dhis2SourceError(
            `${operation} failed: ${err.message} (lower sources[].poll.pageSize of source ${this.settings.id})`,
            status,
            false,
          );
        else if (err instanceof SourceAuthError)
          lastError = new Dhis2SourceError(
            this.secrets.text(`${operation} failed: ${err.message}`),
            undefined,
            err.retryable,
            { cause: loggableCause(err, this.secrets) },
          );
        else {
          // A timeout reached the server (a wrong address refuses or never resolves): the setting to change
          // is the one that bounds the call, or the size of what was asked, not the address.
          const cause = noAnswer(err);
          const reason =
            status !== undefined
              ? 'unreadable response'
              : cause === 'timeout'
                ? `timeout: no answer within ${this.settings.timeoutMs} ms (${init.timeoutHint ?? `raise sources[].timeoutMs of source ${this.settings.id}`})`
                : `${cause} (is sources[].baseUrl of source ${this.settings.id} right?)`;
          // No answer in time: one record's read may be what DHIS2 cannot answer in time, so the pipeline
          // tells it from a slow DHIS2 over several evaluations (noAnswerInTime) rather than failing every pass.
          lastError = new Dhis2SourceError(`${operation} failed: ${reason}`, status, status === undefined, {
            cause: loggableCause(err, this.secrets),
            timedOut: status === undefined && cause === 'timeout',
          });
        }
        if (!lastError.retryable || attempt === attempts) break;
        const delay = nextTryDelay(
          this.retryBaseMs * 2 ** (attempt - 1),
          lastError.retryAfterMs,
          this.settings.timeoutMs,
        );
        if (delay === undefined) break;
        this.log.debug({ operation, attempt, status, delayMs: delay }, 'retrying DHIS2 call');
        await pause(delay, this.closing.signal, init.signal);
      }
    }
    throw lastError ?? new Dhis2SourceError(`${operation} failed`, undefined, true);
  }

  /**
   * One page of GET /api/tracker/trackedEntities (the caller builds the filter), with its pager.
   * `attempts`: for a page the caller can do without (a larger page it can ask for in smaller ones).
   */
  async trackedEntityPage(
    params: Record<string, string>,
    options: { attempts?: number } = {},
  ): Promise<TrackedEntityList> {
    const query = new URLSearchParams(await this.paramsForVersion(params)).toString();
    const page = await this.call('list tracked entities', `tracker/trackedEntities?${query}`, isTrackedEntityPage, {
      ...options,
      ...(params.program ? { program: params.program } : {}),
      timeoutHint: `raise sources[].timeoutMs or lower sources[].poll.pageSize of source ${this.settings.id}`,
    });
    // 2.41+ answers `{ pager: { page, pageSize, total? }, trackedEntities }`, 2.40 `{ page, pageSize, total?, instances }`.
    const pager: Record<string, unknown> =
      typeof page.pager === 'object' && page.pager !== null ? (page.pager as Record<string, unknown>) : page;
    return {
      entities: page.trackedEntities ?? page.instances ?? [],
      pageSize: count(pager.pageSize, 1),
      total: count(pager.total, 0),
    };
  }

  /**
   * Refuses, before any request, an id that is no DHIS2 uid. Encoded, `..` stays `..`, and a URL resolves
   * `trackedEntities/..` to the path above it: a call the bridge never meant, with its credentials. The
   * uids come from DHIS2's answers and from the ledger, so anything may arrive. The value is not quoted
   * (any text from a server's answer): the caller names the record, where it has one.
   */
  private checkUid(operation: string, uid: string): void {
    if (isDhis2Uid(uid)) return;
    throw new Dhis2SourceError(
      `${operation}: refused, not a DHIS2 uid (11 letters and digits, a letter first); nothing was asked of DHIS2`,
      undefined,
      false,
      { badId: true },
    );
  }

  /** GET /api/tracker/trackedEntities/{uid}; undefined when DHIS2 says 404 (its own answer, see call). */
  async trackedEntity(
    uid: string,
    params: Record<string, string> = {},
    options: CallOptions = {},
  ): Promise<TrackerTrackedEntity | undefined> {
    this.checkUid('read tracked entity', uid);
    const query = new URLSearchParams(params).toString();
    try {
      return await this.call(
        'read tracked entity',
        `tracker/trackedEntities/${encodeURIComponent(uid)}${query ? `?${query}` : ''}`,
        isTrackedEntity,
        { oneRecord: true, ...(params.program ? { program: params.program } : {}), ...options },
      );
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  /**
   * What DHIS2's tracked entity list says of one uid, soft-deleted ones included: `GET
   * /api/tracker/trackedEntities?trackedEntities={uid}&program=…&includeDeleted=true&fields=trackedEntity,deleted`.
   * `deleted`: listed with `deleted: true`; `live`: listed and not deleted; `unlisted`: not listed (outside
   * what the user may search, or gone for good). For a read that answered 404: DHIS2 says 404 for a
   * deleted tracked entity and for one the user may not see alike (see dhis2/recheck.ts).
   */
  async trackedEntityListing(uid: string, program: string): Promise<TrackedEntityListing> {
    // A list filter takes several uids, comma-separated: anything else would widen it.
    this.checkUid('list tracked entity', uid);
    // One uid: the first page (50 by default) holds it.
    const page = await this.trackedEntityPage({
      trackedEntities: uid,
      program,
      includeDeleted: 'true',
      fields: 'trackedEntity,deleted',
    });
    // Only this uid counts: a server that ignored the filter lists others, which say nothing of it.
    const listed = page.entities.filter((te) => te.trackedEntity === uid);
    if (listed.length === 0) return 'unlisted';
    return listed.every((te) => te.deleted === true) ? 'deleted' : 'live';
  }

  /**
   * `params` under the names this DHIS2 reads (see NAMES_BEFORE_2_41). The version is asked only for params
   * that use such a name.
   */
  private async paramsForVersion(params: Record<string, string>): Promise<Record<string, string>> {
    if (!Object.keys(params).some((name) => NAMES_BEFORE_2_41.has(name))) return params;
    if (!((await this.minorVersion()) < 41)) return params;
    return Object.fromEntries(
      Object.entries(params).map(([name, value]) => {
        const old = NAMES_BEFORE_2_41.get(name);
        return old ? [old.name, old.list ? value.split(',').join(';') : value] : [name, value];
      }),
    );
  }

  /** The minor version (41 for 2.41.3), NaN when DHIS2 does not say (NAMES_BEFORE_2_41). */
  private async minorVersion(): Promise<number> {
    return Number(/^2\.(\d+)/.exec((await this.version()) ?? '')?.[1] ?? Number.NaN);
  }

  private versionAsked: Promise<string | undefined> | undefined;

  /** The server's version (system/info), asked once; a failed ask is asked again the next time. */
  private version(): Promise<string | undefined> {
    this.versionAsked ??= this.systemInfo().catch((err: unknown) => {
      this.versionAsked = undefined;
      throw err;
    });
    return this.versionAsked;
  }

  /** GET /api/tracker/events/{uid} with every field; undefined when DHIS2 says 404. */
  async event(uid: string, options: CallOptions = {}): Promise<TrackerEvent | undefined> {
    this.checkUid('read event', uid);
    try {
      return await this.call('read event', `tracker/events/${encodeURIComponent(uid)}?fields=*`, isTrackerEvent, {
        oneRecord: true,
        ...options,
      });
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  /**
   * POST /api/tracker?async=false: a synchronous import. DHIS2 answers 409 with its report when validation
   * fails; the report is returned either way, the caller reads `status`.
   */
  importTracker(
    payload: Record<string, unknown>,
    importStrategy: ImportStrategy,
    options: CallOptions = {},
  ): Promise<ImportReport> {
    return this.call('tracker import', `tracker?async=false&importStrategy=${importStrategy}`, isImportReport, {
      method: 'POST',
      body: payload,
      okStatuses: [409],
      signal: options.signal,
    });
  }

  /** GET /api/system/info: reachability and credentials (readiness, doctor); the DHIS2 version. */
  async systemInfo(): Promise<string | undefined> {
    const { version } = await this.call('system info', 'system/info', isObjectResponse);
    return typeof version === 'string' ? version : undefined;
  }

  /** DHIS2's own clock now (`serverDate` of system/info, server-local like every DHIS2 timestamp), if it says. */
  async serverTime(): Promise<string | undefined> {
    const { serverDate } = await this.call('system info', 'system/info', isObjectResponse);
    return typeof serverDate === 'string' ? serverDate : undefined;
  }

  /**
   * GET /api/me (doctor): the user's authorities and org units, the capture scope (`organisationUnits`) and
   * the search scope (`teiSearchOrganisationUnits`), as `{ id }` references (DHIS2 2.40–2.42 MeDto).
   */
  async me(): Promise<Record<string, unknown>> {
    return this.call(
      'read the user (me)',
      `me?fields=${encodeURIComponent('authorities,organisationUnits[id],teiSearchOrganisationUnits[id]')}`,
      isObjectResponse,
    );
  }

  /** GET /api/{collection}/{uid} (doctor): the object, or undefined when DHIS2 says 404. */
  async metadata(
    collection: 'programs' | 'dataElements' | 'trackedEntityAttributes' | 'organisationUnits' | 'relationshipTypes',
    uid: string,
    fields = 'id,displayName',
  ): Promise<Record<string, unknown> | undefined> {
    this.checkUid(`read ${collection}`, uid);
    try {
      return await this.call(
        `read ${collection}`,
        `${collection}/${encodeURIComponent(uid)}?fields=${encodeURIComponent(fields)}`,
        isObjectResponse,
      );
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }
}

/**
 * Tracker list parameters 2.41 renamed, by their new name: the name before (`list`: a list, with semicolons
 * where the new name takes commas). 2.40 ignores the new names (a source limited to its districts read every
 * district there); 2.41 refuses `trackedEntity` and `trackedEntities` at once, and 2.42 dropped `trackedEntity`.
 */
const NAMES_BEFORE_2_41: ReadonlyMap<string, { name: string; list: boolean }> = new Map([
  ['trackedEntities', { name: 'trackedEntity', list: true }],
  ['orgUnits', { name: 'orgUnit', list: true }],
  ['orgUnitMode', { name: 'ouMode', list: false }],
]);

/** What a list with `includeDeleted=true` says of one tracked entity (Dhis2Client.trackedEntityListing). */
export type TrackedEntityListing = 'deleted' | 'live' | 'unlisted';

/** A page of tracked entities and what the server says of it (each only when it says, as a number). */
export interface TrackedEntityList {
  entities: TrackerTrackedEntity[];
  /** The page size the server applied: a page shorter than this is the last. */
  pageSize: number | undefined;
  /** With `totalPages=true`: how many tracked entities the query matches (on every page). */
  total: number | undefined;
}

/** A pager field that is a whole number of at least `min`, else undefined (a server that does not say). */
function count(value: unknown, min: number): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= min ? value : undefined;
}

/** DHIS2's own 404 ("… could not be found") of the record, not a proxy's, nor of the programme: see call. */
function isGone(err: unknown): boolean {
  return err instanceof Dhis2SourceError && err.status === 404 && !err.foreign && !err.programRefused;
}

/**
 * DHIS2's answers that refuse the `program` a call names, for the uid sent (the message quoted whole):
 * - 400 "Program is specified but does not exist: <uid>", to a list (dhis2-core's tracked entity request
 *   mapper in 2.40, TrackedEntityOperationParamsMapper in 2.41 and later);
 * - 404 "Program with id <uid> could not be found.", to a read (feedback.NotFoundException(Program.class,
 *   uid), thrown by 2.41's DefaultTrackedEntityService.getTrackedEntity before it looks the record up);
 * - 403 "User has no access to program: <uid>", 2.42+ to either, for a programme whose data the user may not
 *   read (OperationsParamsValidator.validateProgramAccess, ForbiddenException).
 */
const PROGRAM_REFUSALS: ReadonlyArray<{
  status: number;
  refused: 'missing' | 'unshared';
  message: (program: string) => string;
}> = [
  { status: 400, refused: 'missing', message: (uid) => `Program is specified but does not exist: ${uid}` },
  { status: 404, refused: 'missing', message: (uid) => `Program with id ${uid} could not be found.` },
  { status: 403, refused: 'unshared', message: (uid) => `User has no access to program: ${uid}` },
];

/** Whether DHIS2's answer `text` (with `status`) refuses `program`, and how: see PROGRAM_REFUSALS. */
function programRefusalOf(status: number, text: string, program: string): 'missing' | 'unshared' | undefined {
  const said = messageOf(text)?.trim();
  if (said === undefined) return undefined;
  return PROGRAM_REFUSALS.find((r) => r.status === status && said === r.message(program))?.refused;
}

/** The `message` of DHIS2's error body, if the text is one with a message. */
function messageOf(text: string): string | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null || !('message' in body) || typeof body.message !== 'string')
      return undefined;
    return body.message;
  } catch {
    return undefined;
  }
}

/** The uid in DHIS2's "Organisation unit is not part of the search scope: <uid>", if that is what it said. */
function outOfSearchScope(text: string): string | undefined {
  const uid = /^Organisation unit is not part of the search scope: (\S+)$/.exec(messageOf(text)?.trim() ?? '')?.[1];
  return uid !== undefined && isDhis2Uid(uid) ? uid : undefined;
}

/** DHIS2's messages are a line naming uids; a longer one is cut here. */
const MAX_QUOTED = 200;

/** `: DHIS2 said "<message>"`, scrubbed, on one line and bounded; '' when the answer has no message. */
function quotedMessage(text: string, secrets: SecretScrubber): string {
  const said = messageOf(text)?.replace(/\s+/g, ' ').trim();
  if (!said) return '';
  const clean = secrets.text(said);
  const cut = clean.length > MAX_QUOTED ? `${clean.slice(0, MAX_QUOTED)}…` : clean;
  return `: DHIS2 said "${cut}"`;
}

/** DHIS2's error body: `{httpStatus, httpStatusCode, status: 'ERROR', message}`. */
function isWebMessage(text: string): boolean {
  try {
    const body: unknown = JSON.parse(text);
    return typeof body === 'object' && body !== null && 'httpStatusCode' in body;
  } catch {
    return false;
  }
}
