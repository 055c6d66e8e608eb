// FHIR write-back against the FHIR sandbox over HTTP: the tracking id as an identifier on the subject
// Patient (conditional update with If-Match, a concurrent update answered 412 and retried), or as a Task;
// the bridge's own write never comes back as a new or changed event.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import Database from 'better-sqlite3';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import type { SourceSettings, WriteBackSettings } from '../../src/config/types.js';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth, generateDeath } from '../../src/sandbox/demo/generate.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import {
  FhirWriteBack,
  WriteBackError,
  type WriteBackJob,
  WriteBackRunner,
  writeBackResourceId,
} from '../../src/sources/writeback/index.js';
import { simulatorOpenCrvs, sleep } from './helpers/bridge-harness.js';
import { answerJson, type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

const SYSTEM = 'http://opencrvs.org/tracking-id';
const SOURCE = 'emr';

interface World {
  fhir: FhirSandbox;
  sim: OpenCrvsSimulator;
  bridge: Bridge;
  dir: string;
  /** A new Bridge on the same ledger, as the next `sync --once` run is. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function startWorld(writeBack: Record<string, unknown>, seed: Resource[]): Promise<World> {
  const fhir = await startFhirSandbox({ port: 0, seed: [...DEMO_FACILITIES.map(facilityLocation), ...seed] });
  const sim = await startOpenCrvsSimulator({ port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'bridge-writeback-'));
  const config = configFromObject({
    opencrvs: simulatorOpenCrvs(sim),
    store: { path: join(dir, 'bridge.db') },
    delivery: { baseDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 20 },
    sources: [
      {
        id: SOURCE,
        kind: 'fhir',
        baseUrl: fhir.baseUrl,
        timeoutMs: 5000,
        poll: { overlapSeconds: 2, pageSize: 50 },
        writeBack: { baseDelayMs: 20, maxDelayMs: 200, ...writeBack },
      },
    ],
    routing: {
      defaultOffice: 'LHUYvwY2Aq1',
      facilities: {
        'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
        'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
      },
    },
    logging: { level: 'silent' },
  });
  const open = async () => {
    const bridge = new Bridge(config, { logger: silentLogger, schedule: false, http: false, worker: false });
    await bridge.start();
    return bridge;
  };
  const world: World = {
    fhir,
    sim,
    bridge: await open(),
    dir,
    async restart() {
      await this.bridge.stop();
      this.bridge = await open();
    },
    async close() {
      await this.bridge.stop().catch(() => undefined);
      await Promise.all([fhir.close(), sim.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

async function read(fhir: FhirSandbox, ref: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${fhir.baseUrl}/${ref}`, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200, `read ${ref}`);
  const body: unknown = await response.json();
  assert.ok(body && typeof body === 'object');
  return { ...body };
}

function identifiers(resource: Record<string, unknown>): Array<{ system?: string; value?: string }> {
  const list = resource.identifier;
  return Array.isArray(list) ? list : [];
}

function versionOf(resource: Record<string, unknown>): string | undefined {
  const meta = resource.meta;
  return meta && typeof meta === 'object' && 'versionId' in meta ? String(meta.versionId) : undefined;
}

describe('FHIR write-back: identifier on the subject Patient', () => {
  let w: World;
  const seed = [
    ...generateBirth(1, { prefix: 'wb' }),
    ...generateBirth(2, { prefix: 'wb' }),
    ...generateDeath(1, { prefix: 'wb' }),
  ];

  before(async () => {
    w = await startWorld({}, seed);
  });
  after(async () => {
    await w?.close();
  });

  it('adds the tracking id with the configured system to each subject, keeping its other identifiers', async () => {
    const summary = await w.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.ok(summary.ok);
    const rows = w.bridge.ledger.list();
    assert.equal(rows.length, 3);
    for (const row of rows) {
      assert.ok(row.trackingId);
      const patient = await read(w.fhir, row.subjectKey);
      const ids = identifiers(patient);
      assert.ok(
        ids.some((i) => i.system === SYSTEM && i.value === row.trackingId),
        `tracking id on ${row.subjectKey}`,
      );
      assert.ok(
        ids.some((i) => i.system === 'urn:demo:emr:mrn'),
        'the EMR identifier stays',
      );
      assert.equal(versionOf(patient), '2', 'one update, on top of the version read');
      assert.equal(w.bridge.writeBacks?.store.get(row.id)?.outcome, 'written');
      assert.equal(row.state, 'delivered');
    }
  });

  it('re-polls the updated Patients to the same payload: nothing new, no second event', async () => {
    const events = (await w.sim.control.events()).length;
    const again = await w.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.ok(again.report.mapped.unchanged >= 3, 'the written-back Patients were mapped again');
    assert.equal(again.report.mapped.inserted, 0);
    assert.equal(again.report.mapped.replaced, 0);
    assert.equal(again.report.mapped['updated-after-notification'], 0);
    assert.equal((await w.sim.control.events()).length, events);
    for (const row of w.bridge.ledger.list()) assert.equal(row.updatesAfterNotification, 0);
  });
});

describe('FHIR write-back: a NOTIFY answered pending is written back once accepted, never when rejected', () => {
  let w: World;
  const seed = [...generateBirth(4, { prefix: 'wbp' }), ...generateBirth(5, { prefix: 'wbp' })];

  before(async () => {
    w = await startWorld({}, seed);
    await w.sim.control.configure({ actionConfirmation: 'pending' });
  });
  after(async () => {
    await w?.close();
  });

  const hasTrackingId = async (subjectKey: string) =>
    identifiers(await read(w.fhir, subjectKey)).some((i) => i.system === SYSTEM);

  it('writes nothing while the country configuration has not decided', async () => {
    const summary = await w.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.ok(summary.ok);
    const rows = w.bridge.ledger.list();
    assert.deepEqual(
      rows.map((row) => [row.state, Boolean(row.trackingId)]),
      [
        ['delivered-pending', true],
        ['delivered-pending', true],
      ],
    );
    for (const row of rows) {
      assert.equal(w.bridge.writeBacks?.store.get(row.id), undefined, 'no write-back job yet');
      assert.equal(await hasTrackingId(row.subjectKey), false);
    }
  });

  it('writes the accepted one back after the check that learns the decision, and not the rejected one', async () => {
    const [accepted, rejected] = w.bridge.ledger.list();
    assert.ok(accepted?.eventId && rejected?.eventId);
    await w.sim.control.confirm(accepted.eventId, 'accept');
    await w.sim.control.confirm(rejected.eventId, 'reject');
    // The checks are minutes away; the ledger file is moved on instead of the clock.
    const db = new Database(join(w.dir, 'bridge.db'));
    try {
      db.prepare("UPDATE ledger_rows SET pending_check_at = 0 WHERE state = 'delivered-pending'").run();
    } finally {
      db.close();
    }
    await w.restart();
    await w.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.equal(w.bridge.ledger.get(accepted.id)?.state, 'delivered');
    assert.equal(w.bridge.ledger.get(rejected.id)?.state, 'dead');
    assert.equal(w.bridge.writeBacks?.store.get(accepted.id)?.outcome, 'written');
    assert.equal(await hasTrackingId(accepted.subjectKey), true);
    assert.equal(w.bridge.writeBacks?.store.get(rejected.id), undefined);
    assert.equal(await hasTrackingId(rejected.subjectKey), false);
  });

  it('a restart recreates no job for a row still pending or dead', async () => {
    assert.equal(w.bridge.writeBacks?.catchUp(), 0);
  });
});

/** A client whose first update is overtaken by another writer (an EMR user editing the Patient). */
class RacingClient extends FhirSourceClient {
  updates = 0;
  constructor(
    settings: SourceSettings,
    private readonly race: () => Promise<void>,
  ) {
    super(settings, { logger: silentLogger, attempts: 1 });
  }
  override async update(resource: Resource & { id: string }, ifMatchVersion?: string): Promise<Resource> {
    this.updates++;
    if (this.updates === 1) await this.race();
    return super.update(resource, ifMatchVersion);
  }
}

describe('FHIR write-back: conditional update', () => {
  let fhir: FhirSandbox;
  const birth = generateBirth(3, { prefix: 'race' });
  const child = birth.find((r) => r.resourceType === 'Patient' && r.id?.endsWith('-child'));

  before(async () => {
    fhir = await startFhirSandbox({ port: 0, seed: birth });
  });
  after(async () => {
    await fhir?.close();
  });

  function settings(): { source: SourceSettings; writeBack: WriteBackSettings } {
    const config = configFromObject({
      opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused' },
      sources: [{ id: SOURCE, kind: 'fhir', baseUrl: fhir.baseUrl, writeBack: {} }],
    });
    const source = config.sources[0];
    assert.ok(source?.writeBack);
    return { source, writeBack: source.writeBack };
  }

  function job(trackingId: string): WriteBackJob {
    assert.ok(child?.id);
    return {
      rowId: 1,
      sourceId: SOURCE,
      eventType: 'birth',
      subjectKey: `Patient/${child.id}`,
      sourceRef: `Patient/${child.id}`,
      trackingId,
      eventId: null,
    };
  }

  it('a concurrent update answered 412 is read again and retried; both changes survive', async () => {
    assert.ok(child?.id);
    const { source, writeBack } = settings();
    const client = new RacingClient(source, async () => {
      const current = await read(fhir, `Patient/${child.id}`);
      await fhir.upsert({ ...current, telecom: [{ system: 'phone', value: '+260 000 000' }] } as Resource);
    });
    const result = await new FhirWriteBack(client, writeBack).write(job('TRK0001'));
    assert.equal(result, 'written');
    assert.equal(client.updates, 2, 'the stale If-Match failed once, then the re-read version was used');
    const patient = await read(fhir, `Patient/${child.id}`);
    assert.ok(identifiers(patient).some((i) => i.system === SYSTEM && i.value === 'TRK0001'));
    assert.ok(Array.isArray(patient.telecom), 'the concurrent change is kept');
  });

  it('writing the same tracking id again changes nothing (no new version)', async () => {
    assert.ok(child?.id);
    const { source, writeBack } = settings();
    const before = versionOf(await read(fhir, `Patient/${child.id}`));
    const client = new RacingClient(source, async () => {});
    assert.equal(await new FhirWriteBack(client, writeBack).write(job('TRK0001')), 'already');
    assert.equal(client.updates, 0);
    assert.equal(versionOf(await read(fhir, `Patient/${child.id}`)), before);
  });

  it("keeps another tracking id of the system beside the new one and says so; the row's own earlier ids are not another", async () => {
    assert.ok(child?.id);
    const { source, writeBack } = settings();
    const current = await read(fhir, `Patient/${child.id}`);
    const others = [
      { system: SYSTEM, value: 'BOTHER1' },
      { system: SYSTEM, value: 'TRKOLD1' },
    ];
    await fhir.upsert({ ...current, identifier: [...identifiers(current), ...others] } as Resource);
    const target = new FhirWriteBack(new RacingClient(source, async () => {}), writeBack);
    const ours = { ...job('TRK0002'), earlierTrackingIds: ['TRKOLD1'] };
    const answer = await target.write(ours);
    assert.ok(typeof answer === 'object');
    assert.equal(answer.result, 'written');
    assert.deepEqual(answer.othersHeld, ['TRK0001', 'BOTHER1']);
    assert.match(
      answer.note,
      new RegExp(`^Patient also holds another tracking id of ${SYSTEM}: TRK0001, BOTHER1 \\(kept`),
    );
    const values = identifiers(await read(fhir, `Patient/${child.id}`)).filter((i) => i.system === SYSTEM);
    assert.deepEqual(
      values.map((i) => i.value),
      ['TRK0001', 'BOTHER1', 'TRKOLD1', 'TRK0002'],
      'nothing replaced',
    );
    // A retry after a lost answer finds its id there already, and says it again.
    const again = await target.write(ours);
    assert.ok(typeof again === 'object');
    assert.equal(again.result, 'already');
    assert.deepEqual(again.othersHeld, ['TRK0001', 'BOTHER1']);
  });
});

describe('FHIR write-back: Task carrying the tracking id', () => {
  let w: World;

  before(async () => {
    w = await startWorld({ target: 'task' }, generateBirth(4, { prefix: 'task' }));
  });
  after(async () => {
    await w?.close();
  });

  it('creates one Task per event under a stable id, leaves the Patient alone, and loops on nothing', async () => {
    const summary = await w.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.ok(summary.ok);
    const [row] = w.bridge.ledger.list();
    assert.ok(row?.trackingId);
    const id = writeBackResourceId({
      rowId: row.id,
      sourceId: row.sourceId,
      eventType: row.eventType,
      subjectKey: row.subjectKey,
      sourceRef: row.sourceRef,
      trackingId: row.trackingId,
      eventId: row.eventId,
    });
    const task = await read(w.fhir, `Task/${id}`);
    assert.ok(identifiers(task).some((i) => i.system === SYSTEM && i.value === row.trackingId));
    assert.deepEqual(task.for, { reference: row.subjectKey });
    assert.equal(versionOf(await read(w.fhir, row.subjectKey)), '1', 'the Patient is not written');

    const again = await w.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
    assert.equal(again.report.mapped.inserted + again.report.mapped.replaced, 0);
    assert.equal((await w.sim.control.events()).length, 1);
  });
});

describe('FHIR write-back: a bulk import', () => {
  const BULK = 250;
  let fhir: FhirSandbox;
  let dir: string;
  let ledger: Ledger;

  before(async () => {
    const patients: Resource[] = Array.from({ length: BULK }, (_, i) => ({ resourceType: 'Patient', id: `bulk-${i}` }));
    fhir = await startFhirSandbox({ port: 0, seed: patients });
    dir = mkdtempSync(join(tmpdir(), 'bridge-writeback-bulk-'));
    ledger = openLedger(join(dir, 'bridge.db'));
  });
  after(async () => {
    ledger?.close();
    await fhir?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A row delivered with a tracking id, as the delivery worker leaves it. */
  function delivered(i: number): { id: number; trackingId: string } {
    const trackingId = `TRKBULK${String(i).padStart(4, '0')}`;
    const { row } = ledger.recordEvent({
      sourceId: SOURCE,
      eventType: 'birth',
      subjectKey: `Patient/bulk-${i}`,
      sourceRef: `Patient/bulk-${i}`,
      payloadHash: `hash-${i}`,
      payload: { declaration: {}, office: 'office' },
    });
    assert.equal(ledger.claimRow(row.id, 'worker')?.id, row.id);
    const settled = ledger.settle({
      id: row.id,
      workerId: 'worker',
      claimedPayloadHash: `hash-${i}`,
      step: 'notify',
      startedAt: Date.now(),
      settlement: { outcome: 'delivered', eventId: `ev-${i}`, trackingId },
    });
    assert.equal(settled?.state, 'delivered');
    return { id: row.id, trackingId };
  }

  it(`writes ${BULK} jobs due at once back in one run, in batches`, async () => {
    const config = configFromObject({
      opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused' },
      sources: [{ id: SOURCE, kind: 'fhir', baseUrl: fhir.baseUrl, timeoutMs: 5000, writeBack: {} }],
    });
    const source = config.sources[0];
    assert.ok(source?.writeBack);
    const client = new FhirSourceClient(source, { logger: silentLogger });
    const runner = new WriteBackRunner({
      ledger,
      logger: silentLogger,
      sources: [{ sourceId: SOURCE, settings: source.writeBack, target: new FhirWriteBack(client, source.writeBack) }],
    });
    try {
      const rows = Array.from({ length: BULK }, (_, i) => delivered(i));
      for (const row of rows) runner.onOutcome({ type: 'delivered', row: { ...row, sourceId: SOURCE } });
      assert.equal(runner.store.waiting().count, BULK);

      const report = await runner.drain({ timeoutMs: 60_000 });
      assert.equal(report.tried, BULK);
      assert.equal(report.written, BULK);
      assert.equal(runner.store.waiting().count, 0, 'nothing left for a later run');
      for (const [i, row] of rows.entries()) {
        const patient = await read(fhir, `Patient/bulk-${i}`);
        assert.ok(identifiers(patient).some((id) => id.system === SYSTEM && id.value === row.trackingId));
      }
    } finally {
      await runner.stop();
      client.close();
    }
  });
});

describe('FHIR write-back: an answer that is no FHIR resource', () => {
  const oddJob = (trackingId: string): WriteBackJob => ({
    rowId: 1,
    sourceId: SOURCE,
    eventType: 'birth',
    subjectKey: 'Patient/odd-1',
    sourceRef: 'Patient/odd-1',
    trackingId,
    eventId: null,
  });
  let fhir: FhirSandbox;
  let proxy: FaultProxy;
  let dir: string;
  let ledger: Ledger;
  let source: SourceSettings & { writeBack: WriteBackSettings };

  before(async () => {
    fhir = await startFhirSandbox({ port: 0, seed: [{ resourceType: 'Patient', id: 'odd-1' } as Resource] });
    proxy = await startFaultProxy();
    proxy.target = fhir.baseUrl;
    // The Patient read answered 200 with JSON that is no resource (a misrouted gateway, a login page's API).
    proxy.rules.push((req) => (req.url?.endsWith('/Patient/odd-1') ? answerJson(200, { status: 'ok' }) : undefined));
    dir = mkdtempSync(join(tmpdir(), 'bridge-writeback-odd-'));
    ledger = openLedger(join(dir, 'bridge.db'));
    const config = configFromObject({
      opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused' },
      sources: [
        {
          id: SOURCE,
          kind: 'fhir',
          baseUrl: `${proxy.url}${new URL(fhir.baseUrl).pathname}`,
          timeoutMs: 5000,
          writeBack: { baseDelayMs: 20, maxDelayMs: 20, maxAttempts: 5 },
        },
      ],
    });
    const first = config.sources[0];
    assert.ok(first?.writeBack);
    source = { ...first, writeBack: first.writeBack };
  });
  after(async () => {
    ledger?.close();
    await proxy?.close();
    await fhir?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('abandons the job at once with the reason, instead of spending its attempts on the same answer', async () => {
    const { row } = ledger.recordEvent({
      sourceId: SOURCE,
      eventType: 'birth',
      subjectKey: 'Patient/odd-1',
      sourceRef: 'Patient/odd-1',
      payloadHash: 'hash-odd',
      payload: { declaration: {}, office: 'office' },
    });
    assert.equal(ledger.claimRow(row.id, 'worker')?.id, row.id);
    ledger.settle({
      id: row.id,
      workerId: 'worker',
      claimedPayloadHash: 'hash-odd',
      step: 'notify',
      startedAt: Date.now(),
      settlement: { outcome: 'delivered', eventId: 'ev-odd', trackingId: 'TRKODD01' },
    });
    const client = new FhirSourceClient(source, { logger: silentLogger, retryBaseMs: 10 });
    const runner = new WriteBackRunner({
      ledger,
      logger: silentLogger,
      sources: [{ sourceId: SOURCE, settings: source.writeBack, target: new FhirWriteBack(client, source.writeBack) }],
    });
    try {
      runner.onOutcome({ type: 'delivered', row: { id: row.id, sourceId: SOURCE, trackingId: 'TRKODD01' } });
      for (let run = 0; run < 5 && runner.store.get(row.id)?.outcome === null; run++) {
        await runner.drain({ timeoutMs: 10_000 });
        await sleep(30); // past the job's backoff
      }
      const job = runner.store.get(row.id);
      assert.equal(job?.outcome, 'abandoned');
      assert.equal(job?.attempts, 1, 'one attempt: the same answer would come again');
      assert.match(job?.lastError ?? '', /^FHIR write-back: read Patient: not a FHIR resource$/);
      assert.deepEqual(
        proxy.seen.map((seen) => seen.method),
        ['GET'],
        'read once, nothing written',
      );
    } finally {
      await runner.stop();
      client.close();
    }
  });

  it('a subject that no longer exists is abandoned with its reference in the job, never in the log', async () => {
    // Some EMRs use the medical record number as the Patient's id.
    const { row } = ledger.recordEvent({
      sourceId: SOURCE,
      eventType: 'birth',
      subjectKey: 'Patient/XMRNC41',
      sourceRef: 'Encounter/XMRNC41-birth',
      payloadHash: 'hash-gone',
      payload: { declaration: {}, office: 'office' },
    });
    assert.equal(ledger.claimRow(row.id, 'worker')?.id, row.id);
    ledger.settle({
      id: row.id,
      workerId: 'worker',
      claimedPayloadHash: 'hash-gone',
      step: 'notify',
      startedAt: Date.now(),
      settlement: { outcome: 'delivered', eventId: 'ev-gone', trackingId: 'TRKGONE1' },
    });
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
    const client = new FhirSourceClient(source, { logger, retryBaseMs: 10 });
    const runner = new WriteBackRunner({
      ledger,
      logger,
      sources: [{ sourceId: SOURCE, settings: source.writeBack, target: new FhirWriteBack(client, source.writeBack) }],
    });
    try {
      runner.onOutcome({ type: 'delivered', row: { id: row.id, sourceId: SOURCE, trackingId: 'TRKGONE1' } });
      await runner.drain({ timeoutMs: 10_000 });
      const job = runner.store.get(row.id);
      assert.equal(job?.outcome, 'abandoned');
      assert.match(job?.lastError ?? '', /Patient XMRNC41 no longer exists/, 'the operator sees which record');
      for (const line of lines) assert.doesNotMatch(line, /XMRNC41/);
      const abandoned = lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((l) => l.msg === 'write-back abandoned');
      assert.ok(abandoned, 'the abandoned write-back is logged');
      assert.equal(abandoned.rowId, row.id);
      assert.equal(abandoned.source, SOURCE);
      assert.equal(abandoned.subjectType, 'Patient');
      assert.equal(abandoned.triggerType, 'Encounter');
      assert.equal(abandoned.kind, 'record');
      assert.equal(abandoned.error, 'Patient {id} no longer exists');
    } finally {
      await runner.stop();
      client.close();
    }
  });

  it("a write whose token endpoint refuses the source's credentials is not given up: an operator fixes those", async () => {
    proxy.rules.push((req) => (req.url === '/token' ? answerJson(401, { error: 'invalid_client' }) : undefined));
    const refused = {
      ...source,
      auth: { type: 'oauth2', tokenUrl: `${proxy.url}/token`, clientId: 'bridge', clientSecret: 'wrong-secret' },
    } as SourceSettings;
    const client = new FhirSourceClient(refused, { logger: silentLogger, retryBaseMs: 10 });
    try {
      await assert.rejects(
        new FhirWriteBack(client, source.writeBack).write(oddJob('TRKODD03')),
        (err: unknown) => err instanceof WriteBackError && !err.permanent && /refused the client/.test(err.message),
      );
    } finally {
      client.close();
    }
  });

  it('a write cut off by the bridge stopping is not given up: the job is tried again later', async () => {
    const client = new FhirSourceClient(source, { logger: silentLogger });
    client.close();
    await assert.rejects(
      new FhirWriteBack(client, source.writeBack).write(oddJob('TRKODD02')),
      (err: unknown) => err instanceof WriteBackError && !err.permanent && /the bridge is stopping/.test(err.message),
    );
  });
});
