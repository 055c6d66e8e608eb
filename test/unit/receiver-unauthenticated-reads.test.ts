// Bodies read before their sender is authenticated (a source with only an hmacSecret, Medplum style)
// are bounded: past the slots, or past one address's share of them, the receiver answers 503 with
// Retry-After instead of holding one more body; a signed notification gets through once a slot is free,
// and a bearer-secret source is not held up at all. Client sockets bind to 127.0.0.2, 127.0.0.3, … so
// the server sees distinct addresses (Linux routes all of 127/8 to loopback). Refusals are logged at
// warn, one line a minute at most with their count, so the operator sees what the EMR is told.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { subscriptionRoutes, unauthenticatedReadLimits } from '../../src/http/subscription-routes.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { SubscriptionReceiver } from '../../src/sources/fhir/receiver.js';
import { MemoryInbox } from '../integration/helpers/bridge-stubs.js';

const HMAC = 'medplum-signing-secret';
const BEARER = 'hapi-bearer-secret';
// 8 MB bodies: 32 MB hold 4 of them, and one address may hold 1.
const BODY_LIMIT = 8 * 1_048_576;

/** An upload to the Medplum-style source that declares 100 kB, sends 10 bytes and stalls. */
function stalledUpload(port: number, localAddress: string) {
  const socket: Socket = connect({ port, host: '127.0.0.1', localAddress }, () => {
    socket.write(
      'POST /fhir-subscription/medplum HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n' +
        'X-Signature: 00\r\nContent-Length: 100000\r\n\r\n{"resource',
    );
  });
  socket.on('error', () => undefined);
  /** The answer's head, or 'no answer' if none came within `ms`. */
  const answer = (ms: number) =>
    new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('no answer'), ms);
      socket.once('data', (chunk) => {
        clearTimeout(timer);
        resolve(chunk.toString());
      });
    });
  return { socket, answer };
}

/**
 * A notification from `localAddress`: signed and posted for the Medplum-style source (the signature does not
 * cover a path, which such a source refuses), HAPI's `PUT …/Patient/<id>` with the bearer for the other.
 */
function notify(port: number, localAddress: string, source: 'medplum' | 'hapi', id: string) {
  const body = JSON.stringify({ resourceType: 'Patient', id });
  const headers: Record<string, string> = { 'content-type': 'application/fhir+json' };
  if (source === 'medplum') headers['x-signature'] = createHmac('sha256', HMAC).update(body).digest('hex');
  else headers.authorization = `Bearer ${BEARER}`;
  return new Promise<{ status: number; retryAfter?: string; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        agent: false,
        method: source === 'medplum' ? 'POST' : 'PUT',
        path: source === 'medplum' ? `/fhir-subscription/${source}` : `/fhir-subscription/${source}/Patient/${id}`,
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

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('subscription receiver: bodies read before authentication', () => {
  const inbox = new MemoryInbox();
  let server: Server;
  let port: number;
  const uploads: Socket[] = [];
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const refusals = () =>
    lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.level === 'warn');
  before(async () => {
    const receiver = new SubscriptionReceiver(
      [
        { id: 'medplum', auth: { hmacSecret: HMAC } },
        { id: 'hapi', auth: { secret: BEARER } },
      ],
      inbox,
      silentLogger,
    );
    const app = createHttpApp(
      [{ path: '/fhir-subscription', router: subscriptionRoutes(receiver, BODY_LIMIT, logger, () => clock) }],
      silentLogger,
    );
    ({ server, port } = await listen(app, 0, '127.0.0.1'));
  });
  after(async () => {
    for (const socket of uploads) socket.destroy();
    await closeServer(server, 100);
  });

  it('bounds the slots by the body limit', () => {
    assert.deepEqual(unauthenticatedReadLimits(BODY_LIMIT), { total: 4, perAddress: 1 });
    assert.deepEqual(unauthenticatedReadLimits(1_048_576), { total: 32, perAddress: 8 }, 'the default: 32 MB');
    assert.deepEqual(unauthenticatedReadLimits(52_428_800), { total: 2, perAddress: 1 }, 'the largest limit');
  });

  it('answers 503 past the slots, lets signed notifications through once one is free, never holds up a bearer source', async () => {
    // One address stalls an upload: its second one is refused at once, another address is served.
    const first = stalledUpload(port, '127.0.0.2');
    uploads.push(first.socket);
    await pause(200);
    const second = stalledUpload(port, '127.0.0.2');
    uploads.push(second.socket);
    const refused = await second.answer(3_000);
    assert.match(refused, /^HTTP\/1\.1 503/, 'past one address share');
    assert.match(refused, /retry-after: 10/i);
    assert.equal((await notify(port, '127.0.0.1', 'medplum', 'a')).status, 200, 'another address is served');

    // Stalled uploads from three more addresses take the remaining slots.
    const more = ['127.0.0.3', '127.0.0.4', '127.0.0.5'].map((address) => stalledUpload(port, address));
    uploads.push(...more.map((upload) => upload.socket));
    await pause(200);
    const full = await notify(port, '127.0.0.1', 'medplum', 'b');
    assert.equal(full.status, 503, full.body);
    assert.equal(full.retryAfter, '10');
    const outcome = JSON.parse(full.body) as { resourceType: string; issue: Array<{ code: string }> };
    assert.equal(outcome.resourceType, 'OperationOutcome');
    assert.equal(outcome.issue[0]?.code, 'transient');
    // Logged: the first refusal at once, the second (within the minute) only counted.
    assert.equal(refusals().length, 1, lines.join(''));
    assert.deepEqual(
      { ...refusals()[0], time: undefined, msg: undefined },
      {
        level: 'warn',
        time: undefined,
        service: 'opencrvs-bridge',
        component: 'subscription-receiver',
        source: 'medplum',
        remote: '127.0.0.2',
        refused: 1,
        full: 'address share',
        reading: 1,
        readingFromRemote: 1,
        slots: 4,
        perAddress: 1,
        msg: undefined,
      },
    );
    // A minute later the next refusal writes the count since the last line.
    clock += 61_000;
    assert.equal((await notify(port, '127.0.0.1', 'medplum', 'b')).status, 503);
    assert.equal(refusals().length, 2, lines.join(''));
    assert.deepEqual(
      { ...refusals()[1], time: undefined, msg: undefined },
      {
        level: 'warn',
        time: undefined,
        service: 'opencrvs-bridge',
        component: 'subscription-receiver',
        source: 'medplum',
        remote: '127.0.0.1',
        refused: 2,
        full: 'all slots',
        reading: 4,
        readingFromRemote: 0,
        slots: 4,
        perAddress: 1,
        msg: undefined,
      },
    );
    // Nothing of the request: no body, no header, no secret.
    assert.doesNotMatch(lines.join(''), /Patient|resource|signature|medplum-signing-secret/i);

    // The bearer secret is checked before the body: that source is not counted.
    assert.equal((await notify(port, '127.0.0.1', 'hapi', 'c')).status, 200, 'a bearer source is served');

    // A stalled upload that gives up frees its slot: the signed notification is accepted.
    more[0]?.socket.destroy();
    await pause(200);
    const retried = await notify(port, '127.0.0.1', 'medplum', 'b');
    assert.equal(retried.status, 200, retried.body);
    assert.equal(inbox.rows.length, 3, 'a, c and b stored; nothing from the stalled uploads');
  });
});
