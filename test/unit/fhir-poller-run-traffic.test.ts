// A run of one lastUpdated longer than the server's page (a bulk import) on a sorted server, while births
// keep arriving after it: records after the run are new on every reading's last page, and must not keep
// the run from completing (it would be read again up to five times a pass, held at the run, for as long
// as traffic lasts). (From an adversarial review of the run-count change.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guardedPatientPoller, StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

const tie = '2001-01-01T00:00:05.000Z';

describe('FhirPoller: a run read while new records arrive after it', () => {
  it('completes in the first pass, and the watermark passes it', async () => {
    const client = new StubFhirClient();
    client.paging = 'offset';
    client.maxCount = 20;
    client.counts = true;
    const { pipeline, poller, violations } = guardedPatientPoller(client, 5);
    for (let i = 0; i < 21; i++) client.put(stamped('Patient', `t${i}`, tie));
    let arrived = 0;
    const search = client.searchPage.bind(client);
    // One birth arrives, after the run, at every search (a reading's start).
    client.searchPage = async (type, params) => {
      if (params._lastUpdated?.startsWith('ge')) {
        arrived++;
        client.put(
          stamped('Patient', `new${arrived}`, `2001-01-01T00:01:${String(10 + arrived).padStart(2, '0')}.000Z`),
        );
      }
      return search(type, params);
    };
    await poller.pollOnce();
    assert.deepEqual(violations, []);
    const watermark = pipeline.cursors.get('lastUpdated:Patient') ?? '';
    assert.ok(Date.parse(watermark) > Date.parse(tie), `the watermark passed the run (${watermark})`);
    for (let i = 0; i < 21; i++) assert.ok(pipeline.evaluated.includes(`Patient/t${i}/1`), `t${i}`);
  });
});
