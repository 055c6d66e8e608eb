import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import {
  ATTRIBUTES,
  BIRTH_DATA_ELEMENTS,
  BIRTH_STAGE,
  buildDemoChildProgramme,
  CHILD_PROGRAMME,
  DEATH_PROGRAMME,
  DEFAULT_SANDBOX_AUTH,
  type Dhis2Simulator,
  ORG_UNITS,
  startDhis2Simulator,
  TRACKED_ENTITY_TYPE_PERSON,
} from '../../src/sandbox/dhis2/index.js';
import { Dhis2Client } from '../../src/sources/dhis2/client.js';

const BASE_DATE = '2025-03-01T12:00:00.000';
const BIRTHS = 23;
const DEATHS = 4;
const basic = `Basic ${Buffer.from(`${DEFAULT_SANDBOX_AUTH.username}:${DEFAULT_SANDBOX_AUTH.password}`).toString('base64')}`;

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/dhis2/${name}`, import.meta.url), 'utf8'));
}

async function get(sim: Dhis2Simulator, path: string, authorization: string | null = basic) {
  const headers: Record<string, string> = authorization ? { Authorization: authorization } : {};
  const res = await fetch(`${sim.baseUrl}${path}`, { headers, signal: AbortSignal.timeout(5000) });
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON and assert on it
  return { status: res.status, body: (await res.json()) as any };
}

const children = `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&orgUnits=${ORG_UNITS.sierraLeone}&orgUnitMode=DESCENDANTS`;

describe('DHIS2 simulator: tracker export', () => {
  let sim: Dhis2Simulator;
  before(async () => {
    sim = await startDhis2Simulator({
      seed: buildDemoChildProgramme({ births: BIRTHS, deaths: DEATHS, seed: 42, baseDate: BASE_DATE }),
    });
  });
  after(() => sim.close());

  it('pages through every child exactly once, oldest update first, with totals when asked', async () => {
    const seen: string[] = [];
    const stamps: string[] = [];
    for (let page = 1; page < 20; page++) {
      const { status, body } = await get(
        sim,
        `${children}&order=updatedAt:asc&pageSize=5&page=${page}&totalPages=true`,
      );
      assert.equal(status, 200);
      assert.deepEqual(body.pager, { page, pageSize: 5, total: BIRTHS, pageCount: 5 });
      for (const te of body.trackedEntities) {
        seen.push(te.trackedEntity);
        stamps.push(te.updatedAt);
      }
      if (body.trackedEntities.length < 5) break;
    }
    assert.equal(seen.length, BIRTHS);
    assert.equal(new Set(seen).size, BIRTHS);
    assert.deepEqual([...stamps].sort(), stamps);
  });

  it('keeps paging stable by uid when many records share one updatedAt', async () => {
    const same = await startDhis2Simulator({
      seed: ['Aaaaaaaaaa1', 'Ccccccccc01', 'Bbbbbbbbbb1', 'Ddddddddd01', 'Eeeeeeeeee1'].map((trackedEntity) => ({
        trackedEntity,
        trackedEntityType: TRACKED_ENTITY_TYPE_PERSON,
        orgUnit: ORG_UNITS.ngelehunChc,
        createdAt: BASE_DATE,
        updatedAt: BASE_DATE,
      })),
    });
    try {
      const path = `/api/tracker/trackedEntities?trackedEntityType=${TRACKED_ENTITY_TYPE_PERSON}&orgUnits=${ORG_UNITS.ngelehunChc}&order=updatedAt:asc&pageSize=2`;
      const pages = await Promise.all([1, 2, 3].map((page) => get(same, `${path}&page=${page}`)));
      const uids = pages.flatMap((p) =>
        p.body.trackedEntities.map((te: { trackedEntity: string }) => te.trackedEntity),
      );
      assert.deepEqual(uids, ['Aaaaaaaaaa1', 'Bbbbbbbbbb1', 'Ccccccccc01', 'Ddddddddd01', 'Eeeeeeeeee1']);
    } finally {
      await same.close();
    }
  });

  it("with tieOrder 'offset', pages through equal updatedAt in an order that depends on the page asked; maxPageSize caps pages", async () => {
    const uids = Array.from({ length: 9 }, (_, i) => `Tie${String(i).padStart(8, '0')}`);
    const unstable = await startDhis2Simulator({
      tieOrder: 'offset',
      maxPageSize: 4,
      seed: uids.map((trackedEntity) => ({
        trackedEntity,
        trackedEntityType: TRACKED_ENTITY_TYPE_PERSON,
        orgUnit: ORG_UNITS.ngelehunChc,
        createdAt: BASE_DATE,
        updatedAt: BASE_DATE,
      })),
    });
    try {
      const path = `/api/tracker/trackedEntities?trackedEntityType=${TRACKED_ENTITY_TYPE_PERSON}&orgUnits=${ORG_UNITS.ngelehunChc}&order=updatedAt:asc`;
      const read = async (pageSize: number) => {
        const pages = await Promise.all(
          [1, 2, 3].map((page) => get(unstable, `${path}&pageSize=${pageSize}&page=${page}`)),
        );
        for (const p of pages) assert.equal(p.body.pager.pageSize, 4, 'a larger page is served at maxPageSize');
        return pages.flatMap((p) => p.body.trackedEntities.map((te: { trackedEntity: string }) => te.trackedEntity));
      };
      const first = await read(4);
      assert.equal(first.length, 9, 'pages of 4, 4 and 1');
      assert.ok(new Set(first).size < 9, 'one reading gives some record twice and misses another');
      assert.deepEqual(await read(16), first, 'the order is fixed for a page and page size (asked 16, served 4)');
      const all = await get(unstable, `${path}&paging=false`);
      assert.deepEqual(all.body.trackedEntities.map((te: { trackedEntity: string }) => te.trackedEntity).sort(), uids);
    } finally {
      await unstable.close();
    }
  });

  it('updatedAfter keeps records updated at or after the instant (inclusive, like DHIS2) and drops older ones', async () => {
    const all = (await get(sim, `${children}&order=updatedAt:asc&paging=false`)).body.trackedEntities;
    const cutoff = all[10].updatedAt;
    const { body } = await get(sim, `${children}&order=updatedAt:asc&paging=false&updatedAfter=${cutoff}`);
    assert.equal(body.trackedEntities.length, BIRTHS - 10);
    assert.equal(body.trackedEntities[0].trackedEntity, all[10].trackedEntity);
    const zoned = await get(sim, `${children}&paging=false&updatedAfter=${encodeURIComponent(`${cutoff}+01:00`)}`);
    assert.ok(zoned.body.trackedEntities.length > BIRTHS - 10, 'an explicit offset is honoured');
    const future = await get(sim, `${children}&paging=false&updatedAfter=2030-01-01`);
    assert.deepEqual(future.body.trackedEntities, []);
  });

  it('filters by org unit: SELECTED facility, DESCENDANTS of a district, and refuses an unknown unit', async () => {
    const every = (await get(sim, `${children}&paging=false`)).body.trackedEntities;
    const ngelehun = (
      await get(
        sim,
        `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&orgUnits=${ORG_UNITS.ngelehunChc}&paging=false`,
      )
    ).body.trackedEntities;
    const bo = (
      await get(
        sim,
        `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&orgUnits=${ORG_UNITS.bo}&orgUnitMode=DESCENDANTS&paging=false`,
      )
    ).body.trackedEntities;
    const boOnly = await get(
      sim,
      `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&orgUnits=${ORG_UNITS.bo}&paging=false`,
    );
    assert.ok(ngelehun.length > 0 && ngelehun.length < every.length);
    assert.ok(ngelehun.every((te: { orgUnit: string }) => te.orgUnit === ORG_UNITS.ngelehunChc));
    assert.deepEqual(
      bo.map((te: { trackedEntity: string }) => te.trackedEntity).sort(),
      ngelehun.map((te: { trackedEntity: string }) => te.trackedEntity).sort(),
    );
    assert.deepEqual(boOnly.body.trackedEntities, [], 'a district holds no records of its own');
    const both = await get(
      sim,
      `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&orgUnits=${ORG_UNITS.ngelehunChc},${ORG_UNITS.gbenikoroMchp}&paging=false`,
    );
    assert.equal(both.body.trackedEntities.length, every.length);
    const unknown = await get(sim, `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&orgUnits=Xxxxxxxxxx1`);
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.httpStatusCode, 400);
  });

  it('filters by program: children only in the Child Programme, deaths only in the death programme, everyone by type', async () => {
    assert.equal((await get(sim, `${children}&paging=false`)).body.trackedEntities.length, BIRTHS);
    const deaths = await get(
      sim,
      `/api/tracker/trackedEntities?program=${DEATH_PROGRAMME}&orgUnitMode=ACCESSIBLE&paging=false`,
    );
    assert.equal(deaths.body.trackedEntities.length, DEATHS);
    const persons = await get(
      sim,
      `/api/tracker/trackedEntities?trackedEntityType=${TRACKED_ENTITY_TYPE_PERSON}&orgUnitMode=ALL&paging=false`,
    );
    assert.equal(persons.body.trackedEntities.length, 2 * BIRTHS + DEATHS);
    const neither = await get(sim, `/api/tracker/trackedEntities?orgUnitMode=ALL`);
    assert.equal(neither.status, 400);
  });

  it('finds a tracked entity by an attribute value (filter=<uid>:eq:<value>, case-insensitive), as ledger --find tells users to', async () => {
    const deaths = `/api/tracker/trackedEntities?program=${DEATH_PROGRAMME}&orgUnitMode=ACCESSIBLE&paging=false&fields=trackedEntity,attributes`;
    const all = (await get(sim, deaths)).body.trackedEntities as Array<{
      trackedEntity: string;
      attributes: Array<{ attribute: string; value: string }>;
    }>;
    const attributeOf = (te: (typeof all)[number], attribute: string) =>
      te.attributes.find((a) => a.attribute === attribute)?.value ?? '';
    const wanted = all[1];
    assert.ok(wanted && all.length === DEATHS);
    const found = async (filter: string) =>
      ((await get(sim, `${deaths}&filter=${encodeURIComponent(filter)}`)).body.trackedEntities as typeof all).map(
        (te) => te.trackedEntity,
      );
    const nid = attributeOf(wanted, ATTRIBUTES.nationalId);
    assert.deepEqual(await found(`${ATTRIBUTES.nationalId}:eq:${nid}`), [wanted.trackedEntity]);
    assert.deepEqual(await found(`${ATTRIBUTES.nationalId}:eq:000000000`), [], 'a value no one has: nobody');
    const surname = attributeOf(wanted, ATTRIBUTES.lastName);
    const sameSurname = all
      .filter((te) => attributeOf(te, ATTRIBUTES.lastName) === surname)
      .map((te) => te.trackedEntity);
    assert.deepEqual(await found(`${ATTRIBUTES.lastName}:EQ:${surname.toUpperCase()}`), sameSurname);
    assert.deepEqual(
      await found(
        `${ATTRIBUTES.lastName}:like:${surname.slice(1, -1).toLowerCase()},${ATTRIBUTES.nationalId}:eq:${nid}`,
      ),
      [wanted.trackedEntity],
      'every filter holds',
    );
    assert.deepEqual(
      await found(`${ATTRIBUTES.nationalId}:like:${nid.slice(2, 6)}`).then((uids) =>
        uids.includes(wanted.trackedEntity),
      ),
      true,
    );
    assert.equal(
      (await get(sim, `${deaths}&filter=${ATTRIBUTES.nationalId}:gt:1`)).status,
      400,
      'not simulated: refused',
    );
  });

  it('nests enrollments, events and relationships only when fields asks for them', async () => {
    const plain = (await get(sim, `${children}&pageSize=1`)).body.trackedEntities[0];
    assert.ok(Array.isArray(plain.attributes));
    assert.equal(plain.enrollments, undefined);
    assert.equal(plain.relationships, undefined);

    const full = (await get(sim, `${children}&pageSize=1&fields=*`)).body.trackedEntities[0];
    const [enrollment] = full.enrollments;
    assert.equal(enrollment.program, CHILD_PROGRAMME);
    const [birth] = enrollment.events;
    assert.equal(birth.programStage, BIRTH_STAGE);
    assert.ok(birth.dataValues.length >= 3);
    assert.equal(full.relationships.length, 1);
    assert.ok(full.relationships[0].to.trackedEntity.attributes.length >= 2, 'the mother end carries her attributes');

    const narrow = (
      await get(
        sim,
        `${children}&pageSize=1&fields=trackedEntity,enrollments[events[event,dataValues[dataElement,value]]]`,
      )
    ).body.trackedEntities[0];
    assert.deepEqual(Object.keys(narrow), ['trackedEntity', 'enrollments']);
    assert.deepEqual(Object.keys(narrow.enrollments[0]), ['events']);
    assert.deepEqual(Object.keys(narrow.enrollments[0].events[0]), ['event', 'dataValues']);
    assert.deepEqual(Object.keys(narrow.enrollments[0].events[0].dataValues[0]), ['dataElement', 'value']);
  });

  it("lists only the tracked entity type's attributes at the top of a read without a programme, as DHIS2 does", async () => {
    const uid = (await get(sim, `${children}&pageSize=1`)).body.trackedEntities[0].trackedEntity;
    const names = (list: Array<{ displayName: string }>) => list.map((a) => a.displayName).sort();
    const bare = (await get(sim, `/api/tracker/trackedEntities/${uid}?fields=*`)).body;
    assert.deepEqual(names(bare.attributes), ['First name', 'Last name']);
    assert.ok(names(bare.enrollments[0].attributes).includes('Gender'), 'programme attributes under the enrollment');
    const inProgramme = (await get(sim, `/api/tracker/trackedEntities/${uid}?program=${CHILD_PROGRAMME}&fields=*`))
      .body;
    assert.ok(names(inProgramme.attributes).includes('Gender'), 'with the programme, at the top too');
  });

  it('answers paging=false with the bare list, as the OpenFn workflow asks (fields=:all)', async () => {
    const { body } = await get(
      sim,
      `/api/tracker/trackedEntities?orgUnits=${ORG_UNITS.ngelehunChc}&program=${CHILD_PROGRAMME}&fields=:all&paging=false`,
    );
    assert.deepEqual(Object.keys(body), ['trackedEntities']);
    assert.ok(body.trackedEntities[0].enrollments[0].events.length > 0);
  });

  it('uses the envelope of the docs example (pager + named list) for tracked entities, events and enrollments', async () => {
    const docs = {
      trackedEntities: fixture('dhis2-docs/GET_api_tracker_trackedEntities__list_response.json'),
      events: fixture('dhis2-docs/GET_api_tracker_events__list_response.json'),
      enrollments: fixture('dhis2-docs/GET_api_tracker_enrollments__list_response.json'),
    };
    for (const [key, example] of Object.entries(docs)) {
      const { status, body } = await get(sim, `/api/tracker/${key}?program=${CHILD_PROGRAMME}&pageSize=1`);
      assert.equal(status, 200);
      assert.deepEqual(Object.keys(body).sort(), Object.keys(example as object).sort(), key);
      assert.deepEqual(body.pager, { page: 1, pageSize: 1 });
      const documented = Object.keys((example as Record<string, object[]>)[key]?.[0] ?? {});
      const missing = documented.filter(
        (k) =>
          !(k in body[key][0]) &&
          !['geometry', 'createdAtClient', 'updatedAtClient', 'followup', 'scheduledAt'].includes(k),
      );
      assert.deepEqual(missing, [], `${key} items carry the documented properties`);
    }
  });

  it('answers with the 2.40 envelope (page fields + instances) when configured so', async () => {
    const old = await startDhis2Simulator({
      pageEnvelope: 'instances',
      seed: buildDemoChildProgramme({ births: 3, deaths: 0, seed: 1, baseDate: BASE_DATE }),
    });
    try {
      const { body } = await get(
        old,
        `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&pageSize=2&totalPages=true`,
      );
      assert.deepEqual(Object.keys(body).sort(), ['instances', 'page', 'pageCount', 'pageSize', 'total']);
      assert.equal(body.instances.length, 2);
    } finally {
      await old.close();
    }
  });

  it("gives the bridge's client the page size applied and, with totalPages, the total, in either envelope", async () => {
    const old = await startDhis2Simulator({
      pageEnvelope: 'instances',
      seed: buildDemoChildProgramme({ births: 3, deaths: 0, seed: 1, baseDate: BASE_DATE }),
    });
    try {
      const query = { program: CHILD_PROGRAMME, pageSize: '2' };
      for (const [server, total] of [
        [sim, BIRTHS],
        [old, 3],
      ] as const) {
        const client = new Dhis2Client(
          {
            id: 'dhis2',
            kind: 'dhis2',
            baseUrl: server.baseUrl,
            auth: { type: 'basic', username: DEFAULT_SANDBOX_AUTH.username, password: DEFAULT_SANDBOX_AUTH.password },
            timeoutMs: 5000,
            poll: { enabled: true, schedule: '* * * * *', overlapSeconds: 30, pageSize: 2 },
            mappings: [],
          },
          { logger: silentLogger, attempts: 1 },
        );
        const plain = await client.trackedEntityPage(query);
        assert.deepEqual([plain.entities.length, plain.pageSize, plain.total], [2, 2, undefined]);
        const counted = await client.trackedEntityPage({ ...query, totalPages: 'true' });
        assert.deepEqual([counted.entities.length, counted.pageSize, counted.total], [2, 2, total]);
      }
    } finally {
      await old.close();
    }
  });

  it('lists events and enrollments by program, stage, org unit and updatedAfter', async () => {
    const events = (
      await get(
        sim,
        `/api/tracker/events?program=${CHILD_PROGRAMME}&programStage=${BIRTH_STAGE}&order=updatedAt:asc&paging=false`,
      )
    ).body.events;
    assert.equal(events.length, BIRTHS);
    const atNgelehun = (
      await get(sim, `/api/tracker/events?program=${CHILD_PROGRAMME}&orgUnit=${ORG_UNITS.ngelehunChc}&paging=false`)
    ).body.events;
    assert.ok(
      atNgelehun.length > 0 && atNgelehun.every((ev: { orgUnit: string }) => ev.orgUnit === ORG_UNITS.ngelehunChc),
    );
    const later = (
      await get(sim, `/api/tracker/events?program=${CHILD_PROGRAMME}&updatedAfter=${events[5].updatedAt}&paging=false`)
    ).body.events;
    assert.equal(later.length, BIRTHS - 5);
    const enrollments = await get(
      sim,
      `/api/tracker/enrollments?program=${DEATH_PROGRAMME}&pageSize=2&page=2&totalPages=true`,
    );
    assert.deepEqual(enrollments.body.pager, { page: 2, pageSize: 2, total: DEATHS, pageCount: 2 });
    assert.equal(
      enrollments.body.enrollments[0].events,
      undefined,
      'events are not part of the default enrollment fields',
    );
  });

  it('refuses requests without valid credentials with the DHIS2 401 envelope', async () => {
    const none = await get(sim, '/api/system/info', null);
    assert.equal(none.status, 401);
    assert.deepEqual(none.body, {
      httpStatus: 'Unauthorized',
      httpStatusCode: 401,
      status: 'ERROR',
      message: 'Unauthorized',
    });
    assert.equal((await get(sim, '/api/me', 'ApiToken d2pat_wrong')).status, 401);
    assert.equal((await get(sim, '/api/me', `Basic ${Buffer.from('admin:wrong').toString('base64')}`)).status, 401);
    assert.equal((await get(sim, '/api/me', `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}`)).status, 200);

    const tokenOnly = await startDhis2Simulator({ auth: { pat: 'd2pat_onlyThisToken' } });
    try {
      assert.equal((await get(tokenOnly, '/api/me')).status, 401, 'Basic is refused when only a token is configured');
      assert.equal((await get(tokenOnly, '/api/me', 'ApiToken d2pat_onlyThisToken')).status, 200);
    } finally {
      await tokenOnly.close();
    }
  });

  it('reports a 2.41 version, the server date and the current user for doctor checks', async () => {
    const info = (await get(sim, '/api/system/info')).body;
    assert.match(info.version, /^2\.41\./);
    assert.match(info.serverDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$/);
    const me = (await get(sim, '/api/me')).body;
    assert.equal(me.username, 'admin');
    assert.deepEqual(me.organisationUnits, [{ id: ORG_UNITS.sierraLeone }]);
  });

  it('answers bad parameters with 400 in the DHIS2 error envelope', async () => {
    for (const query of [
      '&pageSize=5000',
      '&updatedAfter=yesterday',
      '&order=nonsense:asc',
      '&page=0',
      '&fields=enrollments[events',
    ]) {
      const { status, body } = await get(sim, `${children}${query}`);
      assert.equal(status, 400, query);
      assert.equal(body.status, 'ERROR');
      assert.equal(body.httpStatus, 'Bad Request');
    }
    const missing = await get(sim, '/api/tracker/trackedEntities/Xxxxxxxxxx1');
    assert.equal(missing.status, 404);
  });

  it('refuses a tracked entity list filtered by programme and type at once, 409 as 2.40 and 2.41 do', async () => {
    const both = await get(sim, `${children}&trackedEntityType=${TRACKED_ENTITY_TYPE_PERSON}`);
    assert.equal(both.status, 409);
    assert.deepEqual(both.body, {
      httpStatus: 'Conflict',
      httpStatusCode: 409,
      status: 'ERROR',
      message: 'Program and tracked entity cannot be specified simultaneously',
    });
    // Each alone is a list.
    const byType = `/api/tracker/trackedEntities?trackedEntityType=${TRACKED_ENTITY_TYPE_PERSON}&orgUnitMode=ALL&pageSize=1`;
    assert.equal((await get(sim, byType)).status, 200);
  });

  it('refuses a programme DHIS2 does not have as 2.40 and 2.41 do: 400 to a list, 404 to a read in it', async () => {
    const unknown = 'NoSuchProg1';
    for (const list of ['trackedEntities', 'events']) {
      const { status, body } = await get(sim, `/api/tracker/${list}?program=${unknown}`);
      assert.equal(status, 400, list);
      assert.equal(body.httpStatus, 'Bad Request');
      assert.equal(body.message, `Program is specified but does not exist: ${unknown}`);
    }
    const child = (await get(sim, `${children}&pageSize=1&fields=trackedEntity`)).body.trackedEntities[0].trackedEntity;
    const read = await get(sim, `/api/tracker/trackedEntities/${child}?program=${unknown}`);
    assert.equal(read.status, 404);
    assert.equal(read.body.message, `Program with id ${unknown} could not be found.`);
    const meta = await get(sim, `/api/programs/${unknown}`);
    assert.equal(meta.status, 404);
    assert.equal(meta.body.message, `Program with id ${unknown} could not be found.`);

    // A programme with data but no metadata (seeds do not check metadata) lists what it has.
    const other = await startDhis2Simulator({
      seed: [
        {
          trackedEntity: 'SbxOtherTe1',
          trackedEntityType: TRACKED_ENTITY_TYPE_PERSON,
          orgUnit: ORG_UNITS.ngelehunChc,
          enrollments: [
            {
              enrollment: 'SbxOtherEn1',
              program: 'SbxOtherPrg',
              orgUnit: ORG_UNITS.ngelehunChc,
              enrolledAt: BASE_DATE,
            },
          ],
        },
      ],
    });
    try {
      const listed = await get(other, '/api/tracker/trackedEntities?program=SbxOtherPrg&fields=trackedEntity');
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.body.trackedEntities, [{ trackedEntity: 'SbxOtherTe1' }]);
    } finally {
      await other.close();
    }
  });

  it('lists without a programme only tracked entities of a type an accessible programme has, as it reads them by uid', async () => {
    const clerk = { username: 'no-programme', password: 'No-Programme-1', organisationUnits: [ORG_UNITS.sierraLeone] };
    const sim2 = await startDhis2Simulator({
      seed: [
        ...buildDemoChildProgramme({ births: 1, deaths: 0, seed: 42, baseDate: BASE_DATE }),
        { trackedEntity: 'SbxMotherT1', trackedEntityType: 'SbxOtherTyp', orgUnit: ORG_UNITS.ngelehunChc },
      ],
      users: [{ ...clerk, programs: [] }],
    });
    try {
      const child = (await get(sim2, `${children}&fields=trackedEntity`)).body.trackedEntities[0].trackedEntity;
      const byUid = (auth?: string) =>
        get(
          sim2,
          `/api/tracker/trackedEntities?trackedEntities=${child},SbxMotherT1&orgUnitMode=ACCESSIBLE&fields=trackedEntity`,
          auth,
        );
      const listed = await byUid();
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.body.trackedEntities, [{ trackedEntity: child }], 'her type is in no programme');
      const read = await get(sim2, '/api/tracker/trackedEntities/SbxMotherT1?fields=trackedEntity');
      assert.equal(read.status, 200, 'read by uid, she is served');
      const asClerk = `Basic ${Buffer.from(`${clerk.username}:${clerk.password}`).toString('base64')}`;
      const none = await byUid(asClerk);
      assert.equal(none.status, 200);
      assert.deepEqual(none.body.trackedEntities, [], 'no programme shared: no type reached');
    } finally {
      await sim2.close();
    }
  });

  it('refuses a programme not shared with the user as 2.42+ does: 403 to a list and to a read in it', async () => {
    const clerk = { username: 'deaths-clerk', password: 'Deaths-Clerk-1', organisationUnits: [ORG_UNITS.sierraLeone] };
    const shared = await startDhis2Simulator({
      seed: buildDemoChildProgramme({ births: 1, deaths: 1, seed: 42, baseDate: BASE_DATE }),
      users: [{ ...clerk, programs: [DEATH_PROGRAMME] }],
    });
    try {
      const child = (await get(shared, `${children}&fields=trackedEntity`)).body.trackedEntities[0].trackedEntity;
      const asClerk = `Basic ${Buffer.from(`${clerk.username}:${clerk.password}`).toString('base64')}`;
      for (const path of [
        children,
        `/api/tracker/events?program=${CHILD_PROGRAMME}`,
        `/api/tracker/trackedEntities/${child}?program=${CHILD_PROGRAMME}`,
      ]) {
        const { status, body } = await get(shared, path, asClerk);
        assert.equal(status, 403, path);
        assert.equal(body.httpStatus, 'Forbidden');
        assert.equal(body.message, `User has no access to program: ${CHILD_PROGRAMME}`);
      }
      assert.equal((await get(shared, children)).status, 200, 'the superuser reads every programme');
      const deaths = await get(shared, `/api/tracker/trackedEntities?program=${DEATH_PROGRAMME}`, asClerk);
      assert.equal(deaths.status, 200, 'a programme shared with the user');
    } finally {
      await shared.close();
    }
  });

  it("serves a programme's attributes and its stages' data elements, as `fields` selects them", async () => {
    const fields =
      'id,programTrackedEntityAttributes[trackedEntityAttribute[id]],programStages[id,programStageDataElements[dataElement[id]]],trackedEntityType[trackedEntityTypeAttributes[trackedEntityAttribute[id]]]';
    const { status, body } = await get(sim, `/api/programs/${CHILD_PROGRAMME}?fields=${encodeURIComponent(fields)}`);
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(body).sort(), [
      'id',
      'programStages',
      'programTrackedEntityAttributes',
      'trackedEntityType',
    ]);
    const attributes = body.programTrackedEntityAttributes.map(
      (a: { trackedEntityAttribute: { id: string } }) => a.trackedEntityAttribute.id,
    );
    assert.ok(attributes.includes(ATTRIBUTES.gender) && attributes.includes(ATTRIBUTES.nationalId), attributes.join());
    assert.ok(
      !attributes.includes(ATTRIBUTES.dateOfBirth),
      'the death programme attribute is not the Child Programme one',
    );
    const birth = body.programStages.find((stage: { id: string }) => stage.id === BIRTH_STAGE);
    assert.deepEqual(
      birth.programStageDataElements.map((d: { dataElement: { id: string } }) => d.dataElement.id).sort(),
      Object.values(BIRTH_DATA_ELEMENTS).sort(),
    );
    assert.deepEqual(body.trackedEntityType.trackedEntityTypeAttributes, [
      { trackedEntityAttribute: { id: ATTRIBUTES.firstName } },
      { trackedEntityAttribute: { id: ATTRIBUTES.lastName } },
      { trackedEntityAttribute: { id: ATTRIBUTES.trackingId } },
    ]);
    // Without `fields`, the whole object.
    const whole = await get(sim, `/api/programs/${DEATH_PROGRAMME}`);
    assert.equal(whole.body.displayName, 'Death notification (sandbox)');
    assert.ok(Array.isArray(whole.body.programTrackedEntityAttributes));
  });

  it('serves the value types of data elements and attributes (doctor judges a write-back target by them)', async () => {
    const valueType = async (collection: string, uid: string) =>
      (await get(sim, `/api/${collection}/${uid}?fields=id,valueType`)).body;
    assert.deepEqual(await valueType('dataElements', BIRTH_DATA_ELEMENTS.weightGrams), {
      id: BIRTH_DATA_ELEMENTS.weightGrams,
      valueType: 'NUMBER',
    });
    assert.equal((await valueType('dataElements', BIRTH_DATA_ELEMENTS.bcgDose)).valueType, 'BOOLEAN');
    assert.equal((await valueType('dataElements', BIRTH_DATA_ELEMENTS.trackingId)).valueType, 'TEXT');
    assert.equal((await valueType('trackedEntityAttributes', ATTRIBUTES.trackingId)).valueType, 'TEXT');
    assert.equal((await valueType('trackedEntityAttributes', ATTRIBUTES.dateOfBirth)).valueType, 'DATE');
  });
});

describe("DHIS2 simulator: deleted tracked entities and the user's org units", () => {
  let sim: Dhis2Simulator;
  const seed = buildDemoChildProgramme({ births: 6, deaths: 0, seed: 42, baseDate: BASE_DATE });
  /** Children owned (enrolled) at `orgUnit`. */
  const ownedAt = (orgUnit: string) =>
    seed.filter((te) => te.enrollments?.some((en) => en.program === CHILD_PROGRAMME && en.orgUnit === orgUnit));
  const byUid = (uid: string, extra = '') =>
    `/api/tracker/trackedEntities?trackedEntities=${uid}&program=${CHILD_PROGRAMME}&fields=trackedEntity,deleted${extra}`;
  const listed = async (path: string) =>
    (await get(sim, path)).body.trackedEntities as Array<{ trackedEntity: string; deleted?: boolean }>;

  before(async () => {
    sim = await startDhis2Simulator({ seed });
  });
  after(() => sim.close());

  it('lists a soft-deleted tracked entity with deleted: true only with includeDeleted=true, in its program', async () => {
    const [gone, kept] = ownedAt(ORG_UNITS.ngelehunChc).concat(ownedAt(ORG_UNITS.gbenikoroMchp));
    assert.ok(gone?.trackedEntity && kept?.trackedEntity);
    const res = await fetch(`${sim.baseUrl}/api/tracker?async=false&importStrategy=DELETE`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ trackedEntities: [{ trackedEntity: gone.trackedEntity }] }),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200);
    assert.equal(
      (await get(sim, `/api/tracker/trackedEntities/${gone.trackedEntity}?program=${CHILD_PROGRAMME}`)).status,
      404,
    );
    assert.deepEqual(await listed(byUid(gone.trackedEntity)), [], 'not listed by default');
    // Its enrollment was deleted with it: the program filter still finds it, as DHIS2 does.
    assert.deepEqual(await listed(byUid(gone.trackedEntity, '&includeDeleted=true')), [
      { trackedEntity: gone.trackedEntity, deleted: true },
    ]);
    assert.deepEqual(await listed(byUid(kept.trackedEntity, '&includeDeleted=true')), [
      { trackedEntity: kept.trackedEntity, deleted: false },
    ]);
    // The 2.40 parameter (semicolon list) names it too; another program does not.
    const old = `/api/tracker/trackedEntities?trackedEntity=${gone.trackedEntity}&program=${CHILD_PROGRAMME}&includeDeleted=true&fields=trackedEntity`;
    assert.equal((await listed(old)).length, 1);
    const other = `/api/tracker/trackedEntities?trackedEntities=${gone.trackedEntity}&program=${DEATH_PROGRAMME}&includeDeleted=true`;
    assert.deepEqual(await listed(other), []);
    const all = await listed(`${children}&includeDeleted=true&paging=false&fields=trackedEntity,deleted`);
    assert.equal(all.filter((te) => te.deleted).length, 1);
    assert.equal(all.length, 6);
  });

  it('answers a read in the program 404 when its owner is outside the capture scope, and lists it only where the user searches', async () => {
    const [outside] = ownedAt(ORG_UNITS.gbenikoroMchp);
    const [inside] = ownedAt(ORG_UNITS.ngelehunChc).slice(-1);
    assert.ok(outside?.trackedEntity && inside?.trackedEntity);
    const read = (uid: string, program = `?program=${CHILD_PROGRAMME}`) =>
      get(sim, `/api/tracker/trackedEntities/${uid}${program}`);
    const narrow = async (body: unknown) => {
      const res = await fetch(`${sim.baseUrl}/_sandbox/user`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(res.status, 200);
    };
    try {
      // Bo holds Ngelehun CHC; Gbenikoro MCHP hangs off the root.
      await narrow({ organisationUnits: [ORG_UNITS.bo] });
      const hidden = await read(outside.trackedEntity);
      assert.equal(hidden.status, 404);
      assert.equal(hidden.body.httpStatusCode, 404, "DHIS2's own error body");
      assert.equal(hidden.body.message, `TrackedEntity with id ${outside.trackedEntity} could not be found.`);
      assert.equal((await read(inside.trackedEntity)).status, 200);
      assert.equal((await read(outside.trackedEntity, '')).status, 200, 'the rule is about the program owner');
      assert.deepEqual(
        await listed(byUid(outside.trackedEntity, '&includeDeleted=true')),
        [],
        'no search scope: capture',
      );
      assert.deepEqual((await get(sim, '/api/me')).body.organisationUnits, [{ id: ORG_UNITS.bo }]);
      // Searching wider than capturing: listed, live, yet not readable in the program.
      await narrow({ organisationUnits: [ORG_UNITS.bo], teiSearchOrganisationUnits: [ORG_UNITS.sierraLeone] });
      assert.deepEqual(await listed(byUid(outside.trackedEntity, '&includeDeleted=true')), [
        { trackedEntity: outside.trackedEntity, deleted: false },
      ]);
      assert.equal((await read(outside.trackedEntity)).status, 404);
      const refused = await fetch(`${sim.baseUrl}/_sandbox/user`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ organisationUnits: ['Nowhere0001'] }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(refused.status, 400);
    } finally {
      await narrow({});
    }
    assert.equal((await read(outside.trackedEntity)).status, 200, 'the superuser again');
    sim.restrictUser({ organisationUnits: [ORG_UNITS.bo] });
    assert.equal((await read(outside.trackedEntity)).status, 404);
    sim.restrictUser(undefined);
    assert.equal((await read(outside.trackedEntity)).status, 200);
  });

  it('refuses a tracked entity list naming an org unit outside the search scope with 403, as DHIS2 2.41+ does', async () => {
    const list = (orgUnits: string) =>
      get(sim, `/api/tracker/trackedEntities?program=${CHILD_PROGRAMME}&orgUnits=${orgUnits}&paging=false`);
    try {
      // Search scope Bo (Ngelehun CHC is below it); Gbenikoro MCHP hangs off the root.
      sim.restrictUser({ organisationUnits: [ORG_UNITS.sierraLeone], teiSearchOrganisationUnits: [ORG_UNITS.bo] });
      const refused = await list(`${ORG_UNITS.ngelehunChc},${ORG_UNITS.gbenikoroMchp}`);
      assert.equal(refused.status, 403, 'the whole list, not the others listed');
      assert.deepEqual(refused.body, {
        httpStatus: 'Forbidden',
        httpStatusCode: 403,
        status: 'ERROR',
        message: `Organisation unit is not part of the search scope: ${ORG_UNITS.gbenikoroMchp}`,
      });
      const inside = await list(ORG_UNITS.ngelehunChc);
      assert.equal(inside.status, 200);
      assert.ok(inside.body.trackedEntities.length > 0);
      // No search org units: the capture ones (DHIS2's fallback).
      sim.restrictUser({ organisationUnits: [ORG_UNITS.gbenikoroMchp] });
      assert.equal((await list(ORG_UNITS.gbenikoroMchp)).status, 200);
      assert.equal((await list(ORG_UNITS.ngelehunChc)).status, 403);
      const me = await get(sim, '/api/me?fields=authorities,organisationUnits[id],teiSearchOrganisationUnits[id]');
      assert.deepEqual(me.body, {
        authorities: ['M_dhis-web-capture'],
        organisationUnits: [{ id: ORG_UNITS.gbenikoroMchp }],
        teiSearchOrganisationUnits: [],
      });
    } finally {
      sim.restrictUser(undefined);
    }
    assert.equal((await list(ORG_UNITS.gbenikoroMchp)).status, 200, 'the superuser is held to no scope');
    assert.deepEqual((await get(sim, '/api/me?fields=authorities')).body, { authorities: ['ALL'] });
  });

  it('serves an org unit with its path, and 404 for one it does not have', async () => {
    const found = await get(sim, `/api/organisationUnits/${ORG_UNITS.ngelehunChc}?fields=id,path,level,parent`);
    assert.deepEqual(found.body, {
      id: ORG_UNITS.ngelehunChc,
      path: `/${ORG_UNITS.sierraLeone}/${ORG_UNITS.bo}/${ORG_UNITS.badjia}/${ORG_UNITS.ngelehunChc}`,
      level: 4,
      parent: { id: ORG_UNITS.badjia },
    });
    const missing = await get(sim, '/api/organisationUnits/NoSuchOu01A');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'OrganisationUnit with id NoSuchOu01A could not be found.');
  });

  it("with outOfScopeRead 'forbidden', answers that read 403 OWNERSHIP_ACCESS_DENIED, as DHIS2 before #20280", async () => {
    const older = await startDhis2Simulator({ seed, outOfScopeRead: 'forbidden' });
    try {
      const [outside] = ownedAt(ORG_UNITS.gbenikoroMchp);
      assert.ok(outside?.trackedEntity);
      const read = () => get(older, `/api/tracker/trackedEntities/${outside.trackedEntity}?program=${CHILD_PROGRAMME}`);
      older.restrictUser({ organisationUnits: [ORG_UNITS.bo] });
      const refused = await read();
      assert.equal(refused.status, 403);
      assert.deepEqual(refused.body, {
        httpStatus: 'Forbidden',
        httpStatusCode: 403,
        status: 'ERROR',
        message: 'OWNERSHIP_ACCESS_DENIED',
      });
      older.restrictUser(undefined);
      assert.equal((await read()).status, 200);
    } finally {
      await older.close();
    }
  });
});

// A user of one district (Bo, which holds Ngelehun CHC; Gbenikoro MCHP hangs off the root): DHIS2 shows and
// lets them change events only where they own the record in the program, and refuses an import there.
describe("DHIS2 simulator: events and imports in the user's org units", () => {
  const seed = buildDemoChildProgramme({ births: 6, deaths: 0, seed: 42, baseDate: BASE_DATE });
  const clerk = { username: 'bo-clerk', password: 'bo-secret', organisationUnits: [ORG_UNITS.bo] };
  const asClerk = `Basic ${Buffer.from(`${clerk.username}:${clerk.password}`).toString('base64')}`;
  const ownedAt = (orgUnit: string) => {
    const te = seed.find((t) => t.enrollments?.some((en) => en.program === CHILD_PROGRAMME && en.orgUnit === orgUnit));
    const ev = te?.enrollments?.[0]?.events?.[0];
    assert.ok(te?.trackedEntity && ev?.event, `a child with an event owned at ${orgUnit}`);
    return { te, ev, uid: te.trackedEntity, event: ev.event };
  };
  const post = async (sim: Dhis2Simulator, strategy: string, payload: unknown) => {
    const res = await fetch(`${sim.baseUrl}/api/tracker?async=false&importStrategy=${strategy}`, {
      method: 'POST',
      headers: { authorization: asClerk, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(5000),
    });
    // biome-ignore lint/suspicious/noExplicitAny: the import report is asserted on below
    return { status: res.status, body: (await res.json()) as any };
  };
  const codes = (body: { validationReport?: { errorReports?: { errorCode: string }[] } }) =>
    (body.validationReport?.errorReports ?? []).map((e) => e.errorCode);

  let sim: Dhis2Simulator;
  before(async () => {
    sim = await startDhis2Simulator({ seed, users: [clerk] });
  });
  after(() => sim.close());

  it('lists and reads only events whose program owner the user may see (404 for the others)', async () => {
    const outside = ownedAt(ORG_UNITS.gbenikoroMchp);
    const inside = ownedAt(ORG_UNITS.ngelehunChc);
    const listed = async (authorization: string) =>
      (
        (await get(sim, `/api/tracker/events?program=${CHILD_PROGRAMME}&paging=false&fields=event`, authorization)).body
          .events as { event: string }[]
      ).map((e) => e.event);
    const mine = await listed(asClerk);
    assert.ok(mine.includes(inside.event));
    assert.ok(!mine.includes(outside.event), 'not listed outside the user scope');
    assert.ok((await listed(basic)).includes(outside.event), 'the superuser lists it');

    const hidden = await get(sim, `/api/tracker/events/${outside.event}`, asClerk);
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.message, `Event with id ${outside.event} could not be found.`);
    assert.equal((await get(sim, `/api/tracker/events/${inside.event}`, asClerk)).status, 200);
    assert.equal((await get(sim, `/api/tracker/events/${outside.event}`)).status, 200, 'the superuser reads it');
  });

  it('refuses an import below a record the user does not own (E1102, E1003) or in an org unit outside their capture (E1000)', async () => {
    const outside = ownedAt(ORG_UNITS.gbenikoroMchp);
    const inside = ownedAt(ORG_UNITS.ngelehunChc);
    const withValue = (ev: typeof inside.ev, value: string) => ({
      ...ev,
      dataValues: [{ dataElement: 'SbxTrkIdDe1', value }],
    });
    const before = sim.trackedEntity(outside.uid);

    const event = await post(sim, 'UPDATE', { events: [withValue(outside.ev, 'X')] });
    assert.equal(event.status, 409);
    assert.deepEqual(codes(event.body), ['E1102']);
    assert.match(event.body.validationReport.errorReports[0].message, /User: `bo-clerk`/);
    const attribute = await post(sim, 'UPDATE', {
      trackedEntities: [{ ...outside.te, enrollments: [], attributes: [{ attribute: 'SbxTrkIdAtt', value: 'X' }] }],
    });
    assert.equal(attribute.status, 409);
    assert.deepEqual(codes(attribute.body), ['E1003']);
    const moved = await post(sim, 'CREATE', {
      events: [{ ...inside.ev, event: 'SbxNewEvt01', orgUnit: ORG_UNITS.gbenikoroMchp, dataValues: [] }],
    });
    assert.equal(moved.status, 409);
    assert.deepEqual(codes(moved.body), ['E1000']);
    assert.deepEqual(sim.trackedEntity(outside.uid), before, 'nothing written');

    const own = await post(sim, 'UPDATE', { events: [withValue(inside.ev, 'Y')] });
    assert.equal(own.status, 200, JSON.stringify(own.body.validationReport));
  });

  it("with outOfScopeRead 'forbidden', answers the event read 403, as DHIS2 2.41 does", async () => {
    const older = await startDhis2Simulator({ seed, users: [clerk], outOfScopeRead: 'forbidden' });
    try {
      const outside = ownedAt(ORG_UNITS.gbenikoroMchp);
      const refused = await get(older, `/api/tracker/events/${outside.event}`, asClerk);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.message, 'OWNERSHIP_ACCESS_DENIED');
    } finally {
      await older.close();
    }
  });
});
