// A 403 is the FHIR server refusing one record only when the server says so: it answers as a FHIR server
// (an OperationOutcome, or at least `application/fhir+json`). A 403 page from a proxy or firewall in front
// of it (a WAF rule, an IP allow-list) refuses the bridge, not a record: taken for the server's, the
// pipeline held a birth dead for it once the probe read went through, while the source itself was being
// refused. It is a failure of the source, retried like a 5xx. Against the FHIR sandbox behind the fault proxy.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { type FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { mayConcernOneRecord } from '../../src/sources/shared/source-error.js';
import { birthResources, startHarness } from './helpers/bridge-harness.js';
import { answerJson, type FaultProxy, forbiddenPage, startFaultProxy } from './helpers/fault-proxy.js';
import { type FhirBehindProxy, startFhirBehindProxy } from './helpers/fhir-proxy.js';
import { rejection } from './helpers/rejection.js';

const FORBIDDEN_OUTCOME = {
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code: 'forbidden', diagnostics: 'Access denied by rule' }],
};

/** The server's own 403 sent as FHIR with no body (a server that explains nothing). */
const bareFhir403 = () => (res: ServerResponse) => {
  res.writeHead(403, { 'content-type': 'application/fhir+json;charset=utf-8' });
  res.end();
};

describe('FHIR client: whose 403 it is', () => {
  let setup: FhirBehindProxy;
  let proxy: FaultProxy;
  let client: FhirSourceClient;
  let path: string;

  before(async () => {
    setup = await startFhirBehindProxy({ timeoutMs: 5000, client: { attempts: 2, retryBaseMs: 1 } });
    ({ proxy, client, path } = setup);
  });
  after(async () => {
    await setup?.close();
  });
  beforeEach(() => {
    proxy.seen.length = 0;
    proxy.rules.length = 0;
  });

  const onRead = (id: string, answer: ReturnType<typeof forbiddenPage>) => (req: IncomingMessage) =>
    req.method === 'GET' && req.url?.startsWith(`${path}/Patient/${id}`) ? answer : undefined;

  const failure = (call: Promise<unknown>) => rejection(call, FhirSourceError);

  it("the server's own 403 (an OperationOutcome, or sent as FHIR) refuses that record: not retried", async () => {
    proxy.rules.push(onRead('outcome-403', answerJson(403, FORBIDDEN_OUTCOME)));
    proxy.rules.push(onRead('bare-403', bareFhir403()));
    for (const id of ['outcome-403', 'bare-403']) {
      const err = await failure(client.read('Patient', id));
      assert.equal(err.status, 403);
      assert.equal(err.foreign, false, id);
      assert.equal(err.retryable, false);
      assert.equal(mayConcernOneRecord(err), true);
    }
    assert.equal(proxy.seen.length, 2, 'each asked once');
  });

  it("a proxy's or firewall's 403 page refuses the source: retried, named as not the server's, never one record's", async () => {
    proxy.rules.push(onRead('waf-blocked', forbiddenPage()));
    const err = await failure(client.read('Patient', 'waf-blocked'));
    assert.equal(err.status, 403);
    assert.equal(err.foreign, true);
    assert.equal(err.retryable, true);
    assert.match(err.message, /HTTP 403 \(not a FHIR answer: .*proxy or firewall/);
    assert.equal(mayConcernOneRecord(err), false);
    assert.equal(proxy.seen.length, 2, 'tried again, like a 5xx');

    // A gateway's JSON that is no FHIR resource is not the server's either.
    proxy.rules.length = 0;
    proxy.rules.push(onRead('kong-blocked', answerJson(403, { message: 'You cannot consume this service' })));
    assert.equal((await failure(client.read('Patient', 'kong-blocked'))).foreign, true);
  });
});

describe("FHIR source: a proxy's 403 page is no refusal of a record", () => {
  const childOf = (resources: Resource[]): Patient => {
    const found = resources.find(
      (r): r is Patient => r.resourceType === 'Patient' && r.id?.endsWith('-child') === true,
    );
    assert.ok(found?.id);
    return found;
  };

  /** Six births behind the proxy; `refuse` answers every context read naming child 2 (not its own read). */
  async function sixBirths(refuse: () => ReturnType<typeof forbiddenPage>) {
    const proxy = await startFaultProxy();
    let path = '';
    const h = await startHarness({
      worker: false,
      source: {
        baseUrl: (sandbox) => {
          proxy.target = sandbox;
          path = new URL(sandbox).pathname.replace(/\/+$/, '');
          return `${proxy.url}${path}`;
        },
      },
    });
    await h.writeBirths(0, 6);
    const child = childOf(birthResources(2)).id ?? '';
    // Its searches (alone or batched with others) and its reads by `_id`; the probe reads `Patient/<id>`.
    const names = (req: IncomingMessage) =>
      decodeURIComponent(req.url ?? '').includes(child) && !req.url?.startsWith(`${path}/Patient/${child}`);
    proxy.rules.push((req) => (names(req) ? refuse() : undefined));
    return { proxy, h, child: `Patient/${child}`, met: () => proxy.seen.some((s) => s.status === 403) };
  }

  it('a related read meeting it fails the pass (the watermark stays), no birth held dead for it', async () => {
    const { proxy, h, met } = await sixBirths(forbiddenPage);
    try {
      const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
      assert.ok(met(), 'a read met the page');
      assert.deepEqual(summary.failedSources, ['emr']);
      assert.match(h.bridge.sourceStatuses()[0]?.lastError ?? '', /HTTP 403 \(not a FHIR answer/);
      assert.deepEqual(
        h.rows().filter((r) => r.state === 'dead'),
        [],
        'no birth held dead for it',
      );

      // The proxy lets the bridge through again: the next pass reads and delivers every birth.
      proxy.rules.length = 0;
      assert.deepEqual((await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 })).failedSources, []);
      assert.equal(h.rows().filter((r) => r.eventType === 'birth' && r.state === 'delivered').length, 6);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it("the server's own 403 for that record holds its birth dead and the pass goes on", async () => {
    const { proxy, h, child, met } = await sixBirths(() => answerJson(403, FORBIDDEN_OUTCOME));
    try {
      const summary = await h.bridge.syncOnce(undefined, { timeoutMs: 60_000 });
      assert.ok(met(), 'a read met the refusal');
      assert.deepEqual(summary.failedSources, []);
      const dead = h.rows().filter((r) => r.state === 'dead');
      assert.ok(dead.length > 0);
      assert.ok(
        dead.every((r) => r.subjectKey === child && r.lastError?.kind === 'source-read'),
        JSON.stringify(dead.map((r) => [r.subjectKey, r.lastError?.message])),
      );
      assert.equal(h.rows().filter((r) => r.eventType === 'birth' && r.state === 'delivered').length, 5);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
