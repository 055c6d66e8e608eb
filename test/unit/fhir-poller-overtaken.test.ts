// The FHIR poller and a page holding a result another evaluation overtook (pipeline.overtakes): the
// result is read again at once. The watermark waits at the page only until that reread has recorded the
// record, and for the rest of the pass only when it failed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guardedPatientPoller, StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

const TIE = '2001-01-01T00:00:05.000Z';

/** A poller whose pipeline says the page holding `refusedId` is overtaken, its reread ending `rereadOk`. */
function overtakenPoller(client: StubFhirClient, refusedId: string, rereadOk: boolean) {
  const polled = guardedPatientPoller(client, 5);
  const { pipeline } = polled;
  let lastIds: string[] = [];
  const evaluate = pipeline.evaluate.bind(pipeline);
  pipeline.evaluate = async (resources, fetcher) => {
    lastIds = resources.map((r) => r.id ?? '');
    return evaluate(resources, fetcher);
  };
  pipeline.overtakes = () => lastIds.includes(refusedId);
  pipeline.settled = async () => rereadOk;
  return polled;
}

describe('FHIR poller: a page with an overtaken result', () => {
  it('moves the watermark on once the reread recorded it, and does not evaluate the page again', async () => {
    const client = new StubFhirClient();
    for (let i = 0; i < 3; i++) client.put(stamped('Patient', `p${i}`, `2001-01-01T00:00:0${i + 1}.000Z`));
    const { pipeline, poller, violations } = overtakenPoller(client, 'p1', true);
    await poller.pollOnce();
    assert.equal(poller.status.watermarks.Patient, '2001-01-01T00:00:03.000Z');
    const evaluated = pipeline.evaluated.length;
    await poller.pollOnce();
    assert.equal(pipeline.evaluated.length, evaluated, 'the versions were remembered as read');
    assert.deepEqual(violations, []);
  });

  it('holds the watermark at the page when the reread failed, and reads it again next pass', async () => {
    const client = new StubFhirClient();
    for (let i = 0; i < 3; i++) client.put(stamped('Patient', `p${i}`, `2001-01-01T00:00:0${i + 1}.000Z`));
    const { pipeline, poller } = overtakenPoller(client, 'p1', false);
    await poller.pollOnce();
    assert.equal(poller.status.watermarks.Patient, '2001-01-01T00:00:01.000Z', "at the page's oldest record");
    pipeline.overtakes = () => false;
    await poller.pollOnce();
    assert.equal(pipeline.evaluated.filter((key) => key === 'Patient/p1/1').length, 2, 'p1 evaluated again');
  });

  it('completes a run whose page was overtaken once its reread recorded it', async () => {
    const client = new StubFhirClient();
    client.maxCount = 5; // the server caps _count: a run of 12 is paged by next links
    client.paging = 'offset';
    client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
    const { pipeline, poller, violations } = overtakenPoller(client, 't3', true);
    await poller.pollOnce();
    for (let i = 0; i < 12; i++) client.put(stamped('Patient', `t${i}`, TIE));
    client.put(stamped('Patient', 'after', '2001-01-01T00:00:09.000Z'));
    await poller.pollOnce();
    assert.equal(poller.status.watermarks.Patient, '2001-01-01T00:00:09.000Z', 'past the run');
    assert.equal(pipeline.evaluated.filter((key) => key === 'Patient/t3/1').length, 1, 't3 evaluated once');
    assert.deepEqual(violations, []);
  });

  it('does not let a run given up after a failed reread pass the run', async () => {
    const client = new StubFhirClient();
    client.maxCount = 5;
    client.paging = 'offset';
    client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
    const { poller, violations } = overtakenPoller(client, 'after0', false);
    await poller.pollOnce();
    for (let i = 0; i < 10; i++) client.put(stamped('Patient', `t${i}`, TIE));
    for (let i = 0; i < 12; i++)
      client.put(stamped('Patient', `after${i}`, `2001-01-01T00:00:${String(7 + i).padStart(2, '0')}.000Z`));
    // A member of the run keeps changing (in the same second) while it is read: the run is given up.
    let version = 1;
    client.beforePage = () => {
      if (version < 40) client.put(stamped('Patient', 't0', TIE, String(++version)));
    };
    await poller.pollOnce();
    assert.deepEqual(violations, [], 'the watermark passed a run member not read');
  });
});
