import assert from 'node:assert/strict';
import { STATUS_CODES } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { call, events, getToken, office, tokenQuery } from './opencrvs-simulator-helpers.js';

describe('OpenCRVS simulator fault injection', () => {
  let sim: OpenCrvsSimulator;
  let api: ReturnType<typeof events>;
  let officeId: string;

  before(async () => {
    sim = await startOpenCrvsSimulator({ port: 0 });
    officeId = office(sim).id;
  });
  after(() => sim.close());
  beforeEach(async () => {
    await sim.control.reset();
    api = events(sim, await getToken(sim));
  });

  const createBody = (transactionId: string) => ({ type: 'birth', transactionId, createdAtLocation: officeId });

  test('errorRate 1 answers 500 without committing anything', async () => {
    await sim.control.configure({ faults: { errorRate: 1 } });
    const result = await api.post('/events', createBody('t1'));
    assert.equal(result.status, 500);
    assert.equal(result.json.code, 'INTERNAL_SERVER_ERROR');
    assert.equal((await sim.control.events()).length, 0);
  });

  test("an injected error says its status's own reason, in the events service's error body", async () => {
    for (const [status, code] of [
      [400, 'BAD_REQUEST'],
      [403, 'FORBIDDEN'],
      [404, 'NOT_FOUND'],
      [409, 'CONFLICT'],
      [429, 'TOO_MANY_REQUESTS'],
      [500, 'INTERNAL_SERVER_ERROR'],
    ] as const) {
      await sim.control.configure({ faults: { errorRate: 1, errorStatus: status } });
      const result = await api.post('/events', createBody(`t${status}`));
      assert.equal(result.status, status);
      assert.deepEqual(result.json, { message: STATUS_CODES[status], code, data: { code, httpStatus: status } });
    }
    assert.equal((await sim.control.events()).length, 0);
  });

  test('429 and 503 carry Retry-After when retryAfterSeconds is set', async () => {
    await sim.control.configure({ faults: { errorRate: 1, errorStatus: 429, retryAfterSeconds: 7 } });
    const limited = await api.post('/events', createBody('t1'));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    await sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, retryAfterSeconds: 3 } });
    const unavailable = await api.post('/events', createBody('t1'));
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.headers.get('retry-after'), '3');
    assert.match(unavailable.headers.get('content-type') ?? '', /text\/html/);
    assert.equal((await sim.control.events()).length, 0);
  });

  test('faults leave the token endpoint and the control API alone', async () => {
    await sim.control.configure({ faults: { errorRate: 1, dropRate: 1 } });
    const token = await call(`${sim.tokenUrl}?${tokenQuery(sim.clientId, sim.clientSecret)}`, { method: 'POST' });
    assert.equal(token.status, 200);
    assert.deepEqual(await sim.control.events(), []);
  });

  test('counts the requests it received by operation, those a fault answered too, until a reset', async () => {
    // beforeEach's reset came before its token request.
    assert.deepEqual(await sim.control.requests(), { token: 1 });
    await api.post('/events', createBody('t1'));
    await sim.control.configure({ faults: { errorRate: 1, operations: ['locations'] } });
    assert.equal((await api.get('/locations?locationType=CRVS_OFFICE')).status, 500);
    assert.equal((await api.get('/locations')).status, 500);
    assert.deepEqual(await sim.control.requests(), { token: 1, create: 1, locations: 2 });
    await sim.control.reset();
    assert.deepEqual(await sim.control.requests(), {});
  });

  test('dropRate 1 destroys the connection and commits nothing', async () => {
    await sim.control.configure({ faults: { dropRate: 1 } });
    await assert.rejects(api.post('/events', createBody('t1')), TypeError);
    assert.equal((await sim.control.events()).length, 0);
  });

  test('commitThenFailRate 1 stores the event, loses the answer; the replay then finds the same event', async () => {
    await sim.control.configure({ faults: { commitThenFailRate: 1 } });
    await assert.rejects(api.post('/events', createBody('t1')), TypeError);
    const stored = await sim.control.events();
    assert.equal(stored.length, 1);
    await sim.control.configure({ faults: {} });
    const replay = await api.post('/events', createBody('t1'));
    assert.equal(replay.status, 200);
    assert.equal(replay.json.id, stored[0]?.id);
  });

  test('delayMs holds the answer long enough for a client timeout', async () => {
    await sim.control.configure({ faults: { delayMs: 2_000 } });
    const token = await getToken(sim);
    await assert.rejects(
      call(`${sim.eventsUrl}/locations`, {
        headers: { Authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(100),
      }),
      (err: Error) => err.name === 'TimeoutError',
    );
  });

  test('times limits a fault to the first N requests, so "fail twice then succeed" is scriptable', async () => {
    await sim.control.configure({ faults: { errorRate: 1, errorStatus: 502, times: 2 } });
    assert.equal((await api.post('/events', createBody('t1'))).status, 502);
    assert.equal((await api.post('/events', createBody('t1'))).status, 502);
    assert.equal((await api.post('/events', createBody('t1'))).status, 200);
  });

  test('operations limits faults to the named calls', async () => {
    await sim.control.configure({ faults: { errorRate: 1, operations: ['notify'] } });
    const created = await api.post('/events', createBody('t1'));
    assert.equal(created.status, 200);
    const notified = await api.post(`/events/${created.json.id}/notify`, {
      transactionId: 'n1',
      createdAtLocation: officeId,
      declaration: {},
    });
    assert.equal(notified.status, 500);
  });

  test('a seeded error rate gives the same sequence of answers twice', async () => {
    const run = async () => {
      await sim.control.reset();
      await sim.control.configure({ seed: 42, faults: { errorRate: 0.5 } });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await api.post('/events', createBody(`s${i}`))).status);
      return statuses;
    };
    const first = await run();
    assert.deepEqual(await run(), first);
    assert.ok(first.includes(500) && first.includes(200), `expected a mix, got ${first}`);
  });

  test('the control API refuses an invalid configuration', async () => {
    await assert.rejects(sim.control.configure({ faults: { errorRate: 2 } }), /HTTP 400/);
    await assert.rejects(sim.control.configure({ actionConfirmation: 'maybe' as 'accept' }), /HTTP 400/);
  });
});
