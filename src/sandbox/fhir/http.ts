import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  badRequest,
  getStatus,
  isOk,
  isResourceType,
  normalizeOperationOutcome,
  OperationOutcomeError,
  parseSearchRequest,
} from '@medplum/core';
import type { FhirRequest, FhirRouter, HttpMethod } from '@medplum/fhir-router';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Logger } from '../../observability/logger.js';
import { isObject } from '../../util/is-object.js';
import { capabilityStatement } from './capability.js';
import { etagOf, HttpFailure, outcomeOf, queryRecord, readBody, sendJson } from './http-util.js';
import { includedRecords } from './include.js';
import { openmrsCapabilityStatement, refuseUnknownParams, refuseUnknownType, servesType } from './openmrs.js';
import { answerRest, type BeforeRest, isRestPath } from './openmrs-rest.js';
import type { SandboxRepository } from './repository.js';
import { searchRecords } from './search.js';
import { searchsetBundle } from './searchset.js';
import type { SerialQueue } from './serial-queue.js';

export const BASE_PATH = '/fhir';
const METHODS = new Set<HttpMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

export interface HttpDeps {
  router: FhirRouter;
  repo: SandboxRepository;
  writes: SerialQueue;
  baseUrl: () => string;
  logger: Logger;
  /** How `next` links page (see FhirSandboxInternals.paging). */
  paging?: 'cursor' | 'offset';
  beforeSearch?: (resourceType: string, query: URLSearchParams) => Promise<void> | void;
  /** A front that refuses long URLs (see FhirSandboxInternals.urlLimit). */
  urlLimit?: UrlLimit;
  /** The server's own limit on the values of a search parameter (see FhirSandboxInternals.listLimit). */
  listLimit?: ListLimit;
  /** Answer as an OpenMRS FHIR2 server would (see FhirSandboxOptions.emulate). */
  emulate?: 'openmrs';
  /** Runs before OpenMRS's REST relationship listing is answered (emulate 'openmrs'; see openmrs-rest.ts). */
  beforeRest?: BeforeRest;
}

/**
 * A FHIR server that refuses a search with a parameter of more than `maxValues` comma-separated values with
 * its own 400 OperationOutcome, as a HAPI deployment refused an `_id` list of about 35 ids
 * (opensrp/fhircore#2529) and the Microsoft FHIR server refuses too many parameters. `refused` counts the
 * searches it turned away.
 */
export interface ListLimit {
  maxValues: number;
  refused?: (resourceType: string, query: URLSearchParams) => void;
}

/** Refuses the search as a server of `limit` would, when a parameter has more values than it takes. */
function refuseLongList(limit: ListLimit | undefined, resourceType: string, query: URLSearchParams): void {
  if (!limit) return;
  for (const [name, value] of query) {
    const values = value.split(',').length;
    if (values <= limit.maxValues) continue;
    limit.refused?.(resourceType, query);
    throw new HttpFailure(
      400,
      outcomeOf('too-costly', `Search parameter ${name} has ${values} values, more than ${limit.maxValues}`),
    );
  }
}

/**
 * A servlet container or reverse proxy in front of the FHIR server that refuses a request whose URL (path
 * and query, as sent) is longer than `maxChars`, with its own HTML page, never a FHIR answer: nginx answers
 * 414 past `large_client_header_buffers`; Tomcat answers 400 "Request header is too large" for a request
 * line past `maxHttpHeaderSize` (it did not move to 414: apache/tomcat#228). `refused` counts the requests
 * it turned away.
 */
export interface UrlLimit {
  maxChars: number;
  style: 'nginx' | 'tomcat';
  refused?: (url: string) => void;
}

const URL_TOO_LONG_PAGES = {
  nginx: {
    status: 414,
    body: '<html>\r\n<head><title>414 Request-URI Too Large</title></head>\r\n<body>\r\n<center><h1>414 Request-URI Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n',
  },
  tomcat: {
    status: 400,
    body: '<!doctype html><html lang="en"><head><title>HTTP Status 400 – Bad Request</title></head><body><h1>HTTP Status 400 – Bad Request</h1><hr class="line" /><p><b>Type</b> Exception Report</p><p><b>Message</b> Request header is too large</p><p><b>Description</b> The server cannot or will not process the request due to something that is perceived to be a client error (e.g., malformed request syntax, invalid request message framing, or deceptive request routing).</p><hr class="line" /><h3>Apache Tomcat/9.0.85</h3></body></html>',
  },
} as const;

/** Refuses the request as the front of `limit` would, when its URL is past it; whether it did. */
function refusedAsTooLong(limit: UrlLimit | undefined, req: IncomingMessage, res: ServerResponse): boolean {
  const url = req.url ?? '';
  if (!limit || url.length <= limit.maxChars) return false;
  limit.refused?.(url);
  const page = URL_TOO_LONG_PAGES[limit.style];
  // Both close the connection after such a request.
  res.writeHead(page.status, { 'content-type': 'text/html;charset=utf-8', connection: 'close' });
  res.end(page.body);
  return true;
}

/** node:http listener: FHIR REST over the router, plus searchset paging links, ETags and metadata. */
export function fhirRequestListener(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const log = deps.logger.child({ component: 'fhir-sandbox-http' });
  return (req, res) => {
    if (refusedAsTooLong(deps.urlLimit, req, res)) return;
    const started = performance.now();
    handle(deps, req, res)
      .catch((err: unknown) => {
        if (err instanceof HttpFailure) return sendJson(res, err.status, err.outcome);
        const outcome = normalizeOperationOutcome(err);
        const status = getStatus(outcome);
        if (status >= 500)
          log.error({ error: err instanceof Error ? err.message : String(err) }, 'fhir request failed');
        sendJson(res, status, outcome);
      })
      .finally(() => {
        // Method and status only: paths and queries can carry identifiers.
        log.debug(
          { method: req.method, status: res.statusCode, ms: Math.round(performance.now() - started) },
          'fhir request',
        );
      });
  };
}

async function handle(deps: HttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
  if (deps.emulate === 'openmrs' && isRestPath(url.pathname)) return answerRest(deps.repo, req, res, deps.beforeRest);
  if (url.pathname !== BASE_PATH && !url.pathname.startsWith(`${BASE_PATH}/`)) {
    throw new HttpFailure(404, outcomeOf('not-found', `Not under ${BASE_PATH}`));
  }
  const method = (req.method ?? 'GET').toUpperCase() as HttpMethod;
  if (!METHODS.has(method)) throw new HttpFailure(405, outcomeOf('not-supported', `Method ${method} not supported`));
  const segments = url.pathname.slice(BASE_PATH.length).split('/').filter(Boolean);
  const body = method === 'GET' || method === 'DELETE' ? undefined : await readBody(req);
  const first = segments[0];
  if (first && !first.startsWith('$') && !first.startsWith('_') && first !== 'metadata' && !isResourceType(first)) {
    throw new HttpFailure(404, outcomeOf('not-supported', `Unknown resource type: ${first}`));
  }

  const openmrs = deps.emulate === 'openmrs';
  if (openmrs && first && isResourceType(first) && !servesType(first)) refuseUnknownType(first);
  if (method === 'GET' && first === 'metadata' && segments.length === 1) {
    return sendJson(res, 200, openmrs ? openmrsCapabilityStatement() : capabilityStatement());
  }
  const isTypeSearch = (method === 'GET' && segments.length === 1) || (method === 'POST' && segments[1] === '_search');
  if (first && isTypeSearch && segments.length <= 2) {
    const form = body instanceof URLSearchParams ? body : new URLSearchParams();
    const query = new URLSearchParams([...url.searchParams, ...form]);
    refuseLongList(deps.listLimit, first, query);
    if (openmrs) refuseUnknownParams(first, query, method);
    await deps.beforeSearch?.(first, query);
    return sendJson(res, 200, search(deps, first, query));
  }
  if (body instanceof URLSearchParams)
    throw new HttpFailure(415, outcomeOf('not-supported', 'Form bodies only for _search'));

  const relative = segments.join('/') + url.search;
  const fhirReq: FhirRequest = {
    method,
    url: relative,
    pathname: '',
    body,
    params: {},
    query: {},
    headers: req.headers,
    // Without this flag fhir-router runs a transaction Bundle as a batch.
    config: { transactions: true },
  };
  if (method === 'POST' && segments.length === 1 && isObject(body)) {
    delete body.id; // R4: a server ignores the id a client sends with create
  }
  if (method === 'GET') return respond(deps, req, res, await deps.router.handleRequest(fhirReq, deps.repo), false);
  const isPutById = method === 'PUT' && segments.length === 2;
  const [response, existed] = await deps.writes.run(async () => {
    const existed = isPutById && first ? deps.repo.exists(first, segments[1] ?? '') : true;
    return [await deps.router.handleRequest(fhirReq, deps.repo), existed] as const;
  });
  respond(deps, req, res, response, !existed);
}

function search(deps: HttpDeps, resourceType: string, query: URLSearchParams): Bundle {
  const serverTime = deps.repo.now(); // before reading: a later write can only get a later lastUpdated
  const request = parseSearchRequest(resourceType as Resource['resourceType'], queryRecord(query));
  const result = searchRecords(deps.repo, request);
  const bundle = searchsetBundle({
    baseUrl: deps.baseUrl(),
    path: resourceType,
    query,
    result,
    fields: request.fields,
    serverTime,
    ...(deps.paging === 'offset' ? { offsetPaging: { offset: request.offset ?? 0, count: request.count } } : {}),
  });
  const included = includedRecords(deps.repo, request, result.page);
  if (included.length) {
    bundle.entry = [
      ...(bundle.entry ?? []),
      ...included.map((record) => ({
        fullUrl: `${deps.baseUrl()}/${record.resource.resourceType}/${record.resource.id}`,
        resource: record.resource,
        search: { mode: 'include' as const },
      })),
    ];
  }
  return bundle;
}

function respond(
  deps: HttpDeps,
  req: IncomingMessage,
  res: ServerResponse,
  response: Awaited<ReturnType<FhirRouter['handleRequest']>>,
  createdByPut: boolean,
): void {
  const [outcome, resource] = response;
  let status = getStatus(outcome);
  if (!isOk(outcome) || !resource) {
    sendJson(res, status, outcome);
    return;
  }
  if (
    resource.resourceType === 'Bundle' &&
    (resource.type === 'batch-response' || resource.type === 'transaction-response')
  ) {
    addEntryEtags(resource);
    sendJson(res, status, resource);
    return;
  }
  const headers: Record<string, string> = {};
  const versionId = resource.meta?.versionId;
  if (versionId) headers.ETag = etagOf(versionId);
  if (resource.meta?.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (createdByPut) status = 201;
  if (status === 201 && resource.id && versionId) {
    headers.Location = `${deps.baseUrl()}/${resource.resourceType}/${resource.id}/_history/${versionId}`;
  }
  if (req.method === 'GET' && versionId && req.headers['if-none-match'] === etagOf(versionId)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  sendJson(res, status, resource, headers);
}

function addEntryEtags(bundle: Bundle): void {
  for (const entry of bundle.entry ?? []) {
    const meta = entry.resource?.meta;
    if (entry.response && meta?.versionId) {
      entry.response.etag = etagOf(meta.versionId);
      if (meta.lastUpdated) entry.response.lastModified = meta.lastUpdated;
    }
  }
}

/** Used by `upsert`: the same router call as an HTTP PUT/POST, failures as OperationOutcomeError. */
export async function writeThroughRouter(deps: HttpDeps, resource: Resource): Promise<Resource> {
  if (!isResourceType(resource.resourceType)) {
    throw new OperationOutcomeError(badRequest(`Unknown resource type: ${String(resource.resourceType)}`));
  }
  const url = resource.id ? `${resource.resourceType}/${resource.id}` : resource.resourceType;
  const [outcome, saved] = await deps.writes.run(() =>
    deps.router.handleRequest(
      { method: resource.id ? 'PUT' : 'POST', url, pathname: '', body: resource, params: {}, query: {} },
      deps.repo,
    ),
  );
  if (!isOk(outcome) || !saved) throw new OperationOutcomeError(outcome);
  return saved;
}
