// The client against a tiny local HTTP server that answers what each test scripts: request shapes,
// token caching and renewal, the 401 retry, transport failures, and that no secret leaks.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { OpenCrvsSettings } from '../../src/config/types.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Requester } from '../../src/opencrvs/http.js';
import { createOpenCrvsClient, type OpenCrvsClientDeps, OpenCrvsError } from '../../src/opencrvs/index.js';

const SECRET = 'sup3r-s3cret-Value-42';
const OFFICE = '0b1c7a6e-3d0b-4a8e-9c55-1f2a3b4c5d6e';

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}
interface Reply {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Answered once this settles (after delayMs, if any): an answer held until the test has seen something. */
  after?: Promise<unknown>;
  drop?: boolean;
}
type Handler = (req: Seen) => Reply;

let server: Server;
let base = '';
let seen: Seen[] = [];
let handlers = new Map<string, Handler>();
let clock = Date.parse('2026-03-01T10:00:00Z');
let issued: string[] = [];

function jwt(payload: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(payload)}.${Buffer.from(`sig-${issued.length}`).toString('base64url')}`;
}

function issueToken(ttlSeconds = 600): Reply {
  const token = jwt({
    sub: 'bridge',
    scope: ['record.create', 'record.notify'],
    exp: Math.floor(clock / 1000) + ttlSeconds,
    n: issued.length,
  });
  issued.push(token);
  return { json: { access_token: token, token_type: 'Bearer' }, headers: { 'Cache-Control': 'no-store' } };
}

function eventDoc(txNotify?: string, status: 'Requested' | 'Accepted' | 'Rejected' = 'Accepted') {
  const actions: unknown[] = [
    {
      id: 'a-create',
      type: 'CREATE',
      status: 'Accepted',
      transactionId: 'tx-c',
      createdAtLocation: OFFICE,
      declaration: {},
    },
  ];
  if (txNotify) {
    actions.push({ id: 'a-req', type: 'NOTIFY', status: 'Requested', transactionId: txNotify, declaration: {} });
    if (status !== 'Requested') {
      actions.push({
        id: 'a-conf',
        type: 'NOTIFY',
        status,
        transactionId: txNotify,
        originalActionId: 'a-req',
        declaration: {},
      });
    }
  }
  return { id: 'ev-1', type: 'birth', trackingId: 'B7K2QZ', createdAt: 'x', updatedAt: 'y', actions };
}

function on(route: string, handler: Handler) {
  handlers.set(route, handler);
}

function settings(overrides: Partial<OpenCrvsSettings> = {}): OpenCrvsSettings {
  return {
    tokenUrl: `${base}/auth/token`,
    eventsUrl: `${base}/events`,
    clientId: 'bridge',
    clientSecret: SECRET,
    version: '2.0',
    country: 'farajaland',
    timeoutMs: 1000,
    tokenRenewBeforeSeconds: 60,
    ...overrides,
  };
}

function client(overrides: Partial<OpenCrvsSettings> = {}, deps: OpenCrvsClientDeps = {}) {
  return createOpenCrvsClient(settings(overrides), { now: () => clock, ...deps });
}

async function failure(promise: Promise<unknown>): Promise<OpenCrvsError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OpenCrvsError) return err;
    throw err;
  }
  assert.fail('expected an OpenCrvsError');
}

const notifyInput = {
  eventId: 'ev-1',
  transactionId: 'tx-n',
  createdAtLocation: OFFICE,
  declaration: { 'child.dob': '2026-02-01' },
};
const eventPath = (req: Seen) => req.path !== '/auth/token';

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const entry: Seen = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(entry);
      const handler = handlers.get(`${entry.method} ${entry.path}`);
      const reply: Reply = handler ? handler(entry) : { status: 404, json: { message: 'Not Found' } };
      if (reply.drop) {
        req.socket.destroy();
        return;
      }
      const send = () => {
        if (res.destroyed) return;
        const body = reply.text ?? JSON.stringify(reply.json ?? {});
        res.writeHead(reply.status ?? 200, {
          'Content-Type': reply.text ? 'text/html' : 'application/json',
          ...reply.headers,
        });
        res.end(body);
      };
      const held = reply.after?.then(send, send);
      if (held) return;
      if (reply.delayMs) setTimeout(send, reply.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen = [];
  issued = [];
  handlers = new Map();
  on('POST /auth/token', () => issueToken());
});

describe('OpenCRVS client requests', () => {
  it('asks for a token with client credentials in the query string and an empty body', async () => {
    const c = client();
    const scopes = await c.checkToken();
    const [req] = seen;
    assert.equal(req?.method, 'POST');
    assert.equal(req?.query.get('client_id'), 'bridge');
    assert.equal(req?.query.get('client_secret'), SECRET);
    assert.equal(req?.query.get('grant_type'), 'client_credentials');
    assert.equal(req?.body, '');
    assert.deepEqual(scopes.scopes, ['record.create', 'record.notify']);
    assert.equal(scopes.expiresAt, (Math.floor(clock / 1000) + 600) * 1000);
  });

  it('creates an event with exact JSON headers, the bearer token and the create body', async () => {
    on('POST /events/events', () => ({ json: eventDoc() }));
    const event = await client().createEvent({ type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE });
    assert.equal(event.trackingId, 'B7K2QZ');
    const req = seen.find(eventPath);
    assert.equal(req?.headers['content-type'], 'application/json');
    assert.equal(req?.headers.accept, 'application/json');
    assert.equal(req?.headers.authorization, `Bearer ${issued[0]}`);
    assert.deepEqual(JSON.parse(req?.body ?? ''), { type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE });
  });

  it('notifies on 2.0 at /events/{id}/notify with keepAssignment false and reads acceptance', async () => {
    on('POST /events/events/ev-1/notify', () => ({ json: eventDoc('tx-n') }));
    const result = await client().notify(notifyInput);
    assert.deepEqual([result.outcome, result.eventId, result.trackingId], ['accepted', 'ev-1', 'B7K2QZ']);
    assert.deepEqual(JSON.parse(seen.find(eventPath)?.body ?? ''), {
      type: 'NOTIFY',
      transactionId: 'tx-n',
      createdAtLocation: OFFICE,
      declaration: { 'child.dob': '2026-02-01' },
      annotation: {},
      keepAssignment: false,
    });
  });

  it('reports a 202 with only the Requested action as pending', async () => {
    on('POST /events/events/ev-1/notify', () => ({ status: 202, json: eventDoc('tx-n', 'Requested') }));
    assert.equal((await client().notify(notifyInput)).outcome, 'pending');
  });

  it('throws a permanent rejected error when the 200 answer holds a Rejected NOTIFY', async () => {
    on('POST /events/events/ev-1/notify', () => ({ json: eventDoc('tx-n', 'Rejected') }));
    const err = await failure(client().notify(notifyInput));
    assert.deepEqual([err.kind, err.classification], ['rejected', 'permanent']);
  });

  it('notifies on 1.9 at /events/notifications with the event id in the body', async () => {
    on('POST /events/events/notifications', () => ({ json: eventDoc('tx-n') }));
    const result = await client({ version: '1.9' }).notify(notifyInput);
    assert.equal(result.outcome, 'accepted');
    const body = JSON.parse(seen.find(eventPath)?.body ?? '');
    assert.equal(body.eventId, 'ev-1');
    assert.equal(body.type, 'NOTIFY');
    assert.equal('waitFor' in body || 'keepAssignment' in body, false);
  });

  it('creates and notifies in one call on 2.0 and refuses it on 1.9 without a request', async () => {
    on('POST /events/events/notify', () => ({ json: eventDoc('tx-n') }));
    const input = { eventType: 'birth', transactionId: 'tx-n', createdAtLocation: OFFICE, declaration: {} };
    assert.equal((await client().createAndNotify(input)).outcome, 'accepted');
    assert.deepEqual(Object.keys(JSON.parse(seen.find(eventPath)?.body ?? '')).sort(), [
      'annotation',
      'createdAtLocation',
      'declaration',
      'eventType',
      'transactionId',
    ]);
    seen = [];
    const err = await failure(client({ version: '1.9' }).createAndNotify(input));
    assert.deepEqual([err.kind, err.classification], ['config', 'operator']);
    assert.equal(seen.length, 0);
  });

  it('lists locations one id per call with the query keys of the events service', async () => {
    const loc = {
      id: OFFICE,
      name: 'Ibombo District Office',
      externalId: 'CRVS_OFFICE_JWMRGwDBXK',
      administrativeAreaId: null,
      validUntil: null,
      locationType: 'CRVS_OFFICE',
    };
    on('GET /events/locations', () => ({ json: [loc] }));
    const c = client();
    assert.deepEqual(await c.listLocations({ locationType: 'CRVS_OFFICE', id: OFFICE }), [loc]);
    await c.listLocations({ externalId: 'CRVS_OFFICE_JWMRGwDBXK' });
    const [first, second] = seen.filter(eventPath);
    assert.deepEqual(
      [...(first?.query ?? [])],
      [
        ['locationType', 'CRVS_OFFICE'],
        ['locationIds', OFFICE],
      ],
    );
    assert.deepEqual([...(second?.query ?? [])], [['externalId', 'CRVS_OFFICE_JWMRGwDBXK']]);
  });

  it('lists locations on 1.9 from the v1 FHIR location API of the gateway', async () => {
    on('GET /location', () => ({
      json: {
        resourceType: 'Bundle',
        entry: [
          {
            resource: {
              resourceType: 'Location',
              id: OFFICE,
              name: 'Ibombo District Office',
              // Archived: 1.x still lists it unless asked for status=active.
              status: 'inactive',
              type: { coding: [{ system: 'http://opencrvs.org/specs/location-type', code: 'CRVS_OFFICE' }] },
              identifier: [{ system: 'http://opencrvs.org/specs/id/internal-id', value: 'CRVS_OFFICE_JWMRGwDBXK' }],
              partOf: { reference: 'Location/area-1' },
            },
          },
        ],
      },
    }));
    const found = await client({ version: '1.9' }).listLocations({
      locationType: 'CRVS_OFFICE',
      externalId: 'CRVS_OFFICE_JWMRGwDBXK',
    });
    assert.deepEqual(found, [
      {
        id: OFFICE,
        name: 'Ibombo District Office',
        externalId: 'CRVS_OFFICE_JWMRGwDBXK',
        administrativeAreaId: 'area-1',
        validUntil: null,
        deactivated: true,
        locationType: 'CRVS_OFFICE',
      },
    ]);
    assert.equal(seen.find(eventPath)?.query.get('type'), 'CRVS_OFFICE');
  });
});

describe('OpenCRVS client tokens', () => {
  it('reuses one token and lets concurrent first callers share a single token request', async () => {
    on('POST /auth/token', () => ({ ...issueToken(), delayMs: 50 }));
    on('POST /events/events', () => ({ json: eventDoc() }));
    const c = client();
    const input = { type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE };
    await Promise.all(Array.from({ length: 5 }, () => c.createEvent(input)));
    await c.createEvent(input);
    assert.equal(seen.filter((r) => r.path === '/auth/token').length, 1);
    assert.equal(c.tokenRenewals(), 1);
  });

  it('renews the token tokenRenewBeforeSeconds before exp', async () => {
    on('POST /events/events', () => ({ json: eventDoc() }));
    const c = client({ tokenRenewBeforeSeconds: 60 });
    const input = { type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE };
    const start = clock;
    try {
      await c.createEvent(input);
      clock = start + 539_000; // 61 s before exp: still the first token
      await c.createEvent(input);
      assert.equal(c.tokenRenewals(), 1);
      clock = start + 541_000; // 59 s before exp: renew
      await c.createEvent(input);
      assert.equal(c.tokenRenewals(), 2);
      const auths = seen.filter(eventPath).map((r) => r.headers.authorization);
      assert.deepEqual(auths, [`Bearer ${issued[0]}`, `Bearer ${issued[0]}`, `Bearer ${issued[1]}`]);
    } finally {
      clock = start;
    }
  });

  it('counts the token lifetime (exp - iat) on its own clock when the clocks disagree', async () => {
    on('POST /events/events', () => ({ json: eventDoc() }));
    // OpenCRVS's clock runs 10 minutes behind ours: its exp is already in our past on arrival.
    on('POST /auth/token', () => {
      const serverNow = Math.floor(clock / 1000) - 600;
      const token = jwt({ sub: 'bridge', scope: ['record.create'], iat: serverNow, exp: serverNow + 600 });
      issued.push(token);
      return { json: { access_token: token, token_type: 'Bearer' } };
    });
    const c = client({ tokenRenewBeforeSeconds: 60 });
    const input = { type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE };
    const start = clock;
    try {
      await c.createEvent(input);
      await c.createEvent(input);
      clock = start + 539_000;
      await c.createEvent(input);
      assert.equal(c.tokenRenewals(), 1, 'one token for 9 minutes, not one per call');
      clock = start + 541_000;
      await c.createEvent(input);
      assert.equal(c.tokenRenewals(), 2);
    } finally {
      clock = start;
    }
  });

  it('retries a 401 once with a fresh token', async () => {
    on('POST /events/events', (req) =>
      req.headers.authorization === `Bearer ${issued[0]}`
        ? { status: 401, json: { statusCode: 401, error: 'Unauthorized', message: 'Invalid token' } }
        : { json: eventDoc() },
    );
    const c = client();
    await c.createEvent({ type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE });
    assert.equal(c.tokenRenewals(), 2);
    assert.equal(seen.filter(eventPath).length, 2);
  });

  it('calls a second 401 an operator problem', async () => {
    on('POST /events/events', () => ({
      status: 401,
      json: { statusCode: 401, error: 'Unauthorized', message: 'Invalid token' },
    }));
    const err = await failure(
      client().createEvent({ type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE }),
    );
    assert.deepEqual([err.kind, err.classification, err.status], ['unauthorized', 'operator', 401]);
    assert.equal(seen.filter(eventPath).length, 2);
  });

  it('does not retry a 401 with a static token, and never asks the token endpoint', async () => {
    on('POST /events/events', () => ({ status: 401, json: { message: 'expired' } }));
    const c = client({ accessToken: jwt({ exp: 2_000_000_000, scope: ['record.notify'] }), clientSecret: undefined });
    assert.deepEqual((await c.checkToken()).scopes, ['record.notify']);
    const err = await failure(c.createEvent({ type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE }));
    assert.equal(err.kind, 'unauthorized');
    assert.deepEqual(
      seen.map((r) => r.path),
      ['/events/events'],
    );
    assert.equal(c.tokenRenewals(), 0);
  });

  it('calls a 401 invalid_client from the token endpoint an operator problem', async () => {
    on('POST /auth/token', () => ({
      status: 401,
      json: { error: 'invalid_client', error_description: 'Invalid client id or secret' },
    }));
    const err = await failure(client().checkToken());
    assert.deepEqual([err.kind, err.classification], ['unauthorized', 'operator']);
    assert.equal(err.message, 'token: HTTP 401: invalid_client: Invalid client id or secret');
  });

  it('after the token endpoint refuses the credentials, fails calls at once without asking it again for 30 s, then 60 s', async () => {
    on('POST /auth/token', () => ({
      status: 401,
      json: { error: 'invalid_client', error_description: 'Invalid client id or secret' },
    }));
    on('POST /events/events', () => ({ json: eventDoc() }));
    on('GET /events/locations', () => ({ json: [] }));
    const c = client();
    const input = { type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE };
    const tokenRequests = () => seen.filter((r) => r.path === '/auth/token').length;
    const start = clock;
    try {
      const first = await failure(c.createEvent(input));
      assert.equal(first.message, 'token: HTTP 401: invalid_client: Invalid client id or secret');
      // Deliveries, lookups, pending checks and readiness meanwhile: each fails at once with that answer.
      clock += 12_000;
      for (let i = 0; i < 5; i++) {
        for (const err of [
          await failure(c.createEvent(input)),
          await failure(c.listLocations({ externalId: 'x' })),
          await failure(c.checkToken()),
          await failure(c.checkToken({ fresh: true })),
        ]) {
          assert.deepEqual(
            [err.kind, err.classification, err.status, err.operation],
            ['unauthorized', 'operator', 401, 'token'],
          );
          assert.equal(
            err.message,
            'token: HTTP 401: invalid_client: Invalid client id or secret; the token endpoint answered so 12 s ago and is asked again in 18 s',
          );
          assert.ok(!err.message.includes(SECRET));
        }
      }
      assert.equal(tokenRequests(), 1, 'the endpoint was asked once');
      assert.equal(seen.filter(eventPath).length, 0, 'no call went out without a token');
      clock = start + 30_000;
      await failure(c.checkToken({ fresh: true }));
      assert.equal(tokenRequests(), 2, 'asked again after 30 s');
      // Refused again: twice as long before the next question.
      clock = start + 30_000 + 59_000;
      await failure(c.createEvent(input));
      assert.equal(tokenRequests(), 2);
      // The client fixed in OpenCRVS: found at the next question, and calls go on.
      on('POST /auth/token', () => issueToken());
      clock = start + 30_000 + 60_000;
      await c.createEvent(input);
      assert.deepEqual([tokenRequests(), c.tokenRenewals()], [3, 1]);
    } finally {
      clock = start;
    }
  });

  it('fails a fresh token check while the endpoint is down, though calls go on with the unexpired token', async () => {
    const c = client();
    await c.checkToken();
    on('POST /auth/token', () => ({ drop: true }));
    // Readiness asks for a fresh token: the cached one proves nothing about the endpoint.
    const err = await failure(c.checkToken({ fresh: true }));
    assert.deepEqual([err.kind, err.classification, err.operation], ['network', 'retryable', 'token']);
    assert.ok(!err.message.includes(SECRET));
    // A call needs a token, not proof: the unexpired one serves.
    assert.equal((await c.checkToken()).expiresAt, Math.floor(clock / 1000) * 1000 + 600_000);
    assert.equal(c.tokenRenewals(), 1);
  });

  it('after a failed renewal uses the current token without asking again for 30 s, and never past its expiry', async () => {
    on('POST /events/events', () => ({ json: eventDoc() }));
    const c = client({ timeoutMs: 200, tokenRenewBeforeSeconds: 60 });
    const input = { type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE };
    const tokenRequests = () => seen.filter((r) => r.path === '/auth/token').length;
    const start = clock;
    try {
      await c.createEvent(input);
      // Due for renewal (59 s before exp) when the auth service starts hanging.
      clock = start + 541_000;
      on('POST /auth/token', () => ({ ...issueToken(), delayMs: 2000 }));
      // Concurrent callers share the one renewal, then go on with the current token.
      await Promise.all([c.createEvent(input), c.createEvent(input), c.createEvent(input)]);
      assert.equal(tokenRequests(), 2);
      // Later calls neither wait for nor send another token request until the retry is due.
      clock = start + 541_000 + 29_000;
      await c.createEvent(input);
      await c.createEvent(input);
      assert.equal(tokenRequests(), 2, 'one token request per renewal attempt, not per call');
      clock = start + 541_000 + 30_000;
      await c.createEvent(input);
      assert.equal(tokenRequests(), 3);
      // Retries come sooner as expiry nears (half the time left: 14.5 s here).
      clock += 14_500;
      await c.createEvent(input);
      assert.equal(tokenRequests(), 4);
      // Expired: a call waits for a new token and fails without one; none goes out with the expired token.
      clock = start + 600_000;
      const eventCalls = seen.filter(eventPath).length;
      const err = await failure(c.createEvent(input));
      assert.deepEqual([err.kind, err.operation], ['timeout', 'token']);
      assert.equal(seen.filter(eventPath).length, eventCalls);
      assert.ok(
        seen.filter(eventPath).every((r) => r.headers.authorization === `Bearer ${issued[0]}`),
        'every call so far with the first token',
      );
      // The endpoint back: the next call gets a new token at once.
      on('POST /auth/token', () => issueToken());
      await c.createEvent(input);
      assert.equal(seen.filter(eventPath).at(-1)?.headers.authorization, `Bearer ${issued.at(-1)}`);
      assert.equal(c.tokenRenewals(), 2);
    } finally {
      clock = start;
    }
  });

  it('calls a token endpoint answer without a JWT an invalid, retryable response', async () => {
    on('POST /auth/token', () => ({ json: { access_token: 'opaque', token_type: 'Bearer' } }));
    const err = await failure(client().checkToken());
    assert.deepEqual([err.kind, err.classification], ['invalid-response', 'retryable']);
  });
});

describe('OpenCRVS client failures', () => {
  const create = (c = client()) => c.createEvent({ type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE });

  it('classifies 503 with Retry-After as retryable with the delay', async () => {
    on('POST /events/events', () => ({ status: 503, json: { message: 'busy' }, headers: { 'Retry-After': '12' } }));
    const err = await failure(create());
    assert.deepEqual([err.kind, err.classification, err.retryAfterMs], ['server', 'retryable', 12_000]);
  });

  it('classifies 429 with an HTTP-date Retry-After as rate-limited', async () => {
    const at = new Date(clock + 90_000).toUTCString();
    on('POST /events/events', () => ({ status: 429, json: { message: 'slow down' }, headers: { 'Retry-After': at } }));
    const err = await failure(create());
    assert.deepEqual([err.kind, err.classification, err.retryAfterMs], ['rate-limited', 'retryable', 90_000]);
  });

  it('classifies a dropped connection as a retryable network error', async () => {
    on('POST /events/events', () => ({ drop: true }));
    const err = await failure(create());
    assert.deepEqual([err.kind, err.classification], ['network', 'retryable']);
  });

  it('classifies a refused connection as a retryable network error', async () => {
    const err = await failure(create(client({ eventsUrl: 'http://127.0.0.1:1/events' })));
    assert.deepEqual([err.kind, err.classification], ['network', 'retryable']);
  });

  it('classifies an answer slower than timeoutMs as a retryable timeout', async () => {
    on('POST /events/events', () => ({ json: eventDoc(), delayMs: 800 }));
    const err = await failure(create(client({ timeoutMs: 150 })));
    assert.deepEqual([err.kind, err.classification], ['timeout', 'retryable']);
  });

  it('cuts off a location list its caller gave up on at once, and does not call that a timeout', async () => {
    on('GET /events/locations', () => ({ json: [], delayMs: 2_000 }));
    const gaveUp = new AbortController();
    // Waited out, the list would be answered (an empty one) and failure() would fail: no clock needed.
    const listing = failure(client({ timeoutMs: 5_000 }).listLocations({}, { signal: gaveUp.signal }));
    setTimeout(() => gaveUp.abort(), 100);
    const err = await listing;
    assert.equal(err.kind, 'network');
    assert.match(err.message, /the caller stopped waiting/);
  });

  it('stops waiting for a token its caller gave up on at once, and leaves that token request to the others', async () => {
    // The token is answered only once the caller that gave up has had its error: waiting for the token, it
    // would get a timeout instead (timeoutMs), not its own words.
    let answerToken: () => void = () => undefined;
    const tokenAnswered = new Promise<void>((resolve) => {
      answerToken = resolve;
    });
    on('POST /auth/token', () => ({ ...issueToken(), after: tokenAnswered }));
    on('GET /events/locations', () => ({ json: [] }));
    const c = client({ timeoutMs: 5_000 });
    const gaveUp = new AbortController();
    const givenUp = failure(c.listLocations({}, { signal: gaveUp.signal })).finally(answerToken);
    const waiting = c.listLocations({});
    setTimeout(() => gaveUp.abort(), 100);
    const err = await givenUp;
    assert.equal(err.kind, 'network');
    assert.match(err.message, /^listLocations: cut off: the caller stopped waiting/);
    // The token request was not cut off: the caller still waiting gets its answer with that one token.
    assert.deepEqual(await waiting, []);
    assert.equal(seen.filter((r) => r.path === '/auth/token').length, 1);
    assert.equal(seen.filter((r) => r.path === '/events/locations').length, 1, 'only the caller still waiting asked');
  });

  for (const fresh of [true, false])
    it(`stops waiting for a ${fresh ? 'fresh ' : ''}token check its caller gave up on (a stop), leaving that request to the others`, async () => {
      on('POST /auth/token', () => ({ ...issueToken(), delayMs: 1_500 }));
      const c = client({ timeoutMs: 5_000 });
      const gaveUp = new AbortController();
      // Waited out, the token would come, and failure() would fail.
      const givenUp = failure(c.checkToken({ fresh, signal: gaveUp.signal }));
      const waiting = c.checkToken({ fresh });
      setTimeout(() => gaveUp.abort(), 100);
      const err = await givenUp;
      assert.deepEqual([err.kind, err.classification, err.operation], ['network', 'retryable', 'token']);
      assert.match(err.message, /the caller stopped waiting/);
      assert.ok((await waiting).expiresAt > clock, 'the caller still waiting gets the token');
      assert.equal(seen.filter((r) => r.path === '/auth/token').length, 1, 'one token request, shared');
    });

  it('keeps the field problems of a 400 as the message and the parsed list as the body, without the values', async () => {
    const message = '[{"message":"Unexpected field","id":"foo.bar","value":"hello"}]';
    on('POST /events/events/ev-1/notify', () => ({ status: 400, json: { message, code: 'BAD_REQUEST' } }));
    const err = await failure(client().notify(notifyInput));
    const kept = '[{"message":"Unexpected field","id":"foo.bar"}]';
    assert.deepEqual([err.kind, err.classification, err.opencrvsMessage], ['bad-request', 'permanent', kept]);
    assert.deepEqual(err.body, [{ message: 'Unexpected field', id: 'foo.bar' }]);
  });

  it('leaves no part of an echoed value in a long list of field problems (cut to size after the values go)', async () => {
    // Every field refused (a mapping for another form version): far past the 2,000 characters kept.
    const declaration: Record<string, unknown> = {};
    // Numbers are never matched against what was sent; the phones are, but not a phone cut in two.
    const problems: Array<Record<string, unknown>> = [
      { message: 'Invalid input', id: 'child.weightAtBirth', value: 3.2 },
    ];
    for (let i = 0; i < 60; i += 1) {
      declaration[`informant.phoneNo${i}`] = `09771234${String(i).padStart(2, '0')}`;
      problems.push({
        message: 'Unexpected field',
        id: `informant.phoneNo${i}`,
        value: `09771234${String(i).padStart(2, '0')}`,
      });
    }
    const message = JSON.stringify(problems);
    assert.ok(message.length > 4000);
    on('POST /events/events/ev-1/notify', () => ({ status: 400, json: { message, code: 'BAD_REQUEST' } }));
    const err = await failure(client().notify({ ...notifyInput, declaration }));
    const seen = `${err.opencrvsMessage} ${JSON.stringify(err.body)}`;
    assert.ok(!/\d{4,}/.test(seen) && !seen.includes('3.2'), seen.slice(-300));
    assert.match(err.opencrvsMessage, /"id":"informant\.phoneNo0"/);
  });

  it('never brings back the values it sent: an answer that echoes the declaration has them redacted', async () => {
    const declaration = {
      'child.name': { firstname: 'Zebulon', surname: 'Xylophonia' },
      'child.dob': '2026-11-09',
      'child.birthLocation': OFFICE,
      'mother.address': { country: 'FAR', streetLevelDetails: { street: 'Plot 42 Kabulonga Road' } },
    };
    on('POST /events/events/ev-1/notify', (req) => ({
      status: 500,
      json: { message: `internal error processing ${req.body}` },
    }));
    const err = await failure(client().notify({ ...notifyInput, declaration }));
    assert.equal(err.classification, 'retryable');
    const seen = `${err.message} ${err.opencrvsMessage} ${JSON.stringify(err.body)}`;
    for (const value of ['Zebulon', 'Xylophonia', '2026-11-09', 'Plot 42 Kabulonga Road'])
      assert.ok(!seen.includes(value), `${value} leaked: ${seen.slice(0, 300)}`);
    assert.match(err.opencrvsMessage, /\[redacted\]/);
    assert.ok(err.opencrvsMessage.includes(OFFICE), 'location ids stay: they say which office was refused');
  });

  it("keeps the form's option codes an answer quotes, and takes out the names it quotes", async () => {
    const declaration = { 'child.gender': 'male', 'child.name': { firstname: 'Zebulon', surname: 'Xylophonia' } };
    on('POST /events/events/ev-1/notify', () => ({
      status: 500,
      json: { message: "child.gender: expected 'male' | 'female' | 'unknown' (Zebulon Xylophonia)" },
    }));
    const err = await failure(client().notify({ ...notifyInput, declaration }));
    assert.equal(err.opencrvsMessage, "child.gender: expected 'male' | 'female' | 'unknown' ([redacted] [redacted])");
  });

  it('leaves no start of a value that the cut to size of a long text answer would split', async () => {
    const declaration = { 'child.name': { firstname: 'Zebulon', surname: 'Xylophonia' } };
    // A proxy page that quotes the request after 1,995 characters: the 2,000 kept end inside the name.
    on('POST /events/events/ev-1/notify', () => ({
      status: 502,
      text: `<html><body>${'.'.repeat(1983)} Zebulon Xylophonia</body></html>`,
      headers: { 'Content-Type': 'text/html' },
    }));
    const err = await failure(client().notify({ ...notifyInput, declaration }));
    assert.equal(typeof err.body, 'string');
    const body = String(err.body);
    assert.ok(body.length > 1990 && body.endsWith('…'), 'cut to size');
    assert.ok(!/Zebu|Xylo/.test(body), body.slice(-40));
  });

  it('checks a large error answer only so far, cuts the rest, and still reads its message', async () => {
    const declaration = { 'child.name': { firstname: 'Zebulon', surname: 'Xylophonia' } };
    // A country configuration's 500 that dumps most of a megabyte (an error answer is read up to 1 MB)
    // before its message, quoting the names throughout.
    const rows = Array.from({ length: 18_000 }, (_, i) => ({ id: i, note: `Zebulon XYLOPHONIA, row ${i}` }));
    on('POST /events/events/ev-1/notify', () => ({
      status: 500,
      json: { data: rows, message: 'Unexpected failure from country config action confirmation API for Zebulon' },
    }));
    const err = await failure(client().notify({ ...notifyInput, declaration }));
    assert.deepEqual([err.kind, err.classification], ['confirmation-failed', 'retryable']);
    assert.match(err.opencrvsMessage, /confirmation API for \[redacted\]$/);
    const body = JSON.stringify(err.body);
    assert.ok(body.includes('[cut: answer too long to check]'), body.slice(-200));
    assert.doesNotMatch(`${err.message} ${body}`, /Zebu|Xylo/i);
  });

  it('reads no more than 1 MB of an error answer: an endless one ends in its status, said to be unread, before the timeout', async () => {
    // A misrouted proxy streaming a page without end; the connection is closed once 1 MB is past.
    let onClosed = () => {};
    const closed = new Promise<'closed'>((resolve) => {
      onClosed = () => resolve('closed');
    });
    let sent = 0;
    const endless = createServer((_req, res) => {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const write = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed) res.once('drain', write);
      };
      res.on('close', onClosed);
      write();
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(endless.address() as AddressInfo).port}`;
    try {
      const started = Date.now();
      const err = await failure(client({ eventsUrl: `${url}/events`, timeoutMs: 10_000 }).listLocations());
      assert.ok(Date.now() - started < 5_000, `ended after ${Date.now() - started} ms`);
      assert.deepEqual([err.status, err.kind, err.classification], [502, 'server', 'retryable']);
      assert.match(err.message, /^listLocations: HTTP 502: an answer larger than 1 MB, not read/);
      // Waited for, not given 100 ms: on a loaded machine the server (in this event loop) may see the close later.
      const open = new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), 10_000).unref());
      assert.equal(await Promise.race([closed, open]), 'closed', 'the connection was closed');
      assert.ok(sent < 16 * 1_048_576, `${sent} bytes sent`);
    } finally {
      endless.closeAllConnections();
      await new Promise((resolve) => endless.close(resolve));
    }
  });

  it("reads a success answer larger than an error may be (a large country's location list)", async () => {
    // 8,000 offices: some 1.6 MB, which an error answer would not be read to.
    const locations = Array.from({ length: 8_000 }, (_, i) => ({
      id: `0b1c7a6e-3d0b-4a8e-9c55-${String(i).padStart(12, '0')}`,
      name: `Health facility number ${i} of the district`,
      externalId: `HEALTH_FACILITY_${i}`,
      administrativeAreaId: null,
      validUntil: null,
      locationType: 'HEALTH_FACILITY',
    }));
    assert.ok(JSON.stringify(locations).length > 1_048_576);
    on('GET /events/locations', () => ({ json: locations }));
    assert.equal((await client().listLocations()).length, 8_000);
  });

  it('treats a 409 NOTIFIED on notify as already notified', async () => {
    on('POST /events/events/ev-1/notify', () => ({
      status: 409,
      json: { message: "Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state" },
    }));
    const err = await failure(client().notify(notifyInput));
    assert.equal(err.alreadyNotified, true);
    assert.equal(err.classification, 'permanent');
  });

  it('never follows a redirect (the token would go along): an operator problem, target never called', async () => {
    let followed = 0;
    on('POST /events/events', () => ({ status: 302, headers: { Location: `${base}/elsewhere` }, text: 'Found' }));
    on('POST /elsewhere', () => {
      followed++;
      return { json: eventDoc() };
    });
    const err = await failure(create(client()));
    assert.deepEqual([err.status, err.kind, err.classification], [302, 'config', 'operator']);
    assert.equal(followed, 0);
  });

  it('classifies 403, 404, 413 and 415 answers', async () => {
    const cases: Array<[number, string, string, string]> = [
      [403, 'Forbidden', 'forbidden', 'operator'],
      [404, 'Event not found with ID: ev-1', 'not-found', 'permanent'],
      [413, 'Payload too large', 'bad-request', 'permanent'],
      [415, 'Unsupported media type', 'config', 'operator'],
    ];
    for (const [status, message, kind, classification] of cases) {
      on('POST /events/events/ev-1/notify', () => ({ status, json: { message } }));
      const err = await failure(client().notify(notifyInput));
      assert.deepEqual(
        [err.status, err.kind, err.classification, err.opencrvsMessage],
        [status, kind, classification, message],
      );
    }
  });

  it('calls a 200 that is not an EventDocument an invalid, retryable response', async () => {
    on('POST /events/events', () => ({ text: '<html>gateway says hi</html>' }));
    const html = await failure(create());
    assert.deepEqual([html.kind, html.classification], ['invalid-response', 'retryable']);
    on('POST /events/events', () => ({ json: { ...eventDoc(), trackingId: 7 } }));
    const shape = await failure(create());
    assert.equal(shape.kind, 'invalid-response');
    assert.match(shape.message, /trackingId/);
  });
});

describe('OpenCRVS client secrecy', () => {
  it('never puts the client secret or a token in a log line or an error', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
    const errors: OpenCrvsError[] = [];
    const collect = async (promise: Promise<unknown>) => {
      try {
        await promise;
      } catch (err) {
        assert.ok(err instanceof OpenCrvsError, String(err));
        errors.push(err);
      }
    };
    const deps = { logger };
    const input = { type: 'birth', transactionId: 'tx-c', createdAtLocation: OFFICE };

    // Successful calls, a 401 retry, and answers that echo the credentials back.
    on('POST /events/events', (req) =>
      req.headers.authorization === `Bearer ${issued[0]}`
        ? { status: 401, json: { message: 'bad' } }
        : { json: eventDoc() },
    );
    const good = client({}, deps);
    await good.createEvent(input);
    on('POST /events/events', (req) => ({
      status: 500,
      json: { message: `failed for ${req.headers.authorization}`, url: `/auth/token?client_secret=${SECRET}` },
    }));
    await collect(good.createEvent(input));
    on('POST /auth/token', (req) => ({
      status: 401,
      json: { error: 'invalid_client', error_description: `unknown secret ${req.query.get('client_secret')}` },
    }));
    await collect(client({}, deps).checkToken());
    on('POST /auth/token', () => ({ drop: true }));
    await collect(client({}, deps).checkToken());
    await collect(client({ tokenUrl: 'http://127.0.0.1:1/auth/token' }, deps).checkToken());
    // An HTTP layer whose own error quotes the URL it was given (the token URL carries the secret).
    const quoting: Requester = async ({ url }) => {
      throw new TypeError(`Failed to fetch ${url}`);
    };
    await collect(client({}, { logger, request: quoting }).checkToken());

    assert.equal(errors.length, 5);
    assert.ok(issued.length >= 2);
    assert.ok(lines.length > 0);
    const texts = [
      ...lines,
      ...errors.flatMap((err) => [
        err.message,
        err.stack ?? '',
        JSON.stringify(err.body) ?? '',
        err.cause instanceof Error ? `${err.cause.message}\n${err.cause.stack}` : String(err.cause),
      ]),
    ];
    for (const text of texts) {
      assert.equal(text.includes(SECRET), false, `secret leaked: ${text}`);
      for (const token of issued) assert.equal(text.includes(token), false, `token leaked: ${text}`);
    }
  });

  it('names the reasons of a connection refused on every address, without the secret they quote', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
    // What undici rejects with when both ::1 and 127.0.0.1 refused: no message, the reasons inside. These
    // quote the URL, which for the token endpoint carries the client secret.
    const refusedEverywhere: Requester = async ({ url }) => {
      const refused = (address: string) =>
        Object.assign(new Error(`connect ECONNREFUSED ${address} (${decodeURIComponent(url)})`), {
          code: 'ECONNREFUSED',
        });
      throw Object.assign(new AggregateError([refused('::1:4000'), refused('127.0.0.1:4000')]), {
        code: 'ECONNREFUSED',
      });
    };
    const err = await failure(client({}, { logger, request: refusedEverywhere }).checkToken());
    assert.match(
      err.opencrvsMessage,
      /^ECONNREFUSED: connect ECONNREFUSED ::1:4000 .*; connect ECONNREFUSED 127\.0\.0\.1:4000/,
    );
    for (const text of [err.message, err.opencrvsMessage, ...lines]) {
      assert.equal(text.includes(SECRET), false, `secret leaked: ${text}`);
    }
  });
});
