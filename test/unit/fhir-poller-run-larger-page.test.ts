// A run longer than a page is asked for in larger pages (`_count` ×4 per step). A server that answers some
// of those sizes but not a larger one (a slow EMR that times out on it, a gateway that gives up) must not
// fail the pass at the run: the larger page is asked once, and the run is read at the largest size the
// server answered, in this pass and the next without asking for the larger page again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bundle } from '@medplum/fhirtypes';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { FhirPoller } from '../../src/sources/fhir/poller.js';
import { guardWatermark, RecordingPipeline, StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

const tie = '2001-01-01T00:00:05.000Z';
const afterAt = '2001-01-01T00:00:06.000Z';
const run = Array.from({ length: 20 }, (_, i) => `t${String(i).padStart(2, '0')}`);

/** Answers `_count` up to `answers`; a larger page fails as a timeout would. Records the attempts asked. */
class SlowOnLargePages extends StubFhirClient {
  readonly asked: Array<{ count: number; attempts: number | undefined }> = [];
  constructor(private readonly answers: number) {
    super();
  }
  override async searchPage(
    type: string,
    params: Record<string, string>,
    options: { attempts?: number } = {},
  ): Promise<Bundle> {
    if (params._count !== undefined) this.asked.push({ count: Number(params._count), attempts: options.attempts });
    if (Number(params._count) > this.answers) {
      this.searches.push({ type, params: { ...params } });
      throw new FhirSourceError(`search ${type} failed: timeout`, undefined, true);
    }
    return super.searchPage(type, params);
  }
}

describe('FhirPoller: a run whose larger page the server does not answer', () => {
  it('reads the run at the largest size answered, asks the larger page once, and not again next pass', async () => {
    const client = new SlowOnLargePages(8);
    const pipeline = new RecordingPipeline();
    const violations = guardWatermark(client, pipeline);
    // An overlap that reaches back over the run: the second pass meets it again.
    const poller = new FhirPoller({
      sourceId: 'stub',
      client,
      pipeline,
      cursors: pipeline,
      resourceTypes: ['Patient'],
      poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 10, pageSize: 2 },
      logger: silentLogger,
    });
    client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
    for (const id of run) client.put(stamped('Patient', id, tie));
    client.put(stamped('Patient', 'after', afterAt));

    await poller.pollOnce();
    assert.equal(poller.status.consecutiveFailures, 0, `the pass reads on (${poller.status.lastError})`);
    const evaluated = pipeline.evaluated;
    for (const id of [...run, 'after']) assert.ok(evaluated.includes(`Patient/${id}/1`), `${id} read`);
    assert.equal(new Set(evaluated).size, evaluated.length, 'no version evaluated twice');
    assert.deepEqual(violations, []);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), afterAt);
    // 2, then 8 (answered), then 32 once, without retries; the run is then read at 8, not 2.
    const firstPass = client.asked.splice(0);
    assert.deepEqual(
      firstPass.filter((a) => a.count > 8),
      [{ count: 32, attempts: 1 }],
    );
    const fromTie = client.searches.filter((s) => s.params._lastUpdated === `ge${tie}`).map((s) => s.params._count);
    assert.deepEqual(fromTie.slice(0, 3), ['2', '8', '32']);
    assert.ok(
      fromTie.slice(3).every((count) => count === '8'),
      `later readings at the size answered: ${fromTie.join(' ')}`,
    );

    client.searches.splice(0);
    await poller.pollOnce();
    assert.equal(poller.status.consecutiveFailures, 0);
    assert.ok(
      client.searches.some((s) => s.params._lastUpdated === `ge${tie}`),
      'the second pass reads the run again',
    );
    assert.deepEqual(
      client.asked.filter((a) => a.count > 8),
      [],
      'the larger page is not asked again',
    );
    assert.equal(new Set(pipeline.evaluated).size, pipeline.evaluated.length, 'nothing evaluated twice');
  });

  it('a page of poll.pageSize the server does not answer still fails the pass', async () => {
    const client = new SlowOnLargePages(1);
    const pipeline = new RecordingPipeline();
    const poller = new FhirPoller({
      sourceId: 'stub',
      client,
      pipeline,
      cursors: pipeline,
      resourceTypes: ['Patient'],
      poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 0, pageSize: 2 },
      logger: silentLogger,
    });
    client.put(stamped('Patient', 'one', tie));
    await assert.rejects(poller.pollOnce(), /timeout/);
    assert.deepEqual(pipeline.evaluated, []);
    assert.deepEqual(
      client.asked.map((a) => a.attempts),
      [undefined],
      "the usual page gets the client's retries",
    );
  });
});
