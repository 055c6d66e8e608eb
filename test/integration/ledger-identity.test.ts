// The ledger knows which EMR and which OpenCRVS it was written against. A configuration repointed at
// another one (an EMR migrated to a server that gave its records new ids; OpenCRVS switched to another
// deployment) is said by doctor and at start, until the bridge has worked against the new address.
// The commands run as an operator runs them: separate processes, a YAML configuration.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { stringify } from 'yaml';
import { DEMO_FACILITIES, facilityLocation } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { closedPort } from '../support/ports.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, bridgeConfigObject } from './helpers/bridge-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-identity-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function births(prefix: string, count: number): Resource[] {
  const out: Resource[] = [DEMO_FACILITIES.map(facilityLocation)].flat();
  for (let i = 0; i < count; i++) out.push(...birthResources(i, prefix));
  return out;
}

let files = 0;
function configFile(sim: OpenCrvsSimulator, fhirBaseUrl: string, dbPath: string): string {
  const file = join(dir, `bridge-${++files}.yaml`);
  writeFileSync(file, stringify(bridgeConfigObject({ sim, fhirBaseUrl, dbPath })));
  return file;
}

interface Check {
  name: string;
  status: string;
  detail: string;
}

async function doctorChecks(config: string): Promise<Check[]> {
  const result = await runCli(['doctor', '--config', config, '--json']);
  return (JSON.parse(result.stdout) as { checks: Check[] }).checks;
}

/** `sync --once` with its warnings on stderr: their messages. */
async function sync(config: string): Promise<{ code: number | null; warnings: string[] }> {
  const result = await runCli(['sync', '--once', '--config', config, '--json'], { LOG_LEVEL: 'warn' });
  const warnings = result.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: string; msg: string })
    .filter((line) => line.level === 'warn')
    .map((line) => line.msg);
  return { code: result.code, warnings };
}

describe('the ledger knows its EMR and its OpenCRVS', () => {
  it('an EMR migrated to a server with new resource ids: doctor and sync warn until a pass there succeeded', async () => {
    const sim = await startOpenCrvsSimulator({ port: 0 });
    const fhirs: FhirSandbox[] = [];
    const dbPath = join(dir, 'emr.db');
    try {
      const old = await startFhirSandboxWith({ port: 0, seed: births('old', 2) }, {});
      const migrated = await startFhirSandboxWith({ port: 0, seed: births('new', 2) }, {});
      fhirs.push(old, migrated);
      const onOld = configFile(sim, old.baseUrl, dbPath);
      const onMigrated = configFile(sim, migrated.baseUrl, dbPath);
      assert.equal((await sync(onOld)).code, 0);
      assert.equal((await sim.control.events()).length, 2);
      assert.equal(
        (await doctorChecks(onOld)).find((c) => c.name === 'ledger source emr'),
        undefined,
        'the address the ledger was written against: nothing to say',
      );

      const moved = (await doctorChecks(onMigrated)).find((c) => c.name === 'ledger source emr');
      assert.equal(moved?.status, 'warn', 'doctor says the source moved');
      assert.ok(moved.detail.includes(old.baseUrl) && moved.detail.includes(migrated.baseUrl), moved.detail);
      assert.match(moved.detail, /new id with poll\.since/);

      // A mistyped address that never answered is not recorded: put right, nothing is said.
      const typo = configFile(sim, `http://127.0.0.1:${await closedPort()}/fhir`, dbPath);
      const failed = await sync(typo);
      assert.equal(failed.code, 1);
      assert.ok(failed.warnings.some((msg) => msg.startsWith('source emr changed: ')));
      assert.equal(
        (await doctorChecks(onOld)).find((c) => c.name === 'ledger source emr'),
        undefined,
      );

      // Started against the migrated EMR: said at start, then recorded after its pass; not said again.
      const first = await sync(onMigrated);
      assert.ok(
        first.warnings.some((msg) => msg.startsWith('source emr changed: ')),
        first.warnings.join('\n'),
      );
      assert.equal((await sim.control.events()).length, 4, 'what the warning said: new ids are new births');
      assert.equal(
        (await doctorChecks(onMigrated)).find((c) => c.name === 'ledger source emr'),
        undefined,
      );
      const second = await sync(onMigrated);
      assert.equal(second.code, 0);
      assert.deepEqual(
        second.warnings.filter((msg) => msg.includes(' changed: ')),
        [],
      );
    } finally {
      for (const fhir of fhirs) await fhir.close();
      await sim.close();
    }
  });

  it('OpenCRVS repointed to another deployment: doctor and sync say how many rows were delivered elsewhere', async () => {
    const first = await startOpenCrvsSimulator({ port: 0 });
    const other = await startOpenCrvsSimulator({ port: 0 });
    const fhir = await startFhirSandboxWith({ port: 0, seed: births('e2e', 2) }, {});
    const dbPath = join(dir, 'opencrvs.db');
    try {
      const onFirst = configFile(first, fhir.baseUrl, dbPath);
      const onOther = configFile(other, fhir.baseUrl, dbPath);
      assert.equal((await sync(onFirst)).code, 0);
      assert.equal((await first.control.events()).length, 2);

      const moved = (await doctorChecks(onOther)).find((c) => c.name === 'ledger opencrvs');
      assert.equal(moved?.status, 'warn', 'doctor says OpenCRVS moved');
      assert.ok(moved.detail.includes(first.eventsUrl) && moved.detail.includes(other.eventsUrl), moved.detail);
      assert.match(moved.detail, /The 2 row\(s\) recorded delivered are not sent again/);

      const pass = await sync(onOther);
      assert.equal(pass.code, 0);
      assert.ok(
        pass.warnings.some((msg) => msg.startsWith('opencrvs changed: ')),
        pass.warnings.join('\n'),
      );
      assert.equal((await other.control.events()).length, 0, 'the delivered rows are not sent to it');
      assert.equal(
        (await doctorChecks(onOther)).find((c) => c.name === 'ledger opencrvs'),
        undefined,
      );
    } finally {
      await fhir.close();
      await first.close();
      await other.close();
    }
  });
});
