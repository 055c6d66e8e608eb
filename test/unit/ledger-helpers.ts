// Shared by the ledger/delivery unit tests: a fresh SQLite file in its own temp dir per test.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  hashPayload,
  type Ledger,
  type LedgerPayload,
  openLedger,
  type RecordEventInput,
  type Settlement,
} from '../../src/ledger/index.js';

export interface TestClock {
  now: () => number;
  advance: (ms: number) => void;
  set: (ms: number) => void;
}

export function testClock(start = 1_700_000_000_000): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), set: (ms) => (t = ms) };
}

export function tempLedger(
  clock?: TestClock,
  retentionHours = 168,
): { ledger: Ledger; path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-test-'));
  const path = join(dir, 'bridge.db');
  const ledger = openLedger(path, { now: clock?.now, payloadRetentionHours: retentionHours });
  return {
    ledger,
    path,
    cleanup: () => {
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const OFFICE = '028d2c85-ca31-426d-b5d1-2cef545a4902';

export function payload(firstname = 'Test', extra: Record<string, unknown> = {}): LedgerPayload {
  return {
    declaration: { 'child.name': { firstname, surname: 'Child' }, 'child.dob': '2026-01-02', ...extra },
    office: OFFICE,
  };
}

export function eventInput(subject: string, p: LedgerPayload = payload(), version = '1'): RecordEventInput {
  return {
    sourceId: 'emr',
    eventType: 'birth',
    subjectKey: `Patient/${subject}`,
    sourceRef: `Encounter/${subject}`,
    sourceVersion: version,
    mappingId: 'birth.fhir',
    payloadHash: hashPayload(p),
    payload: p,
  };
}

/**
 * Claims row `id` alone and ends its NOTIFY attempt with `settlement`, as the worker would. With `created`,
 * the OpenCRVS event was created first (the NOTIFY failing after a create); `step: 'createAndNotify'` is
 * the single call of OpenCRVS v1.9, which leaves no event id behind when its answer is lost.
 */
export function settleRow(
  ledger: Ledger,
  id: number,
  settlement: Settlement,
  options: {
    now?: number;
    created?: { eventId: string; trackingId: string };
    step?: 'notify' | 'createAndNotify';
  } = {},
): void {
  const claimed = ledger.claimRow(id, 'w-test', options.now);
  assert.ok(claimed, `row ${id} can be claimed`);
  if (options.created) ledger.recordCreated(id, options.created.eventId, options.created.trackingId);
  ledger.settle({
    id,
    workerId: 'w-test',
    claimedPayloadHash: claimed.payloadHash,
    step: options.step ?? 'notify',
    startedAt: options.now ?? 0,
    settlement,
  });
}
