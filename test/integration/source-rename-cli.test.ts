// A source id renamed or removed in the configuration of a bridge with history. Transaction ids are
// derived from the source id: started as it is, the renamed source sent every birth again as new
// OpenCRVS events, and dead rows under the old id went unseen by `sync --once`. serve, sync, replay and
// doctor refuse until the operator runs `ledger rename-source` or `ledger retire-source`.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openLedger } from '../../src/ledger/index.js';
import { eventInput } from '../unit/ledger-helpers.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';

function writeConfig(s: Simulators, file: string, sourceIds: string[], extra: Record<string, unknown> = {}): string {
  const object = s.configObject();
  const [source] = object.sources as Array<Record<string, unknown>>;
  object.sources = sourceIds.map((id) => ({ ...source, id, ...extra }));
  const path = join(s.dir, file);
  writeFileSync(path, stringify(object));
  return path;
}

describe('a source id renamed in the configuration', () => {
  let s: Simulators;
  before(async () => {
    s = await startSimulators([...birthResources(0), ...birthResources(1), ...birthResources(2)]);
  });
  after(async () => {
    await s?.close();
  });

  it('stops sync and doctor until `ledger rename-source`, which moves the history so nothing is sent twice', async () => {
    const typo = writeConfig(s, 'typo.yaml', ['hopsital-emr']);
    const first = await runCli(['sync', '--once', '--config', typo]);
    assert.equal(first.code, 0, first.stderr || first.stdout);
    assert.equal((await s.sim.control.events()).length, 3);

    const fixed = writeConfig(s, 'fixed.yaml', ['hospital-emr']);
    const refused = await runCli(['sync', '--once', '--config', fixed]);
    assert.equal(refused.code, 2, refused.stderr || refused.stdout);
    assert.match(refused.stderr, /configuration error: sources\[\]\.id: .*source id "hopsital-emr" \(3 events/);
    assert.match(refused.stderr, /ledger rename-source hopsital-emr hospital-emr/);
    assert.match(refused.stderr, /ledger retire-source hopsital-emr/);
    const doctor = await runCli(['doctor', '--config', fixed]);
    assert.equal(doctor.code, 1, doctor.stdout);
    assert.match(
      doctor.stdout,
      /✖ ledger sources: .*"hopsital-emr" \(3 events.*rename-source hopsital-emr hospital-emr/,
    );

    // Beside a bridge that has the ledger open (a serve), the rename is refused and changes nothing.
    const running = openLedger(join(s.dir, 'bridge.db'));
    try {
      const busy = await runCli(['ledger', 'rename-source', 'hopsital-emr', 'hospital-emr', '--config', fixed]);
      assert.equal(busy.code, 1, busy.stderr || busy.stdout);
      assert.match(busy.stderr, /is open in another process .*stop it first/);
      assert.deepEqual(running.sources.recordedIds(), ['hopsital-emr']);
    } finally {
      running.close();
    }

    // `ledger`'s view options are refused where they are typed, after the subcommand as before it, with
    // where they belong (not commander's "unknown option" and the whole help), and nothing is moved.
    for (const args of [
      ['ledger', 'rename-source', 'hopsital-emr', 'hospital-emr', '--config', fixed, '--json'],
      ['ledger', '--json', 'rename-source', 'hopsital-emr', 'hospital-emr', '--config', fixed],
    ]) {
      const misplaced = await runCli(args);
      assert.equal(misplaced.code, 2, misplaced.stderr || misplaced.stdout);
      assert.equal(
        misplaced.stderr.trim(),
        'rename-source: --json is an option of `ledger` itself (the list of events), not of rename-source, ' +
          'which takes --config only and prints text. Nothing was changed.',
      );
      assert.equal(misplaced.stdout, '');
    }
    const retire = await runCli(['ledger', 'retire-source', 'hopsital-emr', '--status', 'dead', '--json']);
    assert.equal(retire.code, 2, retire.stderr || retire.stdout);
    assert.match(retire.stderr, /^retire-source: --status and --json are options of `ledger` itself/);
    assert.match(retire.stderr, /which takes --config and --not-renamed only/);
    const untouched = openLedger(join(s.dir, 'bridge.db'));
    try {
      assert.deepEqual(untouched.sources.recordedIds(), ['hopsital-emr'], 'nothing was moved');
    } finally {
      untouched.close();
    }

    const renamed = await runCli(['ledger', 'rename-source', 'hopsital-emr', 'hospital-emr', '--config', fixed]);
    assert.equal(renamed.code, 0, renamed.stderr || renamed.stdout);
    // Four watermarks and the source's recorded address (its identity): all follow the source.
    assert.match(renamed.stdout, /Moved source "hopsital-emr" to "hospital-emr": 3 events, 5 cursors/);

    for (const resource of birthResources(3)) await s.fhir.upsert(resource);
    const after = await runCli(['sync', '--once', '--config', fixed, '--json']);
    assert.equal(after.code, 0, after.stderr || after.stdout);
    assert.equal((await s.sim.control.events()).length, 4, 'the three births are not sent again; the new one is');
    const doctorAfter = await runCli(['doctor', '--config', fixed]);
    assert.doesNotMatch(doctorAfter.stdout, /ledger sources/);
  });

  it('refuses to rename onto an id that already has history, or from one that has none', async () => {
    const config = writeConfig(s, 'fixed.yaml', ['hospital-emr']);
    const gone = await runCli(['ledger', 'rename-source', 'hopsital-emr', 'hospital-emr', '--config', config]);
    assert.equal(gone.code, 2, gone.stderr || gone.stdout);
    assert.match(gone.stderr, /the ledger holds nothing under source id "hopsital-emr"/);

    const ledger = openLedger(join(s.dir, 'bridge.db'));
    ledger.recordEvent({ ...eventInput('9'), sourceId: 'stale' });
    ledger.close();
    const merge = await runCli(['ledger', 'rename-source', 'stale', 'hospital-emr', '--config', config]);
    assert.equal(merge.code, 2, merge.stderr || merge.stdout);
    assert.match(merge.stderr, /source id "hospital-emr" already has history in the ledger \(4 events/);
    const typo = await runCli(['ledger', 'rename-source', 'stale', 'hospitl-emr', '--config', config]);
    assert.equal(typo.code, 2, typo.stderr || typo.stdout);
    assert.match(typo.stderr, /"hospitl-emr" is not in sources\[\]/);
  });
});

describe('a source removed from the configuration with a dead row', () => {
  let s: Simulators;
  before(async () => {
    s = await startSimulators(birthResources(0, 'gone'));
  });
  after(async () => {
    await s?.close();
  });

  it("is refused until retired, and a retired source's dead row still fails `sync --once`", async () => {
    await s.sim.control.configure({ actionConfirmation: 'reject' });
    const old = writeConfig(s, 'old.yaml', ['emr']);
    const dead = await runCli(['sync', '--once', '--config', old]);
    assert.equal(dead.code, 1, dead.stderr || dead.stdout);
    await s.sim.control.configure({ actionConfirmation: 'accept' });

    // Another source in its place, from a later start date: nothing it reads is the removed source's.
    const replaced = writeConfig(s, 'new.yaml', ['emr-main'], {
      poll: { schedule: '*/1 * * * * *', overlapSeconds: 2, pageSize: 50, since: '2100-01-01' },
    });
    const refused = await runCli(['sync', '--once', '--config', replaced]);
    assert.equal(refused.code, 2, refused.stderr || refused.stdout);
    assert.match(refused.stderr, /source id "emr" \(1 events/);

    // emr-main has nothing recorded: it may be emr renamed, which retiring would send again.
    const guarded = await runCli(['ledger', 'retire-source', 'emr', '--config', replaced]);
    assert.equal(guarded.code, 2, guarded.stderr);
    assert.match(guarded.stderr, /rename-source emr emr-main` instead/);
    const retired = await runCli(['ledger', 'retire-source', 'emr', '--not-renamed', '--config', replaced]);
    assert.equal(retired.code, 0, retired.stderr || retired.stdout);
    assert.match(retired.stdout, /Retired source "emr"/);
    assert.match(retired.stdout, /1 of them are not delivered \(1 dead\)/);

    const pass = await runCli(['sync', '--once', '--config', replaced, '--json']);
    assert.equal(pass.code, 1, pass.stderr || pass.stdout);
    const summary = JSON.parse(pass.stdout);
    assert.equal(summary.ok, false);
    assert.deepEqual(
      summary.earlier.map((row: { state: string }) => row.state),
      ['dead'],
    );
  });
});
