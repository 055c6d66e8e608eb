// A configuration or mapping file edited while serve runs: serve keeps what it read at start, and says so
// once per change (which file, whether the new version would load, the key path when it would not), on
// /readyz as a detail that does not fail readiness, in bridge_config_changed_on_disk, and to `doctor`.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { loadConfig, packagePaths } from '../../src/config/index.js';
import { LOADED_FILES_META } from '../../src/config/on-disk.js';
import { openLedger } from '../../src/ledger/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';
import { waitUntil } from './helpers/bridge-harness.js';

let sim: OpenCrvsSimulator;
let fhir: FhirSandbox;
const dir = mkdtempSync(join(tmpdir(), 'config-on-disk-'));
let count = 0;

before(async () => {
  sim = await startOpenCrvsSimulator({ port: 0 });
  fhir = await startFhirSandbox({ port: 0, seed: DEMO_FACILITIES.map(facilityLocation) });
});

after(async () => {
  await fhir.close();
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A site's config file naming its own copy of the birth mapping, as an engineer deploys it. */
function siteFiles() {
  count += 1;
  const mapping = join(dir, `site-birth-${count}.yaml`);
  copyFileSync(join(packagePaths.mappings, 'birth.fhir.yaml'), mapping);
  const configFile = join(dir, `bridge-${count}.yaml`);
  writeFileSync(
    configFile,
    [
      'opencrvs:',
      `  tokenUrl: ${sim.tokenUrl}`,
      `  eventsUrl: ${sim.eventsUrl}`,
      `  clientId: ${sim.clientId}`,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax, as a site writes it
      '  clientSecret: ${OPENCRVS_SECRET}',
      'store:',
      `  path: ${join(dir, `bridge-${count}.db`)}`,
      'http: { host: 127.0.0.1, port: 0 }',
      'delivery: { pollIntervalMs: 20 }',
      'sources:',
      '  - id: emr',
      '    kind: fhir',
      `    baseUrl: ${fhir.baseUrl}`,
      `    mappings: [${mapping}, death.fhir]`,
      'routing:',
      '  defaultOffice: LHUYvwY2Aq1',
      '',
    ].join('\n'),
  );
  const env = { OPENCRVS_SECRET: sim.clientSecret };
  return { configFile, mapping, env, config: loadConfig({ file: configFile, env }) };
}

/** A bridge on those files, as serve builds it. */
function site() {
  const { configFile, mapping, env, config } = siteFiles();
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
  const bridge = new Bridge(config, { logger, schedule: false, lease: 'serve', configFile: { path: configFile, env } });
  const warnings = () =>
    lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 'warn' && entry.component === 'config');
  return { bridge, config, configFile, mapping, warnings };
}

function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  assert.ok(text.includes(from), `${file} has ${from}`);
  writeFileSync(file, text.replace(from, to));
}

async function get(bridge: Bridge, path: string) {
  const response = await fetch(`http://127.0.0.1:${bridge.httpPort}${path}`, { signal: AbortSignal.timeout(15_000) });
  return { status: response.status, text: await response.text() };
}

const WEIGHT_MAX = '    max: 6\n';

describe('configuration and mapping files changed on disk while serve runs', () => {
  it('says nothing while the files are as read at start', async () => {
    const { bridge, warnings } = site();
    try {
      await bridge.start();
      assert.equal(await bridge.configOnDisk?.check(), undefined);
      assert.equal(await bridge.configOnDisk?.check(), undefined);
      assert.deepEqual(warnings(), []);
      const ready = JSON.parse((await get(bridge, '/readyz')).text);
      assert.deepEqual(ready.checks['config-on-disk'], { ok: true });
      assert.match((await get(bridge, '/metrics')).text, /^bridge_config_changed_on_disk 0$/m);
    } finally {
      await bridge.stop();
    }
  });

  it('warns once for an edited mapping that would load, and shows it on /readyz and in the metric', async () => {
    const { bridge, mapping, warnings } = site();
    try {
      await bridge.start();
      edit(mapping, WEIGHT_MAX, '    max: 3\n');
      const change = await bridge.configOnDisk?.check();
      assert.deepEqual(change, { files: [mapping] });
      await bridge.configOnDisk?.check(); // the same change: not said again
      const said = warnings();
      assert.equal(said.length, 1, JSON.stringify(said));
      assert.deepEqual(said[0].files, [mapping]);
      assert.equal(said[0].wouldLoad, true);
      assert.match(said[0].msg, /still uses the version read at start; run `opencrvs-bridge validate` then restart/);
      assert.match(said[0].msg, /The new version would load\./);

      // Ready still: the running service is unchanged; the check's detail says what changed.
      const ready = await get(bridge, '/readyz');
      assert.equal(ready.status, 200, ready.text);
      const detail = JSON.parse(ready.text).checks['config-on-disk'];
      assert.equal(detail.ok, true);
      // By its base name: /readyz answers anyone, and where the files live is not theirs to know.
      assert.ok(detail.detail.startsWith(`${basename(mapping)} changed on disk`), detail.detail);
      assert.ok(!detail.detail.includes(dir), detail.detail);
      assert.match(detail.detail, /would load/);
      assert.match((await get(bridge, '/metrics')).text, /^bridge_config_changed_on_disk 1$/m);

      // Put back as it was: nothing to restart for.
      edit(mapping, '    max: 3\n', WEIGHT_MAX);
      assert.equal(await bridge.configOnDisk?.check(), undefined);
      assert.match((await get(bridge, '/metrics')).text, /^bridge_config_changed_on_disk 0$/m);
      assert.equal(warnings().length, 1);
    } finally {
      await bridge.stop();
    }
  });

  it('says a broken edit would not load, with the file and key path, before any restart', async () => {
    const { bridge, mapping, configFile, warnings } = site();
    try {
      await bridge.start();
      edit(mapping, WEIGHT_MAX, '    max: three\n');
      const change = await bridge.configOnDisk?.check();
      assert.ok(change?.problem, JSON.stringify(change));
      const [said] = warnings();
      assert.equal(said.wouldLoad, false);
      assert.match(said.msg, /would NOT load/);
      assert.ok(said.problem.includes(mapping), said.problem);
      assert.match(said.problem, /child\.weightAtBirth/);
      assert.match(said.problem, /max/);

      // A further edit, this time of the configuration (a key misspelt): said again, naming its key path.
      edit(mapping, '    max: three\n', WEIGHT_MAX);
      edit(configFile, '  defaultOffice:', '  defaultOfice:');
      const next = await bridge.configOnDisk?.check();
      assert.deepEqual(next?.files, [configFile]);
      const [, again] = warnings();
      assert.equal(again?.wouldLoad, false);
      assert.match(again?.problem, /routing\.defaultOfice: unknown key/);
      const detail = JSON.parse((await get(bridge, '/readyz')).text).checks['config-on-disk'];
      assert.equal(detail.ok, true);
      assert.match(detail.detail, /would NOT load: .*routing\.defaultOfice/);
      assert.ok(detail.detail.includes(`would NOT load: ${basename(configFile)}: routing.defaultOfice`), detail.detail);
      assert.ok(!detail.detail.includes(dir), detail.detail);
    } finally {
      await bridge.stop();
    }
  });

  it('follows a mapping file the edited configuration names: its appearing, fixing and breaking are said', async () => {
    const { bridge, configFile, mapping, warnings } = site();
    try {
      await bridge.start();
      const added = join(dir, `site-birth-added-${count}.yaml`);
      edit(configFile, `mappings: [${mapping}, death.fhir]`, `mappings: [${added}, death.fhir]`);
      // Not there yet: a restart would fail on it.
      const missing = await bridge.configOnDisk?.check();
      assert.deepEqual(missing?.files, [configFile]);
      assert.ok(missing?.problem?.includes(added), JSON.stringify(missing));
      assert.match(missing?.problem ?? '', /sources\[0\]\.mappings\[0\]: no mapping file at/);
      const missingDetail = JSON.parse((await get(bridge, '/readyz')).text).checks['config-on-disk'].detail;
      assert.ok(missingDetail.includes(`no mapping file at ${basename(added)}`), missingDetail);
      assert.ok(!missingDetail.includes(dir), missingDetail);

      // Put in place, valid: the verdict follows, on /readyz and in the log.
      copyFileSync(join(packagePaths.mappings, 'birth.fhir.yaml'), added);
      assert.deepEqual(await bridge.configOnDisk?.check(), { files: [configFile] });
      await bridge.configOnDisk?.check(); // the same: not said again
      const detail = JSON.parse((await get(bridge, '/readyz')).text).checks['config-on-disk'];
      assert.match(detail.detail, /the new version would load$/);
      assert.match((await get(bridge, '/metrics')).text, /^bridge_config_changed_on_disk 1$/m);
      assert.deepEqual(
        warnings().map((w) => w.wouldLoad),
        [false, true],
      );

      // Broken: said, naming that file and the key path.
      edit(added, WEIGHT_MAX, '    max: three\n');
      const broken = await bridge.configOnDisk?.check();
      assert.ok(broken?.problem?.includes(added), JSON.stringify(broken));
      assert.match(broken?.problem ?? '', /child\.weightAtBirth/);
      assert.match(JSON.parse((await get(bridge, '/readyz')).text).checks['config-on-disk'].detail, /would NOT load/);

      // Gone again: said again.
      rmSync(added);
      assert.match((await bridge.configOnDisk?.check())?.problem ?? '', /no mapping file at/);
      assert.deepEqual(
        warnings().map((w) => w.wouldLoad),
        [false, true, false, false],
      );

      // The configuration put back: as read at start, and that file is no longer followed.
      edit(configFile, `mappings: [${added}, death.fhir]`, `mappings: [${mapping}, death.fhir]`);
      assert.equal(await bridge.configOnDisk?.check(), undefined);
      copyFileSync(join(packagePaths.mappings, 'birth.fhir.yaml'), added);
      assert.equal(await bridge.configOnDisk?.check(), undefined);
      assert.equal(warnings().length, 4);
      assert.match((await get(bridge, '/metrics')).text, /^bridge_config_changed_on_disk 0$/m);
    } finally {
      await bridge.stop();
    }
  });

  it('verifies off the event loop: serve answers while the verify waits on a file', async () => {
    const { bridge, configFile, warnings } = site();
    // A named pipe for the secret the edit points at: reading it waits until the test writes to it, so
    // the verify is under way for as long as the test needs, whatever the machine's speed.
    const secret = join(dir, `opencrvs-secret-${count}`);
    execFileSync('mkfifo', [secret]);
    // Should the verify hold the event loop after all, this writes the secret after a while, so the test
    // fails on its assertion rather than hanging.
    const unblock = spawn(
      process.execPath,
      ['-e', 'setTimeout(() => require("fs").writeFileSync(process.env.PIPE, process.env.VALUE), 30_000)'],
      { env: { PIPE: secret, VALUE: sim.clientSecret }, stdio: 'ignore' },
    );
    try {
      await bridge.start();
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${ENV} syntax
      edit(configFile, '  clientSecret: ${OPENCRVS_SECRET}', `  clientSecretFile: ${secret}`);
      let settled = false;
      const pending = Promise.resolve(bridge.configOnDisk?.check()).then((change) => {
        settled = true;
        return change;
      });
      const ready = await get(bridge, '/readyz');
      assert.equal(ready.status, 200, ready.text);
      assert.equal(settled, false, 'the check answered before /readyz: it held the event loop');

      await writeFile(secret, `${sim.clientSecret}\n`);
      assert.deepEqual(await pending, { files: [configFile] });
      assert.deepEqual(
        warnings().map((w) => w.wouldLoad),
        [true],
      );
    } finally {
      unblock.kill('SIGKILL');
      await bridge.stop();
    }
  });

  it('doctor beside a running serve says which files differ from what that serve loaded', async () => {
    const { mapping, configFile, config } = siteFiles();
    const child = spawnCli(['serve', '--config', configFile], { OPENCRVS_SECRET: sim.clientSecret });
    const exit = finished(child, 120_000);
    try {
      await waitUntil(
        'serve recorded the files it loaded',
        () => {
          // Until serve has made and migrated the ledger, there is none to read.
          let ledger: ReturnType<typeof openLedger> | undefined;
          try {
            ledger = openLedger(config.store.path, { inspectOnly: true });
            return ledger.getMeta(LOADED_FILES_META) !== undefined;
          } catch {
            return false;
          } finally {
            ledger?.close();
          }
        },
        60_000,
      );
      const doctor = async () => {
        const run = await runCli(['doctor', '--config', configFile, '--json'], { OPENCRVS_SECRET: sim.clientSecret });
        const report = JSON.parse(run.stdout) as { checks: Array<{ name: string; status: string; detail: string }> };
        return report.checks.find((c) => c.name === 'config on disk');
      };
      assert.equal(await doctor(), undefined);
      edit(mapping, WEIGHT_MAX, '    max: 3\n');
      const said = await doctor();
      assert.equal(said?.status, 'warn', JSON.stringify(said));
      assert.ok(said?.detail.includes(mapping), said?.detail);
      assert.match(
        said?.detail ?? '',
        new RegExp(`running serve \\(serve on .*pid ${child.pid}.*still uses the version read at start`),
      );

      // The configuration edited to name a mapping file serve never read: serve follows that file, and
      // doctor names it as well.
      const added = join(dir, `site-birth-added-${count}.yaml`);
      copyFileSync(join(packagePaths.mappings, 'birth.fhir.yaml'), added);
      edit(configFile, `mappings: [${mapping}, death.fhir]`, `mappings: [${added}, death.fhir]`);
      const named = await doctor();
      assert.equal(named?.status, 'warn', JSON.stringify(named));
      assert.ok(named?.detail.includes(`${configFile}, ${mapping} changed since`), named?.detail);
      assert.ok(
        named?.detail.includes(`the configuration on disk also names ${added}, which it has not read`),
        named?.detail,
      );
    } finally {
      child.kill('SIGTERM');
      await exit;
    }
  });
});
