import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type OpenCrvsSimulator, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';
import { call, decodeJwt, events, getToken, tokenQuery } from './opencrvs-simulator-helpers.js';

describe('OpenCRVS simulator: token endpoint and bearer check', () => {
  let sim: OpenCrvsSimulator;
  before(async () => {
    sim = await startOpenCrvsSimulator({ port: 0, clientId: 'health-1', clientSecret: 's3cret' });
  });
  after(() => sim.close());
  beforeEach(() => sim.control.reset());

  for (const path of ['/token', '/auth/token', '/api/auth/token']) {
    test(`POST ${path} with credentials in the query string returns a Bearer token, no-store, no expires_in`, async () => {
      const result = await call(`${sim.baseUrl}${path}?${tokenQuery('health-1', 's3cret')}`, { method: 'POST' });
      assert.equal(result.status, 200);
      assert.equal(result.headers.get('cache-control'), 'no-store');
      assert.deepEqual(Object.keys(result.json).sort(), ['access_token', 'token_type']);
      assert.equal(result.json.token_type, 'Bearer');
    });
  }

  test('v2.0 also reads the credentials from a form body and from a JSON body', async () => {
    const form = await call(sim.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: tokenQuery('health-1', 's3cret'),
    });
    assert.equal(form.status, 200, form.text);
    const json = await call(sim.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_id: 'health-1', client_secret: 's3cret', grant_type: 'client_credentials' }),
    });
    assert.equal(json.status, 200, json.text);
  });

  test('the JWT carries the OpenCRVS claims: issuer, audiences, subject, system user type, scopes, exp = iat + 600', async () => {
    const token = await getToken(sim);
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8'));
    assert.equal(header.alg, 'RS256');
    const claims = decodeJwt(token);
    assert.equal(claims.iss, 'opencrvs:auth-service');
    assert.deepEqual(claims.aud, ['opencrvs:gateway-user', 'opencrvs:events-user']);
    assert.equal(claims.sub, 'health-1');
    assert.equal(claims.userType, 'system');
    assert.deepEqual(claims.scope, [
      'type=record.create&event=birth,death,tennis-club-membership',
      'type=record.notify&event=birth,death,tennis-club-membership',
    ]);
    assert.equal(Number(claims.exp) - Number(claims.iat), 600);
  });

  test('missing client_secret is 400 invalid_request', async () => {
    const result = await call(`${sim.tokenUrl}?client_id=health-1&grant_type=client_credentials`, { method: 'POST' });
    assert.equal(result.status, 400);
    assert.equal(result.json.error, 'invalid_request');
    assert.equal(result.headers.get('cache-control'), 'no-store');
  });

  test('a grant type other than client_credentials is 400 unsupported_grant_type', async () => {
    const result = await call(`${sim.tokenUrl}?${tokenQuery('health-1', 's3cret', 'password')}`, { method: 'POST' });
    assert.equal(result.status, 400);
    assert.equal(result.json.error, 'unsupported_grant_type');
  });

  test('a wrong secret or an unknown client is 401 invalid_client "Invalid client id or secret"', async () => {
    for (const query of [tokenQuery('health-1', 'wrong'), tokenQuery('nobody', 's3cret')]) {
      const result = await call(`${sim.tokenUrl}?${query}`, { method: 'POST' });
      assert.equal(result.status, 401);
      assert.equal(result.json.error, 'invalid_client');
      assert.equal(result.json.error_description, 'Invalid client id or secret');
    }
  });

  test('a missing bearer token is 401 in the gateway Hapi shape', async () => {
    const result = await call(`${sim.eventsUrl}/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    assert.equal(result.status, 401);
    assert.deepEqual(result.json, { statusCode: 401, error: 'Unauthorized', message: 'Missing authentication' });
  });

  test('a malformed or badly signed bearer token is 401', async () => {
    const token = await getToken(sim);
    const [h, p] = token.split('.');
    const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    for (const bad of ['abc', forged]) {
      const result = await events(sim, bad).post('/events', { type: 'birth', transactionId: 'x' });
      assert.equal(result.status, 401);
      assert.equal(result.json.error, 'Unauthorized');
      assert.equal(result.json.statusCode, 401);
    }
  });

  test('an expired token is 401 "Token expired"', async () => {
    await sim.control.addClient({ clientId: 'short', clientSecret: 'x', tokenTtlSeconds: 0 });
    const token = await getToken(sim, 'short', 'x');
    const result = await events(sim, token).post('/events', { type: 'birth', transactionId: 'x' });
    assert.equal(result.status, 401);
    assert.equal(result.json.message, 'Token expired');
  });

  test('removing a client revokes the tokens it holds and its credentials', async () => {
    await sim.control.addClient({ clientId: 'temp', clientSecret: 'pw' });
    const token = await getToken(sim, 'temp', 'pw');
    assert.equal((await events(sim, token).get('/locations?locationType=CRVS_OFFICE')).status, 200);
    await sim.control.removeClient('temp');
    const refused = await events(sim, token).get('/locations?locationType=CRVS_OFFICE');
    assert.equal(refused.status, 401);
    assert.equal(refused.json.error, 'Unauthorized');
    const again = await call(`${sim.tokenUrl}?${tokenQuery('temp', 'pw')}`, { method: 'POST' });
    assert.equal(again.status, 401);
  });

  test('replacing a client revokes the tokens issued before it, in the same second too, and not those after', async () => {
    const office = '/locations?locationType=CRVS_OFFICE';
    await sim.control.addClient({ clientId: 'replaced', clientSecret: 'pw-1' });
    // Both within one second, iat alike: only the order says which token came before the replacement.
    let before = '';
    let after = '';
    for (let i = 0; i < 5; i++) {
      before = await getToken(sim, 'replaced', 'pw-1');
      await sim.control.addClient({ clientId: 'replaced', clientSecret: 'pw-2' });
      after = await getToken(sim, 'replaced', 'pw-2');
      if (decodeJwt(before).iat === decodeJwt(after).iat) break;
      await sim.control.addClient({ clientId: 'replaced', clientSecret: 'pw-1' }); // a second began between: again
    }
    assert.equal(decodeJwt(before).iat, decodeJwt(after).iat, 'two tokens issued in one second around the replacement');
    assert.equal((await events(sim, before).get(office)).status, 401, 'the token from before the replacement');
    assert.equal((await events(sim, after).get(office)).status, 200, 'the token from after it');

    // Removed and added again (within that second or not): the token from before is not given back.
    await sim.control.removeClient('replaced');
    await sim.control.addClient({ clientId: 'replaced', clientSecret: 'pw-2' });
    assert.equal((await events(sim, after).get(office)).status, 401);
  });

  test('a client added with its own scopes gets exactly those scopes in its token', async () => {
    await sim.control.addClient({ clientId: 'narrow', clientSecret: 'pw', scopes: ['type=record.create'] });
    assert.deepEqual(decodeJwt(await getToken(sim, 'narrow', 'pw')).scope, ['type=record.create']);
  });
});
