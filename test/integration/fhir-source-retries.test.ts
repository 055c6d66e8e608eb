// What the FHIR client tries again, and when. A 408 (the server, or a proxy in front of it, gave up waiting
// for the request) is a connection's trouble, like a reset: tried again. Before, it was neither tried again
// nor a failure of one record: the call failed at once. A 429 or 503 with Retry-After is tried again no
// sooner than the server asked, when that is within sources[].timeoutMs; asked to wait longer, the call
// ends its tries (the failure is still retryable: the next pass, the inbox's next round) rather than ask
// again at once. Against the FHIR sandbox behind the fault proxy.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { type FhirSourceClient, FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import { mayConcernOneRecord } from '../../src/sources/shared/source-error.js';
import { answerStatus, type FaultProxy } from './helpers/fault-proxy.js';
import { type FhirBehindProxy, startFhirBehindProxy } from './helpers/fhir-proxy.js';
import { rejection } from './helpers/rejection.js';

const CHILD = 'demo-birth-0-child';

describe('FHIR client: a 408, and a Retry-After', () => {
  let setup: FhirBehindProxy;
  let proxy: FaultProxy;
  let client: FhirSourceClient;
  let path: string;
  /** When each read of the child reached the proxy (ms, performance.now()). */
  let arrivals: number[];

  before(async () => {
    // A backoff of 1 ms, 2 ms: any longer wait between tries is the server's Retry-After.
    setup = await startFhirBehindProxy({
      seed: generateBirth(0),
      timeoutMs: 5000,
      client: { attempts: 3, retryBaseMs: 1 },
    });
    ({ proxy, client, path } = setup);
  });
  after(async () => {
    await setup?.close();
  });
  beforeEach(() => {
    proxy.seen.length = 0;
    proxy.rules.length = 0;
    arrivals = [];
  });

  /** Answers the child's first `times` reads with `first` (all of them when undefined); the rest go through. */
  function readsAnswered(first: (res: ServerResponse) => void, times?: number) {
    proxy.rules.push((req: IncomingMessage) => {
      if (req.url !== `${path}/Patient/${CHILD}`) return undefined;
      arrivals.push(performance.now());
      return times === undefined || arrivals.length <= times ? first : undefined;
    });
  }

  const failure = (call: Promise<unknown>) => rejection(call, FhirSourceError);

  it('tries a read answered 408 again, and reads it', async () => {
    readsAnswered(answerStatus(408), 1);
    const child = await client.read('Patient', CHILD);
    assert.equal(child?.id, CHILD);
    assert.equal(arrivals.length, 2);
  });

  it('a 408 through every try fails the call as retryable, no answer of one record, and no timeout', async () => {
    readsAnswered(answerStatus(408));
    const err = await failure(client.read('Patient', CHILD));
    assert.equal(arrivals.length, 3, 'every try');
    assert.equal(err.status, 408);
    assert.equal(err.retryable, true);
    assert.equal(err.timedOut, false);
    assert.equal(mayConcernOneRecord(err), false);
  });

  it('waits the Retry-After of a 429 before the next try', async () => {
    readsAnswered(answerStatus(429, { 'retry-after': '1' }), 1);
    const child = await client.read('Patient', CHILD);
    assert.equal(child?.id, CHILD);
    assert.equal(arrivals.length, 2);
    const [first = 0, second = 0] = arrivals;
    // Not sooner than asked (the backoff alone would be 1 ms); the proxy's clock, so a little slack.
    assert.ok(second - first >= 950, `asked again after ${Math.round(second - first)} ms`);
  });

  it('waits the Retry-After of a 503 too, given as a date', async () => {
    // An HTTP date has whole seconds: 2 s from now is 1 to 2 s away.
    readsAnswered(answerStatus(503, { 'retry-after': new Date(Date.now() + 2000).toUTCString() }), 1);
    const child = await client.read('Patient', CHILD);
    assert.equal(child?.id, CHILD);
    const [first = 0, second = 0] = arrivals;
    assert.ok(second - first >= 900, `asked again after ${Math.round(second - first)} ms`);
  });

  it('asked to wait longer than sources[].timeoutMs, ends its tries: retryable, with how long the server asked', async () => {
    readsAnswered(answerStatus(429, { 'retry-after': '3600' }));
    const err = await failure(client.read('Patient', CHILD));
    assert.equal(arrivals.length, 1, 'not asked again sooner than the server said');
    assert.equal(err.status, 429);
    assert.equal(err.retryable, true);
    assert.equal(err.message, 'read Patient failed: HTTP 429 (the server asks to wait 3600 s before asking again)');
  });
});
