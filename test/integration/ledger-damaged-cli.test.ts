// The commands on a ledger they cannot use, as an operator runs them: a ledger damaged where the bridge
// reads while it is built (the routing answers kept from the last run), where the one-shot commands read
// (the events, the write-back jobs, a source's history) and where a sync pass reads after it polled (the rows
// of earlier passes), a file that is no database, a directory that is not there. Each ends with one line
// saying what to do, exit 1, not a crash's stack.
// The example configuration: the bridge stops before it calls anyone, so nothing needs to listen; but for
// the sync pass, which polls a FHIR sandbox and asks the OpenCRVS simulator for its offices.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { openLedger } from '../../src/ledger/index.js';
import { startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { type CliResult, runCli } from './helpers/bridge-cli.js';
import { bridgeConfigObject } from './helpers/bridge-harness.js';
import { corruptLedger } from './helpers/corrupt-ledger.js';

const example = fileURLToPath(new URL('../../examples/bridge.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ledger-damaged-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The example configuration with its ledger at `dbPath`. */
function configAt(name: string, dbPath: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, readFileSync(example, 'utf8').replace('./bridge.db', dbPath));
  return file;
}

const run = (args: string[]) => runCli(args, { BRIDGE_ADMIN_TOKEN: 'x'.repeat(32) }, 30_000);

/** Exit 1 with one line on standard error (no stack frames), nothing on standard output; that line. */
function oneLine(r: CliResult): string {
  assert.equal(r.code, 1, r.stderr || r.stdout);
  assert.equal(r.stdout, '');
  assert.doesNotMatch(r.stderr, /\n\s+at |unexpected error/, r.stderr);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  return r.stderr.trimEnd();
}

const RESTORE =
  /: restore the last backup \(docs\/deployment\.md §8 "Backup and restore"; runbook: "Ledger corrupt"\); doctor's PRAGMA quick_check names the damaged pages$/;
/** A file that is no database: doctor cannot open it either, so the line does not send the operator there. */
const RESTORE_NOT_A_DATABASE =
  /: if store\.path names the ledger and no other file, restore the last backup \(docs\/deployment\.md §8 "Backup and restore"; runbook: "Ledger corrupt"\)$/;

/**
 * One damaged ledger for every command: the index the routing answers kept from the last run are read through
 * (while a bridge is built: serve, sync, replay), the events (a listing, a dismissal), the write-back jobs and
 * the notifications (a source's history, which rename-source counts before it moves it). Each command meets
 * the damage after the ledger opened.
 */
const damaged = join(dir, 'bridge.db');
openLedger(damaged).close();
assert.notEqual(
  corruptLedger(damaged, ['sqlite_autoindex_opencrvs_locations_1', 'ledger_rows', 'write_backs', 'inbox']),
  'ok',
);
const damagedConfig = configAt('damaged', damaged);
/** A copy of it (bridge.db too) for a command that opens the ledger for itself alone, refused beside the others. */
function damagedCopy(name: string): string {
  mkdirSync(join(dir, name));
  const copy = join(dir, name, 'bridge.db');
  copyFileSync(damaged, copy);
  return configAt(name, copy);
}

describe('serve and sync on a ledger they cannot use', () => {
  it('serve says in one line that the ledger is damaged where it is read at start, and to restore the backup', async () => {
    const line = oneLine(await run(['serve', '--config', damagedConfig]));
    assert.match(
      line,
      /^serve: the ledger bridge\.db \(store\.path\) is damaged \(SQLITE_CORRUPT: database disk image is malformed\)/,
    );
    assert.match(line, RESTORE);
    assert.ok(!line.includes(dir), 'the file by its base name');
  });

  it('sync and retire-source say so of a file that is no database, sync of damage its pass meets; serve of a ledger that cannot be opened', async () => {
    const notSqlite = 'this is not an SQLite file at all, but long enough to have a header of 100 bytes'.repeat(3);
    const text = join(dir, 'text.db');
    writeFileSync(text, notSqlite);
    // Another for retire-source, which opens it for itself alone (refused while sync has the first open).
    const retireText = join(dir, 'retire', 'text.db');
    mkdirSync(join(dir, 'retire'));
    writeFileSync(retireText, notSqlite);
    const missing = join(dir, 'no-such-dir', 'bridge.db');
    // Damaged only in the index of the rows by state: the bridge is built and the pass polls the source, then
    // meets the damage listing the rows earlier passes left undone, outside what the pass itself catches.
    const rows = join(dir, 'rows.db');
    openLedger(rows).close();
    assert.notEqual(corruptLedger(rows, ['ledger_rows_state_id']), 'ok');
    const [sim, fhir] = await Promise.all([startOpenCrvsSimulator({ port: 0 }), startFhirSandbox({ port: 0 })]);
    try {
      const passConfig = join(dir, 'pass.yaml');
      writeFileSync(passConfig, stringify(bridgeConfigObject({ sim, fhirBaseUrl: fhir.baseUrl, dbPath: rows })));
      const [notADatabase, retireNotADatabase, midPass, notOpened] = await Promise.all([
        run(['sync', '--once', '--config', configAt('text', text)]),
        run(['ledger', 'retire-source', 'old-emr', '--config', configAt('retire-text', retireText)]),
        run(['sync', '--once', '--config', passConfig]),
        run(['serve', '--config', configAt('missing', missing)]),
      ]);
      const line = oneLine(notADatabase);
      assert.match(
        line,
        /^sync failed: the ledger text\.db \(store\.path\) is no SQLite database \(or its header is damaged\) \(SQLITE_NOTADB: file is not a database\)/,
      );
      assert.match(line, RESTORE_NOT_A_DATABASE);
      const retire = oneLine(retireNotADatabase);
      assert.ok(
        retire.startsWith(
          'retire-source: the ledger text.db (store.path) is no SQLite database (or its header is damaged) (SQLITE_NOTADB',
        ),
        retire,
      );
      assert.match(retire, RESTORE_NOT_A_DATABASE);
      const pass = oneLine(midPass);
      assert.match(
        pass,
        /^sync failed: the ledger rows\.db \(store\.path\) is damaged \(SQLITE_CORRUPT: database disk image is malformed\)/,
      );
      assert.match(pass, RESTORE);
      assert.match(
        oneLine(notOpened),
        /^serve: cannot open the ledger .*no-such-dir\/bridge\.db \(store\.path\): .*must exist and be writable/,
      );
    } finally {
      await Promise.all([sim.close(), fhir.close()]);
    }
  });

  it('ledger, dismiss, write-backs, replay and rename-source say it in the same line, wherever they meet the damage', async () => {
    // [the command's name in its line, its arguments]; the source id "demo-emr" is the example's.
    const commands: Array<[string, string[]]> = [
      ['ledger', ['ledger', '--config', damagedConfig]],
      ['dismiss', ['dismiss', '1', '--reason', 'a duplicate', '--config', damagedConfig]],
      ['write-backs', ['write-backs', '--config', damagedConfig]],
      ['replay', ['replay', '1', '--config', damagedConfig]],
      ['rename-source', ['ledger', 'rename-source', 'old-emr', 'demo-emr', '--config', damagedCopy('rename')]],
    ];
    // At once: each only reads (and fails), and one after another they would take five times as long.
    const results = await Promise.all(commands.map(([, args]) => run(args)));
    results.forEach((result, i) => {
      const line = oneLine(result);
      const command = commands[i]?.[0];
      assert.ok(
        line.startsWith(
          `${command}: the ledger bridge.db (store.path) is damaged (SQLITE_CORRUPT: database disk image is malformed)`,
        ),
        line,
      );
      assert.match(line, RESTORE);
    });
  });
});
