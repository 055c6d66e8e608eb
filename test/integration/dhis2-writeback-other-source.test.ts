// Two DHIS2 sources on one server, each writing its tracking id back to a data element of its own: one
// source's write lands on a record the other reads. Here a maternal death: the births source reads the
// child's mother as the birth's context (without the programme: all her enrollments and events), and she
// is the death the deaths source notifies, whose tracking id it writes onto her death event. The births
// source's fingerprint left out its own write-back only, so the deaths source's write made the delivered
// birth look changed: an update after notification counted at its next mapping change, with nothing
// recorded anew. The fingerprint now leaves out every write-back target of the sources of that server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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

/** The child's mother relationship pointed at the deceased: her death is notified by the deaths source. */
function motherDiedOf(entities: TrackedEntity[]): TrackedEntity[] {
  const [child] = enrolledIn(entities, CHILD_PROGRAMME);
  const deceased = enrolledIn(entities, DEATH_PROGRAMME);
  const mother =
    deceased.find((te) => te.attributes?.some((a) => a.attribute === ATTRIBUTES.gender && a.value === 'Female')) ??
    deceased[0];
  assert.ok(child?.trackedEntity && mother?.trackedEntity);
  const motherUid = mother.trackedEntity;
  return entities.map((te) =>
    te === child
      ? {
          ...te,
          relationships: (te.relationships ?? []).map((rel) => ({
            ...rel,
            to: { trackedEntity: { trackedEntity: motherUid } },
          })),
        }
      : te,
  );
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
      assert.ok(child?.trackedEntity);
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
      await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000' });
      assert.equal(rowOf(next)?.updatesAfterNotification, 1);
    } finally {
      await next?.stop();
      await h.close();
    }
  });
});
