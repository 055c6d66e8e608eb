// The write-back queue in the admin API, over HTTP against a real bridge: a FHIR source and a DHIS2 source
// deliver births to the OpenCRVS simulator and write the tracking ids back; one FHIR job is abandoned (its
// Patient was deleted before the write), one is left pending. The API lists, filters, pages and counts
// the jobs, shows each in its event's detail, re-queues the abandoned one once the Patient is back, keeps
// the admin token and cross-site rules, and never returns the seeded personal data.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { DEMO_FACILITIES, facilityLocation, generateBirth } from '../../src/sandbox/demo/generate.js';
import {
  ATTRIBUTES,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  buildDemoChildProgramme,
  CHILD_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  startDhis2Simulator,
  type TrackedEntity,
} from '../../src/sandbox/dhis2/index.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { eventInput, settleRow } from '../unit/ledger-helpers.js';
import { simulatorOpenCrvs } from './helpers/bridge-harness.js';
import { DHIS2_ROUTING } from './helpers/dhis2-harness.js';

const TOKEN = 'write-back-admin-token-0123';
const FHIR_SOURCE = 'emr';
const DHIS2_SOURCE = 'dhis2-births';
const TIMEOUT_MS = 30_000;
const DAY_MS = 86_400_000;
const bearer = { Authorization: `Bearer ${TOKEN}` };
const basic = { Authorization: `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}` };

interface World {
  fhir: FhirSandbox;
  dhis2: Dhis2Simulator;
  sim: OpenCrvsSimulator;
  bridge: Bridge;
  base: string;
  seeded: { fhir: Resource[]; dhis2: TrackedEntity[] };
  /** What the bridge logged at info and above (JSON lines): the admin's audit lines among them. */
  logLines: string[];
  close(): Promise<void>;
}

async function startWorld(fhirSeed: Resource[], dhis2Seed: TrackedEntity[]): Promise<World> {
  const fhir = await startFhirSandbox({ port: 0, seed: [...DEMO_FACILITIES.map(facilityLocation), ...fhirSeed] });
  const dhis2 = await startDhis2Simulator({ port: 0, seed: dhis2Seed });
  const sim = await startOpenCrvsSimulator({ port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'admin-write-backs-'));
  // A long backoff: a job that fails stays pending for the whole test instead of running again.
  const retry = { maxAttempts: 3, baseDelayMs: 600_000, maxDelayMs: 600_000 };
  const config = configFromObject({
    opencrvs: simulatorOpenCrvs(sim),
    store: { path: join(dir, 'bridge.db') },
    http: { host: '127.0.0.1', port: 0 },
    admin: { token: TOKEN, port: 0 },
    delivery: { baseDelayMs: 20, maxDelayMs: 200, pollIntervalMs: 20 },
    sources: [
      {
        id: FHIR_SOURCE,
        kind: 'fhir',
        baseUrl: fhir.baseUrl,
        timeoutMs: 5000,
        poll: { overlapSeconds: 2, pageSize: 50 },
        writeBack: retry,
      },
      {
        id: DHIS2_SOURCE,
        kind: 'dhis2',
        baseUrl: dhis2.baseUrl,
        auth: { type: 'pat', token: DEFAULT_SANDBOX_AUTH.pat },
        timeoutMs: 5000,
        poll: { overlapSeconds: 2, pageSize: 50 },
        dhis2: { program: CHILD_PROGRAMME },
        mappings: ['birth.dhis2'],
        writeBack: { dataElement: BIRTH_DATA_ELEMENTS.trackingId, programStage: BIRTH_STAGE, ...retry },
      },
    ],
    routing: {
      defaultOffice: DHIS2_ROUTING.defaultOffice,
      facilities: {
        ...DHIS2_ROUTING.facilities,
        'Location/emr-loc-ibombo-hospital': { office: 'xmJJAsGfSTn', facility: 't0qT1Vh8qi3' },
        'Location/emr-loc-isamba-hospital': { office: 'DC5stjQ45n3', facility: 'R2i8nqg83Y0' },
      },
    },
    logging: { level: 'silent' },
  });
  // No worker loop: the test decides when deliveries and write-backs run.
  const logLines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => logLines.push(line) } });
  const bridge = new Bridge(config, { logger, schedule: false, worker: false });
  await bridge.start();
  return {
    fhir,
    dhis2,
    sim,
    bridge,
    base: `http://127.0.0.1:${bridge.adminPort}`,
    seeded: { fhir: fhirSeed, dhis2: dhis2Seed },
    logLines,
    async close() {
      await bridge.stop().catch(() => undefined);
      await Promise.all([fhir.close(), dhis2.close(), sim.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function get(w: World, path: string, headers: Record<string, string> = bearer) {
  const response = await fetch(`${w.base}${path}`, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await response.text();
  return { status: response.status, text, body: parse(text) };
}

async function post(w: World, path: string, headers: Record<string, string> = bearer) {
  const response = await fetch(`${w.base}${path}`, {
    method: 'POST',
    headers,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await response.text();
  return { status: response.status, text, body: parse(text) };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads a JSON object field by field without casting. */
function obj(value: unknown): Record<string, unknown> {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), 'expected a JSON object');
  return { ...value };
}

function list(value: unknown): unknown[] {
  assert.ok(Array.isArray(value), 'expected a JSON array');
  return value;
}

async function jobs(w: World, query: string): Promise<Array<Record<string, unknown>>> {
  const res = await get(w, `/admin/api/write-backs?${query}`);
  assert.equal(res.status, 200, res.text);
  return list(obj(res.body).jobs).map(obj);
}

/** Polls one FHIR pass and delivers it, without running write-backs (their jobs stay pending). */
async function pollAndDeliver(w: World): Promise<void> {
  const source = w.bridge.sources.find((s) => s.settings.id === FHIR_SOURCE);
  assert.ok(source);
  await source.poller.pollOnce();
  await w.bridge.worker.runUntilIdle({ timeoutMs: TIMEOUT_MS });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Names, identifier values and birth dates of the seeded records, and the ids that may contain them. */
function personalData(w: World): { words: Set<string>; dates: Set<string>; ids: Set<string> } {
  const words = new Set<string>();
  const dates = new Set<string>();
  const ids = new Set<string>();
  for (const resource of w.seeded.fhir) {
    if (resource.id) ids.add(resource.id);
    const record: Record<string, unknown> = { ...resource };
    if (typeof record.birthDate === 'string') dates.add(record.birthDate.slice(0, 10));
    for (const name of Array.isArray(record.name) ? record.name.filter(isRecord) : []) {
      const given = Array.isArray(name.given) ? name.given : [];
      for (const part of [...given, name.family]) if (typeof part === 'string' && part.length > 1) words.add(part);
    }
    for (const id of Array.isArray(record.identifier) ? record.identifier.filter(isRecord) : []) {
      if (typeof id.value === 'string') words.add(id.value);
    }
  }
  const personal = new Set<string>([ATTRIBUTES.firstName, ATTRIBUTES.lastName, ATTRIBUTES.nationalId]);
  for (const te of w.seeded.dhis2) {
    if (te.trackedEntity) ids.add(te.trackedEntity);
    for (const a of te.attributes ?? []) {
      if (personal.has(a.attribute) && typeof a.value === 'string' && a.value.length > 1) words.add(a.value);
      if (a.attribute === ATTRIBUTES.dateOfBirth && typeof a.value === 'string') dates.add(a.value.slice(0, 10));
    }
    for (const en of te.enrollments ?? []) {
      for (const ev of en.events ?? []) {
        if (ev.event) ids.add(ev.event);
        if (typeof ev.occurredAt === 'string') dates.add(ev.occurredAt.slice(0, 10));
      }
    }
  }
  return { words, dates, ids };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function assertNoPersonalData(w: World, text: string, what: string): void {
  const { words, dates, ids } = personalData(w);
  // Resource ids are operational (they are how the source names the record): blank them out first.
  let scanned = text;
  for (const id of [...ids].sort((a, b) => b.length - a.length)) scanned = scanned.split(id).join('<id>');
  for (const word of words) {
    assert.doesNotMatch(scanned, new RegExp(`(?<![\\w-])${escapeRegExp(word)}(?![\\w-])`), `${what}: "${word}"`);
  }
  for (const day of dates) {
    // A date near today may be the date part of a timestamp the API shows: then only a bare date counts.
    const near = Math.abs(Date.parse(`${day}T12:00:00Z`) - Date.now()) < 2 * DAY_MS;
    assert.doesNotMatch(scanned, new RegExp(near ? `${escapeRegExp(day)}(?!T)` : escapeRegExp(day)), `${what}: ${day}`);
  }
}

describe('admin write-back queue over a bridge writing back to FHIR and DHIS2', () => {
  let w: World;
  let abandonedRow: number;
  let pendingRow: number;
  let abandonedChild: Resource | undefined;

  before(async () => {
    const first = [1, 2, 3].flatMap((i) => generateBirth(i, { prefix: 'awb' }));
    w = await startWorld(first, buildDemoChildProgramme({ births: 2, deaths: 0, seed: 11 }));

    // Five births delivered and written back (three FHIR Patients, two DHIS2 birth events).
    const summary = await w.bridge.syncOnce(undefined, { timeoutMs: TIMEOUT_MS });
    assert.ok(summary.ok, 'first pass delivered');

    // A sixth is delivered, then its Patient is deleted before the write-back runs: abandoned at once.
    const fourth = generateBirth(4, { prefix: 'awb' });
    w.seeded.fhir.push(...fourth);
    for (const resource of fourth) await w.fhir.upsert(resource);
    await pollAndDeliver(w);
    abandonedChild = fourth.find((r) => r.resourceType === 'Patient' && r.id?.endsWith('-child'));
    assert.ok(abandonedChild?.id);
    const deleted = await fetch(`${w.fhir.baseUrl}/Patient/${abandonedChild.id}`, {
      method: 'DELETE',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    assert.ok(deleted.ok, `DELETE answered ${deleted.status}`);
    await w.bridge.writeBacks?.drain();
    const abandoned = w.bridge.ledger.list().find((row) => row.subjectKey === `Patient/${abandonedChild?.id}`);
    assert.ok(abandoned);
    abandonedRow = abandoned.id;
    // The EMR restores the record; the job stays abandoned until an operator re-queues it.
    await w.fhir.upsert(abandonedChild);

    // A seventh is delivered but its write-back has not run yet: pending.
    const fifth = generateBirth(5, { prefix: 'awb' });
    w.seeded.fhir.push(...fifth);
    for (const resource of fifth) await w.fhir.upsert(resource);
    await pollAndDeliver(w);
    const pending = w.bridge.ledger.list().find((row) => row.subjectKey === 'Patient/awb-birth-5-child');
    assert.ok(pending);
    pendingRow = pending.id;
  });
  after(async () => {
    await w?.close();
  });

  it('lists every job newest first with its row, source, outcome, attempts, error and times', async () => {
    const all = await jobs(w, '');
    assert.equal(all.length, 7);
    const rowIds = all.map((j) => Number(j.rowId));
    assert.deepEqual(
      rowIds,
      [...rowIds].sort((a, b) => b - a),
    );
    const abandoned = all.find((j) => j.rowId === abandonedRow);
    assert.ok(abandoned);
    assert.equal(abandoned.outcome, 'abandoned');
    assert.equal(abandoned.sourceId, FHIR_SOURCE);
    assert.equal(abandoned.attempts, 1);
    assert.match(String(abandoned.lastError), /no longer exists/);
    assert.equal(abandoned.nextAttemptAt, null);
    assert.equal(typeof abandoned.doneAt, 'number');
    const pending = all.find((j) => j.rowId === pendingRow);
    assert.ok(pending);
    assert.equal(pending.outcome, 'pending');
    assert.equal(pending.attempts, 0);
    assert.equal(typeof pending.nextAttemptAt, 'number');
    assert.equal(pending.lastError, null);
    for (const job of all) {
      assert.equal(job.trackingId, w.bridge.ledger.get(Number(job.rowId))?.trackingId, 'the row tracking id');
      assert.equal(typeof job.createdAt, 'number');
      assert.equal(typeof job.updatedAt, 'number');
    }
    assert.equal(all.filter((j) => j.outcome === 'written').length, 5);
  });

  it('filters by outcome (one, several, or "not-written") and by source', async () => {
    assert.deepEqual(
      (await jobs(w, 'outcome=not-written')).map((j) => j.rowId),
      [pendingRow, abandonedRow],
    );
    assert.deepEqual(
      (await jobs(w, 'outcome=abandoned')).map((j) => j.rowId),
      [abandonedRow],
    );
    assert.equal((await jobs(w, 'outcome=written,pending')).length, 6);
    assert.equal((await jobs(w, 'outcome=already')).length, 0);
    const dhis2 = await jobs(w, `source=${DHIS2_SOURCE}`);
    assert.equal(dhis2.length, 2);
    assert.ok(dhis2.every((j) => j.sourceId === DHIS2_SOURCE && j.outcome === 'written'));
    assert.equal((await jobs(w, `source=${FHIR_SOURCE}&outcome=written`)).length, 3);
  });

  it('answers 400 naming the configured sources for a source neither configured nor holding jobs', async () => {
    // As the event list does: a typo must not read "no jobs from that source". The id asked is not echoed.
    const unknown = await get(w, '/admin/api/write-backs?source=Patient-Nyokabi');
    assert.equal(unknown.status, 400, unknown.text);
    assert.equal(
      obj(unknown.body).error,
      `source: unknown source (configured: ${[DHIS2_SOURCE, FHIR_SOURCE].sort().join(', ')})`,
    );
  });

  it('pages with limit and offset like the event list', async () => {
    const all = (await jobs(w, '')).map((j) => j.rowId);
    const seen: unknown[] = [];
    for (let offset = 0; ; offset += 3) {
      const page = obj((await get(w, `/admin/api/write-backs?limit=3&offset=${offset}`)).body);
      assert.equal(page.limit, 3);
      assert.equal(page.offset, offset);
      seen.push(...list(page.jobs).map((j) => obj(j).rowId));
      if (!page.hasMore) break;
    }
    assert.deepEqual(seen, all);
  });

  it('answers 400 for a bad filter and 404/400 for a missing or malformed job', async () => {
    for (const query of ['outcome=bogus', 'limit=0', 'limit=501', 'offset=-1', 'source=a&source=b']) {
      const res = await get(w, `/admin/api/write-backs?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(typeof obj(res.body).error, 'string');
    }
    assert.equal((await get(w, '/admin/api/write-backs/99999')).status, 404);
    assert.equal((await get(w, '/admin/api/write-backs/abc')).status, 400);
    const one = obj((await get(w, `/admin/api/write-backs/${abandonedRow}`)).body);
    assert.equal(one.outcome, 'abandoned');
  });

  it('counts jobs per outcome and per source in the summary', async () => {
    const summary = obj((await get(w, '/admin/api/summary')).body);
    const writeBacks = obj(summary.writeBacks);
    assert.equal(writeBacks.enabled, true);
    assert.deepEqual(writeBacks.byOutcome, { pending: 1, written: 5, already: 0, abandoned: 1 });
    assert.deepEqual([...list(writeBacks.sources)].sort(), [DHIS2_SOURCE, FHIR_SOURCE].sort());
    const counts = list(writeBacks.counts).map(obj);
    assert.deepEqual(counts.find((c) => c.sourceId === DHIS2_SOURCE && c.outcome === 'written')?.count, 2);
    assert.deepEqual(counts.find((c) => c.sourceId === FHIR_SOURCE && c.outcome === 'written')?.count, 3);
  });

  it("shows the job's state in its event's detail", async () => {
    const detail = obj((await get(w, `/admin/api/events/${abandonedRow}`)).body);
    assert.equal(detail.state, 'delivered', 'a failed write-back never changes the delivery state');
    const writeBack = obj(detail.writeBack);
    assert.equal(writeBack.outcome, 'abandoned');
    assert.equal(writeBack.rowId, abandonedRow);
    assert.equal(writeBack.trackingId, detail.trackingId);
  });

  it('needs the admin token, like every admin route', async () => {
    for (const path of ['/admin/api/write-backs', `/admin/api/write-backs/${abandonedRow}`]) {
      assert.equal((await get(w, path, {})).status, 401, path);
      assert.equal((await get(w, path, { Authorization: 'Bearer wrong-token-0123456789' })).status, 401, path);
    }
    assert.equal((await post(w, `/admin/api/write-backs/${abandonedRow}/requeue`, {})).status, 401);
    assert.equal(w.bridge.writeBacks?.store.get(abandonedRow)?.outcome, 'abandoned');
  });

  it('returns none of the seeded names, birth dates or identifiers', async () => {
    const paths = [
      '/admin/api/write-backs',
      '/admin/api/write-backs?outcome=not-written',
      `/admin/api/write-backs/${abandonedRow}`,
      '/admin/api/summary',
      ...w.bridge.ledger.list().map((row) => `/admin/api/events/${row.id}`),
    ];
    assert.ok(personalData(w).words.size > 10, 'the scan has names and identifiers to look for');
    for (const path of paths) assertNoPersonalData(w, (await get(w, path)).text, path);
  });

  it('refuses to re-queue a job that is not abandoned, a cross-site Basic POST, and a GET', async () => {
    const written = (await jobs(w, 'outcome=written'))[0];
    assert.ok(written);
    const notAbandoned = await post(w, `/admin/api/write-backs/${written.rowId}/requeue`);
    assert.equal(notAbandoned.status, 409);
    assert.match(String(obj(notAbandoned.body).error), /written, not abandoned/);
    assert.equal((await post(w, `/admin/api/write-backs/${pendingRow}/requeue`)).status, 409);
    assert.equal((await post(w, '/admin/api/write-backs/99999/requeue')).status, 404);
    const crossSite = await post(w, `/admin/api/write-backs/${abandonedRow}/requeue`, {
      ...basic,
      Origin: 'https://evil.example',
    });
    assert.equal(crossSite.status, 403);
    assert.equal((await get(w, `/admin/api/write-backs/${abandonedRow}/requeue`)).status, 405);
    assert.equal(w.bridge.writeBacks?.store.get(abandonedRow)?.outcome, 'abandoned');
  });

  it('re-queues an abandoned job from the page (same origin): due again, attempts reset, error kept; then written', async () => {
    const res = await post(w, `/admin/api/write-backs/${abandonedRow}/requeue`, { ...basic, Origin: w.base });
    assert.equal(res.status, 200, res.text);
    const job = obj(obj(res.body).job);
    assert.equal(job.outcome, 'pending');
    assert.equal(job.attempts, 0);
    assert.match(String(job.lastError), /no longer exists/, 'the reason stays visible until the next attempt');
    assert.ok(Number(job.nextAttemptAt) <= Date.now());
    assert.equal((await post(w, `/admin/api/write-backs/${abandonedRow}/requeue`)).status, 409, 'only once');
    const audit = w.logLines
      .map((line) => JSON.parse(line))
      .filter((l) => l.msg === 'write-back job re-queued by admin');
    assert.equal(audit.length, 1, 'one audit line, for the re-queue that happened');
    assert.equal(audit[0]?.rowId, abandonedRow);
    assert.equal(audit[0]?.remoteAddress, '127.0.0.1', 'the address the operator acted from');

    // The Patient is back: the next run writes it (and the pending job with it).
    await w.bridge.writeBacks?.drain();
    const after = obj((await get(w, `/admin/api/write-backs/${abandonedRow}`)).body);
    assert.equal(after.outcome, 'written');
    assert.equal(after.attempts, 1);
    assert.equal(after.lastError, null);
    assert.deepEqual(await jobs(w, 'outcome=not-written'), []);
    const patient = await fetch(`${w.fhir.baseUrl}/Patient/${abandonedChild?.id}`, {
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    assert.match(await patient.text(), new RegExp(escapeRegExp(String(after.trackingId))));
  });

  it("shows in the event's detail where the id went, the job's earlier ids, and another tracking id kept beside it", async () => {
    const row = w.bridge.ledger
      .list({ sourceId: FHIR_SOURCE })
      .find((r) => r.id !== abandonedRow && r.id !== pendingRow);
    assert.ok(row?.trackingId);
    // Another registration's tracking id lands on the Patient (a second deployment, a source renamed)…
    const patient = obj(
      await (await fetch(`${w.fhir.baseUrl}/${row.subjectKey}`, { signal: AbortSignal.timeout(TIMEOUT_MS) })).json(),
    );
    const system = 'http://opencrvs.org/tracking-id';
    const identifier = [...list(patient.identifier), { system, value: 'BOTHER01' }];
    await w.fhir.upsert({ ...patient, identifier } as Resource);
    // …and the row is delivered again under a new tracking id (OpenCRVS lost the event): the job restarts.
    assert.ok(w.bridge.writeBacks?.store.enqueue(row.id, FHIR_SOURCE, 'BNEW0001', Date.now()));
    await w.bridge.writeBacks?.drain();

    const detail = obj((await get(w, `/admin/api/events/${row.id}`)).body);
    const writeBack = obj(detail.writeBack);
    assert.equal(writeBack.outcome, 'written');
    assert.equal(writeBack.target, `FHIR identifier of system ${system} on the subject Patient`);
    assert.equal(writeBack.trackingId, 'BNEW0001');
    assert.deepEqual(writeBack.earlierTrackingIds, [row.trackingId]);
    assert.equal(writeBack.lastError, null);
    // The row's own earlier id is no duplicate; the other registration's is, and is named for the registrar.
    assert.match(
      String(writeBack.note),
      /^Patient also holds another tracking id of http:\/\/opencrvs\.org\/tracking-id: BOTHER01 \(kept beside this one\)/,
    );
    assert.doesNotMatch(String(writeBack.note), new RegExp(escapeRegExp(row.trackingId)));
    assertNoPersonalData(w, JSON.stringify(detail.writeBack), 'write-back detail');
    const warned = w.logLines
      .map((line) => JSON.parse(line))
      .filter((l) => l.msg === 'tracking id written back beside another of its system: a duplicate registration?');
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.level, 'warn');
    assert.equal(warned[0]?.rowId, row.id);
    assert.equal(warned[0]?.eventId, row.eventId);
    assert.equal(warned[0]?.trackingId, 'BNEW0001');
    assert.deepEqual(warned[0]?.otherTrackingIds, ['BOTHER01']);
    assert.doesNotMatch(JSON.stringify(warned[0]), new RegExp(escapeRegExp(row.subjectKey.split('/')[1] ?? '-')));
  });

  it("names the same person's other event, and warns of nothing, when the tracking id beside is this ledger's own", async () => {
    const warnings = () => w.logLines.filter((line) => JSON.parse(line).level === 'warn').length;
    const warnedBefore = warnings();
    const birth = w.bridge.ledger
      .list({ sourceId: FHIR_SOURCE })
      .find((r) => r.eventType === 'birth' && r.subjectKey === 'Patient/awb-birth-1-child');
    assert.ok(birth?.trackingId);
    assert.equal(w.bridge.writeBacks?.store.get(birth.id)?.lastError, null, 'its Patient held no other tracking id');
    // The child, dead in infancy, is notified as a death: its Patient holds the birth's tracking id already.
    const { row: death } = w.bridge.ledger.recordEvent({
      ...eventInput('infant'),
      sourceId: FHIR_SOURCE,
      eventType: 'death',
      subjectKey: birth.subjectKey,
      mappingId: 'death.fhir',
    });
    settleRow(w.bridge.ledger, death.id, { outcome: 'delivered', eventId: 'event-infant', trackingId: 'DINFANT1' });
    assert.ok(w.bridge.writeBacks?.store.enqueue(death.id, FHIR_SOURCE, 'DINFANT1', Date.now()));
    await w.bridge.writeBacks?.drain();

    const writeBack = obj(obj((await get(w, `/admin/api/events/${death.id}`)).body).writeBack);
    assert.equal(writeBack.outcome, 'written');
    assert.equal(
      writeBack.note,
      `the record also holds the tracking id of the same person's birth (#${birth.id}): ${birth.trackingId}, kept beside this one (not a duplicate)`,
    );
    assert.equal(warnings(), warnedBefore, 'no duplicate registration to warn of');
    const written = w.logLines
      .map((line) => JSON.parse(line))
      .filter((l) => l.msg === 'tracking id written back' && l.rowId === death.id);
    assert.deepEqual(written[0]?.besideRows, [birth.id]);
  });

  it("takes a birth delivered again under a new tracking id for the same person's, both its ids, in a death's write", async () => {
    const warnings = () => w.logLines.filter((line) => JSON.parse(line).level === 'warn').length;
    const birth = w.bridge.ledger
      .list({ sourceId: FHIR_SOURCE })
      .find(
        (r) =>
          r.eventType === 'birth' &&
          r.trackingId &&
          r.id !== abandonedRow &&
          r.id !== pendingRow &&
          r.subjectKey !== 'Patient/awb-birth-1-child' &&
          w.bridge.writeBacks?.store.get(r.id)?.earlierTrackingIds.length === 0,
      );
    assert.ok(birth?.trackingId);
    // OpenCRVS lost the birth's event and it was delivered again: its job wrote the new id beside the old one.
    assert.ok(w.bridge.writeBacks?.store.enqueue(birth.id, FHIR_SOURCE, 'BREDO001', Date.now()));
    await w.bridge.writeBacks?.drain();
    const warnedBefore = warnings();
    const { row: death } = w.bridge.ledger.recordEvent({
      ...eventInput('infant-2'),
      sourceId: FHIR_SOURCE,
      eventType: 'death',
      subjectKey: birth.subjectKey,
      mappingId: 'death.fhir',
    });
    settleRow(w.bridge.ledger, death.id, { outcome: 'delivered', eventId: 'event-infant-2', trackingId: 'DINFANT2' });
    assert.ok(w.bridge.writeBacks?.store.enqueue(death.id, FHIR_SOURCE, 'DINFANT2', Date.now()));
    await w.bridge.writeBacks?.drain();

    const note = String(obj(obj((await get(w, `/admin/api/events/${death.id}`)).body).writeBack).note);
    assert.match(note, new RegExp(`same person's birth \\(#${birth.id}\\)`));
    assert.match(note, /BREDO001/);
    assert.match(note, new RegExp(escapeRegExp(birth.trackingId)));
    assert.match(note, /\(not a duplicate\)$/);
    assert.equal(warnings(), warnedBefore, "the birth's earlier id is no other registration");
  });

  // Last: the job added here would be counted by the tests before.
  it('lists the jobs of a source taken out of the config that the queue still holds', async () => {
    const row = w.bridge.ledger.recordEvent({
      sourceId: 'old-emr',
      eventType: 'birth',
      subjectKey: 'Patient/retired-1',
      sourceRef: 'Encounter/retired-1',
      payloadHash: 'retired',
      payload: { declaration: {}, office: 'office-1' },
    }).row.id;
    // Not due for a day: the runner leaves it be.
    assert.ok(w.bridge.writeBacks?.store.enqueue(row, 'old-emr', 'RTRD01', Date.now() + 86_400_000));
    assert.deepEqual(
      (await jobs(w, 'source=old-emr')).map((j) => j.rowId),
      [row],
    );
  });
});
