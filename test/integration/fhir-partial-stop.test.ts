// A recheck or an inbox round (a partial evaluation: reevaluate) stops reading once a failure shows the
// source itself is the problem (here a proxy's page). The reads already under way then end at once, tries
// and all: before, only the reads not yet asked were saved, and each one in flight waited out
// sources[].timeoutMs and the client's every try while the recheck's rows stayed locked. Those records
// are "not read", failed with the proxy's page like the records the evaluation never started: not failed
// with a timeout of their own. Against the FHIR sandbox behind the fault proxy.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type Ledger, openLedger } from '../../src/ledger/index.js';
import { loadMappings, type Resource } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { type FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { reevaluate } from '../../src/sources/fhir/reevaluate.js';
import { SourcePipeline } from '../../src/sources/pipeline.js';
import { sleep } from './helpers/bridge-harness.js';
import { type FaultProxy, forbiddenPage, unavailable } from './helpers/fault-proxy.js';
import { type FhirBehindProxy, startFhirBehindProxy } from './helpers/fhir-proxy.js';

const BIRTHS = 6;
const seed = Array.from({ length: BIRTHS }, (_, i) => generateBirth(i)).flat();
const children = seed.filter((r: Resource) => r.resourceType === 'Patient' && r.id?.endsWith('-child'));
const childRefs = children.map((r) => `Patient/${r.id}`);

describe('FHIR source: a partial evaluation that stops ends the reads under way', () => {
  let setup: FhirBehindProxy;
  let proxy: FaultProxy;
  let client: FhirSourceClient;
  let dir: string;
  let ledger: Ledger;
  let path: string;
  /** The maternity encounter reads left hanging (by birth), and those the client closed unanswered. */
  let held: Map<string, ServerResponse>;
  let closedUnanswered: string[];

  before(async () => {
    // Without the reads under way cut off, each waits timeoutMs out twice (attempts: 2) before it fails.
    setup = await startFhirBehindProxy({ seed, timeoutMs: 2000, client: { attempts: 2, retryBaseMs: 1 } });
    ({ proxy, client, path } = setup);
    dir = mkdtempSync(join(tmpdir(), 'fhir-partial-stop-'));
    ledger = openLedger(join(dir, 'bridge.db'));
  });
  after(async () => {
    await setup?.close();
    ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    proxy.seen.length = 0;
    proxy.rules.length = 0;
    held = new Map();
    closedUnanswered = [];
    // The births' maternity encounters, asked together, leave as one `Encounter?_id=…` search: a gateway's
    // 503 page for it, so that each is read on its own (CachingFetcher.sendReads).
    proxy.rules.push((req) => (req.url?.startsWith(`${path}/Encounter?_id=`) ? unavailable() : undefined));
    // Birth 0's read meets a proxy's 403 page (the source is the problem: the evaluation stops), sent once
    // the other births' reads are all under way; they hang, never answered.
    proxy.rules.push((req) => {
      const birth = maternityRead(req);
      if (birth === undefined) return undefined;
      if (birth === '0') return (res) => whenAllHeld(() => forbiddenPage()(res));
      return (res: ServerResponse) => {
        held.set(birth, res);
        res.on('close', () => {
          if (!res.writableEnded) closedUnanswered.push(birth);
        });
        for (const waiting of waitingForHeld.splice(0)) waiting();
      };
    });
  });

  /** The birth whose maternity encounter `req` reads alone (`Encounter/demo-birth-<n>-maternity`). */
  const maternityRead = (req: IncomingMessage): string | undefined =>
    req.url?.match(new RegExp(`^${path}/Encounter/demo-birth-(\\d+)-maternity$`))?.[1];
  const waitingForHeld: Array<() => void> = [];
  const whenAllHeld = (then: () => void) => {
    const check = () => (held.size === BIRTHS - 1 ? then() : waitingForHeld.push(check));
    check();
  };

  function pipeline(): SourcePipeline {
    return new SourcePipeline({
      sourceId: 'emr',
      mappings: loadMappings({ names: ['birth.fhir'], routing: { defaultOffice: 'office-1', facilities: {} } }),
      ledger,
      logger: silentLogger,
      mapOptions: () => ({ resolveLocation: (ref) => ref }),
      probe: async (subjectRef) => {
        const [type, id] = subjectRef?.split('/') ?? [];
        if (type && id) await client.read(type, id);
      },
    });
  }

  /** Requests the proxy saw for each held birth's maternity encounter. */
  const askedPerHeld = () =>
    [...held.keys()].map(
      (birth) => proxy.seen.filter((s) => s.url === `${path}/Encounter/demo-birth-${birth}-maternity`).length,
    );

  it('a recheck cut off by a proxy page ends the reads in flight at once: each asked once, closed unanswered', async () => {
    const err = await reevaluate({ client, pipeline: pipeline() }, childRefs).then(
      () => assert.fail('the recheck succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FhirSourceError, String(err));
    assert.equal(err.foreign, true, err.message);
    assert.match(err.message, /HTTP 403 \(not a FHIR answer/);
    assert.equal(held.size, BIRTHS - 1, 'the other births were under way when it stopped');
    // Ended by the bridge, not by their timeout: none tried again, and none answered.
    assert.deepEqual(askedPerHeld(), Array(BIRTHS - 1).fill(1), 'each held read asked once');
    // The proxy hears of a closed connection a moment after the client closed it.
    for (let waited = 0; closedUnanswered.length < held.size && waited < 5000; waited += 20) await sleep(20);
    assert.deepEqual(closedUnanswered.sort(), [...held.keys()].sort(), 'each closed by the bridge, unanswered');
  });

  it('the records whose reads were cut off fail with the page that stopped it, not with a timeout of their own', async () => {
    const stop = new AbortController();
    const source = pipeline();
    const fetcher = source.reading(new CachingFetcher(client, { signal: stop.signal }));
    try {
      const { results, failures } = await source.evaluate(children, fetcher, undefined, { partial: true, stop });
      assert.deepEqual(results, []);
      assert.deepEqual(
        failures?.map((f) => f.subjectRef),
        childRefs,
      );
      for (const { error } of failures ?? []) {
        assert.ok(error instanceof FhirSourceError, String(error));
        assert.equal(error.foreign, true, error.message);
        assert.equal(error.timedOut, false);
      }
      assert.equal(stop.signal.aborted, true);
      assert.deepEqual(askedPerHeld(), Array(BIRTHS - 1).fill(1), 'each held read asked once');
    } finally {
      await source.finished(fetcher);
    }
  });
});
