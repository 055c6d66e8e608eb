// A FHIR server that takes as long as the page it is asked for (the sandbox, slowed per `_count`).
//
// Before a page's births are mapped, their context (encounters, observations, the mother's RelatedPerson)
// is asked in batched searches of up to 50 records (`Observation?subject=a,b,…&_count=500`). An EMR that
// cannot answer those within sources[].timeoutMs must be asked smaller batches, and the size it answered
// kept for the next pages and passes, rather than every page waiting out the timeout (three times) and
// then asking each record's searches one by one.
//
// The same holds for reads asked together (`Patient?_id=a,b,…&_count=50`): asked once, then smaller, and
// the size kept, rather than every page waiting out the timeout three times before reading one by one.
//
// One record whose context searches the server never answers in time (a patient with a huge history)
// must not stall the source: after a few passes minutes apart it is kept dead, replayable, and the births
// behind it go on. Passes close together (a busy moment of the EMR) are not enough.
//
// A poll page it cannot answer in time fails the pass: the error must name the settings to change.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { Bridge } from '../../src/app.js';
import { silentLogger } from '../../src/observability/logger.js';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { startFhirSandboxWith } from '../../src/sandbox/fhir/index.js';
import { CachingFetcher } from '../../src/sources/fhir/fetcher.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { SLOW_RECORD_STRIKE_GAP_MS } from '../../src/sources/pipeline.js';
import { eventsBySubject, sleep, startHarness } from './helpers/bridge-harness.js';
import { movableClocks } from './helpers/clocks.js';
import { sourceSettings } from './helpers/source-settings.js';

const TIMEOUT_MS = 1200;
/**
 * sources[].retry where a test waits out the timeout on purpose, pass after pass: a second try (one more
 * timeout) at once, not the default's third and its 0.5 s + 1 s of backoff. The tries within a call are the
 * client's business (fhir-source-retries.test.ts); what these prove is what the passes make of a call that
 * failed through all of them. Two, not one: an ordinary search of the pass that a loaded machine holds up
 * past the timeout once is still answered.
 */
const RETRY = { attempts: 2, baseDelayMs: 10 };
/** The server's time per resource asked for: `_count=500` and 100 time out (up to 3 × TIMEOUT_MS), 20 takes 0.4 s. */
const MS_PER_RESOURCE = 20;

interface Asked {
  /** The search less its record references and `_count`: the same for each batch of one search. */
  search: string;
  /** The record references the search names (one unless batched). */
  records: number;
  count: number | undefined;
}

/** A context search's reference parameter: the one whose value names Patients. */
function recordsNamed(query: URLSearchParams): number {
  for (const [name, value] of query) if (name !== '_id' && value.startsWith('Patient/')) return value.split(',').length;
  return 0;
}

function searchOf(type: string, query: URLSearchParams): string {
  const fixed = [...query].filter(([name]) => name !== '_count');
  return `${type}?${fixed.map(([name, value]) => `${name}=${value.startsWith('Patient/') ? '…' : value}`).join('&')}`;
}

describe('FHIR source: a slow server', () => {
  it('asks smaller batches when the large one times out, and keeps that size for the next passes', {
    timeout: 120_000,
  }, async () => {
    let asked: Asked[] = [];
    const h = await startHarness({
      poll: { pageSize: 10 },
      source: { timeoutMs: TIMEOUT_MS },
      fhirPaging: {
        beforeSearch: async (type, query) => {
          const count = query.has('_count') ? Number(query.get('_count')) : undefined;
          const records = recordsNamed(query);
          if (records > 0) asked.push({ search: searchOf(type, query), records, count });
          // Reads by `_id` are not what is under test; the poll's own pages (10) are answered in time.
          if (count !== undefined && !query.has('_id')) await sleep(Math.min(count * MS_PER_RESOURCE, 3 * TIMEOUT_MS));
        },
      },
    });
    try {
      await h.writeBirths(0, 8);
      const first = await h.bridge.syncOnce(undefined, { timeoutMs: 90_000 });
      const inFirst = asked;
      asked = [];
      await h.writeBirths(8, 4);
      const second = await h.bridge.syncOnce(undefined, { timeoutMs: 90_000 });
      const inSecond = asked;
      const status = h.bridge.sourceStatuses()[0];
      assert.deepEqual([first.failedSources, second.failedSources], [[], []], `last error: ${status?.lastError}`);
      await h.waitFor('12 births delivered', () => h.rows().filter((r) => r.state === 'delivered').length === 12);

      const batched = (list: Asked[], count: number) => list.filter((a) => a.records > 1 && a.count === count);
      const largest = batched(inFirst, 500);
      const searches = new Set(largest.map((a) => a.search)).size;
      assert.ok(largest.length > 0, 'the first pass asks the largest batch first');
      // Each batched search times out once at 500 (not retried), and once or a few times at 100 (chunks of 10
      // asked side by side): then every page of the pass asks batches of two.
      assert.equal(largest.length, searches, '_count=500 asked once per search');
      assert.ok(batched(inFirst, 100).length <= searches * 2, `_count=100: ${batched(inFirst, 100).length} searches`);
      assert.ok(batched(inFirst, 20).length > 0, 'the batches of two are asked');
      // The next pass asks batches of two at once: no search waits out the timeout again.
      assert.deepEqual(
        inSecond.filter((a) => a.records > 1 && (a.count ?? 0) > 20),
        [],
        'no larger batch in the next pass',
      );
      assert.ok(batched(inSecond, 20).length > 0);
      // Batches of two answer nearly every record's search: one record's own searches are the odd ones out.
      const single = inFirst.filter((a) => a.records === 1).length;
      assert.ok(single < batched(inFirst, 20).length, `${single} searches for one record`);
    } finally {
      await h.close();
    }
  });

  it('asks reads by _id smaller when 50 at once time out, and keeps that size for the next passes', {
    timeout: 60_000,
  }, async () => {
    // 50 ids take 3 s, 10 take 0.6 s: only the largest batch times out.
    const msPerId = 60;
    let asked: number[] = [];
    const seed = Array.from({ length: 30 }, (_, i) => generateBirth(i)).flat();
    const sandbox = await startFhirSandboxWith(
      { port: 0, seed, logger: silentLogger },
      {
        beforeSearch: async (_type, query) => {
          const ids = query.get('_id')?.split(',').length;
          if (ids === undefined) return;
          asked.push(ids);
          await sleep(Math.min(ids * msPerId, 3 * TIMEOUT_MS));
        },
      },
    );
    const client = new FhirSourceClient(
      sourceSettings(sandbox.baseUrl, { timeoutMs: TIMEOUT_MS, mappings: ['birth.fhir'] }),
      { logger: silentLogger },
    );
    // The 60 Patients of 30 births (child and mother), read side by side as the mapping lanes do.
    const ids = seed.filter((r) => r.resourceType === 'Patient').map((r) => r.id ?? '');
    const readAll = async () => {
      const fetcher = new CachingFetcher(client);
      const found = await Promise.all(ids.map((id) => fetcher.read('Patient', id)));
      assert.deepEqual(
        found.map((r) => r?.id),
        ids,
      );
      return fetcher.reads;
    };
    try {
      assert.equal(ids.length, 60);
      const firstReads = await readAll();
      const inFirst = asked;
      asked = [];
      const secondReads = await readAll();
      // The 50 timed out once (not three times) and were asked again 10 at a time, beside the other 10.
      assert.deepEqual(
        inFirst.sort((a, b) => b - a),
        [50, 10, 10, 10, 10, 10, 10],
      );
      assert.equal(firstReads, inFirst.length, 'no id read on its own');
      // The next pass asks 10 at once: nothing waits out the timeout again.
      assert.deepEqual(asked, [10, 10, 10, 10, 10, 10]);
      assert.equal(secondReads, 6);
    } finally {
      client.close();
      await sandbox.close();
    }
  });

  it('keeps a record whose context searches always time out dead after three passes minutes apart; the births behind it go on', {
    timeout: 180_000,
  }, async () => {
    const slowRef = 'Patient/e2e-birth-3-child';
    // The clocks the pipeline spaces a record's strikes by, put forward between passes rather than waited
    // out: only the intervals matter to it.
    const clocks = movableClocks();
    let slow = true;
    let slowSearches = 0;
    const h = await startHarness({
      poll: { pageSize: 10 },
      source: { timeoutMs: TIMEOUT_MS, retry: RETRY },
      fhirPaging: {
        beforeSearch: async (_type, query) => {
          // Its context searches, batched or its own; not its read by _id (the patient itself is small).
          const names = [...query].some(([name, value]) => name !== '_id' && value.split(',').includes(slowRef));
          if (slow && names) {
            slowSearches++;
            await sleep(3 * TIMEOUT_MS);
          }
        },
      },
    });
    try {
      await h.writeBirths(0, 10);
      const passes: string[][] = [];
      const sync = async () => passes.push((await h.bridge.syncOnce(undefined, { timeoutMs: 90_000 })).failedSources);
      await sync();
      clocks.advance(SLOW_RECORD_STRIKE_GAP_MS);
      await sync();
      // A pass at once after the second: too soon to count.
      await sync();
      clocks.advance(SLOW_RECORD_STRIKE_GAP_MS);
      await sync();
      assert.ok(slowSearches > 0, 'its searches were slowed');
      // Three passes fail at its page (nothing behind it recorded); the fourth keeps it dead and goes on.
      assert.deepEqual(passes, [['emr'], ['emr'], ['emr'], []]);
      await h.waitFor('9 births delivered', () => h.rows().filter((r) => r.state === 'delivered').length === 9);
      // Dead for each mapping of its type: whether it is a death could not be read either.
      const deadRows = h.rows().filter((r) => r.subjectKey === slowRef);
      assert.deepEqual(deadRows.map((r) => [r.eventType, r.state]).sort(), [
        ['birth', 'dead'],
        ['death', 'dead'],
      ]);
      const dead = deadRows.find((r) => r.eventType === 'birth');
      assert.equal(dead?.state, 'dead');
      assert.equal(dead.lastError?.kind, 'source-read');
      assert.match(
        dead.lastError?.message ?? '',
        /could not be read: search \w+ failed: timeout: no answer within 1200 ms \(raise sources\[\]\.timeoutMs of source emr\); no answer in time in 3 reads at least 5 minutes apart while the source answered the other records, so only this record waits: replay it once the source answers \w+ search in time$/,
      );
      assert.doesNotMatch(dead.lastError?.message ?? '', /e2e-birth/, 'no record named in the reason');
      // Births written after it are read too: the watermark moved past it.
      await h.writeBirths(10, 2);
      assert.deepEqual((await h.bridge.syncOnce(undefined, { timeoutMs: 90_000 })).failedSources, []);
      await h.waitFor('11 births delivered', () => h.rows().filter((r) => r.state === 'delivered').length === 11);

      // The server answers it again: a replay delivers it, once.
      slow = false;
      const replayed = await h.bridge.replay([dead.id]);
      assert.deepEqual(replayed.requeued, [dead.id]);
      await h.waitFor('12 births delivered', () => h.rows().filter((r) => r.state === 'delivered').length === 12);
      const events = await h.events();
      assert.equal(events.length, 12);
      for (const event of events)
        assert.equal(event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted').length, 1);
      assert.ok((await eventsBySubject(h)).has(slowRef));
      // Read whole, it is no death: that row is withdrawn, never sent.
      const death = h.rows().find((r) => r.subjectKey === slowRef && r.eventType === 'death');
      assert.equal(death?.state, 'skipped');
      assert.match(death.skipReason ?? '', /^no longer notifiable: no death evidence/);
    } finally {
      await h.close();
      mock.restoreAll();
    }
  });

  it('counts its strikes across `sync --once` runs, each a new bridge on the ledger: kept dead at the third, replayable', {
    timeout: 180_000,
  }, async () => {
    // `sync --once` from cron is a new process every pass (as a bridge in a crash loop, or restarted by a
    // rolling update): strikes counted in memory alone never reached three, and the record stalled the
    // source for good. Each pass here is a bridge of its own on the same ledger file, as the command builds
    // it; only the ledger carries what the passes before it counted.
    const slowRef = 'Patient/e2e-birth-3-child';
    const clocks = movableClocks();
    let slow = true;
    const h = await startHarness({
      poll: { pageSize: 10 },
      source: { timeoutMs: TIMEOUT_MS, retry: RETRY },
      worker: false,
      fhirPaging: {
        beforeSearch: async (_type, query) => {
          const names = [...query].some(([name, value]) => name !== '_id' && value.split(',').includes(slowRef));
          if (slow && names) await sleep(3 * TIMEOUT_MS);
        },
      },
    });
    const inNewBridge = async <T>(run: (bridge: Bridge) => Promise<T>): Promise<T> => {
      const bridge = new Bridge(h.config, {
        logger: silentLogger,
        http: false,
        schedule: false,
        worker: false,
        lease: 'sync',
      });
      try {
        return await run(bridge);
      } finally {
        await bridge.stop();
      }
    };
    const syncOnce = () => inNewBridge((bridge) => bridge.syncOnce(undefined, { timeoutMs: 90_000 }));
    try {
      await h.writeBirths(0, 10);
      const passes: string[][] = [];
      passes.push((await syncOnce()).failedSources);
      clocks.advance(SLOW_RECORD_STRIKE_GAP_MS);
      passes.push((await syncOnce()).failedSources);
      // A pass at once after the second, in a process of its own too: too soon to count.
      passes.push((await syncOnce()).failedSources);
      clocks.advance(SLOW_RECORD_STRIKE_GAP_MS);
      const last = await syncOnce();
      passes.push(last.failedSources);
      assert.deepEqual(passes, [['emr'], ['emr'], ['emr'], []], 'three passes fail at its page; the fourth goes on');
      assert.equal(h.rows().filter((r) => r.state === 'delivered').length, 9, 'the births behind it delivered');
      const dead = h.rows().find((r) => r.subjectKey === slowRef && r.eventType === 'birth');
      assert.equal(dead?.state, 'dead');
      assert.equal(dead.lastError?.kind, 'source-read');
      assert.match(dead.lastError?.message ?? '', /no answer in time in 3 reads at least 5 minutes apart/);

      // The server answers it again: a replay, then the next pass, deliver it once.
      slow = false;
      const replayed = await inNewBridge((bridge) => bridge.replay([dead.id]));
      assert.deepEqual(replayed.requeued, [dead.id]);
      assert.deepEqual((await syncOnce()).failedSources, []);
      assert.equal(h.rows().find((r) => r.id === dead.id)?.state, 'delivered');
      const events = await h.events();
      assert.equal(events.length, 10);
      for (const event of events)
        assert.equal(event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted').length, 1);
    } finally {
      await h.close();
      mock.restoreAll();
    }
  });

  it('names the settings to change when a poll page times out, asked as often as sources[].retry says', {
    timeout: 60_000,
  }, async () => {
    let pageAsked = 0;
    const h = await startHarness({
      poll: { pageSize: 10 },
      source: { timeoutMs: TIMEOUT_MS, retry: RETRY },
      fhirPaging: {
        beforeSearch: async (type, query) => {
          if (type === 'Patient' && query.has('_sort')) {
            pageAsked++;
            await sleep(3 * TIMEOUT_MS);
          }
        },
      },
    });
    try {
      await h.writeBirths(0, 1);
      const pass = await h.bridge.syncOnce(undefined, { timeoutMs: 30_000 });
      assert.deepEqual(pass.failedSources, ['emr']);
      assert.equal(pageAsked, RETRY.attempts, 'the page tried sources[].retry.attempts times, not the default 3');
      assert.equal(
        h.bridge.sourceStatuses()[0]?.lastError,
        `search Patient failed: timeout: no answer within ${TIMEOUT_MS} ms (raise sources[].timeoutMs or lower sources[].poll.pageSize of source emr)`,
      );
    } finally {
      await h.close();
    }
  });
});
