import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OpenCrvsSettings } from '../../src/config/types.js';
import { classifyHttpFailure, describeTransportFailure } from '../../src/opencrvs/classify.js';
import { OpenCrvsError, type OpenCrvsErrorKind } from '../../src/opencrvs/errors.js';
import { readJwtClaims, readJwtExpiryMs } from '../../src/opencrvs/jwt.js';
import { type KnownLocation, LocationResolver, UNLISTED_TTL_MS } from '../../src/opencrvs/locations.js';
import { fhirLocationsUrl } from '../../src/opencrvs/locations-v1.js';
import { readNotifyOutcome } from '../../src/opencrvs/outcome.js';
import { parseRetryAfter } from '../../src/opencrvs/retry-after.js';
import type { EventAction, EventDocument, Location, LocationQuery, OpenCrvsApi } from '../../src/opencrvs/types.js';

function jwt(payload: unknown): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`;
}

function thrown(fn: () => unknown): OpenCrvsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof OpenCrvsError) return err;
    throw err;
  }
  assert.fail('expected an OpenCrvsError');
}

describe('JWT expiry', () => {
  it('reads exp in milliseconds from a base64url payload without checking the signature', () => {
    // "??>" and "??~" encode to base64url with '-' and '_' where base64 would have '+' and '/'.
    const token = jwt({ exp: 1_900_000_000, sub: 'client', scope: ['record.notify'], note: '??>??~' });
    assert.match(token.split('.')[1] ?? '', /[-_]/);
    assert.equal(readJwtExpiryMs(token), 1_900_000_000_000);
    assert.deepEqual(readJwtClaims(token)?.scope, ['record.notify']);
  });

  it('gives nothing for text that is not a JWT or has no numeric exp', () => {
    assert.equal(readJwtExpiryMs('opaque-token'), undefined);
    assert.equal(readJwtExpiryMs('a.b.c'), undefined);
    assert.equal(readJwtExpiryMs(jwt({ exp: '1900000000' })), undefined);
    assert.equal(readJwtExpiryMs(jwt({ sub: 'x' })), undefined);
    assert.equal(readJwtExpiryMs(`${jwt({ exp: 1 })}.extra`), undefined);
  });
});

describe('the 1.9 gateway location URL', () => {
  const settings = (urls: Partial<OpenCrvsSettings>): OpenCrvsSettings => ({
    version: '1.9',
    country: 'farajaland',
    timeoutMs: 1000,
    tokenRenewBeforeSeconds: 60,
    ...urls,
  });
  const office = (urls: Partial<OpenCrvsSettings>) => fhirLocationsUrl(settings(urls), 'CRVS_OFFICE');

  it("is the register host's /api/ way to the gateway, or the gateway itself, as the events URL is written", () => {
    // A register host passes /api/… to the gateway, where /events is the events service.
    assert.equal(
      office({ tokenUrl: 'http://127.0.0.1:17470/token', eventsUrl: 'http://127.0.0.1:17470/api/events' }),
      'http://127.0.0.1:17470/api/location?type=CRVS_OFFICE&_count=0',
    );
    assert.equal(
      office({ eventsUrl: 'https://register.x.org/api/events/' }),
      'https://register.x.org/api/location?type=CRVS_OFFICE&_count=0',
    );
    assert.equal(
      office({ eventsUrl: 'https://gateway.x.org/events' }),
      'https://gateway.x.org/location?type=CRVS_OFFICE&_count=0',
    );
    assert.equal(
      office({ domain: 'x.org', eventsUrl: 'https://register.x.org/api/events' }),
      'https://gateway.x.org/location?type=CRVS_OFFICE&_count=0',
    );
    assert.equal(
      office({ tokenUrl: 'https://register.x.org/api/auth/token', eventsUrl: 'https://x.org/notifications' }),
      'https://register.x.org/api/location?type=CRVS_OFFICE&_count=0',
    );
  });

  it('names the key to set, and its forms, when neither URL tells the gateway', () => {
    assert.throws(
      () => office({ tokenUrl: 'http://127.0.0.1:17470/token', eventsUrl: 'http://127.0.0.1:17470/api/records' }),
      (err: OpenCrvsError) =>
        err.kind === 'config' &&
        err.hint ===
          'give opencrvs.eventsUrl as the events API ending in /events: https://register.<domain>/api/events or https://gateway.<domain>/events',
    );
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delay-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
  });

  it('reads an HTTP date relative to now and never goes negative', () => {
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
  });

  it('ignores absent or unreadable values', () => {
    for (const value of [null, undefined, '', 'soon', '-5', '1.5'])
      assert.equal(parseRetryAfter(value, now), undefined);
  });
});

describe('error classification', () => {
  const rows: Array<[number, string, string, OpenCrvsErrorKind, string]> = [
    [429, 'notify', 'Too many requests', 'rate-limited', 'retryable'],
    [500, 'notify', 'Internal server error', 'server', 'retryable'],
    [
      500,
      'notify',
      'Unexpected failure from country config action confirmation API',
      'confirmation-failed',
      'retryable',
    ],
    [500, 'createAndNotify', 'Unexpected failure from notification API', 'confirmation-failed', 'retryable'],
    [502, 'createEvent', '<html>Bad gateway</html>', 'server', 'retryable'],
    [503, 'notify', 'unavailable', 'server', 'retryable'],
    [400, 'notify', '[{"message":"Unexpected field","id":"foo.bar","value":"hello"}]', 'bad-request', 'permanent'],
    [400, 'createEvent', 'No configuration found for event type: wedding', 'bad-request', 'permanent'],
    [400, 'createEvent', 'createdAtLocation is required and must be a valid location id', 'unknown-office', 'operator'],
    [400, 'notify', 'createdAtLocation must be a valid location id', 'unknown-office', 'operator'],
    [400, 'notify', 'createdAtLocation is required and must be a valid office id', 'unknown-office', 'operator'],
    [400, 'notify', 'createdAtLocation must be an office location', 'unknown-office', 'operator'],
    [401, 'notify', 'Invalid token', 'unauthorized', 'operator'],
    [403, 'notify', 'Forbidden', 'forbidden', 'operator'],
    [404, 'notify', 'Event not found with ID: 1f7c', 'not-found', 'permanent'],
    [404, 'createEvent', 'Not Found', 'config', 'operator'],
    [
      409,
      'notify',
      "Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state",
      'already-notified',
      'permanent',
    ],
    [
      409,
      'createAndNotify',
      "Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state",
      'already-notified',
      'permanent',
    ],
    // A registrar moved it on from our NOTIFY (its answer to us lost): delivered, not a conflict.
    [
      409,
      'notify',
      "Action 'NOTIFY' cannot be performed on an event in 'DECLARED' state",
      'already-notified',
      'permanent',
    ],
    [
      409,
      'notify',
      "Action 'NOTIFY' cannot be performed on an event in 'REGISTERED' state",
      'already-notified',
      'permanent',
    ],
    [409, 'notify', "Action 'NOTIFY' cannot be performed on an event in 'CREATED' state", 'conflict', 'permanent'],
    [409, 'notify', 'System user can not perform action on assigned event', 'conflict', 'permanent'],
    [409, 'createEvent', 'conflict', 'conflict', 'permanent'],
    [413, 'notify', 'Payload too large', 'bad-request', 'permanent'],
    [415, 'notify', 'Unsupported media type', 'config', 'operator'],
  ];
  for (const [status, operation, message, kind, classification] of rows) {
    it(`${status} on ${operation} "${message.slice(0, 40)}" is ${kind}/${classification}`, () => {
      const err = classifyHttpFailure({ operation, status, body: { message, code: 'X' } }, 0);
      assert.equal(err.kind, kind);
      assert.equal(err.classification, classification);
      assert.equal(err.status, status);
      assert.equal(err.opencrvsMessage, message);
      assert.equal(err.alreadyNotified, kind === 'already-notified');
    });
  }

  it('keeps the JSON-encoded field problems as the message and the parsed list as the body', () => {
    const message = '[{"message":"Invalid input","id":"child.name","value":{"firstname":999}}]';
    const err = classifyHttpFailure({ operation: 'notify', status: 400, body: { message, code: 'BAD_REQUEST' } }, 0);
    assert.equal(err.opencrvsMessage, message);
    assert.deepEqual(err.body, [{ message: 'Invalid input', id: 'child.name', value: { firstname: 999 } }]);
  });

  it('reads Hapi and OAuth error bodies and carries Retry-After', () => {
    const hapi = classifyHttpFailure(
      {
        operation: 'notify',
        status: 503,
        body: { statusCode: 503, error: 'Service Unavailable', message: 'down' },
        retryAfter: '7',
      },
      0,
    );
    assert.equal(hapi.opencrvsMessage, 'down');
    assert.equal(hapi.retryAfterMs, 7000);
    const oauth = classifyHttpFailure(
      { operation: 'x', status: 400, body: { error: 'invalid_request', error_description: 'missing id' } },
      0,
    );
    assert.equal(oauth.opencrvsMessage, 'invalid_request: missing id');
    assert.equal(classifyHttpFailure({ operation: 'x', status: 500, body: '' }, 0).opencrvsMessage, 'HTTP 500');
    const html = '<html>\n<head><title>503 Service Temporarily Unavailable</title></head><body>…</body></html>';
    assert.equal(
      classifyHttpFailure({ operation: 'x', status: 503, body: html }, 0).opencrvsMessage,
      '503 Service Temporarily Unavailable',
    );
  });

  it("tells OpenCRVS's own error answers from a proxy's page or another JSON (fromOpenCrvs)", () => {
    const from = (status: number, body: unknown) => classifyHttpFailure({ operation: 'notify', status, body }, 0);
    const rest = { message: 'Request body is too large', code: 'PAYLOAD_TOO_LARGE', data: { httpStatus: 413 } };
    assert.equal(from(413, rest).fromOpenCrvs, true);
    // The 400 list's body is replaced by the parsed list; the answer it came in was OpenCRVS's.
    assert.equal(
      from(400, { message: '[{"message":"Unexpected field","id":"a"}]', code: 'BAD_REQUEST' }).fromOpenCrvs,
      true,
    );
    assert.equal(from(401, { statusCode: 401, error: 'Unauthorized', message: 'Invalid token' }).fromOpenCrvs, true);
    const nginx = '<html><head><title>413 Request Entity Too Large</title></head><body>nginx</body></html>';
    assert.equal(from(413, nginx).fromOpenCrvs, false);
    assert.equal(from(502, nginx.replaceAll('413 Request Entity Too Large', '502 Bad Gateway')).fromOpenCrvs, false);
    // Another gateway's JSON (Kong's size limit) is not OpenCRVS's either.
    assert.equal(from(413, { message: 'Request size limit exceeded' }).fromOpenCrvs, false);
    assert.equal(from(413, '').fromOpenCrvs, false);
  });

  it('recognises a timeout anywhere in a fetch failure chain', () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    assert.equal(describeTransportFailure(timeout).timedOut, true);
    const reset = new TypeError('fetch failed', {
      cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
    });
    const detail = describeTransportFailure(reset);
    assert.equal(detail.timedOut, false);
    assert.equal(detail.description, 'fetch failed (UND_ERR_SOCKET: other side closed)');
  });

  it('says why a connection failed on every address of the host (an AggregateError says nothing itself)', () => {
    const refused = (address: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    const everywhere = Object.assign(new AggregateError([refused('::1:3000'), refused('127.0.0.1:3000')]), {
      code: 'ECONNREFUSED',
    });
    assert.equal(
      describeTransportFailure(everywhere).description,
      'ECONNREFUSED: connect ECONNREFUSED ::1:3000; connect ECONNREFUSED 127.0.0.1:3000',
    );
    assert.equal(
      describeTransportFailure(new TypeError('fetch failed', { cause: everywhere })).description,
      'fetch failed (ECONNREFUSED: connect ECONNREFUSED ::1:3000; connect ECONNREFUSED 127.0.0.1:3000)',
    );
  });

  it('classifies a very long answer by its start, and keeps a page of stray `<` short', () => {
    // A 400 listing thousands of field problems (megabytes), the office's among the first: classified by
    // the first 64 kB searched (bench:scrub times it), as OpenCRVS says what went wrong first.
    const problems = [
      { message: 'createdAtLocation must be a valid location id', id: 'createdAtLocation', value: 'x' },
      ...Array.from({ length: 20_000 }, (_, i) => ({
        message: 'Unexpected field',
        id: `f${i}`,
        value: 'y'.repeat(100),
      })),
    ];
    const raw = { message: JSON.stringify(problems) };
    const err = classifyHttpFailure({ operation: 'notify', status: 400, body: { message: 'cut' }, raw }, 0);
    assert.equal(err.kind, 'unknown-office');
    // Beyond what is searched, nothing decides: a phrase past the first 64 kB is not read.
    const late = { message: JSON.stringify([...problems.slice(1), problems[0]]) };
    const plain = classifyHttpFailure({ operation: 'notify', status: 400, body: { message: 'cut' }, raw: late }, 0);
    assert.equal(plain.kind, 'bad-request');
    const page = classifyHttpFailure({ operation: 'notify', status: 502, body: '<'.repeat(100_000) }, 0);
    assert.equal(page.kind, 'server');
    assert.ok(page.message.length < 300, page.message.slice(0, 40));
  });

  it('reads a message of createdAtLocation over and over once, not again from each of them', () => {
    // Read again from each one, 64 kB of them held the event loop for about 0.9 s per answer. Ten answers
    // in well under 2 s: generous (bench:scrub has the figure), and ten times over what the old reading took.
    const message = 'createdAtLocation '.repeat(4_000);
    const started = performance.now();
    for (let i = 0; i < 10; i++) {
      const err = classifyHttpFailure({ operation: 'notify', status: 400, body: { message }, raw: { message } }, 0);
      assert.equal(err.kind, 'bad-request');
    }
    assert.ok(performance.now() - started < 2_000, `${(performance.now() - started).toFixed(0)} ms`);
    const few = 'createdAtLocation '.repeat(100);
    const office = `${few}\ncreatedAtLocation x ${few} must be a valid location id`;
    const err = classifyHttpFailure(
      { operation: 'notify', status: 400, body: { message: 'cut' }, raw: { message: office } },
      0,
    );
    assert.equal(err.kind, 'unknown-office', 'a later line names the office');
    const split = `createdAtLocation x\nmust be a valid location id`;
    const apart = classifyHttpFailure(
      { operation: 'notify', status: 400, body: { message: 'cut' }, raw: { message: split } },
      0,
    );
    assert.equal(apart.kind, 'bad-request', 'the phrase on another line is not about the field');
  });
});

describe('NOTIFY outcome', () => {
  const action = (fields: Partial<EventAction> & Pick<EventAction, 'id' | 'type' | 'status'>): EventAction => ({
    transactionId: 'other',
    ...fields,
  });
  const event = (actions: EventAction[]): EventDocument => ({
    id: 'e1',
    type: 'birth',
    trackingId: 'B7K2QZ',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    actions: [action({ id: 'c', type: 'CREATE', status: 'Accepted', transactionId: 'tx-create' }), ...actions],
  });

  it('is accepted when our NOTIFY is Accepted', () => {
    const result = readNotifyOutcome(
      event([
        action({ id: 'r', type: 'NOTIFY', status: 'Requested', transactionId: 'tx' }),
        action({ id: 'a', type: 'NOTIFY', status: 'Accepted', transactionId: 'tx', originalActionId: 'r' }),
      ]),
      'tx',
      'notify',
    );
    assert.deepEqual([result.outcome, result.eventId, result.trackingId], ['accepted', 'e1', 'B7K2QZ']);
  });

  it('is accepted when an Accepted action points at our Requested one', () => {
    const doc = event([
      action({ id: 'r', type: 'NOTIFY', status: 'Requested', transactionId: 'tx' }),
      action({ id: 'a', type: 'NOTIFY', status: 'Accepted', transactionId: 'confirmation', originalActionId: 'r' }),
    ]);
    assert.equal(readNotifyOutcome(doc, 'tx', 'notify').outcome, 'accepted');
  });

  it('is pending with only our Requested action, even when someone else’s NOTIFY was accepted', () => {
    const doc = event([
      action({ id: 'x', type: 'NOTIFY', status: 'Accepted', transactionId: 'someone-else' }),
      action({ id: 'r', type: 'NOTIFY', status: 'Requested', transactionId: 'tx' }),
    ]);
    assert.equal(readNotifyOutcome(doc, 'tx', 'notify').outcome, 'pending');
  });

  it('throws a permanent rejected error for a Rejected NOTIFY inside a 200', () => {
    const err = thrown(() =>
      readNotifyOutcome(
        event([
          action({ id: 'r', type: 'NOTIFY', status: 'Requested', transactionId: 'tx' }),
          action({ id: 'j', type: 'NOTIFY', status: 'Rejected', transactionId: 'tx', originalActionId: 'r' }),
        ]),
        'tx',
        'notify',
      ),
    );
    assert.deepEqual([err.kind, err.classification], ['rejected', 'permanent']);
    assert.deepEqual(err.body, { eventId: 'e1', trackingId: 'B7K2QZ', actionId: 'j' });
  });

  it('calls an answer without our NOTIFY an invalid, retryable response', () => {
    const err = thrown(() => readNotifyOutcome(event([]), 'tx', 'notify'));
    assert.deepEqual([err.kind, err.classification], ['invalid-response', 'retryable']);
  });
});

describe('LocationResolver', () => {
  const office: Location = {
    id: '0b1c7a6e-3d0b-4a8e-9c55-1f2a3b4c5d6e',
    name: 'Ibombo District Office',
    externalId: 'CRVS_OFFICE_JWMRGwDBXK',
    locationType: 'CRVS_OFFICE',
  };
  const facility: Location = {
    id: '9d8c7b6a-1111-4222-8333-444455556666',
    name: 'Chikobo Rural Health Centre',
    externalId: 'HEALTH_FACILITY_1',
    locationType: 'HEALTH_FACILITY',
  };

  function fakeApi(listed: Location[] = [office, facility]): { api: OpenCrvsApi; queries: LocationQuery[] } {
    const queries: LocationQuery[] = [];
    const unused = () => Promise.reject(new Error('not used'));
    const api: OpenCrvsApi = {
      createEvent: unused,
      notify: unused,
      createAndNotify: unused,
      checkToken: unused,
      listLocations: async (query = {}) => {
        queries.push(query);
        return listed.filter(
          (l) => (!query.id || l.id === query.id) && (!query.externalId || l.externalId === query.externalId),
        );
      },
    };
    return { api, queries };
  }

  it('looks a UUID up by id and anything else by externalId, once each', async () => {
    const { api, queries } = fakeApi();
    const resolver = new LocationResolver(api);
    assert.equal((await resolver.resolve(office.id, 'CRVS_OFFICE')).name, office.name);
    assert.equal((await resolver.resolve('HEALTH_FACILITY_1', 'HEALTH_FACILITY')).id, facility.id);
    await resolver.resolve(office.id);
    await resolver.resolve('HEALTH_FACILITY_1');
    assert.deepEqual(queries, [{ id: office.id }, { externalId: 'HEALTH_FACILITY_1' }]);
  });

  it('refuses a location of the wrong type and an unknown reference as unknown-office', async () => {
    const { api } = fakeApi();
    const resolver = new LocationResolver(api);
    await assert.rejects(resolver.resolve('HEALTH_FACILITY_1', 'CRVS_OFFICE'), (err: unknown) => {
      assert.ok(err instanceof OpenCrvsError);
      assert.deepEqual([err.kind, err.classification], ['unknown-office', 'operator']);
      assert.match(err.message, /is a HEALTH_FACILITY, not a CRVS_OFFICE/);
      return true;
    });
    await assert.rejects(resolver.resolve('CRVS_OFFICE_nope'), { kind: 'unknown-office' });
  });

  it('remembers that OpenCRVS does not list a reference for minutes, then asks again and finds one added since', async () => {
    const listed = [office];
    const { api, queries } = fakeApi(listed);
    let clock = 0;
    const resolver = new LocationResolver(api, { now: () => clock });
    const unlistedUuid = '11111111-2222-4333-8444-555555555555';
    for (let i = 0; i < 3; i++) {
      await assert.rejects(resolver.resolve('HEALTH_FACILITY_1', 'HEALTH_FACILITY'), { kind: 'unknown-office' });
      await assert.rejects(resolver.resolve(unlistedUuid), /is not a location of this OpenCRVS deployment/);
      await resolver.lookUp(['HEALTH_FACILITY_1', unlistedUuid]);
      clock += 60_000;
    }
    // Asked once each (a UUID by id, then by externalId), not once per record that names them.
    assert.deepEqual(queries, [
      { externalId: 'HEALTH_FACILITY_1' },
      { id: unlistedUuid },
      { externalId: unlistedUuid },
    ]);
    listed.push(facility); // added in OpenCRVS meanwhile
    clock = UNLISTED_TTL_MS - 1;
    await resolver.lookUp(['HEALTH_FACILITY_1']);
    assert.equal(resolver.resolveSync('HEALTH_FACILITY_1'), undefined, 'still believed unlisted');
    clock = UNLISTED_TTL_MS;
    await resolver.lookUp(['HEALTH_FACILITY_1']);
    assert.equal(resolver.resolveSync('HEALTH_FACILITY_1', 'HEALTH_FACILITY'), facility.id);
    assert.equal(queries.length, 4);
    // Found, it is remembered for good.
    clock += 10 * UNLISTED_TTL_MS;
    await resolver.resolve('HEALTH_FACILITY_1');
    assert.equal(queries.length, 4);
  });

  it('remembers a bounded number of unlisted references, forgetting the oldest first', async () => {
    const { api, queries } = fakeApi();
    const resolver = new LocationResolver(api, { unlistedMax: 2 });
    await resolver.lookUp(['A_1', 'B_2', 'C_3']);
    assert.equal(queries.length, 3);
    await resolver.lookUp(['B_2', 'C_3']);
    assert.equal(queries.length, 3, 'the two newest are remembered');
    await resolver.lookUp(['A_1']);
    assert.deepEqual(queries.at(-1), { externalId: 'A_1' }, 'the oldest was forgotten');
  });

  it('asks again about a routing reference remembered as unlisted: an operator may have just added it', async () => {
    const listed = [office];
    const { api, queries } = fakeApi(listed);
    const resolver = new LocationResolver(api);
    await assert.rejects(resolver.preload([{ ref: 'HEALTH_FACILITY_1', type: 'HEALTH_FACILITY' }]));
    listed.push(facility);
    await resolver.preload([{ ref: 'HEALTH_FACILITY_1', type: 'HEALTH_FACILITY' }]);
    assert.equal(resolver.resolveSync('HEALTH_FACILITY_1'), facility.id);
    assert.equal(queries.length, 2);
  });

  it('keeps its last answers past their lifetime and across restarts, saving only news', async () => {
    // Each answer is saved on its own (a ledger row per reference), never the whole map.
    const kept = new Map<string, KnownLocation>();
    const saved: Array<[string, KnownLocation]> = [];
    const memory = {
      load: () => kept,
      save: (ref: string, answer: KnownLocation) => {
        saved.push([ref, answer]);
        kept.set(ref, answer);
      },
    };
    let clock = 0;
    const { api } = fakeApi();
    const first = new LocationResolver(api, { now: () => clock, memory });
    await first.lookUp(['HEALTH_FACILITY_1', 'NOT_LISTED_1']);
    assert.deepEqual(saved, [
      ['HEALTH_FACILITY_1', { id: facility.id, locationType: 'HEALTH_FACILITY' }],
      ['NOT_LISTED_1', null],
    ]);
    clock = 2 * UNLISTED_TTL_MS;
    await first.lookUp(['NOT_LISTED_1']); // asked again: the same answer
    assert.equal(saved.length, 2, 'a repeated answer writes nothing');
    assert.equal(first.lastKnown('NOT_LISTED_1'), null, '"not listed", past its lifetime too');
    // The next run cannot ask OpenCRVS (down): what it answered last time is still known.
    const down: OpenCrvsApi = {
      ...api,
      listLocations: () =>
        Promise.reject(
          new OpenCrvsError({
            kind: 'server',
            classification: 'retryable',
            message: '503',
            operation: 'listLocations',
          }),
        ),
    };
    const next = new LocationResolver(down, { memory });
    assert.deepEqual(await next.lookUp(['HEALTH_FACILITY_1', 'NOT_LISTED_1', 'NEVER_ASKED']), [
      'HEALTH_FACILITY_1',
      'NOT_LISTED_1',
      'NEVER_ASKED',
    ]);
    assert.deepEqual(next.lastKnown('HEALTH_FACILITY_1'), { id: facility.id, locationType: 'HEALTH_FACILITY' });
    assert.equal(next.lastKnown('NOT_LISTED_1'), null);
    assert.equal(next.lastKnown('NEVER_ASKED'), undefined);
    assert.equal(next.resolveSync('HEALTH_FACILITY_1'), undefined, 'a last answer is no lookup');
  });

  it('preloads many references so resolveSync answers, and names every unknown one', async () => {
    const { api } = fakeApi();
    const resolver = new LocationResolver(api);
    await resolver.preload([{ ref: 'CRVS_OFFICE_JWMRGwDBXK', type: 'CRVS_OFFICE' }, { ref: facility.id }]);
    assert.equal(resolver.resolveSync('CRVS_OFFICE_JWMRGwDBXK'), office.id);
    assert.equal(resolver.resolveSync(facility.id), facility.id);
    assert.equal(resolver.resolveSync('elsewhere'), undefined);
    await assert.rejects(resolver.preload([{ ref: 'A_1' }, { ref: office.id }, { ref: 'B_2' }]), (err: unknown) => {
      assert.ok(err instanceof OpenCrvsError && err.kind === 'unknown-office');
      assert.match(err.message, /A_1.*B_2/);
      return true;
    });
  });
});
