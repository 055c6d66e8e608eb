// Two hospitals, each with its own bridge, ledger and OpenCRVS client, both calling their EMR `emr`, and
// both EMRs numbering patients alike (HAPI: 1, 2, 3…). Their transaction ids are the same, and OpenCRVS
// keeps one event per transaction id across all clients: the second hospital's births were answered with
// the first one's events and recorded delivered, under the first hospital's tracking ids. The CREATE
// action names the client that created the event; the second bridge now sees it is not its own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { openLedger } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, type SimEvent, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { birthResources, bridgeConfigObject, notifiedDeclaration } from './helpers/bridge-harness.js';

const HOSPITAL_B = { clientId: 'hospital-b-client', clientSecret: 'hospital-b-secret-0001' };

/** Hospital B's births: the same resource ids as hospital A's, other people. */
function otherHospitalsBirths(i: number): Resource[] {
  return birthResources(i).map((r) =>
    r.resourceType === 'Patient' || r.resourceType === 'RelatedPerson'
      ? ({ ...r, name: [{ use: 'official', family: 'Zulu', given: ['Other'] }] } as Resource)
      : r,
  );
}

async function sync(config: Record<string, unknown>) {
  const bridge = new Bridge(configFromObject(config), { logger: silentLogger, schedule: false, http: false });
  try {
    await bridge.start();
    return await bridge.syncOnce();
  } finally {
    await bridge.stop();
  }
}

const surnames = (events: SimEvent[]) =>
  events.map((e) => (notifiedDeclaration(e)['child.name'] as { surname?: string }).surname).sort();

for (const mode of ['two-step', 'single-call'] as const) {
  describe(`two bridges with one source id against one OpenCRVS (${mode})`, () => {
    let sim: OpenCrvsSimulator;
    let emrA: FhirSandbox;
    let emrB: FhirSandbox;
    let dir: string;
    before(async () => {
      sim = await startOpenCrvsSimulator({ port: 0 });
      await sim.control.addClient(HOSPITAL_B);
      const facilities = DEMO_FACILITIES.map(facilityLocation);
      emrA = await startFhirSandboxWith(
        { port: 0, seed: [...facilities, ...birthResources(0), ...birthResources(1)] },
        {},
      );
      emrB = await startFhirSandboxWith(
        { port: 0, seed: [...facilities, ...otherHospitalsBirths(0), ...otherHospitalsBirths(1)] },
        {},
      );
      dir = mkdtempSync(join(tmpdir(), 'two-bridges-'));
    });
    after(async () => {
      await emrA?.close();
      await emrB?.close();
      await sim?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const configOf = (emr: FhirSandbox, db: string, opencrvs: Record<string, unknown> = {}) =>
      bridgeConfigObject({
        sim,
        fhirBaseUrl: emr.baseUrl,
        dbPath: join(dir, db),
        options: { opencrvs, delivery: { mode } },
      });

    it("makes the second hospital's births dead, naming the source id, instead of recording them delivered", async () => {
      const a = await sync(configOf(emrA, 'a.db'));
      assert.equal(a.ok, true);
      assert.equal((await sim.control.events()).length, 2);

      const configB = configOf(emrB, 'b.db', HOSPITAL_B);
      const b = await sync(configB);
      assert.equal(b.ok, false, 'sync --once is not green');
      assert.deepEqual(
        b.rows.map((r) => [r.state, r.lastError?.kind, r.trackingId]),
        [
          ['dead', 'foreign-event', null],
          ['dead', 'foreign-event', null],
        ],
      );
      assert.match(
        b.rows[0]?.lastError?.message ?? '',
        /^transaction id already used by another OpenCRVS client\. If that client was this bridge's own .*opencrvs\.previousClientIds.*another bridge uses source id "emr": set a source id unique .*created by another OpenCRVS client \(sandbox-client\), not by this one \(hospital-b-client\)/,
      );
      assert.equal((await sim.control.events()).length, 2, 'nothing of hospital B reached OpenCRVS');

      // The way out: a unique source id for hospital B. Its dead rows get that id's transaction ids, and a
      // replay sends them; hospital A's events are untouched.
      const ledger = openLedger(join(dir, 'b.db'), { exclusive: true });
      assert.equal(ledger.sources.rename('emr', 'hospital-b-emr', Date.now()).newTransactionIds, 2);
      ledger.close();
      const renamed = configFromObject({
        ...configB,
        sources: (configB.sources as Array<Record<string, unknown>>).map((s) => ({ ...s, id: 'hospital-b-emr' })),
      });
      const bridge = new Bridge(renamed, { logger: silentLogger, schedule: false, http: false });
      try {
        await bridge.start();
        const replayed = await bridge.replay('dead');
        assert.equal(replayed.requeued.length, 2, JSON.stringify(replayed));
        const pass = await bridge.syncOnce();
        assert.equal(pass.ok, true, JSON.stringify(pass.earlier.map((r) => r.lastError)));
      } finally {
        await bridge.stop();
      }
      const events = await sim.control.events();
      assert.equal(events.length, 4);
      assert.deepEqual(surnames(events).filter((s) => s === 'Zulu').length, 2, "both of hospital B's births");
    });
  });
}
