import type { Bundle, Resource } from '@medplum/fhirtypes';
import { Client, type FhirResource } from 'fhir-kit-client';
import type { SourceSettings } from '../../config/types.js';
import type { Logger } from '../../observability/logger.js';
import type { SecretScrubber } from '../../observability/secret-scrubber.js';
import { callSignal, pause } from '../../util/call-signal.js';
import { isObject } from '../../util/is-object.js';
import { isRedirect, NO_REDIRECT, redirectOrigin } from '../../util/redirect.js';
import { cappedAgent, tooLargeIn } from '../shared/capped-dispatcher.js';
import { sourceRequestLimit } from '../shared/request-limit.js';
import { callTries, nextTryDelay, retryAfterHint, retryAfterOf } from '../shared/retry-after.js';
import { createSourceAuthenticator, SourceAuthError, type SourceAuthenticator } from '../shared/source-auth.js';
import { loggableCause, noAnswer, SourceCallError } from '../shared/source-error.js';
import { sourceSecrets } from '../shared/source-secrets.js';
import { isResourceType } from './notification.js';

/** A failed call to a FHIR source. */
export class FhirSourceError extends SourceCallError {
  override readonly name = 'FhirSourceError';

  /**
   * The server's own OperationOutcome said it does not serve what was asked (saysNotServed): a resource
   * type or a search parameter it has no provider for. Not an outage and no record's failure: asking
   * again, for any record, gets the same answer (see ServerSupport).
   */
  readonly notSupported: boolean;

  constructor(
    message: string,
    status: number | undefined,
    retryable: boolean,
    options?: ConstructorParameters<typeof SourceCallError>[3] & { notSupported?: boolean },
  ) {
    super(message, status, retryable, options);
    this.notSupported = options?.notSupported === true;
  }
}

/**
 * A caller's hold on one call (the write-back's deadline, a partial evaluation that stopped): its signal ends
 * the call, and any try after it, at once.
 */
export interface CallOptions {
  signal?: AbortSignal;
}

/** A search's parameters; one given several values is sent once per value (`_lastUpdated=ge…&_lastUpdated=lt…`). */
export type SearchParams = Record<string, string | string[]>;

/**
 * What a caller asks of one search: `attempts` for a page it can do without; `timeoutHint` names the
 * settings; `signal` ends it, its pages and its tries at once (a partial evaluation that stopped).
 */
export interface SearchOptions extends CallOptions {
  attempts?: number;
  /** Each try's timeout, for a call the caller can do without sooner than `sources[].timeoutMs` allows. */
  timeoutMs?: number;
  /**
   * What a timed-out search's message advises. By default a poll page's settings: the timeout and
   * `poll.pageSize`; a search whose size the poll settings do not set names its own.
   */
  timeoutHint?: string;
}

export interface FhirSourceClientOptions {
  logger: Logger;
  /** Attempts per call for retryable failures (the poller retries whole passes on top). */
  attempts?: number;
  /** Base delay of the per-call backoff; doubled per attempt. */
  retryBaseMs?: number;
}

// Searches are read with `Cache-Control: no-cache` (HAPI reuses identical searches for about a
// minute) but never `no-store`, which would disable HAPI's paging cursors.
const SEARCH_HEADERS = { 'cache-control': 'no-cache' };
const MAX_SEARCH_PAGES = 20;
/** A header fhir-kit-client keeps of a failed answer (on its config), if any. */
function answerHeader(err: unknown, name: string): string | undefined {
  const headers = isObject(err) && isObject(err.config) ? err.config.headers : undefined;
  const get = isObject(headers) ? headers.get : undefined;
  const value: unknown = typeof get === 'function' ? get.call(headers, name) : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** History entries asked for when a deleted resource's last version is read (see lastVersion). */
const HISTORY_ENTRIES = 5;
/**
 * A FHIR answer past this is refused, not read on. A search page of `_count=1000` typical resources is
 * a few MB; the bound is the DHIS2 and OpenCRVS clients' too.
 */
const MAX_ANSWER_BYTES = 64 * 1_048_576;

function isResource(value: unknown): value is Resource {
  return isObject(value) && typeof value.resourceType === 'string';
}

function isBundle(value: unknown): value is Bundle {
  return isResource(value) && value.resourceType === 'Bundle';
}

// fhir-kit-client types bodies as plain records; a FHIR resource is one.
function toFhirKitResource(resource: Resource): FhirResource {
  const body: FhirResource = { ...resource };
  return body;
}

/**
 * `Type/id` as a path below the base, or undefined when it names no resource. The id is one path
 * segment, encoded: whatever a notification or a record holds must not reach another path of the EMR
 * with the source's credentials. `.` and `..` name none (no request is made for them): encoding leaves
 * them as they are, and a URL resolves them to the base or its parent. Nor does a type that is no FHIR R4
 * resource type (the receiver's check): the shape alone let `<base>/Aaaa…(300 kB)/<id>` be asked.
 */
function instancePath(type: string, id: string): string | undefined {
  if (!isResourceType(type) || id === '' || id === '.' || id === '..') return undefined;
  return `${type}/${encodeURIComponent(id)}`;
}

/** `read Patient`, or `read` alone for a type that is no R4 resource type: that is the sender's text, of any length. */
function operationOn(operation: string, type: string): string {
  return isResourceType(type) ? `${operation} ${type}` : operation;
}

/** The body of a failed answer as fhir-kit-client parsed it (JSON), or its text. */
function bodyOf(err: unknown): unknown {
  return isObject(err) && isObject(err.response) ? err.response.data : undefined;
}

/**
 * The failed answer's OperationOutcome says the server does not serve the request: an issue coded
 * `not-supported` (HAPI's plain server, which OpenMRS FHIR2 runs on, answers a search no @Search method takes
 * with 400 HAPI-0303 "… does not know how to handle GET operation[Observation] with parameters [[focus]]"),
 * or HAPI's 404 for a type it has no provider for (HAPI-0302 "Unknown resource type 'Composition' - Server
 * knows how to handle: […]", coded `processing`). Only the codes and that phrase are read, never kept.
 */
function saysNotServed(status: number | undefined, body: unknown): boolean {
  if ((status !== 400 && status !== 404) || !isObject(body) || body.resourceType !== 'OperationOutcome') return false;
  const issues = Array.isArray(body.issue) ? body.issue.filter(isObject) : [];
  return issues.some((issue) => {
    if (issue.code === 'not-supported') return true;
    const details = isObject(issue.details) ? issue.details.text : undefined;
    const text = [issue.diagnostics, details].filter((t) => typeof t === 'string').join(' ');
    return status === 404 && /\bUnknown resource type\b/i.test(text);
  });
}

/** The failed answer was sent as FHIR (`application/fhir+json`), whatever its body. */
function fhirTyped(err: unknown): boolean {
  return contentTypeOf(err).includes('application/fhir+json');
}

/** The failed answer's content type, lower case ('' when none). */
function contentTypeOf(err: unknown): string {
  return answerHeader(err, 'content-type')?.toLowerCase() ?? '';
}

/** The failed answer is an HTML page (sent as text/html, or a body that reads as markup). */
function htmlPage(err: unknown): boolean {
  if (contentTypeOf(err).includes('text/html')) return true;
  const body = bodyOf(err);
  return typeof body === 'string' && body.trimStart().startsWith('<');
}

function statusOf(err: unknown): number | undefined {
  if (isObject(err) && isObject(err.response) && typeof err.response.status === 'number') return err.response.status;
  return undefined;
}

/**
 * The bridge's own reads from a FHIR source (fhir-kit-client underneath): auth headers, a timeout on
 * every call, at most `maxConcurrentRequests` calls in flight, bounded retries with backoff, and errors
 * that never carry the response body (it may hold personal data) or the request URL's query (it may
 * hold search values).
 */
export class FhirSourceClient {
  readonly baseUrl: string;
  private readonly client: Client;
  private readonly auth: SourceAuthenticator;
  private readonly attempts: number;
  private readonly retryBaseMs: number;
  /** The source's logger (component fhir-client): the fetcher's warnings about its searches go here too. */
  readonly log: Logger;
  private readonly limit: ReturnType<typeof sourceRequestLimit>;
  private readonly dispatcher = cappedAgent(MAX_ANSWER_BYTES);
  /** The source's secrets and the tokens obtained for it: every error this client throws is scrubbed of them. */
  readonly secrets: SecretScrubber;

  constructor(
    readonly settings: SourceSettings,
    options: FhirSourceClientOptions,
  ) {
    this.baseUrl = settings.baseUrl.replace(/\/+$/, '');
    this.limit = sourceRequestLimit(settings);
    // fhir-kit-client spreads requestOptions into every fetch(): a redirect comes back as its answer and is
    // refused (failure), never followed with the token and the body (redirect.ts). Paging links are
    // followed by nextPage, on the configured origin only.
    this.client = new Client({
      baseUrl: this.baseUrl,
      requestOptions: { dispatcher: this.dispatcher, redirect: NO_REDIRECT },
    });
    this.secrets = sourceSecrets(settings);
    this.log = options.logger.child({ component: 'fhir-client', source: settings.id });
    this.auth = createSourceAuthenticator(
      settings.auth,
      settings.timeoutMs,
      this.secrets,
      this.closing.signal,
      this.log,
    );
    ({ attempts: this.attempts, retryBaseMs: this.retryBaseMs } = callTries(options, settings.retry));
  }

  private readonly closing = new AbortController();

  /** An OAuth2 token endpoint's answer is held: calls fail at once with it (SourceAuthenticator.held). */
  authHeld(): boolean {
    return this.auth.held();
  }

  /**
   * Ends every call in flight and refuses new ones. At shutdown a slow or hanging EMR must not hold the
   * process: a review's stop took 41 s to over 150 s. What was cut off is read again next time (the
   * watermark moves only with committed pages, and notifications stay in the inbox until processed).
   */
  close(): void {
    this.closing.abort(new FhirSourceError('the bridge is stopping', undefined, false, { cutOff: true }));
    this.dispatcher.destroy().catch(() => undefined);
  }

  private async call<T>(
    operation: string,
    run: (options: { headers: Record<string, string>; signal: AbortSignal }) => Promise<T>,
    extraHeaders: Record<string, string> = {},
    caller: SearchOptions = {},
  ): Promise<T> {
    let lastError: FhirSourceError | undefined;
    const attempts = caller.attempts ?? this.attempts;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        if (this.closing.signal.aborted) throw this.closing.signal.reason;
        if (caller.signal?.aborted) throw caller.signal.reason;
        const auth = await this.auth.headers(this.closing.signal, caller.signal);
        const headers = { accept: 'application/fhir+json', ...auth, ...extraHeaders };
        // The timeout starts when the call leaves, not while it waits for a free slot.
        return await this.limit([this.closing.signal, caller.signal], async () => {
          if (caller.signal?.aborted) throw caller.signal.reason;
          const call = callSignal(caller.timeoutMs ?? this.settings.timeoutMs, this.closing.signal, caller.signal);
          try {
            return await run({ headers, signal: call.signal });
          } finally {
            call.done();
          }
        });
      } catch (err) {
        // Neither is retried: the bridge wants no answer any more (stopping; the caller's deadline).
        lastError = this.closing.signal.aborted
          ? new FhirSourceError(`${operation}: the bridge is stopping`, undefined, false, { cutOff: true })
          : caller.signal?.aborted
            ? new FhirSourceError(`${operation}: cut off by the bridge`, undefined, false, { cutOff: true })
            : this.failure(operation, err, caller);
        if (!lastError.retryable || attempt === attempts) break;
        const delay = nextTryDelay(
          this.retryBaseMs * 2 ** (attempt - 1),
          lastError.retryAfterMs,
          this.settings.timeoutMs,
        );
        if (delay === undefined) break;
        this.log.debug({ operation, attempt, reason: lastError.message, delayMs: delay }, 'retrying source call');
        await pause(delay, this.closing.signal, caller.signal);
      }
    }
    throw lastError ?? new FhirSourceError(`${operation} failed`, undefined, true);
  }

  /** What a failed attempt means: its status, whether to retry, and a message without bodies or queries. */
  private failure(operation: string, err: unknown, caller: SearchOptions = {}): FhirSourceError {
    // The OAuth2 token endpoint, not the FHIR server: a refused client is configuration, no network error.
    if (err instanceof SourceAuthError)
      return new FhirSourceError(this.secrets.text(`${operation} failed: ${err.message}`), undefined, err.retryable, {
        cause: loggableCause(err, this.secrets),
      });
    // Not retried: the same question brings the same answer. A search page can be made smaller.
    const tooLarge = tooLargeIn(err);
    if (tooLarge) {
      const hint = /^(search|next page)/.test(operation)
        ? ` (lower sources[].poll.pageSize of source ${this.settings.id})`
        : '';
      return new FhirSourceError(`${operation} failed: ${tooLarge.message}${hint}`, undefined, false);
    }
    const status = statusOf(err);
    // The configured address is not the server's: no retry and no other record changes that, and it concerns
    // no record (foreign: the answer is not the FHIR server's).
    if (status !== undefined && isRedirect(status)) {
      const to = redirectOrigin(answerHeader(err, 'location'), `${this.baseUrl}/`);
      return new FhirSourceError(
        `${operation} failed: the source answered a redirect (HTTP ${status}) to ${to}, which is not followed: set sources[].baseUrl of source ${this.settings.id} to the final address`,
        status,
        false,
        { foreign: true },
      );
    }
    if (status === 401) this.auth.invalidate();
    // A FHIR server says "not found" with an OperationOutcome (HAPI, Medplum, OpenMRS do). A 404 without
    // one is a proxy's or gateway's page (a route missing while it reloads): the resource is not known to
    // be gone, and read() must not withdraw a birth on it. A 403 is the server refusing a record only
    // when it answers as a FHIR server (an OperationOutcome, or at least a FHIR content type); a proxy's or
    // firewall's 403 page (a WAF rule, an IP allow-list) refuses the bridge, and taken for the server's,
    // the pipeline held a record dead for it (mayConcernOneRecord). Either is retried like a 5xx.
    const notFhir =
      (status === 404 && !isResource(bodyOf(err))) || (status === 403 && !isResource(bodyOf(err)) && !fhirTyped(err));
    // A 400 that is no FHIR answer is the page of a servlet container or proxy in front of the server: Tomcat's
    // "Request header is too large" for a URL past maxHttpHeaderSize, nginx's for headers past its buffers. It
    // refuses the request's length, not a value of it (a FHIR server says that with an OperationOutcome), so
    // the fetcher asks such a batch smaller and keeps that size (REFUSED_AS_TOO_LONG) rather than asking it
    // in halves on every page. Not retried: the same request gets the same page.
    // Only an HTML page: a non-conformant server's own `{"error": …}` (application/json, text) about an id it
    // refuses concerns that record, and stays its failure (mayConcernOneRecord), not the whole source's.
    const frontRefused = status === 400 && !isResource(bodyOf(err)) && !fhirTyped(err) && htmlPage(err);
    // A 408: the server (or a proxy) gave up waiting for the request itself, a connection's trouble like a
    // reset, not the question's: tried again, and not taken for no answer in time (timedOut: no smaller
    // batch, no slow-record strike).
    const retryable =
      status === undefined || status === 401 || status === 408 || status === 429 || status >= 500 || notFhir;
    const timedOut = status === undefined && noAnswer(err) === 'timeout';
    // A timeout names the settings to change: "timeout" alone gives an operator no lead.
    const notFhirHint =
      status === 403
        ? ` (not a FHIR answer: something in front of the FHIR server at sources[].baseUrl of source ${this.settings.id}, a proxy or firewall, refused the bridge)`
        : status === 400
          ? ' (not a FHIR answer: a servlet container or proxy in front of the FHIR server refused the request: its URL or headers too long)'
          : ' (not a FHIR answer)';
    const retryAfterMs = retryAfterOf(status, answerHeader(err, 'retry-after'));
    const reason =
      status !== undefined
        ? `HTTP ${status}${notFhir || frontRefused ? notFhirHint : retryAfterHint(retryAfterMs)}`
        : timedOut
          ? `timeout: no answer within ${caller.timeoutMs ?? this.settings.timeoutMs} ms (${this.timeoutHint(operation, caller.timeoutHint)})`
          : noAnswer(err);
    return new FhirSourceError(`${operation} failed: ${reason}`, status, retryable, {
      cause: status === undefined ? loggableCause(err, this.secrets) : undefined,
      foreign: notFhir || frontRefused,
      timedOut,
      retryAfterMs,
      notSupported: saysNotServed(status, bodyOf(err)),
    });
  }

  /** The settings a timed-out call's message names: a search page's size is `poll.pageSize` unless said otherwise. */
  private timeoutHint(operation: string, given: string | undefined): string {
    const source = `source ${this.settings.id}`;
    if (given) return `${given} of ${source}`;
    return /^(search|next page)/.test(operation)
      ? `raise sources[].timeoutMs or lower sources[].poll.pageSize of ${source}`
      : `raise sources[].timeoutMs of ${source}`;
  }

  /**
   * Reads one resource; undefined when the server says 404/410 (deleted or never existed). A 404 that
   * is no FHIR answer is thrown (see failure): a caller withdraws unsent rows on undefined. So is an id
   * that names no resource (`.`, `..`: see instancePath), without a request.
   */
  async read(type: string, id: string, caller: CallOptions = {}): Promise<Resource | undefined> {
    if (instancePath(type, id) === undefined)
      throw new FhirSourceError(`${operationOn('read', type)}: not a resource type and id`, undefined, false);
    try {
      const result: unknown = await this.call(
        `read ${type}`,
        (options) => this.client.read({ resourceType: type, id: encodeURIComponent(id), options }),
        {},
        caller,
      );
      if (!isResource(result)) throw new FhirSourceError(`read ${type}: not a FHIR resource`, undefined, false);
      return result;
    } catch (err) {
      if (err instanceof FhirSourceError && (err.status === 410 || (err.status === 404 && !err.foreign)))
        return undefined;
      throw err;
    }
  }

  /**
   * The last version a server kept of a resource it deleted, from the instance `_history` (HAPI and
   * Medplum keep it): the records the resource was part of are evaluated again without it. Undefined
   * when the server keeps no version of it, serves no history (a 4xx: a server without history support
   * answers 400, 404 or 405), or could not answer (5xx, 408, 429, a timeout: warned); undefined too, without
   * a request, for an id that names no resource (instancePath). Never thrown: the
   * deletion itself is known from the read, and it must be recorded whatever the history says.
   */
  async lastVersion(type: string, id: string): Promise<Resource | undefined> {
    const path = instancePath(type, id);
    if (path === undefined) return undefined;
    let result: unknown;
    try {
      // Newest first by R4; a few entries are enough to pass the deletion and any entries without a body.
      result = await this.call(`history ${type}`, (options) =>
        this.client.request(`${path}/_history?_count=${HISTORY_ENTRIES}`, { options }),
      );
    } catch (err) {
      const status = err instanceof FhirSourceError ? err.status : undefined;
      const noHistory =
        status !== undefined && status >= 400 && status < 500 && status !== 401 && status !== 408 && status !== 429;
      if (!noHistory)
        this.log.warn(
          { err, resourceType: type },
          'the last version of a deleted resource could not be read: only ledger rows that name it are evaluated again',
        );
      return undefined;
    }
    if (!isBundle(result)) return undefined;
    return newestVersion(result, type, id);
  }

  /**
   * One search page. `attempts`: for a page the caller can do without (a larger page it can ask for in
   * smaller ones); `timeoutHint`: for a search whose size poll.pageSize does not set.
   */
  async searchPage(type: string, params: SearchParams, options: SearchOptions = {}): Promise<Bundle> {
    const result: unknown = await this.call(
      `search ${type}`,
      (call) => this.client.search({ resourceType: type, searchParams: params, options: call }),
      SEARCH_HEADERS,
      options,
    );
    if (!isBundle(result)) throw new FhirSourceError(`search ${type}: not a Bundle`, undefined, false);
    return result;
  }

  /**
   * Follows `Bundle.link[next]` as the server gave it (it is opaque), on the source's own origin: the
   * credentials go with the request, so a link to another host is never followed as given. A server
   * behind a proxy often names itself by its inside address (http://hapi:8080/fhir?_getpages=…); the
   * path and query are kept, on the configured origin.
   */
  async nextPage(bundle: Bundle, options: SearchOptions = {}): Promise<Bundle | undefined> {
    const given = bundle.link?.find((link) => link.relation === 'next')?.url;
    if (!given) return undefined;
    const next = this.onOwnOrigin(given);
    const result: unknown = await this.call(
      'next page',
      (call) => this.client.request(next, { options: call }),
      SEARCH_HEADERS,
      options,
    );
    if (!isBundle(result)) throw new FhirSourceError('next page: not a Bundle', undefined, false);
    return result;
  }

  /** All matching resources (search-mode `match` only), bounded to MAX_SEARCH_PAGES pages. */
  async searchAll(type: string, params: Record<string, string>, options: SearchOptions = {}): Promise<Resource[]> {
    return (await this.searchBounded(type, params, MAX_SEARCH_PAGES, options)).resources;
  }

  private warnedForeignLink = false;

  /**
   * Paging links are followed on the configured base, whatever base the server wrote into them: a
   * server behind a proxy (HAPI writes its own configured address) names an inside host, or another
   * path (`http://hapi:8080/fhir?_getpages=…` for a base of `https://gateway/emr-a/fhir`), and the
   * bearer token must not go there. The server's own base is the link's path less a trailing resource
   * type (and `_search`); what follows it is kept.
   */
  private onOwnOrigin(link: string): string {
    const base = new URL(this.baseUrl);
    let url: URL;
    try {
      url = new URL(link, `${this.baseUrl}/`);
    } catch {
      throw new FhirSourceError('next page: the link is not a URL', undefined, false);
    }
    const basePath = base.pathname.replace(/\/+$/, '');
    const underBase = url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
    if (url.origin === base.origin && underBase) return url.toString();
    if (!this.warnedForeignLink) {
      this.warnedForeignLink = true;
      // The origin only: the path and query of a search link can name patients.
      this.log.warn(
        { linkOrigin: url.origin },
        "the server's paging links name another base; following them on the configured baseUrl",
      );
    }
    const serverBase = url.pathname.replace(/\/_search$/, '').replace(/\/[A-Z][A-Za-z]+$/, '');
    const rest = url.pathname.slice(serverBase.replace(/\/+$/, '').length);
    return `${base.origin}${basePath}${rest}${url.search}`;
  }

  /** Like searchAll, and says whether the answer is complete (no `next` link left unfollowed). */
  async searchBounded(
    type: string,
    params: SearchParams,
    maxPages = MAX_SEARCH_PAGES,
    options: SearchOptions = {},
  ): Promise<{ resources: Resource[]; complete: boolean }> {
    const resources: Resource[] = [];
    let page: Bundle | undefined = await this.searchPage(type, params, options);
    for (let pages = 1; page; pages++) {
      for (const entry of page.entry ?? []) {
        if (entry.resource && entry.search?.mode !== 'include' && entry.search?.mode !== 'outcome') {
          resources.push(entry.resource);
        }
      }
      const hasNext = page.link?.some((link) => link.relation === 'next') === true;
      if (!hasNext) return { resources, complete: true };
      if (pages >= maxPages) return { resources, complete: false };
      page = await this.nextPage(page, options);
    }
    return { resources, complete: true };
  }

  /** Conditional update (If-Match on the version), for write-back. Returns the new resource. */
  async update(
    resource: Resource & { id: string },
    ifMatchVersion?: string,
    caller: CallOptions = {},
  ): Promise<Resource> {
    // As read(): nothing is sent for `.` or `..`, and the id is one path segment.
    if (instancePath(resource.resourceType, resource.id) === undefined)
      throw new FhirSourceError(
        `${operationOn('update', resource.resourceType)}: not a resource type and id`,
        undefined,
        false,
      );
    const headers: Record<string, string> = ifMatchVersion ? { 'if-match': `W/"${ifMatchVersion}"` } : {};
    const result: unknown = await this.call(
      `update ${resource.resourceType}`,
      (options) =>
        this.client.update({
          resourceType: resource.resourceType,
          id: encodeURIComponent(resource.id),
          body: toFhirKitResource(resource),
          options,
        }),
      headers,
      caller,
    );
    if (!isResource(result)) throw new FhirSourceError('update: not a FHIR resource', undefined, false);
    return result;
  }

  /** Posts a transaction Bundle to the base (setting the EMR up, never on the delivery path). */
  async transaction(bundle: Bundle): Promise<Bundle> {
    const result: unknown = await this.call('transaction', (options) =>
      this.client.transaction({ body: toFhirKitResource(bundle), options }),
    );
    if (!isBundle(result)) throw new FhirSourceError('transaction: not a Bundle', undefined, false);
    return result;
  }

  /**
   * A GET of `url`, an absolute URL on another API of the same server (OpenMRS's REST API beside FHIR2:
   * openmrs-relationships.ts), with this source's credentials, timeout, bound on calls in flight and retries;
   * its JSON answer. `operation` names it in errors, which carry neither the body nor the query.
   */
  async getJson(url: string, operation: string, options: SearchOptions = {}): Promise<unknown> {
    return this.call(
      operation,
      (call) => this.client.request(url, { options: call }),
      { accept: 'application/json' },
      options,
    );
  }

  async capabilityStatement(options: SearchOptions = {}): Promise<Resource> {
    const result: unknown = await this.call(
      'capabilities',
      (call) => this.client.capabilityStatement(call),
      {},
      options,
    );
    if (!isResource(result)) throw new FhirSourceError('capabilities: not a FHIR resource', undefined, false);
    return result;
  }
}

/**
 * The newest version of `type`/`id` in a history Bundle. By time, not by list position: not every server
 * orders its history as R4 asks; among entries without a time, the first listed (R4's order, newest first).
 * A deletion is no version: R4 gives it no resource, and a server that gives it a placeholder still marks
 * its request (DELETE) or its response (410).
 */
function newestVersion(history: Bundle, type: string, id: string): Resource | undefined {
  let newest: { version: Resource; at: number } | undefined;
  for (const entry of history.entry ?? []) {
    const version = entry.resource;
    if (version?.resourceType !== type || version.id !== id) continue;
    if (entry.request?.method === 'DELETE' || entry.response?.status?.startsWith('410')) continue;
    const at = Date.parse(version.meta?.lastUpdated ?? '');
    const later = !Number.isNaN(at) && (Number.isNaN(newest?.at ?? Number.NaN) || at > (newest?.at ?? 0));
    if (!newest || later) newest = { version, at };
  }
  return newest?.version;
}
