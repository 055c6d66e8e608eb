// Debug output that is not the logger's, and so not redacted: Node's own (NODE_DEBUG) and the `debug`
// package's (DEBUG) write straight to standard error. Separate processes, as these are read at start-up.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { NODE_DEBUG_OPT_OUT } from '../../src/observability/node-debug.js';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';
import { birthResources, freePort, type Simulators, sleep, startSimulators } from './helpers/bridge-harness.js';

const ADMIN_TOKEN = 'cli-debug-output-admin-token-0123456';

describe('debug output outside the logger', () => {
  let s: Simulators;
  let config: string;
  const children: ChildProcess[] = [];
  before(async () => {
    s = await startSimulators([...birthResources(0)]);
    config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject()));
  });
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
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

  it('NODE_DEBUG=fetch: map --ref, which reads the record at its source, refuses to start too', async () => {
    const run = await runCli(['map', '--ref', 'Patient/p-birth-0-child', '--config', config], { NODE_DEBUG: 'fetch' });
    assert.equal(run.code, 2, run.stderr.slice(-2000));
    assert.match(run.stderr, /^map: refusing to start: NODE_DEBUG=fetch makes Node print /m);
    assert.ok(!run.stderr.includes('p-birth-0-child'), 'no record id on stderr');
  });

  it('NODE_DEBUG of other modules, or a command that calls nobody, runs as usual', async () => {
    const ledger = await runCli(['ledger', '--config', config], { NODE_DEBUG: 'fetch' });
    assert.notEqual(ledger.code, 2, ledger.stderr);
    assert.doesNotMatch(ledger.stderr, /refusing to start/);
    const map = await runCli(['map', '--input', join(s.dir, 'missing.json')], { NODE_DEBUG: 'fetch' });
    assert.doesNotMatch(map.stderr, /refusing to start/, 'map --input reads a file only');
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

  it('DEBUG=*: serve writes no URL of a request (an admin search for Patient/<id>) through the debug package', async () => {
    const adminPort = await freePort();
    const serveConfig = join(s.dir, 'serve.yaml');
    writeFileSync(
      serveConfig,
      stringify({
        ...s.configObject(),
        store: { path: join(s.dir, 'serve.db') },
        http: { host: '127.0.0.1', port: 0 },
        admin: { token: ADMIN_TOKEN, port: adminPort },
      }),
    );
    const child = spawnCli(['serve', '--config', serveConfig], { DEBUG: '*', LOG_LEVEL: 'debug' });
    children.push(child);
    const exit = finished(child, 60_000);
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    for (let waited = 0; !out.includes('opencrvs-bridge serving') && waited < 40_000; waited += 50) {
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    assert.match(out, /opencrvs-bridge serving/);
    const id = 'MRN-778812';
    const answer = await fetch(`http://127.0.0.1:${adminPort}/admin/api/events?find=Patient/${id}`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    });
    const body = await answer.text();
    assert.equal(answer.status, 200, body);
    child.kill('SIGTERM');
    const { code, stdout, stderr } = await exit;
    assert.equal(code, 0, stderr.slice(-2000));
    assert.match(stdout, /"path":"\/admin\/api\/events"/, 'the request was logged, by the logger');
    assert.ok(!stderr.includes(id) && !stdout.includes(id), `${id} in the output: ${stderr.slice(0, 2000)}`);
  });
});
