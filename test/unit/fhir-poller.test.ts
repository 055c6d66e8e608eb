// FhirPoller's cursor logic against an in-memory FHIR client: the watermark is the server's own
// lastUpdated, committed page by page with the page's results; the overlap re-reads recent changes
// and versions already seen are not evaluated twice; a catch-up never joins a pass that started earlier.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import type { PollSettings } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FhirPoller } from '../../src/sources/fhir/poller.js';
import { FIRST_SYNC_CURSOR, rememberSeen, rewoundWatermark } from '../../src/sources/pass.js';
import { RecordingPipeline, StubFhirClient, stamped } from '../integration/helpers/bridge-stubs.js';

function setup(poll: Partial<PollSettings> = {}, types = ['Patient'], maxPagesPerType?: number, maxSeen?: number) {
  const client = new StubFhirClient();
  const pipeline = new RecordingPipeline();
  const poller = new FhirPoller({
    sourceId: 'stub',
    client,
    pipeline,
    cursors: pipeline,
    resourceTypes: types,
    poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 10, pageSize: 2, ...poll },
    logger: silentLogger,
    maxPagesPerType,
    maxSeen,
  });
  return { client, pipeline, poller };
}

describe('FhirPoller', () => {
  it('reads everything on the first pass, sorted by _lastUpdated, or from `since` when configured', async () => {
    const { client, poller } = setup();
    await poller.pollOnce();
    assert.deepEqual(client.searches[0], { type: 'Patient', params: { _sort: '_lastUpdated', _count: '2' } });

    // The go-live boundary is taken as given: the overlap (for watermarks) does not reach before it.
    const withSince = setup({ since: '2020-01-01T00:00:00Z', overlapSeconds: 30 });
    await withSince.poller.pollOnce();
    assert.equal(withSince.client.searches[0]?.params._lastUpdated, 'ge2020-01-01T00:00:00.000Z');

    // Written without a zone it is UTC, like a date alone, whatever the bridge host's zone.
    const zone = process.env.TZ;
    process.env.TZ = 'America/Santiago';
    try {
      for (const since of ['2020-01-01T00:00:00', '2020-01-01']) {
        const zoneless = setup({ since });
        await zoneless.poller.pollOnce();
        assert.equal(zoneless.client.searches[0]?.params._lastUpdated, 'ge2020-01-01T00:00:00.000Z', since);
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('starts a first sync `sinceDays` before it first ran, and keeps that start after a failed pass', async () => {
    const { client, pipeline, poller } = setup({ sinceDays: 30, overlapSeconds: 0 }, ['Patient', 'Encounter']);
    const before = Date.now();
    const down = Promise.reject(new Error('stub: source down'));
    down.catch(() => undefined);
    client.gate = down; // the first pass fails on each type's first search, before any page is committed
    await assert.rejects(poller.pollOnce(), /source down/);
    client.gate = undefined;
    const start = pipeline.cursors.get(FIRST_SYNC_CURSOR);
    assert.ok(start, 'the chosen start is stored');
    const startMs = Date.parse(start);
    assert.ok(startMs >= before - 30 * 86_400_000 && startMs <= Date.now() - 30 * 86_400_000, start);

    await new Promise((resolve) => setTimeout(resolve, 5)); // the clock moves; the start must not
    await poller.pollOnce();
    const from = `ge${new Date(startMs).toISOString()}`;
    assert.deepEqual(
      client.searches.map((s) => `${s.type} ${s.params._lastUpdated}`),
      // The failed pass tried both types (one failing type does not stop the others), then the next pass.
      [`Patient ${from}`, `Encounter ${from}`, `Patient ${from}`, `Encounter ${from}`],
      'every type starts at the one stored start',
    );
  });

  it("takes the watermark from the server's lastUpdated (not the local clock), committed once the next search confirms it", async () => {
    const { client, pipeline, poller } = setup();
    client.put(stamped('Patient', 'a', '2001-01-01T00:00:01.000Z'));
    client.put(stamped('Patient', 'b', '2001-01-01T00:00:02.000Z'));
    client.put(stamped('Patient', 'c', '2001-01-01T00:00:03.000Z'));
    await poller.pollOnce();
    // Two pages of two and one. A page with more to come moves the watermark only to where it was read from
    // (here: nowhere yet); its newest lastUpdated is committed by the page after it, the search that shows
    // the server sorted. The last page commits its own newest.
    assert.deepEqual(pipeline.commits, [
      { refs: ['Patient/a/1', 'Patient/b/1'], cursor: undefined },
      { refs: ['Patient/c/1'], cursor: '2001-01-01T00:00:03.000Z' },
    ]);
    // The second page is a fresh search from the first page's newest lastUpdated (a keyset), not its `next`.
    assert.deepEqual(
      client.searches.map((s) => s.params._lastUpdated),
      [undefined, 'ge2001-01-01T00:00:02.000Z'],
    );
    assert.equal(client.followed.length, 0);
    assert.equal(poller.status.watermarks.Patient, '2001-01-01T00:00:03.000Z');
  });

  it('keeps a run of equal lastUpdated longer than the versions it remembers whole, so that a reading of it completes', async () => {
    // A reading of a run is complete once it finds nothing new (run-readings.ts): forgetting its first
    // members for the count made each reading find them new again, and the watermark never passed the run.
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 }, ['Patient'], undefined, 3);
    client.maxCount = 2;
    for (let i = 1; i <= 5; i++) client.put(stamped('Patient', `run${i}`, '2001-01-01T00:00:01.000Z'));
    client.put(stamped('Patient', 'after', '2001-01-01T00:00:02.000Z'));
    await poller.pollOnce();
    assert.equal(poller.status.watermarks.Patient, '2001-01-01T00:00:02.000Z', 'the watermark passed the run');
    // Each mapped once: the record after the run, on the run's last page, is remembered without pushing out
    // a member of the run being read (the next reading would find it new and map it again).
    assert.deepEqual([...pipeline.evaluated].sort(), [
      'Patient/after/1',
      ...Array.from({ length: 5 }, (_, i) => `Patient/run${i + 1}/1`),
    ]);
    const mapped = pipeline.evaluated.length;
    await poller.pollOnce();
    assert.equal(pipeline.evaluated.length, mapped, 'the next pass maps nothing again');
  });

  it('does not forget members of the run being read for the records after it on its last page', async () => {
    // The run's last page also holds the records after it: remembered, they pushed out the members read
    // before them, the next reading found those new, and so on until the run was given up (five readings),
    // every pass, the watermark held at the run for good.
    const tie = '2001-01-01T00:00:01.000Z';
    const read = async (maxSeen: number | undefined) => {
      const { client, pipeline, poller } = setup({ overlapSeconds: 0, pageSize: 4 }, ['Patient'], undefined, maxSeen);
      client.paging = 'offset';
      client.maxCount = 4;
      for (let i = 1; i <= 5; i++) client.put(stamped('Patient', `run${i}`, tie));
      for (let i = 1; i <= 3; i++) client.put(stamped('Patient', `after${i}`, `2001-01-01T00:00:0${i + 1}.000Z`));
      for (let i = 0; i < 20; i++) await poller.pollOnce().catch(() => undefined);
      return { watermark: pipeline.cursors.get('lastUpdated:Patient'), mapped: pipeline.evaluated };
    };
    const uncapped = await read(undefined);
    const capped = await read(3);
    assert.notEqual(capped.watermark, tie, 'the watermark passed the run');
    assert.equal(capped.watermark, uncapped.watermark);
    assert.equal(capped.mapped.length, uncapped.mapped.length, 'no more mapped than with nothing forgotten');
    assert.deepEqual([...new Set(capped.mapped)].sort(), [...uncapped.mapped].sort(), 'each version once');
  });

  it('reads at most maxPagesPerType pages of a type in one pass; the next pass goes on from its watermark', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 }, ['Patient'], 3);
    for (let i = 1; i <= 9; i++) client.put(stamped('Patient', `p${i}`, `2001-01-01T00:00:0${i}.000Z`));
    await poller.pollOnce();
    assert.equal(client.searches.length, 3, 'the pass ends after its third page');
    const firstPass = [...pipeline.evaluated];
    assert.ok(firstPass.length < 9, `read ${firstPass.length} of 9`);
    // The last page read had more to come: the watermark is where that page was read from.
    const from = `2001-01-01T00:00:0${firstPass.length - 1}.000Z`;
    assert.equal(poller.status.watermarks.Patient, from, 'the watermark is where the last page started');
    await poller.pollOnce();
    assert.equal(client.searches[3]?.params._lastUpdated, `ge${from}`);
    for (let pass = 0; pass < 5 && pipeline.evaluated.length < 9; pass++) await poller.pollOnce();
    assert.deepEqual(
      [...pipeline.evaluated].sort(),
      Array.from({ length: 9 }, (_, i) => `Patient/p${i + 1}/1`),
      'each once',
    );
  });

  it('re-reads the overlap window but evaluates only versions it has not seen', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 10 });
    client.put(stamped('Patient', 'a', '2001-01-01T00:00:01.000Z'));
    client.put(stamped('Patient', 'b', '2001-01-01T00:00:05.000Z'));
    await poller.pollOnce();
    client.put(stamped('Patient', 'a', '2001-01-01T00:00:06.000Z', '2'));
    client.put(stamped('Patient', 'c', '2001-01-01T00:00:06.000Z'));
    pipeline.evaluated.length = 0;
    await poller.pollOnce();
    assert.equal(client.searches[1]?.params._lastUpdated, 'ge2000-12-31T23:59:55.000Z', 'watermark minus overlap');
    assert.deepEqual(pipeline.evaluated.sort(), ['Patient/a/2', 'Patient/c/1'], 'b (seen) is not evaluated again');
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), '2001-01-01T00:00:06.000Z');
  });

  it('keeps the watermark of the last committed page when a later page fails, and the next pass resumes there', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 });
    for (let i = 1; i <= 5; i++) client.put(stamped('Patient', `p${i}`, `2001-01-01T00:00:0${i}.000Z`));
    // Each page asks again from the newest lastUpdated of the page before: [p1 p2] [p2 p3] [p3 p4], then a failure.
    // [p3 p4] was read from p3 and its newest (p4) was never confirmed by a next search: the watermark is p3.
    client.failSearchAfter = 3;
    await assert.rejects(poller.pollOnce());
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), '2001-01-01T00:00:03.000Z');
    assert.equal(poller.status.consecutiveFailures, 1);
    client.failSearchAfter = undefined;
    pipeline.evaluated.length = 0;
    await poller.pollOnce();
    assert.equal(client.searches[4]?.params._lastUpdated, 'ge2001-01-01T00:00:03.000Z');
    assert.deepEqual(pipeline.evaluated, ['Patient/p5/1'], 'p3 and p4, read again, are not evaluated twice');
    assert.equal(poller.status.consecutiveFailures, 0);
  });

  it('does not remember resources whose evaluation failed, so the next pass evaluates them again', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 });
    client.put(stamped('Patient', 'a', '2001-01-01T00:00:01.000Z'));
    pipeline.failEvaluate = () => true;
    await assert.rejects(poller.pollOnce());
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), undefined, 'no cursor without its rows');
    pipeline.failEvaluate = undefined;
    await poller.pollOnce();
    assert.deepEqual(pipeline.evaluated, ['Patient/a/1']);
  });

  it('a catch-up requested while a pass runs gets a pass that starts after the request (it sees the change)', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 });
    client.put(stamped('Patient', 'a', '2001-01-01T00:00:01.000Z'));
    let open: () => void = () => {};
    client.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const running = poller.pollOnce(); // its search has taken its snapshot and waits at the gate
    await new Promise((resolve) => setImmediate(resolve));
    client.put(stamped('Patient', 'b', '2001-01-01T00:00:02.000Z')); // a change after the pass began…
    const catchUp = poller.pollOnce(); // …announced by a notification while the pass still runs
    const again = poller.pollOnce(); // further requests meanwhile share the one queued pass
    assert.equal(catchUp, again);
    client.gate = undefined;
    open();
    await running;
    await catchUp;
    assert.deepEqual(pipeline.evaluated, ['Patient/a/1', 'Patient/b/1']);
    assert.equal(client.searches.length, 2, 'one running pass and one queued pass, not one per request');
    assert.equal(poller.busy, false);
  });
  // OpenMRS runs the query again for every `_getpages` link, sorted by the time each row changed: a record
  // edited while a pass pages moves to the end, and every later record moves back by one page position.
  it('a record edited while a pass pages through an offset-paging server (OpenMRS) hides no other record', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 30 });
    client.paging = 'offset';
    for (let i = 1; i <= 6; i++) client.put(stamped('Patient', `p${i}`, `2001-01-0${i}T00:00:00.000Z`));
    client.beforePage = (served) => {
      // Between the first and the second page, p1 is edited (its new time is the newest of all).
      if (served === 1) client.put(stamped('Patient', 'p1', '2001-01-09T00:00:00.000Z', '2'));
    };
    await poller.pollOnce();
    client.beforePage = undefined;
    await poller.pollOnce(); // a second pass changes nothing: nothing was left behind the watermark
    assert.deepEqual(pipeline.evaluated.sort(), [
      'Patient/p1/1',
      'Patient/p1/2',
      'Patient/p2/1',
      'Patient/p3/1',
      'Patient/p4/1',
      'Patient/p5/1',
      'Patient/p6/1',
    ]);
    assert.equal(poller.status.watermarks.Patient, '2001-01-09T00:00:00.000Z');
  });

  it('reads a run of resources sharing one lastUpdated, longer than a page, through `next` links and again until two readings agree', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 });
    client.paging = 'offset';
    client.maxCount = 2; // the server caps `_count`: a larger page cannot hold the run
    const tie = '2001-01-01T00:00:05.000Z';
    client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
    for (const id of ['t1', 't2', 't3', 't4', 't5']) client.put(stamped('Patient', id, tie));
    client.put(stamped('Patient', 'after', '2001-01-01T00:00:09.000Z'));
    let edited = false;
    client.beforePage = () => {
      // Once the run's first page (t1, t2) has been read by `next` links, t1 changes: it leaves the run,
      // and t3 slips back onto the page already read.
      if (!edited && client.followed.length === 1) {
        edited = true;
        client.put(stamped('Patient', 't1', '2001-01-01T00:00:07.000Z', '2'));
      }
    };
    await poller.pollOnce();
    assert.ok(edited);
    assert.deepEqual(pipeline.evaluated.sort(), [
      'Patient/after/1',
      'Patient/before/1',
      'Patient/t1/1',
      'Patient/t1/2',
      'Patient/t2/1',
      'Patient/t3/1',
      'Patient/t4/1',
      'Patient/t5/1',
    ]);
    assert.ok(client.followed.length > 0, 'the run was paged by its `next` links');
    assert.equal(poller.status.watermarks.Patient, '2001-01-01T00:00:09.000Z');
  });

  it('keeps the watermark at a run whose readings never agree, reads on past it, and the next pass reads it again', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 });
    client.paging = 'offset';
    client.maxCount = 2;
    const tie = '2001-01-01T00:00:05.000Z';
    client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
    for (const id of ['t1', 't2', 't3']) client.put(stamped('Patient', id, tie));
    client.put(stamped('Patient', 'after', '2001-01-01T00:00:09.000Z'));
    // Beyond the page where the run ends: read only if the pass goes on past the run.
    for (let i = 1; i <= 4; i++) client.put(stamped('Patient', `later${i}`, `2001-01-01T00:00:1${i}.000Z`));
    let n = 0;
    // A new member joins the run before every page: no two readings can agree.
    client.beforePage = () => client.put(stamped('Patient', `new${n++}`, tie));
    await poller.pollOnce();
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), tie, 'the watermark stays at the run');
    for (const id of ['after', 'later1', 'later2', 'later3', 'later4'])
      assert.ok(pipeline.evaluated.includes(`Patient/${id}/1`), `${id}, after the run, is read all the same`);
    // Once the run holds still, the next pass reads it twice alike and moves past it.
    client.beforePage = undefined;
    const searched = client.searches.length;
    await poller.pollOnce();
    assert.equal(client.searches[searched]?.params._lastUpdated, `ge${tie}`, 'the next pass starts at the run');
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), '2001-01-01T00:00:14.000Z');
  });

  it('against a server that ignores _sort, reads every page to the end before the watermark moves', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 });
    client.unsorted = true;
    client.put(stamped('Patient', 'new', '2001-01-01T00:00:09.000Z'));
    client.put(stamped('Patient', 'old', '2001-01-01T00:00:01.000Z'));
    client.put(stamped('Patient', 'mid1', '2001-01-01T00:00:04.000Z'));
    client.put(stamped('Patient', 'mid2', '2001-01-01T00:00:05.000Z'));
    client.failNextPageAfter = 0; // the pass breaks after its first page (new, old)
    await assert.rejects(poller.pollOnce());
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), undefined, 'no watermark from an unsorted page');
    client.failNextPageAfter = undefined;
    await poller.pollOnce();
    assert.deepEqual(pipeline.evaluated.sort(), ['Patient/mid1/1', 'Patient/mid2/1', 'Patient/new/1', 'Patient/old/1']);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), '2001-01-01T00:00:09.000Z');
  });
  // OpenMRS: meta.versionId is the changed time in ms, and that time is stored to the second.
  it('tells apart two saves of an OpenMRS record in the same second (a version id that is only a time)', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 30 });
    const at = '2001-01-01T00:00:05.000Z';
    const openmrs = (extra: Record<string, unknown>) =>
      ({ ...stamped('Patient', 'child', at, String(Date.parse(at))), ...extra }) as Resource;
    client.put(openmrs({}));
    await poller.pollOnce();
    client.put(openmrs({ birthDate: '2001-01-01' })); // the birth date, added within the same second
    await poller.pollOnce();
    await poller.pollOnce(); // the same content again: not evaluated a third time
    assert.equal(pipeline.evaluated.length, 2, pipeline.evaluated.join(', '));

    // A server with real version ids keeps the plain key: the same version is one evaluation.
    const hapi = setup({ overlapSeconds: 30 });
    hapi.client.put(stamped('Patient', 'child', at, '7'));
    await hapi.poller.pollOnce();
    await hapi.poller.pollOnce();
    assert.equal(hapi.pipeline.evaluated.length, 1);
  });
  it('goes on with the other resource types when one cannot be polled, and still fails the pass', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 }, ['Patient', 'Encounter']);
    client.put(stamped('Patient', 'a', '2001-01-01T00:00:01.000Z'));
    client.put(stamped('Encounter', 'e', '2001-01-01T00:00:02.000Z'));
    client.failSearchAfter = 0; // the Patient search fails…
    const searchPage = client.searchPage.bind(client);
    client.searchPage = async (type, params) => {
      if (type === 'Encounter') client.failSearchAfter = undefined; // …the Encounter search does not
      return searchPage(type, params);
    };
    await assert.rejects(poller.pollOnce(), /search failed/);
    assert.deepEqual(pipeline.evaluated, ['Encounter/e/1']);
    assert.equal(pipeline.cursors.get('lastUpdated:Encounter'), '2001-01-01T00:00:02.000Z');
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), undefined);
    assert.equal(poller.status.consecutiveFailures, 1);
  });
  it("never moves the watermark past the server's time: a resource stamped in the future hides no later birth", async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 30 });
    const iso = (ms: number) => new Date(ms).toISOString();
    client.put(stamped('Patient', 'stray', iso(Date.now() + 86_400_000))); // the EMR's clock ran a day ahead
    await poller.pollOnce();
    const watermark = Date.parse(pipeline.cursors.get('lastUpdated:Patient') ?? '');
    assert.ok(watermark <= Date.now(), 'held at the time of the answer (the stub gives none: this clock)');
    client.put(stamped('Patient', 'born', iso(Date.now()))); // recorded after the clock was put right
    await poller.pollOnce();
    assert.deepEqual(pipeline.evaluated.sort(), ['Patient/born/1', 'Patient/stray/1']);
  });
  it('stop() ends a pass after its current page, keeps what it committed, and starts no other', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 });
    for (let i = 1; i <= 6; i++) client.put(stamped('Patient', `p${i}`, `2001-01-01T00:00:0${i}.000Z`));
    client.beforePage = (served) => {
      if (served === 1) poller.stop(); // while the second page is being read
    };
    await poller.pollOnce();
    assert.equal(client.searches.length, 2, 'no page after the one in progress');
    // The second page ([p2 p3], read from p2) had more to come: the watermark is where it was read from.
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), '2001-01-01T00:00:02.000Z');
    await poller.pollOnce();
    assert.equal(client.searches.length, 2, 'no pass after stop');
  });
  it('stops, loudly, at a `next` link that goes round in a circle inside a run', async () => {
    const { client, poller } = setup({ overlapSeconds: 0 });
    client.maxCount = 2;
    for (const id of ['t1', 't2', 't3']) client.put(stamped('Patient', id, '2001-01-01T00:00:05.000Z'));
    let followed = 0;
    client.nextPage = async (page) => {
      followed++;
      return page; // the same page, with the same next link, again and again
    };
    await assert.rejects(poller.pollOnce(), /go round in a circle/);
    assert.ok(followed <= 2, `followed ${followed} times`);
  });
  // OpenMRS pages with SQL ORDER BY … LIMIT/OFFSET: resources sharing one lastUpdated come in no fixed
  // order, so paging through such a run returns some twice and others never.
  it('reads a run longer than a page whose ties come in no fixed order in one larger page', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0, pageSize: 5 });
    client.paging = 'offset';
    client.unstableTies = true;
    const tie = '2001-01-01T00:00:05.000Z';
    const run = Array.from({ length: 20 }, (_, i) => `t${i}`);
    for (const id of run) client.put(stamped('Patient', id, tie));
    for (let i = 1; i <= 4; i++) client.put(stamped('Patient', `after${i}`, `2001-01-01T00:00:0${5 + i}.000Z`));
    client.put(stamped('Patient', 'before', '2001-01-01T00:00:01.000Z'));
    await poller.pollOnce();
    assert.deepEqual(pipeline.evaluated.length, 25, pipeline.evaluated.join(' '));
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), '2001-01-01T00:00:09.000Z');
    assert.ok(
      client.searches.some((s) => Number(s.params._count) > 5),
      'a larger page was asked for',
    );
  });

  it('when even that cannot hold the run (the server caps the page), reads on past it with the watermark held', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0, pageSize: 5 });
    client.paging = 'offset';
    client.unstableTies = true;
    client.maxCount = 5;
    const tie = '2001-01-01T00:00:05.000Z';
    const run = Array.from({ length: 20 }, (_, i) => `t${i}`);
    for (const id of run) client.put(stamped('Patient', id, tie));
    const later = [1, 2, 3, 4].map((i) => `after${i}`);
    for (const [i, id] of later.entries()) client.put(stamped('Patient', id, `2001-01-01T00:00:0${6 + i}.000Z`));
    await poller.pollOnce();
    for (const id of later) assert.ok(pipeline.evaluated.includes(`Patient/${id}/1`), `${id} read`);
    const watermark = pipeline.cursors.get('lastUpdated:Patient');
    const missing = run.filter((id) => !pipeline.evaluated.includes(`Patient/${id}/1`));
    // The watermark may pass the run only if every member of it was read.
    if (missing.length > 0) assert.equal(watermark, tie, `missing ${missing.join(' ')}, yet the watermark moved`);
  });
  it('a pass whose calls shutdown cut off ends quietly: no failure is counted, nothing is committed', async () => {
    const { client, pipeline, poller } = setup({ overlapSeconds: 0 }, ['Patient', 'Encounter']);
    client.put(stamped('Patient', 'a', '2001-01-01T00:00:01.000Z'));
    client.searchPage = async () => {
      poller.stop(); // as Bridge.stop() does, then the client ends the call in flight
      throw new Error('search Patient: the bridge is stopping');
    };
    await poller.pollOnce();
    assert.equal(poller.status.consecutiveFailures, 0);
    assert.equal(pipeline.cursors.get('lastUpdated:Patient'), undefined);
  });
});

describe('rewoundWatermark: a stored watermark ahead of the source clock', () => {
  const at = (iso: string) => Date.parse(iso);
  const server = at('2026-03-01T10:00:00Z');
  it('leaves a watermark alone that is behind the server, or ahead by no more than the overlap', () => {
    for (const watermark of ['2026-03-01T09:00:00Z', '2026-03-01T10:00:00Z', '2026-03-01T10:00:02Z'])
      assert.equal(rewoundWatermark({ watermark: at(watermark), serverTime: server, overlapSeconds: 2 }), undefined);
    assert.equal(rewoundWatermark({ watermark: Number.NaN, serverTime: server, overlapSeconds: 2 }), undefined);
    assert.equal(rewoundWatermark({ watermark: server, serverTime: Number.NaN, overlapSeconds: 2 }), undefined);
  });
  it("moves one further ahead back to the server's time less the time since it last moved", () => {
    const watermark = at('2026-03-01T11:00:00Z');
    assert.equal(rewoundWatermark({ watermark, serverTime: server, overlapSeconds: 2 }), server);
    const now = at('2026-03-01T11:30:00Z');
    const movedAt = now - 600_000; // ten minutes ago, on this machine's clock
    assert.equal(
      rewoundWatermark({ watermark, serverTime: server, overlapSeconds: 2, movedAt, now }),
      server - 600_000,
    );
    // This machine's clock behind the stored time (it was put back too): never forward.
    assert.equal(rewoundWatermark({ watermark, serverTime: server, overlapSeconds: 2, movedAt: now + 5, now }), server);
  });
});

describe('rememberSeen: the versions a poller remembers, kept to a count', () => {
  it('forgets one for each one remembered past the count, never a member of the run being read', () => {
    const seen = new Map<string, number>();
    for (let i = 1; i <= 5; i++) rememberSeen(seen, `run${i}`, 1000, 3, 1000);
    assert.equal(seen.size, 5, 'a run longer than the count is kept whole');
    // A record after the run on its last page, the run still being read: none of its members goes.
    rememberSeen(seen, 'after1', 2000, 3, 1000);
    assert.deepEqual([...seen.keys()], ['run1', 'run2', 'run3', 'run4', 'run5', 'after1']);
    // Past the run, the oldest go first, one for each remembered: not all the count's excess at once.
    rememberSeen(seen, 'after2', 3000, 3, 2000);
    rememberSeen(seen, 'after3', 4000, 3, 3000);
    assert.deepEqual([...seen.keys()], ['run3', 'run4', 'run5', 'after1', 'after2', 'after3']);
  });
});
