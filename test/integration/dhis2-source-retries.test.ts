// What the DHIS2 client tries again, and when, as the FHIR client (fhir-source-retries.test.ts). A 408 (DHIS2,
// or a proxy in front of it, gave up waiting for the request) is a connection's trouble, like a reset: tried
// again. Before, it failed the call at once, as a failure DHIS2 gave about the call itself. A 429 or 503 with
// Retry-After is tried again no sooner than the server asked, when that is within sources[].timeoutMs (before:
// after 500 ms and 1 s whatever it said); asked to wait longer, the call ends its tries (still retryable: the
// next pass) rather than ask again at once. Against the DHIS2 simulator behind the fault proxy.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { Dhis2Client, Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { mayConcernOneRecord } from '../../src/sources/shared/source-error.js';
import { type Dhis2BehindProxy, startDhis2BehindProxy } from './helpers/dhis2-proxy.js';
import { answerStatus } from './helpers/fault-proxy.js';
import { rejection } from './helpers/rejection.js';

describe('DHIS2 client: a 408, and a Retry-After', () => {
  let setup: Dhis2BehindProxy;
  /** When each system/info call reached the proxy (ms, performance.now()). */
  let arrivals: number[];

  before(async () => {
    // A backoff of 1 ms, 2 ms: any longer wait between tries is the server's Retry-After. timeoutMs 5000.
    setup = await startDhis2BehindProxy({ client: { attempts: 3, retryBaseMs: 1 } });
  });
  after(async () => {
    await setup?.close();
  });
  beforeEach(() => {
    setup.proxy.seen.length = 0;
    setup.proxy.rules.length = 0;
    arrivals = [];
  });

  /** Answers the first `times` system/info calls with `first` (all of them when undefined); the rest go through. */
  function callsAnswered(first: (res: ServerResponse) => void, times?: number) {
    setup.proxy.rules.push((req: IncomingMessage) => {
      if (!req.url?.startsWith('/api/system/info')) return undefined;
      arrivals.push(performance.now());
      return times === undefined || arrivals.length <= times ? first : undefined;
    });
  }

  const failure = (call: Promise<unknown>) => rejection(call, Dhis2SourceError);

  it('tries a call answered 408 again, and gets its answer', async () => {
    callsAnswered(answerStatus(408), 1);
    assert.equal(typeof (await setup.client.systemInfo()), 'string');
    assert.equal(arrivals.length, 2);
  });

  it('a 408 through every try fails the call as retryable, no answer of one record, and no timeout', async () => {
    callsAnswered(answerStatus(408));
    const err = await failure(setup.client.systemInfo());
    assert.equal(arrivals.length, 3, 'every try');
    assert.equal(err.status, 408);
    assert.equal(err.retryable, true);
    assert.equal(err.timedOut, false);
    assert.equal(mayConcernOneRecord(err), false);
  });

  it("tries as often, and as far apart, as the source's sources[].retry says when its caller does not", async () => {
    callsAnswered(answerStatus(408));
    const client = new Dhis2Client(
      { ...setup.source, retry: { attempts: 2, baseDelayMs: 300 } },
      { logger: silentLogger },
    );
    try {
      const err = await failure(client.systemInfo());
      assert.equal(err.status, 408);
      assert.equal(arrivals.length, 2, 'two tries, not the default three');
      const [first = 0, second = 0] = arrivals;
      assert.ok(second - first >= 250, `asked again after ${Math.round(second - first)} ms`);
    } finally {
      client.close();
    }
  });

  it('waits the Retry-After of a 429 before the next try', async () => {
    callsAnswered(answerStatus(429, { 'retry-after': '1' }), 1);
    assert.equal(typeof (await setup.client.systemInfo()), 'string');
    assert.equal(arrivals.length, 2);
    const [first = 0, second = 0] = arrivals;
    // Not sooner than asked (the backoff alone would be 1 ms); the proxy's clock, so a little slack.
    assert.ok(second - first >= 950, `asked again after ${Math.round(second - first)} ms`);
  });

  it('waits the Retry-After of a 503 too, given as a date', async () => {
    // An HTTP date has whole seconds: 2 s from now is 1 to 2 s away.
    callsAnswered(answerStatus(503, { 'retry-after': new Date(Date.now() + 2000).toUTCString() }), 1);
    assert.equal(typeof (await setup.client.systemInfo()), 'string');
    const [first = 0, second = 0] = arrivals;
    assert.ok(second - first >= 900, `asked again after ${Math.round(second - first)} ms`);
  });

  it('asked to wait longer than sources[].timeoutMs, ends its tries: retryable, with how long the server asked', async () => {
    callsAnswered(answerStatus(429, { 'retry-after': '3600' }));
    const err = await failure(setup.client.systemInfo());
    assert.equal(arrivals.length, 1, 'not asked again sooner than the server said');
    assert.equal(err.status, 429);
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterMs, 3_600_000);
    assert.equal(err.message, 'system info failed: HTTP 429 (the server asks to wait 3600 s before asking again)');
  });
});
