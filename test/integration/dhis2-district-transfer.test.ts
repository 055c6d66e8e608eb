// One DHIS2 programme split by district into two sources (disjoint orgUnits, docs/dhis2.md §4). A child
// whose enrollment moves from one district to the other (an ordinary tracker update: the mother moved, a
// referral) is new to the second source. Its versions must be recorded on the row the first source keeps
// (with the source that read them noted on it), never as a row of the second source's own: that would be
// a second OpenCRVS registration under transaction ids of its own, and a second tracking id written over
// the first in DHIS2. (The birth event keeps its org unit, which routes it: the declaration is the same.)
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import {
  BIRTH_DATA_ELEMENTS,
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  ORG_UNITS,
  type TrackedEntity,
} from '../../src/sandbox/dhis2/index.js';
import { Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { sleep } from './helpers/bridge-harness.js';
import { type Dhis2Harness, dataValueOf, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';
import {
  answerJson,
  dhis2Error,
  type FaultProxy,
  forbiddenPage,
  startFaultProxy,
  unavailable,
} from './helpers/fault-proxy.js';

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

/** A third source, listed between them: the country's root org unit alone, its user capturing everywhere. */
const NATIONAL = 'dhis2-national';
const NATIONAL_USER = {
  username: 'national-clerk',
  password: 'nat-secret',
  organisationUnits: [ORG_UNITS.sierraLeone],
};

/** Writes the tracking id to a TEXT attribute (the simulator takes any attribute uid). */
const TO_ATTRIBUTE = { attribute: TRACKING_ATTRIBUTE };

/**
 * The same split, each source with its own district's user, both writing the tracking id back (to an
 * attribute unless told otherwise).
 */
function startSplitByUser(
  outOfScopeRead: 'not-found' | 'forbidden',
  delivery?: Record<string, unknown>,
  national = false,
  writeTo: Record<string, unknown> = TO_ATTRIBUTE,
  /** Both sources reach the simulator through this proxy (one baseUrl still: one server). */
  proxy?: FaultProxy,
): Promise<Dhis2Harness> {
  return startDhis2Harness({
    births: 6,
    deaths: 0,
    ...(delivery ? { delivery } : {}),
    simulator: { users: [...Object.values(DISTRICT_USERS), NATIONAL_USER], outOfScopeRead },
    configure: ({ sources }) => {
      if (proxy) proxy.target = String(sources[0]?.baseUrl);
      const births = { ...sources[0], ...(proxy ? { baseUrl: proxy.url } : {}) };
      const users = { ...DISTRICT_USERS, [NATIONAL]: NATIONAL_USER };
      const as = (id: keyof typeof users) => ({
        auth: { type: 'basic', username: users[id].username, password: users[id].password },
        writeBack: { ...writeTo, maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 200 },
        // Behind the proxy, the calls its pages answer are tried their three times 10 ms apart, not 0.5 s
        // then 1 s: what a test proves is what the bridge makes of a call that failed through its tries.
        ...(proxy ? { retry: { baseDelayMs: 10 } } : {}),
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
        ...(national
          ? [
              {
                ...births,
                ...as(NATIONAL),
                id: NATIONAL,
                dhis2: { program: CHILD_PROGRAMME, orgUnits: [ORG_UNITS.sierraLeone], orgUnitMode: 'SELECTED' },
              },
            ]
          : []),
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

/** Moves the child's enrollment in the programme (Gbenikoro MCHP by default), as the tracker API does. */
async function transfer(
  h: Dhis2Harness,
  child: TrackedEntity,
  orgUnit: string = ORG_UNITS.gbenikoroMchp,
): Promise<void> {
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
          orgUnit,
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

  // Without writeBack.programStage the data element goes on the trigger event, which DHIS2 no longer shows
  // the Bo user either (404; 403 on 2.41): that read is tried through the other sources too.
  for (const outOfScopeRead of ['not-found', 'forbidden'] as const)
    it(`with a user per district and no programStage: the trigger event is written through the other source (${outOfScopeRead})`, async () => {
      const h = await startSplitByUser(outOfScopeRead, undefined, false, {
        dataElement: BIRTH_DATA_ELEMENTS.trackingId,
      });
      try {
        const child = childAtNgelehun(h);
        const uid = String(child.trackedEntity);
        assert.ok((await h.bridge.syncOnce([GBENIKORO], { timeoutMs: 30_000 })).ok);
        const bo = h.bridge.dhis2Sources.find((s) => s.settings.id === BO);
        assert.ok(((await bo?.poller.pollOnce())?.mapped.inserted ?? 0) > 0);

        await transfer(h, child);
        const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
        assert.ok(summary.ok, JSON.stringify(summary));
        const [row] = h.rows().filter((r) => r.subjectKey === `TrackedEntity/${uid}`);
        assert.deepEqual([row?.sourceId, row?.state], [BO, 'delivered']);
        assert.ok(row?.trackingId);
        const job = h.bridge.writeBacks?.store.get(row.id);
        assert.equal(job?.outcome, 'written', JSON.stringify(job));
        assert.equal(dataValueOf(h.dhis2, uid, CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId), row.trackingId);
      } finally {
        await h.close();
      }
    });
});

// The recheck before a waiting row's first send, and a replay, read the record again: as the row's own
// source they got the Bo user's 404 for a child transferred meanwhile, and the row was held dead (and a
// replay kept it so) though the other district's source, whose user DHIS2 shows it to, reads the same record.
describe('DHIS2 district split, a user per district: a waiting child transferred before its recheck', () => {
  /** The Bo births recorded and waiting (delivery.recheckAfterSeconds: 1), Gbenikoro's delivered. */
  async function boWaiting(outOfScopeRead: 'not-found' | 'forbidden' = 'not-found') {
    const h = await startSplitByUser(outOfScopeRead, { settleSeconds: 1, recheckAfterSeconds: 1 });
    assert.ok((await h.bridge.syncOnce([GBENIKORO], { timeoutMs: 30_000 })).ok);
    const bo = h.bridge.dhis2Sources.find((s) => s.settings.id === BO);
    assert.ok(((await bo?.poller.pollOnce())?.mapped.inserted ?? 0) > 0);
    return h;
  }

  /** Lets the settle and recheck thresholds (1 s) pass, then runs the worker (no poll) until nothing is due. */
  async function deliverDue(h: Dhis2Harness): Promise<void> {
    await sleep(1_100);
    await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
  }

  async function eventsOf(h: Dhis2Harness, createTransactionId: string | null | undefined) {
    return (await h.events()).filter((ev) =>
      ev.actions.some((a) => a.type === 'CREATE' && a.transactionId === createTransactionId),
    );
  }

  for (const outOfScopeRead of ['not-found', 'forbidden'] as const)
    it(`is read through the source whose user DHIS2 shows it to, and goes out once on its own row (${outOfScopeRead})`, async () => {
      const h = await boWaiting(outOfScopeRead);
      try {
        const child = childAtNgelehun(h);
        const uid = String(child.trackedEntity);
        const subject = `TrackedEntity/${uid}`;
        const [waiting] = h.rows().filter((r) => r.subjectKey === subject);
        assert.deepEqual([waiting?.sourceId, waiting?.state], [BO, 'pending']);
        const eventsBefore = (await h.events()).length;

        // The Gbenikoro user's reads of the child in the programme (a spy: each goes to the simulator).
        const gbenikoro = h.bridge.dhis2Sources.find((s) => s.settings.id === GBENIKORO);
        assert.ok(gbenikoro);
        const read = gbenikoro.client.trackedEntity.bind(gbenikoro.client);
        let readsOfChild = 0;
        gbenikoro.client.trackedEntity = (te, params, options) => {
          if (te === uid && params?.program) readsOfChild++;
          return read(te, params, options);
        };

        await transfer(h, child);
        await deliverDue(h);
        assert.equal(readsOfChild, 1, 'asked once, and what it read is what is mapped');

        const rows = h.rows().filter((r) => r.subjectKey === subject);
        assert.deepEqual(
          rows.map((r) => [r.sourceId, r.state]),
          [[BO, 'delivered']],
          JSON.stringify(rows[0]?.lastError),
        );
        const [row] = rows;
        assert.ok(row);
        assert.equal(row.createTransactionId, waiting?.createTransactionId, 'the same transaction ids');
        assert.equal(h.bridge.ledger.readBy(row.id), GBENIKORO, 'the row says which source read it');
        const events = await eventsOf(h, row.createTransactionId);
        assert.equal(events.length, 1, 'one OpenCRVS event');
        assert.equal(events[0]?.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted').length, 1);
        // The Bo births that stayed went out too, each once.
        const bo = h.rows().filter((r) => r.sourceId === BO);
        assert.ok(bo.every((r) => r.state === 'delivered'));
        assert.equal((await h.events()).length, eventsBefore + bo.length);
        // Its tracking id goes back through the user DHIS2 shows the record to (WriteBackRunner.writeThrough).
        await h.bridge.writeBacks?.drain({ timeoutMs: 20_000 });
        assert.equal(h.bridge.writeBacks?.store.get(row.id)?.outcome, 'written');
        assert.equal(attributeOf(h, uid, TRACKING_ATTRIBUTE), row.trackingId);
      } finally {
        await h.close();
      }
    });

  it('asks the source that last read the record for the row first, the others not at all once it is shown it', async () => {
    const h = await startSplitByUser('not-found', { settleSeconds: 1, recheckAfterSeconds: 1 }, true);
    try {
      assert.ok((await h.bridge.syncOnce([GBENIKORO], { timeoutMs: 30_000 })).ok);
      const source = (id: string) => {
        const found = h.bridge.dhis2Sources.find((s) => s.settings.id === id);
        assert.ok(found, id);
        return found;
      };
      assert.ok(((await source(BO).poller.pollOnce()).mapped.inserted ?? 0) > 0);
      const child = childAtNgelehun(h);
      const uid = String(child.trackedEntity);
      const subject = `TrackedEntity/${uid}`;
      // Transferred, and read by the Gbenikoro source's poll: recorded on the Bo row, which still waits.
      await transfer(h, child);
      await source(GBENIKORO).poller.pollOnce();
      const [waiting] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual([waiting?.sourceId, waiting?.state], [BO, 'pending']);
      assert.equal(h.bridge.ledger.readBy(waiting?.id ?? 0), GBENIKORO);
      // The national source, listed before it, is shown the child too: asked first, it would read it.
      const national = source(NATIONAL).client;
      const read = national.trackedEntity.bind(national);
      let nationalReads = 0;
      national.trackedEntity = (te, params, options) => {
        if (te === uid) nationalReads++;
        return read(te, params, options);
      };

      await deliverDue(h);
      const [row] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual([row?.sourceId, row?.state], [BO, 'delivered']);
      assert.equal(h.bridge.ledger.readBy(row?.id ?? 0), GBENIKORO);
      assert.equal(nationalReads, 0);
      assert.equal((await eventsOf(h, row?.createTransactionId)).length, 1);
    } finally {
      await h.close();
    }
  });

  it('withdrawn when deleted after the move, though only the other district user lists it as deleted', async () => {
    const h = await boWaiting();
    try {
      const child = childAtNgelehun(h);
      const subject = `TrackedEntity/${child.trackedEntity}`;
      await transfer(h, child);
      const deleted = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=DELETE`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: BASIC },
        body: JSON.stringify({ trackedEntities: [{ trackedEntity: child.trackedEntity }] }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(deleted.status, 200, await deleted.text());
      await deliverDue(h);
      const [row] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual(
        [row?.sourceId, row?.state, row?.skipReason],
        [BO, 'skipped', 'deleted in the source before it was sent'],
        JSON.stringify(row?.lastError),
      );
      assert.deepEqual(await eventsOf(h, row?.createTransactionId), [], 'not sent');
    } finally {
      await h.close();
    }
  });

  it("held dead when no source's user is shown it, saying so; replayed once one is, it goes out once", async () => {
    const h = await boWaiting();
    try {
      const child = childAtNgelehun(h);
      const subject = `TrackedEntity/${child.trackedEntity}`;
      // To an org unit neither district's user captures in.
      await transfer(h, child, ORG_UNITS.sierraLeone);
      await deliverDue(h);
      const [held] = h.rows().filter((r) => r.subjectKey === subject);
      assert.ok(held);
      assert.deepEqual([held.sourceId, held.state, held.lastError?.kind], [BO, 'dead', 'source-read']);
      assert.match(
        held.lastError?.message ?? '',
        new RegExp(
          `Nor does DHIS2 show it to the user of ${GBENIKORO} \\(404\\).*: no configured source's user is shown it`,
        ),
      );
      assert.deepEqual(await eventsOf(h, held.createTransactionId), []);

      // Replayed too early: still no user shown it, still dead.
      assert.deepEqual((await h.bridge.replay([held.id])).requeued, []);

      // Now in the other district: the replay reads it through that source's user and requeues it.
      await transfer(h, child);
      assert.deepEqual((await h.bridge.replay([held.id])).requeued, [held.id]);
      await deliverDue(h);
      const [row] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual([row?.sourceId, row?.state], [BO, 'delivered']);
      assert.equal(h.bridge.ledger.readBy(row?.id ?? 0), GBENIKORO);
      assert.equal((await eventsOf(h, held.createTransactionId)).length, 1, 'one OpenCRVS event');
      assert.equal(h.rows().filter((r) => r.subjectKey === subject).length, 1);
    } finally {
      await h.close();
    }
  });
});

describe('DHIS2 district split, a user per district: the other source cannot be asked', () => {
  it('holds the waiting child dead saying so, not sent as recorded; a replay asks again', async () => {
    const h = await startSplitByUser('not-found', { settleSeconds: 1, recheckAfterSeconds: 1 });
    try {
      assert.ok((await h.bridge.syncOnce([GBENIKORO], { timeoutMs: 30_000 })).ok);
      const bo = h.bridge.dhis2Sources.find((s) => s.settings.id === BO);
      assert.ok(((await bo?.poller.pollOnce())?.mapped.inserted ?? 0) > 0);
      const child = childAtNgelehun(h);
      const uid = String(child.trackedEntity);
      const subject = `TrackedEntity/${uid}`;
      const gbenikoro = h.bridge.dhis2Sources.find((s) => s.settings.id === GBENIKORO);
      assert.ok(gbenikoro);
      // DHIS2 answers the Gbenikoro user's read of it 500 through every retry (the client's own error): its
      // own failure, which may concern the record, unlike a gateway's 503 (the row then waits: see below).
      const read = gbenikoro.client.trackedEntity.bind(gbenikoro.client);
      let failing = true;
      gbenikoro.client.trackedEntity = async (te, params, options) => {
        if (failing && te === uid) throw new Dhis2SourceError('read tracked entity failed: HTTP 500', 500, true);
        return read(te, params, options);
      };

      await transfer(h, child);
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      const [held] = h.rows().filter((r) => r.subjectKey === subject);
      assert.ok(held);
      assert.deepEqual([held.sourceId, held.state, held.lastError?.kind], [BO, 'dead', 'source-read']);
      assert.match(
        held.lastError?.message ?? '',
        new RegExp(`could not be asked through ${GBENIKORO} \\(read tracked entity failed: HTTP 500\\)`),
      );
      const sent = (await h.events()).filter((ev) =>
        ev.actions.some((a) => a.type === 'CREATE' && a.transactionId === held.createTransactionId),
      );
      assert.deepEqual(sent, [], 'not sent as recorded');

      failing = false;
      assert.deepEqual((await h.bridge.replay([held.id])).requeued, [held.id]);
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      const [row] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual([row?.sourceId, row?.state], [BO, 'delivered']);
      const events = (await h.events()).filter((ev) =>
        ev.actions.some((a) => a.type === 'CREATE' && a.transactionId === held.createTransactionId),
      );
      assert.equal(events.length, 1);
    } finally {
      await h.close();
    }
  });
});

// Both sources behind the fault proxy, which answers a chosen user's list call (includeDeleted=true) itself:
// what DHIS2 itself never answers (one user's list saying live what another's says deleted), a proxy's page,
// a failure of DHIS2's own.
describe('DHIS2 district split, a user per district: the deleted-or-not lists of a child no user may read', () => {
  /** The Bo births recorded and waiting (delivery.recheckAfterSeconds: 1), both sources behind `proxy`. */
  async function boWaitingBehind(proxy: FaultProxy): Promise<Dhis2Harness> {
    const h = await startSplitByUser(
      'not-found',
      { settleSeconds: 1, recheckAfterSeconds: 1 },
      false,
      TO_ATTRIBUTE,
      proxy,
    );
    assert.ok((await h.bridge.syncOnce([GBENIKORO], { timeoutMs: 30_000 })).ok);
    const bo = h.bridge.dhis2Sources.find((s) => s.settings.id === BO);
    assert.ok(((await bo?.poller.pollOnce())?.mapped.inserted ?? 0) > 0);
    return h;
  }

  /** The list call for `uid` with includeDeleted=true, made as the user of `source` (trackedEntityListing). */
  function listsFor(source: keyof typeof DISTRICT_USERS, uid: string) {
    const { username, password } = DISTRICT_USERS[source];
    const auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    return (req: IncomingMessage): boolean => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      return (
        req.method === 'GET' &&
        url.pathname === '/api/tracker/trackedEntities' &&
        url.searchParams.get('includeDeleted') === 'true' &&
        url.searchParams.get('trackedEntities') === uid &&
        req.headers.authorization === auth
      );
    };
  }

  /** The read of `uid` in the programme, made as the user of `source` (readInProgram). */
  function readsFor(source: keyof typeof DISTRICT_USERS, uid: string) {
    const { username, password } = DISTRICT_USERS[source];
    const auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    return (req: IncomingMessage): boolean => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      return (
        req.method === 'GET' &&
        url.pathname === `/api/tracker/trackedEntities/${uid}` &&
        url.searchParams.get('program') === CHILD_PROGRAMME &&
        req.headers.authorization === auth
      );
    };
  }

  async function deleteInDhis2(h: Dhis2Harness, child: TrackedEntity): Promise<void> {
    const deleted = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=DELETE`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: BASIC },
      body: JSON.stringify({ trackedEntities: [{ trackedEntity: child.trackedEntity }] }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(deleted.status, 200, await deleted.text());
  }

  /**
   * Past the recheck threshold, runs the worker round by round (runUntilIdle would wait for the waiting
   * row) until the proxy has answered (`answered` above 0) and, `othersGo`, the other Bo rows are delivered.
   */
  async function recheckWhileAnswered(
    h: Dhis2Harness,
    answered: () => number,
    childRowId: number,
    othersGo: boolean,
  ): Promise<void> {
    await sleep(1_100);
    const othersDelivered = () =>
      h.rows().every((r) => r.sourceId !== BO || r.id === childRowId || r.state === 'delivered');
    const done = () => answered() > 0 && (!othersGo || othersDelivered());
    for (let round = 0; round < 100 && !done(); round++) {
      await h.bridge.worker.processNext();
      await sleep(20);
    }
    assert.ok(answered() > 0, 'the list call met the answer of the proxy');
    if (othersGo) assert.ok(othersDelivered(), "the other Bo births went out: only the child's row waits");
  }

  // Bo's own list says live, Gbenikoro's (the district it moved to before its deletion) says deleted; or Bo's
  // says deleted (deleted where it was) and Gbenikoro's says live. Either way a live vetoes the withdrawal.
  for (const liar of [BO, GBENIKORO] as const)
    it(`waits, neither withdrawn nor dead, while the other list says live (${liar}'s); withdrawn once they agree`, async () => {
      const proxy = await startFaultProxy();
      const h = await boWaitingBehind(proxy);
      try {
        const child = childAtNgelehun(h);
        const uid = String(child.trackedEntity);
        const subject = `TrackedEntity/${uid}`;
        const [waiting] = h.rows().filter((r) => r.subjectKey === subject);
        assert.ok(waiting);
        if (liar === BO) await transfer(h, child);
        await deleteInDhis2(h, child);
        let lied = 0;
        const isListing = listsFor(liar, uid);
        proxy.rules.push((req) => {
          if (!isListing(req)) return undefined;
          lied++;
          return answerJson(200, {
            pager: { page: 1, pageSize: 50 },
            trackedEntities: [{ trackedEntity: uid, deleted: false }],
          });
        });

        await recheckWhileAnswered(h, () => lied, waiting.id, true);
        const [row] = h.rows().filter((r) => r.subjectKey === subject);
        assert.deepEqual(
          [row?.sourceId, row?.state, row?.skipReason],
          [BO, 'pending', null],
          JSON.stringify(row?.lastError),
        );
        assert.deepEqual(
          (await h.events()).filter((ev) => ev.actions.some((a) => a.transactionId === waiting.createTransactionId)),
          [],
          'not sent',
        );

        // The lists agree now: the next recheck withdraws it.
        proxy.rules.length = 0;
        await sleep(1_100);
        await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
        const [settled] = h.rows().filter((r) => r.subjectKey === subject);
        assert.deepEqual(
          [settled?.state, settled?.skipReason],
          ['skipped', 'deleted in the source before it was sent'],
        );
      } finally {
        await h.close();
        await proxy.close();
      }
    });

  // A page that is not DHIS2's says nothing of the record, nor does a gateway's 503 while DHIS2 restarts
  // (before, that held the row dead, "could not be asked", for a person to replay): as for a read, the row
  // waits, alone (the other Bo births go out), and is withdrawn once DHIS2 itself answers (the child moved
  // to Gbenikoro, then deleted: Gbenikoro's list says so).
  const pages = [
    { what: "a proxy's 403 page", page: forbiddenPage },
    { what: "a gateway's 503 page", page: unavailable },
  ];
  for (const blocked of [BO, GBENIKORO] as const)
    for (const { what, page } of pages)
      it(`waits when ${what} answers ${blocked}'s list, not held dead; withdrawn once DHIS2 answers`, async () => {
        const proxy = await startFaultProxy();
        const h = await boWaitingBehind(proxy);
        try {
          const child = childAtNgelehun(h);
          const uid = String(child.trackedEntity);
          const subject = `TrackedEntity/${uid}`;
          const [waiting] = h.rows().filter((r) => r.subjectKey === subject);
          assert.ok(waiting);
          await transfer(h, child);
          await deleteInDhis2(h, child);
          let answered = 0;
          const isListing = listsFor(blocked, uid);
          proxy.rules.push((req) => {
            if (!isListing(req)) return undefined;
            answered++;
            return page();
          });

          await recheckWhileAnswered(h, () => answered, waiting.id, true);
          const [row] = h.rows().filter((r) => r.subjectKey === subject);
          assert.deepEqual([row?.state, row?.lastError ?? null], ['pending', null]);

          proxy.rules.length = 0;
          await sleep(1_100);
          await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
          const [settled] = h.rows().filter((r) => r.subjectKey === subject);
          assert.deepEqual(
            [settled?.state, settled?.skipReason],
            ['skipped', 'deleted in the source before it was sent'],
          );
          assert.deepEqual(
            (await h.events()).filter((ev) => ev.actions.some((a) => a.transactionId === waiting.createTransactionId)),
            [],
          );
        } finally {
          await h.close();
          await proxy.close();
        }
      });

  // Bo's user is refused the child (moved to Gbenikoro); Gbenikoro's read meets a gateway's 503 page. Held
  // dead before ("could not be asked through dhis2-gbenikoro"): now it waits, and goes out through
  // Gbenikoro, once, when DHIS2 answers.
  it("waits when a gateway's 503 page answers the other source's read; sent through it once DHIS2 answers", async () => {
    const proxy = await startFaultProxy();
    const h = await boWaitingBehind(proxy);
    try {
      const child = childAtNgelehun(h);
      const uid = String(child.trackedEntity);
      const subject = `TrackedEntity/${uid}`;
      const [waiting] = h.rows().filter((r) => r.subjectKey === subject);
      assert.ok(waiting);
      await transfer(h, child);
      let answered = 0;
      const isRead = readsFor(GBENIKORO, uid);
      proxy.rules.push((req) => {
        if (!isRead(req)) return undefined;
        answered++;
        return unavailable();
      });

      await recheckWhileAnswered(h, () => answered, waiting.id, true);
      const [row] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual(
        [row?.sourceId, row?.state, row?.lastError ?? null],
        [BO, 'pending', null],
        JSON.stringify(row?.lastError),
      );

      proxy.rules.length = 0;
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      const [sent] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual([sent?.sourceId, sent?.state], [BO, 'delivered'], JSON.stringify(sent?.lastError));
      assert.equal(h.bridge.ledger.readBy(sent?.id ?? 0), GBENIKORO, 'read through the other source');
      const created = (await h.events()).filter((ev) =>
        ev.actions.some((a) => a.transactionId === waiting.createTransactionId),
      );
      assert.equal(created.length, 1, 'sent once');
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("held dead when the other source's list fails, its reason naming that source once", async () => {
    const proxy = await startFaultProxy();
    const h = await boWaitingBehind(proxy);
    try {
      const child = childAtNgelehun(h);
      const uid = String(child.trackedEntity);
      const subject = `TrackedEntity/${uid}`;
      // To an org unit neither district's user captures in: both reads refused, both lists asked.
      await transfer(h, child, ORG_UNITS.sierraLeone);
      const isListing = listsFor(GBENIKORO, uid);
      proxy.rules.push((req) => (isListing(req) ? dhis2Error(500, 'Internal server error') : undefined));
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });

      const [held] = h.rows().filter((r) => r.subjectKey === subject);
      assert.deepEqual([held?.sourceId, held?.state, held?.lastError?.kind], [BO, 'dead', 'source-read']);
      const reason = held?.lastError?.message ?? '';
      assert.equal(reason.split(GBENIKORO).length - 1, 1, reason);
      assert.match(
        reason,
        new RegExp(
          `the user of ${GBENIKORO} \\(404; whether it was deleted could not be asked through it: list tracked entities failed: HTTP 500\\)`,
        ),
      );
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
