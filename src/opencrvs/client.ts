// The production OpenCRVS client (docs/opencrvs-api.md): token handling, create, notify,
// create-and-notify and locations for OpenCRVS 2.0 and 1.9, every answer validated and every
// failure turned into one classified OpenCrvsError.
import { fixedSecret, secretOf } from '../config/secret-files.js';
import type { OpenCrvsSettings } from '../config/types.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import { SecretScrubber } from '../observability/secret-scrubber.js';
import { classifyHttpFailure } from './classify.js';
import { OpenCrvsError } from './errors.js';
import {
  type ExchangeResponse,
  errorBodyOf,
  exchange,
  type Requester,
  type Transport,
  undiciRequester,
  waitUnlessGivenUp,
} from './http.js';
import { externalIdMatches, fhirLocationsUrl, locationsFromFhirBundle } from './locations-v1.js';
import { readNotifyOutcome } from './outcome.js';
import { type OwnClients, otherClientOf, refuseForeignEvent } from './ownership.js';
import { schemaProblem, validateEventDocument, validateFhirLocationBundle, validateLocations } from './schemas.js';
import { formCodes, sentEchoes, sentValues } from './scrub.js';
import { clientCredentialsTokenSource, staticTokenSource, type TokenSource } from './token.js';
import type { CallOptions, EventDocument, Location, LocationQuery, NotifyResult, OpenCrvsApi } from './types.js';

export interface OpenCrvsClientDeps {
  logger?: Logger;
  /** Replaces the HTTP layer (tests); by default a keep-alive undici pool the client owns. */
  request?: Requester;
  now?: () => number;
  /**
   * The clients this bridge has used (the ledger's list; ledger/opencrvs-clients.ts): an event an earlier
   * one created is still this bridge's own after the client is replaced. `opencrvs.previousClientIds` is
   * added to it.
   */
  ownClients?: OwnClients;
}

export interface OpenCrvsClient extends OpenCrvsApi {
  readonly version: '2.0' | '1.9';
  /** Tokens obtained from the token endpoint so far (the first included; 0 with a static token). */
  tokenRenewals(): number;
  /** Forgets the cached token and closes the client's connections. */
  close?(): void;
  /**
   * Asks the events API to create an event from an empty body (`POST {eventsUrl}/events` with `{}`), which
   * it refuses before creating anything. Resolves when the events API answered as itself (400 on the body,
   * or 403 for a client without `record.create`); rejects with the classified error otherwise, a plain 404
   * (`config`) meaning `eventsUrl` is not the events API. For doctor: 1.9 lists locations on the gateway,
   * so nothing else it asks goes to `eventsUrl` before the first delivery does. On 1.9 its notify route
   * (`POST {eventsUrl}/events/notifications`) is asked the same way next: a 404 there (operation
   * `probeNotifications`, kind `config`) is a 2.0 server, which answers the create as 1.9 does.
   */
  probeEvents(options?: CallOptions): Promise<void>;
}

// Exactly this string: a charset parameter gets 415 from some OpenCRVS versions, and 1.9 reads no
// body under it (docs/opencrvs-api.md, "Calls").
const JSON_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json' };

export function createOpenCrvsClient(settings: OpenCrvsSettings, deps: OpenCrvsClientDeps = {}): OpenCrvsClient {
  const logger = (deps.logger ?? silentLogger).child({ component: 'opencrvs' });
  const now = deps.now ?? Date.now;
  const scrubber = new SecretScrubber();
  scrubber.add(settings.clientSecret);
  scrubber.add(settings.accessToken);
  const own = deps.request ? undefined : undiciRequester(settings.timeoutMs);
  const transport: Transport = {
    request: deps.request ?? (own as NonNullable<typeof own>).request,
    timeoutMs: settings.timeoutMs,
    scrubber,
  };
  const version = settings.version;
  const eventsUrl = trimSlash(required(settings.eventsUrl, 'eventsUrl'));
  const tokens = tokenSourceFor(settings, transport, logger, now);
  const previous = new Set(settings.previousClientIds ?? []);
  // The `sub` of the tokens this client has had: one, or a few over client replacements (bounded by them).
  const subjects = new Set<string>();
  const ownClients: OwnClients = {
    has: (id) => subjects.has(id) || previous.has(id) || (deps.ownClients?.has(id) ?? false),
    add: (id) => {
      subjects.add(id);
      deps.ownClients?.add(id);
    },
  };

  /** One authorised request; a 401 gets one retry with a fresh token, then is an operator problem. */
  /** The token a call is made with, its client remembered before the call: the answer may be lost with the event created. */
  async function callToken(operation: string, signal?: AbortSignal) {
    // One token request at a time, shared by every caller: one that gives up stops waiting for it, and the
    // request runs on for the others (within timeoutMs); cut off, it would fail theirs too.
    const token = await waitUnlessGivenUp(transport, operation, tokens.get(), signal);
    if (token.subject) ownClients.add(token.subject);
    return token;
  }

  async function call(operation: string, method: 'GET' | 'POST', url: string, payload?: unknown, signal?: AbortSignal) {
    const started = performance.now();
    let token = await callToken(operation, signal);
    const text = payload === undefined ? undefined : JSON.stringify(payload);
    const send = () =>
      exchange(transport, {
        operation,
        method,
        url,
        headers: { ...JSON_HEADERS, Authorization: `Bearer ${token.value}` },
        body: text,
        signal,
      });
    let response = await send();
    if (response.status === 401 && tokens.invalidate(token)) {
      logger.warn({ operation }, 'OpenCRVS refused the token; retrying once with a new one');
      token = await callToken(operation, signal);
      response = await send();
    }
    logger.debug({ operation, status: response.status, ms: Math.round(performance.now() - started) }, 'OpenCRVS call');
    if (response.status < 200 || response.status >= 300) {
      const sent =
        payload && typeof payload === 'object' && 'declaration' in payload
          ? sentValues(
              [payload.declaration, 'annotation' in payload ? payload.annotation : undefined],
              formCodes(settings.country, version),
            )
          : [];
      const body = errorBodyOf(transport, response, sentEchoes(sent));
      const raw = response.isJson ? response.json : response.text;
      throw classifyHttpFailure(
        {
          operation,
          status: response.status,
          body,
          raw,
          retryAfter: response.retryAfter,
          ...(text === undefined ? {} : { sentBytes: Buffer.byteLength(text) }),
        },
        now(),
      );
    }
    return { response, token };
  }

  /** The event OpenCRVS answered with, and the `sub` of the token the call was made with. */
  async function postEvent(
    operation: string,
    path: string,
    payload: unknown,
  ): Promise<{ event: EventDocument; subject?: string }> {
    const { response, token } = await call(operation, 'POST', `${eventsUrl}${path}`, payload);
    return { event: eventOf(operation, response), subject: token.subject };
  }

  /**
   * A 404 to a location lookup is a wrong URL, or the other version's server: 1.9 asks the gateway's v1
   * location API, which 2.0 has not, and 2.0 the events API's /locations, which 1.9 has not. Said once
   * here, so serve, sync and doctor name both settings rather than a bare `HTTP 404`.
   */
  async function listLocations(query: LocationQuery = {}, options: CallOptions = {}): Promise<Location[]> {
    try {
      return await lookUpLocations(query, options);
    } catch (err) {
      if (!(err instanceof OpenCrvsError) || err.status !== 404 || err.kind !== 'config' || err.hint) throw err;
      throw new OpenCrvsError({
        kind: err.kind,
        classification: err.classification,
        message: err.opencrvsMessage,
        status: err.status,
        body: err.body,
        operation: err.operation,
        cause: err.cause,
        hint: `is opencrvs.eventsUrl the events API, ending in /api/events (register host) or /events (gateway), and opencrvs.version ('${version}') the server's?`,
      });
    }
  }

  /**
   * Sends an empty POST, which the events API refuses before it does anything: 400 on the body, 403 without
   * the scope, or (a route keyed on an event) its "Event not found". Any other answer is thrown.
   */
  async function refusedEmpty(operation: string, path: string, signal?: AbortSignal): Promise<void> {
    try {
      await call(operation, 'POST', `${eventsUrl}${path}`, {}, signal);
    } catch (err) {
      if (err instanceof OpenCrvsError && (err.status === 400 || err.status === 403 || err.kind === 'not-found'))
        return;
      throw err;
    }
    throw new OpenCrvsError({
      kind: 'invalid-response',
      classification: 'permanent',
      operation,
      message: `an empty POST ${path} was taken, which no OpenCRVS events API does`,
    });
  }

  async function lookUpLocations(query: LocationQuery, options: CallOptions): Promise<Location[]> {
    if (version === '1.9') {
      const url = fhirLocationsUrl(settings, query.locationType);
      const { response } = await call('listLocations', 'GET', url, undefined, options.signal);
      if (!validateFhirLocationBundle(response.json))
        throw invalidResponse('listLocations', validateFhirLocationBundle.errors);
      return locationsFromFhirBundle(response.json).filter(
        (l) =>
          (!query.id || l.id === query.id) && (!query.externalId || externalIdMatches(l.externalId, query.externalId)),
      );
    }
    const url = new URL(`${eventsUrl}/locations`);
    if (query.locationType) url.searchParams.set('locationType', query.locationType);
    // Only the first value of a repeated key is read (docs/opencrvs-api.md, "Calls"): one id per call.
    if (query.id) url.searchParams.set('locationIds', query.id);
    if (query.externalId) url.searchParams.set('externalId', query.externalId);
    const { response } = await call('listLocations', 'GET', url.toString(), undefined, options.signal);
    if (!validateLocations(response.json)) throw invalidResponse('listLocations', validateLocations.errors);
    return response.json;
  }

  return {
    version,
    tokenRenewals: () => tokens.renewals(),
    close: () => {
      tokens.clear();
      // Idle keep-alive sockets would otherwise hold the process open for a few seconds.
      own?.close().catch(() => undefined);
    },

    async createEvent(input) {
      // 1.9 drops createdAtLocation silently, so one body serves both versions.
      const { event, subject } = await postEvent('createEvent', '/events', {
        type: input.type,
        transactionId: input.transactionId,
        createdAtLocation: input.createdAtLocation,
      });
      refuseForeignEvent(event, input.transactionId, subject, 'createEvent', ownClients, input.ownNotify);
      return event;
    },

    async notify(input): Promise<NotifyResult> {
      const common = {
        type: 'NOTIFY',
        transactionId: input.transactionId,
        createdAtLocation: input.createdAtLocation,
        declaration: input.declaration,
        annotation: input.annotation ?? {},
      };
      const { event } =
        version === '1.9'
          ? await postEvent('notify', '/events/notifications', { eventId: input.eventId, ...common })
          : await postEvent('notify', `/events/${encodeURIComponent(input.eventId)}/notify`, {
              ...common,
              keepAssignment: false,
            });
      return readNotifyOutcome(event, input.transactionId, 'notify');
    },

    async createAndNotify(input): Promise<NotifyResult> {
      if (version !== '2.0') {
        throw new OpenCrvsError({
          kind: 'config',
          classification: 'operator',
          message: `create-and-notify in one call needs OpenCRVS 2.0 (configured: ${version}); use two-step delivery`,
          operation: 'createAndNotify',
        });
      }
      const { event, subject } = await postEvent('createAndNotify', '/events/notify', {
        eventType: input.eventType,
        transactionId: input.transactionId,
        createdAtLocation: input.createdAtLocation,
        declaration: input.declaration,
        annotation: input.annotation ?? {},
      });
      // OpenCRVS keys the create step of this call `<transactionId>:create`, across clients: another
      // bridge's event under that key, not notified yet, takes this NOTIFY (docs/opencrvs-api.md,
      // Idempotency). Then it is stored, and said so, not refused as holding nothing of ours.
      const into = refuseForeignEvent(
        event,
        `${input.transactionId}:create`,
        subject,
        'createAndNotify',
        ownClients,
        (id) => id === input.transactionId,
      );
      const result = readNotifyOutcome(event, input.transactionId, 'createAndNotify');
      return into ? { ...result, intoEventOf: into } : result;
    },

    listLocations,

    // Nothing can be told before a token names this client (a static token without `sub`).
    otherClientOf: (action) => (subjects.size === 0 ? undefined : otherClientOf(action, [...subjects][0], ownClients)),

    async probeEvents(options = {}) {
      // A create with no transactionId and no type, which every version refuses before it creates anything
      // (400 on its body, or 403 without record.create): the route is the one the bridge creates events on,
      // documented for 1.9 and 2.0 alike (docs/opencrvs-api.md, "Differences in v1.9.x"). Any other path
      // answers a plain 404 (kind config). A read of an event no one has would prove as much only where
      // GET /events/{id} is served, which is not documented for 1.9.
      await refusedEmpty('probeEvents', '/events', options.signal);
      if (version !== '1.9') return;
      // A 2.0 server answers that create as 1.9 does: 1.9's own notify route, which 2.0 has not (its NOTIFY
      // is /events/{id}/notify), tells them apart, refused the same way (no eventId, no transactionId).
      try {
        await refusedEmpty('probeNotifications', '/events/notifications', options.signal);
      } catch (err) {
        if (!(err instanceof OpenCrvsError) || err.status !== 404 || err.kind !== 'config') throw err;
        throw new OpenCrvsError({
          kind: 'config',
          classification: 'operator',
          message: err.opencrvsMessage,
          status: err.status,
          body: err.body,
          operation: 'probeNotifications',
          cause: err.cause,
          hint: `the events API has no POST /events/notifications, where OpenCRVS 1.9 takes notifications (2.0 has none): is opencrvs.version ('${version}') the server's?`,
        });
      }
    },
    tokenState() {
      const refusal = tokens.refusal();
      return { ...(refusal ? { refusal } : {}), obtained: tokens.renewals() };
    },

    async checkToken(options = {}) {
      const asked = options.fresh ? tokens.fresh() : tokens.get();
      const token = await waitUnlessGivenUp(transport, 'token', asked, options.signal);
      return { scopes: [...token.scopes], expiresAt: token.expiresAt };
    },
  };

  function eventOf(operation: string, response: ExchangeResponse): EventDocument {
    if (!validateEventDocument(response.json)) throw invalidResponse(operation, validateEventDocument.errors);
    return response.json;
  }
}

/**
 * A 2xx whose body is not what OpenCRVS sends is classified retryable, not permanent: it is almost
 * always something in between (a proxy's HTML page, a truncated body, a half-deployed upgrade), the
 * record itself is not at fault, and every write is idempotent on its transactionId, so a later
 * attempt reads the real answer. If it persists, the delivery layer's attempt budget ends it.
 */
function invalidResponse(operation: string, errors: Parameters<typeof schemaProblem>[0]): OpenCrvsError {
  return new OpenCrvsError({
    kind: 'invalid-response',
    classification: 'retryable',
    message: `unexpected answer: ${schemaProblem(errors)}`,
    operation,
  });
}

function tokenSourceFor(
  settings: OpenCrvsSettings,
  transport: Transport,
  logger: Logger,
  now: () => number,
): TokenSource {
  // A `…File` secret follows its file (config/secret-files.ts).
  const accessToken = secretOf(settings, 'accessToken', { logger });
  if (settings.accessToken && accessToken) return staticTokenSource(accessToken, transport.scrubber);
  return clientCredentialsTokenSource(
    {
      tokenUrl: required(settings.tokenUrl, 'tokenUrl'),
      clientId: required(settings.clientId, 'clientId'),
      clientSecret:
        secretOf(settings, 'clientSecret', { logger }) ?? fixedSecret(required(settings.clientSecret, 'clientSecret')),
      renewBeforeSeconds: settings.tokenRenewBeforeSeconds,
    },
    transport,
    logger,
    now,
  );
}

function required(value: string | undefined, key: string): string {
  if (value) return value;
  throw new OpenCrvsError({
    kind: 'config',
    classification: 'operator',
    message: `opencrvs.${key} is not set`,
    operation: 'configure',
  });
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
