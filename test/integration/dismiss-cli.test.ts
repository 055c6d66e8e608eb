// `opencrvs-bridge dismiss`: a dead row a person decided must never go stops keeping every `sync --once`
// red, and the record read again (a poll's overlap) is not sent after all.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openLedger } from '../../src/ledger/index.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';

describe('opencrvs-bridge dismiss', () => {
  let s: Simulators;
  let config: string;
  before(async () => {
    s = await startSimulators(birthResources(0));
    config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(s.configObject()));
  });
  after(async () => {
    await s?.close();
  });

  it('closes a dead row with the reason: the next sync is green and sends nothing', async () => {
    await s.sim.control.configure({ actionConfirmation: 'reject' });
    assert.equal((await runCli(['sync', '--once', '--config', config])).code, 1, 'the rejected birth is dead');
    await s.sim.control.configure({ actionConfirmation: 'accept' });
    const ledger = () => openLedger(join(s.dir, 'bridge.db'));
    const read = ledger();
    const [dead] = read.list({ states: ['dead'] });
    read.close();
    assert.ok(dead);
    const events = (await s.sim.control.events()).length;

    const usage = await runCli(['dismiss', String(dead.id), '--config', config, '--reason', '']);
    assert.equal(usage.code, 2, 'a reason is required');
    const done = await runCli(['dismiss', String(dead.id), '--config', config, '--reason', 'test patient']);
    assert.equal(done.code, 0, done.stderr || done.stdout);
    assert.match(done.stdout, new RegExp(`^Dismissed 1 row\\(s\\): ${dead.id}\\n`));
    assert.match(done.stdout, /OpenCRVS keeps its event \w+; nothing was withdrawn/);
    const again = await runCli(['dismiss', String(dead.id), '--config', config, '--reason', 'twice']);
    assert.equal(again.code, 1);
    assert.match(again.stdout, new RegExp(`Not dismissed ${dead.id}: state is skipped, not dead`));

    // The record is read again (the pass overlaps the last one): it stays dismissed, and the job is green.
    const next = await runCli(['sync', '--once', '--config', config, '--json']);
    assert.equal(next.code, 0, next.stdout);
    const after = ledger();
    assert.equal(after.get(dead.id)?.state, 'skipped');
    assert.equal(after.get(dead.id)?.skipReason, 'dismissed by an operator: test patient');
    after.close();
    assert.equal((await s.sim.control.events()).length, events, 'nothing more sent');
  });
});
