// DHIS2 answers a tracked entity read with 404 both when the entity was deleted and when its program owner
// org unit is outside the user's capture scope (dhis2-core #20280, DHIS2-19210: ownership transferred to
// another district, or the bridge user's org units narrowed). The worker's recheck took every 404 for a
// deletion and withdrew the waiting birth: a live child lost. Now only DHIS2's list with includeDeleted=true
// saying `deleted: true` withdraws; otherwise the row waits, dead with the reason, for a person to decide.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LedgerRow } from '../../src/ledger/index.js';
import {
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2SimulatorOptions,
  ORG_UNITS,
  type TrackedEntity,
} from '../../src/sandbox/dhis2/index.js';
import { Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { sleep } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, type Dhis2Harness, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

/** Three births: two owned at Ngelehun CHC (under Bo), one at Gbenikoro MCHP (not under Bo). */
async function threeWaitingBirths(simulator: Dhis2SimulatorOptions = {}): Promise<Dhis2Harness> {
  const h = await startDhis2Harness({
    births: 3,
    deaths: 0,
    writeBack: false,
    delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
    simulator,
  });
  const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
  assert.ok(source);
  await source.poller.pollOnce();
  const rows = h.rows().filter((r) => r.sourceId === BIRTHS_SOURCE);
  assert.equal(rows.length, 3);
  assert.ok(rows.every((r) => r.state === 'pending'));
  return h;
}

/** The seeded children whose Child Programme enrollment (the program owner) is at `orgUnit`. */
function ownedAt(h: Dhis2Harness, orgUnit: string): Array<TrackedEntity & { trackedEntity: string }> {
  return enrolledIn(h.seeded, CHILD_PROGRAMME).filter(
    (te): te is TrackedEntity & { trackedEntity: string } =>
      te.trackedEntity !== undefined &&
      (te.enrollments ?? []).some((en) => en.program === CHILD_PROGRAMME && en.orgUnit === orgUnit),
  );
}

function rowOf(h: Dhis2Harness, te: { trackedEntity: string }): LedgerRow {
  const row = h
    .rows()
    .find((r) => r.sourceId === BIRTHS_SOURCE && r.subjectKey === `TrackedEntity/${te.trackedEntity}`);
  assert.ok(row, `a row for ${te.trackedEntity}`);
  return row;
}

/** The OpenCRVS events of a row (by its create transactionId), with their accepted NOTIFYs. */
async function eventsOf(h: Dhis2Harness, row: LedgerRow) {
  return (await h.events())
    .filter((ev) => ev.actions.some((a) => a.type === 'CREATE' && a.transactionId === row.createTransactionId))
    .map((ev) => ({ id: ev.id, notified: ev.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted') }));
}

async function deleteInDhis2(h: Dhis2Harness, uid: string): Promise<void> {
  const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=DELETE`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
    body: JSON.stringify({ trackedEntities: [{ trackedEntity: uid }] }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Lets the settle and recheck thresholds (1 s) pass, then runs the worker until nothing is due. */
async function deliverDue(h: Dhis2Harness): Promise<void> {
  await sleep(1_100);
  await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
}

describe('bridge: a DHIS2 read answering 404 before a waiting birth is sent', () => {
  it('withdraws a soft-deleted tracked entity (DHIS2 lists it deleted), not one moved out of scope in the same recheck', async () => {
    const h = await threeWaitingBirths();
    try {
      const [gone, kept] = ownedAt(h, ORG_UNITS.ngelehunChc);
      const [moved] = ownedAt(h, ORG_UNITS.gbenikoroMchp);
      assert.ok(gone && kept && moved);
      await deleteInDhis2(h, gone.trackedEntity);
      // The bridge's user loses Gbenikoro MCHP: its birth answers 404 like the deleted one.
      h.dhis2.restrictUser({ organisationUnits: [ORG_UNITS.bo] });
      await deliverDue(h);

      const withdrawn = rowOf(h, gone);
      assert.equal(withdrawn.state, 'skipped');
      assert.equal(withdrawn.skipReason, 'deleted in the source before it was sent');
      assert.equal(rowOf(h, kept).state, 'delivered');
      const held = rowOf(h, moved);
      assert.equal(held.state, 'dead', 'not withdrawn: DHIS2 does not list it as deleted');
      assert.equal(held.skipReason, null);
      assert.deepEqual(await eventsOf(h, held), [], 'not sent either');
      assert.equal((await h.events()).length, 1);
    } finally {
      await h.close();
    }
  });

  it("holds a birth moved out of the user's capture scope dead with the reason, and never sends it unasked", async () => {
    const h = await threeWaitingBirths();
    try {
      const [moved] = ownedAt(h, ORG_UNITS.gbenikoroMchp);
      assert.ok(moved);
      h.dhis2.restrictUser({ organisationUnits: [ORG_UNITS.bo] });
      await deliverDue(h);

      const held = rowOf(h, moved);
      assert.equal(held.state, 'dead');
      assert.equal(held.lastError?.classification, 'permanent', 'no retry sends it');
      // Kept as the pipeline keeps a record DHIS2 will not serve (the ledger and the admin page show the
      // kind), not as one the mapping refused.
      assert.equal(held.lastError?.kind, 'source-read');
      const reason = held.lastError?.message ?? '';
      assert.ok(
        reason.startsWith(`subject: TrackedEntity/${moved.trackedEntity} (the subject) could not be read: `),
        reason,
      );
      assert.match(reason, /DHIS2 no longer shows it to the bridge's user/);
      assert.match(reason, /deleted for good, or its program owner org unit moved outside the user's capture scope/);
      assert.match(reason, /replay this row/);
      // No personal data: names and dates stay in DHIS2 and the payload (dropped with the row's death).
      for (const attribute of moved.attributes ?? [])
        if (attribute.value) assert.ok(!reason.includes(attribute.value), 'no attribute value in the reason');
      assert.equal(held.payload, null);
      assert.equal((await h.events()).length, 2, 'the other two went out');
      assert.deepEqual(await eventsOf(h, held), []);

      // Time passes, the worker runs again: a dead row stays where it is.
      await deliverDue(h);
      assert.equal(rowOf(h, moved).state, 'dead');
      assert.deepEqual(await eventsOf(h, held), []);
    } finally {
      await h.close();
    }
  });

  it('delivers it once when it is replayed after the user sees it again (a replay before that keeps it dead)', async () => {
    const h = await threeWaitingBirths();
    try {
      const [moved] = ownedAt(h, ORG_UNITS.gbenikoroMchp);
      assert.ok(moved);
      h.dhis2.restrictUser({ organisationUnits: [ORG_UNITS.bo] });
      await deliverDue(h);
      const held = rowOf(h, moved);
      assert.equal(held.state, 'dead');

      // Replayed too early: read again, still not shown, still dead with the reason.
      const early = await h.bridge.replay([held.id]);
      assert.deepEqual(early.requeued, []);
      assert.match(early.skipped[0]?.reason ?? '', /DHIS2 no longer shows it/);
      assert.equal(rowOf(h, moved).state, 'dead');

      // The user gets the org unit back (or ownership moves back): replayed, it goes out.
      h.dhis2.restrictUser(undefined);
      const replayed = await h.bridge.replay([held.id]);
      assert.deepEqual(replayed.requeued, [held.id]);
      await deliverDue(h);
      const delivered = rowOf(h, moved);
      assert.equal(delivered.state, 'delivered', delivered.lastError?.message);
      const events = await eventsOf(h, delivered);
      assert.equal(events.length, 1, 'one OpenCRVS event');
      assert.equal(events[0]?.notified.length, 1, 'notified once');

      // Nothing sends it a second time: a replay has nothing dead to take, the worker nothing due.
      const again = await h.bridge.replay([held.id]);
      assert.deepEqual(again.requeued, []);
      await deliverDue(h);
      assert.equal((await eventsOf(h, rowOf(h, moved)))[0]?.notified.length, 1);
      assert.equal((await h.events()).length, 3);
    } finally {
      await h.close();
    }
  });

  it('says so when DHIS2 lists it live but will not let the user read it, or when the list cannot be asked', async () => {
    const h = await threeWaitingBirths();
    try {
      const [moved] = ownedAt(h, ORG_UNITS.gbenikoroMchp);
      const [unasked] = ownedAt(h, ORG_UNITS.ngelehunChc);
      assert.ok(moved && unasked);
      // Searching the whole country, capturing only in Bo: listed as not deleted, yet its read is 404.
      h.dhis2.restrictUser({ organisationUnits: [ORG_UNITS.bo], teiSearchOrganisationUnits: [ORG_UNITS.sierraLeone] });
      await deleteInDhis2(h, unasked.trackedEntity);
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      const listing = source.client.trackedEntityListing.bind(source.client);
      // DHIS2's own 500 through every retry (a gateway's 503 would make the row wait: dhis2-district-transfer).
      source.client.trackedEntityListing = async (uid, program) => {
        if (uid === unasked.trackedEntity)
          throw new Dhis2SourceError('list tracked entities failed: HTTP 500', 500, true);
        return listing(uid, program);
      };
      await deliverDue(h);

      const live = rowOf(h, moved);
      assert.equal(live.state, 'dead');
      assert.match(
        live.lastError?.message ?? '',
        /DHIS2 lists it as not deleted, yet a read in the program answers 404/,
      );
      const failed = rowOf(h, unasked);
      assert.equal(failed.state, 'dead', 'deleted, but DHIS2 could not say so: not withdrawn on a guess, not sent');
      assert.match(
        failed.lastError?.message ?? '',
        /whether it was deleted could not be asked \(list tracked entities failed: HTTP 500\)/,
      );
      assert.equal((await h.events()).length, 1);
    } finally {
      await h.close();
    }
  });

  it("treats an older DHIS2's 403 (OWNERSHIP_ACCESS_DENIED) as its 404: asks the list, holds the live birth, sends the rest", async () => {
    // Before dhis2-core #20280 the read of a tracked entity whose owner is outside the capture scope answers
    // 403. That failed the whole recheck, and the worker sent the batch as recorded: the deleted birth too.
    const h = await threeWaitingBirths({ outOfScopeRead: 'forbidden' });
    try {
      const [gone, kept] = ownedAt(h, ORG_UNITS.ngelehunChc);
      const [moved] = ownedAt(h, ORG_UNITS.gbenikoroMchp);
      assert.ok(gone && kept && moved);
      await deleteInDhis2(h, gone.trackedEntity);
      h.dhis2.restrictUser({ organisationUnits: [ORG_UNITS.bo] });
      await deliverDue(h);

      const withdrawn = rowOf(h, gone);
      assert.equal(withdrawn.state, 'skipped', 'the deleted birth is withdrawn, not sent with the batch');
      assert.equal(withdrawn.skipReason, 'deleted in the source before it was sent');
      assert.equal(rowOf(h, kept).state, 'delivered');
      const held = rowOf(h, moved);
      assert.equal(held.state, 'dead', 'not sent: DHIS2 would not show it, and may have withdrawn it');
      assert.equal(held.lastError?.kind, 'source-read');
      assert.match(held.lastError?.message ?? '', /DHIS2 no longer shows it to the bridge's user \(a read answers 403/);
      assert.deepEqual(await eventsOf(h, held), []);
      assert.equal((await h.events()).length, 1);

      // Replayable as the 404's: once the user captures there again, it goes out once.
      h.dhis2.restrictUser(undefined);
      assert.deepEqual((await h.bridge.replay([held.id])).requeued, [held.id]);
      await deliverDue(h);
      assert.equal(rowOf(h, moved).state, 'delivered');
      assert.equal((await eventsOf(h, rowOf(h, moved)))[0]?.notified.length, 1);
    } finally {
      await h.close();
    }
  });
});
