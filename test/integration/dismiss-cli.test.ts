// `opencrvs-bridge dismiss`: a dead row a person decided must never go stops keeping every `sync --once`
// red, and the record read again (a poll's overlap) is not sent after all.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openLedger } from '../../src/ledger/index.js';
import { finished, runCli, spawnCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators, waitUntil } from './helpers/bridge-harness.js';

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

  it('--undo makes the dismissed row dead again (sync is red for it), and a replay then delivers it', async () => {
    const read = openLedger(join(s.dir, 'bridge.db'));
    const [dismissed] = read.list({ states: ['skipped'] });
    read.close();
    assert.ok(dismissed, 'the row the test above dismissed');
    const deadError = dismissed.lastError;
    assert.ok(deadError, 'dismiss kept the error it died with');

    const mixed = await runCli(['dismiss', '--undo', String(dismissed.id), '--config', config, '--reason', 'x']);
    assert.equal(mixed.code, 2, 'an undo takes no reason');
    const undone = await runCli(['dismiss', '--undo', String(dismissed.id), '99999', '--config', config]);
    assert.equal(undone.code, 1, 'row 99999 was not undone');
    assert.match(undone.stdout, new RegExp(`^Dead again 1 row\\(s\\): ${dismissed.id}\\. Replay them`));
    assert.match(undone.stdout, /Not undone 99999: no such row/);
    const after = openLedger(join(s.dir, 'bridge.db'));
    const row = after.get(dismissed.id);
    after.close();
    assert.equal(row?.state, 'dead');
    assert.equal(row?.skipReason, null);
    assert.deepEqual(row?.lastError, deadError);
    assert.equal((await runCli(['sync', '--once', '--config', config])).code, 1, 'dead again: the job is red');

    // From dead, the usual way on: replay maps the record from the EMR again (dismiss dropped the payload).
    const replay = await runCli(['replay', String(dismissed.id), '--config', config]);
    assert.equal(replay.code, 0, replay.stderr || replay.stdout);
    const sync = await runCli(['sync', '--once', '--config', config]);
    assert.equal(sync.code, 0, sync.stderr || sync.stdout);
    const delivered = openLedger(join(s.dir, 'bridge.db'));
    assert.equal(delivered.get(dismissed.id)?.state, 'delivered');
    delivered.close();
  });
});

describe('opencrvs-bridge dismiss of a row whose NOTIFY may stand', () => {
  let s: Simulators;
  after(async () => {
    await s?.close();
  });

  it('says that OpenCRVS may hold it although the row has no tracking id, and that a replay asks first', async () => {
    s = await startSimulators(birthResources(0));
    const config = join(s.dir, 'bridge.yaml');
    // No retry within a pass: the second pass, after a replay makes the row due, meets the 400 configured
    // between them. (A short retry and a 1 s pass timed it: under load the pass ended before its call.)
    const delivery = { mode: 'single-call', baseDelayMs: 600_000, maxDelayMs: 600_000 };
    writeFileSync(config, stringify(s.configObject({ delivery })));
    // The single call is stored and accepted, its answer lost; the retry meets a 400, and so does the
    // lookup it makes then, and the row dies with no event id or tracking id on it: a single call records
    // none until it answers.
    await s.sim.control.configure({ faults: { commitThenFailRate: 1, operations: ['createAndNotify'], times: 1 } });
    const failed = () => {
      const ledger = openLedger(join(s.dir, 'bridge.db'));
      try {
        return ledger.list({ states: ['failed'] })[0];
      } finally {
        ledger.close();
      }
    };
    // The pass would wait for its failed row's retry until its --timeout (a bound here): it is stopped once
    // the ledger shows the call made. (Passes of 3 s timed it: under load they ended before the call.)
    const pass = spawnCli(['sync', '--once', '--config', config, '--timeout', '120']);
    const passEnded = finished(pass, 180_000);
    await waitUntil(
      'the call made and its answer lost',
      async () => {
        assert.equal(pass.exitCode, null, 'the pass runs until the row has failed');
        // Opened once the call was made: by then the pass has created the ledger.
        return ((await s.sim.control.requests()).createAndNotify ?? 0) > 0 && failed() !== undefined;
      },
      120_000,
    );
    pass.kill('SIGTERM');
    assert.equal((await passEnded).code, 1, 'stopped, the row not delivered');
    const retrying = failed();
    assert.ok(retrying, 'the call was made and its answer lost');
    assert.equal((await runCli(['replay', String(retrying.id), '--config', config])).code, 0, 'due now');
    await s.sim.control.configure({
      faults: { errorRate: 1, errorStatus: 400, operations: ['createAndNotify', 'create'], times: 2 },
    });
    await runCli(['sync', '--once', '--config', config]);
    const read = openLedger(join(s.dir, 'bridge.db'));
    const [dead] = read.list({ states: ['dead'] });
    read.close();
    assert.ok(dead, 'the birth is dead');
    assert.equal(dead.trackingId, null);

    const done = await runCli(['dismiss', String(dead.id), '--config', config, '--reason', 'duplicate']);
    assert.equal(done.code, 0, done.stderr || done.stdout);
    assert.match(
      done.stdout,
      new RegExp(`Note ${dead.id}: an earlier attempt may have been taken by OpenCRVS \\(its answer was lost\\)`),
    );
    assert.doesNotMatch(done.stdout, /keeps its event/);
  });
});
