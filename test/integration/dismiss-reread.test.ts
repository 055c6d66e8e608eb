// A row an operator dismissed (a birth already registered by hand in OpenCRVS) read again after the bridge
// maps records otherwise (an upgrade, a mapping change): its payload hash changes although the record did
// not. It must stay dismissed, or `sync --since` sends a second registration of that birth. A record whose
// content did change (the mother's record, a context resource) comes back as before.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { stringify } from 'yaml';
import { openLedger } from '../../src/ledger/index.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';

/** The shipped birth mapping with a narrower weight range: the demo births' weights are left out. */
function narrowerWeightMapping(dir: string): string {
  const shipped = readFileSync(new URL('../../mappings/birth.fhir.yaml', import.meta.url), 'utf8');
  const narrowed = shipped.replace(/^ {4}max: 6\n/m, '    max: 2\n');
  assert.notEqual(narrowed, shipped, 'the range was found in the shipped mapping');
  const file = join(dir, 'birth.yaml');
  writeFileSync(file, narrowed);
  return file;
}

describe('a dismissed row read again', () => {
  let s: Simulators;
  let config: string;
  const [child0, child1] = ['Patient/e2e-birth-0-child', 'Patient/e2e-birth-1-child'];
  before(async () => {
    s = await startSimulators([...birthResources(0), ...birthResources(1)]);
    config = join(s.dir, 'bridge.yaml');
  });
  after(async () => {
    await s?.close();
  });

  const configured = (mappings?: string[]) => {
    const object = s.configObject();
    const [source] = object.sources as Record<string, unknown>[];
    writeFileSync(config, stringify({ ...object, sources: [{ ...source, ...(mappings ? { mappings } : {}) }] }));
  };
  const rows = () => {
    const ledger = openLedger(join(s.dir, 'bridge.db'));
    try {
      return new Map(ledger.list({ limit: 100 }).map((row) => [row.subjectKey, row]));
    } finally {
      ledger.close();
    }
  };
  /** The NOTIFYs OpenCRVS received (each is Requested, then decided by the country configuration). */
  const notifies = async () =>
    (await s.sim.control.events()).flatMap((e) =>
      e.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested'),
    ).length;
  const syncAgain = async () => {
    const result = await runCli(['sync', '--once', '--config', config, '--since', '2026-01-01']);
    assert.equal(result.code, 0, result.stderr || result.stdout);
  };

  it('stays dismissed when only the mapping changed, and comes back when a context record changed', async () => {
    configured();
    await s.sim.control.configure({ actionConfirmation: 'reject' });
    assert.equal((await runCli(['sync', '--once', '--config', config])).code, 1, 'both births are dead');
    await s.sim.control.configure({ actionConfirmation: 'accept' });
    const dead = rows();
    const ids = [child0, child1].map((key) => String(dead.get(key)?.id));
    const dismissed = await runCli(['dismiss', ...ids, '--config', config, '--reason', 'registered by hand']);
    assert.equal(dismissed.code, 0, dismissed.stderr || dismissed.stdout);
    const sent = await notifies();

    // The mapping now leaves the weight out: both payloads change. Birth 1's mother also got a phone
    // number in the EMR, which no field shows: her record is in the context the mapping read.
    configured([narrowerWeightMapping(s.dir), 'death.fhir']);
    const mother = birthResources(1).find((r) => r.id === 'e2e-birth-1-mother');
    assert.ok(mother);
    await s.fhir.upsert({ ...mother, telecom: [{ system: 'phone', value: '+260 000 0001' }] } as Resource);
    await syncAgain();

    const after = rows();
    assert.equal(after.get(child0)?.state, 'skipped', 'the same record: the decision stands');
    assert.equal(after.get(child0)?.skipReason, 'dismissed by an operator: registered by hand');
    assert.notEqual(after.get(child0)?.payloadHash, dead.get(child0)?.payloadHash, 'mapped otherwise');
    assert.equal(after.get(child1)?.state, 'delivered', 'its content changed: back to the queue, as before');
    assert.equal(await notifies(), sent + 1, 'only birth 1 was sent');

    // Read again once more, nothing changed: nothing moves.
    await syncAgain();
    assert.equal(rows().get(child0)?.state, 'skipped');
    assert.equal(await notifies(), sent + 1);

    // A correction of birth 0 itself still comes back, under the mapping now in force.
    const child = birthResources(0).find((r) => r.id === 'e2e-birth-0-child') as Resource & { gender?: string };
    assert.ok(child);
    await s.fhir.upsert({ ...child, gender: 'male' } as Resource);
    await syncAgain();
    assert.equal(rows().get(child0)?.state, 'delivered');
    assert.equal(await notifies(), sent + 2);
  });
});
