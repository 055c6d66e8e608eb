import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerLedger } from '../../src/commands/ledger.js';
import { registerReplay } from '../../src/commands/replay.js';
import { openLedger } from '../../src/ledger/index.js';
import { WriteBackStore } from '../../src/sources/writeback/index.js';
import { eventInput, payload, settleRow } from './ledger-helpers.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...parts: unknown[]) => out.push(parts.join(' '));
  console.error = (...parts: unknown[]) => err.push(parts.join(' '));
  process.exitCode = undefined;
  try {
    // Only these two commands: the full CLI pulls in parts built elsewhere.
    const program = new Command('opencrvs-bridge').exitOverride();
    program.configureOutput({ writeErr: (text) => err.push(text), writeOut: (text) => out.push(text) });
    registerLedger(program);
    registerReplay(program);
    let code = 0;
    try {
      await program.parseAsync(['node', 'opencrvs-bridge', ...args]);
      code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      code = e.exitCode;
    }
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.exitCode = undefined;
  }
}

describe('ledger and replay commands', () => {
  let dir: string;
  let config: string;
  let db: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-cli-'));
    db = join(dir, 'bridge.db');
    config = join(dir, 'bridge.yaml');
    writeFileSync(
      config,
      `opencrvs:\n  domain: example.org\n  clientId: bridge\n  clientSecret: s3cret-value\nstore:\n  path: ${db}\n`,
    );
    const ledger = openLedger(db);
    ledger.recordEvent(eventInput('1'));
    const { row } = ledger.recordEvent(eventInput('2'));
    ledger.recordCreated(row.id, 'event-2', 'TRK0002'); // the create answered; the NOTIFY was refused
    settleRow(ledger, row.id, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', status: 400, message: 'Unexpected field foo.bar' },
    });
    ledger.setHold({ reason: 'forbidden (HTTP 403): Forbidden', since: 0, kind: 'forbidden', status: 403, rowId: 2 });
    // The configuration has no sources: `emr` was removed for good (else replay refuses to start).
    ledger.sources.retire('emr', 0);
    ledger.close();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('tells an operator hold to fix the credentials, and an outage hold to look at OpenCRVS and the network', async () => {
    const credentials = await run(['ledger', '--config', config]);
    assert.match(credentials.out, /Fix the credentials, scopes or office/);
    const ledger = openLedger(db);
    ledger.setHold({
      reason: 'OpenCRVS out of reach: network: UND_ERR_SOCKET',
      since: 0,
      kind: 'network',
      rowId: 2,
      outage: true,
    });
    ledger.close();
    const { code, out } = await run(['ledger', '--config', config]);
    assert.equal(code, 0);
    assert.match(out, /DELIVERY HELD since 1970-01-01T00:00:00.000Z: OpenCRVS out of reach: network: UND_ERR_SOCKET/);
    assert.match(out, /check that OpenCRVS is up and that this host reaches it/);
    assert.doesNotMatch(out, /credentials|scopes/, 'an outage is no credentials problem');
    assert.doesNotMatch(out, /probe tries again/, "an outage's probe sends no row");
  });

  it('tells a hold of an office OpenCRVS does not know to correct the route that chose it, by its key', async () => {
    const office = '0be1dc9b-0000-4000-8000-000000000001';
    const hold = {
      reason: 'unknown-office (HTTP 400): createdAtLocation must be a valid location id',
      since: 0,
      kind: 'unknown-office',
      status: 400,
      rowId: 2,
      office,
    };
    let ledger = openLedger(db);
    ledger.setHold({ ...hold, routingKeys: ["routing.facilities['Location/kch-maternity'].office"] });
    ledger.close();
    const named = await run(['ledger', '--config', config]);
    assert.equal(named.code, 0);
    assert.match(
      named.out,
      new RegExp(
        `does not know office ${office}, to which routing\\.facilities\\['Location/kch-maternity'\\]\\.office routes: correct that route in the config and restart`,
      ),
    );
    assert.doesNotMatch(named.out, /credentials|scopes/, 'an office is no credentials problem');
    // A hold from before the keys were kept (or whose office no key routes to any more) names the office.
    ledger = openLedger(db);
    ledger.setHold(hold);
    ledger.close();
    const unnamed = await run(['ledger', '--config', config]);
    assert.match(unnamed.out, new RegExp(`does not know office ${office}, chosen by the routing table: correct`));
  });

  it('shows rows, errors and the hold without any declaration content', async () => {
    const { code, out } = await run(['ledger', '--config', config]);
    assert.equal(code, 0);
    assert.match(
      out,
      /DELIVERY HELD since 1970-01-01T00:00:00.000Z: forbidden \(HTTP 403\): Forbidden \(shown by row #2,/,
    );
    assert.match(out, /dead: 1 {2}pending: 1/);
    assert.match(out, /ID\s+STATE\s+EVENT\s+SOURCE REF/);
    assert.match(
      out,
      /dead\s+birth\s+emr:Encounter\/2\s+1\s+TRK0002 \(not notified\)\s+.*permanent\/bad-request 400: Unexpected field foo.bar/,
    );
    assert.doesNotMatch(out, /Test|Child|2026-01-02/);
  });

  it("hides a dismissal's reason (it may name the patient) unless asked with --show-reasons", async () => {
    const ledger = openLedger(db);
    ledger.dismiss([2], 'Amani Banda is a test patient');
    ledger.close();
    const hidden =
      'dismissed by an operator: (reason hidden, 29 characters: may name the patient; --show-reasons prints it)';
    for (const args of [[], ['--json'], ['--find', '#2'], ['--find', '#2', '--json']]) {
      const { code, out } = await run(['ledger', '--config', config, ...args]);
      assert.equal(code, 0);
      assert.doesNotMatch(out, /Amani|Banda/, args.join(' '));
      assert.ok(out.includes(hidden), `${args.join(' ')}: ${out}`);
    }
    const table = await run(['ledger', '--config', config, '--show-reasons']);
    assert.match(table.out, /skipped: dismissed by an operator: Amani Banda is a test patient/);
    const json = await run(['ledger', '--config', config, '--show-reasons', '--json']);
    const row = (JSON.parse(json.out) as { rows: Array<{ id: number; skipReason: string }> }).rows.find(
      (r) => r.id === 2,
    );
    assert.equal(row?.skipReason, 'dismissed by an operator: Amani Banda is a test patient');
    const help = await run(['ledger', '--help']);
    assert.match(help.out.replace(/\s+/g, ' '), /a dismissal's reason only with --show-reasons/);
  });

  it('shows of the attempts those counted toward delivery.maxAttempts, apart from those that never reached OpenCRVS', async () => {
    const ledger = openLedger(db);
    const gateway = {
      classification: 'retryable',
      kind: 'server',
      status: 503,
      message: 'Service Unavailable',
    } as const;
    settleRow(ledger, 1, { outcome: 'retry', error: gateway, nextRunAt: 0, unreached: true });
    settleRow(ledger, 1, { outcome: 'retry', error: gateway, nextRunAt: 0, unreached: true });
    settleRow(ledger, 1, { outcome: 'retry', error: { ...gateway, status: 500, message: 'boom' }, nextRunAt: 0 });
    ledger.close();
    const { out } = await run(['ledger', '--config', config, '--status', 'failed']);
    assert.match(out, /failed\s+birth\s+emr:Encounter\/1\s+3 \(1 counted\)\s/);
    const json = JSON.parse((await run(['ledger', '--config', config, '--json', '--status', 'failed'])).out);
    assert.equal(json.rows[0]?.attempts, 3, 'the total, as before');
    assert.equal(json.rows[0]?.countedAttempts, 1);
    assert.equal(json.rows[0]?.unreachedAttempts, 2);
    // Its attempt list says which: numbered 1 to 3 alone, it read as three of a limit beside "3 (1 counted)".
    const found = (await run(['ledger', '--config', config, '--find', '#1'])).out;
    assert.match(
      found,
      /\n1 \(not counted\)\s+notify\s+retry\s.*\n2 \(not counted\)\s+notify\s+retry\s.*\n3\s+notify\s+retry\s/,
    );
    const foundJson = JSON.parse((await run(['ledger', '--config', config, '--find', '#1', '--json'])).out);
    assert.deepEqual(
      foundJson.attempts.map((a: { unreached: boolean }) => a.unreached),
      [true, true, false],
    );
    // A row whose every attempt counted shows its number alone, as before.
    assert.match((await run(['ledger', '--config', config, '--status', 'dead'])).out, /emr:Encounter\/2\s+1\s+TRK0002/);
    const help = await run(['ledger', '--help']);
    assert.match(help.out.replace(/\s+/g, ' '), /\(N counted\)/);
  });

  it('filters by status and prints JSON without payloads', async () => {
    const { code, out } = await run(['ledger', '--config', config, '--status', 'dead', '--json']);
    assert.equal(code, 0);
    const parsed: { rows: Array<Record<string, unknown>>; hold: unknown } = JSON.parse(out);
    assert.equal(parsed.rows.length, 1);
    assert.equal(parsed.rows[0]?.state, 'dead');
    assert.equal(parsed.rows[0]?.payload, undefined);
    assert.equal(parsed.rows[0]?.hasPayload, true);
    assert.ok(parsed.hold);
    assert.doesNotMatch(out, /Child/);
  });

  it('lists the events whose record changed after notification with --updated-after-notification', async () => {
    const ledger = openLedger(db);
    const { row } = ledger.recordEvent(eventInput('named'));
    settleRow(ledger, row.id, { outcome: 'delivered', eventId: 'event-n', trackingId: 'TRKNAMED' });
    ledger.recordEvent(eventInput('named', payload('Mutale'), '2')); // named after delivery
    ledger.close();
    const { code, out } = await run(['ledger', '--config', config, '--updated-after-notification', '--json']);
    assert.equal(code, 0);
    const rows = (JSON.parse(out) as { rows: Array<{ id: number; updatesAfterNotification: number }> }).rows;
    assert.deepEqual(
      rows.map((r) => [r.id, r.updatesAfterNotification]),
      [[row.id, 1]],
    );
    const text = await run(['ledger', '--config', config, '--updated-after-notification']);
    assert.match(text.out, /updated ×1 after notification/);
    assert.doesNotMatch(text.out, /Mutale/);
  });

  it('finds one event by its EMR record and lists its attempts', async () => {
    const byRef = await run(['ledger', '--config', config, '--find', 'Patient/2']);
    assert.equal(byRef.code, 0);
    assert.match(byRef.out, /^2\s+dead\s+birth\s+emr:Encounter\/2/m);
    assert.doesNotMatch(byRef.out, /emr:Encounter\/1\b/);
    assert.doesNotMatch(byRef.out, /pending: 1/, "the whole ledger's counts are not this event's");
    assert.doesNotMatch(byRef.out, /No event matches/, 'an event found is not said to be missing');
    assert.match(byRef.out, /ATTEMPT\s+STEP\s+OUTCOME\s+FINISHED\s+ERROR/);
    assert.match(
      byRef.out,
      /^1\s+notify\s+dead\s+\d{4}-\d\d-\d\dT[\d:]{8}Z\s+permanent\/bad-request 400: Unexpected field/m,
    );

    // '#1', as sync prints a row: that row alone, whatever its record's id.
    const byRow = JSON.parse((await run(['ledger', '--config', config, '--find', '#1', '--json'])).out);
    assert.deepEqual(
      byRow.rows.map((r: { id: number }) => r.id),
      [1],
    );

    const json = JSON.parse((await run(['ledger', '--config', config, '--find', '2', '--json'])).out);
    assert.deepEqual(
      json.rows.map((r: { id: number }) => r.id),
      [2],
    );
    assert.deepEqual(
      json.attempts.map((a: { outcome: string }) => a.outcome),
      ['dead'],
    );

    // A long error is cut in the table; looking up that one event shows it whole.
    const ledger = openLedger(db);
    const long = `Unexpected field ${'x.'.repeat(40)}end-of-message`;
    const { row } = ledger.recordEvent(eventInput('3'));
    settleRow(ledger, row.id, {
      outcome: 'dead',
      error: { classification: 'permanent', kind: 'bad-request', status: 400, message: long },
    });
    ledger.close();
    const cut = await run(['ledger', '--config', config, '--status', 'dead']);
    assert.doesNotMatch(cut.out, /end-of-message/);
    const whole = await run(['ledger', '--config', config, '--find', 'Patient/3']);
    assert.match(
      whole.out,
      /Last error in full:\n {2}permanent\/bad-request 400: Unexpected field (x\.)+end-of-message/,
    );

    const none = await run(['ledger', '--config', config, '--find', 'Patient/9']);
    assert.equal(none.code, 1, 'a lookup that finds nothing exits 1');
    assert.match(none.out, /No event matches Patient\/9\./);
    assert.doesNotMatch(none.out, /ATTEMPT/);
    // Not recorded at all may be a record the mappings did not take, or one from before go-live: the dry
    // run on the live record says which, named with the config given.
    assert.match(none.out, /no event for the mappings .* leaves no row/);
    assert.match(none.out, /last changed before the source's go-live \(sources\[\]\.poll\.since or sinceDays\)/);
    assert.ok(none.out.includes(`\`opencrvs-bridge map --config ${config} --ref Patient/9\``), none.out);
    const prefixed = await run(['ledger', '--config', config, '--find', 'emr:Patient/9']);
    assert.ok(prefixed.out.includes(`map --config ${config} --source emr --ref Patient/9\``), prefixed.out);
  });

  it("says what events are found by when a lookup by another record (the mother's) finds none", async () => {
    const ledger = openLedger(db);
    const { row } = ledger.recordEvent(eventInput('child-5'));
    settleRow(ledger, row.id, { outcome: 'delivered', eventId: 'event-5', trackingId: 'TRK0005' });
    ledger.close();
    assert.equal((await run(['ledger', '--config', config, '--find', 'Patient/child-5'])).code, 0);
    // The birth arrived, but the ledger does not record the mother's Patient: not found, and said why.
    const mother = await run(['ledger', '--config', config, '--find', 'Patient/mother-5']);
    assert.equal(mother.code, 1, 'nothing is recorded under that reference: still exit 1, as documented');
    assert.match(mother.out, /No event matches Patient\/mother-5\.\nEvents are recorded under the child's/);
    assert.match(
      mother.out,
      /A mother's record, .* are not: no match by one of them does not mean the event did not arrive/,
    );
    assert.match(mother.out, /Look it up by the child's record or the tracking ID\./);
    // --json says the same in `explanation`, beside the fields it always had.
    const json = await run(['ledger', '--config', config, '--find', 'Patient/mother-5', '--json']);
    assert.equal(json.code, 1);
    const view = JSON.parse(json.out);
    assert.deepEqual(Object.keys(view), ['hold', 'counts', 'rows', 'explanation']);
    assert.deepEqual(view.rows, []);
    const said = mother.out.slice(mother.out.indexOf('No event matches'));
    assert.equal(view.explanation, said.replaceAll('\n', ' '), "the text form's explanation, on one line");
    const found = JSON.parse((await run(['ledger', '--config', config, '--find', 'Patient/child-5', '--json'])).out);
    assert.equal(found.explanation, undefined, 'a match needs no explanation');
    // A row number is no record: nothing to explain.
    const row99 = await run(['ledger', '--config', config, '--find', '#99']);
    assert.equal(row99.code, 1);
    assert.match(row99.out, /\nNo event matches #99\.$/);
    const row99Json = JSON.parse((await run(['ledger', '--config', config, '--find', '#99', '--json'])).out);
    assert.equal(row99Json.explanation, 'No event matches #99.');
  });

  it("says that identifiers (an MRN) are not searched, and how the source finds the record's id", async () => {
    writeFileSync(
      config,
      `${readFileSync(config, 'utf8')}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: https://emr.example.org/openmrs/ws/fhir2/R4/?tenant=not-for-output\n    writeBack: {}\n`,
    );
    const mrn = await run(['ledger', '--config', config, '--find', '9932702']);
    assert.equal(mrn.code, 1);
    // The base URL as every other command shows one: a query may carry a key.
    assert.doesNotMatch(mrn.out, /not-for-output/);
    assert.match(mrn.out, /Identifiers \(a medical record number, an OpenMRS identifier\) are not searched/);
    // Not indexed, not "not kept": a declaration the ledger still holds (payloadRetentionHours) carries them.
    assert.match(mrn.out, /personal data, which the ledger does not index\./);
    assert.doesNotMatch(mrn.out, /does not keep|keeps no personal data/);
    assert.match(mrn.out, /GET https:\/\/emr\.example\.org\/openmrs\/ws\/fhir2\/R4\/Patient\?identifier=9932702\)/);
    // The system the write-back really uses (its default), so the tracking id can be read off the Patient.
    assert.match(mrn.out, /identifier of system http:\/\/opencrvs\.org\/tracking-id\./);
    const openmrs = JSON.parse((await run(['ledger', '--config', config, '--find', '4444-6', '--json'])).out);
    assert.match(openmrs.explanation, /Patient\?identifier=4444-6\) and look up Patient\/<that id>/);
    // A reference is no identifier: the mother's Patient keeps the shorter answer.
    const mother = await run(['ledger', '--config', config, '--find', 'Patient/mother-5']);
    assert.doesNotMatch(mother.out, /Identifiers/);
  });

  it('tells a DHIS2 source the tracker query that finds a tracked entity by an identifier, not a FHIR one', async () => {
    writeFileSync(
      config,
      `${readFileSync(config, 'utf8')}sources:\n  - id: hmis\n    kind: dhis2\n    baseUrl: https://hmis.example.org/api/\n    dhis2:\n      program: SbxDthProg1\n`,
    );
    const nid = await run(['ledger', '--config', config, '--find', '1234-5']);
    assert.equal(nid.code, 1);
    // The attribute the source's mapping (death.dhis2, its default) names the identifier by: codes.nationalId.
    assert.match(
      nid.out,
      /\(GET https:\/\/hmis\.example\.org\/api\/tracker\/trackedEntities\?program=SbxDthProg1&filter=AuPLng5hLbE:eq:1234-5\) and look up TrackedEntity\/<its trackedEntity uid>\./,
    );
    assert.doesNotMatch(nid.out, /Patient\?identifier/);
    // No EMR is configured: its kinds of identifier are not what DHIS2 keeps.
    assert.match(
      nid.out,
      /Identifiers \(a national identifier, or another tracked entity attribute\) are not searched/,
    );
    assert.doesNotMatch(nid.out, /OpenMRS|medical record number/);
  });

  it('leaves the DHIS2 attribute to fill in when the mappings name more than one identifier attribute', async () => {
    const shipped = readFileSync(new URL('../../mappings/death.dhis2.yaml', import.meta.url), 'utf8');
    const mapping = join(dirname(config), 'death.site.yaml');
    writeFileSync(
      mapping,
      shipped.replace(/^id: death\.dhis2$/m, 'id: death.site').replace(/^codes:\n/m, 'codes:\n  mrn: [SbxAttrMrn1]\n'),
    );
    writeFileSync(
      config,
      `${readFileSync(config, 'utf8')}sources:\n  - id: hmis\n    kind: dhis2\n    baseUrl: https://hmis.example.org\n    dhis2:\n      program: SbxDthProg1\n    mappings: [./death.site.yaml]\n`,
    );
    const nid = await run(['ledger', '--config', config, '--find', '1234-5']);
    assert.equal(nid.code, 1);
    assert.match(nid.out, /program=SbxDthProg1&filter=<attribute uid>:eq:1234-5\)/);
  });

  it('answers beside a mapping that does not load, which it never compiles; a mapping file not there stops it by key', async () => {
    // An operator looking into a broken deployment (serve refusing a mapping edited in place) needs the ledger.
    writeFileSync(join(dirname(config), 'birth.site.yaml'), 'id: birth.site\nfields: [[[\n');
    const base = readFileSync(config, 'utf8');
    const source = '  - id: emr\n    kind: fhir\n    baseUrl: https://emr.example.org/fhir\n    auth: { type: none }\n';
    writeFileSync(config, `${base}sources:\n${source}    mappings: [./birth.site.yaml]\n`);
    const found = await run(['ledger', '--config', config, '--find', 'Patient/1']);
    assert.equal(found.code, 0, found.err);
    assert.match(found.out, /emr:Encounter\/1/);
    assert.doesNotMatch(found.err, /configuration error|birth\.site/);
    // The configuration itself is still validated: a key naming no file is a configuration error (exit 2).
    writeFileSync(config, `${base}sources:\n${source}    mappings: [./birth.gone.yaml]\n`);
    const missing = await run(['ledger', '--config', config, '--find', 'Patient/1']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /configuration error: .*: sources\[0\]\.mappings\[0\]: no mapping file at /);
  });

  it("shows a looked-up event's write-back: its state, attempts and last error", async () => {
    const ledger = openLedger(db);
    const { row } = ledger.recordEvent(eventInput('4'));
    settleRow(ledger, row.id, { outcome: 'delivered', eventId: 'event-4', trackingId: 'TRK0004' });
    ledger.close();
    const store = new WriteBackStore(db);
    try {
      store.enqueue(row.id, 'emr', 'TRK0004', 0);
      const [claim] = store.claimDue(1, 0, 60_000);
      assert.ok(claim);
      assert.ok(
        store.done(claim, 'abandoned', Date.UTC(2026, 0, 2), 'DHIS2 write-back: DHIS2 refused the write (E1000)'),
      );
    } finally {
      store.close();
    }
    const text = await run(['ledger', '--config', config, '--find', 'Patient/4']);
    assert.equal(text.code, 0);
    assert.match(
      text.out,
      /^Write-back of the tracking id: abandoned after 1 attempt \(2026-01-02T00:00:00Z\): DHIS2 write-back: DHIS2 refused the write \(E1000\)$/m,
    );
    const json = JSON.parse((await run(['ledger', '--config', config, '--find', 'Patient/4', '--json'])).out);
    assert.equal(json.writeBack.state, 'abandoned');
    assert.equal(json.writeBack.attempts, 1);
    assert.match(json.writeBack.lastError, /E1000/);

    // An event without a write-back job says nothing of one (and --json says null).
    const none = await run(['ledger', '--config', config, '--find', 'Patient/2']);
    assert.doesNotMatch(none.out, /Write-back/);
    assert.equal(
      JSON.parse((await run(['ledger', '--config', config, '--find', 'Patient/2', '--json'])).out).writeBack,
      null,
    );
  });

  it("shows a looked-up event's write-back target, tracking id, earlier tracking ids and the write's note", async () => {
    writeFileSync(
      config,
      `${readFileSync(config, 'utf8')}sources:\n  - id: emr\n    kind: fhir\n    baseUrl: https://emr.example.org/fhir\n    writeBack:\n      identifierSystem: urn:test:tracking-id\n`,
    );
    const ledger = openLedger(db);
    const { row } = ledger.recordEvent(eventInput('4'));
    settleRow(ledger, row.id, { outcome: 'delivered', eventId: 'event-4', trackingId: 'TRK0004' });
    ledger.close();
    const note = 'Patient also holds another tracking id of urn:test:tracking-id: BOTHER1 (kept beside this one)';
    const store = new WriteBackStore(db);
    try {
      // Delivered again under a new tracking id (OpenCRVS lost the event): the job restarts, keeping the first.
      store.enqueue(row.id, 'emr', 'TRK0001', 0);
      store.enqueue(row.id, 'emr', 'TRK0004', 0);
      const [claim] = store.claimDue(1, 0, 60_000);
      assert.ok(claim);
      assert.ok(store.done(claim, 'written', Date.UTC(2026, 0, 2), undefined, note));
    } finally {
      store.close();
    }
    const text = await run(['ledger', '--config', config, '--find', 'Patient/4']);
    assert.equal(text.code, 0);
    assert.match(text.out, /^Write-back of the tracking id: written \(2026-01-02T00:00:00Z\)$/m);
    assert.match(text.out, /^ {2}Tracking id: TRK0004$/m);
    assert.match(text.out, /^ {2}Written to: FHIR identifier of system urn:test:tracking-id on the subject Patient$/m);
    assert.match(text.out, /^ {2}Earlier tracking ids of this event \(delivered again under a new one\): TRK0001$/m);
    assert.match(text.out, /^ {2}Note: Patient also holds another tracking id of urn:test:tracking-id: BOTHER1/m);
    const json = JSON.parse((await run(['ledger', '--config', config, '--find', 'Patient/4', '--json'])).out);
    assert.deepEqual(json.writeBack, {
      state: 'written',
      target: 'FHIR identifier of system urn:test:tracking-id on the subject Patient',
      trackingId: 'TRK0004',
      earlierTrackingIds: ['TRK0001'],
      attempts: 1,
      lastError: null,
      note,
      nextAttemptAt: null,
      doneAt: Date.UTC(2026, 0, 2),
    });
  });

  it("reads a relative store.path from the configuration file's folder, whatever the working directory", async () => {
    // The working directory (the repository) is not the config's folder: the old reading found nothing here.
    assert.notEqual(process.cwd(), dir);
    const yaml = (path: string) =>
      `opencrvs:\n  domain: example.org\n  clientId: bridge\n  clientSecret: s3cret-value\nstore:\n  path: ${path}\n`;
    const beside = join(dir, 'beside.yaml');
    writeFileSync(beside, yaml('./bridge.db'));
    const found = await run(['ledger', '--config', beside]);
    assert.equal(found.code, 0, found.err);
    assert.match(found.out, /dead: 1/);
    assert.equal(found.err, '');
    // No ledger there: named in full, and replay (which changes a ledger) refuses to go on.
    const elsewhere = join(dir, 'elsewhere.yaml');
    writeFileSync(elsewhere, yaml('./not-here.db'));
    const shown = await run(['ledger', '--config', elsewhere]);
    assert.equal(shown.code, 0);
    assert.equal(
      shown.out,
      `No ledger at ${join(dir, 'not-here.db')} (store.path) yet: nothing has been recorded there.`,
    );
    const shownJson = await run(['ledger', '--config', elsewhere, '--find', 'Patient/1', '--json']);
    assert.equal(shownJson.code, 1, 'nothing matches where nothing is recorded');
    assert.deepEqual(JSON.parse(shownJson.out), { hold: null, counts: [], rows: [], explanation: shown.out });
    const replay = await run(['replay', '--dead', '--config', elsewhere]);
    assert.equal(replay.code, 2);
    assert.equal(replay.err, `No ledger at ${join(dir, 'not-here.db')} (store.path).`);
  });

  it('keeps a ledger found only relative to the working directory (the old reading), saying how to make it explicit', async (t) => {
    // A config one folder down: relative to it, the path names nothing; relative to the working directory, the
    // ledger. The command runs from the ledger's folder (a cron job started there): from the repository, how
    // deep the checkout sits decides whether `../` climbs to the root, where both readings name one file.
    mkdirSync(join(dir, 'etc'));
    const cwd = process.cwd();
    process.chdir(dir);
    t.after(() => process.chdir(cwd));
    const oldReading = relative(process.cwd(), db);
    assert.notEqual(resolve(join(dir, 'etc'), oldReading), db, 'the two readings differ');
    const moved = join(dir, 'etc', 'bridge.yaml');
    writeFileSync(
      moved,
      `opencrvs:\n  domain: example.org\n  clientId: bridge\n  clientSecret: s3cret-value\nstore:\n  path: ${oldReading}\n`,
    );
    const kept = await run(['ledger', '--config', moved]);
    assert.equal(kept.code, 0, kept.err);
    assert.match(kept.out, /dead: 1/, 'the existing ledger, not a new one');
    assert.equal(
      kept.err,
      `warning: store.path ${oldReading}: using the ledger at ${db}, found relative to the working directory; a relative store.path is now read from the configuration file's folder (${resolve(join(dir, 'etc'), oldReading)}, where there is none). Set store.path: ${db} so that every command finds this ledger from any directory`,
    );
    // A ledger at both readings: which is the bridge's cannot be told, so the command stops (exit 2).
    const newReading = resolve(join(dir, 'etc'), oldReading);
    mkdirSync(dirname(newReading), { recursive: true });
    openLedger(newReading).close();
    const both = await run(['replay', '--dead', '--config', moved]);
    assert.equal(both.code, 2);
    assert.match(
      both.err,
      /^configuration error: .*store\.path: .* names a ledger at .* and another at .*: give store\.path as the absolute path of the one the bridge uses/,
    );
  });

  it('rejects an unknown status with exit code 2', async () => {
    const { code, err } = await run(['ledger', '--config', config, '--status', 'lost']);
    assert.equal(code, 2);
    assert.match(err, /--status/);
  });

  it('refuses a --limit past the cap (every row listed is held in memory first), and takes the cap itself', async () => {
    const over = await run(['ledger', '--config', config, '--limit', '10001', '--json']);
    assert.equal(over.code, 2);
    assert.match(over.err, /--limit: at most 10000 rows at once; narrow the listing with --status/);
    assert.equal(over.out, '', 'nothing listed');
    const cap = await run(['ledger', '--config', config, '--limit', '10000', '--json']);
    assert.equal(cap.code, 0);
    assert.equal((JSON.parse(cap.out) as { rows: unknown[] }).rows.length, 2);
    const help = await run(['ledger', '--help']);
    assert.match(help.out.replace(/\s+/g, ' '), /--limit <n> at most this many rows, newest first \(1-10,000\)/);
  });

  it('says when a listing is cut short at --limit, and how many rows match', async () => {
    const ledger = openLedger(db);
    for (let i = 3; i <= 105; i++) ledger.recordEvent(eventInput(String(i)));
    ledger.close();
    // 104 pending and 1 dead: the default listing shows the newest 100.
    const all = await run(['ledger', '--config', config]);
    assert.equal(all.code, 0);
    assert.match(all.out, /\nshowing 100 of 105; use --limit or --status$/);
    assert.match(all.out, /emr:Encounter\/6\b/);
    assert.doesNotMatch(all.out, /emr:Encounter\/5\b/, 'the 101st newest row is not shown');
    const pending = await run(['ledger', '--config', config, '--status', 'pending,delivering', '--limit', '3']);
    assert.match(pending.out, /showing 3 of 104; use --limit or --status$/);
    // By source, which the per-state counts do not split by: said without a total.
    const bySource = await run(['ledger', '--config', config, '--source', 'emr', '--limit', '2']);
    assert.match(bySource.out, /showing the newest 2, more match; use --limit or --status$/);
    // Everything shown: no footer.
    for (const args of [
      ['--limit', '105'],
      ['--status', 'dead'],
    ]) {
      const whole = await run(['ledger', '--config', config, ...args]);
      assert.equal(whole.code, 0);
      assert.doesNotMatch(whole.out, /showing/, args.join(' '));
    }
    const json = await run(['ledger', '--config', config, '--json']);
    assert.equal((JSON.parse(json.out) as { rows: unknown[] }).rows.length, 100);
  });

  it('rejects an event type or a source that is nowhere, rather than showing nothing', async () => {
    const type = await run(['ledger', '--config', config, '--event-type', 'Birth']);
    assert.equal(type.code, 2);
    assert.match(type.err, /unknown --event-type "Birth" \(one of birth, death\)/);
    const source = await run(['ledger', '--config', config, '--source', 'nope']);
    assert.equal(source.code, 2);
    // This config has no sources: said so, not an empty list "(sources: )".
    assert.match(source.err, /no source "nope" in the config or the ledger \(the config lists no sources\)/);
    assert.equal((await run(['ledger', '--config', config, '--event-type', 'death'])).code, 0);
  });

  it('replays dead rows by id or all with --dead, and reports rows that are not dead', async () => {
    const dead = await run(['replay', '--config', config, '--dead']);
    assert.equal(dead.code, 0);
    assert.match(dead.out, /Requeued 1 row\(s\): 2/);
    const again = await run(['replay', '--config', config, '1']);
    assert.equal(again.code, 1);
    // As serve's admin API says it: a failed row named would have been made due now.
    assert.match(
      again.out,
      /Skipped 1: is pending, not dead or failed: only dead rows replay, and failed rows are made due now/,
    );
    const ledger = openLedger(db);
    assert.equal(ledger.get(2)?.state, 'pending');
    ledger.close();
  });

  it('exits 1 when --dead leaves a row it cannot replay, saying why', async () => {
    const ledger = openLedger(db);
    const { row: invalid } = ledger.recordInvalid({
      sourceId: 'emr',
      eventType: 'birth',
      subjectKey: 'Patient/3',
      sourceRef: 'Encounter/3',
      mappingId: 'birth.fhir',
      errors: [{ field: 'child.gender', message: 'not one of male, female, unknown' }],
    });
    ledger.close();
    const result = await run(['replay', '--config', config, '--dead']);
    assert.equal(result.code, 1);
    assert.match(result.out, /Requeued 1 row\(s\): 2/);
    // This configuration has no source `emr` to map the record again from, and nothing is stored to send.
    assert.match(result.out, new RegExp(`Skipped ${invalid.id}: source emr is not in the configuration`));
  });

  it('answers a usage error with exit code 2', async () => {
    assert.equal((await run(['replay', '--config', config])).code, 2);
    assert.equal((await run(['replay', '--config', config, 'abc'])).code, 2);
    assert.equal((await run(['replay', '--config', config, '1', '--dead'])).code, 2);
    assert.equal((await run(['ledger', '--config', join(dir, 'missing.yaml')])).code, 2);
  });
});
