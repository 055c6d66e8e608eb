import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import {
  byExternalId,
  call,
  decodeJwt,
  events,
  getToken,
  office,
  problems,
  tokenQuery,
} from './opencrvs-simulator-helpers.js';

describe('OpenCRVS simulator v1.9 mode', () => {
  let sim: OpenCrvsSimulator;
  let api: ReturnType<typeof events>;
  let officeId: string;

  before(async () => {
    sim = await startOpenCrvsSimulator({ port: 0, version: '1.9' });
    officeId = office(sim).id;
  });
  after(() => sim.close());
  beforeEach(async () => {
    await sim.control.reset();
    api = events(sim, await getToken(sim));
  });

  const create = async (transactionId = 'c1') => {
    const result = await api.post('/events', { type: 'birth', transactionId, createdAtLocation: officeId, extra: 1 });
    assert.equal(result.status, 200, result.text);
    return result.json;
  };
  const notification = (eventId: string, transactionId: string, extra: Record<string, unknown> = {}) => ({
    eventId,
    transactionId,
    type: 'NOTIFY',
    createdAtLocation: officeId,
    declaration: { 'child.name': { firstname: 'Jane', surname: 'Doe' } },
    annotation: {},
    ...extra,
  });

  test('the token endpoint reads only the query string and issues the v1.9 Health scopes', async () => {
    const body = await call(sim.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: tokenQuery(sim.clientId, sim.clientSecret),
    });
    assert.equal(body.status, 400);
    assert.equal(body.json.error, 'invalid_request');
    assert.deepEqual(decodeJwt(await getToken(sim)).scope, [
      'notification-api',
      'record.create[event=birth|death|tennis-club-membership]',
      'record.notify[event=birth|death|tennis-club-membership]',
    ]);
  });

  test('a body is read only under Content-Type exactly application/json: with a charset the call has none', async () => {
    const token = await getToken(sim);
    const post = (contentType: string) =>
      call(`${sim.eventsUrl}/events`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType },
        body: JSON.stringify({ type: 'birth', transactionId: 'c1', createdAtLocation: officeId }),
      });
    for (const contentType of [
      'application/json; charset=utf-8',
      'application/json;charset=UTF-8',
      'Application/JSON',
    ]) {
      const result = await post(contentType);
      assert.equal(result.status, 400, `${contentType}: ${result.text}`);
      assert.equal(result.json.message, 'Input validation failed');
      assert.deepEqual(
        result.json.issues.map((i: { path: unknown; message: string }) => [i.path, i.message]),
        [[[], 'Required']],
        'the procedure saw no body',
      );
    }
    assert.equal((await sim.control.events()).length, 0);
    assert.equal((await post('application/json')).status, 200);
  });

  test('create drops unknown keys and createdAtLocation; actions carry createdByRole HEALTH', async () => {
    const event = await create();
    const [action] = event.actions;
    assert.equal(action.type, 'CREATE');
    assert.equal(action.createdByRole, 'HEALTH');
    assert.equal(action.createdAtLocation, undefined);
  });

  test('notify is POST /events/notifications with eventId in the body; unknown keys are dropped', async () => {
    const event = await create();
    const result = await api.post('/events/notifications', notification(event.id, 'n1', { waitFor: true, x: 1 }));
    assert.equal(result.status, 200, result.text);
    const statuses = result.json.actions.map((a: { type: string; status: string }) => `${a.type}:${a.status}`);
    assert.deepEqual(statuses, ['CREATE:Accepted', 'NOTIFY:Requested', 'NOTIFY:Accepted']);
    assert.equal(result.json.actions[1].createdByRole, 'HEALTH');
    assert.equal(result.json.actions[1].createdAtLocation, officeId);
  });

  test('a notification without eventId is 400 with zod 3 issues', async () => {
    const result = await api.post('/events/notifications', { transactionId: 'n1', createdAtLocation: officeId });
    assert.equal(result.status, 400);
    assert.equal(result.json.message, 'Input validation failed');
    assert.deepEqual(result.json.issues, [
      { code: 'invalid_type', expected: 'string', received: 'undefined', path: ['eventId'], message: 'Required' },
    ]);
  });

  test('an unknown eventId is 404', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const result = await api.post('/events/notifications', notification(id, 'n1'));
    assert.equal(result.status, 404);
    assert.equal(result.json.message, `Event not found with ID: ${id}`);
  });

  test('createdAtLocation is required and must be a leaf (office) location', async () => {
    const event = await create();
    const missing = await api.post('/events/notifications', notification(event.id, 'n1', { createdAtLocation: null }));
    assert.equal(missing.status, 400);
    assert.equal(missing.json.message, 'createdAtLocation is required and must be a valid office id');
    for (const parent of ['RNblUNSnSpQ', 'IkYcYBUcyY2']) {
      const id = byExternalId(sim, parent).id;
      const result = await api.post('/events/notifications', notification(event.id, 'n1', { createdAtLocation: id }));
      assert.equal(result.status, 400);
      assert.equal(result.json.message, 'createdAtLocation must be an office location');
    }
  });

  test('declaration problems use the same JSON-encoded list', async () => {
    const event = await create();
    const result = await api.post(
      '/events/notifications',
      notification(event.id, 'n1', { declaration: { 'foo.bar': 'hello' } }),
    );
    assert.deepEqual(problems(result), [{ message: 'Unexpected field', id: 'foo.bar', value: 'hello' }]);
  });

  test('a second notification with a new transactionId is 409; a replay is 200', async () => {
    const event = await create();
    assert.equal((await api.post('/events/notifications', notification(event.id, 'n1'))).status, 200);
    assert.equal((await api.post('/events/notifications', notification(event.id, 'n1'))).status, 200);
    const second = await api.post('/events/notifications', notification(event.id, 'n2'));
    assert.equal(second.status, 409);
    assert.ok(second.json.message.startsWith("Action 'NOTIFY' cannot be performed on an event in 'NOTIFIED' state"));
  });

  test('the v2.0-only paths do not exist: /events/{id}/notify, /events/notify and /locations are 404', async () => {
    const event = await create();
    assert.equal((await api.post(`/events/${event.id}/notify`, notification(event.id, 'n1'))).status, 404);
    assert.equal((await api.post('/events/notify', { eventType: 'birth' })).status, 404);
    assert.equal((await api.get('/locations')).status, 404);
  });

  test("a delay fault on locations holds the gateway's v1 location API, and a client that gives up is counted", async () => {
    const url = `${sim.baseUrl}/location?type=CRVS_OFFICE&_count=0`;
    await sim.control.configure({ faults: { delayMs: 2_000, operations: ['locations'] } });
    // Given up once the simulator holds the call, not at a fixed 200 ms a loaded machine may not have sent it by.
    const before = (await sim.control.requests()).locations ?? 0;
    const gaveUp = new AbortController();
    const asked = call(url, { signal: gaveUp.signal });
    for (const held = Date.now() + 10_000; ((await sim.control.requests()).locations ?? 0) === before; ) {
      assert.ok(Date.now() < held, 'the simulator has the call');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    gaveUp.abort();
    await assert.rejects(asked, (err: Error) => err.name === 'AbortError');
    const deadline = Date.now() + 10_000;
    while (!(await sim.control.abandonedRequests()).locations && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(await sim.control.abandonedRequests(), { locations: 1 });
    // Waited out, it answers the list.
    await sim.control.configure({ faults: { delayMs: 300, operations: ['locations'] } });
    const started = performance.now();
    const listed = await call(url);
    assert.ok(performance.now() - started >= 290, 'held for the delay');
    assert.equal(listed.status, 200);
    assert.equal(listed.json.resourceType, 'Bundle');
  });

  test('v1.9 scopes are checked per event type', async () => {
    await sim.control.addClient({
      clientId: 'deaths',
      clientSecret: 'pw',
      scopes: ['record.create[event=death]', 'record.notify[event=death]'],
    });
    const deaths = events(sim, await getToken(sim, 'deaths', 'pw'));
    assert.equal((await deaths.post('/events', { type: 'birth', transactionId: 'x' })).status, 403);
    assert.equal((await deaths.post('/events', { type: 'death', transactionId: 'x' })).status, 200);
  });
});
