// Guessing a subscription secret against the running bridge: past 20 wrong secrets for a source from one
// address in a minute the receiver answers 429 with Retry-After for it, and /metrics counts the refusals by
// source and reason. Before, 3,000 guesses at 1,160 a second were each answered 401, and nothing counted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SOURCE_ID, startHarness } from './helpers/bridge-harness.js';

const SECRET = 'right-secret-right-secret';

describe('subscription receiver: guessing the secret', () => {
  it('answers 429 with Retry-After past 20 wrong secrets from one address, and counts them in /metrics', async () => {
    const h = await startHarness({ subscription: { secret: SECRET }, worker: false });
    try {
      const metric = async (reason: string) => {
        const text = await (await fetch(`${h.bridgeUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
        const line = text
          .split('\n')
          .find((l) => l.startsWith(`bridge_notifications_refused_total{source="${SOURCE_ID}",reason="${reason}"}`));
        return line === undefined ? undefined : Number(line.split(' ').at(-1));
      };
      assert.equal(await metric('unauthorized'), 0, 'present from start, at 0');
      const answers: Array<{ status: number; retryAfter: string | null; code?: string }> = [];
      for (let i = 0; i < 30; i++) {
        const response = await fetch(h.receiverUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/fhir+json', authorization: `Bearer guess-${i}` },
          body: '{}',
          signal: AbortSignal.timeout(10_000),
        });
        const outcome = (await response.json()) as { issue?: Array<{ code: string }> };
        answers.push({
          status: response.status,
          retryAfter: response.headers.get('retry-after'),
          code: outcome.issue?.[0]?.code,
        });
      }
      assert.deepEqual(
        answers.map((a) => a.status),
        [...Array<number>(20).fill(401), ...Array<number>(10).fill(429)],
      );
      const last = answers.at(-1);
      assert.equal(last?.code, 'throttled');
      assert.ok(Number(last?.retryAfter) > 0 && Number(last?.retryAfter) <= 60, `Retry-After ${last?.retryAfter}`);
      assert.equal(await metric('unauthorized'), 20);
      assert.equal(await metric('throttled'), 10);
    } finally {
      await h.close();
    }
  });
});
