// DHIS2 simulator → bridge → OpenCRVS simulator over HTTP: births from the demo Child Programme and deaths
// from the sandbox death programme, each notified once, the tracking id written back to DHIS2, and the
// bridge's own write-back never coming back as a new or changed event.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import {
  ATTRIBUTES,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  ORG_UNITS,
  TRACKED_ENTITY_TYPE_PERSON,
} from '../../src/sandbox/dhis2/index.js';
import type { TrackedEntityList } from '../../src/sources/dhis2/client.js';
import { DHIS2_CURSOR } from '../../src/sources/dhis2/index.js';
import { FIRST_SYNC_CURSOR } from '../../src/sources/pass.js';
import {
  assertOneEventPerRow,
  BIRTHS_SOURCE,
  DEATHS_SOURCE,
  type Dhis2Harness,
  dataValueOf,
  enrolledIn,
  startDhis2Harness,
} from './helpers/dhis2-harness.js';

const BIRTHS = 7;
const BASIC = `Basic ${Buffer.from(`${DEFAULT_SANDBOX_AUTH.username}:${DEFAULT_SANDBOX_AUTH.password}`).toString('base64')}`;
const DEATHS = 4;

function attribute(te: { attributes?: Array<{ attribute: string; value: string | null }> }, uid: string) {
  return te.attributes?.find((a) => a.attribute === uid)?.value ?? undefined;
}

describe('DHIS2 tracker source end to end', () => {
  let h: Dhis2Harness;

  before(async () => {
    // A page size of 4 makes both programmes span several pages.
    h = await startDhis2Harness({ births: BIRTHS, deaths: DEATHS, pageSize: 4 });
  });
  after(async () => {
    await h?.close();
  });

  it('notifies every birth and death once, routed by org unit, and writes each tracking id back', async () => {
    const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.deepEqual(summary.failedSources, []);
    assert.equal(summary.report.mapped.inserted, BIRTHS + DEATHS);
    assert.ok(summary.ok, 'every row delivered');
    const rows = h.rows();
    assert.equal(rows.filter((r) => r.eventType === 'birth').length, BIRTHS);
    assert.equal(rows.filter((r) => r.eventType === 'death').length, DEATHS);
    const events = await h.events();
    assertOneEventPerRow(events, rows);

    // The declaration carries the child's and the mother's names from the tracked entity attributes.
    const children = enrolledIn(h.seeded, CHILD_PROGRAMME);
    const child = children[0];
    assert.ok(child?.trackedEntity);
    const childRow = rows.find((r) => r.subjectKey === `TrackedEntity/${child.trackedEntity}`);
    assert.ok(childRow, 'a ledger row per child');
    assert.match(childRow.sourceRef, /^Event\//, 'the birth-stage event is the trigger');
    const event = events.find((e) => e.trackingId === childRow.trackingId);
    assert.ok(event);
    const declaration = event.actions.find(
      (a) => a.type === 'NOTIFY' && Object.keys(a.declaration).length,
    )?.declaration;
    assert.deepEqual(declaration?.['child.name'], {
      firstname: attribute(child, ATTRIBUTES.firstName),
      surname: attribute(child, ATTRIBUTES.lastName),
    });
    const motherUid = child.relationships?.[0]?.to.trackedEntity?.trackedEntity;
    const mother = h.seeded.find((te) => te.trackedEntity === motherUid);
    assert.ok(mother, 'the demo child has a mother');
    assert.deepEqual(declaration?.['mother.name'], {
      firstname: attribute(mother, ATTRIBUTES.firstName),
      surname: attribute(mother, ATTRIBUTES.lastName),
    });
    // Routing: the org unit's route gives office and facility.
    const ngelehun = h.sim.locations.find((l) => l.externalId === 'xmJJAsGfSTn');
    const ngelehunFacility = h.sim.locations.find((l) => l.externalId === 't0qT1Vh8qi3');
    const routed = rows.filter((r) => {
      const te = h.seeded.find((t) => `TrackedEntity/${t.trackedEntity}` === r.subjectKey);
      return te?.enrollments?.[0]?.orgUnit === ORG_UNITS.ngelehunChc;
    });
    assert.ok(routed.length > 0, 'some records at Ngelehun CHC');
    for (const row of routed) {
      assert.equal(row.office, ngelehun?.id);
      assert.equal(row.facility, ngelehunFacility?.id);
    }

    // Write-back: the tracking id sits in the configured data element, written with importStrategy=UPDATE.
    for (const row of rows) {
      const uid = row.subjectKey.replace('TrackedEntity/', '');
      const [program, dataElement] =
        row.eventType === 'birth'
          ? [CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId]
          : [DEATH_PROGRAMME, DEATH_DATA_ELEMENTS.trackingId];
      assert.equal(dataValueOf(h.dhis2, uid, program, dataElement), row.trackingId, `tracking id on ${row.subjectKey}`);
      assert.equal(h.bridge.writeBacks?.store.get(row.id)?.outcome, 'written');
    }
    const writes = h.dhis2.writes();
    assert.equal(writes.length, BIRTHS + DEATHS, 'one import per write-back');
    for (const write of writes) {
      assert.equal(write.importStrategy, 'UPDATE');
      assert.equal(write.report.status, 'OK');
      assert.equal(write.payload.events?.length, 1);
      // The whole event as read: the required properties go back with it.
      assert.ok(write.payload.events?.[0]?.orgUnit && write.payload.events[0].programStage);
    }
    assert.ok(writes.some((w) => w.payload.events?.[0]?.programStage === BIRTH_STAGE));
  });

  it('reports each DHIS2 source in the poll lag metric, as the FHIR sources are', async () => {
    const { body } = await h.bridge.renderMetrics();
    for (const source of [BIRTHS_SOURCE, DEATHS_SOURCE])
      assert.match(
        body,
        new RegExp(`bridge_source_poll_lag_seconds\\{source="${source}",resource_type="TrackedEntity"\\} \\d`),
      );
    assert.doesNotMatch(body, /bridge_subscription_gaps_total\{source="dhis2/, 'no subscription, no gap count');
  });

  it('sees its own write-back on the next poll and records nothing new (unchanged payload, no second event)', async () => {
    const watermark = h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR);
    const before = h.rows();
    const writesBefore = h.dhis2.writes().length;

    const again = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    // Every written-back entity has a newer updatedAt: it is read and mapped again, to the same payload.
    assert.equal(again.report.mapped.unchanged, BIRTHS + DEATHS);
    assert.equal(again.report.mapped.inserted, 0);
    assert.equal(again.report.mapped.replaced, 0);
    assert.equal(again.report.mapped['updated-after-notification'], 0);
    assert.notEqual(
      h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR),
      watermark,
      'the watermark moved past the writes',
    );
    assert.equal((await h.events()).length, BIRTHS + DEATHS, 'no second OpenCRVS event');
    assert.equal(h.dhis2.writes().length, writesBefore, 'no second write-back');
    const after = h.rows();
    assert.deepEqual(
      after.map((r) => [r.id, r.state, r.trackingId, r.updatesAfterNotification]),
      before.map((r) => [r.id, r.state, r.trackingId, r.updatesAfterNotification]),
    );

    // A third pass inside the overlap window re-reads the same versions and skips them.
    const third = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.equal(third.report.subjects, 0);
    assert.equal((await h.events()).length, BIRTHS + DEATHS);
  });

  it('records a real change after notification on the same row, never as a new event', async () => {
    const [deceased] = enrolledIn(h.seeded, DEATH_PROGRAMME);
    assert.ok(deceased?.trackedEntity);
    const response = await fetch(`${h.dhis2.baseUrl}/_sandbox/seed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          trackedEntity: deceased.trackedEntity,
          trackedEntityType: deceased.trackedEntityType,
          orgUnit: deceased.orgUnit,
          attributes: [{ attribute: ATTRIBUTES.firstName, value: 'Corrected' }],
          updatedAt: new Date(Date.now() + 5000).toISOString().slice(0, 23),
        },
      ]),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(response.status, 200, await response.text());
    const pass = await h.bridge.syncOnce([DEATHS_SOURCE], { timeoutMs: 30_000 });
    assert.equal(pass.report.mapped['updated-after-notification'], 1);
    const row = h.bridge.ledger.findByKey(DEATHS_SOURCE, 'death', `TrackedEntity/${deceased.trackedEntity}`);
    assert.equal(row?.updatesAfterNotification, 1);
    assert.equal((await h.events()).length, BIRTHS + DEATHS);
  });
});

describe('DHIS2 tracker source: credentials and filters', () => {
  it('a wrong personal access token fails the source pass and moves no watermark', async () => {
    const h = await startDhis2Harness({
      births: 2,
      deaths: 1,
      writeBack: false,
      configure: ({ sources }) => {
        sources[0] = { ...sources[0], auth: { type: 'pat', token: 'd2pat_wrong' } };
      },
    });
    try {
      const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 10_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      assert.equal(summary.ok, false);
      assert.equal(h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR), undefined);
      const status = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE);
      assert.match(status?.lastError ?? '', /HTTP 401/);
      // It names what to fix, and not the token.
      assert.match(status?.lastError ?? '', /credentials in sources\[\]\.auth of source dhis2-births/);
      assert.doesNotMatch(status?.lastError ?? '', /d2pat_wrong/);
      // The other source (basic auth) is unaffected.
      assert.equal(h.rows().filter((r) => r.sourceId === DEATHS_SOURCE && r.state === 'delivered').length, 1);
    } finally {
      await h.close();
    }
  });

  it('an org unit DHIS2 does not know fails the pass with the setting to check', async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      writeBack: false,
      configure: ({ sources }) => {
        sources[0] = { ...sources[0], dhis2: { program: CHILD_PROGRAMME, orgUnits: ['SbxNoSuchOU'] } };
      },
    });
    try {
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 10_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      const status = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE);
      assert.match(
        status?.lastError ?? '',
        /HTTP 400: DHIS2 said "Organisation unit does not exist: SbxNoSuchOU" \(check sources\[\]\.dhis2 of source dhis2-births: program, orgUnits; run doctor\)/,
      );
    } finally {
      await h.close();
    }
  });

  it('a programme DHIS2 does not have fails the pass naming sources[].dhis2.program, not as an empty programme', async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      writeBack: false,
      configure: ({ sources }) => {
        sources[0] = { ...sources[0], dhis2: { program: 'IpHINAT79UX' } };
      },
    });
    try {
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 10_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      assert.equal(h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR), undefined);
      const status = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE);
      assert.match(
        status?.lastError ?? '',
        /HTTP 400 \(DHIS2 has no programme IpHINAT79UX: check sources\[\]\.dhis2\.program of source dhis2-births; run doctor\)/,
      );
    } finally {
      await h.close();
    }
  });

  it('keeps only records of dhis2.trackedEntityType, telling their type itself: DHIS2 refuses it with the programme', async () => {
    let other = '';
    const h = await startDhis2Harness({
      births: 3,
      deaths: 0,
      writeBack: false,
      // One child of another type in the programme (DHIS2's import would refuse it; the seed does not check).
      entities: (entities) => {
        const child = enrolledIn(entities, CHILD_PROGRAMME)[0];
        assert.ok(child?.trackedEntity);
        other = child.trackedEntity;
        child.trackedEntityType = 'SbxOtherTyp';
        return entities;
      },
      configure: ({ sources }) => {
        sources[0] = {
          ...sources[0],
          dhis2: { program: CHILD_PROGRAMME, trackedEntityType: TRACKED_ENTITY_TYPE_PERSON },
        };
      },
    });
    try {
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      assert.deepEqual(summary.failedSources, []);
      const expected = enrolledIn(h.seeded, CHILD_PROGRAMME)
        .map((te) => `TrackedEntity/${te.trackedEntity}`)
        .filter((key) => key !== `TrackedEntity/${other}`);
      assert.equal(expected.length, 2);
      assert.deepEqual(
        h
          .rows()
          .map((r) => r.subjectKey)
          .sort(),
        expected.sort(),
      );
    } finally {
      await h.close();
    }
  });

  it('polls only the configured org units', async () => {
    const h = await startDhis2Harness({
      births: 6,
      deaths: 0,
      writeBack: false,
      configure: ({ sources }) => {
        sources[0] = { ...sources[0], dhis2: { program: CHILD_PROGRAMME, orgUnits: [ORG_UNITS.ngelehunChc] } };
      },
    });
    try {
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const expected = enrolledIn(h.seeded, CHILD_PROGRAMME).filter(
        (te) => te.enrollments?.[0]?.orgUnit === ORG_UNITS.ngelehunChc,
      );
      assert.ok(expected.length > 0 && expected.length < 6, 'the demo spreads births over two facilities');
      assert.deepEqual(
        h
          .rows()
          .map((r) => r.subjectKey)
          .sort(),
        expected.map((te) => `TrackedEntity/${te.trackedEntity}`).sort(),
      );
    } finally {
      await h.close();
    }
  });
});

describe('DHIS2 tracker source: first sync window', () => {
  it('with poll.sinceDays, leaves records last updated before the window alone', async () => {
    const old = new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 23); // DHIS2's zoneless format
    let stale: Array<string | undefined> = [];
    const h = await startDhis2Harness({
      births: 6,
      deaths: 0,
      writeBack: false,
      // Every other child (and its mother) last changed 10 days ago: history the first sync skips.
      entities: (entities) => {
        const children = enrolledIn(entities, CHILD_PROGRAMME);
        stale = children.filter((_, i) => i % 2 === 0).map((te) => te.trackedEntity);
        return entities.map((te) => (stale.includes(te.trackedEntity) ? { ...te, updatedAt: old } : te));
      },
      configure: ({ sources }) => {
        sources[0] = { ...sources[0], poll: { sinceDays: 5 } };
      },
    });
    try {
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const recorded = h.rows().map((r) => r.subjectKey.replace('TrackedEntity/', ''));
      const recent = enrolledIn(h.seeded, CHILD_PROGRAMME)
        .map((te) => te.trackedEntity)
        .filter((id) => !stale.includes(id));
      assert.equal(stale.length, 3);
      assert.deepEqual(recorded.sort(), recent.sort());
      assert.ok(h.bridge.ledger.getCursor(BIRTHS_SOURCE, FIRST_SYNC_CURSOR), 'the start is kept for later passes');
    } finally {
      await h.close();
    }
  });
});

describe('DHIS2 tracker source: paging', () => {
  it('pages through a run of equal updatedAt timestamps longer than a page, and finds every record', async () => {
    const stamp = '2026-11-01T08:00:00.000';
    const h = await startDhis2Harness({
      births: 9,
      deaths: 0,
      pageSize: 4,
      writeBack: false,
      // One import stamps everything alike: keyset paging alone would loop on the first page.
      entities: (entities) =>
        entities.map((te) => ({
          ...te,
          updatedAt: stamp,
          enrollments: te.enrollments?.map((en) => ({
            ...en,
            updatedAt: stamp,
            events: en.events?.map((ev) => ({ ...ev, updatedAt: stamp })),
          })),
        })),
    });
    try {
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      assert.equal(summary.report.mapped.inserted, 9);
      assert.equal(h.rows().length, 9);
      assert.equal(h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR), stamp);
    } finally {
      await h.close();
    }
  });

  it('misses no record of such a run when one already read changes mid-pass and shifts the later pages', async () => {
    const stamp = '2026-01-05T08:00:00.000'; // a bulk import long ago: the run is far behind the overlap window
    const h = await startDhis2Harness({
      births: 9,
      deaths: 0,
      pageSize: 4,
      writeBack: false,
      entities: (entities) => entities.map((te) => sameStamp(te, stamp)),
      configure: ({ sources }) => {
        const [source] = sources;
        assert.ok(source);
        source.poll = { ...(source.poll as object), since: '2026-01-01T00:00:00.000' };
      },
    });
    try {
      const runtime = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(runtime);
      const client = runtime.client;
      const read = client.trackedEntityPage.bind(client);
      let calls = 0;
      client.trackedEntityPage = async (params) => {
        const page = await read(params);
        // After the second page of the run: a clinician corrects a child of that page, which leaves the run.
        const te = page.entities[0];
        if (++calls === 2 && te) {
          const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=UPDATE`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: BASIC },
            body: JSON.stringify({
              trackedEntities: [
                {
                  trackedEntity: te.trackedEntity,
                  trackedEntityType: te.trackedEntityType,
                  orgUnit: te.orgUnit,
                  attributes: [{ attribute: ATTRIBUTES.firstName, value: 'Corrected' }],
                },
              ],
            }),
          });
          assert.equal(res.status, 200);
        }
        return page;
      };
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const children = enrolledIn(h.seeded, CHILD_PROGRAMME).map((t) => `TrackedEntity/${t.trackedEntity}`);
      assert.deepEqual(
        h
          .rows()
          .map((r) => r.subjectKey)
          .sort(),
        children.sort(),
        'every child of the run recorded',
      );
    } finally {
      await h.close();
    }
  });
});

describe('DHIS2 tracker source: a run whose tie order depends on the page asked', () => {
  // Nine children imported at once, long ago, and three recorded since. The simulator orders equal timestamps
  // by a key of the page and page size asked, as PostgreSQL may under DHIS2 (ORDER BY a non-unique column with
  // LIMIT/OFFSET): a reading of the run by page numbers gives some children twice and others never.
  const stamp = '2026-01-05T08:00:00.000';
  const RUN = 9;
  const start = (simulator: { maxPageSize?: number }, logger?: Logger, run = RUN) =>
    startDhis2Harness({
      births: run + 3,
      deaths: 0,
      pageSize: 4,
      writeBack: false,
      simulator: { tieOrder: 'offset', ...simulator },
      logger,
      entities: (entities) => {
        const members = new Set(
          enrolledIn(entities, CHILD_PROGRAMME)
            .slice(0, run)
            .map((te) => te.trackedEntity),
        );
        return entities.map((te) => (members.has(te.trackedEntity) ? sameStamp(te, stamp) : te));
      },
      configure: ({ sources }) => {
        const [source] = sources;
        assert.ok(source);
        source.poll = { ...(source.poll as object), since: '2026-01-01T00:00:00.000' };
      },
    });
  /** The runtime's client, asking every page through `answer` (which may change it), and the counts asked. */
  const intercept = (h: Dhis2Harness, answer: (page: TrackedEntityList) => TrackedEntityList = (page) => page) => {
    const runtime = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
    assert.ok(runtime);
    const client = runtime.client;
    const read = client.trackedEntityPage.bind(client);
    const counted: string[] = [];
    client.trackedEntityPage = async (params) => {
      if (params.totalPages === 'true') counted.push(params.updatedAfter ?? '');
      return answer(await read(params));
    };
    return counted;
  };
  const passed = (h: Dhis2Harness) => (h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR) ?? '') > stamp;
  const children = (h: Dhis2Harness) =>
    enrolledIn(h.seeded, CHILD_PROGRAMME)
      .map((t) => `TrackedEntity/${t.trackedEntity}`)
      .sort();
  /** Every child of the run has one row, and each row one OpenCRVS event. */
  const assertEveryChildOnce = async (h: Dhis2Harness) => {
    assert.deepEqual(
      h
        .rows()
        .map((r) => r.subjectKey)
        .sort(),
      children(h),
      'every child recorded once',
    );
    assertOneEventPerRow(await h.events(), h.rows());
  };

  it('reads the run in one larger page when DHIS2 serves it, and moves the watermark past it in one pass', async () => {
    const h = await start({});
    try {
      const counted = intercept(h);
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      assert.ok(summary.ok, 'every row delivered');
      assert.ok(passed(h), 'the watermark passed the run');
      assert.deepEqual(counted, [], 'no paging inside the run, so nothing to count');
      await assertEveryChildOnce(h);
    } finally {
      await h.close();
    }
  });

  it("with pages capped below the run, DHIS2's count completes it within a few passes, every child sent once", async () => {
    const h = await start({ maxPageSize: 4 });
    try {
      const counted = intercept(h);
      let passes = 0;
      while (passes < 4 && !passed(h)) {
        passes++;
        await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      }
      assert.ok(passed(h), 'the watermark passed the run');
      // Counted once per pass: from 1 ms after the run's updatedAt first, then from it (see Dhis2Poller.runSize).
      assert.deepEqual(counted.slice(0, 2), ['2026-01-05T08:00:00.001', stamp]);
      assert.ok(counted.length <= 2 * passes, `at most two counts a pass (${counted.length} in ${passes})`);
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      assert.ok(summary.ok, 'every row delivered');
      await assertEveryChildOnce(h);
    } finally {
      await h.close();
    }
  });

  it("a run many pages long completes from the members read over passes, DHIS2's count reached, every child sent once", async () => {
    // 150 children at once, pages capped at 10: a reading gives about two thirds of them, so no pass's readings
    // hold them all, and a pass that started afresh would hold the watermark at the run for good. Carried from
    // pass to pass, four readings a pass (the first one is under way when the run is counted) leave about
    // 150 × e⁻⁴ ≈ 3 children unread after one pass and 150 × e⁻⁸ ≈ 0.05 after two; the pass after the one that
    // reads the last child completes the run if that one could not. Three passes, then, with margin.
    const h = await start({ maxPageSize: 10 }, undefined, 150);
    try {
      let passes = 0;
      while (passes < 6 && !passed(h)) {
        passes++;
        await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 60_000 });
      }
      assert.ok(passed(h), `the watermark passed the run (${passes} passes)`);
      assert.ok(passes <= 3, `within three passes (${passes})`);
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 60_000 });
      assert.ok(summary.ok, 'every row delivered');
      await assertEveryChildOnce(h);
    } finally {
      await h.close();
    }
  });

  it('without a total from DHIS2, holds the watermark at the run and warns, and records the children after it', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    const h = await start({ maxPageSize: 4 }, logger);
    try {
      const counted = intercept(h, (page) => ({ ...page, total: undefined }));
      for (let pass = 0; pass < 3; pass++) await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      assert.equal(h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR), stamp, 'held at the run');
      assert.equal(lines.filter((l) => l.includes('gave one record twice in a reading')).length, 3, 'warned each pass');
      // One count a pass: without the first total, the second is not asked.
      assert.deepEqual(counted, Array(3).fill('2026-01-05T08:00:00.001'));
      const later = enrolledIn(h.seeded, CHILD_PROGRAMME).filter((te) => te.updatedAt !== stamp);
      const recorded = new Set(h.rows().map((r) => r.subjectKey));
      for (const te of later) assert.ok(recorded.has(`TrackedEntity/${te.trackedEntity}`), 'a child after the run');
    } finally {
      await h.close();
    }
  });
});

/** One import stamps an entity, its enrollments and events alike. */
function sameStamp<T extends { updatedAt?: string; enrollments?: unknown[] }>(te: T, stamp: string): T {
  return {
    ...te,
    updatedAt: stamp,
    enrollments: (te.enrollments as { updatedAt?: string; events?: { updatedAt?: string }[] }[] | undefined)?.map(
      (en) => ({ ...en, updatedAt: stamp, events: en.events?.map((ev) => ({ ...ev, updatedAt: stamp })) }),
    ),
  };
}

describe('DHIS2 write-back leaves the rest of the record as it is', () => {
  it('an edit saved between the bridge reading the event and writing the tracking id survives', async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 0, pageSize: 4 });
    try {
      const runtime = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(runtime);
      const client = runtime.client;
      const read = client.event.bind(client);
      let edited = false;
      client.event = async (uid: string) => {
        const event = await read(uid);
        if (event && !edited) {
          edited = true;
          // Meanwhile a nurse corrects the weight: a normal UPDATE, the whole event as DHIS2 requires.
          const { createdAt: _c, updatedAt: _u, relationships: _r, notes: _n, ...rest } = event;
          const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=UPDATE`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: BASIC },
            body: JSON.stringify({
              events: [{ ...rest, dataValues: [{ dataElement: BIRTH_DATA_ELEMENTS.weightGrams, value: '3650' }] }],
            }),
          });
          assert.equal(res.status, 200);
        }
        return event;
      };
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const [row] = h.rows();
      assert.ok(row && edited);
      const uid = row.subjectKey.replace('TrackedEntity/', '');
      const value = (dataElement: string) => dataValueOf(h.dhis2, uid, CHILD_PROGRAMME, dataElement);
      assert.equal(value(BIRTH_DATA_ELEMENTS.weightGrams), '3650', "the nurse's correction is kept");
      assert.equal(value(BIRTH_DATA_ELEMENTS.trackingId), row.trackingId);
    } finally {
      await h.close();
    }
  });

  it('an attribute write-back keeps the tracked entity fields it does not change (geometry, inactive)', async () => {
    const TRACKING_ATTRIBUTE = 'SbxTrkIdAtt'; // a TEXT attribute a deployment would add for the tracking id
    const geometry = { type: 'Point', coordinates: [-11.7896, 8.2593] };
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      pageSize: 4,
      entities: (entities) => {
        const children = new Set(enrolledIn(entities, CHILD_PROGRAMME).map((t) => t.trackedEntity));
        return entities.map((te) => (children.has(te.trackedEntity) ? { ...te, geometry } : te));
      },
      configure: ({ sources }) => {
        const [source] = sources;
        assert.ok(source);
        source.writeBack = { attribute: TRACKING_ATTRIBUTE };
      },
    });
    try {
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const [row] = h.rows();
      assert.ok(row?.trackingId);
      const child = h.dhis2.trackedEntity(row.subjectKey.replace('TrackedEntity/', ''));
      assert.deepEqual(child?.geometry, geometry);
      assert.equal(attribute(child ?? {}, TRACKING_ATTRIBUTE), row.trackingId);
      assert.ok(attribute(child ?? {}, ATTRIBUTES.firstName), 'the other attributes are still there');
    } finally {
      await h.close();
    }
  });
});
