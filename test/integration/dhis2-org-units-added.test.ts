// An org unit added to sources[].dhis2.orgUnits after go-live: the poller reads on from its watermark, so
// the births of that unit last updated before it were never read. The org units the watermark has covered
// are kept in the ledger's meta; a pass that finds more configured reads those (only) from go-live up to
// the watermark, once, and records the wider scope only when that reading is complete. Against the DHIS2
// simulator (behind a proxy that can refuse a page) with a real ledger and the OpenCRVS simulator.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { ORG_UNITS, type TrackedEntity } from '../../src/sandbox/dhis2/index.js';
import { DHIS2_CURSOR, Dhis2Poller, dhis2SettingsOf } from '../../src/sources/dhis2/index.js';
import { orgUnitScopeKey } from '../../src/sources/dhis2/scope.js';
import { assertOneEventPerRow, BIRTHS_SOURCE, type Dhis2Harness, startDhis2Harness } from './helpers/dhis2-harness.js';
import { dhis2Error, type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

const A = ORG_UNITS.ngelehunChc;
const B = ORG_UNITS.gbenikoroMchp;
/** poll.since: go-live, two days before the demo data (updated in the last 12 hours). */
const SINCE = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
const GO_LIVE = `${SINCE}T00:00:00.000`;

const IN_B = 3;

/** The earliest births in B, the others in A: B's are older than the watermark a pass over A leaves. */
function earliestInB(entities: TrackedEntity[]): TrackedEntity[] {
  let births = 0;
  return entities.map((te) => {
    if (!te.enrollments?.length) return te;
    const orgUnit = births++ < IN_B ? B : A;
    return {
      ...te,
      orgUnit,
      enrollments: te.enrollments.map((en) => ({
        ...en,
        orgUnit,
        events: en.events?.map((ev) => ({ ...ev, orgUnit })),
      })),
    };
  });
}

describe('DHIS2: org units added to sources[].dhis2.orgUnits after go-live', () => {
  let h: Dhis2Harness;
  let proxy: FaultProxy;
  const logLines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => logLines.push(line) } });
  let clock = Date.now();

  before(async () => {
    proxy = await startFaultProxy();
    h = await startDhis2Harness({
      births: 5,
      deaths: 0,
      writeBack: false,
      entities: earliestInB,
      configure: ({ sources }) => {
        sources[0] = { ...sources[0], baseUrl: proxy.url };
      },
    });
    proxy.target = h.dhis2.baseUrl;
  });
  after(async () => {
    await h?.close();
    await proxy?.close();
  });

  /** A poller of the births source as `serve` builds it after a restart with these org units. */
  function pollerWith(orgUnits: string[], budget?: { pageSize: number; maxPages: number }): Dhis2Poller {
    const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
    assert.ok(source);
    return new Dhis2Poller({
      sourceId: BIRTHS_SOURCE,
      client: source.client,
      pipeline: source.pipeline,
      cursors: h.bridge.ledger,
      meta: h.bridge.ledger,
      dhis2: { ...dhis2SettingsOf(source.settings), orgUnits, orgUnitMode: 'SELECTED' },
      poll: { ...source.settings.poll, since: SINCE, ...(budget ? { pageSize: budget.pageSize } : {}) },
      ...(budget ? { maxPages: budget.maxPages } : {}),
      logger,
      now: () => (clock += 1_000),
    });
  }
  const recorded = () => JSON.parse(h.bridge.ledger.getMeta(orgUnitScopeKey(BIRTHS_SOURCE)) ?? 'null');
  /** The pages asked for B alone from go-live: a catch-up's (the usual pages ask for both from the watermark). */
  const catchUpPages = () =>
    proxy.seen.filter((r) => {
      const url = decodeURIComponent(r.url);
      return url.includes(`orgUnits=${B}&`) && url.includes(`updatedAfter=${GO_LIVE}`);
    }).length;
  const birthsInB = () => h.seeded.filter((te) => te.orgUnit === B && te.enrollments?.length);

  it("B's births from before the watermark are read once, only by a catch-up that completes, and delivered once", async () => {
    const inB = birthsInB();
    assert.equal(inB.length, IN_B);
    const rowsOfB = () =>
      h.rows().filter((r) => inB.some((te) => r.subjectKey === `TrackedEntity/${te.trackedEntity}`)).length;

    // Go-live with A: the scope is recorded, B's births are not read.
    const first = await pollerWith([A]).pollOnce();
    assert.equal(first.mapped.inserted, 2);
    const onlyA = { scope: { orgUnits: [A], orgUnitMode: 'SELECTED' } };
    assert.deepEqual(recorded(), onlyA);
    const watermark = h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR);
    const latestInB = inB.at(-1)?.updatedAt ?? '';
    assert.ok(watermark && watermark > latestInB, `B's births (to ${latestInB}) are before the watermark`);
    assert.equal(rowsOfB(), 0);

    // B added; DHIS2 refuses the catch-up's page: the pass fails, the scope stays as it was.
    proxy.rules.push((req) =>
      req.url?.includes(`orgUnits=${B}&`) ? dhis2Error(400, 'refused for the test') : undefined,
    );
    await assert.rejects(pollerWith([A, B]).pollOnce(), /HTTP 400/);
    proxy.rules.length = 0;
    assert.equal(catchUpPages(), 1);
    assert.equal(rowsOfB(), 0);
    assert.deepEqual(recorded(), onlyA);
    assert.equal(h.bridge.ledger.getCursor(BIRTHS_SOURCE, DHIS2_CURSOR), watermark, 'the watermark did not move');

    // A page budget cuts the catch-up short: it stores where it goes on from, the scope stays as it was.
    const budgeted = pollerWith([A, B], { pageSize: 2, maxPages: 1 });
    const short = await budgeted.pollOnce();
    assert.equal(short.mapped.inserted, 2);
    assert.equal(rowsOfB(), 2);
    assert.deepEqual(recorded(), {
      ...onlyA,
      catchUp: { scope: { orgUnits: [B], orgUnitMode: 'SELECTED' }, from: inB[1]?.updatedAt },
    });
    assert.equal(logLines.filter((l) => l.includes('orgUnitsAdded')).length, 0);

    // A new process goes on from there (not from go-live) until it reads to the end: then the scope is
    // widened, and one line says so.
    const pagesBefore = catchUpPages();
    let passes = 0;
    while (recorded().catchUp && passes++ < 3) await pollerWith([A, B], { pageSize: 2, maxPages: 1 }).pollOnce();
    assert.equal(catchUpPages(), pagesBefore, 'nothing read again from go-live');
    assert.equal(rowsOfB(), IN_B);
    assert.deepEqual(recorded(), { scope: { orgUnits: [A, B].sort(), orgUnitMode: 'SELECTED' } });
    const said = logLines.map((l) => JSON.parse(l)).filter((l) => l.orgUnitsAdded !== undefined);
    assert.deepEqual(
      said.map((l) => [l.source, l.orgUnitsAdded, l.level]),
      [[BIRTHS_SOURCE, 1, 'info']],
    );

    // Done once: a later pass (a restart) reads no catch-up and records nothing new.
    const later = await pollerWith([A, B]).pollOnce();
    assert.equal(later.mapped.inserted, 0);
    assert.equal(catchUpPages(), pagesBefore);

    await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
    const rows = h.rows();
    assert.equal(rows.length, 5);
    assertOneEventPerRow(await h.events(), rows);
  });

  it('a narrower scope is recorded without a reading; with no scope recorded (an upgrade) the configured one is taken as covered', async () => {
    const asked = proxy.seen.length;
    const fromGoLive = () =>
      proxy.seen.slice(asked).filter((r) => decodeURIComponent(r.url).includes(`updatedAfter=${GO_LIVE}`)).length;
    const quiet = logLines.length;
    await pollerWith([A]).pollOnce();
    assert.deepEqual(recorded(), { scope: { orgUnits: [A], orgUnitMode: 'SELECTED' } });
    const covered = (from: number) =>
      logLines
        .slice(from)
        .map((line) => JSON.parse(line) as { msg: string; source?: string; orgUnits?: number })
        .filter((line) => line.msg.includes('recorded as covered by its watermark'));
    assert.deepEqual(covered(quiet), [], 'no line while a scope is recorded');

    h.bridge.ledger.setMeta(orgUnitScopeKey(BIRTHS_SOURCE), null);
    const upgrade = logLines.length;
    await pollerWith([A, B]).pollOnce();
    assert.deepEqual(recorded(), { scope: { orgUnits: [A, B].sort(), orgUnitMode: 'SELECTED' } });
    assert.equal(fromGoLive(), 0, 'nothing read from go-live');
    // The operator is told, once, what was not read back and how to read it (docs/dhis2.md, "Upgrade").
    const said = covered(upgrade);
    assert.equal(said.length, 1);
    assert.equal(said[0]?.source, BIRTHS_SOURCE);
    assert.equal(said[0]?.orgUnits, 2);
    assert.match(said[0]?.msg ?? '', new RegExp(`sync --once --source ${BIRTHS_SOURCE} --since <go-live date>`));
    await pollerWith([A, B]).pollOnce();
    assert.equal(covered(upgrade).length, 1, 'said once, when the scope is first recorded');
  });
});
