// One record DHIS2 will not serve (the mother of one child: 403, as DHIS2 answers for a tracked entity
// outside the user's search scope, a mother registered in another district; or a 500 it keeps giving for
// one corrupt record) must fail that child only: kept in the ledger as a dead, replayable row whose reason
// names what could not be read, while the watermark moves on and every later birth is delivered. A
// failure of the source itself (the list call, every read) still fails the pass, the watermark staying.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { CHILD_PROGRAMME } from '../../src/sandbox/dhis2/index.js';
import { SLOW_RECORD_STRIKE_GAP_MS } from '../../src/sources/pipeline.js';
import { movableClocks } from './helpers/clocks.js';
import { BIRTHS_SOURCE, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';
import { dhis2Error, type FaultRule, noAnswer, startFaultProxy } from './helpers/fault-proxy.js';

const READ = '/api/tracker/trackedEntities/';

async function startBehindProxy(source: Record<string, unknown> = {}, births = 6) {
  const proxy = await startFaultProxy();
  const h = await startDhis2Harness({
    births,
    // At least ten on a page when there are ten: a strike needs nine records read beside the slow one.
    pageSize: births >= 10 ? births : 4,
    deaths: 0,
    writeBack: false,
    configure: ({ sources }) => {
      proxy.target = String(sources[0]?.baseUrl);
      // A read the proxy fails is tried 10 ms apart, not 0.5 s then 1 s: what these prove is what a pass
      // makes of a read that failed through its tries.
      sources[0] = { ...sources[0], retry: { baseDelayMs: 10 }, ...source, baseUrl: proxy.url };
    },
  });
  const children = enrolledIn(h.seeded, CHILD_PROGRAMME).sort((a, b) =>
    String(a.updatedAt).localeCompare(String(b.updatedAt)),
  );
  const child = children[0];
  const mother = child?.relationships?.[0]?.to.trackedEntity?.trackedEntity;
  assert.ok(child?.trackedEntity && mother, 'the earliest child has a mother');
  return { proxy, h, children, child: `TrackedEntity/${child.trackedEntity}`, mother };
}

/** DHIS2 refusing reads of one tracked entity. */
function refuse(uid: string, status: number, message: string): FaultRule {
  return (req) =>
    req.method === 'GET' && req.url?.startsWith(`${READ}${uid}`) ? dhis2Error(status, message) : undefined;
}

describe('DHIS2 source: one related record DHIS2 will not serve', () => {
  for (const [status, message] of [
    [403, 'User has no read access to this tracked entity'],
    [500, 'An unexpected error has occurred'],
  ] as const) {
    it(`(HTTP ${status}) fails its child only; the later births are delivered and the row can be replayed`, async () => {
      const { proxy, h, children, child, mother } = await startBehindProxy();
      try {
        proxy.rules.push(refuse(mother, status, message));
        for (let pass = 0; pass < 2; pass++) {
          const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
          assert.deepEqual(summary.failedSources, [], `pass ${pass + 1} reads on`);
        }
        const rows = h.rows();
        assert.equal(rows.filter((r) => r.state === 'delivered').length, children.length - 1);
        const row = rows.find((r) => r.subjectKey === child);
        assert.equal(row?.state, 'dead', 'the child waits, visible, in the ledger');
        assert.equal(row.payload, null);
        assert.equal(row.lastError?.kind, 'source-read');
        const reason = row.lastError?.message ?? '';
        assert.match(reason, new RegExp(`TrackedEntity/${mother}`), 'names the record that could not be read');
        assert.match(reason, /mother/, 'and the context item that needed it');
        assert.match(reason, new RegExp(`HTTP ${status}`));
        assert.doesNotMatch(reason, /credentials/, 'a refused record is no refused credential');
        // The watermark went past the child: a later pass does not read it again (read once per pass above
        // at most, with the client's retries for a 500).
        const status1 = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE);
        assert.equal(status1?.lastError, undefined);

        // Replayed while DHIS2 still refuses the mother: it stays dead, and the answer says why.
        const early = await h.bridge.replay([row.id]);
        assert.deepEqual(early.requeued, []);
        assert.match(early.skipped[0]?.reason ?? '', /^the source still does not serve what the record needs: /);

        // Access granted (or the record repaired): a replay reads it again and it goes out.
        proxy.rules.length = 0;
        const replayed = await h.bridge.replay([row.id]);
        assert.deepEqual(replayed.requeued, [row.id], JSON.stringify(replayed));
        await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
        assert.equal(h.rows().find((r) => r.id === row.id)?.state, 'delivered');
        assert.equal((await h.events()).length, children.length);
      } finally {
        await h.close();
        await proxy.close();
      }
    });
  }

  it('(no answer in time) keeps its child dead after three passes; the births behind it go on', async () => {
    const timeoutMs = 800;
    // Ten births: a strike needs nine records read in full beside the slow one (at most one in ten).
    // Tried twice (sources[].retry), not three times: each try waits out the timeout, pass after pass.
    const retry = { attempts: 2, baseDelayMs: 10 };
    const { proxy, h, children, child, mother } = await startBehindProxy({ timeoutMs, retry }, 10);
    // The clocks the pipeline spaces strikes by, put forward between passes rather than waited out.
    const clocks = movableClocks();
    try {
      // DHIS2 never answers a read of the mother in time (the child's own read, the probe, is answered).
      proxy.rules.push((req) =>
        req.method === 'GET' && req.url?.startsWith(`${READ}${mother}`) ? noAnswer() : undefined,
      );
      const passes = [];
      for (let pass = 0; pass < 3; pass++) {
        if (pass > 0) clocks.advance(SLOW_RECORD_STRIKE_GAP_MS);
        passes.push(await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 }));
      }
      // Two passes fail at the child's page, as for a DHIS2 slow for everything; the third keeps it dead.
      assert.deepEqual(
        passes.map((p) => p.failedSources),
        [[BIRTHS_SOURCE], [BIRTHS_SOURCE], []],
      );
      assert.ok(
        proxy.seen.some((s) => s.url.startsWith(`${READ}${mother}`)),
        "the mother's read was asked",
      );
      const rows = h.rows();
      assert.equal(rows.filter((r) => r.state === 'delivered').length, children.length - 1);
      const row = rows.find((r) => r.subjectKey === child);
      assert.equal(row?.state, 'dead');
      assert.equal(row.lastError?.kind, 'source-read');
      assert.match(
        row.lastError?.message ?? '',
        new RegExp(
          `timeout: no answer within ${timeoutMs} ms .*no answer in time in 3 reads at least 5 minutes apart while the source answered the other records`,
        ),
      );

      // DHIS2 answers it again: a replay delivers it, once.
      proxy.rules.length = 0;
      assert.deepEqual((await h.bridge.replay([row.id])).requeued, [row.id]);
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.equal(h.rows().find((r) => r.id === row.id)?.state, 'delivered');
      assert.equal((await h.events()).length, children.length);
    } finally {
      mock.restoreAll();
      await h.close();
      await proxy.close();
    }
  });

  it('still fails the pass when DHIS2 serves no tracked entity at all (the child read the same way fails too)', async () => {
    const { proxy, h } = await startBehindProxy();
    try {
      proxy.rules.push((req) =>
        req.method === 'GET' && req.url?.startsWith(READ) ? dhis2Error(503, 'Service Unavailable') : undefined,
      );
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      assert.deepEqual(h.rows(), [], 'nothing recorded: the next pass reads the same page again');
      assert.match(h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE)?.lastError ?? '', /HTTP 503/);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('still fails the pass when the list call itself is refused', async () => {
    const { proxy, h } = await startBehindProxy();
    try {
      proxy.rules.push((req) =>
        req.method === 'GET' && req.url?.startsWith('/api/tracker/trackedEntities?')
          ? dhis2Error(403, 'Access denied')
          : undefined,
      );
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      assert.deepEqual(h.rows(), []);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
