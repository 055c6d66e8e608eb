// Two FHIR sources on one server, split by event type (births from one, deaths from the other, as the
// overlap check allows), each writing its tracking id back under an identifier system of its own: one
// source's write lands on a record the other reads. Here a mother who died in childbirth: the births source
// reads her Patient as the birth's context (the maternity encounter's subject), and she is the death the
// deaths source notifies, whose tracking id it writes onto her Patient. The births source's fingerprint left
// out its own identifier system only, so the deaths source's write made the delivered birth look changed: an
// update after notification counted at its next mapping change, with nothing recorded anew.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import type { BridgeConfig, RoutingSettings } from '../../src/config/types.js';
import type { LedgerRow } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { simulatorOpenCrvs } from './helpers/bridge-harness.js';

const BIRTH_SYSTEM = 'http://hospital.example.org/opencrvs/birth-tracking-id';
const DEATH_SYSTEM = 'http://hospital.example.org/opencrvs/death-tracking-id';
/** An office neither facility routes to at first (Farajaland's Ibombo district office). */
const OTHER_OFFICE = 'LHUYvwY2Aq1';

const ROUTING: RoutingSettings = {
  defaultOffice: 'xmJJAsGfSTn',
  facilities: {
    'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
    'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
  },
};

/** `routing` with every facility sent to OTHER_OFFICE: the records are mapped otherwise, unchanged. */
function rerouted(routing: RoutingSettings): RoutingSettings {
  const facilities = Object.fromEntries(
    Object.entries(routing.facilities).map(([key, route]) => [key, { ...route, office: OTHER_OFFICE }]),
  );
  return { ...routing, facilities };
}

/** One demo birth whose mother died in childbirth: her Patient has a date of death (death.fhir's evidence). */
function birthWhereTheMotherDied(): Resource[] {
  return generateBirth(1, { prefix: 'md' }).map((r) =>
    r.resourceType === 'Patient' && r.id === 'md-birth-1-mother'
      ? ({ ...r, deceasedDateTime: '2026-11-02T10:00:00+02:00' } as Patient)
      : r,
  );
}

/** A new Bridge on the same ledger with `config`, as the next `sync --once` run after a config change. */
async function restarted(config: BridgeConfig): Promise<Bridge> {
  const bridge = new Bridge(config, { logger: silentLogger, schedule: false, http: false, worker: false });
  await bridge.start();
  return bridge;
}

async function patient(fhir: FhirSandbox, reference: string): Promise<Patient> {
  const response = await fetch(`${fhir.baseUrl}/${reference}`, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200);
  return (await response.json()) as Patient;
}

describe('FHIR: the tracking id another source of the same server writes back', () => {
  let fhir: FhirSandbox | undefined;
  let sim: OpenCrvsSimulator | undefined;

  it('is no change of a record that reads it: a mapping change after it counts no update; a correction does', async () => {
    fhir = await startFhirSandbox({
      port: 0,
      seed: [...DEMO_FACILITIES.map(facilityLocation), ...birthWhereTheMotherDied()],
    });
    sim = await startOpenCrvsSimulator({ port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'bridge-fhir-writeback-other-'));
    const source = (id: string, mapping: string, identifierSystem: string) => ({
      id,
      kind: 'fhir',
      baseUrl: fhir?.baseUrl,
      timeoutMs: 5000,
      mappings: [mapping],
      poll: { overlapSeconds: 2, pageSize: 50 },
      writeBack: { identifierSystem, baseDelayMs: 20, maxDelayMs: 200 },
    });
    const config = configFromObject({
      opencrvs: simulatorOpenCrvs(sim),
      store: { path: join(dir, 'bridge.db') },
      delivery: { baseDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 20 },
      sources: [source('births', 'birth.fhir', BIRTH_SYSTEM), source('deaths', 'death.fhir', DEATH_SYSTEM)],
      routing: ROUTING,
      logging: { level: 'silent' },
    });
    let bridge = await restarted(config);
    try {
      assert.ok((await bridge.syncOnce(['births'], { timeoutMs: 30_000 })).ok);
      assert.ok((await bridge.syncOnce(['deaths'], { timeoutMs: 30_000 })).ok);
      const rows = bridge.ledger.list({ limit: 100 });
      const birth = rows.find((r) => r.sourceId === 'births');
      const death = rows.find((r) => r.sourceId === 'deaths');
      assert.equal(birth?.state, 'delivered', birth?.lastError?.message);
      assert.equal(birth.subjectKey, 'Patient/md-birth-1-child');
      assert.equal(death?.state, 'delivered', death?.lastError?.message);
      assert.equal(death.subjectKey, 'Patient/md-birth-1-mother', 'the mother is the death the other source notified');
      const mother = await patient(fhir, death.subjectKey);
      assert.equal(
        mother.identifier?.find((i) => i.system === DEATH_SYSTEM)?.value,
        death.trackingId,
        "the deaths source wrote its tracking id onto the mother's Patient",
      );
      await bridge.stop();

      // Every facility now routes to another office: the birth is mapped otherwise, nothing recorded anew.
      bridge = await restarted({ ...config, routing: rerouted(config.routing) });
      await bridge.syncOnce(['births'], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000Z' });
      const rowOf = (): LedgerRow | undefined => bridge.ledger.list({ limit: 100 }).find((r) => r.id === birth.id);
      assert.notEqual(rowOf()?.payloadHash, birth.payloadHash, 'read and mapped otherwise');
      assert.equal(rowOf()?.updatesAfterNotification, 0, 'only the bridge wrote to what it reads');

      // The child's name corrected at the source: that record changed, and that still counts.
      const current = await patient(fhir, birth.subjectKey);
      const put = await fetch(`${fhir.baseUrl}/${birth.subjectKey}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ ...current, name: [{ family: 'Corrected', given: ['Child'] }] }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(put.status, 200, await put.text());
      await bridge.syncOnce(['births'], { timeoutMs: 30_000, since: '2020-01-01T00:00:00.000Z' });
      assert.equal(rowOf()?.updatesAfterNotification, 1);
    } finally {
      await bridge.stop().catch(() => undefined);
      await Promise.all([fhir.close(), sim.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
