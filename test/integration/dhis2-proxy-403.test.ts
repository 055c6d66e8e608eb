// A 403 is DHIS2 refusing one record to the bridge's user only when DHIS2 says so, with its WebMessage
// (`{httpStatusCode: 403, …}`). A 403 page from a proxy or firewall in front of it (a WAF rule, an IP
// allow-list) refuses the bridge, not a record: taken for DHIS2's, the recheck held a waiting birth dead
// and a mother's read kept her child dead while the source itself was being refused. It is a failure of
// the source, retried like a 5xx. Against the DHIS2 simulator behind the fault proxy.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CHILD_PROGRAMME } from '../../src/sandbox/dhis2/index.js';
import { type Dhis2Client, Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { mayConcernOneRecord } from '../../src/sources/shared/source-error.js';
import { sleep } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, enrolledIn } from './helpers/dhis2-harness.js';
import { type Dhis2BehindProxy, startDhis2BehindProxy, startDhis2HarnessBehindProxy } from './helpers/dhis2-proxy.js';
import { dhis2Error, type FaultProxy, type FaultRule, forbiddenPage } from './helpers/fault-proxy.js';

const READ = '/api/tracker/trackedEntities/';

/** Reads of one tracked entity answered by `answer` (the list call is not a read). */
function onRead(uid: string, answer: ReturnType<typeof forbiddenPage>): FaultRule {
  return (req) => (req.method === 'GET' && req.url?.startsWith(`${READ}${uid}`) ? answer : undefined);
}

describe('DHIS2 client: whose 403 it is', () => {
  let dhis2: Dhis2BehindProxy;
  let proxy: FaultProxy;
  let client: Dhis2Client;

  before(async () => {
    dhis2 = await startDhis2BehindProxy({ client: { attempts: 2, retryBaseMs: 1 } });
    ({ proxy, client } = dhis2);
  });
  after(async () => {
    await dhis2?.close();
  });
  beforeEach(() => {
    proxy.seen.length = 0;
    proxy.rules.length = 0;
  });

  async function failure(call: Promise<unknown>): Promise<Dhis2SourceError> {
    const err = await call.then(
      (answer) => assert.fail(`answered: ${JSON.stringify(answer)}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof Dhis2SourceError, String(err));
    return err;
  }

  it("DHIS2's own 403 (its WebMessage) refuses that record: not retried, it may concern that record alone", async () => {
    proxy.rules.push(onRead('TeOwner0001', dhis2Error(403, 'OWNERSHIP_ACCESS_DENIED')));
    const err = await failure(client.trackedEntity('TeOwner0001', { program: CHILD_PROGRAMME }));
    assert.equal(err.status, 403);
    assert.equal(err.foreign, false);
    assert.equal(err.retryable, false);
    assert.match(err.message, /DHIS2 refused this record to the user/);
    assert.equal(mayConcernOneRecord(err), true);
    assert.equal(proxy.seen.length, 1);
  });

  it("a proxy's or firewall's 403 page refuses the source: retried, named as not DHIS2's, never one record's", async () => {
    proxy.rules.push(onRead('TeWafBlock1', forbiddenPage()));
    const err = await failure(client.trackedEntity('TeWafBlock1', { program: CHILD_PROGRAMME }));
    assert.equal(err.status, 403);
    assert.equal(err.foreign, true);
    assert.equal(err.retryable, true);
    assert.match(err.message, /HTTP 403 \(not a DHIS2 answer: .*proxy or firewall/);
    assert.doesNotMatch(err.message, /refused this record/);
    assert.equal(mayConcernOneRecord(err), false);
    assert.equal(proxy.seen.length, 2, 'tried again, like a 5xx');

    // The same for a call that is not a record's (the credentials are not blamed either).
    proxy.rules.push((req) => (req.url?.startsWith('/api/system/info') ? forbiddenPage() : undefined));
    const info = await failure(client.systemInfo());
    assert.equal(info.foreign, true);
    assert.doesNotMatch(info.message, /refused the credentials/);
  });
});

/** Four births of the demo Child Programme, the births source behind the fault proxy. */
async function birthsBehindProxy(delivery?: Record<string, unknown>) {
  const { proxy, h } = await startDhis2HarnessBehindProxy({
    births: 4,
    deaths: 0,
    writeBack: false,
    ...(delivery ? { delivery } : {}),
  });
  const children = enrolledIn(h.seeded, CHILD_PROGRAMME);
  return { proxy, h, children };
}

describe("DHIS2 source: a proxy's 403 page is no refusal of a record", () => {
  it('the recheck does not hold a waiting birth dead on it: the row waits until DHIS2 itself answers', async () => {
    const { proxy, h, children } = await birthsBehindProxy({ settleSeconds: 1, recheckAfterSeconds: 1 });
    try {
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      await source.poller.pollOnce();
      const [child] = children;
      assert.ok(child?.trackedEntity);
      const subjectKey = `TrackedEntity/${child.trackedEntity}`;
      const rowNow = () => h.rows().find((r) => r.subjectKey === subjectKey);
      const metPage = () =>
        proxy.seen.some((s) => s.status === 403 && s.url.startsWith(`${READ}${child.trackedEntity}`));
      assert.equal(rowNow()?.state, 'pending');
      proxy.rules.push(onRead(child.trackedEntity, forbiddenPage()));
      await sleep(1_100);
      // Rounds of the worker until the child's recheck has run: its read is retried, then given up on.
      for (let round = 0; round < 5 && !metPage(); round++) await h.bridge.worker.processNext();

      const row = rowNow();
      assert.ok(row);
      assert.ok(metPage(), 'the read met the page');
      // Neither held dead as a record DHIS2 refused, nor sent unchecked: it waits, as on a proxy's 404 (app.ts:
      // a page that is not the source's says nothing of the record).
      assert.equal(row.state, 'pending', JSON.stringify(row.lastError));
      assert.notEqual(row.lastError?.kind, 'source-read');

      // The proxy lets the bridge through again: once its lease is out, the row is rechecked and sent.
      proxy.rules.length = 0;
      await sleep(2_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 20_000 });
      assert.equal(rowNow()?.state, 'delivered');
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("a mother's read meeting it fails the pass (the watermark stays), not her child alone", async () => {
    const { proxy, h, children } = await birthsBehindProxy();
    try {
      const mother = children
        .map((te) => te.relationships?.[0]?.to.trackedEntity?.trackedEntity)
        .find((uid) => uid !== undefined);
      assert.ok(mother);
      proxy.rules.push(onRead(mother, forbiddenPage()));
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      assert.match(
        h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE)?.lastError ?? '',
        /HTTP 403 \(not a DHIS2 answer/,
      );
      assert.deepEqual(
        h.rows().filter((r) => r.state === 'dead'),
        [],
        'no child held dead for it',
      );

      // The proxy lets the bridge through again: the next pass reads every birth.
      proxy.rules.length = 0;
      assert.deepEqual((await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 })).failedSources, []);
      assert.equal(h.rows().filter((r) => r.state === 'delivered').length, children.length);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
