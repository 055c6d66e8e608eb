// A full inbox: the receiver answers 503 with Retry-After (the EMR resends later) instead of storing
// without bound; below the limit it stores and acknowledges as usual.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeServer, createHttpApp, listen } from '../../src/http/server.js';
import { subscriptionRoutes } from '../../src/http/subscription-routes.js';
import { silentLogger } from '../../src/observability/logger.js';
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
      2,
    );
    const app = createHttpApp(
      [{ path: '/fhir-subscription', router: subscriptionRoutes(receiver, 1_048_576) }],
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
});
