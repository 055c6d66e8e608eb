// A source's OAuth2 token endpoint that never answers, behind the fault proxy: what cuts a source call
// off (the bridge stopping, the write-back's deadline) cuts the wait for its token off too, at once, not
// at the end of the source's timeout. Against the FHIR sandbox and the DHIS2 simulator, which the calls
// never reach (no token, no request).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { configFromObject } from '../../src/config/index.js';
import type { SourceSettings } from '../../src/config/types.js';
import { openLedger } from '../../src/ledger/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type Dhis2Simulator, startDhis2Simulator } from '../../src/sandbox/dhis2/index.js';
import { type FhirSandbox, startFhirSandbox } from '../../src/sandbox/fhir/index.js';
import { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import {
  Dhis2WriteBack,
  FhirWriteBack,
  type WriteBackJob,
  WriteBackRunner,
  WriteBackStore,
} from '../../src/sources/writeback/index.js';
import { type FaultProxy, noAnswer, startFaultProxy } from './helpers/fault-proxy.js';

/** Far longer than any test here waits: a wait that runs to it fails the test. */
const TIMEOUT_MS = 60_000;
/**
 * How soon a cut-off call must have ended: a bound on a wait that runs to the timeout, not a measure of
 * speed (a loaded machine took more than the 1.5 s this was), so half the timeout.
 */
const PROMPT_MS = TIMEOUT_MS / 2;

let proxy: FaultProxy;
let fhir: FhirSandbox;
let dhis2: Dhis2Simulator;

before(async () => {
  proxy = await startFaultProxy();
  proxy.rules.push((req) => (req.url === '/token' ? noAnswer() : undefined));
  fhir = await startFhirSandbox({ port: 0, seed: [{ resourceType: 'Patient', id: 'token-1' } as Resource] });
  dhis2 = await startDhis2Simulator({ port: 0 });
});
after(async () => {
  await proxy?.close();
  await fhir?.close();
  await dhis2?.close();
});

function settings(kind: 'fhir' | 'dhis2'): SourceSettings {
  const config = configFromObject({
    opencrvs: { eventsUrl: 'http://127.0.0.1:9/events', accessToken: 'unused' },
    sources: [
      {
        id: kind,
        kind,
        baseUrl: kind === 'fhir' ? fhir.baseUrl : dhis2.baseUrl,
        timeoutMs: TIMEOUT_MS,
        auth: { type: 'oauth2', tokenUrl: `${proxy.url}/token`, clientId: 'bridge', clientSecret: 'client-secret' },
        ...(kind === 'fhir'
          ? { writeBack: {} }
          : { dhis2: { program: 'IpHINAT79UW' }, writeBack: { dataElement: 'uf3svrmp8Oj' } }),
      },
    ],
  });
  const source = config.sources[0];
  assert.ok(source);
  return source;
}

const tokenAsked = () => proxy.seen.filter((seen) => seen.url === '/token').length;

/** Until the token endpoint has been asked once more than `before`. */
async function untilTokenAsked(before: number): Promise<void> {
  for (let waited = 0; tokenAsked() === before; waited += 10) {
    assert.ok(waited < 5000, 'the token endpoint was asked');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The error of `call` (started, waiting for its token) and how long it took to end once `cut` ran. */
async function cutOff(call: Promise<unknown>, cut: () => unknown): Promise<{ ms: number; error: Error }> {
  const settled = call.then(
    () => assert.fail('the call succeeded without a token'),
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  const started = Date.now();
  await cut();
  const error = await settled;
  return { ms: Date.now() - started, error };
}

describe('a hanging OAuth2 token endpoint', () => {
  it('a FHIR source client closing (the bridge stopping) ends the wait for the token at once', async () => {
    const client = new FhirSourceClient(settings('fhir'), { logger: silentLogger, attempts: 1 });
    const asked = tokenAsked();
    const read = client.read('Patient', 'token-1');
    await untilTokenAsked(asked);
    const { ms, error } = await cutOff(read, () => client.close());
    assert.ok(ms < PROMPT_MS, `the read ended ${ms} ms after the close`);
    assert.match(error.message, /the bridge is stopping/);
  });

  it("a DHIS2 write-back ends at once at its caller's deadline, reported as cut off by the bridge", async () => {
    const source = settings('dhis2');
    assert.ok(source.writeBack);
    const client = new Dhis2Client(source, { logger: silentLogger, attempts: 1 });
    const target = new Dhis2WriteBack(client, source.writeBack, 'IpHINAT79UW');
    const deadline = new AbortController();
    const job: WriteBackJob = {
      rowId: 1,
      sourceId: 'dhis2',
      eventType: 'birth',
      subjectKey: 'TrackedEntity/Tk000000001',
      sourceRef: 'Event/Ev000000001',
      trackingId: 'TRKTOKEN01',
      eventId: null,
    };
    const asked = tokenAsked();
    const write = target.write(job, deadline.signal);
    await untilTokenAsked(asked);
    try {
      const { ms, error } = await cutOff(write, () => deadline.abort());
      assert.ok(ms < PROMPT_MS, `the write ended ${ms} ms after its deadline`);
      assert.match(error.message, /cut off by the bridge/);
    } finally {
      client.close();
    }
  });

  it('stopping the write-back runner does not wait for the token, and counts no attempt', async () => {
    const source = settings('fhir');
    assert.ok(source.writeBack);
    const dir = mkdtempSync(join(tmpdir(), 'source-token-stop-'));
    const ledger = openLedger(join(dir, 'bridge.db'));
    const client = new FhirSourceClient(source, { logger: silentLogger, attempts: 1 });
    try {
      const { row } = ledger.recordEvent({
        sourceId: 'fhir',
        eventType: 'birth',
        subjectKey: 'Patient/token-1',
        sourceRef: 'Patient/token-1',
        payloadHash: 'hash-1',
        payload: { declaration: {}, office: 'office' },
      });
      assert.equal(ledger.claimRow(row.id, 'worker')?.id, row.id);
      const settlement = { outcome: 'delivered' as const, eventId: 'ev-1', trackingId: 'TRKTOKEN02' };
      const delivered = ledger.settle({
        id: row.id,
        workerId: 'worker',
        claimedPayloadHash: 'hash-1',
        step: 'notify',
        startedAt: Date.now(),
        settlement,
      });
      assert.ok(delivered);
      const runner = new WriteBackRunner({
        ledger,
        logger: silentLogger,
        sources: [
          { sourceId: 'fhir', settings: source.writeBack, target: new FhirWriteBack(client, source.writeBack) },
        ],
      });
      runner.onOutcome({ type: 'delivered', row: delivered });
      const asked = tokenAsked();
      const drained = runner.drain();
      await untilTokenAsked(asked);
      const started = Date.now();
      await runner.stop();
      const report = await drained;
      const ms = Date.now() - started;
      assert.ok(ms < PROMPT_MS, `the stop took ${ms} ms`);
      assert.equal(report.cutOff, 1);
      const store = new WriteBackStore(ledger.path);
      try {
        assert.equal(store.get(row.id)?.attempts, 0, 'the attempt cut off is not counted');
      } finally {
        store.close();
      }
    } finally {
      client.close();
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
