// A subscription bearer secret configured with surrounding spaces (`secret: "  …  "` in YAML, spaces
// after it in its secretFile): the loader keeps them, and the sender's header cannot carry them (HTTP
// drops a header value's surrounding spaces), so the receiver compares both sides trimmed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { birthResources, startHarness } from './helpers/bridge-harness.js';

const BEARER = 'subscription-bearer-secret';
const dir = mkdtempSync(join(tmpdir(), 'secret-spaces-'));

async function post(receiverUrl: string, bearer: string): Promise<number> {
  const response = await fetch(receiverUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ resourceType: 'Patient', id: 'e2e-birth-0-child' }),
    signal: AbortSignal.timeout(10_000),
  });
  await response.text();
  return response.status;
}

describe('a subscription secret configured with surrounding spaces', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts the secret without them, inline or from a file, and still refuses a wrong one', async () => {
    const file = join(dir, 'subscription-secret');
    writeFileSync(file, `${BEARER}  \n`);
    for (const subscription of [{ secret: `  ${BEARER} ` }, { secretFile: file }]) {
      const h = await startHarness({ subscription, seed: birthResources(0), worker: false });
      try {
        const what = JSON.stringify(subscription);
        assert.equal(await post(h.receiverUrl, BEARER), 200, what);
        assert.equal(await post(h.receiverUrl, `${BEARER}x`), 401, what);
        assert.equal(await post(h.receiverUrl, BEARER.slice(1)), 401, what);
      } finally {
        await h.close();
      }
    }
  });
});
