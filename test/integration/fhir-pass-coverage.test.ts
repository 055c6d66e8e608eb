// One poll pass maps each subject once, however many of its resources the pass meets (a birth is a
// child, a mother, two encounters, a weight and a RelatedPerson, on pages of four types); and a
// resource that changed after its subject was mapped in the pass still maps the subject again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Observation } from '@medplum/fhirtypes';
import { PassCoverage } from '../../src/sources/coverage.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { birthResources, type Harness, startHarness } from './helpers/bridge-harness.js';

const BIRTHS = 6;

describe('one evaluation per subject and pass (live FHIR source)', () => {
  let h: Harness;
  before(async () => {
    // Pages of 5: every birth's resources are spread over several pages of each type.
    h = await startHarness({ worker: false, poll: { pageSize: 5 } });
  });
  after(async () => {
    await h?.close();
  });

  /** Counts the mappings run per `mappingId subjectRef` on the source's pipeline. */
  function countEvaluations(): Map<string, number> {
    const source = h.bridge.sources[0];
    assert.ok(source);
    const counts = new Map<string, number>();
    const set = source.pipeline.mappings;
    const original = set.mapSubjectDetailed.bind(set);
    set.mapSubjectDetailed = (mappingId, subjectRef, fetcher, options) => {
      const key = `${mappingId} ${subjectRef}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return original(mappingId, subjectRef, fetcher, options);
    };
    return counts;
  }

  it('maps every (mapping, subject) pair once in a pass and records every birth', async () => {
    await h.writeBirths(0, BIRTHS);
    const counts = countEvaluations();
    const report = await h.bridge.sources[0]?.poller.pollOnce();
    assert.equal(report?.mapped.inserted, BIRTHS);
    // Children and mothers, each under the birth and the death mapping.
    assert.equal(counts.size, BIRTHS * 2 * 2, [...counts.keys()].join('\n'));
    const repeated = [...counts].filter(([, n]) => n !== 1);
    assert.deepEqual(repeated, [], 'no subject mapped twice in one pass');
    assert.equal(h.rows().filter((row) => row.eventType === 'birth').length, BIRTHS);
  });

  it('maps a subject again for a resource version its earlier evaluation did not see', async () => {
    const source = h.bridge.sources[0];
    assert.ok(source);
    const [, child, , , , weight] = birthResources(0);
    assert.ok(child?.id && weight?.resourceType === 'Observation');
    const fetcher = new CachingFetcher(source.client);
    const coverage = new PassCoverage();
    const first = await source.pipeline.evaluate([child], fetcher, coverage);
    const birthOf = (results: typeof first.results) =>
      results.find((e) => e.result.mappingId === 'birth.fhir' && e.result.status === 'mapped')?.result;
    const before = birthOf(first.results);
    assert.equal(before?.status === 'mapped' && before.declaration['child.weightAtBirth'], 2.6);

    // The weight, at the version the child's evaluation saw: nothing to do for the birth mapping.
    const stored = (await source.client.read('Observation', weight.id as string)) as Observation;
    const again = await source.pipeline.evaluate([stored], fetcher, coverage);
    assert.equal(birthOf(again.results), undefined, 'the birth mapping saw this version already');

    // Corrected after the evaluation: a version it did not see, so the birth is mapped again.
    const corrected = await h.fhir.upsert({ ...stored, valueQuantity: { ...stored.valueQuantity, value: 3100 } });
    fetcher.prime([corrected]);
    const after = birthOf((await source.pipeline.evaluate([corrected], fetcher, coverage)).results);
    assert.equal(after?.status === 'mapped' && after.declaration['child.weightAtBirth'], 3.1);
  });
});
