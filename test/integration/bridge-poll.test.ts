// The bridge end to end by polling: births and deaths written to a real FHIR server (the sandbox)
// reach a real OpenCRVS (the simulator) exactly once, with the declaration and office the routing
// table names; paging, ties on _lastUpdated, and updates before and after delivery.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Observation, Patient, Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  assertDeliveredOnce,
  birthResources,
  deathResources,
  eventsBySubject,
  type Harness,
  notifiedDeclaration,
  officeOf,
  ROUTING,
  startHarness,
} from './helpers/bridge-harness.js';

const patient = (resources: Resource[], suffix: string): Patient => {
  const found = resources.find((r) => r.resourceType === 'Patient' && r.id?.endsWith(suffix));
  assert.ok(found && found.resourceType === 'Patient');
  return found;
};

const nameOf = (p: Patient) => ({ firstname: p.name?.[0]?.given?.[0], surname: p.name?.[0]?.family });

function facilityRouteOf(resources: Resource[]): { office: string; facility: string } {
  const encounter = resources.find((r) => r.resourceType === 'Encounter');
  const ref = encounter?.resourceType === 'Encounter' ? encounter.location?.[0]?.location.reference : undefined;
  const route = ROUTING.facilities[ref as keyof typeof ROUTING.facilities];
  assert.ok(route, `a route for ${ref}`);
  return route;
}

describe('bridge end to end by polling', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('delivers births and deaths written to the FHIR server exactly once, with their declarations and offices', async () => {
    await h.writeBirths(0, 4);
    await h.writeDeaths(0, 2);
    const first = await h.bridge.syncOnce();
    assert.ok(first.ok, `sync ok: ${JSON.stringify(first.rows.map((r) => [r.state, r.lastError]))}`);
    await assertDeliveredOnce(h, 6);

    const bySubject = await eventsBySubject(h);
    for (let i = 0; i < 4; i++) {
      const resources = birthResources(i);
      const child = patient(resources, '-child');
      const mother = patient(resources, '-mother');
      const weight = resources.find((r): r is Observation => r.resourceType === 'Observation');
      const event = bySubject.get(`Patient/${child.id}`);
      assert.ok(event, `birth ${i} reached OpenCRVS`);
      assert.equal(event.type, 'birth');
      const declaration = notifiedDeclaration(event);
      assert.deepEqual(declaration['child.name'], nameOf(child));
      assert.equal(declaration['child.dob'], child.birthDate);
      assert.equal(declaration['child.gender'], child.gender);
      assert.equal(declaration['child.weightAtBirth'], (weight?.valueQuantity?.value ?? 0) / 1000);
      assert.deepEqual(declaration['mother.name'], nameOf(mother));
      const route = facilityRouteOf(resources);
      assert.equal(officeOf(event), h.location(route.office).id, `birth ${i} created at its facility's office`);
      assert.equal(declaration['child.birthLocation'], h.location(route.facility).id);
      assert.equal(declaration['child.placeOfBirth'], 'HEALTH_FACILITY');
    }
    for (let i = 0; i < 2; i++) {
      const resources = deathResources(i);
      const deceased = patient(resources, '-patient');
      const event = bySubject.get(`Patient/${deceased.id}`);
      assert.ok(event, `death ${i} reached OpenCRVS`);
      assert.equal(event.type, 'death');
      const declaration = notifiedDeclaration(event);
      assert.deepEqual(declaration['deceased.name'], nameOf(deceased));
      // The local calendar day the EMR recorded, not the UTC one (01:40+02:00 is the previous day in UTC).
      assert.equal(declaration['eventDetails.date'], deceased.deceasedDateTime?.slice(0, 10));
      const route = facilityRouteOf(resources);
      assert.equal(officeOf(event), h.location(route.office).id, `death ${i} created at its facility's office`);
      assert.equal(declaration['eventDetails.deathLocation'], h.location(route.facility).id);
    }

    // Polling again (same bridge, then a restarted one that has no in-memory dedupe) finds nothing new.
    const again = await h.bridge.syncOnce();
    assert.equal(again.report.mapped.inserted, 0);
    await assertDeliveredOnce(h, 6);
  });
});

describe('bridge polling: paging and ties on _lastUpdated', () => {
  // Every write gets the same lastUpdated: the worst case for a `_lastUpdated=ge…` cursor and for paging.
  const frozen = Date.parse('2026-11-20T10:00:00.000Z');
  let h: Harness;
  before(async () => {
    h = await startHarness({ poll: { pageSize: 5, overlapSeconds: 0 }, fhirClock: () => frozen });
  });
  after(async () => {
    await h?.close();
  });

  it('pages through 30 births that share one lastUpdated, then 5 more at the same instant, missing none and sending none twice', async () => {
    const births = Array.from({ length: 30 }, (_, i) => birthResources(i)).flat();
    await h.transaction(births);
    const first = await h.bridge.syncOnce();
    assert.ok(first.ok);
    // 5 resources a page over 30 births: Patient alone is 12 pages. A run sharing one lastUpdated is
    // read through `next` links, twice (until two readings agree), but each version is mapped once.
    assert.ok(first.report.resources >= births.length, 'every resource read');
    assert.equal(first.report.mapped.inserted, 30);
    assert.equal(first.report.mapped.unchanged, 0, 'no birth mapped twice');
    await assertDeliveredOnce(h, 30);
    assert.equal(h.bridge.ledger.getCursor('emr', 'lastUpdated:Patient'), new Date(frozen).toISOString());

    await h.transaction(Array.from({ length: 5 }, (_, i) => birthResources(30 + i)).flat());
    const second = await h.bridge.syncOnce();
    assert.equal(second.report.mapped.inserted, 5, 'the writes at the watermark instant are found');
    await assertDeliveredOnce(h, 35);

    // A restarted bridge (no in-memory dedupe, same ledger) re-reads the tie and records nothing new.
    const restarted = new Bridge(h.config, { logger: silentLogger, http: false, schedule: false, worker: false });
    try {
      const third = await restarted.syncOnce();
      assert.equal(third.report.mapped.inserted, 0);
      assert.equal(third.report.mapped.replaced, 0);
      assert.ok(third.ok);
    } finally {
      await restarted.stop();
    }
    await assertDeliveredOnce(h, 35);
  });
});

// OpenMRS answers each `_getpages` link by running the query again at an offset, sorted by the time each
// row changed. A record edited while the bridge pages moves to the end, and the records after it move back
// by one: following `next` links would skip one of them, behind a watermark that has already passed it.
describe('bridge polling: a server that pages by offset (OpenMRS)', () => {
  it('a death edited in the EMR while the bridge pages hides no other death', async () => {
    let now = Date.parse('2026-11-20T00:00:00.000Z');
    const hour = 3_600_000;
    let edit: (() => Promise<void>) | undefined;
    let patientSearches = 0;
    const h = await startHarness({
      poll: { pageSize: 3, overlapSeconds: 2 },
      fhirClock: () => now,
      fhirPaging: {
        paging: 'offset',
        beforeSearch: async (type) => {
          if (type === 'Patient' && ++patientSearches === 2) await edit?.();
        },
      },
    });
    try {
      // OpenMRS-style deaths: the Patient alone (deceasedDateTime), written an hour apart.
      const deaths = Array.from({ length: 8 }, (_, i) => patient(deathResources(i, 'om'), '-patient'));
      for (const death of deaths) {
        now += hour;
        await h.fhir.upsert(death);
      }
      const first = deaths[0] as Patient;
      edit = async () => {
        now += hour;
        await h.fhir.upsert({ ...first, telecom: [{ system: 'phone', value: '+260 97 000 0000' }] });
      };
      const pass = await h.bridge.syncOnce();
      assert.ok(pass.ok);
      assert.ok(patientSearches >= 2, 'the edit happened between two pages');
      await h.bridge.syncOnce(); // a later pass finds nothing left behind
      await assertDeliveredOnce(h, deaths.length);
      const subjects = new Set(h.rows().map((row) => row.subjectKey));
      for (const death of deaths) assert.ok(subjects.has(`Patient/${death.id}`), `Patient/${death.id} recorded`);
    } finally {
      await h.close();
    }
  });
});

describe('bridge polling: updates in the EMR', () => {
  it('an update after delivery creates no second event and marks the row updated-after-notification', async () => {
    const h = await startHarness();
    try {
      const resources = birthResources(0);
      for (const r of resources) await h.fhir.upsert(r);
      await h.bridge.syncOnce();
      await assertDeliveredOnce(h, 1);
      const child = patient(resources, '-child');
      await h.fhir.upsert({ ...child, name: [{ use: 'official', family: 'Renamed', given: ['Corrected'] }] });
      const after = await h.bridge.syncOnce();
      assert.equal(after.report.mapped['updated-after-notification'], 1);
      const [event] = await assertDeliveredOnce(h, 1);
      assert.ok(event);
      assert.deepEqual(notifiedDeclaration(event)['child.name'], nameOf(child), 'OpenCRVS keeps what was notified');
      const [row] = h.rows();
      assert.ok(row);
      assert.equal(row.updatesAfterNotification, 1);
      assert.ok(row.updatedAfterNotificationAt, 'the row records when the EMR changed after notification');
    } finally {
      await h.close();
    }
  });

  it('an update before delivery replaces the pending payload, so OpenCRVS gets the new value', async () => {
    const h = await startHarness({ worker: false });
    try {
      const resources = birthResources(1);
      for (const r of resources) await h.fhir.upsert(r);
      const poller = h.bridge.sources[0]?.poller;
      assert.ok(poller);
      const first = await poller.pollOnce();
      assert.equal(first.mapped.inserted, 1);
      assert.equal(h.rows()[0]?.state, 'pending');
      const child = patient(resources, '-child');
      await h.fhir.upsert({ ...child, name: [{ use: 'official', family: 'Renamed', given: ['Corrected'] }] });
      const second = await poller.pollOnce();
      assert.equal(second.mapped.replaced, 1);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      const [event] = await assertDeliveredOnce(h, 1);
      assert.ok(event);
      assert.deepEqual(notifiedDeclaration(event)['child.name'], { firstname: 'Corrected', surname: 'Renamed' });
    } finally {
      await h.close();
    }
  });
  it('a birth whose evidence the EMR withdrew before delivery is not sent: its row becomes skipped', async () => {
    const h = await startHarness({ worker: false });
    try {
      const resources = birthResources(2);
      for (const r of resources) await h.fhir.upsert(r);
      const poller = h.bridge.sources[0]?.poller;
      assert.ok(poller);
      await poller.pollOnce();
      assert.deepEqual(
        h.rows().map((r) => r.state),
        ['pending'],
      );
      // The whole record was entered in error: the encounter and the weight marked so, the mother link ended.
      const withdrawn: Record<string, Record<string, unknown>> = {
        Encounter: { status: 'entered-in-error' },
        Observation: { status: 'entered-in-error' },
        RelatedPerson: { active: false },
      };
      for (const r of resources) {
        const change = r.id?.endsWith('-maternity') ? undefined : withdrawn[r.resourceType];
        if (change) await h.fhir.upsert({ ...r, ...change } as typeof r);
      }
      const report = await poller.pollOnce();
      assert.equal(report.skipped, 1);
      const [row] = h.rows();
      assert.equal(row?.state, 'skipped');
      assert.match(row?.skipReason ?? '', /^no longer notifiable: no birth evidence/);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 5_000 });
      assert.equal((await h.sim.control.events()).length, 0, 'nothing sent');

      // The EMR restores the record: the row is queued again.
      for (const r of resources) await h.fhir.upsert(r);
      await poller.pollOnce();
      assert.equal(h.rows()[0]?.state, 'pending');
    } finally {
      await h.close();
    }
  });
});

describe("bridge polling: the parents' education and occupation, recorded the BFDR way in an EMR", () => {
  it('reads them from observations on the child (occupations told apart by their role) and sends them', async () => {
    const h = await startHarness();
    try {
      const resources = birthResources(3);
      const child = patient(resources, '-child');
      const onChild = { status: 'final' as const, subject: { reference: `Patient/${child.id}` } };
      const loinc = (code: string) => ({ coding: [{ system: 'http://loinc.org', code }] });
      const educationLevel = (code: string) => ({
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-EducationLevel', code }],
      });
      const role = (code: string) => [
        {
          url: 'http://hl7.org/fhir/us/bfdr/StructureDefinition/Extension-role',
          valueCodeableConcept: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code }] },
        },
      ];
      const parents: Resource[] = [
        {
          resourceType: 'RelatedPerson',
          id: 'e2e-birth-3-father-rp',
          patient: { reference: `Patient/${child.id}` },
          relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'NFTH' }] }],
          name: [{ family: 'Banda', given: ['Joseph'] }],
        },
        {
          resourceType: 'Observation',
          id: 'e2e-birth-3-mother-edu',
          ...onChild,
          code: loinc('57712-2'),
          valueCodeableConcept: educationLevel('HS'),
        },
        {
          resourceType: 'Observation',
          id: 'e2e-birth-3-father-edu',
          ...onChild,
          code: loinc('87300-0'),
          valueCodeableConcept: educationLevel('ELEM'),
        },
        {
          resourceType: 'Observation',
          id: 'e2e-birth-3-father-job',
          ...onChild,
          extension: role('FTH'),
          code: loinc('11341-5'),
          valueCodeableConcept: { text: 'Fisherman' },
        },
        {
          resourceType: 'Observation',
          id: 'e2e-birth-3-mother-job',
          ...onChild,
          extension: role('MTH'),
          code: loinc('11341-5'),
          valueCodeableConcept: { text: 'Teacher' },
        },
      ];
      for (const r of [...resources, ...parents]) await h.fhir.upsert(r);
      const sync = await h.bridge.syncOnce();
      assert.ok(sync.ok, JSON.stringify(sync.rows.map((r) => [r.state, r.lastError])));
      const [event] = await assertDeliveredOnce(h, 1);
      assert.ok(event);
      const declaration = notifiedDeclaration(event);
      assert.equal(declaration['mother.educationalAttainment'], 'POST_SECONDARY_ISCED_4'); // high school: "Secondary"
      assert.equal(declaration['father.educationalAttainment'], 'PRIMARY_ISCED_1');
      assert.equal(declaration['mother.occupation'], 'Teacher');
      assert.equal(declaration['father.occupation'], 'Fisherman');
      assert.deepEqual(declaration['father.name'], { firstname: 'Joseph', surname: 'Banda' });
    } finally {
      await h.close();
    }
  });
});

describe('bridge polling: a certified cause of death (VRDR observations in an EMR)', () => {
  it('OpenCRVS accepts the causes line by line, as "Other" with the certifier\'s words', async () => {
    const h = await startHarness();
    try {
      const resources = deathResources(3);
      const deceased = patient(resources, '-patient');
      const cause = (id: string, code: string, text: string, components: unknown[]): Resource =>
        ({
          resourceType: 'Observation',
          id,
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code }] },
          subject: { reference: `Patient/${deceased.id}` },
          performer: [{ reference: 'Practitioner/certifier-1' }],
          valueCodeableConcept: { text },
          component: components,
        }) as Resource;
      const line = (n: number, interval: string) => [
        {
          code: {
            coding: [{ system: 'http://hl7.org/fhir/us/vrdr/CodeSystem/vrdr-component-cs', code: 'lineNumber' }],
          },
          valueInteger: n,
        },
        { code: { coding: [{ system: 'http://loinc.org', code: '69440-6' }] }, valueString: interval },
      ];
      const causes = [
        cause('e2e-death-3-cause-1', '69453-9', 'Septic shock', line(1, '2 days')),
        cause('e2e-death-3-cause-2', '69453-9', 'Pneumonia; bilateral', line(2, '1 week')),
        cause('e2e-death-3-part-2', '69441-4', 'Diabetes mellitus', []),
      ];
      for (const r of [...resources, ...causes]) await h.fhir.upsert(r);
      const sync = await h.bridge.syncOnce();
      assert.ok(sync.ok, JSON.stringify(sync.rows.map((r) => [r.state, r.lastError])));
      const [event] = await assertDeliveredOnce(h, 1);
      assert.ok(event);
      const d = notifiedDeclaration(event);
      const other = { label: 'Other', value: 'OTHER' };
      assert.equal(d['eventDetails.causeOfDeathEstablished'], true);
      assert.equal(d['eventDetails.sourceCauseDeath'], 'PHYSICIAN');
      assert.deepEqual(d['causeOfDeathDetails.causeOfDeathA.symptom.one'], other);
      assert.equal(d['causeOfDeathDetails.causeOfDeathA.symptom.one.other'], 'Septic shock');
      assert.deepEqual(d['causeOfDeathDetails.causeOfDeathA.interval'], { numericValue: 2, unit: 'Days' });
      assert.equal(d['causeOfDeathDetails.causeOfDeathB.symptom.one.other'], 'Pneumonia, bilateral');
      assert.deepEqual(d['causeOfDeathDetails.causeOfDeathB.interval'], { numericValue: 1, unit: 'Weeks' });
      assert.deepEqual(d['causeOfDeathDetails.causeOfDeathOther.symptom.one'], other);
      assert.equal(d['causeOfDeathDetails.causeOfDeathOther.symptom.one.other'], 'Diabetes mellitus');
    } finally {
      await h.close();
    }
  });
});

describe('bridge polling: what the mapping left out is kept with the row', () => {
  it('stores the warnings of the mapping (field and reason, not the data) for the ledger and the admin page', async () => {
    const h = await startHarness();
    try {
      const resources = birthResources(4).map((r) =>
        r.resourceType === 'RelatedPerson' && r.id?.endsWith('-mother-rp')
          ? { ...r, address: [{ use: 'home', line: ['12 Elm Street'], city: 'Springfield', country: 'XX' }] }
          : r,
      );
      for (const r of resources) await h.fhir.upsert(r as Resource);
      const sync = await h.bridge.syncOnce();
      assert.ok(sync.ok, JSON.stringify(sync.rows.map((r) => [r.state, r.lastError])));
      const [row] = h.rows();
      assert.ok(row);
      const warnings = h.bridge.ledger.mappingWarnings(row.id);
      assert.ok(
        warnings.some((w) =>
          /^mother\.address: address left out: country code 'XX' is not an ISO 3166 country$/.test(w),
        ),
        JSON.stringify(warnings),
      );
      assert.ok(!JSON.stringify(warnings).includes('Elm'), 'no address text');
    } finally {
      await h.close();
    }
  });
});

/**
 * An OpenCRVS v1 birth notification document as an EMR stores it: its resources one by one, with ids,
 * the `urn:uuid:` references turned into `Type/id`.
 */
function v1NotificationResources(): Resource[] {
  const path = new URL('../fixtures/opencrvs-v1/v1.8.0-to-v1.9.x__create-birth-notification-min.json', import.meta.url);
  const bundle = JSON.parse(readFileSync(path, 'utf8')) as { entry: Array<{ fullUrl: string; resource: Resource }> };
  const refs = new Map(bundle.entry.map((e) => [e.fullUrl, `${e.resource.resourceType}/${e.fullUrl.slice(9)}`]));
  let text = JSON.stringify(bundle.entry.map((e) => ({ ...e.resource, id: e.fullUrl.slice(9) })));
  for (const [from, to] of refs) text = text.replaceAll(`"${from}"`, `"${to}"`);
  return JSON.parse(text) as Resource[];
}

describe('bridge polling: an office named by the record that OpenCRVS does not know', () => {
  it('that birth is dead with what to do; the queue is not held and the next birth is delivered', async () => {
    const h = await startHarness();
    try {
      // The v1 Task names office 0be1dc9b-… (regLastOffice) of another deployment: not routed, so looked up.
      for (const r of v1NotificationResources()) await h.fhir.upsert(r);
      for (const r of birthResources(7)) await h.fhir.upsert(r);
      const sync = await h.bridge.syncOnce();
      const states = h.rows().map((r) => [r.sourceRef.split('/')[0], r.state, r.lastError?.kind ?? null]);
      assert.deepEqual(
        states.sort(),
        [
          ['Composition', 'dead', 'unknown-office'],
          ['Encounter', 'delivered', null],
        ],
        JSON.stringify(states),
      );
      assert.equal(h.bridge.worker.held(), undefined, 'delivery is not held');
      assert.equal(sync.ok, false, 'a dead row is for someone to act on');
      const dead = h.rows().find((r) => r.state === 'dead');
      assert.match(
        dead?.lastError?.message ?? '',
        /office 0be1dc9b-5c8b-4d20-a88c-08cafc71c99a, which the source record named/,
      );
    } finally {
      await h.close();
    }
  });
});

describe('bridge polling: records read again unchanged', () => {
  // One lastUpdated for every write: each pass reads the same records again at its watermark.
  const frozen = Date.parse('2026-11-20T10:00:00.000Z');
  let h: Harness;
  before(async () => {
    h = await startHarness({ fhirClock: () => frozen });
  });
  after(async () => {
    await h?.close();
  });

  it('are not counted as recorded or changed by the next pass: a stillbirth is skipped once', async () => {
    const stillborn = patient(birthResources(0), '-child');
    await h.writeBirths(0, 2);
    // A fetal-death observation (LOINC 73811-2) about birth 0's child: the birth mapping skips it.
    await h.fhir.upsert({
      resourceType: 'Observation',
      id: 'e2e-fetal-death-0',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '73811-2', display: 'Fetal death' }] },
      subject: { reference: `Patient/${stillborn.id}` },
      valueBoolean: true,
    } as Resource);
    const first = await h.bridge.syncOnce();
    assert.ok(first.ok);
    assert.deepEqual(first.rows.map((r) => r.state).sort(), ['delivered', 'skipped']);

    // The next `sync --once` is a new process: nothing in memory says the records were seen.
    const next = new Bridge(h.config, { logger: silentLogger, http: false, schedule: false, worker: false });
    try {
      const second = await next.syncOnce();
      assert.ok(second.ok);
      assert.ok(second.report.skipped >= 1, 'the stillbirth was read and evaluated again');
      assert.deepEqual(
        second.rows.map((r) => [r.sourceRef, r.state]),
        [],
        'nothing was recorded or changed by this pass',
      );
    } finally {
      await next.stop();
    }
    assert.equal((await h.events()).length, 1, 'the live birth alone was notified, once');
  });
});
