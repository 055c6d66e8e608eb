// A FHIR server whose paging inside a run of one _lastUpdated never ends: every `next` link is a new one
// (`_getpages=…&_offset=N+5`) and serves the same records again. Followed as given, a pass read up to
// MAX_RUN_PAGES (100,000) pages, then the next pass did it again, with no warning, no failure counted and
// the watermark never moving. The pass must stop well before that, say so, count a failure, keep the
// watermark at the run (read again next pass) and still read the records after it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bundle } from '@medplum/fhirtypes';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/observability/logger.js';
import { FhirPoller } from '../../src/sources/fhir/poller.js';
import { RecordingPipeline, StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

const T = '2001-01-01T00:00:05.000Z';

/** Offset paging capped at 5 a page, counts runs; `endless` makes every page of a run hand out a new next link. */
class EndlessLinks extends StubFhirClient {
  endless = true;
  private n = 0;
  override async nextPage(bundle: Bundle): Promise<Bundle | undefined> {
    if (!this.endless) return super.nextPage(bundle);
    const url = bundle.link?.find((l) => l.relation === 'next')?.url;
    if (!url) return undefined;
    this.followed.push(url);
    // The same entries again, under a link never given before.
    return {
      ...bundle,
      link: [{ relation: 'next', url: `http://stub.invalid/fhir?_getpages=x&_offset=${++this.n * 5}` }],
    };
  }
}

function setup() {
  const lines: string[] = [];
  const destination: DestinationStream = { write: (chunk: string) => void lines.push(chunk) };
  const client = new EndlessLinks();
  client.paging = 'offset';
  client.maxCount = 5;
  client.counts = true;
  const pipeline = new RecordingPipeline();
  const poller = new FhirPoller({
    sourceId: 'emr',
    client,
    pipeline,
    cursors: pipeline,
    resourceTypes: ['Patient'],
    poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 0, pageSize: 5 },
    logger: createLogger({ level: 'warn', destination }),
  });
  client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
  for (let i = 0; i < 8; i++) client.put(stamped('Patient', `t${i}`, T));
  for (let i = 1; i <= 3; i++) client.put(stamped('Patient', `after${i}`, `2001-01-01T00:00:0${5 + i}.000Z`));
  const warnings = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { client, pipeline, poller, warnings };
}

describe('FhirPoller: paging inside a run that never ends', () => {
  it('stops well before the page bound, warns, counts a failure, holds the watermark at the run and reads on past it', async () => {
    const { client, pipeline, poller, warnings } = setup();
    await assert.rejects(poller.pollOnce(), /paging of Patient did not end inside a run/);
    assert.ok(client.followed.length <= 20, `followed ${client.followed.length} next links`);
    assert.equal(poller.status.consecutiveFailures, 1);
    assert.match(poller.status.lastError ?? '', /did not end/);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), T, 'the watermark stays at the run');
    for (const id of ['before', 'after1', 'after2', 'after3'])
      assert.ok(pipeline.evaluated.includes(`Patient/${id}/1`), `${id} is read`);
    const warned = warnings().find((w) => /does not end/.test(String(w.msg)));
    assert.ok(warned, 'a warning says so');
    assert.equal(warned.source, 'emr');
    assert.equal(warned.resourceType, 'Patient');
    assert.equal(warned.counted, 8);
    assert.ok(!/"t\d"/.test(JSON.stringify(warned)), 'no record ids in the warning');

    // Every pass reads the run again (nothing is lost), stops again, and fails again.
    const followed = client.followed.length;
    await assert.rejects(poller.pollOnce(), /did not end/);
    assert.equal(poller.status.consecutiveFailures, 2);
    assert.ok(client.followed.length - followed <= 20);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), T);

    // Once the server pages honestly, the run is read whole and the watermark moves past it.
    client.endless = false;
    await poller.pollOnce();
    assert.equal(poller.status.consecutiveFailures, 0);
    for (let i = 0; i < 8; i++) assert.ok(pipeline.evaluated.includes(`Patient/t${i}/1`), `t${i} is read`);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), '2001-01-01T00:00:08.000Z');
  });

  it('stops a reading of a server that ignores _sort whose paging never ends, and fails with the watermark held', async () => {
    const { client, pipeline, poller, warnings } = setup();
    client.unsorted = true;
    // In the order stored: the first page is out of order, so the whole result is read through `next` links.
    const stored = [...client.store.values()];
    client.store.clear();
    for (const resource of [stored.at(-1), ...stored.slice(0, -1)]) if (resource) client.put(resource);
    await assert.rejects(poller.pollOnce(), /paging of Patient did not end/);
    assert.ok(client.followed.length <= 20, `followed ${client.followed.length} next links`);
    assert.equal(poller.status.consecutiveFailures, 1);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), undefined, 'an unfinished reading moves nothing');
    assert.ok(warnings().some((w) => /paging does not end/.test(String(w.msg))));
  });
});
