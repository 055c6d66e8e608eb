// The source's go-live bounds the events notified, not only the changes read. An EMR changes old records
// every day (a returning child's immunization visit, a phone number added): a poll reads such a change, the
// mapping finds the birth in the record as in any other, and a birth registered on paper years before the
// go-live went to OpenCRVS as a new declaration. It is recorded as skipped instead, with the reason; what
// the ledger already holds keeps its course, and moving poll.since back is how a back-fill is asked for.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth, generateDeath } from '../../src/sandbox/demo/generate.js';
import { CHILD_PROGRAMME, DEATH_DATA_ELEMENTS, DEATH_PROGRAMME } from '../../src/sandbox/dhis2/index.js';
import { birthResources, type Simulators, startSimulators } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, DEATHS_SOURCE, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

const BORN = '2024-06-02';

/** A death encounter as an EMR that records no discharge disposition keeps it: no evidence of a death. */
function withoutDeathDisposition(encounter: Resource): Resource {
  const { hospitalization: _disposition, ...plain } = encounter as Resource & { hospitalization?: unknown };
  return plain as Resource;
}

/** A birth (or death) that happened on BORN, its records written now. */
const oldBirth = (prefix: string) => generateBirth(0, { prefix, startDate: BORN }) as Resource[];
const oldDeath = (prefix: string) => generateDeath(0, { prefix, startDate: BORN }) as Resource[];

describe("events dated before the source's go-live", () => {
  let s: Simulators;
  before(async () => {
    s = await startSimulators(oldBirth('early'));
  });
  after(async () => {
    await s?.close();
  });

  /** One `sync --once` pass of a bridge that went live on `since`. */
  async function syncWith(since: string, options: { since?: string } = {}) {
    const object = s.configObject({ poll: { since } });
    const bridge = new Bridge(configFromObject(object), { logger: silentLogger, http: false, schedule: false });
    try {
      const summary = await bridge.syncOnce(undefined, { timeoutMs: 30_000, ...options });
      return { summary, rows: bridge.ledger.list({ limit: 100 }) };
    } finally {
      await bridge.stop();
    }
  }

  it('are recorded as skipped, not notified; a row already delivered stays delivered; poll.since moved back sends them', async () => {
    // Live since 2024: the birth of 2024-06-02 is one of the source's own.
    const first = await syncWith('2024-01-01');
    assert.equal(first.summary.ok, true);
    assert.deepEqual(
      first.rows.map((r) => [r.subjectKey, r.state]),
      [['Patient/early-birth-0-child', 'delivered']],
    );
    assert.equal((await s.sim.control.events()).length, 1);

    // Later activity: a 2024 child's first record in this EMR, a death of 2024 recorded now, a birth after
    // the go-live, and the early child's name corrected.
    for (const r of [...oldBirth('visit'), ...oldDeath('late'), ...birthResources(1)]) await s.fhir.upsert(r);
    const early = oldBirth('early').find((r) => r.id === 'early-birth-0-child');
    assert.ok(early?.resourceType === 'Patient');
    await s.fhir.upsert({ ...early, name: [{ family: 'Corrected', given: ['Name'] }] });

    // The go-live is now 2025 (moved later, as a site that set it wrong at first would).
    const second = await syncWith('2025-01-01');
    assert.equal(second.summary.ok, true, 'a skip is no failure of the pass');
    const bySubject = new Map(second.rows.map((r) => [r.subjectKey, r]));
    const visit = bySubject.get('Patient/visit-birth-0-child');
    assert.equal(visit?.state, 'skipped');
    assert.equal(visit?.skipReason, "born before the source's go-live 2025-01-01: registered otherwise");
    assert.equal(visit?.sourceRef, 'Encounter/visit-birth-0-birth', 'found by the resource that showed it');
    const death = bySubject.get('Patient/late-death-0-patient');
    assert.equal(death?.state, 'skipped');
    assert.equal(death?.skipReason, "died before the source's go-live 2025-01-01: registered otherwise");
    assert.equal(bySubject.get('Patient/e2e-birth-1-child')?.state, 'delivered');
    const delivered = bySubject.get('Patient/early-birth-0-child');
    assert.equal(delivered?.state, 'delivered', 'notified already: its change is no skip');
    assert.equal(delivered?.updatesAfterNotification, 1);
    assert.equal((await s.sim.control.events()).length, 2, 'only the birth after the go-live was sent');

    // A back-fill on purpose: poll.since moved back, and the period read again.
    const backfill = await syncWith('2024-01-01', { since: '2024-01-01' });
    assert.equal(backfill.summary.ok, true);
    const states = new Map(backfill.rows.map((r) => [r.subjectKey, r.state]));
    assert.equal(states.get('Patient/visit-birth-0-child'), 'delivered');
    assert.equal(states.get('Patient/late-death-0-patient'), 'delivered');
    assert.equal((await s.sim.control.events()).length, 4);
  });
  it('holds for a row never notified (dead for a year-month date, excluded), and keeps an undated death dead', async () => {
    // A child of 2024-06 whose birth date OpenMRS sent as an estimate (year and month): invalid, not dated.
    const estimated = oldBirth('ym');
    const ymChild = estimated.find((r) => r.id === 'ym-birth-0-child');
    assert.ok(ymChild?.resourceType === 'Patient');
    // A child of 2024-06 whose record was inactive at first (an exclusion), reactivated later.
    const inactive = oldBirth('inact');
    const inactChild = inactive.find((r) => r.id === 'inact-birth-0-child');
    assert.ok(inactChild?.resourceType === 'Patient');
    // A patient last seen in 2019, marked deceased now with no date: nothing tells it from a 2019 death.
    const flagged = generateDeath(0, { prefix: 'flag', startDate: '2019-03-04' }) as Resource[];
    const flagPatient = flagged.find((r) => r.id === 'flag-death-0-patient');
    assert.ok(flagPatient?.resourceType === 'Patient');
    const { deceasedDateTime: _dated, ...undated } = { ...flagPatient, deceasedBoolean: true };
    // Without its birthTime, which would date it to the day.
    const ymRecord: Record<string, unknown> = { ...ymChild, birthDate: '2024-06' };
    delete ymRecord._birthDate;
    for (const r of [...estimated, ...inactive, ...flagged]) await s.fhir.upsert(r);
    await s.fhir.upsert(ymRecord as unknown as Resource);
    await s.fhir.upsert({ ...inactChild, active: false });
    for (const r of flagged) if (r.resourceType === 'Encounter') await s.fhir.upsert(withoutDeathDisposition(r));
    await s.fhir.upsert(undated);
    const sent = (await s.sim.control.events()).length;

    const first = await syncWith('2025-01-01');
    const state = (rows: typeof first.rows, key: string) => {
      const row = rows.find((r) => r.subjectKey === key);
      return [row?.state, row?.skipReason ?? row?.lastError?.message];
    };
    const born = "born before the source's go-live 2025-01-01: registered otherwise";
    assert.deepEqual(state(first.rows, 'Patient/ym-birth-0-child'), ['skipped', born], 'a year-month dates it');
    assert.equal(state(first.rows, 'Patient/inact-birth-0-child')[0], 'skipped');
    const [deadState, why] = state(first.rows, 'Patient/flag-death-0-patient');
    assert.equal(deadState, 'dead', 'kept visible, not sent and not skipped silently');
    assert.match(
      String(why),
      /no date of death: it cannot be told from a death before the source's go-live 2025-01-01/,
    );

    // The EMR completes the date, reactivates the child: still births of 2024, never sent.
    await s.fhir.upsert(ymChild);
    await s.fhir.upsert({ ...inactChild, active: true });
    const second = await syncWith('2025-01-01');
    assert.deepEqual(state(second.rows, 'Patient/ym-birth-0-child'), ['skipped', born]);
    assert.deepEqual(state(second.rows, 'Patient/inact-birth-0-child'), ['skipped', born]);
    assert.equal(state(second.rows, 'Patient/flag-death-0-patient')[0], 'dead');
    assert.equal((await s.sim.control.events()).length, sent, 'nothing sent');
  });
});

describe("DHIS2: a birth or death dated before the source's go-live", () => {
  it('is recorded as skipped on its first reading, not notified', async () => {
    let old: string | undefined;
    let died: string | undefined;
    const h = await startDhis2Harness({
      births: 2,
      deaths: 1,
      writeBack: false,
      // One child of the programme was born in 2024, its enrollment changed now (a later visit). One death
      // of 2024 was enrolled with its date (the enrollment's incident date) and its event entered now,
      // without the date-of-death data element.
      entities: (entities) => {
        old = enrolledIn(entities, CHILD_PROGRAMME)[0]?.trackedEntity;
        died = enrolledIn(entities, DEATH_PROGRAMME)[0]?.trackedEntity;
        const at = `${BORN}T00:00:00.000`;
        return entities.map((te) =>
          te.trackedEntity === old
            ? {
                ...te,
                enrollments: te.enrollments?.map((en) => ({
                  ...en,
                  occurredAt: at,
                  events: en.events?.map((ev) => ({ ...ev, occurredAt: at })),
                })),
              }
            : te.trackedEntity === died
              ? {
                  ...te,
                  enrollments: te.enrollments?.map((en) => ({
                    ...en,
                    occurredAt: at,
                    events: en.events?.map((ev) => ({
                      ...ev,
                      dataValues: ev.dataValues?.filter((dv) => dv.dataElement !== DEATH_DATA_ELEMENTS.dateOfDeath),
                    })),
                  })),
                }
              : te,
        );
      },
      configure: ({ sources }) => {
        for (const [i, source] of sources.entries())
          sources[i] = { ...source, poll: { ...(source.poll as object), since: '2025-01-01T00:00:00.000' } };
      },
    });
    try {
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE, DEATHS_SOURCE], { timeoutMs: 20_000 });
      assert.equal(summary.ok, true);
      const states = h
        .rows()
        .map((r) => [
          r.subjectKey === `TrackedEntity/${old}` || r.subjectKey === `TrackedEntity/${died}`,
          r.state,
          r.skipReason,
        ]);
      assert.deepEqual(states.sort(), [
        [false, 'delivered', null],
        [true, 'skipped', "born before the source's go-live 2025-01-01: registered otherwise"],
        [true, 'skipped', "died before the source's go-live 2025-01-01: registered otherwise"],
      ]);
      assert.equal((await h.events()).length, 1);
    } finally {
      await h.close();
    }
  });
});
