// Two DHIS2 sources on one server, each writing its tracking id back to a data element of its own: one
// source's write lands on a record the other reads. Here a maternal death: the births source reads the
// child's mother as the birth's context (without the programme: all her enrollments and events), and she
// is the death the deaths source notifies, whose tracking id it writes onto her death event. The births
// source's fingerprint left out its own write-back only, so the deaths source's write made the delivered
// birth look changed: an update after notification counted at its next mapping change, with nothing
// recorded anew. The fingerprint now leaves out every write-back target of the sources of that server; a
// dismissed birth whose fingerprint was taken by the rule before is still the same record to the ledger.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Bridge } from '../../src/app.js';
import type { BridgeConfig, RoutingSettings } from '../../src/config/types.js';
import type { LedgerRow } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  ATTRIBUTES,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type TrackedEntity,
} from '../../src/sandbox/dhis2/index.js';
import {
  BIRTHS_SOURCE,
  DEATHS_SOURCE,
  DHIS2_ROUTING,
  type Dhis2Harness,
  dataValueOf,
  enrolledIn,
  startDhis2Harness,
} from './helpers/dhis2-harness.js';

const BASIC = `Basic ${Buffer.from(`${DEFAULT_SANDBOX_AUTH.username}:${DEFAULT_SANDBOX_AUTH.password}`).toString('base64')}`;
/** An office neither facility routes to at first (Farajaland's Ibombo district office). */
const OTHER_OFFICE = 'LHUYvwY2Aq1';

/** `routing` with every facility sent to OTHER_OFFICE: the records are mapped otherwise, unchanged. */
function rerouted(routing: RoutingSettings): RoutingSettings {
  const facilities = Object.fromEntries(
    Object.entries(routing.facilities).map(([key, route]) => [key, { ...route, office: OTHER_OFFICE }]),
  );
  return { ...routing, facilities };
}

/** A new Bridge on the same ledger with `config`, as the next `sync --once` run after a config change. */
async function restarted(config: BridgeConfig): Promise<Bridge> {
  const bridge = new Bridge(config, { logger: silentLogger, schedule: false, http: false, worker: false });
  await bridge.start();
  return bridge;
}

/**
 * Each child's mother relationship pointed at one of the deceased (a woman first), a mother of her own each
 * (none read as another child's context): her death is notified by the deaths source.
 */
function motherDiedOf(entities: TrackedEntity[]): TrackedEntity[] {
  const children = enrolledIn(entities, CHILD_PROGRAMME);
  const female = (te: TrackedEntity) =>
    te.attributes?.some((a) => a.attribute === ATTRIBUTES.gender && a.value === 'Female') === true;
  const deceased = enrolledIn(entities, DEATH_PROGRAMME).sort((a, b) => Number(female(b)) - Number(female(a)));
  assert.ok(children.length > 0 && children.length <= deceased.length);
  return entities.map((te) => {
    const motherUid = deceased[children.indexOf(te)]?.trackedEntity;
    if (!motherUid) return te;
    return {
      ...te,
      relationships: (te.relationships ?? []).map((rel) => ({
        ...rel,
        to: { trackedEntity: { trackedEntity: motherUid } },
      })),
    };
  });
}

/** The NOTIFYs OpenCRVS received (each is Requested, then decided by the country configuration). */
async function notifies(h: Dhis2Harness): Promise<number> {
  return (await h.events()).flatMap((e) => e.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested'))
    .length;
}

/** The source fingerprints the ledger keeps for the rows `ids` (read with the bridge stopped). */
function fingerprints(path: string, ids: number[]): Array<string | null> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const get = db.prepare<[number], string | null>('SELECT source_fingerprint FROM ledger_rows WHERE id = ?').pluck();
    return ids.map((id) => get.get(id) ?? null);
  } finally {
    db.close();
  }
}

/** A child's first name corrected on its tracked entity, as a clinician does in DHIS2. */
async function correctFirstName(h: Dhis2Harness, child: TrackedEntity): Promise<void> {
  const corrected = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=UPDATE`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: BASIC },
    body: JSON.stringify({
      trackedEntities: [
        {
          trackedEntity: child.trackedEntity,
          trackedEntityType: child.trackedEntityType,
          orgUnit: child.orgUnit,
          attributes: [{ attribute: ATTRIBUTES.firstName, value: 'Corrected' }],
        },
      ],
    }),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(corrected.status, 200, await corrected.text());
}

/**
 * `config` as the version before saw it for the births source: a deaths source with no write-back (only
 * sources that write back are paired), while the ids it wrote stay on the mothers' death events.
 */
function withoutDeathsWriteBack(config: BridgeConfig): BridgeConfig {
  return {
    ...config,
    sources: config.sources.map((source) => {
      if (source.id !== DEATHS_SOURCE) return source;
      const { writeBack: _, ...rest } = source;
      return rest;
    }),
  };
}

describe('DHIS2: the tracking id another source of the same server writes back', () => {
  it('is no change of a record that reads it: a mapping change after it counts no update; a correction does', async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 2, entities: motherDiedOf });
    let next: Bridge | undefined;
    try {
      const births = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.ok(births.ok);
      const deaths = await h.bridge.syncOnce([DEATHS_SOURCE], { timeoutMs: 30_000 });
      assert.ok(deaths.ok);
      const [birth] = h.rows().filter((r) => r.sourceId === BIRTHS_SOURCE);
      assert.equal(birth?.state, 'delivered', birth?.lastError?.message);
      const child = h.seeded.find((te) => `TrackedEntity/${te.trackedEntity}` === birth.subjectKey);
      const motherUid = child?.relationships?.[0]?.to?.trackedEntity?.trackedEntity;
      assert.ok(motherUid);
      const death = h.rows().find((r) => r.sourceId === DEATHS_SOURCE && r.subjectKey === `TrackedEntity/${motherUid}`);
      assert.equal(death?.state, 'delivered', 'the mother is a death the other source notified');
      assert.ok(death.trackingId);
      assert.equal(
        dataValueOf(h.dhis2, motherUid, DEATH_PROGRAMME, DEATH_DATA_ELEMENTS.trackingId),
        death.trackingId,
        "the deaths source wrote its tracking id onto the mother's death event",
      );
      await h.bridge.stop();

      // Every facility now routes to another office: the birth is mapped otherwise, nothing recorded anew.
      const config = { ...h.config, routing: rerouted(h.config.routing) };
      assert.notDeepEqual(config.routing, DHIS2_ROUTING);
      next = await restarted(config);
      await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000' });
      const rowOf = (bridge: Bridge): LedgerRow | undefined =>
        bridge.ledger.list({ limit: 100 }).find((r) => r.id === birth.id);
      const mappedOtherwise = rowOf(next);
      assert.notEqual(mappedOtherwise?.payloadHash, birth.payloadHash, 'read and mapped otherwise');
      assert.equal(mappedOtherwise?.updatesAfterNotification, 0, 'only the bridge wrote to what it reads');

      // A clinician corrects the child's first name: the record changed, and that still counts.
      assert.ok(child);
      await correctFirstName(h, child);
      await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000' });
      assert.equal(rowOf(next)?.updatesAfterNotification, 1);
    } finally {
      await next?.stop();
      await h.close();
    }
  });

  it('a birth dismissed while its fingerprint held that id (the rule before) stays dismissed when mapped otherwise', async () => {
    const h = await startDhis2Harness({ births: 2, deaths: 2, entities: motherDiedOf });
    let bridge: Bridge | undefined;
    try {
      // The deaths source notifies the mothers and writes its tracking id onto each one's death event.
      assert.ok((await h.bridge.syncOnce([DEATHS_SOURCE], { timeoutMs: 30_000 })).ok);
      const [child0, child1] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child0?.trackedEntity && child1?.trackedEntity);
      for (const child of [child0, child1]) {
        const motherUid = child.relationships?.[0]?.to?.trackedEntity?.trackedEntity;
        assert.ok(motherUid);
        const death = h
          .rows()
          .find((r) => r.sourceId === DEATHS_SOURCE && r.subjectKey === `TrackedEntity/${motherUid}`);
        assert.ok(death?.trackingId, "each child's mother is a death the other source notified");
        assert.equal(
          dataValueOf(h.dhis2, motherUid, DEATH_PROGRAMME, DEATH_DATA_ELEMENTS.trackingId),
          death.trackingId,
        );
      }
      await h.bridge.stop();

      // The version before: the births source left out its own write-back only. A deaths source with no
      // write-back gives the births source that rule here (only sources that write back are paired), while
      // the id it wrote stays on the mother's death event. The births are read, rejected and dismissed.
      const ownOnly = withoutDeathsWriteBack(h.config);
      await h.sim.control.configure({ actionConfirmation: 'reject' });
      bridge = await restarted(ownOnly);
      await bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      await h.sim.control.configure({ actionConfirmation: 'accept' });
      const byKey = (b: Bridge) => new Map(b.ledger.list({ limit: 100 }).map((row) => [row.subjectKey, row]));
      const dead = byKey(bridge);
      const ids = [child0, child1].map((child) => {
        const row = dead.get(`TrackedEntity/${child.trackedEntity}`);
        assert.equal(row?.state, 'dead', row?.lastError?.message);
        return row.id;
      });
      assert.deepEqual(bridge.ledger.dismiss(ids, 'duplicate of #12').dismissed, ids);
      await bridge.stop();
      const sent = await notifies(h);
      const fingerprintsThen = fingerprints(h.config.store.path, ids);

      // Upgraded, every facility now routes to another office, and child 1's first name is corrected. Child 0
      // is the same record mapped otherwise, its fingerprint now taken without the deaths source's tracking id:
      // before the ledger compared the one kept with the rule before's too, it was requeued and sent.
      await correctFirstName(h, child1);
      bridge = await restarted({ ...h.config, routing: rerouted(h.config.routing) });
      await bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000' });
      const after = byKey(bridge);
      const row0 = after.get(`TrackedEntity/${child0.trackedEntity}`);
      assert.notEqual(
        row0?.payloadHash,
        dead.get(`TrackedEntity/${child0.trackedEntity}`)?.payloadHash,
        'mapped otherwise',
      );
      assert.equal(row0?.state, 'skipped', 'the same record: the decision stands');
      assert.equal(row0?.skipReason, 'dismissed by an operator: duplicate of #12');
      assert.equal(
        after.get(`TrackedEntity/${child1.trackedEntity}`)?.state,
        'delivered',
        'corrected: back, as before',
      );
      assert.equal(await notifies(h), sent + 1, 'only the corrected child was sent');
      await bridge.stop();
      const [then0] = fingerprintsThen;
      const [now0] = fingerprints(h.config.store.path, ids);
      assert.notEqual(now0, then0, "the rule before kept the deaths source's tracking id in child 0's fingerprint");
    } finally {
      await bridge?.stop();
      await h.close();
    }
  });

  it('a birth delivered while its fingerprint held that id (the rule before) counts no update when mapped otherwise', async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 1, entities: motherDiedOf });
    let bridge: Bridge | undefined;
    try {
      assert.ok((await h.bridge.syncOnce([DEATHS_SOURCE], { timeoutMs: 30_000 })).ok);
      await h.bridge.stop();
      // The version before (the deaths source's write-back not paired): the birth is delivered, its
      // fingerprint holding the tracking id on its mother's death event.
      const ownOnly = withoutDeathsWriteBack(h.config);
      bridge = await restarted(ownOnly);
      assert.ok((await bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 })).ok);
      await bridge.stop();
      // Upgraded, every facility routed to another office: the same record mapped otherwise.
      bridge = await restarted({ ...h.config, routing: rerouted(h.config.routing) });
      await bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000' });
      const births = bridge.ledger.list({ limit: 100 }).filter((row) => row.sourceId === BIRTHS_SOURCE);
      assert.equal(births.length, 1);
      assert.equal(births[0]?.state, 'delivered');
      assert.equal(births[0]?.updatesAfterNotification, 0, 'nothing changed at the source');
      await bridge.stop();
    } finally {
      await bridge?.stop();
      await h.close();
    }
  });
});
