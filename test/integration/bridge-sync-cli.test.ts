// `opencrvs-bridge sync --once` as an external scheduler runs it: a separate process, a YAML config,
// the simulators in this process. Exit 0 when everything found was delivered, 1 when something is dead.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';

describe('opencrvs-bridge sync --once', () => {
  let s: Simulators;
  let config: string;
  before(async () => {
    s = await startSimulators([...birthResources(0), ...birthResources(1)]);
    config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject()));
  });
  after(async () => {
    await s?.close();
  });

  it('exits 0 when everything found was delivered, and a second pass finds nothing new', async () => {
    // With --json standard output is the summary alone, whatever the log level: logs go to stderr.
    const first = await runCli(['sync', '--once', '--config', config, '--json'], { LOG_LEVEL: 'info' });
    assert.equal(first.code, 0, first.stderr || first.stdout);
    assert.match(first.stderr, /"level":"info"/, 'the logs are on stderr');
    const summary = JSON.parse(first.stdout);
    assert.equal(summary.ok, true);
    assert.deepEqual(
      summary.events.map((e: { state: string }) => e.state),
      ['delivered', 'delivered'],
    );
    assert.equal((await s.sim.control.events()).length, 2);

    const second = await runCli(['sync', '--once', '--config', config]);
    assert.equal(second.code, 0, second.stderr || second.stdout);
    assert.match(second.stdout, /result: everything found was delivered/);
    assert.equal((await s.sim.control.events()).length, 2, 'nothing sent twice');
  });

  it('exits 1 when OpenCRVS rejects a notification (the row is dead)', async () => {
    await s.sim.control.configure({ actionConfirmation: 'reject' });
    for (const resource of birthResources(2)) await s.fhir.upsert(resource);
    const result = await runCli(['sync', '--once', '--config', config, '--json']);
    assert.equal(result.code, 1, result.stderr || result.stdout);
    const summary = JSON.parse(result.stdout);
    assert.equal(summary.ok, false);
    assert.deepEqual(
      summary.events.map((e: { state: string }) => e.state),
      ['dead'],
    );

    // The next pass finds nothing new, but the dead row still needs someone: the scheduler stays red.
    await s.sim.control.configure({ actionConfirmation: 'accept' });
    const next = await runCli(['sync', '--once', '--config', config]);
    assert.equal(next.code, 1, next.stderr || next.stdout);
    assert.match(next.stdout, /earlier events still not delivered: 1 dead, 0 failing/);
    const json = JSON.parse((await runCli(['sync', '--once', '--config', config, '--json'])).stdout);
    assert.deepEqual(
      json.earlier.map((e: { state: string }) => e.state),
      ['dead'],
    );
  });

  it('refuses an unknown --source, a bad --timeout and a bad LOG_LEVEL with exit 2 or a clear message', async () => {
    const unknown = await runCli(['sync', '--once', '--config', config, '--source', 'nosuch']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no source "nosuch" in the config \(sources: emr\)/);
    const timeout = await runCli(['sync', '--once', '--config', config, '--timeout', 'abc']);
    assert.equal(timeout.code, 2);
    assert.match(timeout.stderr, /--timeout must be a number of seconds above 0/);
    // A mistyped flag is a usage error (2), not "something is dead" (1).
    const typo = await runCli(['sync', '--once', '--config', config, '--sourc', 'emr']);
    assert.equal(typo.code, 2, typo.stderr);
    assert.match(typo.stderr, /unknown option '--sourc'/);
    const missing = await runCli(['sync', '--config', config]);
    assert.equal(missing.code, 2, missing.stderr);
    const level = await runCli(['sync', '--once', '--config', config], { LOG_LEVEL: 'bogus' });
    assert.notEqual(level.code, 0);
    assert.match(level.stderr, /LOG_LEVEL=bogus is not a log level/);
  });

  it('exits 1 when the FHIR source cannot be read', async () => {
    const broken = join(s.dir, 'broken.yaml');
    const object = s.configObject();
    const [source] = object.sources as Array<Record<string, unknown>>;
    writeFileSync(
      broken,
      stringify({ ...object, sources: [{ ...source, baseUrl: 'http://127.0.0.1:9/fhir', timeoutMs: 500 }] }),
    );
    const result = await runCli(['sync', '--once', '--config', broken]);
    assert.equal(result.code, 1, result.stderr || result.stdout);
    assert.match(result.stdout, /sources that could not be polled: emr/);
  });
});
