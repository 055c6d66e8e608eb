import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  ATTRIBUTES,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  buildDemoChildProgramme,
  CHILD_PROGRAMME,
  DEATH_DATA_ELEMENTS,
  DEATH_PROGRAMME,
  DEATH_STAGE,
  DEFAULT_SANDBOX_AUTH,
  DEMO_FACILITIES,
  type Dhis2Simulator,
  MOTHER_CHILD_RELATIONSHIP_TYPE,
  ORG_UNITS,
  startDhis2Simulator,
  type TrackedEntity,
} from '../../src/sandbox/dhis2/index.js';

const BASE_DATE = '2025-03-01T12:00:00.000';
const auth = { Authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` };

function fixtureText(name: string): string {
  return readFileSync(new URL(`../fixtures/dhis2/${name}`, import.meta.url), 'utf8');
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON and assert on it
type Json = any;

async function call(
  sim: Dhis2Simulator,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${sim.baseUrl}${path}`, {
    method,
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const post = (sim: Dhis2Simulator, strategy: string, body: unknown) =>
  call(sim, 'POST', `/api/tracker?async=false&importStrategy=${strategy}`, body);

/** The first demo child and its Birth event, as a write-back reads them (OpenFn: fields=enrollments[events[*]]). */
async function firstBirth(sim: Dhis2Simulator) {
  const list = await call(
    sim,
    'GET',
    `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&order=updatedAt:asc&pageSize=1`,
  );
  const uid: string = list.body.trackedEntities[0].trackedEntity;
  const te = (
    await call(
      sim,
      'GET',
      `/api/tracker/trackedEntities/${uid}?program=${CHILD_PROGRAMME}&fields=updatedAt,enrollments[events[*]]`,
    )
  ).body;
  const event = te.enrollments[0].events.find((ev: Json) => ev.programStage === BIRTH_STAGE);
  return { uid, te, event };
}

describe('DHIS2 simulator: tracker import and write-back', () => {
  let sim: Dhis2Simulator;
  beforeEach(async () => {
    sim = await startDhis2Simulator({
      seed: buildDemoChildProgramme({ births: 4, deaths: 2, seed: 9, baseDate: BASE_DATE }),
    });
  });
  afterEach(() => sim.close());

  it('writes a tracking id onto the Birth event, keeps the other values, and bumps updatedAt of event and tracked entity', async () => {
    const { uid, te, event } = await firstBirth(sim);
    const { relationships: _r, ...sent } = event;
    const res = await post(sim, 'UPDATE', {
      events: [{ ...sent, dataValues: [{ dataElement: BIRTH_DATA_ELEMENTS.trackingId, value: 'B3X7Q2K' }] }],
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'OK');
    assert.deepEqual(res.body.stats, { created: 0, updated: 1, deleted: 0, ignored: 0, total: 1 });
    assert.deepEqual(res.body.validationReport.errorReports, []);

    const after = sim.trackedEntity(uid);
    const stored = after?.enrollments?.[0]?.events?.find((ev) => ev.event === event.event);
    const values = Object.fromEntries((stored?.dataValues ?? []).map((dv) => [dv.dataElement, dv.value]));
    assert.equal(values[BIRTH_DATA_ELEMENTS.trackingId], 'B3X7Q2K');
    assert.equal(
      values[BIRTH_DATA_ELEMENTS.weightGrams],
      event.dataValues.find((dv: Json) => dv.dataElement === BIRTH_DATA_ELEMENTS.weightGrams).value,
    );
    assert.ok((stored?.updatedAt ?? '') > event.updatedAt, 'event updatedAt moved forward');
    assert.ok((after?.updatedAt ?? '') > te.updatedAt, 'tracked entity updatedAt moved forward');

    // A poller whose cursor is past every seeded record sees the child again: its own write-back.
    const cursor = BASE_DATE;
    const polled = await call(
      sim,
      'GET',
      `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&updatedAfter=${cursor}&paging=false`,
    );
    assert.deepEqual(
      polled.body.trackedEntities.map((t: Json) => t.trackedEntity),
      [uid],
    );
    const [write] = sim.writes();
    assert.equal(write?.importStrategy, 'UPDATE');
    assert.equal(write?.httpStatus, 200);
    assert.equal(write?.payload.events?.[0]?.dataValues?.[0]?.value, 'B3X7Q2K');
  });

  it('exports an event and tracked entity in the same key order after an UPDATE sent without the server-owned fields', async () => {
    // As DHIS2 (its DTO's order): a client fingerprinting the JSON it reads sees no change where there is none.
    const { uid, event } = await firstBirth(sim);
    const read = async () =>
      (await call(sim, 'GET', `/api/tracker/trackedEntities/${uid}?program=${CHILD_PROGRAMME}&fields=*`)).body;
    const keys = (te: Json) => ({
      te: Object.keys(te),
      enrollment: Object.keys(te.enrollments[0]),
      event: Object.keys(te.enrollments[0].events.find((ev: Json) => ev.event === event.event)),
    });
    const before = keys(await read());
    // What Dhis2WriteBack sends: the event as read without createdAt, updatedAt… and its collections.
    const { relationships: _r, notes: _n, createdAt: _c, updatedAt: _u, createdAtClient: _cc, ...sent } = event;
    const written = await post(sim, 'UPDATE', {
      events: [{ ...sent, dataValues: [{ dataElement: BIRTH_DATA_ELEMENTS.trackingId, value: 'B3X7Q2K' }] }],
    });
    assert.equal(written.status, 200);
    const te = sim.trackedEntity(uid);
    const renamed = await post(sim, 'UPDATE', {
      trackedEntities: [
        {
          orgUnit: te?.orgUnit,
          attributes: [{ attribute: ATTRIBUTES.nationalId, value: 'NID-1' }],
          trackedEntityType: te?.trackedEntityType,
          trackedEntity: uid,
        },
      ],
    });
    assert.equal(renamed.status, 200);
    assert.deepEqual(keys(await read()), before);
  });

  it('updates one tracked entity attribute without touching the others, and an empty value deletes it', async () => {
    const { uid } = await firstBirth(sim);
    const before = sim.trackedEntity(uid);
    const base = { trackedEntity: uid, trackedEntityType: before?.trackedEntityType, orgUnit: before?.orgUnit };
    assert.equal(
      (
        await post(sim, 'UPDATE', {
          trackedEntities: [{ ...base, attributes: [{ attribute: ATTRIBUTES.nationalId, value: 'NID-1' }] }],
        })
      ).status,
      200,
    );
    const names = (te?: TrackedEntity) => Object.fromEntries((te?.attributes ?? []).map((a) => [a.attribute, a.value]));
    const updated = names(sim.trackedEntity(uid));
    assert.equal(updated[ATTRIBUTES.nationalId], 'NID-1');
    assert.equal(updated[ATTRIBUTES.firstName], names(before)[ATTRIBUTES.firstName]);
    await post(sim, 'UPDATE', {
      trackedEntities: [{ ...base, attributes: [{ attribute: ATTRIBUTES.nationalId, value: '' }] }],
    });
    assert.equal(names(sim.trackedEntity(uid))[ATTRIBUTES.nationalId], undefined);
  });

  it('rejects an UPDATE of an unknown event with E1032 and 409, and writes nothing of an atomic payload', async () => {
    const { event } = await firstBirth(sim);
    const { relationships: _r, ...sent } = event;
    const res = await post(sim, 'UPDATE', {
      events: [
        { ...sent, dataValues: [{ dataElement: BIRTH_DATA_ELEMENTS.trackingId, value: 'SHOULD-NOT-STICK' }] },
        { ...sent, event: 'Zzzzzzzzzz1' },
      ],
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.status, 'ERROR');
    assert.deepEqual(res.body.stats, { created: 0, updated: 0, deleted: 0, ignored: 2, total: 2 });
    assert.deepEqual(
      res.body.validationReport.errorReports.map((e: Json) => [e.errorCode, e.uid, e.trackerType]),
      [['E1032', 'Zzzzzzzzzz1', 'EVENT']],
    );
    const values = (await call(sim, 'GET', `/api/tracker/events/${event.event}`)).body.dataValues.map(
      (dv: Json) => dv.value,
    );
    assert.ok(!values.includes('SHOULD-NOT-STICK'));
    assert.equal(sim.writes()[0]?.httpStatus, 409);
  });

  it('requires orgUnit and programStage on an event update (E1123), so a write-back must send the whole event', async () => {
    const { event } = await firstBirth(sim);
    const res = await post(sim, 'UPDATE', {
      events: [{ event: event.event, dataValues: [{ dataElement: BIRTH_DATA_ELEMENTS.trackingId, value: 'X' }] }],
    });
    assert.equal(res.status, 409);
    const codes = res.body.validationReport.errorReports.map((e: Json) => `${e.errorCode} ${e.message}`);
    assert.ok(codes.includes('E1123 Missing required event property: `orgUnit`.'), codes.join('\n'));
    assert.ok(codes.includes('E1123 Missing required event property: `programStage`.'));
  });

  it('refuses to CREATE a tracked entity that exists (E1002) and accepts numbers as data values', async () => {
    const { uid, event } = await firstBirth(sim);
    const existing = sim.trackedEntity(uid);
    const dup = await post(sim, 'CREATE', {
      trackedEntities: [
        { trackedEntity: uid, trackedEntityType: existing?.trackedEntityType, orgUnit: existing?.orgUnit },
      ],
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.validationReport.errorReports[0].errorCode, 'E1002');
    const { relationships: _r, ...sent } = event;
    const numeric = await post(sim, 'CREATE_AND_UPDATE', {
      events: [{ ...sent, dataValues: [{ dataElement: BIRTH_DATA_ELEMENTS.weightGrams, value: 3150 }] }],
    });
    assert.equal(numeric.status, 200);
    const weight = (await call(sim, 'GET', `/api/tracker/events/${event.event}`)).body.dataValues.find(
      (dv: Json) => dv.dataElement === BIRTH_DATA_ELEMENTS.weightGrams,
    );
    assert.equal(weight.value, '3150');
  });

  it('imports the docs nested Child Programme payload and reads it back with generated uids', async () => {
    const res = await post(
      sim,
      'CREATE_AND_UPDATE',
      JSON.parse(fixtureText('dhis2-docs/POST_api_tracker__nested_payload_child_programme.json')),
    );
    assert.equal(res.status, 200, JSON.stringify(res.body.validationReport));
    assert.deepEqual(res.body.stats, { created: 3, updated: 0, deleted: 0, ignored: 0, total: 3 });
    const teUid = res.body.bundleReport.typeReportMap.TRACKED_ENTITY.objectReports[0].uid;
    assert.match(teUid, /^[A-Za-z][A-Za-z0-9]{10}$/);
    const te = (await call(sim, 'GET', `/api/tracker/trackedEntities/${teUid}?fields=*`)).body;
    assert.equal(te.orgUnit, ORG_UNITS.gbenikoroMchp);
    const names = Object.fromEntries(te.attributes.map((a: Json) => [a.displayName, a.value]));
    assert.deepEqual([names['First name'], names['Last name']], ['John', 'Kelly']);
    const [event] = te.enrollments[0].events;
    assert.equal(event.programStage, BIRTH_STAGE);
    assert.deepEqual(
      event.dataValues.map((dv: Json) => [dv.dataElement, dv.value]),
      [
        ['bx6fsa0t90x', 'true'],
        ['UXz7xuGCEhU', '5.7'],
      ],
    );
    assert.equal(event.notes[0].value, 'need to follow up');
    assert.equal(te.programOwners[0].program, CHILD_PROGRAMME);
  });

  it('imports the docs flat payload (sibling arrays) with its relationship between the two persons', async () => {
    const text = fixtureText('dhis2-docs/POST_api_tracker__flat_payload_child_programme.jsonc.txt').replace(
      /"HllvX50cXC0",(\s*})/,
      '"HllvX50cXC0"$1',
    );
    const res = await post(sim, 'CREATE_AND_UPDATE', JSON.parse(text));
    assert.equal(res.status, 200, JSON.stringify(res.body.validationReport));
    assert.deepEqual(res.body.stats, { created: 6, updated: 0, deleted: 0, ignored: 0, total: 6 });
    const rels = (await call(sim, 'GET', '/api/tracker/relationships?trackedEntity=Gjaiu3ea38E')).body;
    assert.equal(rels.relationships.length, 1);
    assert.equal(rels.relationships[0].from.trackedEntity.trackedEntity, 'Kj6vYde4LHh');
    const events = (await call(sim, 'GET', '/api/tracker/events?enrollments=MNWZ6hnuhSw&paging=false')).body.events;
    assert.deepEqual(events.map((ev: Json) => ev.event).sort(), ['XwwuwNp6gVE', 'ZwwuwNp6gVd']);
  });

  it('imports the dhis2-core e2e payload of two tracked entities and a relationship', async () => {
    const res = await post(
      sim,
      'CREATE',
      JSON.parse(
        fixtureText('dhis2-core/dhis-test-e2e__importer__trackedEntities__trackedEntitiesAndRelationship.json'),
      ),
    );
    assert.equal(res.status, 200, JSON.stringify(res.body.validationReport));
    assert.equal(res.body.stats.created, 3);
    const again = await post(
      sim,
      'CREATE',
      JSON.parse(
        fixtureText('dhis2-core/dhis-test-e2e__importer__trackedEntities__trackedEntitiesAndRelationship.json'),
      ),
    );
    assert.equal(again.status, 409);
    assert.deepEqual(again.body.validationReport.errorReports.map((e: Json) => e.errorCode).sort(), [
      'E1002',
      'E1002',
      'E4018',
    ]);
  });

  it('lists the mother–child relationship from either side, with the mother’s name on the child’s first relationship', async () => {
    const { uid } = await firstBirth(sim);
    const fromChild = (await call(sim, 'GET', `/api/tracker/relationships?trackedEntity=${uid}&fields=*`)).body
      .relationships;
    assert.equal(fromChild.length, 1);
    assert.equal(fromChild[0].relationshipType, MOTHER_CHILD_RELATIONSHIP_TYPE);
    const mother = fromChild[0].to.trackedEntity;
    assert.ok(mother.attributes.some((a: Json) => a.attribute === ATTRIBUTES.firstName && a.value));
    const fromMother = (await call(sim, 'GET', `/api/tracker/relationships?trackedEntity=${mother.trackedEntity}`)).body
      .relationships;
    assert.deepEqual(fromMother[0], {
      relationship: fromChild[0].relationship,
      relationshipType: MOTHER_CHILD_RELATIONSHIP_TYPE,
      from: { trackedEntity: { trackedEntity: uid } },
      to: { trackedEntity: { trackedEntity: mother.trackedEntity } },
    });
    assert.equal((await call(sim, 'GET', '/api/tracker/relationships')).status, 400);
  });

  it('control API: seed over HTTP, list writes, reset', async () => {
    const extra = buildDemoChildProgramme({ births: 1, deaths: 0, seed: 77, baseDate: BASE_DATE });
    const seeded = await fetch(`${sim.baseUrl}/_sandbox/seed`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(extra),
    });
    assert.equal(seeded.status, 200);
    assert.ok(sim.trackedEntity(extra[1]?.trackedEntity ?? ''));
    await post(sim, 'UPDATE', { trackedEntities: [] });
    const writes: unknown = await (await fetch(`${sim.baseUrl}/_sandbox/writes`)).json();
    assert.ok(Array.isArray(writes) && writes.length === 1);
    assert.equal((await fetch(`${sim.baseUrl}/_sandbox/reset`, { method: 'POST' })).status, 204);
    assert.equal(sim.writes().length, 0);
    const left = await call(sim, 'GET', `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}`);
    assert.deepEqual(left.body.trackedEntities, []);
    const bad = await fetch(`${sim.baseUrl}/_sandbox/seed`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '[{"trackedEntity":"bad"}]',
    });
    assert.equal(bad.status, 400);
  });
});

describe('buildDemoChildProgramme', () => {
  const data = buildDemoChildProgramme({ births: 5, deaths: 3, seed: 3, baseDate: BASE_DATE });

  it('is deterministic for a seed and base date, and differs for another seed', () => {
    assert.deepEqual(buildDemoChildProgramme({ births: 5, deaths: 3, seed: 3, baseDate: BASE_DATE }), data);
    assert.notDeepEqual(buildDemoChildProgramme({ births: 5, deaths: 3, seed: 4, baseDate: BASE_DATE }), data);
  });

  it('makes N children in the Child Programme, each with a Birth event and a relationship to an unenrolled mother', () => {
    const byUid = new Map(data.map((te) => [te.trackedEntity, te]));
    const kids = data.filter((te) => te.enrollments?.[0]?.program === CHILD_PROGRAMME);
    assert.equal(kids.length, 5);
    for (const child of kids) {
      const [birth] = child.enrollments?.[0]?.events ?? [];
      assert.equal(birth?.programStage, BIRTH_STAGE);
      const weight = Number(birth?.dataValues?.find((dv) => dv.dataElement === BIRTH_DATA_ELEMENTS.weightGrams)?.value);
      assert.ok(weight >= 2400 && weight < 4200);
      const [rel] = child.relationships ?? [];
      assert.equal(rel?.from.trackedEntity?.trackedEntity, child.trackedEntity);
      const mother = byUid.get(rel?.to.trackedEntity?.trackedEntity);
      assert.ok(mother && !mother.enrollments?.length);
      assert.ok(DEMO_FACILITIES.includes(child.orgUnit ?? ''));
      assert.ok(
        (child.updatedAt ?? '') < BASE_DATE && (child.enrollments?.[0]?.occurredAt ?? '') < (child.updatedAt ?? ''),
      );
    }
    assert.equal(data.length, 5 * 2 + 3);
  });

  it('makes M deaths in the sandbox death programme with a date and cause of death', () => {
    const deaths = data.filter((te) => te.enrollments?.[0]?.program === DEATH_PROGRAMME);
    assert.equal(deaths.length, 3);
    for (const person of deaths) {
      const event = person.enrollments?.[0]?.events?.[0];
      assert.equal(event?.programStage, DEATH_STAGE);
      const values = new Map((event?.dataValues ?? []).map((dv) => [dv.dataElement, dv.value]));
      assert.match(values.get(DEATH_DATA_ELEMENTS.dateOfDeath) ?? '', /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(values.get(DEATH_DATA_ELEMENTS.causeOfDeath));
    }
  });

  it('seeds a simulator without a validation error', async () => {
    const sim = await startDhis2Simulator({ seed: buildDemoChildProgramme({ births: 200, deaths: 50, seed: 5 }) });
    try {
      assert.equal(
        sim.trackedEntity(data[0]?.trackedEntity ?? '') === undefined,
        true,
        'different seed, different uids',
      );
    } finally {
      await sim.close();
    }
  });
});
