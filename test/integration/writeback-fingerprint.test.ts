// The tracking id the bridge writes back is no change of the record: a routing change after the write-back
// maps the delivered records otherwise and counts no update after notification (docs/architecture.md),
// while a correction made at the source still counts one. DHIS2 (a data value on the birth event) against
// the DHIS2 simulator, FHIR (an identifier on the subject Patient) against the FHIR sandbox.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import type { BridgeConfig, RoutingSettings } from '../../src/config/types.js';
import type { LedgerRow } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth } from '../../src/sandbox/demo/generate.js';
import {
  ATTRIBUTES,
  BIRTH_DATA_ELEMENTS,
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
} from '../../src/sandbox/dhis2/index.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { simulatorOpenCrvs } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, DHIS2_ROUTING, dataValueOf, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

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

const rowsOf = (bridge: Bridge): LedgerRow[] => bridge.ledger.list({ limit: 1000 });

describe('write-back and updates after notification', () => {
  it('DHIS2: a routing change after the write-back counts none; a corrected record still counts one', async () => {
    const h = await startDhis2Harness({ births: 3, deaths: 0 });
    let next: Bridge | undefined;
    try {
      const first = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.ok(first.ok);
      const delivered = rowsOf(h.bridge);
      assert.equal(delivered.length, 3);
      for (const row of delivered) {
        assert.equal(row.state, 'delivered');
        const uid = row.subjectKey.slice('TrackedEntity/'.length);
        assert.equal(dataValueOf(h.dhis2, uid, CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId), row.trackingId);
      }
      await h.bridge.stop();

      // Every facility now routes to another office: each record is mapped otherwise, none changed.
      const config = { ...h.config, routing: rerouted(h.config.routing) };
      assert.notDeepEqual(config.routing, DHIS2_ROUTING);
      next = await restarted(config);
      await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000' });
      const mappedOtherwise = rowsOf(next);
      for (const row of mappedOtherwise) {
        const before = delivered.find((r) => r.id === row.id);
        assert.notEqual(row.payloadHash, before?.payloadHash, `row ${row.id} was read and mapped otherwise`);
        assert.equal(row.updatesAfterNotification, 0, `row ${row.id}: only the bridge moved`);
      }

      // A clinician corrects one child's first name: that record changed.
      const [child] = enrolledIn(h.seeded, CHILD_PROGRAMME);
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
      const counts = new Map(rowsOf(next).map((row) => [row.subjectKey, row.updatesAfterNotification]));
      assert.deepEqual(
        [...counts].sort(),
        mappedOtherwise
          .map((row) => [row.subjectKey, row.subjectKey === `TrackedEntity/${child.trackedEntity}` ? 1 : 0])
          .sort(),
      );
    } finally {
      await next?.stop();
      await h.close();
    }
  });

  it('FHIR: a routing change after the identifier write-back counts none; a corrected Patient still counts one', async () => {
    const seed: Resource[] = [...generateBirth(1, { prefix: 'fp' }), ...generateBirth(2, { prefix: 'fp' })];
    const fhir: FhirSandbox = await startFhirSandbox({
      port: 0,
      seed: [...DEMO_FACILITIES.map(facilityLocation), ...seed],
    });
    const sim = await startOpenCrvsSimulator({ port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'bridge-writeback-fp-'));
    const routing = {
      defaultOffice: 'xmJJAsGfSTn',
      facilities: {
        'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
        'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
      },
    };
    const config = configFromObject({
      opencrvs: simulatorOpenCrvs(sim),
      store: { path: join(dir, 'bridge.db') },
      delivery: { baseDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 20 },
      sources: [
        {
          id: 'emr',
          kind: 'fhir',
          baseUrl: fhir.baseUrl,
          timeoutMs: 5000,
          poll: { overlapSeconds: 2, pageSize: 50 },
          writeBack: { baseDelayMs: 20, maxDelayMs: 200 },
        },
      ],
      routing,
      logging: { level: 'silent' },
    });
    let bridge = await restarted(config);
    try {
      await bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      const delivered = rowsOf(bridge);
      assert.equal(delivered.length, 2);
      for (const row of delivered) {
        assert.equal(row.state, 'delivered');
        const patient = (await (await fetch(`${fhir.baseUrl}/${row.subjectKey}`)).json()) as {
          identifier?: Array<{ system?: string; value?: string }>;
        };
        const written = patient.identifier?.find((i) => i.system === config.sources[0]?.writeBack?.identifierSystem);
        assert.equal(written?.value, row.trackingId, `${row.id}: the tracking id is on the Patient`);
      }
      await bridge.stop();

      bridge = await restarted({ ...config, routing: rerouted(config.routing) });
      await bridge.syncOnce(undefined, { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000Z' });
      const mappedOtherwise = rowsOf(bridge);
      for (const row of mappedOtherwise) {
        const before = delivered.find((r) => r.id === row.id);
        assert.notEqual(row.payloadHash, before?.payloadHash, `row ${row.id} was read and mapped otherwise`);
        assert.equal(row.updatesAfterNotification, 0, `row ${row.id}: only the bridge moved`);
      }

      // The child's name corrected at the source: that record changed.
      const [target] = mappedOtherwise;
      assert.ok(target);
      const current = (await (await fetch(`${fhir.baseUrl}/${target.subjectKey}`)).json()) as Record<string, unknown>;
      const put = await fetch(`${fhir.baseUrl}/${target.subjectKey}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ ...current, name: [{ family: 'Corrected', given: ['Child'] }] }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(put.status, 200, await put.text());
      await bridge.syncOnce(undefined, { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000Z' });
      const counts = rowsOf(bridge).map((row) => [row.subjectKey, row.updatesAfterNotification]);
      assert.deepEqual(
        counts.sort(),
        mappedOtherwise.map((row) => [row.subjectKey, row.id === target.id ? 1 : 0]).sort(),
      );
    } finally {
      await bridge.stop().catch(() => undefined);
      await Promise.all([fhir.close(), sim.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
