// A poller remembers the versions it mapped so that the overlap's re-read skips them, up to a count: an
// overlap of a day on a busy source would otherwise keep a day of version keys. One forgotten for the count
// is read again while the overlap still covers it; the ledger then records nothing new for it. Against the
// FHIR sandbox and the DHIS2 simulator, each with a real ledger.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LedgerRow } from '../../src/ledger/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { versionKey } from '../../src/sources/coverage.js';
import { Dhis2Poller, dhis2SettingsOf } from '../../src/sources/dhis2/index.js';
import { FhirPoller } from '../../src/sources/fhir/poller.js';
import type { PassReport, SourcePipeline } from '../../src/sources/pipeline.js';
import { birthResources, type Harness, startHarness } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, type Dhis2Harness, startDhis2Harness } from './helpers/dhis2-harness.js';

const REMEMBERED = 3;

/** The versions `pipeline` is given to map (those a poller did not remember), in the order read. */
function mappedBy(pipeline: SourcePipeline): { taken: () => string[] } {
  let mapped: string[] = [];
  const evaluate = pipeline.evaluate.bind(pipeline);
  pipeline.evaluate = (resources, ...rest) => {
    mapped.push(...resources.map(versionKey));
    return evaluate(resources, ...rest);
  };
  return {
    taken() {
      const out = mapped;
      mapped = [];
      return out;
    },
  };
}

/** Two passes of `poller`: the second maps again what the count made it forget, and records nothing new. */
async function forgottenMappedAgain(
  poller: { pollOnce(): Promise<PassReport> },
  pipeline: SourcePipeline,
  rows: () => LedgerRow[],
  births: number,
): Promise<void> {
  const mapped = mappedBy(pipeline);
  const first = await poller.pollOnce();
  assert.equal(first.mapped.inserted, births, 'the births recorded');
  const read = mapped.taken();
  assert.ok(read.length > REMEMBERED, `${read.length} versions mapped, more than the ${REMEMBERED} remembered`);
  const before = JSON.stringify(rows());

  const second = await poller.pollOnce();
  // The oldest went first: all but the last ones mapped are mapped again (and, remembered anew, push those
  // out before the pass reaches them: more versions in the overlap than the count are all mapped again).
  const again = mapped.taken();
  const forgotten = read.slice(0, -REMEMBERED);
  assert.deepEqual(
    forgotten.filter((key) => !again.includes(key)),
    [],
    'every version forgotten is mapped again',
  );
  assert.deepEqual(second.mapped, {
    inserted: 0,
    replaced: 0,
    unchanged: second.mapped.unchanged,
    'updated-after-notification': 0,
  });
  assert.ok(second.mapped.unchanged > 0, 'the events mapped again are recorded as unchanged');
  assert.equal(JSON.stringify(rows()), before, 'the ledger rows are as they were');
}

describe('the versions a FHIR poller remembers as mapped', () => {
  let h: Harness;
  before(async () => {
    // Every version at a time of its own (an hour ago, 10 ms apart): versions of one time are never forgotten
    // for one another (a run of equal lastUpdated is kept whole: pass.ts rememberSeen).
    let clock = Date.now() - 3_600_000;
    h = await startHarness({
      seed: [...birthResources(0), ...birthResources(1)],
      worker: false,
      fhirClock: () => (clock += 10),
    });
  });
  after(async () => {
    await h?.close();
  });

  it('are kept to a count; one forgotten so is read again in the overlap and the ledger records nothing new', async () => {
    const source = h.bridge.sources[0];
    assert.ok(source);
    const poller = new FhirPoller({
      sourceId: source.settings.id,
      client: source.client,
      pipeline: source.pipeline,
      cursors: h.bridge.ledger,
      resourceTypes: source.mappings.watchedResourceTypes(),
      // The whole seed is inside the overlap on every pass: only the count can forget a version.
      poll: { ...source.settings.poll, overlapSeconds: 86_400 },
      logger: silentLogger,
      maxSeen: REMEMBERED,
    });
    await forgottenMappedAgain(poller, source.pipeline, h.rows, 2);
  });
});

describe('the versions a DHIS2 poller remembers as mapped', () => {
  let h: Dhis2Harness;
  before(async () => {
    h = await startDhis2Harness({ births: 5, deaths: 0, writeBack: false });
  });
  after(async () => {
    await h?.close();
  });

  it('are kept to a count; one forgotten so is read again in the overlap and the ledger records nothing new', async () => {
    const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
    assert.ok(source);
    const poller = new Dhis2Poller({
      sourceId: source.settings.id,
      client: source.client,
      pipeline: source.pipeline,
      cursors: h.bridge.ledger,
      dhis2: dhis2SettingsOf(source.settings),
      // The demo programme was updated in the last 12 hours: inside the overlap on every pass.
      poll: { ...source.settings.poll, overlapSeconds: 86_400 },
      logger: silentLogger,
      maxSeen: REMEMBERED,
    });
    await forgottenMappedAgain(poller, source.pipeline, h.rows, 5);
  });
});
