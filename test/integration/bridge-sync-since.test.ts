// `sync --once --since DATE` reads a source again from a date behind its watermark. The case it is for:
// an EMR records birth weight under its own code, the mapping did not know it, and those births were
// polled past as "no birth evidence" (no row). Once the code is added to the mapping, a plain sync never
// reads them again: the watermark is past them. Reading again sends them, and only them: what was already
// recorded keeps its row and transactionIds.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Resource } from '@medplum/fhirtypes';
import { stringify } from 'yaml';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';

const LOCAL_CODE = 'http://emr.example.org/concepts|BW';

/** A child whose only sign of birth is a weight under the EMR's own code. */
function localCodeBirth(n: number): Resource[] {
  return [
    {
      resourceType: 'Patient',
      id: `local-${n}-child`,
      name: [{ family: 'Local', given: [`Kid${n}`] }],
      gender: 'female',
      birthDate: '2026-11-03',
    } as Resource,
    {
      resourceType: 'Observation',
      id: `local-${n}-weight`,
      status: 'final',
      code: { coding: [{ system: 'http://emr.example.org/concepts', code: 'BW' }] },
      subject: { reference: `Patient/local-${n}-child` },
      effectiveDateTime: '2026-11-03T10:00:00+02:00',
      valueQuantity: { value: 3100, unit: 'g', system: 'http://unitsofmeasure.org', code: 'g' },
    } as Resource,
  ];
}

/** The shipped birth mapping with the EMR's code added to the newborn measurements, as docs/mappings.md says. */
function widenedMapping(dir: string): string {
  const shipped = readFileSync(new URL('../../mappings/birth.fhir.yaml', import.meta.url), 'utf8');
  const widened = shipped.replace(/^ {2}newbornObservation:\n/m, `  newbornObservation:\n    - ${LOCAL_CODE}\n`);
  assert.notEqual(widened, shipped, 'the code set was found in the shipped mapping');
  const file = join(dir, 'birth.yaml');
  writeFileSync(file, widened);
  return file;
}

describe('opencrvs-bridge sync --once --since', () => {
  let s: Simulators;
  before(async () => {
    s = await startSimulators([...localCodeBirth(0), ...localCodeBirth(1)]);
  });
  after(async () => {
    await s?.close();
  });

  it('reads again behind the watermark, sends what a widened mapping now finds, and nothing twice', async () => {
    // A birth recorded later carries the watermark past the two beyond the overlap (2 s).
    await sleep(2_500);
    for (const resource of birthResources(0)) await s.fhir.upsert(resource);
    const config = join(s.dir, 'bridge.yaml');
    const configured = (mappings?: string[]) => {
      const object = s.configObject();
      const [source] = object.sources as Record<string, unknown>[];
      writeFileSync(config, stringify({ ...object, sources: [{ ...source, ...(mappings ? { mappings } : {}) }] }));
    };
    const sync = async (...extra: string[]) => {
      const result = await runCli(['sync', '--once', '--config', config, '--json', ...extra]);
      assert.equal(result.code, 0, result.stderr || result.stdout);
      return JSON.parse(result.stdout) as { events: Array<{ sourceRef: string; state: string }> };
    };

    configured();
    assert.equal((await sync()).events.length, 1, 'only the birth with a LOINC weight');
    assert.equal((await s.sim.control.events()).length, 1);

    configured([widenedMapping(s.dir), 'death.fhir']);
    assert.equal((await sync()).events.length, 0, 'the watermark is past the two: a plain sync reads nothing of them');
    assert.equal((await s.sim.control.events()).length, 1);

    const again = await sync('--since', '2026-01-01');
    assert.deepEqual(again.events.map((e) => [e.sourceRef, e.state]).sort(), [
      ['Patient/local-0-child', 'delivered'],
      ['Patient/local-1-child', 'delivered'],
    ]);
    assert.equal((await s.sim.control.events()).length, 3);

    // Read again once more: every record is recorded already, under the same keys; nothing goes out.
    assert.equal((await sync('--since', '2026-01-01T00:00:00Z')).events.length, 0);
    assert.equal((await s.sim.control.events()).length, 3, 'no second OpenCRVS event');
  });

  it('goes on past the page budget of one pass until it reaches the watermark', async () => {
    const t = await startSimulators();
    try {
      // A few ms apart: records sharing a lastUpdated are read as a run, in pages larger than the budget's.
      for (let n = 10; n < 22; n++)
        for (const resource of localCodeBirth(n)) {
          await t.fhir.upsert(resource);
          await sleep(3);
        }
      await sleep(2_500);
      for (const resource of birthResources(0)) await t.fhir.upsert(resource);
      // No overlap: with pages this small, a 2 s overlap would hold more records than a pass reads.
      const base = t.configObject({ poll: { pageSize: 2, overlapSeconds: 0 } });
      const build = (mappings?: string[]) => {
        const [source] = base.sources as Record<string, unknown>[];
        const config = configFromObject({ ...base, sources: [{ ...source, ...(mappings ? { mappings } : {}) }] });
        const bridge = new Bridge(config, { logger: silentLogger, http: false, schedule: false });
        // A pass's budget is 1,000 pages of each type; 3 pages of 2 here, so 12 births take several passes.
        const poller = bridge.sources[0]?.poller as unknown as { deps: { maxPagesPerType: number } } | undefined;
        assert.ok(poller);
        poller.deps.maxPagesPerType = 3;
        return bridge;
      };
      const plain = build();
      try {
        // Plain passes go on from the watermark, each where the last stopped, until nothing is left.
        for (let pass = 0; pass < 100 && (await plain.syncOnce()).report.resources > 0; pass++);
      } finally {
        await plain.stop();
      }
      assert.equal((await t.sim.control.events()).length, 1);
      const widened = build([widenedMapping(t.dir), 'death.fhir']);
      try {
        const summary = await widened.syncOnce(undefined, { since: '2026-01-01' });
        assert.deepEqual(summary.rereadFrom, {});
        assert.equal(summary.ok, true);
        assert.equal((await t.sim.control.events()).length, 13, 'every birth the widened mapping finds, once');
      } finally {
        await widened.stop();
      }
    } finally {
      await t.close();
    }
  });

  it('refuses a --since that is no date, and one with a zone for a DHIS2 source, with exit 2', async () => {
    const config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject()));
    const result = await runCli(['sync', '--once', '--config', config, '--since', 'last tuesday']);
    assert.equal(result.code, 2, result.stderr || result.stdout);
    assert.match(result.stderr, /--since must be an ISO 8601 date or date-time/);

    // DHIS2 compares its own local time: a zoned date would be read hours off.
    const object = s.configObject() as { sources: Array<Record<string, unknown>> };
    object.sources.push({
      id: 'hmis',
      kind: 'dhis2',
      baseUrl: 'http://127.0.0.1:9/api',
      auth: { type: 'basic', username: 'admin', password: 'district' },
      dhis2: { program: 'IpHINAT79UW' },
    });
    const withDhis2 = join(s.dir, 'with-dhis2.yaml');
    writeFileSync(withDhis2, stringify(object));
    const zoned = await runCli(['sync', '--once', '--config', withDhis2, '--since', '2026-01-01T00:00:00-05:00']);
    assert.equal(zoned.code, 2, zoned.stderr || zoned.stdout);
    assert.match(zoned.stderr, /--since for DHIS2 \(hmis\) is DHIS2's local time: give it without a zone/);
  });
});
