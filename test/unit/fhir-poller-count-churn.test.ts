// A run of one lastUpdated counted by the server (`_summary=count`) while it changes: a member edited out of
// the run while another commits late into it (a second-precision clock, a long transaction). Within one
// reading the two balance, so a reading that missed the member pushed onto a page already read still adds
// up to the count. The count may complete a run only on a reading that found nothing new.
// (From an adversarial review of the run-count change.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guardedPatientPoller, StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

const T = '2001-01-01T00:00:05.000Z';

describe('FhirPoller: a counted run that changes while it is read', () => {
  it('never passes the member pushed onto a page already read, though the reading adds up to the count', async () => {
    const client = new StubFhirClient();
    client.paging = 'offset';
    client.maxCount = 2;
    client.counts = true;
    for (let i = 0; i < 6; i++) client.put(stamped('Patient', `r${i}`, T));
    client.put(stamped('Patient', 'after', '2001-01-01T00:01:00.000Z'));
    const { pipeline, poller, violations } = guardedPatientPoller(client, 2);
    client.beforePage = () => {
      // After the count and the run's first page: r0 is edited (leaves the run), Y commits late at T.
      if (client.searches.some((s) => s.params._summary === 'count') && !client.store.has('Patient/Y')) {
        client.put(stamped('Patient', 'r0', '2001-01-01T00:02:00.000Z', '2'));
        client.put(stamped('Patient', 'Y', T));
      }
    };
    await poller.pollOnce();
    assert.deepEqual(violations, [], 'no watermark passed a record not evaluated');
    for (const id of ['r1', 'r2', 'r3', 'r4', 'r5', 'Y']) assert.ok(pipeline.evaluated.includes(`Patient/${id}/1`), id);
  });
});
