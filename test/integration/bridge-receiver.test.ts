// The subscription receiver over HTTP: bad input is refused with a 4xx FHIR OperationOutcome and
// leaves nothing in the inbox; the service keeps running; a good notification is stored durably
// before it is acknowledged, and processed afterwards.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { birthResources, type Harness, SOURCE_ID, startHarness } from './helpers/bridge-harness.js';

const BEARER = 'receiver-bearer-secret';
const HMAC = 'receiver-hmac-secret';
const LIMIT = 2048;

interface PostOptions {
  path?: string;
  method?: string;
  contentType?: string | null;
  bearer?: string | null;
  /** Signature to send; default: the right HMAC of the body. null = no header. */
  signature?: string | null;
}

const sign = (body: string, secret = HMAC) => createHmac('sha256', secret).update(body).digest('hex');

async function post(h: Harness, body: string, options: PostOptions = {}) {
  const headers: Record<string, string> = {};
  const contentType = options.contentType === undefined ? 'application/fhir+json' : options.contentType;
  if (contentType !== null) headers['content-type'] = contentType;
  const bearer = options.bearer === undefined ? BEARER : options.bearer;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  const signature = options.signature === undefined ? sign(body) : options.signature;
  if (signature !== null) headers['x-signature'] = signature;
  const response = await fetch(`${h.bridgeUrl}${options.path ?? `/fhir-subscription/${SOURCE_ID}`}`, {
    method: options.method ?? 'POST',
    headers,
    body: options.method === 'GET' ? undefined : body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text };
}

/**
 * As post, on a path sent exactly as written: fetch resolves `.` and `..` segments (`%2E%2E` too) before
 * sending, as browsers and curl do, but a sender writing its own request line does not.
 */
function postRawPath(h: Harness, path: string, body: string, method = 'PUT') {
  return new Promise<Awaited<ReturnType<typeof post>>>((resolve, reject) => {
    const { hostname, port } = new URL(h.bridgeUrl);
    // Host, port and path apart: a URL string would be resolved (`..` taken out) on the way.
    const req = httpRequest(
      {
        hostname,
        port,
        path,
        method,
        headers: {
          'content-type': 'application/fhir+json',
          authorization: `Bearer ${BEARER}`,
          'x-signature': sign(body),
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A backport notification (R4B SubscriptionStatus) of one event whose focus is `reference`. */
const backportFocus = (reference: string) =>
  JSON.stringify({
    resourceType: 'Bundle',
    type: 'history',
    entry: [
      {
        resource: {
          resourceType: 'SubscriptionStatus',
          type: 'event-notification',
          notificationEvent: [{ eventNumber: 1, focus: { reference } }],
        },
      },
    ],
  });

/** Every row of the inbox table, read through a separate read-only connection (what is on disk). */
function inboxRows(h: Harness): Array<{ id: number; processed_at: number | null }> {
  const db = new Database(h.config.store.path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare<[], { id: number; processed_at: number | null }>('SELECT id, processed_at FROM inbox').all();
  } finally {
    db.close();
  }
}

function assertOutcome(
  result: { status: number; contentType: string; text: string },
  status: number,
  code: string,
  what: string,
) {
  assert.equal(result.status, status, `${what}: status (${result.text})`);
  assert.match(result.contentType, /^application\/fhir\+json/, `${what}: content type`);
  const body: unknown = JSON.parse(result.text);
  assert.ok(typeof body === 'object' && body !== null && 'resourceType' in body && 'issue' in body, what);
  assert.equal(body.resourceType, 'OperationOutcome', what);
  assert.ok(Array.isArray(body.issue), what);
  assert.equal(body.issue[0]?.code, code, `${what}: issue code`);
}

describe('subscription receiver', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      subscription: { secret: BEARER, hmacSecret: HMAC },
      http: { bodyLimitBytes: LIMIT },
      seed: birthResources(0),
    });
  });
  after(async () => {
    await h?.close();
  });

  it('refuses bad input with a 4xx OperationOutcome, stores nothing, and keeps serving', async () => {
    const resource = JSON.stringify({ resourceType: 'Patient', id: 'e2e-birth-0-child' });
    const cases: Array<[string, Promise<Awaited<ReturnType<typeof post>>>, number, string]> = [
      ['malformed JSON', post(h, '{"resourceType": "Patient",'), 400, 'invalid'],
      ['a JSON array', post(h, '[1,2]'), 400, 'invalid'],
      ['not a FHIR resource', post(h, '{"hello":"world"}'), 400, 'invalid'],
      ['wrong content type', post(h, resource, { contentType: 'text/plain' }), 415, 'not-supported'],
      [
        'oversize body',
        post(h, JSON.stringify({ resourceType: 'Patient', id: 'x', text: 'a'.repeat(LIMIT) })),
        413,
        'too-costly',
      ],
      ['missing bearer', post(h, resource, { bearer: null }), 401, 'security'],
      ['wrong bearer', post(h, resource, { bearer: 'not-the-secret' }), 401, 'security'],
      ['bad HMAC', post(h, resource, { signature: sign(resource, 'other-secret') }), 401, 'security'],
      ['HMAC of other bytes', post(h, resource, { signature: sign(`${resource} `) }), 401, 'security'],
      ['missing HMAC', post(h, resource, { signature: null }), 401, 'security'],
      // The secret is checked before the body is parsed: a bad secret with bad JSON is a 401, not a 400.
      ['bad JSON, no bearer', post(h, '{oops', { bearer: null }), 401, 'security'],
      // As a wrong secret: which source ids exist is not told.
      ['unknown source', post(h, resource, { path: '/fhir-subscription/no-such-source' }), 401, 'security'],
      // Refused before the body is read: not 413 for an oversize body with a wrong secret or source.
      ['oversize, wrong bearer', post(h, 'x'.repeat(LIMIT + 10), { bearer: 'not-the-secret' }), 401, 'security'],
      [
        'oversize, unknown source',
        post(h, 'x'.repeat(LIMIT + 10), { path: '/fhir-subscription/no-such-source' }),
        401,
        'security',
      ],
      [
        'bad type in the path',
        post(h, resource, { path: `/fhir-subscription/${SOURCE_ID}/patient/x`, method: 'PUT' }),
        400,
        'invalid',
      ],
      ['GET', post(h, '', { method: 'GET' }), 405, 'not-supported'],
      // Ids that are no FHIR ids, in each wire style: `..` would have the EMR read outside <Type>/.
      [
        '`..` as the id in the path',
        postRawPath(h, `/fhir-subscription/${SOURCE_ID}/Patient/..`, resource),
        400,
        'invalid',
      ],
      [
        '`%2E` as the id in the path',
        postRawPath(h, `/fhir-subscription/${SOURCE_ID}/Patient/%2E`, resource),
        400,
        'invalid',
      ],
      [
        '`..` as the id of a DELETE in the path',
        postRawPath(h, `/fhir-subscription/${SOURCE_ID}/Patient/%2E%2E`, '', 'DELETE'),
        400,
        'invalid',
      ],
      ['a resource whose id is `..`', post(h, JSON.stringify({ resourceType: 'Patient', id: '..' })), 400, 'invalid'],
      [
        'a resource whose id carries a path and a query',
        post(h, JSON.stringify({ resourceType: 'Patient', id: '..%2F..%2Fadmin?x=1' })),
        400,
        'invalid',
      ],
      ['a backport focus on `Patient/..`', post(h, backportFocus('Patient/..')), 400, 'invalid'],
      // Types of the right shape that are no FHIR R4 resource type: stored, each was read from the EMR as
      // `<base>/<type>/<id>`, however long (a review stored a 300 kB one).
      [
        'a long type in the path',
        post(h, resource, { path: `/fhir-subscription/${SOURCE_ID}/A${'a'.repeat(8000)}/x`, method: 'PUT' }),
        400,
        'invalid',
      ],
      [
        'an unknown type in a DELETE path',
        postRawPath(h, `/fhir-subscription/${SOURCE_ID}/Patients/x`, '', 'DELETE'),
        400,
        'invalid',
      ],
      [
        'a resource of a long type',
        post(h, JSON.stringify({ resourceType: `A${'a'.repeat(1500)}`, id: 'x' })),
        400,
        'invalid',
      ],
      ['a backport focus on an unknown type', post(h, backportFocus('Patientx/p1')), 400, 'invalid'],
      ['a path that does not decode', post(h, resource, { path: '/fhir-subscription/%E0%A4%A' }), 400, 'invalid'],
    ];
    for (const [what, result, status, code] of cases) assertOutcome(await result, status, code, what);

    assert.equal(h.bridge.ledger.inbox.backlog().depth, 0);
    assert.deepEqual(inboxRows(h), [], 'no refused notification reached the inbox table');

    // Still serving: a good notification (Medplum style: the resource, signed) is stored and delivered.
    const good = await post(h, resource);
    assert.equal(good.status, 200, good.text);
    await h.waitForEvents(1);
    assert.equal(inboxRows(h).length, 1);
  });

  it('stores a notification in the inbox table before answering 2xx, and processes it afterwards', async () => {
    await h.bridge.inbox.stop(); // nothing processes the inbox: what is there after the 2xx was stored first
    const before = inboxRows(h).length;
    const body = JSON.stringify({ resourceType: 'Patient', id: 'e2e-birth-0-child' });
    const answered = await post(h, body);
    assert.equal(answered.status, 200, answered.text);
    const rows = inboxRows(h);
    assert.equal(rows.length, before + 1, 'the row is on disk when the sender hears 200');
    assert.equal(rows.at(-1)?.processed_at, null);
    assert.equal(h.bridge.ledger.inbox.backlog().depth, 1);
    h.bridge.inbox.start();
    await h.waitFor('the stored notification to be processed', () => h.bridge.ledger.inbox.backlog().depth === 0);
    assert.notEqual(inboxRows(h).at(-1)?.processed_at, null);
    assert.equal((await h.events()).length, 1, 'the repeated notification created no second event');
  });

  it('answers backport handshakes and heartbeats 2xx and stores them', async () => {
    const status = (type: string) =>
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'history',
        entry: [
          {
            resource: {
              resourceType: 'Parameters',
              parameter: [
                { name: 'type', valueCode: type },
                { name: 'events-since-subscription-start', valueString: '0' },
              ],
            },
          },
        ],
      });
    const before = inboxRows(h).length;
    for (const type of ['handshake', 'heartbeat']) {
      const result = await post(h, status(type));
      assert.equal(result.status, 200, `${type}: ${result.text}`);
      assert.equal(JSON.parse(result.text).kind, type);
    }
    assert.equal(inboxRows(h).length, before + 2);
  });
});
