import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/observability/logger.js';
import { type FhirSandbox, type FhirSandboxOptions, startFhirSandbox } from '../../src/sandbox/fhir/index.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary FHIR JSON and assert on it field by field
type Json = Record<string, any>;

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A tiny subscriber: records every request; `answer` picks the status (or holds the response). */
async function startReceiver(answer: (n: number, res: ServerResponse) => number | undefined = () => 200) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const status = answer(received.length, res);
      if (status !== undefined) res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function withSandbox(
  notify: NonNullable<FhirSandboxOptions['notify']>,
  body: (sandbox: FhirSandbox) => Promise<void>,
  extra: Partial<FhirSandboxOptions> = {},
): Promise<void> {
  const sandbox = await startFhirSandbox({ port: 0, notify, ...extra });
  try {
    await body(sandbox);
  } finally {
    await sandbox.close();
  }
}

async function write(sandbox: FhirSandbox, method: 'PUT' | 'DELETE', path: string, resource?: unknown): Promise<Json> {
  const res = await fetch(`${sandbox.baseUrl}/${path}`, {
    method,
    headers: resource ? { 'Content-Type': 'application/fhir+json' } : {},
    body: resource ? JSON.stringify(resource) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  assert.ok(res.ok, `${method} ${path} -> ${res.status}`);
  return (await res.json()) as Json;
}

/** create, update, delete of one Patient over HTTP. */
async function lifecycle(sandbox: FhirSandbox, id: string): Promise<void> {
  await write(sandbox, 'PUT', `Patient/${id}`, { resourceType: 'Patient', id, gender: 'female' });
  await write(sandbox, 'PUT', `Patient/${id}`, { resourceType: 'Patient', id, gender: 'male' });
  await write(sandbox, 'DELETE', `Patient/${id}`);
}

function statusParams(bundleText: string): { bundle: Json; params: Record<string, Json> } {
  const bundle = JSON.parse(bundleText) as Json;
  const params: Record<string, Json> = {};
  for (const p of bundle.entry[0].resource.parameter) params[p.name] = p;
  return { bundle, params };
}

function eventNumber(received: Received): number {
  const { params } = statusParams(received.body);
  return Number(params['notification-event']?.part.find((p: Json) => p.name === 'event-number').valueString);
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(25);
  assert.ok(condition(), `timed out waiting for ${what}`);
}

describe('FHIR sandbox subscription notifications', () => {
  it('hapi-empty: POSTs an empty body per create and update, nothing for a delete, with the channel headers', async () => {
    const receiver = await startReceiver();
    await withSandbox(
      { url: receiver.url, style: 'hapi-empty', headers: { Authorization: 'Bearer xyz' } },
      async (sb) => {
        await lifecycle(sb, 'he-1');
        await sb.emitter?.flush();
        assert.equal(receiver.received.length, 2);
        for (const r of receiver.received) {
          assert.equal(r.method, 'POST');
          assert.equal(r.path, '/hook');
          assert.equal(r.body, '');
          assert.equal(r.headers.authorization, 'Bearer xyz');
        }
        assert.equal(sb.emitter?.eventCount, 2);
      },
    );
    await receiver.close();
  });

  it('hapi-payload: PUTs the resource to {url}/{Type}/{id} and DELETEs it there on delete', async () => {
    const receiver = await startReceiver();
    await withSandbox({ url: `${receiver.url}/`, style: 'hapi-payload' }, async (sb) => {
      await lifecycle(sb, 'hp-1');
      await sb.emitter?.flush();
      assert.deepEqual(
        receiver.received.map((r) => `${r.method} ${r.path}`),
        ['PUT /hook/Patient/hp-1', 'PUT /hook/Patient/hp-1', 'DELETE /hook/Patient/hp-1'],
      );
      const versions = receiver.received.slice(0, 2).map((r) => JSON.parse(r.body).meta.versionId);
      assert.deepEqual(versions, ['1', '2']);
      assert.equal(receiver.received[2]?.body, '');
    });
    await receiver.close();
  });

  it('medplum: POSTs the resource with interaction, subscription and an HMAC-SHA256 signature of the raw body', async () => {
    const receiver = await startReceiver();
    const secret = 'shared-hmac-secret';
    await withSandbox({ url: receiver.url, style: 'medplum', secret }, async (sb) => {
      await lifecycle(sb, 'mp-1');
      await sb.emitter?.flush();
      assert.deepEqual(
        receiver.received.map((r) => r.headers['x-medplum-interaction']),
        ['create', 'update', 'delete'],
      );
      for (const r of receiver.received) {
        assert.equal(r.method, 'POST');
        assert.ok(r.headers['x-medplum-subscription']);
        const expected = createHmac('sha256', secret).update(r.body).digest();
        const given = Buffer.from(String(r.headers['x-signature']), 'hex');
        assert.ok(given.length === expected.length && timingSafeEqual(given, expected), 'signature verifies');
      }
      assert.equal(JSON.parse(receiver.received[1]?.body ?? '').gender, 'male');
      assert.equal(receiver.received[2]?.body, '{}');
    });
    await receiver.close();
  });

  it('backport-id-only: handshake first, then history bundles with numbered events and references only, and heartbeats', async () => {
    const receiver = await startReceiver();
    await withSandbox({ url: receiver.url, style: 'backport-id-only' }, async (sb) => {
      await sb.emitter?.flush();
      assert.equal(receiver.received.length, 1);
      const handshake = statusParams(receiver.received[0]?.body ?? '');
      assert.equal(handshake.bundle.type, 'history');
      assert.equal(handshake.params.type?.valueCode, 'handshake');
      assert.equal(handshake.params['events-since-subscription-start']?.valueString, '0');

      await lifecycle(sb, 'bp-1');
      await sb.emitter?.sendHeartbeat();
      await sb.emitter?.flush();
      const [, ...rest] = receiver.received;
      assert.equal(rest.length, 4);
      const events = rest.slice(0, 3).map((r) => statusParams(r.body));
      assert.deepEqual(
        events.map((e) => e.params.type?.valueCode),
        ['event-notification', 'event-notification', 'event-notification'],
      );
      assert.deepEqual(rest.slice(0, 3).map(eventNumber), [1, 2, 3]);
      for (const [i, { bundle, params }] of events.entries()) {
        const parts = params['notification-event']?.part as Json[];
        assert.equal(parts.find((p) => p.name === 'focus')?.valueReference.reference, `${sb.baseUrl}/Patient/bp-1`);
        assert.ok(parts.find((p) => p.name === 'timestamp')?.valueInstant);
        assert.equal(params['events-since-subscription-start']?.valueString, String(i + 1));
        assert.equal(bundle.entry.length, 2);
        assert.equal(bundle.entry[1].fullUrl, `${sb.baseUrl}/Patient/bp-1`);
        assert.equal(bundle.entry[1].resource, undefined, 'id-only carries no resource');
      }
      assert.deepEqual(
        events.map((e) => e.bundle.entry[1].request.method),
        ['POST', 'PUT', 'DELETE'],
      );
      const heartbeat = statusParams(rest[3]?.body ?? '');
      assert.equal(heartbeat.params.type?.valueCode, 'heartbeat');
      assert.equal(heartbeat.params['events-since-subscription-start']?.valueString, '3');
      assert.equal(heartbeat.bundle.entry.length, 1);
    });
    await receiver.close();
  });

  it('dropNext leaves gaps in the event numbers and duplicateNext sends the same event twice', async () => {
    const receiver = await startReceiver();
    await withSandbox({ url: receiver.url, style: 'backport-id-only' }, async (sb) => {
      const emitter = sb.emitter;
      assert.ok(emitter);
      await sb.upsert({ resourceType: 'Patient', id: 'g-1' });
      emitter.dropNext(2);
      await sb.upsert({ resourceType: 'Patient', id: 'g-2' });
      await sb.upsert({ resourceType: 'Patient', id: 'g-3' });
      await sb.upsert({ resourceType: 'Patient', id: 'g-4' });
      emitter.duplicateNext(1);
      await sb.upsert({ resourceType: 'Patient', id: 'g-5' });
      await sb.upsert({ resourceType: 'Patient', id: 'g-6' });
      await emitter.flush();
      assert.deepEqual(receiver.received.slice(1).map(eventNumber), [1, 4, 5, 5, 6]);
      assert.equal(emitter.eventCount, 6);
    });
    await receiver.close();
  });

  it('sends heartbeats on the configured period, and none while paused', async () => {
    const receiver = await startReceiver();
    const heartbeats = () =>
      receiver.received.filter((r) => statusParams(r.body).params.type?.valueCode === 'heartbeat').length;
    await withSandbox({ url: receiver.url, style: 'backport-id-only', heartbeatSeconds: 0.05 }, async (sb) => {
      await until(() => heartbeats() >= 2, 'two heartbeats');
      sb.emitter?.pauseHeartbeats();
      await sb.emitter?.flush();
      const paused = heartbeats();
      await sleep(300); // six periods
      await sb.emitter?.flush();
      assert.equal(heartbeats(), paused);
      sb.emitter?.resumeHeartbeats();
      await until(() => heartbeats() > paused, 'heartbeats after resume');
    });
    await receiver.close();
  });

  it('notifies only for the configured resource types', async () => {
    const receiver = await startReceiver();
    await withSandbox({ url: receiver.url, style: 'medplum', resourceTypes: ['Observation'] }, async (sb) => {
      await sb.upsert({ resourceType: 'Patient', id: 'rt-p' });
      await sb.upsert({ resourceType: 'Observation', id: 'rt-o', status: 'final', code: { text: 'weight' } });
      await sb.emitter?.flush();
      assert.equal(receiver.received.length, 1);
      assert.equal(JSON.parse(receiver.received[0]?.body ?? '').id, 'rt-o');
      assert.equal(sb.emitter?.eventCount, 1);
    });
    await receiver.close();
  });

  it('notifies a committed transaction after the commit, and a rolled-back one not at all', async () => {
    const receiver = await startReceiver();
    await withSandbox({ url: receiver.url, style: 'hapi-payload' }, async (sb) => {
      const tx = (entries: Json[]) =>
        fetch(sb.baseUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/fhir+json' },
          body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries }),
        });
      const put = (id: string, ifMatch?: string) => ({
        resource: { resourceType: 'Patient', id },
        request: { method: 'PUT', url: `Patient/${id}`, ...(ifMatch ? { ifMatch } : {}) },
      });
      assert.equal((await tx([put('tx-a'), put('tx-b')])).status, 200);
      assert.equal((await tx([put('tx-c'), put('tx-a', 'W/"9"')])).status, 412);
      await sb.emitter?.flush();
      assert.deepEqual(receiver.received.map((r) => r.path).sort(), ['/hook/Patient/tx-a', '/hook/Patient/tx-b']);
    });
    await receiver.close();
  });

  it('retries a failed delivery after a short backoff', async () => {
    const receiver = await startReceiver((n) => (n === 1 ? 503 : 200));
    await withSandbox({ url: receiver.url, style: 'medplum' }, async (sb) => {
      await sb.upsert({ resourceType: 'Patient', id: 'retry-1' });
      await sb.emitter?.flush();
      assert.equal(receiver.received.length, 2);
      assert.equal(receiver.received[0]?.body, receiver.received[1]?.body);
    });
    await receiver.close();
  });

  it('drops a notification after the last retry and logs it without the URL or its token', async () => {
    const receiver = await startReceiver(() => 500);
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
    await withSandbox(
      { url: `${receiver.url}?token=very-secret-token`, style: 'hapi-empty' },
      async (sb) => {
        await sb.upsert({ resourceType: 'Patient', id: 'drop-1', name: [{ family: 'Mwale' }] });
        await sb.emitter?.flush();
        assert.equal(receiver.received.length, 4, 'one try and three retries');
      },
      { logger },
    );
    const dropped = lines.filter((l) => l.includes('notification dropped after retries'));
    assert.equal(dropped.length, 1);
    assert.ok(!lines.join('\n').includes('very-secret-token'));
    assert.ok(!lines.join('\n').includes('Mwale'));
    await receiver.close();
  });

  it('does not hold a write until the subscriber answers', async () => {
    const held: ServerResponse[] = [];
    const receiver = await startReceiver((_, res) => {
      held.push(res);
      return undefined;
    });
    await withSandbox({ url: receiver.url, style: 'hapi-empty' }, async (sb) => {
      await write(sb, 'PUT', 'Patient/async-1', { resourceType: 'Patient', id: 'async-1' });
      await until(() => held.length === 1, 'the notification to arrive');
      // The write above has completed although the subscriber has not answered yet.
      const second = await write(sb, 'PUT', 'Patient/async-2', { resourceType: 'Patient', id: 'async-2' });
      assert.equal(second.id, 'async-2');
      held.shift()?.writeHead(200).end();
      await until(() => held.length === 1, 'the second notification');
      held.shift()?.writeHead(200).end();
      await sb.emitter?.flush();
      assert.equal(receiver.received.length, 2);
    });
    await receiver.close();
  });
});
