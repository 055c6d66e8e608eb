// A full inbox: the receiver answers 503 with Retry-After (the EMR resends later) instead of storing
// without bound; below the limit it stores and acknowledges as usual.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { subscriptionRoutes } from '../../src/http/subscription-routes.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { SubscriptionReceiver } from '../../src/sources/fhir/receiver.js';
import { MemoryInbox } from '../integration/helpers/bridge-stubs.js';

describe('subscription receiver: a full inbox', () => {
  it('answers 503 with Retry-After and an OperationOutcome past the limit, storing nothing more', async () => {
    const inbox = new MemoryInbox();
    const receiver = new SubscriptionReceiver(
      [{ id: 'emr', auth: { secret: 's3cret' } }],
      inbox,
      silentLogger,
      undefined,
      { maxDepth: 2 },
    );
    const app = createHttpApp(
      [{ path: '/fhir-subscription', router: subscriptionRoutes(receiver, 1_048_576, silentLogger) }],
      silentLogger,
    );
    const { server, port } = await listen(app, 0, '127.0.0.1');
    try {
      const send = (id: string) =>
        fetch(`http://127.0.0.1:${port}/fhir-subscription/emr/Patient/${id}`, {
          method: 'PUT',
          headers: { authorization: 'Bearer s3cret', 'content-type': 'application/fhir+json' },
          body: JSON.stringify({ resourceType: 'Patient', id }),
        });
      assert.equal((await send('a')).status, 200);
      assert.equal((await send('b')).status, 200);
      const full = await send('c');
      assert.equal(full.status, 503);
      assert.equal(full.headers.get('retry-after'), '30');
      const outcome = (await full.json()) as { resourceType: string; issue: Array<{ code: string }> };
      assert.equal(outcome.resourceType, 'OperationOutcome');
      assert.equal(outcome.issue[0]?.code, 'transient');
      assert.equal(inbox.rows.length, 2, 'the refused notification was not stored');
      // Once processed, the inbox takes notifications again (it is counted again after a second).
      for (const row of inbox.rows) inbox.done(row.id, Date.now());
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      assert.equal((await send('d')).status, 200);
    } finally {
      await closeServer(server, 100);
    }
  });
  it('logs refusals once a minute with their count, not once each', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    const receiver = new SubscriptionReceiver([{ id: 'emr', auth: {} }], new MemoryInbox(), logger, undefined, {
      maxDepth: 0,
    });
    const request = {
      sourceId: 'emr',
      method: 'PUT',
      pathRef: { type: 'Patient', id: 'a' },
      contentType: 'application/fhir+json',
      rawBody: Buffer.from(JSON.stringify({ resourceType: 'Patient', id: 'a' })),
    };
    const start = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 50; i++) assert.throws(() => receiver.receive(request, start + i * 100), /retry later/);
    assert.throws(() => receiver.receive(request, start + 61_000), /retry later/);
    const warnings = lines.filter((line) => line.includes('inbox full'));
    assert.equal(warnings.length, 2);
    assert.match(warnings[1] ?? '', /"refused":50/);
  });
});
