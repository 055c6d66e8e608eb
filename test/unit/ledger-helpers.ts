// Shared by the ledger/delivery unit tests: a fresh SQLite file in its own temp dir per test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  hashPayload,
  type Ledger,
  type LedgerPayload,
  openLedger,
  type RecordEventInput,
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
