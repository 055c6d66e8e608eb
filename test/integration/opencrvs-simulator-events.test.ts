import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { byExternalId, call, events, getToken, office, problems } from './opencrvs-simulator-helpers.js';

const NAME = { firstname: 'Jane', surname: 'Doe' };

describe('OpenCRVS simulator v2.0: events API', () => {
  let sim: OpenCrvsSimulator;
  let api: ReturnType<typeof events>;
  let officeId: string;

  before(async () => {
    sim = await startOpenCrvsSimulator({ port: 0, bodyLimitBytes: 20_000 });
    officeId = office(sim).id;
  });
  after(() => sim.close());
  beforeEach(async () => {
    await sim.control.reset();
    api = events(sim, await getToken(sim));
  });

  const create = async (transactionId = 'create-1', type = 'birth') => {
    const result = await api.post('/events', { type, transactionId, createdAtLocation: officeId });
    assert.equal(result.status, 200, result.text);
    return result.json;
  };
  const notifyBody = (transactionId: string, declaration: Record<string, unknown> = { 'child.name': NAME }) => ({
    type: 'NOTIFY',
    transactionId,
    createdAtLocation: officeId,
    declaration,
    annotation: {},
  });

  describe('create', () => {
    test('returns an EventDocument with a 6-character tracking id and one accepted CREATE action', async () => {
      const event = await create();
      assert.match(event.id, /^[0-9a-f-]{36}$/);
      assert.match(event.trackingId, /^[0-9A-Z]{6}$/);
      assert.equal(event.type, 'birth');
      assert.equal(event.actions.length, 1);
      const [action] = event.actions;
      assert.equal(action.type, 'CREATE');
      assert.equal(action.status, 'Accepted');
      assert.equal(action.createdBy, sim.clientId);
      assert.equal(action.createdByUserType, 'system');
      assert.equal(action.createdAtLocation, officeId);
      assert.equal(action.createdByRole, undefined);
    });

    test('is idempotent on (transactionId, type): a repeat returns the same event and stores one', async () => {
      const first = await create('same');
      const second = await create('same');
      assert.equal(second.id, first.id);
      assert.equal(second.trackingId, first.trackingId);
      assert.equal((await sim.control.events()).length, 1);
    });

    test('an unknown event type is 400 "No configuration found for event type"', async () => {
      const result = await api.post('/events', {
        type: 'tennis-club-membership',
        transactionId: 't',
        createdAtLocation: officeId,
      });
      assert.equal(result.status, 400);
      assert.equal(result.json.message, 'No configuration found for event type: tennis-club-membership');
      assert.equal(result.json.code, 'BAD_REQUEST');
      assert.deepEqual(result.json.data.httpStatus, 400);
    });

    test('a missing createdAtLocation is 400 with the system-user message', async () => {
      const result = await api.post('/events', { type: 'birth', transactionId: 't' });
      assert.equal(result.status, 400);
      assert.equal(result.json.message, 'createdAtLocation is required and must be a valid location id');
    });

    test('an administrative-area id is not a valid createdAtLocation', async () => {
      const area = byExternalId(sim, 'RNblUNSnSpQ'); // Ibombo district
      const result = await api.post('/events', { type: 'birth', transactionId: 't', createdAtLocation: area.id });
      assert.equal(result.status, 400);
      assert.equal(result.json.message, 'createdAtLocation must be a valid location id');
    });

    test('an unknown top-level key is 400 "Input validation failed" with zod issues', async () => {
      const result = await api.post('/events', {
        type: 'birth',
        transactionId: 't',
        createdAtLocation: officeId,
        extra: 1,
      });
      assert.equal(result.status, 400);
      assert.equal(result.json.message, 'Input validation failed');
      assert.deepEqual(result.json.issues, [
        { code: 'unrecognized_keys', keys: ['extra'], path: [], message: 'Unrecognized key: "extra"' },
      ]);
    });
  });

  describe('notify: checks in order', () => {
    test('1. no bearer token is 401 before anything else', async () => {
      const result = await call(`${sim.eventsUrl}/events/00000000-0000-4000-8000-000000000000/notify`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"bad":true}',
      });
      assert.equal(result.status, 401);
    });

    test('2. a token without the record.notify scope is 403 even for an unknown event', async () => {
      await sim.control.addClient({ clientId: 'creator', clientSecret: 'pw', scopes: ['type=record.create'] });
      const creator = events(sim, await getToken(sim, 'creator', 'pw'));
      const result = await creator.post('/events/00000000-0000-4000-8000-000000000000/notify', { bad: true });
      assert.equal(result.status, 403);
      assert.equal(result.json.code, 'FORBIDDEN');
      assert.equal(result.json.data.httpStatus, 403);
    });

    test('3. an unknown event is 404 "Event not found with ID" even with a malformed body', async () => {
      const id = '00000000-0000-4000-8000-000000000000';
      const result = await api.post(`/events/${id}/notify`, { bad: true });
      assert.equal(result.status, 404);
      assert.equal(result.json.message, `Event not found with ID: ${id}`);
      assert.equal(result.json.code, 'NOT_FOUND');
    });

    test('4. a body with an unknown key or a missing transactionId is 400 "Input validation failed"', async () => {
      const event = await create();
      const result = await api.post(`/events/${event.id}/notify`, {
        createdAtLocation: officeId,
        declaration: { 'foo.bar': 'x' },
        surprise: true,
      });
      assert.equal(result.status, 400);
      assert.equal(result.json.message, 'Input validation failed');
      const codes = result.json.issues.map((i: { code: string }) => i.code).sort();
      assert.deepEqual(codes, ['invalid_type', 'unrecognized_keys']);
      assert.deepEqual(result.json.issues.find((i: { code: string }) => i.code === 'invalid_type').path, [
        'transactionId',
      ]);
    });

    test('5. declaration problems come before the location check, as a JSON-encoded list', async () => {
      const event = await create();
      const result = await api.post(`/events/${event.id}/notify`, {
        transactionId: 'n1',
        declaration: { 'foo.bar': 'hello', 'child.name': { firstname: 999 } },
      });
      assert.deepEqual(problems(result), [
        { message: 'Unexpected field', id: 'foo.bar', value: 'hello' },
        { message: 'Invalid input', id: 'child.name', value: { firstname: 999 } },
      ]);
    });

    test('6. then the location: missing, unknown, or an administrative area', async () => {
      const event = await create();
      const missing = await api.post(`/events/${event.id}/notify`, { transactionId: 'n1', declaration: {} });
      assert.equal(missing.status, 400);
      assert.equal(missing.json.message, 'createdAtLocation is required and must be a valid location id');
      for (const location of ['6f1e1b0e-0000-4000-8000-000000000000', byExternalId(sim, 'IkYcYBUcyY2').id]) {
        const bad = await api.post(`/events/${event.id}/notify`, { ...notifyBody('n1'), createdAtLocation: location });
        assert.equal(bad.status, 400);
        assert.equal(bad.json.message, 'createdAtLocation must be a valid location id');
      }
    });

    test('7. a replay with the same transactionId returns the current event unchanged (200)', async () => {
      const event = await create();
      const first = await api.post(`/events/${event.id}/notify`, notifyBody('n1'));
      assert.equal(first.status, 200, first.text);
      const replay = await api.post(`/events/${event.id}/notify`, notifyBody('n1', { 'child.dob': '2020-01-01' }));
      assert.equal(replay.status, 200);
      assert.deepEqual(replay.json, first.json);
    });

    test('8. a second NOTIFY with a new transactionId is 409 on a notified event', async () => {
      const event = await create();
      assert.equal((await api.post(`/events/${event.id}/notify`, notifyBody('n1'))).status, 200);
      const second = await api.post(`/events/${event.id}/notify`, notifyBody('n2'));
      assert.equal(second.status, 409);
      assert.equal(second.json.code, 'CONFLICT');
      assert.ok(
        second.json.message.startsWith("Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state"),
        second.json.message,
      );
    });
  });

  describe('uniqueness and reading', () => {
    test('a NOTIFY transactionId already used on another event is refused (500) and stores nothing', async () => {
      const a = await create('ca');
      const b = await create('cb');
      assert.equal((await api.post(`/events/${a.id}/notify`, notifyBody('shared'))).status, 200);
      const reused = await api.post(`/events/${b.id}/notify`, notifyBody('shared'));
      assert.equal(reused.status, 500);
      const stored = (await sim.control.events()).find((e) => e.id === b.id);
      assert.equal(stored?.actions.length, 1);
    });

    test('GET /events/{id} needs record.read, which a Health client lacks', async () => {
      const event = await create();
      assert.equal((await api.get(`/events/${event.id}`)).status, 403);
      await sim.control.addClient({ clientId: 'reader', clientSecret: 'pw', scopes: ['type=record.read'] });
      const reader = events(sim, await getToken(sim, 'reader', 'pw'));
      const read = await reader.get(`/events/${event.id}`);
      assert.equal(read.status, 200);
      assert.equal(read.json.trackingId, event.trackingId);
    });
  });

  describe('notify: declaration values', () => {
    test('a valid notification gets NOTIFY Requested (with the declaration) then NOTIFY Accepted', async () => {
      const event = await create();
      const declaration = {
        'child.name': { firstname: 'Amani', surname: 'Juma', middlename: '' },
        'child.dob': '2025-03-14',
        'child.gender': 'not-an-option',
        'child.weightAtBirth': 3.2,
        'child.birthLocation': byExternalId(sim, 't0qT1Vh8qi3').id,
        'mother.age': { age: 34, asOfDateRef: 'child.dob' },
        'mother.address': {
          country: 'FAR',
          addressType: 'DOMESTIC',
          administrativeArea: byExternalId(sim, 'IkYcYBUcyY2').id,
          streetLevelDetails: { town: 'Ibombo', street: 'Market St', number: '12' },
        },
        'informant.email': 'jane.doe@example.com',
        'informant.phoneNo': '12',
        'informant.dobUnknown': true,
        'documents.proofOfBirth': { path: 'a/b.pdf', originalFilename: 'b.pdf', type: 'application/pdf' },
        'documents.proofOfMother': [],
        'father.name': null,
        'child.reason': '',
        'child.divider1': 'presentational ids are form fields',
      };
      const result = await api.post(`/events/${event.id}/notify`, {
        ...notifyBody('n1', declaration),
        annotation: { 'review.comment': 'from the hospital' },
      });
      assert.equal(result.status, 200, result.text);
      const actions = result.json.actions;
      assert.deepEqual(
        actions.map((a: { type: string; status: string }) => `${a.type}:${a.status}`),
        ['CREATE:Accepted', 'NOTIFY:Requested', 'NOTIFY:Accepted'],
      );
      assert.deepEqual(actions[1].declaration, declaration);
      assert.deepEqual(actions[1].annotation, { 'review.comment': 'from the hospital' });
      assert.equal(actions[1].transactionId, 'n1');
      assert.equal(actions[2].originalActionId, actions[1].id);
      assert.deepEqual(actions[2].declaration, {});
      assert.equal(actions[2].transactionId, 'n1');
    });

    test('wrong shapes per field type are listed with their messages', async () => {
      const event = await create();
      const result = await api.post(
        `/events/${event.id}/notify`,
        notifyBody('n1', {
          'child.dob': '14/03/2025',
          'informant.email': 'not-an-email',
          'mother.age': { age: 34 },
          'child.weightAtBirth': '3.2',
          'informant.dobUnknown': 'yes',
          'mother.address': { addressType: 'DOMESTIC', administrativeArea: 'IkYcYBUcyY2' },
          'father.address': { addressType: 'DOMESTIC', streetLevelDetails: { village: 'x' } },
          'documents.proofOfMother': [{ path: 'a.jpg', originalFilename: 'a.jpg', type: 'image/jpeg' }],
        }),
      );
      assert.deepEqual(
        problems(result).map((p) => `${p.id}: ${p.message}`),
        [
          'child.dob: Invalid date field',
          'informant.email: Invalid email address',
          'mother.age: Invalid input',
          'child.weightAtBirth: Invalid input',
          'informant.dobUnknown: Invalid input',
          'mother.address: Invalid input',
          'father.address: Invalid input',
          'documents.proofOfMother: Invalid input',
        ],
      );
    });

    test('annotation keys are limited to the review fields and a sent review.comment must not be empty', async () => {
      const event = await create();
      const result = await api.post(`/events/${event.id}/notify`, {
        ...notifyBody('n1'),
        annotation: { 'review.comment': '', 'other.key': 1 },
      });
      assert.deepEqual(problems(result), [
        { message: 'Required', id: 'review.comment', value: '' },
        { message: 'Unexpected field', id: 'other.key', value: 1 },
      ]);
    });
  });

  describe('country-config confirmation', () => {
    test('pending: only NOTIFY Requested, HTTP 200', async () => {
      await sim.control.configure({ actionConfirmation: 'pending' });
      const event = await create();
      const result = await api.post(`/events/${event.id}/notify`, notifyBody('n1'));
      assert.equal(result.status, 200);
      assert.deepEqual(
        result.json.actions.map((a: { status: string }) => a.status),
        ['Accepted', 'Requested'],
      );
    });

    test('pending, decided later: the decision points at the Requested action; a replay shows it', async () => {
      await sim.control.configure({ actionConfirmation: 'pending' });
      const event = await create();
      await api.post(`/events/${event.id}/notify`, notifyBody('n1'));
      await sim.control.confirm(event.id, 'reject');
      await assert.rejects(sim.control.confirm(event.id, 'accept'), /HTTP 409/);
      const replay = await api.post(`/events/${event.id}/notify`, notifyBody('n1'));
      assert.equal(replay.status, 200);
      const [requested, decision] = replay.json.actions.filter((a: { type: string }) => a.type === 'NOTIFY');
      assert.equal(requested.status, 'Requested');
      assert.equal(decision.status, 'Rejected');
      assert.equal(decision.originalActionId, requested.id);
      assert.notEqual(decision.transactionId, 'n1');
      assert.equal(replay.json.actions.length, 3);
    });

    test('fail: 500, the Requested action kept; a replay answers 200 with it, undecided', async () => {
      await sim.control.configure({ actionConfirmation: 'fail' });
      const event = await create();
      const result = await api.post(`/events/${event.id}/notify`, notifyBody('n1'));
      assert.equal(result.status, 500);
      assert.match(JSON.stringify(result.json), /Unexpected failure from country config action confirmation API/);
      await sim.control.configure({ actionConfirmation: 'accept' });
      const replay = await api.post(`/events/${event.id}/notify`, notifyBody('n1'));
      assert.equal(replay.status, 200);
      assert.deepEqual(
        replay.json.actions.map((a: { type: string; status: string }) => `${a.type} ${a.status}`),
        ['CREATE Accepted', 'NOTIFY Requested'],
      );
    });

    test('reject: a NOTIFY action with status Rejected and HTTP 200', async () => {
      await sim.control.configure({ actionConfirmation: 'reject' });
      const event = await create();
      const result = await api.post(`/events/${event.id}/notify`, notifyBody('n1'));
      assert.equal(result.status, 200);
      const last = result.json.actions.at(-1);
      assert.equal(last.type, 'NOTIFY');
      assert.equal(last.status, 'Rejected');
      assert.equal(last.transactionId, 'n1');
    });
  });

  describe('scopes', () => {
    test('a scope for other event types is 403 for create and for notify', async () => {
      const event = await create('c-death', 'death');
      await sim.control.addClient({
        clientId: 'births-only',
        clientSecret: 'pw',
        scopes: ['type=record.create&event=birth', 'type=record.notify&event=birth'],
      });
      const births = events(sim, await getToken(sim, 'births-only', 'pw'));
      const created = await births.post('/events', { type: 'death', transactionId: 'd', createdAtLocation: officeId });
      assert.equal(created.status, 403);
      const notified = await births.post(`/events/${event.id}/notify`, notifyBody('n1'));
      assert.equal(notified.status, 403);
      // The event type's scope is checked before the body schema (scope → event → schema).
      assert.equal((await births.post(`/events/${event.id}/notify`, { bogus: 1 })).status, 403);
    });

    test('a scope without event= allows every event type', async () => {
      await sim.control.addClient({ clientId: 'all', clientSecret: 'pw', scopes: ['type=record.create'] });
      const all = events(sim, await getToken(sim, 'all', 'pw'));
      const result = await all.post('/events', { type: 'death', transactionId: 'd', createdAtLocation: officeId });
      assert.equal(result.status, 200, result.text);
    });
  });

  describe('create and notify in one call', () => {
    const body = (transactionId: string) => ({
      eventType: 'birth',
      transactionId,
      createdAtLocation: officeId,
      declaration: { 'child.name': NAME },
      annotation: {},
    });

    test('creates and notifies; a replay returns the same event and stores nothing more', async () => {
      const first = await api.post('/events/notify', body('cn-1'));
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(
        first.json.actions.map((a: { type: string; status: string; transactionId: string }) => [
          a.type,
          a.status,
          a.transactionId,
        ]),
        [
          ['CREATE', 'Accepted', 'cn-1:create'],
          ['NOTIFY', 'Requested', 'cn-1'],
          ['NOTIFY', 'Accepted', 'cn-1'],
        ],
      );
      const replay = await api.post('/events/notify', body('cn-1'));
      assert.equal(replay.status, 200);
      assert.equal(replay.json.id, first.json.id);
      assert.equal((await sim.control.events()).length, 1);
      assert.equal((await sim.control.events())[0]?.actions.length, 3);
    });

    test('needs both the create and the notify scope', async () => {
      await sim.control.addClient({ clientId: 'notifier', clientSecret: 'pw', scopes: ['type=record.notify'] });
      const notifier = events(sim, await getToken(sim, 'notifier', 'pw'));
      assert.equal((await notifier.post('/events/notify', body('cn-2'))).status, 403);
    });
  });

  describe('transport', () => {
    test('a non-JSON content type is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const result = await call(`${sim.eventsUrl}/events`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${await getToken(sim)}`, 'Content-Type': 'text/plain' },
        body: JSON.stringify({ type: 'birth', transactionId: 't', createdAtLocation: officeId }),
      });
      assert.equal(result.status, 415);
      assert.equal(result.json.code, 'UNSUPPORTED_MEDIA_TYPE');
      assert.equal((await sim.control.events()).length, 0);
    });

    test('application/json with a charset parameter is read (2.0 reads the media type)', async () => {
      const result = await call(`${sim.eventsUrl}/events`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${await getToken(sim)}`, 'Content-Type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ type: 'birth', transactionId: 't', createdAtLocation: officeId }),
      });
      assert.equal(result.status, 200, result.text);
    });

    test('a body above the limit is 413 and nothing is stored', async () => {
      const event = await create();
      const big = notifyBody('n1', { 'child.reason': 'x'.repeat(30_000) });
      const result = await api.post(`/events/${event.id}/notify`, big);
      assert.equal(result.status, 413);
      assert.equal(result.json.code, 'PAYLOAD_TOO_LARGE');
      assert.equal((await sim.control.events())[0]?.actions.length, 1);
    });

    test('the events service also answers on the gateway path /events', async () => {
      const token = await getToken(sim);
      const result = await call(`${sim.baseUrl}/events/locations?externalId=xmJJAsGfSTn`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      assert.equal(result.status, 200);
      assert.equal(result.json[0]?.id, officeId);
    });
  });

  describe('locations', () => {
    test('filters by type and returns the wire shape', async () => {
      const result = await api.get('/locations?locationType=CRVS_OFFICE');
      assert.equal(result.status, 200);
      assert.equal(result.json.length, 82);
      assert.deepEqual(Object.keys(result.json[0]).sort(), [
        'administrativeAreaId',
        'externalId',
        'id',
        'locationType',
        'name',
        'validUntil',
      ]);
      assert.equal((await api.get('/locations?locationType=HEALTH_FACILITY')).json.length, 13);
    });

    test('finds one location by id or by externalId; only the first value of a repeated key counts', async () => {
      const hospital = byExternalId(sim, 't0qT1Vh8qi3');
      const byId = await api.get(`/locations?locationIds=${hospital.id}&locationIds=${officeId}`);
      assert.deepEqual(
        byId.json.map((l: { name: string }) => l.name),
        ['Ibombo District Hospital'],
      );
      const byExternal = await api.get('/locations?externalId=xmJJAsGfSTn&externalId=t0qT1Vh8qi3');
      assert.deepEqual(
        byExternal.json.map((l: { id: string; administrativeAreaId: string }) => [l.id, l.administrativeAreaId]),
        [[officeId, byExternalId(sim, 'RNblUNSnSpQ').id]],
      );
    });

    test('location UUIDs are derived from the CSV ids, so they are the same after a restart', async () => {
      const other = await startOpenCrvsSimulator({ port: 0 });
      try {
        assert.equal(office(other).id, officeId);
      } finally {
        await other.close();
      }
    });
  });
});
