// Wrong subscription secrets are counted by source and address: past 20 within a minute, that source is
// answered 429 with Retry-After and an OperationOutcome from that address, its secrets no longer compared;
// a right secret from another address, or for another source from the same one, is answered as before,
// a few mistakes block nothing, and many guessing addresses together block no one. Client
// sockets bind to 127.0.0.2, 127.0.0.3, … so the server sees distinct addresses (Linux routes all of
// 127/8 to loopback). Refusals are logged once a minute at most, with their counts and never the secret.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { AuthThrottle } from '../../src/http/admin/auth-throttle.js';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { subscriptionRoutes } from '../../src/http/subscription-routes.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import {
  RECEIVER_AUTH_THROTTLE,
  type RefusalReason,
  SubscriptionReceiver,
  UNKNOWN_SOURCE_LABEL,
  UNKNOWN_SOURCE_REASON,
} from '../../src/sources/fhir/receiver.js';
import { MemoryInbox } from '../integration/helpers/bridge-stubs.js';

const BEARER = 'hapi-bearer-secret-0123';
const HMAC = 'medplum-signing-secret-4567';
const GOOD = 'good-source-secret-0123456';
const OTHER = 'other-source-secret-98765';

interface Answer {
  status: number;
  retryAfter?: string;
  body: string;
}

type Reason = RefusalReason | typeof UNKNOWN_SOURCE_REASON;

/**
 * A notification from `localAddress` to `source`, with the bearer secret or the HMAC key given; by PUT to
 * `/{Type}/{id}` unless signed or another `method` is given (POST to the source's path, DELETE as PUT).
 */
function notify(
  port: number,
  localAddress: string,
  source: string,
  secret: { bearer?: string; hmac?: string },
  method = secret.hmac === undefined ? 'PUT' : 'POST',
) {
  const body = JSON.stringify({ resourceType: 'Patient', id: 'p1' });
  const headers: Record<string, string> = { 'content-type': 'application/fhir+json' };
  if (secret.bearer !== undefined) headers.authorization = `Bearer ${secret.bearer}`;
  if (secret.hmac !== undefined) headers['x-signature'] = createHmac('sha256', secret.hmac).update(body).digest('hex');
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        agent: false,
        // A signature vouches for the body alone, so a signed notification posts the resource (as Medplum
        // does): the /{Type}/{id} form is refused to a source with no bearer secret.
        method,
        path: method === 'POST' ? `/fhir-subscription/${source}` : `/fhir-subscription/${source}/Patient/p1`,
        headers,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('subscription receiver: wrong secrets', () => {
  const inbox = new MemoryInbox();
  let server: Server;
  let port: number;
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const refused: Array<[string, Reason]> = [];
  const count = (source: string, reason: Reason) => refused.filter(([s, r]) => s === source && r === reason).length;
  before(async () => {
    const receiver = new SubscriptionReceiver(
      [
        { id: 'hapi', auth: { secret: BEARER } },
        { id: 'medplum', auth: { hmacSecret: HMAC } },
        { id: 'open', auth: {} },
        { id: 'good', auth: { secret: GOOD } },
        { id: 'other', auth: { secret: OTHER } },
      ],
      inbox,
      logger,
      undefined,
      {},
      {
        throttle: new AuthThrottle(RECEIVER_AUTH_THROTTLE, () => clock),
        unknownThrottle: new AuthThrottle(RECEIVER_AUTH_THROTTLE, () => clock),
        onRefused: (source, reason) => refused.push([source, reason]),
      },
    );
    const app = createHttpApp(
      [{ path: '/fhir-subscription', router: subscriptionRoutes(receiver, 1_048_576, silentLogger) }],
      silentLogger,
    );
    ({ server, port } = await listen(app, 0, '127.0.0.1'));
  });
  after(async () => {
    await closeServer(server, 100);
  });

  it('answers 429 with Retry-After past 20 wrong bearer secrets for a source from one address, comparing none after', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++)
      statuses.push((await notify(port, '127.0.0.2', 'hapi', { bearer: `guess-${i}` })).status);
    assert.deepEqual(statuses, [...Array<number>(20).fill(401), ...Array<number>(5).fill(429)]);
    const blocked = await notify(port, '127.0.0.2', 'hapi', { bearer: BEARER });
    assert.equal(blocked.status, 429, 'the right secret from a blocked address is not compared either');
    assert.equal(blocked.retryAfter, '60');
    const outcome = JSON.parse(blocked.body) as { resourceType: string; issue: Array<{ code: string }> };
    assert.equal(outcome.resourceType, 'OperationOutcome');
    assert.equal(outcome.issue[0]?.code, 'throttled');
    assert.equal(inbox.rows.length, 0, 'nothing stored');
    // Another source from the same address is not blocked: its secret is its own.
    assert.equal((await notify(port, '127.0.0.2', 'medplum', { hmac: HMAC })).status, 200);
    // A source without a secret has nothing to guess: not throttled.
    assert.equal((await notify(port, '127.0.0.2', 'open', {})).status, 200);

    // Another address with the right secret is answered as before.
    assert.equal((await notify(port, '127.0.0.3', 'hapi', { bearer: BEARER })).status, 200);
    assert.deepEqual([count('hapi', 'unauthorized'), count('hapi', 'throttled')], [20, 6]);
    assert.equal(count('medplum', 'throttled'), 0);

    // Once the block ends (a minute), the address is heard again.
    clock += 60_000;
    assert.equal((await notify(port, '127.0.0.2', 'hapi', { bearer: BEARER })).status, 200);

    // Logged once within the minute: the first refusal, never the secret.
    const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(warnings.length, 1, lines.join(''));
    assert.match(String(warnings[0]?.msg), /notifications refused for a missing or wrong secret/);
    assert.deepEqual([warnings[0]?.source, warnings[0]?.remote, warnings[0]?.refused], ['hapi', '127.0.0.2', 1]);
    assert.ok(!lines.some((line) => line.includes('guess-') || line.includes(BEARER)), 'no secret logged');
  });

  it('counts wrong signatures of an HMAC-only source, and blocks nothing for a few mistakes', async () => {
    // An operator setting up a Subscription: a few wrong signatures, then the right one, again and again.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) {
        assert.equal((await notify(port, '127.0.0.4', 'medplum', { hmac: `wrong-key-${i}` })).status, 401);
      }
      assert.equal((await notify(port, '127.0.0.4', 'medplum', { hmac: HMAC })).status, 200, `round ${round}`);
    }
    assert.equal(count('medplum', 'unauthorized'), 15);
    // Past 20 within the minute the signed source blocks the address as the bearer one does.
    for (let i = 0; i < 5; i++) await notify(port, '127.0.0.4', 'medplum', { hmac: 'wrong-key' });
    const blocked = await notify(port, '127.0.0.4', 'medplum', { hmac: HMAC });
    assert.equal(blocked.status, 429);
    assert.equal(blocked.retryAfter, '60');
  });

  it("blocks a source from an address, never another source's notifications from it (a NAT, a TLS proxy)", async () => {
    clock += 120_000; // a new minute, every block above ended
    // Every EMR behind the proxy arrives from its address; one has a stale Subscription, or someone sends
    // wrong secrets to it: the other's right secret is answered as before.
    const proxy = '127.0.0.5';
    assert.equal((await notify(port, proxy, 'good', { bearer: GOOD })).status, 200);
    for (let i = 0; i < 20; i++)
      assert.equal((await notify(port, proxy, 'other', { bearer: 'old-secret-of-other-0000' })).status, 401);
    assert.equal((await notify(port, proxy, 'other', { bearer: OTHER })).status, 429, 'the source with wrong ones is');
    assert.equal((await notify(port, proxy, 'good', { bearer: GOOD })).status, 200, 'another source is not blocked');
    assert.equal((await notify(port, proxy, 'medplum', { hmac: HMAC })).status, 200);
  });

  it('has no block of all addresses: many guessing addresses hold up no EMR, even one never heard', async () => {
    clock += 120_000;
    const guessers = Array.from({ length: 11 }, (_, i) => `127.0.1.${i + 1}`);
    for (const address of guessers)
      for (let i = 0; i < 20; i++) await notify(port, address, 'hapi', { bearer: `guess-${i}` });
    assert.equal((await notify(port, '127.0.1.1', 'hapi', { bearer: BEARER })).status, 429, 'each guesser is blocked');
    // 220 wrong secrets within the minute, for the source itself: a right one from an address that never
    // notified before (an EMR that notifies a few times a day) is answered.
    assert.equal((await notify(port, '127.0.0.9', 'hapi', { bearer: BEARER })).status, 200);
    assert.equal((await notify(port, '127.0.0.10', 'good', { bearer: GOOD })).status, 200);
  });

  it('answers an unknown source as a wrong secret (401, then 429 per id and address), counted apart', async () => {
    clock += 120_000;
    const before = [count('hapi', 'unauthorized'), count('hapi', 'throttled')];
    const unknownBefore = count(UNKNOWN_SOURCE_LABEL, UNKNOWN_SOURCE_REASON);
    // In each wire style, the same status and the same OperationOutcome: which ids are configured is not told.
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const known = await notify(port, '127.0.0.11', 'hapi', { bearer: 'guess' }, method);
      const unknown = await notify(port, '127.0.0.11', 'no-such-emr', { bearer: 'guess' }, method);
      assert.equal(known.status, 401, method);
      assert.deepEqual(unknown, known, method);
      assert.deepEqual(await notify(port, '127.0.0.11', 'no-such-emr', {}, method), known, `${method}, no secret`);
    }
    // Past 20 within a minute from one address, an unknown id is blocked there as a source would be.
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await notify(port, '127.0.0.12', 'ghost', { bearer: 'g' })).status);
    for (let i = 0; i < 21; i++) await notify(port, '127.0.0.12', 'hapi', { bearer: 'g' });
    assert.deepEqual(statuses, [...Array<number>(20).fill(401), 429]);
    assert.deepEqual(
      await notify(port, '127.0.0.12', 'ghost', { bearer: 'g' }),
      await notify(port, '127.0.0.12', 'hapi', { bearer: BEARER }),
      'blocked: the same 429, Retry-After and OperationOutcome',
    );
    // Another id from that address, as another source, is not blocked; nor is the source's right secret elsewhere.
    assert.equal((await notify(port, '127.0.0.12', 'ghost-2', { bearer: 'g' })).status, 401);
    assert.equal((await notify(port, '127.0.0.13', 'hapi', { bearer: BEARER })).status, 200);
    // Counted under one label, never the sender's id; the source's own counts take only its own refusals.
    assert.equal(count(UNKNOWN_SOURCE_LABEL, UNKNOWN_SOURCE_REASON) - unknownBefore, 6 + 22 + 1);
    assert.ok(!refused.some(([source]) => source.includes('ghost') || source.includes('no-such')));
    assert.deepEqual(
      [count('hapi', 'unauthorized') - (before[0] ?? 0), count('hapi', 'throttled') - (before[1] ?? 0)],
      [3 + 20, 1 + 1],
    );

    // The log says "unknown source" (never the id): a receiver of its own, whose first refusal is logged.
    const logged: string[] = [];
    const own = new SubscriptionReceiver(
      [{ id: 'hapi', auth: { secret: BEARER } }],
      new MemoryInbox(),
      createLogger({ level: 'warn', destination: { write: (line: string) => void logged.push(line) } }),
    );
    assert.throws(() => own.refuseEarly('ghost-emr', undefined, '127.0.0.14'), { status: 401 });
    const line = JSON.parse(logged[0] ?? '{}') as Record<string, unknown>;
    assert.match(String(line.msg), /unknown source/);
    assert.deepEqual([line.source, line.unknownSource, line.refused], [UNKNOWN_SOURCE_LABEL, 1, 1]);
    assert.ok(!logged.some((l) => l.includes('ghost-emr')), logged.join(''));
  });
});
