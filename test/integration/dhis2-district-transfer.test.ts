// One DHIS2 programme split by district into two sources (disjoint orgUnits, docs/dhis2.md §4). A child
// whose enrollment moves from one district to the other (an ordinary tracker update: the mother moved, a
// referral) is new to the second source. Its versions must be recorded on the row the first source keeps
// (with the source that read them noted on it), never as a row of the second source's own: that would be
// a second OpenCRVS registration under transaction ids of its own, and a second tracking id written over
// the first in DHIS2. (The birth event keeps its org unit, which routes it: the declaration is the same.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BIRTH_DATA_ELEMENTS,
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  ORG_UNITS,
  type TrackedEntity,
} from '../../src/sandbox/dhis2/index.js';
import { type Dhis2Harness, dataValueOf, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

const BASIC = `Basic ${Buffer.from(`${DEFAULT_SANDBOX_AUTH.username}:${DEFAULT_SANDBOX_AUTH.password}`).toString('base64')}`;
const BO = 'dhis2-bo';
const GBENIKORO = 'dhis2-gbenikoro';

/** Two sources of the Child Programme: district Bo (Ngelehun CHC lies in it) and, disjoint, Gbenikoro MCHP. */
function startSplit(writeBack: boolean): Promise<Dhis2Harness> {
  return startDhis2Harness({
    births: 6,
    deaths: 0,
    writeBack,
    configure: ({ sources }) => {
      const births = sources[0] ?? {};
      sources.splice(
        0,
        sources.length,
        {
          ...births,
          id: BO,
          dhis2: { program: CHILD_PROGRAMME, orgUnits: [ORG_UNITS.bo], orgUnitMode: 'DESCENDANTS' },
        },
        {
          ...births,
          id: GBENIKORO,
          dhis2: { program: CHILD_PROGRAMME, orgUnits: [ORG_UNITS.gbenikoroMchp], orgUnitMode: 'SELECTED' },
        },
      );
    },
  });
}

/** A DHIS2 user per district, each able to see and capture only there (Basic auth in the simulator). */
const DISTRICT_USERS = {
  [BO]: { username: 'bo-clerk', password: 'bo-secret', organisationUnits: [ORG_UNITS.bo] },
  [GBENIKORO]: { username: 'gbenikoro-clerk', password: 'gb-secret', organisationUnits: [ORG_UNITS.gbenikoroMchp] },
};
/** A TEXT attribute a deployment adds for the tracking id (the simulator takes any attribute uid). */
const TRACKING_ATTRIBUTE = 'SbxTrkIdAtt';

/** The same split, each source with its own district's user, both writing the tracking id to an attribute. */
function startSplitByUser(outOfScopeRead: 'not-found' | 'forbidden'): Promise<Dhis2Harness> {
  return startDhis2Harness({
    births: 6,
    deaths: 0,
    simulator: { users: Object.values(DISTRICT_USERS), outOfScopeRead },
    configure: ({ sources }) => {
      const births = sources[0] ?? {};
      const as = (id: typeof BO | typeof GBENIKORO) => ({
        auth: { type: 'basic', username: DISTRICT_USERS[id].username, password: DISTRICT_USERS[id].password },
        writeBack: { attribute: TRACKING_ATTRIBUTE, maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 200 },
      });
      sources.splice(
        0,
        sources.length,
        {
          ...births,
          ...as(BO),
          id: BO,
          dhis2: { program: CHILD_PROGRAMME, orgUnits: [ORG_UNITS.bo], orgUnitMode: 'DESCENDANTS' },
        },
        {
          ...births,
          ...as(GBENIKORO),
          id: GBENIKORO,
          dhis2: { program: CHILD_PROGRAMME, orgUnits: [ORG_UNITS.gbenikoroMchp], orgUnitMode: 'SELECTED' },
        },
      );
    },
  });
}

function attributeOf(h: Dhis2Harness, uid: string, attribute: string): string | null | undefined {
  return h.dhis2.trackedEntity(uid)?.attributes?.find((a) => a.attribute === attribute)?.value;
}

/** Moves the child's enrollment in the programme to Gbenikoro MCHP, as the tracker API does. */
async function transfer(h: Dhis2Harness, child: TrackedEntity): Promise<void> {
  const en = child.enrollments?.[0];
  assert.ok(en?.enrollment);
  const moved = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=UPDATE`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: BASIC },
    body: JSON.stringify({
      enrollments: [
        {
          enrollment: en.enrollment,
          program: en.program,
          trackedEntity: child.trackedEntity,
          orgUnit: ORG_UNITS.gbenikoroMchp,
          status: en.status,
          enrolledAt: en.enrolledAt,
          occurredAt: en.occurredAt,
        },
      ],
    }),
  });
  assert.equal(moved.status, 200, await moved.text());
}

function childAtNgelehun(h: Dhis2Harness): TrackedEntity {
  const child = enrolledIn(h.seeded, CHILD_PROGRAMME).find(
    (te) => te.enrollments?.[0]?.orgUnit === ORG_UNITS.ngelehunChc,
  );
  assert.ok(child?.trackedEntity, 'a child at Ngelehun CHC (district Bo)');
  return child;
}

describe('DHIS2 district split: a child transferred to the other district', () => {
  it('after delivery: recorded on the first row, noted as read by the other source, sent once, its tracking id kept', async () => {
    const h = await startSplit(true);
    try {
      const first = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.ok(first.ok, 'the first pass delivers everything');
      const child = childAtNgelehun(h);
      const subject = `TrackedEntity/${child.trackedEntity}`;
      const [row] = h.rows().filter((r) => r.subjectKey === subject);
      assert.equal(row?.sourceId, BO);
      assert.ok(row.trackingId);
      const uid = String(child.trackedEntity);
      assert.equal(dataValueOf(h.dhis2, uid, CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId), row.trackingId);
      const eventsBefore = (await h.events()).length;

      await transfer(h, child);
      const second = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(second.failedSources, []);

      const rows = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual(
        rows.map((r) => [r.sourceId, r.state]),
        [[BO, 'delivered']],
        'no row of the second source for the child',
      );
      assert.equal(h.bridge.ledger.readBy(rows[0]?.id ?? 0), GBENIKORO, 'the row says which source read it');
      assert.equal((await h.events()).length, eventsBefore, 'no second OpenCRVS event');
      assert.equal(
        dataValueOf(h.dhis2, uid, CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId),
        row.trackingId,
        'the first tracking id stays in DHIS2',
      );

      // Read again by the second source (its next pass, a restart's overlap): still one row, unchanged.
      await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.equal(h.rows().filter((r) => r.subjectKey === subject).length, 1);
      assert.equal((await h.events()).length, eventsBefore);
    } finally {
      await h.close();
    }
  });

  it('before delivery: the waiting row takes what the other source read and goes out once', async () => {
    const h = await startSplit(false);
    try {
      const child = childAtNgelehun(h);
      const subject = `TrackedEntity/${child.trackedEntity}`;
      // The other district's births go out (which resolves the offices); then the first source reads its
      // own, and nothing delivers them yet.
      assert.ok((await h.bridge.syncOnce([GBENIKORO], { timeoutMs: 30_000 })).ok);
      const bo = h.bridge.dhis2Sources.find((s) => s.settings.id === BO);
      const read = await bo?.poller.pollOnce();
      assert.ok((read?.mapped.inserted ?? 0) > 0);
      const [row] = h.rows().filter((r) => r.subjectKey === subject);
      assert.equal(row?.state, 'pending');

      await transfer(h, child);
      const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.ok(summary.ok, JSON.stringify(summary.failedSources));
      const rows = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual(
        rows.map((r) => [r.sourceId, r.state]),
        [[BO, 'delivered']],
      );
      assert.equal(h.bridge.ledger.readBy(rows[0]?.id ?? 0), GBENIKORO);
      const events = await h.events();
      assert.equal(events.length, h.rows().length, 'one OpenCRVS event per birth');
    } finally {
      await h.close();
    }
  });

  // DHIS2 answers the Bo user's read 404 since dhis2-core #20280, 403 OWNERSHIP_ACCESS_DENIED before it.
  for (const outOfScopeRead of ['not-found', 'forbidden'] as const)
    it(`with a user per district: the tracking id goes back through the source whose user DHIS2 shows it to now (${outOfScopeRead})`, async () => {
      const h = await startSplitByUser(outOfScopeRead);
      try {
        const child = childAtNgelehun(h);
        const uid = String(child.trackedEntity);
        const subject = `TrackedEntity/${uid}`;
        assert.ok((await h.bridge.syncOnce([GBENIKORO], { timeoutMs: 30_000 })).ok);
        const bo = h.bridge.dhis2Sources.find((s) => s.settings.id === BO);
        assert.ok(((await bo?.poller.pollOnce())?.mapped.inserted ?? 0) > 0);
        assert.equal(h.rows().find((r) => r.subjectKey === subject)?.state, 'pending');

        // Transferred before its delivery: its program owner is now Gbenikoro MCHP, outside the Bo user's scope.
        await transfer(h, child);
        const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
        assert.ok(summary.ok, JSON.stringify(summary));
        const [row] = h.rows().filter((r) => r.subjectKey === subject);
        assert.deepEqual([row?.sourceId, row?.state], [BO, 'delivered']);
        assert.ok(row?.trackingId);
        assert.equal(h.bridge.ledger.readBy(row.id), GBENIKORO);
        const job = h.bridge.writeBacks?.store.get(row.id);
        assert.equal(job?.outcome, 'written', JSON.stringify(job));
        assert.equal(job.sourceId, BO, 'still the job of the row that delivered it');
        assert.equal(attributeOf(h, uid, TRACKING_ATTRIBUTE), row.trackingId, 'the tracking id is in DHIS2');
        // The births that stayed in Bo are written back by the Bo source, as ever.
        const stayed = h.rows().filter((r) => r.sourceId === BO && r.id !== row.id);
        assert.ok(stayed.length > 0);
        for (const other of stayed)
          assert.equal(
            attributeOf(h, other.subjectKey.replace('TrackedEntity/', ''), TRACKING_ATTRIBUTE),
            other.trackingId,
          );
        assert.equal(summary.writeBacks?.abandoned ?? 0, 0, JSON.stringify(summary.writeBacks?.failures));
      } finally {
        await h.close();
      }
    });
});
