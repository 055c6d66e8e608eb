// Shared by the delivery integration tests: the real OpenCRVS client against the real simulator over
// HTTP, a fresh SQLite ledger per test, and the exactly-once check read from the simulator itself.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliverySettings, OpenCrvsSettings } from '../../src/config/types.js';
import type { DeliveryWorker } from '../../src/delivery/index.js';
import {
  hashPayload,
  type Ledger,
  type LedgerPayload,
  openLedger,
  type RecordEventInput,
} from '../../src/ledger/index.js';
import { type OpenCrvsSimulator, type SimVersion, startOpenCrvsSimulator } from '../../src/sandbox/opencrvs/index.js';

/** Short delays so retries, holds and stale locks play out in seconds; budgets large enough to never die. */
export const fastDelivery: DeliverySettings = {
  mode: 'two-step',
  concurrency: 4,
  settleSeconds: 0,
  recheckAfterSeconds: 30,
  maxAttempts: 200,
  maxAgeHours: 1,
  baseDelayMs: 20,
  maxDelayMs: 200,
  pollIntervalMs: 20,
  lockTimeoutSeconds: 1,
  holdProbeSeconds: 1,
  // Outages held only where a test asks (delivery-hold.test.ts): these tests count retries.
  outageHoldSeconds: 3600,
};

export function clientSettings(sim: OpenCrvsSimulator, overrides: Partial<OpenCrvsSettings> = {}): OpenCrvsSettings {
  return {
    tokenUrl: sim.tokenUrl,
    eventsUrl: sim.eventsUrl,
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    version: sim.version,
    country: 'farajaland',
    timeoutMs: 2000,
    tokenRenewBeforeSeconds: 0,
    ...overrides,
  };
}

export function officeOf(sim: OpenCrvsSimulator): string {
  const office = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE');
  assert.ok(office, 'the simulator seeds CRVS offices');
  return office.id;
}

/** A second office of the simulator, other than `office`: where births go while `office` is closed or gone. */
export function otherOffice(sim: OpenCrvsSimulator, office: string): string {
  const other = sim.locations.find((l) => l.locationType === 'CRVS_OFFICE' && l.id !== office);
  assert.ok(other, 'the simulator seeds two offices');
  return other.id;
}

export function birthPayload(office: string, i: number, extra: Record<string, unknown> = {}): LedgerPayload {
  return {
    office,
    declaration: {
      'child.name': { firstname: `Test${i}`, surname: 'Child' },
      'child.dob': '2026-01-02',
      'child.gender': i % 2 ? 'female' : 'male',
      ...extra,
    },
  };
}

export function birthEvent(office: string, i: number, extra: Record<string, unknown> = {}): RecordEventInput {
  const payload = birthPayload(office, i, extra);
  return {
    sourceId: 'emr',
    eventType: 'birth',
    subjectKey: `Patient/${i}`,
    sourceRef: `Encounter/${i}`,
    sourceVersion: '1',
    mappingId: 'birth.fhir',
    payloadHash: hashPayload(payload),
    payload,
  };
}

export interface TestBed {
  sim: OpenCrvsSimulator;
  ledger: Ledger;
  dir: string;
  dbPath: string;
  office: string;
  close(): Promise<void>;
}

export async function testBed(options: { tokenTtlSeconds?: number; version?: SimVersion } = {}): Promise<TestBed> {
  const sim = await startOpenCrvsSimulator({
    port: 0,
    tokenTtlSeconds: options.tokenTtlSeconds,
    ...(options.version ? { version: options.version } : {}),
  });
  const dir = mkdtempSync(join(tmpdir(), 'delivery-it-'));
  const dbPath = join(dir, 'bridge.db');
  const ledger = openLedger(dbPath);
  return {
    sim,
    ledger,
    dir,
    dbPath,
    office: officeOf(sim),
    async close() {
      ledger.close();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Exactly once, read from OpenCRVS's side: one event per ledger row (found by the row's create
 * transactionId), each with exactly one accepted NOTIFY, and no stray events.
 */
export async function assertExactlyOnce(sim: OpenCrvsSimulator, ledger: Ledger, expected: number): Promise<void> {
  const events = await sim.control.events();
  assert.equal(events.length, expected, 'one OpenCRVS event per source event');
  const byCreate = new Map<string, (typeof events)[number]>();
  for (const event of events) {
    const create = event.actions.find((a) => a.type === 'CREATE');
    assert.ok(create, `event ${event.id} has a CREATE action`);
    assert.ok(!byCreate.has(create.transactionId), 'no two events share a create transactionId');
    byCreate.set(create.transactionId, event);
    const accepted = event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted');
    assert.equal(accepted.length, 1, `event ${event.id} has exactly one accepted NOTIFY`);
  }
  const rows = ledger.list({ limit: expected + 10 });
  assert.equal(rows.length, expected);
  for (const row of rows) {
    assert.equal(row.state, 'delivered', `row ${row.id} is delivered (last error: ${row.lastError?.message ?? '-'})`);
    const event = byCreate.get(row.createTransactionId);
    assert.ok(event, `row ${row.id} has its OpenCRVS event`);
    assert.equal(row.eventId, event.id);
    assert.equal(row.trackingId, event.trackingId);
  }
}

/** Drives the worker until `done()` or the deadline; probes run on their own (holdProbeSeconds = 1). */
export async function until(worker: DeliveryWorker, done: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    if ((await worker.processNext()) === 0) await new Promise((r) => setTimeout(r, 20));
  }
}
