// Debug output that is not the logger's, and so not redacted: Node's own (NODE_DEBUG) writes straight
// to standard error. Separate processes, as it is read at start-up.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { NODE_DEBUG_OPT_OUT } from '../../src/observability/node-debug.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';

describe('debug output outside the logger', () => {
  let s: Simulators;
  let config: string;
  before(async () => {
    s = await startSimulators([...birthResources(0)]);
    config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject()));
  });
  after(async () => {
    await s?.close();
  });

  it('NODE_DEBUG=fetch: sync refuses to start (exit 2), one line naming the variable, nothing asked of OpenCRVS', async () => {
    const secret = String((s.configObject() as { opencrvs: { clientSecret: string } }).opencrvs.clientSecret);
    for (const nodeDebug of ['fetch', 'undici', 'HTTP', 'worker,net', '*']) {
      const run = await runCli(['sync', '--once', '--config', config], { NODE_DEBUG: nodeDebug, LOG_LEVEL: 'debug' });
      assert.equal(run.code, 2, `${nodeDebug}: ${run.stderr.slice(-2000)}`);
      // Node's own lines for what ran before main() (tsx's loader here) come first: ours is one line.
      assert.match(run.stderr, /^sync: refusing to start: NODE_DEBUG=\S+ makes Node print .*unset NODE_DEBUG/m);
      assert.equal(run.stderr.match(/refusing to start/g)?.length, 1, run.stderr);
      assert.ok(!run.stderr.includes(secret) && !run.stdout.includes(secret), `${nodeDebug}: the client secret`);
    }
    assert.equal((await s.sim.control.events()).length, 0, 'nothing delivered');
  });

  it('NODE_DEBUG of other modules, or a command that calls nobody, runs as usual', async () => {
    const ledger = await runCli(['ledger', '--config', config], { NODE_DEBUG: 'fetch' });
    assert.notEqual(ledger.code, 2, ledger.stderr);
    assert.doesNotMatch(ledger.stderr, /refusing to start/);
    const validate = await runCli(['validate', '--config', config], { NODE_DEBUG: 'fetch' });
    assert.equal(validate.code, 0, validate.stderr);
    const run = await runCli(['sync', '--once', '--config', config], { NODE_DEBUG: 'module,timer' });
    assert.doesNotMatch(run.stderr, /refusing to start/);
    assert.equal(run.code, 0, run.stderr.slice(-2000));
  });

  it(`${NODE_DEBUG_OPT_OUT}=1 lets a developer run it anyway, with a warning: the secret is then on stderr`, async () => {
    const secret = String((s.configObject() as { opencrvs: { clientSecret: string } }).opencrvs.clientSecret);
    const run = await runCli(['sync', '--once', '--config', config], {
      NODE_DEBUG: 'fetch',
      [NODE_DEBUG_OPT_OUT]: '1',
    });
    assert.doesNotMatch(run.stderr, /refusing to start/);
    assert.match(
      run.stderr,
      new RegExp(`^warning: NODE_DEBUG=fetch makes Node print fetch debug output.*${NODE_DEBUG_OPT_OUT}=1\\)$`, 'm'),
    );
    assert.equal(run.code, 0, run.stderr.slice(-2000));
    // What the refusal is for: Node's fetch debug lines show the token request's URL, unredacted.
    assert.ok(run.stderr.includes(secret), 'the client secret in the fetch debug output');
  });
});
