// Small fetch helpers for the OpenCRVS simulator's own tests (they deliberately avoid the bridge's client).
import assert from 'node:assert/strict';
import type { OpenCrvsSimulator, SimLocation } from '../../src/sandbox/opencrvs/index.js';

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers field by field.
  json: any;
}

export async function call(url: string, init: RequestInit = {}): Promise<HttpResult> {
  const response = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export function tokenQuery(clientId: string, clientSecret: string, grantType = 'client_credentials'): string {
  return new URLSearchParams({ client_id: clientId, client_secret: clientSecret, grant_type: grantType }).toString();
}

export async function getToken(sim: OpenCrvsSimulator, clientId = sim.clientId, secret = sim.clientSecret) {
  const result = await call(`${sim.tokenUrl}?${tokenQuery(clientId, secret)}`, { method: 'POST' });
  assert.equal(result.status, 200, result.text);
  return String(result.json.access_token);
}

export function decodeJwt(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

/** Calls the events API with a bearer token and a JSON body. */
export function events(sim: OpenCrvsSimulator, token: string) {
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  return {
    post: (path: string, body: unknown) =>
      call(`${sim.eventsUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) }),
    get: (path: string) => call(`${sim.eventsUrl}${path}`, { headers: { Authorization: headers.Authorization } }),
  };
}

export function office(sim: OpenCrvsSimulator, name = 'Ibombo District Office'): SimLocation {
  const found = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE' && l.name === name);
  assert.ok(found, `no office ${name}`);
  return found;
}

export function byExternalId(sim: OpenCrvsSimulator, externalId: string): SimLocation {
  const found = sim.locations.find((l) => l.externalId === externalId);
  assert.ok(found, `no location ${externalId}`);
  return found;
}

/** Problems of a 400 whose message is a JSON-encoded list. */
export function problems(result: HttpResult): Array<{ message: string; id: string; value: unknown }> {
  assert.equal(result.status, 400, result.text);
  return JSON.parse(result.json.message);
}
