// The worker rechecks waiting births at DHIS2 before their first send. A read that failed (a 5xx through
// the client's retries) used to end the recheck there: what the reads before and after it would have shown
// was never evaluated, and the worker sent the whole batch as recorded, a birth DHIS2 had deleted meanwhile
// among them. Now what was read is recorded first, and only the unread birth goes out as recorded. Against
// the DHIS2 simulator behind the fault proxy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LedgerRow } from '../../src/ledger/index.js';
import { ATTRIBUTES, CHILD_PROGRAMME, DEFAULT_SANDBOX_AUTH } from '../../src/sandbox/dhis2/index.js';
import { sleep } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, type Dhis2Harness, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';
import { dhis2Error, type FaultProxy, forbiddenPage, noAnswer, startFaultProxy } from './helpers/fault-proxy.js';

const READ = '/api/tracker/trackedEntities/';

/** Three births recorded and waiting, the births source behind the fault proxy; their rows in claim order. */
async function threeWaitingBehindProxy(
  source: Record<string, unknown> = {},
): Promise<{ proxy: FaultProxy; h: Dhis2Harness; rows: LedgerRow[] }> {
  const proxy = await startFaultProxy();
  const h = await startDhis2Harness({
    births: 3,
    deaths: 0,
    writeBack: false,
    delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
    configure: ({ sources }) => {
      proxy.target = String(sources[0]?.baseUrl);
      sources[0] = { ...sources[0], ...source, baseUrl: proxy.url };
    },
  });
  const births = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
  assert.ok(births);
  await births.poller.pollOnce();
  // The worker claims by due time, then id: the first row's subject is read first.
  const rows = h
    .rows()
    .filter((r) => r.sourceId === BIRTHS_SOURCE)
    .sort((a, b) => a.id - b.id);
  assert.equal(rows.length, 3);
  assert.ok(rows.every((r) => r.state === 'pending'));
  return { proxy, h, rows };
}

const uidOf = (row: LedgerRow): string => row.subjectKey.slice('TrackedEntity/'.length);

async function deleteInDhis2(h: Dhis2Harness, uid: string): Promise<void> {
  const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=DELETE`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
    body: JSON.stringify({ trackedEntities: [{ trackedEntity: uid }] }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, await res.text());
}

describe('bridge: a DHIS2 recheck in which one tracked entity cannot be read', () => {
  it('withdraws a birth DHIS2 deleted meanwhile; only the unread one goes out as recorded', async () => {
    const { proxy, h, rows } = await threeWaitingBehindProxy();
    try {
      const [unreadRow, keptRow, goneRow] = rows;
      assert.ok(unreadRow && keptRow && goneRow);
      await deleteInDhis2(h, uidOf(goneRow));
      // DHIS2 answers 500 to every read of the first birth in the program, whatever the retries.
      proxy.rules.push((req) =>
        req.method === 'GET' && req.url?.startsWith(`${READ}${uidOf(unreadRow)}`)
          ? dhis2Error(500, 'Internal server error')
          : undefined,
      );
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });

      assert.ok(
        proxy.seen.some((s) => s.url.startsWith(`${READ}${uidOf(unreadRow)}`) && s.status === 500),
        "the first birth's read failed",
      );
      const now = (row: LedgerRow) => h.rows().find((r) => r.id === row.id);
      const gone = now(goneRow);
      assert.equal(gone?.state, 'skipped', 'withdrawn, not sent with the batch');
      assert.equal(gone?.skipReason, 'deleted in the source before it was sent');
      assert.equal(now(keptRow)?.state, 'delivered');
      assert.equal(now(unreadRow)?.state, 'delivered', 'could not be checked: sent as recorded');
      const created = (await h.events()).map((ev) => ev.actions.find((a) => a.type === 'CREATE')?.transactionId);
      assert.deepEqual(created.sort(), [keptRow.createTransactionId, unreadRow.createTransactionId].sort());
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("a proxy's page for one read makes that row wait alone; it goes out once DHIS2 answers", async () => {
    const { proxy, h, rows } = await threeWaitingBehindProxy();
    try {
      const [blockedRow, keptRow, goneRow] = rows;
      assert.ok(blockedRow && keptRow && goneRow);
      await deleteInDhis2(h, uidOf(goneRow));
      proxy.rules.push((req) =>
        req.method === 'GET' && req.url?.startsWith(`${READ}${uidOf(blockedRow)}`) ? forbiddenPage() : undefined,
      );
      await sleep(1_100);
      const now = (row: LedgerRow) => h.rows().find((r) => r.id === row.id);
      const metPage = () => proxy.seen.some((s) => s.status === 403 && s.url.startsWith(`${READ}${uidOf(blockedRow)}`));
      // runUntilIdle would wait for the waiting row: round by round until the neighbour is settled.
      for (let round = 0; round < 50 && !(metPage() && now(keptRow)?.state === 'delivered'); round++) {
        await h.bridge.worker.processNext();
        await sleep(20);
      }

      assert.ok(metPage(), 'the read met the page');
      assert.equal(now(goneRow)?.state, 'skipped', 'what DHIS2 showed is recorded');
      // The page says nothing of that record: neither sent unchecked nor held dead, it waits. Nor of the
      // others: the neighbour read fine goes out (before, every row of the source waited with it).
      assert.deepEqual([now(blockedRow)?.state, now(blockedRow)?.lastError ?? null], ['pending', null]);
      assert.equal(now(keptRow)?.state, 'delivered');
      const created = () =>
        h.events().then((evs) => evs.map((ev) => ev.actions.find((a) => a.type === 'CREATE')?.transactionId));
      assert.deepEqual(await created(), [keptRow.createTransactionId]);

      // DHIS2 answers again: the waiting row is read and goes out.
      proxy.rules.length = 0;
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      assert.equal(now(blockedRow)?.state, 'delivered');
      assert.deepEqual((await created()).sort(), [keptRow.createTransactionId, blockedRow.createTransactionId].sort());
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("records a correction it read though a neighbour's mother read gets no answer in time", async () => {
    const { proxy, h, rows } = await threeWaitingBehindProxy({ timeoutMs: 400 });
    try {
      const [slowRow, correctedRow] = rows;
      assert.ok(slowRow && correctedRow);
      const children = enrolledIn(h.seeded, CHILD_PROGRAMME);
      const slow = children.find((c) => c.trackedEntity === uidOf(slowRow));
      const corrected = children.find((c) => c.trackedEntity === uidOf(correctedRow));
      const mother = slow?.relationships?.[0]?.to.trackedEntity?.trackedEntity;
      assert.ok(corrected && mother, 'the first child has a mother');
      // The second child's first name is corrected in DHIS2 after the birth was recorded.
      const at = new Date().toISOString();
      const fixed = {
        ...structuredClone(corrected),
        updatedAt: at,
        attributes: (corrected.attributes ?? []).map((a) =>
          a.attribute === ATTRIBUTES.firstName ? { ...a, value: 'Zebedayo', updatedAt: at } : a,
        ),
      };
      const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=CREATE_AND_UPDATE`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
        body: JSON.stringify({ trackedEntities: [fixed] }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(res.status, 200, await res.text());
      // The first child's mother is never answered in time: one subject's context read fails.
      proxy.rules.push((req) =>
        req.method === 'GET' && req.url?.startsWith(`${READ}${mother}`) ? noAnswer() : undefined,
      );
      await sleep(1_100); // past recheckAfterSeconds
      await h.bridge.worker.runUntilIdle({ timeoutMs: 30_000 });
      assert.ok(
        proxy.seen.some((seen) => seen.url.startsWith(`${READ}${mother}`)),
        "the mother's read was asked",
      );
      const sent = h.rows().find((r) => r.id === correctedRow.id);
      assert.equal(sent?.state, 'delivered');
      assert.match(JSON.stringify(sent?.payload), /Zebedayo/, 'the correction read at DHIS2 is what was sent');
      assert.equal(h.rows().find((r) => r.id === slowRow.id)?.state, 'delivered', 'the unread one, as recorded');
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
