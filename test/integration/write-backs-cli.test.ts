// `opencrvs-bridge write-backs`: without the admin page, an abandoned write-back (its Patient was deleted
// before the tracking id could be written) is listed and re-queued from the command line, with the admin
// API's audit line, and the next `sync --once` writes it back once the Patient is there again.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { stringify } from 'yaml';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { openLedger } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { WriteBackStore } from '../../src/sources/writeback/index.js';
import { runCli } from './helpers/bridge-cli.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';

const TIMEOUT_MS = 30_000;

describe('opencrvs-bridge write-backs', () => {
  let s: Simulators;
  let config: string;
  const children: Patient[] = [];
  const rows: number[] = [];

  const job = (rowId: number) => {
    const store = new WriteBackStore(join(s.dir, 'bridge.db'), { readOnly: true });
    try {
      return store.get(rowId);
    } finally {
      store.close();
    }
  };

  before(async () => {
    const births = [0, 1].map((i) => birthResources(i));
    s = await startSimulators(births.flat());
    const object = s.configObject() as { sources: Array<Record<string, unknown>> };
    // The FHIR identifier write-back, with a long backoff: nothing runs again unless re-queued.
    object.sources[0] = { ...object.sources[0], writeBack: { maxAttempts: 3, baseDelayMs: 600_000 } };
    config = join(s.dir, 'bridge.yaml');
    writeFileSync(config, stringify(object));

    // Both births delivered, then their Patients deleted before the write-backs run: abandoned at once.
    const bridge = new Bridge(configFromObject(object), {
      logger: silentLogger,
      http: false,
      schedule: false,
      worker: false,
    });
    try {
      await bridge.start();
      const [source] = bridge.sources;
      assert.ok(source);
      await source.poller.pollOnce();
      await bridge.worker.runUntilIdle({ timeoutMs: TIMEOUT_MS });
      for (const resources of births) {
        const child = resources.find((r): r is Patient => r.resourceType === 'Patient' && !!r.id?.endsWith('-child'));
        assert.ok(child?.id);
        children.push(child);
        const deleted = await fetch(`${s.fhir.baseUrl}/Patient/${child.id}`, {
          method: 'DELETE',
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        assert.ok(deleted.ok, `DELETE answered ${deleted.status}`);
        const row = bridge.ledger.list().find((r) => r.subjectKey === `Patient/${child.id}`);
        assert.ok(row?.trackingId, 'delivered');
        rows.push(row.id);
      }
      await bridge.writeBacks?.drain();
    } finally {
      await bridge.stop();
    }
    for (const rowId of rows) assert.equal(job(rowId)?.outcome, 'abandoned');
    // The EMR restores the records: the jobs stay abandoned until an operator re-queues them.
    for (const child of children) await s.fhir.upsert(child);
  });
  after(async () => {
    await s?.close();
  });

  it('lists the abandoned jobs by row, source, attempts and error, and refuses wrong arguments with exit 2', async () => {
    const listed = await runCli(['write-backs', '--config', config]);
    assert.equal(listed.code, 0, listed.stderr);
    for (const rowId of rows)
      assert.match(listed.stdout, new RegExp(`#${rowId} emr abandoned after 1 attempt — .*no longer exists`));
    assert.match(listed.stdout, /write-backs --requeue ID/);
    for (const args of [
      ['--requeue', 'x'],
      ['--requeue', '1', '--all-abandoned'],
      ['--requeue', '1', '--source', 'emr'],
    ]) {
      const usage = await runCli(['write-backs', '--config', config, ...args]);
      assert.equal(usage.code, 2, args.join(' '));
    }
    const unknown = await runCli(['write-backs', '--config', config, '--all-abandoned', '--source', 'nosuch']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no source "nosuch" in the config/);
  });

  it('re-queues one by row id with the audit line, refuses what is not abandoned, and sync then writes it back', async () => {
    const [first, second] = rows;
    assert.ok(first && second);
    const done = await runCli(['write-backs', '--config', config, '--requeue', `#${first}`], { LOG_LEVEL: 'info' });
    assert.equal(done.code, 0, done.stderr || done.stdout);
    assert.match(done.stdout, new RegExp(`^Re-queued 1 write-back\\(s\\): ${first}\\.`));
    const audit = done.stderr
      .split('\n')
      .filter((line) => line.includes('write-back job re-queued by admin'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      audit.map((line) => [line.rowId, line.source, line.attemptsBefore]),
      [[first, 'emr', 1]],
    );
    const pending = job(first);
    assert.deepEqual([pending?.outcome, pending?.attempts], [null, 0], 'due again with a fresh budget');
    assert.equal(job(second)?.outcome, 'abandoned', 'the other one is left alone');

    const again = await runCli(['write-backs', '--config', config, '--requeue', String(first), '999999']);
    assert.equal(again.code, 1);
    assert.match(again.stdout, /^Nothing re-queued\./);
    assert.match(again.stdout, new RegExp(`Skipped ${first}: write-back is pending, not abandoned`));
    assert.match(again.stdout, /Skipped 999999: no write-back job for ledger row 999999/);

    const sync = await runCli(['sync', '--once', '--config', config]);
    assert.equal(sync.code, 0, sync.stderr || sync.stdout);
    assert.match(sync.stdout, /write-backs to the sources: 1 written/);
    assert.equal(job(first)?.outcome, 'written');
  });

  it('--all-abandoned re-queues every abandoned job of the sources that write back', async () => {
    const [, second] = rows;
    assert.ok(second);
    const done = await runCli(['write-backs', '--config', config, '--all-abandoned', '--source', 'emr']);
    assert.equal(done.code, 0, done.stderr || done.stdout);
    assert.match(done.stdout, new RegExp(`^Re-queued 1 write-back\\(s\\): ${second}\\.`));
    assert.equal(job(second)?.outcome, null);
    const none = await runCli(['write-backs', '--config', config, '--all-abandoned']);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /^Nothing re-queued\./);
  });
});

describe('opencrvs-bridge write-backs, with write-back not configured', () => {
  let dir: string;
  const configWith = (writeBack: string) => {
    const file = join(dir, 'bridge.yaml');
    writeFileSync(
      file,
      [
        'opencrvs: { domain: farajaland.example.org, clientId: bridge, clientSecret: s3cret }',
        `store: { path: ${JSON.stringify(join(dir, 'bridge.db'))} }`,
        'sources:',
        `  - { id: emr, kind: fhir, baseUrl: "http://127.0.0.1:9/fhir"${writeBack} }`,
        '  - { id: other, kind: fhir, baseUrl: "http://127.0.0.1:9/fhir" }',
        '',
      ].join('\n'),
    );
    return file;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'write-backs-off-'));
    openLedger(join(dir, 'bridge.db')).close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('says that write-back is not configured, not that no job is pending (exit 0)', async () => {
    const off = await runCli(['write-backs', '--config', configWith('')]);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /^Write-back is not configured for any source \(sources\[\]\.writeBack/);
    const disabled = await runCli(['write-backs', '--config', configWith(', writeBack: { enabled: false }')]);
    assert.match(disabled.stdout, /^Write-back is not configured for any source/);
    // One source writes back: no job is news about it; the other, asked for alone, has none configured.
    const on = configWith(', writeBack: {}');
    const none = await runCli(['write-backs', '--config', on]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, 'No write-back job pending or abandoned.\n');
    const other = await runCli(['write-backs', '--config', on, '--source', 'other']);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /^Write-back is not configured for source other /);
  });
});
