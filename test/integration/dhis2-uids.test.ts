// A DHIS2 uid goes into a credentialed URL (`/api/tracker/trackedEntities/<uid>`), taken from DHIS2's answers
// (a listed tracked entity, the mother at a relationship's end) or from the ledger (the recheck). Encoded,
// `..` stays `..`, and a URL resolves it to the path above: a call the bridge never meant, with its
// credentials. The client refuses anything that is not a DHIS2 uid before any request; the poller keeps a
// listed entity with such a uid as a dead row, asks nothing for it, and reads on; the recheck holds such a
// row dead and rechecks the rest.
// Against the DHIS2 simulator behind the fault proxy, which records every request.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { LedgerRow } from '../../src/ledger/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { CHILD_PROGRAMME } from '../../src/sandbox/dhis2/index.js';
import { type Dhis2Client, Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { sleep } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, enrolledIn } from './helpers/dhis2-harness.js';
import { type Dhis2BehindProxy, startDhis2BehindProxy, startDhis2HarnessBehindProxy } from './helpers/dhis2-proxy.js';
import type { FaultProxy, FaultRule } from './helpers/fault-proxy.js';

/** Not DHIS2 uids: `..` and `.` above all; then what the FHIR id rule lets through and DHIS2's does not. */
const NOT_UIDS = ['..', '.', '', 'a.b-1234567', 'Tk0000000001', 'Tk00000001', '1abcdefghij', 'ab/cdefghij', '..%2Fapi'];

/** Every path the bridge may ask of DHIS2 here: the list, system/info, one tracked entity by a real uid. */
const ASKED = /^\/api\/(system\/info|tracker\/trackedEntities(\?|\/[A-Za-z][A-Za-z0-9]{10}(\?|$)))/;

function refusedUnasked(err: unknown): boolean {
  assert.ok(err instanceof Dhis2SourceError, String(err));
  assert.equal(err.retryable, false, 'asking again changes nothing');
  assert.equal(err.badId, true, 'it concerns that record, not the source');
  assert.match(err.message, /not a DHIS2 uid .*nothing was asked of DHIS2/);
  return true;
}

describe('DHIS2 client: an id that is not a DHIS2 uid', () => {
  let dhis2: Dhis2BehindProxy;
  let proxy: FaultProxy;
  let client: Dhis2Client;

  before(async () => {
    dhis2 = await startDhis2BehindProxy({ client: { attempts: 1 } });
    ({ proxy, client } = dhis2);
  });
  after(async () => {
    await dhis2?.close();
  });
  beforeEach(() => {
    proxy.seen.length = 0;
  });

  it('asks DHIS2 for a real uid (the proxy sees it)', async () => {
    assert.equal(await client.trackedEntity('TeAbsent001'), undefined, "DHIS2's own 404");
    assert.deepEqual(
      proxy.seen.map((s) => s.url),
      ['/api/tracker/trackedEntities/TeAbsent001'],
    );
  });

  it('refuses `..` and every other non-uid in each call that takes one, before any request', async () => {
    for (const uid of NOT_UIDS) {
      const what = JSON.stringify(uid);
      await assert.rejects(client.trackedEntity(uid, { program: CHILD_PROGRAMME }), refusedUnasked, what);
      await assert.rejects(client.event(uid), refusedUnasked, what);
      await assert.rejects(client.trackedEntityListing(uid, CHILD_PROGRAMME), refusedUnasked, what);
      await assert.rejects(client.metadata('programs', uid), refusedUnasked, what);
    }
    assert.deepEqual(proxy.seen, [], 'no request reached DHIS2');
  });
});

/** The tracked entities of a list answer (2.41+ `trackedEntities`, 2.40 `instances`). */
type Listed = Array<{ trackedEntity: string; relationships?: Array<Record<string, unknown>> }>;

/** The list of tracked entities as DHIS2 answers it, changed by `edit` on the way to the bridge. */
function rewriteList(proxy: FaultProxy, edit: (entities: Listed) => void): FaultRule {
  return (req) => {
    if (req.method !== 'GET' || !req.url?.startsWith('/api/tracker/trackedEntities?')) return undefined;
    const url = new URL(req.url, proxy.target);
    return (res) => {
      void fetch(url, {
        headers: { accept: 'application/json', authorization: String(req.headers.authorization) },
        signal: AbortSignal.timeout(10_000),
      })
        .then(async (upstream) => {
          const page = (await upstream.json()) as { trackedEntities?: Listed; instances?: Listed };
          edit(page.trackedEntities ?? page.instances ?? []);
          res.writeHead(upstream.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(page));
        })
        .catch(() => res.writeHead(502).end());
    };
  };
}

async function birthsBehindProxy(options: { recheck?: boolean; mappings?: string[] } = {}) {
  const warnings: string[] = [];
  const logger = createLogger({
    level: 'warn',
    destination: { write: (line: string) => warnings.push(String(JSON.parse(line).msg)) },
  });
  const { proxy, h } = await startDhis2HarnessBehindProxy({
    births: 4,
    deaths: 0,
    writeBack: false,
    logger,
    ...(options.recheck ? { delivery: { settleSeconds: 1, recheckAfterSeconds: 1 } } : {}),
    ...(options.mappings ? { birthsSource: { mappings: options.mappings } } : {}),
  });
  const children = enrolledIn(h.seeded, CHILD_PROGRAMME)
    .map((te) => String(te.trackedEntity))
    .sort();
  return { proxy, h, children, warnings };
}

function unexpectedCalls(proxy: FaultProxy): string[] {
  return proxy.seen.map((s) => s.url).filter((url) => !ASKED.test(url));
}

describe('DHIS2 source: a uid that is not a DHIS2 uid in what DHIS2 answers', () => {
  it('a listed tracked entity with one is kept as a dead row naming the uid, asked for nothing; the pass reads on', async () => {
    // Both mappings: the listed record alone tells that the child is a birth (no dead death row for it).
    const { proxy, h, children, warnings } = await birthsBehindProxy({ mappings: ['birth.dhis2', 'death.dhis2'] });
    try {
      const [renamed, long, lone, ...others] = children;
      assert.ok(renamed && long && lone);
      // Anything may come: a terminal escape, far too long for a key; a lone surrogate (JSON "\ud800").
      const longUid = `\u001b[31m${'x'.repeat(300)}`;
      proxy.rules.push(
        rewriteList(proxy, (entities) => {
          for (const te of entities) if (te.trackedEntity === renamed) te.trackedEntity = '..';
          for (const te of entities) if (te.trackedEntity === long) te.trackedEntity = longUid;
          for (const te of entities) if (te.trackedEntity === lone) te.trackedEntity = 'ab\ud800cd';
        }),
      );
      for (let pass = 0; pass < 2; pass++) {
        const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
        assert.deepEqual(summary.failedSources, [], `pass ${pass + 1} is not stalled`);
      }
      const rows = h.rows();
      const [cut] = rows.filter((r) => r.subjectKey.startsWith('TrackedEntity/%1B%5B31mxxx'));
      assert.equal(cut?.state, 'dead');
      assert.ok(cut.subjectKey.length < 80 && !cut.subjectKey.includes('\u001b'), cut.subjectKey);
      const [surrogate] = rows.filter((r) => r.subjectKey.startsWith('TrackedEntity/ab%EF%BF%BDcd'));
      assert.equal(surrogate?.state, 'dead', 'a lone surrogate is a stray as any other, not a failed page');
      const strays = rows.filter((r) => r.subjectKey === 'TrackedEntity/..');
      assert.deepEqual(
        strays.map((r) => [r.eventType, r.state, r.lastError?.classification, r.lastError?.kind]),
        [['birth', 'dead', 'permanent', 'source-read']],
        'one dead birth row, kept across passes',
      );
      const [stray] = strays;
      assert.match(stray?.lastError?.message ?? '', /the uid "\.\.", which is not a DHIS2 uid/);
      assert.equal(stray?.payload, null, 'nothing of the record is kept');
      const first = h.seeded.find((te) => te.trackedEntity === renamed)?.attributes?.[0]?.value;
      assert.ok(first && !(stray?.lastError?.message ?? '').includes(first), 'no personal data in the reason');
      const delivered = rows.filter((r) => r !== stray && r !== cut && r !== surrogate);
      assert.deepEqual(delivered.map((r) => r.subjectKey).sort(), others.map((uid) => `TrackedEntity/${uid}`).sort());
      assert.ok(delivered.every((r) => r.state === 'delivered'));
      assert.deepEqual(
        h.bridge.ledger.list({ find: 'TrackedEntity/..' }).map((r) => r.id),
        [stray?.id],
        '`ledger --find TrackedEntity/..` finds it',
      );
      assert.ok(
        warnings.some((msg) => /tracked entities held uids that are not DHIS2 uids/.test(msg)),
        JSON.stringify(warnings),
      );
      // Replayed, it is evaluated again at its source, which asks DHIS2 nothing for it: still dead, not sent.
      await h.bridge.replay([stray?.id ?? 0, cut.id]);
      assert.deepEqual(
        [stray?.id ?? 0, cut.id].map((id) => h.bridge.ledger.get(id)?.state),
        ['dead', 'dead'],
      );
      assert.deepEqual(unexpectedCalls(proxy), []);
      assert.equal((await h.events()).length, others.length);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("a mother's uid that is not one: her child waits dead, naming her, and nothing is asked for her", async () => {
    const { proxy, h, children } = await birthsBehindProxy();
    try {
      const mothers = new Map<string, string>();
      const child = children.find((uid) => {
        const te = h.seeded.find((e) => e.trackedEntity === uid);
        const mother = te?.relationships?.[0]?.to.trackedEntity?.trackedEntity;
        if (mother) mothers.set(uid, mother);
        return mother !== undefined;
      });
      assert.ok(child, 'a child with a mother');
      const mother = mothers.get(child);
      // A FHIR id, not a DHIS2 uid: the mapping engine takes the reference, the client refuses it.
      const bad = 'Mo.ther0001';
      proxy.rules.push(
        rewriteList(proxy, (entities) => {
          const te = entities.find((e) => e.trackedEntity === child);
          if (te) te.relationships = JSON.parse(JSON.stringify(te.relationships ?? []).replaceAll(String(mother), bad));
        }),
      );
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.deepEqual(summary.failedSources, [], 'the source reads on');
      const rows = h.rows();
      const row = rows.find((r) => r.subjectKey === `TrackedEntity/${child}`);
      assert.equal(row?.state, 'dead', JSON.stringify(row?.lastError));
      assert.equal(row.lastError?.kind, 'source-read');
      assert.match(row.lastError?.message ?? '', new RegExp(`TrackedEntity/${bad.replace('.', '\\.')}`));
      assert.match(row.lastError?.message ?? '', /not a DHIS2 uid/);
      assert.equal(rows.filter((r) => r.state === 'delivered').length, children.length - 1);
      assert.deepEqual(unexpectedCalls(proxy), []);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});

describe('DHIS2 recheck: a ledger row whose uid is not a DHIS2 uid', () => {
  it('is held dead without a request; the other rows of the batch are rechecked and sent', async () => {
    const { proxy, h, children } = await birthsBehindProxy({ recheck: true });
    try {
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      await source.poller.pollOnce();
      const [model] = h.rows();
      assert.ok(model?.payload && model.payloadHash);
      // A row recorded before uids were checked (or written into the ledger by hand).
      const { row: bad } = h.bridge.ledger.recordEvent({
        sourceId: BIRTHS_SOURCE,
        eventType: model.eventType,
        subjectKey: 'TrackedEntity/..',
        sourceRef: 'Event/..',
        sourceVersion: model.sourceVersion ?? '1',
        mappingId: model.mappingId ?? 'birth.dhis2',
        payloadHash: model.payloadHash,
        payload: model.payload,
      });
      proxy.seen.length = 0;
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });

      const held: LedgerRow | undefined = h.bridge.ledger.get(bad.id);
      assert.equal(held?.state, 'dead', 'not sent unchecked');
      assert.equal(held.lastError?.kind, 'source-read');
      assert.match(held.lastError?.message ?? '', /its uid is not a DHIS2 uid/);
      const others = h.rows().filter((r) => r.id !== bad.id);
      assert.equal(others.length, children.length);
      assert.ok(
        others.every((r) => r.state === 'delivered'),
        JSON.stringify(others.map((r) => r.state)),
      );
      assert.ok(
        proxy.seen.some((s) => s.url.startsWith('/api/tracker/trackedEntities/')),
        'the other rows were read again',
      );
      assert.deepEqual(unexpectedCalls(proxy), []);
      assert.equal((await h.events()).length, children.length);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
