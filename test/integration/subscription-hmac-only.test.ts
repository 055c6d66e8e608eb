// X-Signature (Medplum's, `hmacSecret`) signs the body only. Medplum signs the same `{}` for every delete
// and names the deleted resource in a header, so one captured delete was valid forever for any path and
// any X-Medplum-Deleted-Resource. From a source authenticated by the signature alone, the path style is
// refused and a header-named resource is acted on only if it reads as deleted.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { birthResources, SOURCE_ID, startHarness } from './helpers/bridge-harness.js';

const HMAC = 'medplum-hmac-secret-for-tests';
// What Medplum sends for every delete: `{}` and its signature. Seen once on the wire, it is known.
const CAPTURED_BODY = '{}';
const CAPTURED_SIGNATURE = createHmac('sha256', HMAC).update(CAPTURED_BODY).digest('hex');
const CHILD = 'Patient/e2e-birth-0-child';

describe('a subscription authenticated by hmacSecret alone', () => {
  it('refuses a /{Type}/{id} notification, whose path the signature does not cover', async () => {
    const h = await startHarness({ subscription: { hmacSecret: HMAC }, seed: birthResources(0), worker: false });
    try {
      for (const method of ['PUT', 'DELETE']) {
        const response = await fetch(`${h.receiverUrl}/${CHILD}`, {
          method,
          headers: { 'content-type': 'application/fhir+json', 'x-signature': CAPTURED_SIGNATURE },
          body: CAPTURED_BODY,
          signal: AbortSignal.timeout(10_000),
        });
        const outcome = (await response.json()) as { resourceType?: string; issue?: Array<{ code?: string }> };
        assert.equal(response.status, 403, method);
        assert.equal(outcome.resourceType, 'OperationOutcome');
        assert.equal(outcome.issue?.[0]?.code, 'security');
      }
      assert.equal(h.bridge.ledger.inbox.prune(Date.now() + 1), 0, 'nothing was stored');
      await h.bridge.inbox.processOnce();
      assert.equal(h.rows().length, 0);
    } finally {
      await h.close();
    }
  });

  it('refuses a /{Type}/{id} notification before reading its body', async () => {
    const h = await startHarness({ subscription: { hmacSecret: HMAC }, seed: birthResources(0), worker: false });
    const url = new URL(h.receiverUrl);
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    try {
      // The head of a 500 kB upload (under the 1 MB limit), and not one byte of its body: read first, the
      // answer would wait for the body (until the request timeout, 30 s).
      socket.write(
        `PUT ${url.pathname}/${CHILD} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/fhir+json\r\n` +
          `X-Signature: ${CAPTURED_SIGNATURE}\r\nContent-Length: 500000\r\n\r\n`,
      );
      const answer = await new Promise<string>((resolve) => {
        const timer = setTimeout(() => resolve('no answer'), 3_000);
        let text = '';
        socket.on('data', (chunk) => {
          text += chunk;
          if (text.includes('"OperationOutcome"')) {
            clearTimeout(timer);
            resolve(text);
          }
        });
        socket.on('error', () => undefined);
      });
      assert.match(answer, /^HTTP\/1\.1 403 /);
      assert.match(answer, /"code":"security"/);
      assert.match(answer, /connection: close/i, 'the unread body is not drained');
      assert.equal(h.bridge.ledger.inbox.prune(Date.now() + 1), 0, 'nothing was stored');
    } finally {
      socket.destroy();
      await h.close();
    }
  });

  it('takes a replayed delete naming a record that still exists as a ping: a catch-up poll, no evaluation of it', async () => {
    const h = await startHarness({ subscription: { hmacSecret: HMAC }, seed: birthResources(0), worker: false });
    try {
      const response = await fetch(h.receiverUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/fhir+json',
          'x-signature': CAPTURED_SIGNATURE,
          'x-medplum-deleted-resource': CHILD,
        },
        body: CAPTURED_BODY,
        signal: AbortSignal.timeout(10_000),
      });
      await response.text();
      assert.equal(response.status, 200);
      assert.equal(h.bridge.sources[0]?.poller.status.lastPollStartedAt, undefined);
      await h.bridge.inbox.processOnce();
      // It is no deletion (the child reads), and no one vouched for a change to it: the source is polled.
      assert.equal(h.bridge.inbox.status(SOURCE_ID)?.catchUps, 1);
      assert.notEqual(h.bridge.sources[0]?.poller.status.lastPollStartedAt, undefined);
    } finally {
      await h.close();
    }
  });
});
