// Offices and facilities an OpenCRVS v1 record names itself (its Task's regLastOffice, its Encounter's
// location), end to end over HTTP against the simulator in both versions. Neither version checks them the
// way the bridge needs: 1.9 takes any leaf id as createdAtLocation (an office of another deployment too),
// 2.0 any existing location (a health facility too), and neither checks what a location field of the
// declaration names. So the bridge looks them up itself, and 1.9 and 2.0 end alike.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { openLedger } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { SimLocation } from '../../src/sandbox/opencrvs/index.js';
import {
  birthResources,
  type Harness,
  type HarnessOptions,
  notifiedDeclaration,
  ROUTING,
  startHarness,
} from './helpers/bridge-harness.js';

/** The ids the fixture names: an office and a facility of the deployment it was written against. */
const FIXTURE_OFFICE = '0be1dc9b-5c8b-4d20-a88c-08cafc71c99a';
const FIXTURE_FACILITY = 'd89c1114-eddc-4dca-8352-4d2105c876f8';

/**
 * OpenCRVS's own v1 birth notification as an EMR stores it (resources one by one, `urn:uuid:` references
 * turned into `Type/id`), naming `office` and `facility` (null: the encounter names no location). `copy`
 * above 0 gives another birth (its resources' ids end in `-<copy>`).
 */
function v1Birth(office: string, facility: string | null, copy = 0): Resource[] {
  const path = new URL('../fixtures/opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json', import.meta.url);
  const bundle = JSON.parse(readFileSync(path, 'utf8')) as { entry: Array<{ fullUrl: string; resource: Resource }> };
  const id = (fullUrl: string) => `${fullUrl.slice(9)}${copy > 0 ? `-${copy}` : ''}`;
  const refs = new Map(bundle.entry.map((e) => [e.fullUrl, `${e.resource.resourceType}/${id(e.fullUrl)}`]));
  let text = JSON.stringify(bundle.entry.map((e) => ({ ...e.resource, id: id(e.fullUrl) })));
  for (const [from, to] of refs) text = text.replaceAll(`"${from}"`, `"${to}"`);
  text = text.replaceAll(FIXTURE_OFFICE, office).replaceAll(FIXTURE_FACILITY, facility ?? FIXTURE_FACILITY);
  const resources = JSON.parse(text) as Resource[];
  if (facility === null) for (const r of resources) if (r.resourceType === 'Encounter') delete r.location;
  return resources;
}

/** A seeded location of this type that routing does not name (so nothing has looked it up yet). */
function unrouted(h: Harness, type: string): SimLocation {
  const routed = new Set<string>([
    ROUTING.defaultOffice,
    ...Object.values(ROUTING.facilities).flatMap((r) => [r.office, r.facility]),
  ]);
  const found = h.sim.locations.find((l) => l.locationType === type && !routed.has(l.externalId ?? ''));
  assert.ok(found, `an unrouted ${type}`);
  return found;
}

/** Source type, state and error kind of every row, sorted. */
const states = (h: Harness) =>
  h
    .rows()
    .map((r) => [r.sourceRef.split('/')[0], r.state, r.lastError?.kind ?? null])
    .sort();

async function withHarness(
  version: '1.9' | '2.0',
  run: (h: Harness) => Promise<void>,
  options: Omit<HarnessOptions, 'version'> = {},
): Promise<void> {
  const h = await startHarness({ ...options, version });
  try {
    await run(h);
  } finally {
    await h.close();
  }
}

for (const version of ['1.9', '2.0'] as const) {
  describe(`OpenCRVS ${version}: an office the record names that OpenCRVS does not list as an office`, () => {
    const cases = [
      { what: 'an office of another deployment', office: () => FIXTURE_OFFICE },
      { what: 'a health facility', office: (h: Harness) => unrouted(h, 'HEALTH_FACILITY').id },
    ];
    for (const { what, office } of cases) {
      it(`${what}: that birth is dead with what to do, nothing of it reaches OpenCRVS, and the queue goes on`, () =>
        withHarness(version, async (h) => {
          const named = office(h);
          for (const r of v1Birth(named, unrouted(h, 'HEALTH_FACILITY').id)) await h.fhir.upsert(r);
          for (const r of birthResources(7)) await h.fhir.upsert(r);
          const sync = await h.bridge.syncOnce();
          assert.deepEqual(states(h), [
            ['Composition', 'dead', 'unknown-office'],
            ['Encounter', 'delivered', null],
          ]);
          assert.equal(h.bridge.worker.held(), undefined, 'delivery is not held');
          assert.equal(sync.ok, false, 'a dead row is for someone to act on');
          const dead = h.rows().find((r) => r.state === 'dead');
          assert.equal(dead?.lastError?.classification, 'permanent');
          // The words of OpenCRVS 2.0's own refusal of an unknown office named by the record.
          assert.match(dead?.lastError?.message ?? '', new RegExp(`office ${named}, which the source record named`));
          assert.match(dead?.lastError?.message ?? '', /routing\.facilities.*correct the record, then replay/);
          const offices = (await h.events()).flatMap((e) => e.actions.map((a) => a.createdAtLocation));
          assert.ok(!offices.includes(named), 'no event nor action at that location');
          assert.equal((await h.events()).length, 1, 'only the routed birth is in OpenCRVS');
        }));
    }
  });

  describe(`OpenCRVS ${version}: a facility the record names`, () => {
    const place = ['child.birthLocation', 'child.birthLocationId', 'child.placeOfBirth'] as const;

    it('one OpenCRVS does not list as a HEALTH_FACILITY is left out of the declaration, with a warning', () =>
      withHarness(version, async (h) => {
        const office = unrouted(h, 'CRVS_OFFICE');
        const area = h.sim.administrativeAreas[0];
        assert.ok(area);
        for (const r of v1Birth(office.id, area.id)) await h.fhir.upsert(r);
        await h.bridge.syncOnce();
        assert.deepEqual(states(h), [['Composition', 'delivered', null]]);
        const [event] = await h.events();
        assert.ok(event);
        const declaration = notifiedDeclaration(event);
        for (const field of place) assert.equal(declaration[field], undefined, `${field} is not sent`);
        assert.equal(event.actions.find((a) => a.type === 'NOTIFY')?.createdAtLocation, office.id);
        const [row] = h.rows();
        assert.ok(row);
        const warnings = h.bridge.ledger.mappingWarnings(row.id);
        assert.ok(
          warnings.some((w) => w === `facility '${area.id}' is not a known OpenCRVS health facility; left out`),
          JSON.stringify(warnings),
        );
      }));

    it('one OpenCRVS lists as a HEALTH_FACILITY is sent as the place of birth', () =>
      withHarness(version, async (h) => {
        const office = unrouted(h, 'CRVS_OFFICE');
        const facility = unrouted(h, 'HEALTH_FACILITY');
        for (const r of v1Birth(office.id, facility.id)) await h.fhir.upsert(r);
        await h.bridge.syncOnce();
        assert.deepEqual(states(h), [['Composition', 'delivered', null]]);
        const [event] = await h.events();
        assert.ok(event);
        assert.equal(notifiedDeclaration(event)['child.birthLocation'], facility.id);
        assert.equal(notifiedDeclaration(event)['child.placeOfBirth'], 'HEALTH_FACILITY');
      }));
  });

  describe(`OpenCRVS ${version}: records that all name a facility OpenCRVS does not list`, () => {
    it('ask OpenCRVS about it once, not once per record: the answer "not listed" is remembered', () =>
      withHarness(version, async (h) => {
        const office = unrouted(h, 'CRVS_OFFICE');
        const listCalls = async () => (await h.sim.control.requests()).locations ?? 0;
        // The routing table was resolved at start; the record's office is looked up with the first record.
        const atStart = await listCalls();
        for (let copy = 1; copy <= 3; copy++) {
          for (const r of v1Birth(office.id, FIXTURE_FACILITY, copy)) await h.fhir.upsert(r);
          const sync = await h.bridge.syncOnce();
          assert.equal(sync.ok, true, JSON.stringify(states(h)));
          if (copy === 1) {
            // 2.0 asks its locations API about the office, then the facility by id and by externalId. 1.9
            // answers any question with its whole v1 location list: one download a lookup.
            const asked = version === '1.9' ? 2 : 3;
            assert.equal(await listCalls(), atStart + asked, 'office, then facility (by id, by externalId)');
          }
        }
        assert.equal(await listCalls(), atStart + (version === '1.9' ? 2 : 3), 'the later records asked nothing');
        assert.deepEqual(states(h), [
          ['Composition', 'delivered', null],
          ['Composition', 'delivered', null],
          ['Composition', 'delivered', null],
        ]);
        for (const event of await h.events())
          assert.equal(notifiedDeclaration(event)['child.birthLocation'], undefined, 'left out of each');
      }));
  });

  describe(`OpenCRVS ${version}: its locations cannot be listed`, () => {
    // The office the record names is one OpenCRVS answered about before (cached), so that only the facility
    // meets the outage.
    const cases = [
      { what: 'one OpenCRVS lists', facility: (h: Harness) => unrouted(h, 'HEALTH_FACILITY').id, sent: true },
      { what: 'one of another deployment', facility: () => FIXTURE_FACILITY, sent: false },
    ];
    for (const { what, facility, sent } of cases)
      it(`a record naming a facility (${what}) is recorded all the same, the pass goes on, and it is checked before it is sent`, () =>
        withHarness(version, async (h) => {
          const office = unrouted(h, 'CRVS_OFFICE');
          for (const r of v1Birth(office.id, null, 1)) await h.fhir.upsert(r);
          assert.equal((await h.bridge.syncOnce()).ok, true);
          const named = facility(h);
          for (const r of v1Birth(office.id, named, 2)) await h.fhir.upsert(r);
          for (const r of birthResources(7)) await h.fhir.upsert(r);
          await h.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, operations: ['locations'] } });
          const down = await h.bridge.syncOnce(undefined, { timeoutMs: 3_000 });
          // The EMR was read: both new births are in the ledger, and the one routed by the table went out.
          assert.deepEqual(down.failedSources, [], 'the pass did not fail');
          assert.equal(down.ok, false, 'a row waits for a retry');
          const row = () => h.rows().find((r) => r.subjectKey.endsWith('-2'));
          // A pass cut off at its deadline leaves its attempts running (a loaded machine), and the running
          // worker retries: seen between two attempts.
          const expected = [
            ['Composition', 'delivered', null],
            ['Composition', 'failed', 'server'],
            ['Encounter', 'delivered', null],
          ];
          await h.waitFor('one row failed', () => JSON.stringify(states(h)) === JSON.stringify(expected));
          assert.equal(row()?.payload?.facilityUnchecked, named, 'marked unchecked');
          assert.equal(row()?.payload?.facility, named, 'a UUID goes on as given meanwhile');
          assert.equal((await h.events()).length, 2, 'the unchecked birth is not sent');
          await h.sim.control.configure({ faults: {} });
          await h.waitFor('the birth delivered', () => row()?.state === 'delivered');
          const event = (await h.events()).find((e) => e.id === row()?.eventId);
          assert.ok(event);
          const notifies = event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested');
          assert.equal(notifies.length, 1, 'notified once');
          assert.equal(notifies[0]?.declaration['child.birthLocation'], sent ? named : undefined);
          assert.equal(notifies[0]?.declaration['child.placeOfBirth'], sent ? 'HEALTH_FACILITY' : undefined);
          // What the ledger holds is what was sent: mapped again, not patched, when OpenCRVS answered otherwise.
          assert.equal(row()?.payload?.facility, sent ? named : undefined);
          assert.equal(row()?.payload?.facilityUnchecked, sent ? named : undefined);
        }));

    it('a record already notified, read again after a restart, is no new version: its facility is what OpenCRVS answered last time', () =>
      withHarness(version, async (h) => {
        const office = unrouted(h, 'CRVS_OFFICE');
        // Named by the record, not listed by OpenCRVS: left out of what was sent.
        const birth = v1Birth(office.id, FIXTURE_FACILITY);
        for (const r of birth) await h.fhir.upsert(r);
        assert.equal((await h.bridge.syncOnce()).ok, true);
        assert.equal(h.rows()[0]?.payload?.facility, undefined);
        // Restarted while OpenCRVS cannot list its locations; the EMR touches the record meanwhile.
        await h.bridge.stop();
        await h.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, operations: ['locations'] } });
        const restarted = new Bridge(h.config, { logger: silentLogger, schedule: false, worker: false, http: false });
        try {
          await restarted.start();
          for (const r of birth)
            if (r.resourceType === 'Composition') await h.fhir.upsert({ ...r, language: 'en' } as Resource);
          const report = await restarted.sources[0]?.poller.pollOnce();
          assert.deepEqual(report?.mapped, { inserted: 0, replaced: 0, unchanged: 1, 'updated-after-notification': 0 });
          const [row] = restarted.ledger.list();
          assert.deepEqual([row?.state, row?.updatesAfterNotification], ['delivered', 0]);
        } finally {
          await h.sim.control.configure({ faults: {} });
          await restarted.stop();
        }
      }));

    it('a new version whose facility cannot be checked, of a row whose NOTIFY was refused, leaves no NOTIFY in doubt: it is checked before it is sent', () =>
      withHarness(
        version,
        async (h) => {
          const office = unrouted(h, 'CRVS_OFFICE');
          const worker = h.bridge.worker;
          const poll = async () => h.bridge.sources[0]?.poller.pollOnce();
          const row = () => h.rows()[0];
          // Created, then its NOTIFY refused before OpenCRVS stored anything (a rate limit): an event id, no doubt.
          for (const r of v1Birth(office.id, null)) await h.fhir.upsert(r);
          await h.sim.control.configure({ faults: { errorRate: 1, errorStatus: 429, operations: ['notify'] } });
          await poll();
          await worker.processNext();
          assert.deepEqual([row()?.state, row()?.lastError?.status], ['failed', 429]);
          assert.ok(row()?.eventId, 'created');
          assert.equal(h.bridge.ledger.notifyInDoubt(row()?.id ?? 0), false);
          // A new version names a facility OpenCRVS does not list, read while its locations answer 500.
          await h.sim.control.configure({ faults: { errorRate: 1, errorStatus: 500, operations: ['locations'] } });
          for (const r of v1Birth(office.id, FIXTURE_FACILITY)) await h.fhir.upsert(r);
          await poll();
          assert.equal(row()?.payload?.facilityUnchecked, FIXTURE_FACILITY, 'marked unchecked');
          const before = row()?.attempts ?? 0;
          await h.waitFor('the next attempt', async () => {
            await worker.processNext();
            return (row()?.attempts ?? 0) > before && row()?.state === 'failed';
          });
          // The lookup failed, nothing was sent: the next attempt must still check the facility.
          assert.equal(row()?.lastError?.status, 500);
          assert.equal(h.bridge.ledger.notifyInDoubt(row()?.id ?? 0), false, 'no NOTIFY in doubt');
          assert.deepEqual(
            h.bridge.ledger.attempts(row()?.id ?? 0).map((a) => a.step),
            ['notify', 'lookup'],
          );
          await h.sim.control.configure({ faults: {} });
          await h.waitFor('the birth delivered', async () => {
            await worker.processNext();
            return row()?.state === 'delivered';
          });
          const event = (await h.events()).find((e) => e.id === row()?.eventId);
          assert.ok(event);
          const notifies = event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested');
          assert.equal(notifies.length, 1, 'notified once');
          assert.equal(
            notifies[0]?.declaration['child.birthLocation'],
            undefined,
            'the facility not listed is left out',
          );
          assert.equal(row()?.payload?.facility, undefined, 'mapped again');
        },
        { worker: false },
      ));

    it('a record naming its office is not sent unchecked: it waits for a retry, and goes out once OpenCRVS answers', () =>
      withHarness(version, async (h) => {
        const office = unrouted(h, 'CRVS_OFFICE');
        for (const r of v1Birth(office.id, null)) await h.fhir.upsert(r);
        await h.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, operations: ['locations'] } });
        await h.bridge.syncOnce(undefined, { timeoutMs: 3_000 }).catch(() => undefined);
        // Seen between two attempts (see above).
        const expected = [['Composition', 'failed', 'server']];
        await h.waitFor('the row failed', () => JSON.stringify(states(h)) === JSON.stringify(expected));
        assert.equal((await h.events()).length, 0, 'nothing sent');
        await h.sim.control.configure({ faults: {} });
        await h.waitFor('the birth delivered', () => h.rows()[0]?.state === 'delivered');
        const [event] = await h.events();
        assert.equal(event?.actions.find((a) => a.type === 'NOTIFY')?.createdAtLocation, office.id);
      }));
  });
}

describe("OpenCRVS's answers about locations, kept by two processes on one ledger", () => {
  it("a replay in its own process beside serve keeps only what it learned itself, never its older copy over serve's answers", () =>
    withHarness('2.0', async (h) => {
      const routed = new Set<string>(Object.values(ROUTING.facilities).map((r) => r.facility));
      const [servesFacility, replaysFacility] = h.sim.locations.filter(
        (l) => l.locationType === 'HEALTH_FACILITY' && !routed.has(l.externalId ?? ''),
      );
      assert.ok(servesFacility && replaysFacility);
      // `replay` without serve's admin API builds its own Bridge on the ledger: what OpenCRVS answered so far
      // is loaded now.
      const replay = new Bridge(h.config, { logger: silentLogger, http: false, schedule: false, worker: false });
      let later: Bridge | undefined;
      try {
        // serve then reads a record naming a facility nothing asked OpenCRVS about before.
        for (const r of v1Birth(unrouted(h, 'CRVS_OFFICE').id, servesFacility.id)) await h.fhir.upsert(r);
        assert.equal((await h.bridge.syncOnce()).ok, true);
        // The replay maps a record naming another one.
        assert.deepEqual(await replay.mapOptions().lookupLocations?.([replaysFacility.id]), []);
        await replay.stop();
        await h.bridge.stop();
        // The next process knows both answers: were OpenCRVS down, each record is mapped as it was answered.
        later = new Bridge(h.config, { logger: silentLogger, http: false, schedule: false, worker: false });
        const known = later.mapOptions().lastKnownLocation;
        assert.deepEqual(known?.(servesFacility.id), { id: servesFacility.id, locationType: 'HEALTH_FACILITY' });
        assert.deepEqual(known?.(replaysFacility.id), { id: replaysFacility.id, locationType: 'HEALTH_FACILITY' });
      } finally {
        await replay.stop();
        await later?.stop();
      }
    }));
});

describe('a facility the record names, which OpenCRVS is slow to look up', () => {
  // Each lookup answers within opencrvs.timeoutMs, but later than the caller can wait. Before, a page being
  // mapped waited it out, and the poll pass, the sync pass's --timeout or the stop with it. Far later: a
  // caller that ended without the answer did so whatever the machine's load, and a lookup closed before it
  // was answered was given up on by the bridge, not by its client's own timeout.
  const SLOW = { faults: { delayMs: 60_000, operations: ['locations' as const] } };
  const options = { opencrvs: { timeoutMs: 120_000 } };

  /** Until OpenCRVS has seen a lookup closed before it answered (bounded well within SLOW's delay). */
  async function givenUpOn(h: Harness): Promise<void> {
    await h.waitFor(
      'a location lookup closed unanswered',
      async () => ((await h.sim.control.abandonedRequests()).locations ?? 0) > 0,
      30_000,
    );
  }

  /** A first birth at an unrouted office (so it is known), then a second one naming an unrouted facility. */
  async function secondBirthNamingAFacility(h: Harness): Promise<string> {
    const office = unrouted(h, 'CRVS_OFFICE');
    for (const r of v1Birth(office.id, null, 1)) await h.fhir.upsert(r);
    assert.equal((await h.bridge.syncOnce()).ok, true);
    const named = unrouted(h, 'HEALTH_FACILITY').id;
    for (const r of v1Birth(office.id, named, 2)) await h.fhir.upsert(r);
    return named;
  }

  it("sync --once: at the pass's deadline the record is recorded with its facility unchecked, and the pass ends", () =>
    withHarness(
      '2.0',
      async (h) => {
        const named = await secondBirthNamingAFacility(h);
        await h.sim.control.configure(SLOW);
        try {
          // Long enough to read the page under load: the pass ends at its deadline however long it is.
          const pass = await h.bridge.syncOnce(undefined, { timeoutMs: 4_000 });
          assert.deepEqual(pass.failedSources, []);
          // Unchecked: the pass did not wait for the lookup's answer (which would have checked it).
          const row = h.rows().find((r) => r.subjectKey.endsWith('-2'));
          assert.equal(
            row?.payload?.facilityUnchecked,
            named,
            'recorded, its facility to be checked before it is sent',
          );
        } finally {
          await h.sim.control.configure({ faults: {} });
        }
      },
      // No worker beside the passes, as under `sync --once`: serve's would take the row and wait on its
      // facility's slow lookup, and the stop at the end of the test waited out its 30 s drain for it.
      { ...options, worker: false },
    ));

  it('serve: a stop while a poll pass waits on the lookup ends at once, the record kept with its facility unchecked', () =>
    withHarness(
      '2.0',
      async (h) => {
        const named = await secondBirthNamingAFacility(h);
        await h.sim.control.configure(SLOW);
        try {
          const asked = (await h.sim.control.requests()).locations ?? 0;
          // serve's schedule: its first pass runs now, and meets the slow lookup mapping the second birth.
          h.bridge.enableSchedules();
          await h.waitFor(
            'the facility asked about',
            async () => ((await h.sim.control.requests()).locations ?? 0) > asked,
            30_000,
          );
          await h.bridge.stop();
          await givenUpOn(h);
          const ledger = openLedger(h.config.store.path);
          try {
            const row = ledger.list({ limit: 100 }).find((r) => r.subjectKey.endsWith('-2'));
            assert.equal(row?.payload?.facilityUnchecked, named, 'the page was recorded before the stop ended');
          } finally {
            ledger.close();
          }
        } finally {
          await h.sim.control.configure({ faults: {} });
        }
      },
      options,
    ));
});
