// A FHIR server that takes as long as the page it is asked for (the sandbox, slowed per `_count`).
//
// A poll page it cannot answer in time fails the pass: the error must name the settings to change.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sleep, startHarness } from './helpers/bridge-harness.js';

const TIMEOUT_MS = 1200;
describe('FHIR source: a slow server', () => {
  it('names the settings to change when a poll page times out', { timeout: 60_000 }, async () => {
    const h = await startHarness({
      poll: { pageSize: 10 },
      source: { timeoutMs: TIMEOUT_MS },
      fhirPaging: {
        beforeSearch: async (type, query) => {
          if (type === 'Patient' && query.has('_sort')) await sleep(3 * TIMEOUT_MS);
        },
      },
    });
    try {
      await h.writeBirths(0, 1);
      const pass = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(pass.failedSources, ['emr']);
      assert.equal(
        h.bridge.sourceStatuses()[0]?.lastError,
        `search Patient failed: timeout: no answer within ${TIMEOUT_MS} ms (raise sources[].timeoutMs or lower sources[].poll.pageSize of source emr)`,
      );
    } finally {
      await h.close();
    }
  });
});
