// A source that is down for hours with a schedule of seconds (or a ledger on a full disk) failed every poll
// pass, and every pass wrote a line with a stack, so did every resource type of it and every catch-up poll:
// the log grew by the hour and buried what else happened. Each poller (so each source) now logs its first
// failure at once, the same failure at most once a minute with `repeats`, and one line when a pass succeeds
// again; readiness and metrics still count every failed pass. The EMR here is the FHIR sandbox behind a proxy
// that answers 503 while the test says so; minutes pass on an injected clock.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { Dhis2Client } from '../../src/sources/dhis2/client.js';
import { Dhis2Poller, dhis2SettingsOf } from '../../src/sources/dhis2/index.js';
import { FhirSourceClient } from '../../src/sources/fhir/fhir-client.js';
import { fhirInbox } from '../../src/sources/fhir/inbox.js';
import { InboxProcessor } from '../../src/sources/fhir/inbox-processor.js';
import { FhirPoller } from '../../src/sources/fhir/poller.js';
import { type Harness, SOURCE_ID, startHarness } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, type Dhis2Harness } from './helpers/dhis2-harness.js';
import { startDhis2HarnessBehindProxy } from './helpers/dhis2-proxy.js';
import { answerStatus, type FaultProxy, startFaultProxy } from './helpers/fault-proxy.js';

type Line = Record<string, unknown> & { msg: string; level: string };

describe('a source that cannot be read, pass after pass', () => {
  let proxy: FaultProxy;
  let h: Harness;
  let lines: Line[];
  let clock: number;
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  const down = () => proxy.rules.push(() => answerStatus(503));
  const up = () => {
    proxy.rules.length = 0;
  };
  const PASS_FAILED = 'poll pass failed; the watermark stays where it was';
  const TYPE_FAILED = 'a resource type could not be polled; the others go on';

  before(async () => {
    proxy = await startFaultProxy();
    h = await startHarness({
      worker: false,
      source: {
        baseUrl: (sandbox) => {
          proxy.target = sandbox;
          return `${proxy.url}${new URL(sandbox).pathname}`;
        },
      },
    });
  });
  after(async () => {
    await h?.close();
    await proxy?.close();
  });
  beforeEach(() => {
    lines = [];
    clock = Date.now();
    up();
  });

  /** A poller of the harness's source (or of another id on the same EMR) on the test's clock, tried once a call. */
  function poller(sourceId = SOURCE_ID): FhirPoller {
    const source = h.bridge.sources[0];
    assert.ok(source);
    return new FhirPoller({
      sourceId,
      client: new FhirSourceClient(source.settings, { logger: silentLogger, attempts: 1 }),
      pipeline: source.pipeline,
      cursors: h.bridge.ledger,
      resourceTypes: source.mappings.watchedResourceTypes(),
      poll: source.settings.poll,
      logger,
      now: () => clock,
    });
  }

  it('logs the first failure at once, then once a minute with the repeats, and one line when passes succeed again', async () => {
    const emr = poller();
    const types = h.bridge.sources[0]?.mappings.watchedResourceTypes().length ?? 0;
    assert.ok(types >= 2, `${types} resource types polled`);
    down();
    for (let pass = 1; pass <= 5; pass++) await assert.rejects(emr.pollOnce());
    // Readiness and /metrics read these: every pass still counts.
    assert.equal(emr.status.consecutiveFailures, 5);
    assert.match(String(emr.status.lastError), /503/);

    const failed = logged(PASS_FAILED);
    assert.equal(failed.length, 1, 'five passes within a minute: one line');
    const [first] = failed;
    assert.ok(first);
    assert.equal(first.level, 'warn');
    assert.equal(first.component, 'fhir-poller');
    assert.equal(first.source, SOURCE_ID);
    assert.equal(first.failures, 1);
    assert.equal(first.repeats, undefined);
    assert.match(String((first.err as { message?: string }).message), /503/);
    assert.equal(logged(TYPE_FAILED).length, types, 'each type once, not once a pass');

    // A minute later the next failure is logged, with the four passes not logged since.
    clock += 60_000;
    await assert.rejects(emr.pollOnce());
    assert.deepEqual(
      logged(PASS_FAILED).map((l) => [l.failures, l.repeats]),
      [
        [1, undefined],
        [6, 4],
      ],
    );
    assert.equal(logged(TYPE_FAILED).length, 2 * types);

    up();
    clock += 5_000;
    await emr.pollOnce();
    assert.equal(emr.status.consecutiveFailures, 0);
    const recovered = logged('poll passes succeed again');
    assert.equal(recovered.length, 1);
    assert.equal(recovered[0]?.source, SOURCE_ID);
    assert.equal(recovered[0]?.component, 'fhir-poller');
    assert.deepEqual([recovered[0]?.failures, recovered[0]?.repeats, recovered[0]?.failingMs], [6, 0, 65_000]);
    await emr.pollOnce();
    assert.equal(logged('poll passes succeed again').length, 1, 'once, not at every pass that works');

    // Down again within the minute of the last failure line: a source that flaps is logged once a minute
    // too, not at every pass (a success in between keeps the failure's last line).
    down();
    await assert.rejects(emr.pollOnce());
    assert.equal(logged(PASS_FAILED).length, 2);
    assert.equal(logged(TYPE_FAILED).length, 2 * types);
    up();
    await emr.pollOnce();
    assert.equal(logged('poll passes succeed again').length, 1, 'no failure line since the last: not said yet');
    down();
    clock += 30_000;
    await assert.rejects(emr.pollOnce());
    assert.equal(logged(PASS_FAILED).length, 2);
    clock += 30_000;
    await assert.rejects(emr.pollOnce());
    assert.deepEqual(
      logged(PASS_FAILED).map((l) => [l.failures, l.repeats]),
      [
        [1, undefined],
        [6, 4],
        [2, 2],
      ],
    );
    assert.equal(logged(TYPE_FAILED).length, 3 * types);
    up();
    clock += 1_000;
    await emr.pollOnce();
    assert.deepEqual(
      logged('poll passes succeed again').map((l) => [l.failures, l.repeats, l.failingMs]),
      [
        [6, 0, 65_000],
        [3, 0, 61_000],
      ],
    );

    // Down again after an hour of passes that worked: a new outage, seen at once.
    clock += 3_600_000;
    await emr.pollOnce();
    down();
    await assert.rejects(emr.pollOnce());
    assert.equal(logged(PASS_FAILED).length, 4);
    assert.deepEqual([logged(PASS_FAILED)[3]?.failures, logged(PASS_FAILED)[3]?.repeats], [1, 0]);
    assert.equal(logged(TYPE_FAILED).length, 4 * types);
  });

  it('says nothing of passes succeeding again when a pass after failures is cut short by shutdown', async () => {
    const emr = poller();
    down();
    await assert.rejects(emr.pollOnce());
    up();
    // The bridge stops while the next pass reads its first page: that page is read, no other.
    proxy.rules.push(() => {
      emr.stop();
      return undefined;
    });
    await emr.pollOnce();
    assert.equal(logged('poll pass done').length, 1, 'the stopped pass ran');
    assert.deepEqual(logged('poll passes succeed again'), []);
    assert.equal(emr.status.consecutiveFailures, 1, 'a stopped pass is no success');
  });

  it('gives each source its own count: one logged failing says nothing of another', async () => {
    const emr = poller();
    const other = poller('other-emr');
    down();
    await assert.rejects(emr.pollOnce());
    await assert.rejects(other.pollOnce());
    await assert.rejects(emr.pollOnce());
    assert.deepEqual(
      logged(PASS_FAILED).map((l) => l.source),
      [SOURCE_ID, 'other-emr'],
    );
  });

  it('logs failed catch-up polls once a minute with the repeats, and one line when one succeeds', async () => {
    const emr = poller();
    const source = h.bridge.sources[0];
    assert.ok(source);
    const inbox = fhirInbox(h.bridge.ledger.inbox);
    const processor = new InboxProcessor({
      inbox,
      meta: h.bridge.ledger,
      logger,
      now: () => clock,
      sources: [
        {
          id: SOURCE_ID,
          client: source.client,
          pipeline: source.pipeline,
          catchUp: () => emr.pollOnce(),
          polled: true,
        },
      ],
    });
    const CATCH_UP_FAILED = 'catch-up poll failed; will retry';
    down();
    // A ping: the EMR says something changed without saying what, so the source is polled.
    inbox.add(SOURCE_ID, { kind: 'ping', style: 'hapi-empty' }, clock, true);
    await processor.processOnce();
    // Retried after 1 s, 2 s, 4 s, 8 s and 16 s: six failures within the first minute.
    for (const wait of [1_000, 2_000, 4_000, 8_000, 16_000]) {
      clock += wait;
      await processor.processOnce();
    }
    assert.equal(emr.status.consecutiveFailures, 6, 'every catch-up poll was tried');
    const failed = logged(CATCH_UP_FAILED);
    assert.equal(failed.length, 1, 'six failures within a minute: one line');
    assert.equal(failed[0]?.level, 'warn');
    assert.equal(failed[0]?.source, SOURCE_ID);
    assert.equal(failed[0]?.failures, 1);
    assert.equal(logged(PASS_FAILED).length, 1);

    clock += 32_000;
    await processor.processOnce();
    assert.deepEqual(
      logged(CATCH_UP_FAILED).map((l) => [l.failures, l.repeats]),
      [
        [1, undefined],
        [7, 5],
      ],
    );

    up();
    clock += 64_000;
    await processor.processOnce();
    const recovered = logged('catch-up polls succeed again');
    assert.equal(recovered.length, 1);
    assert.equal(recovered[0]?.source, SOURCE_ID);
    assert.equal(recovered[0]?.failures, 7);
    assert.equal(
      h.bridge.ledger.getMeta(`subscription:${SOURCE_ID}:catchUpOwed`),
      undefined,
      'the catch-up is no longer owed',
    );
    assert.equal(logged('poll passes succeed again').length, 1);
    await processor.stop();
  });
});

describe('a DHIS2 source that cannot be read, pass after pass', () => {
  let proxy: FaultProxy;
  let h: Dhis2Harness;
  const lines: Line[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  before(async () => {
    ({ proxy, h } = await startDhis2HarnessBehindProxy({ births: 2, deaths: 0, writeBack: false }));
  });
  after(async () => {
    await h?.close();
    await proxy?.close();
  });

  it('logs the first failure at once, then once a minute with the repeats, and one line when passes succeed again', async () => {
    const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
    assert.ok(source);
    let clock = Date.now();
    const poller = new Dhis2Poller({
      sourceId: source.settings.id,
      client: new Dhis2Client(source.settings, { logger: silentLogger, attempts: 1 }),
      pipeline: source.pipeline,
      cursors: h.bridge.ledger,
      dhis2: dhis2SettingsOf(source.settings),
      poll: source.settings.poll,
      logger,
      now: () => clock,
    });
    const PASS_FAILED = 'poll pass failed; the watermark stays where it was';
    proxy.rules.push(() => answerStatus(503));
    for (let pass = 1; pass <= 4; pass++) await assert.rejects(poller.pollOnce());
    assert.equal(poller.status.consecutiveFailures, 4);
    assert.deepEqual(
      logged(PASS_FAILED).map((l) => [l.level, l.component, l.source, l.failures, l.repeats]),
      [['warn', 'dhis2-poller', BIRTHS_SOURCE, 1, undefined]],
    );
    clock += 60_000;
    await assert.rejects(poller.pollOnce());
    assert.deepEqual(
      logged(PASS_FAILED).map((l) => [l.failures, l.repeats]),
      [
        [1, undefined],
        [5, 3],
      ],
    );
    proxy.rules.length = 0;
    await poller.pollOnce();
    assert.deepEqual(
      logged('poll passes succeed again').map((l) => [l.component, l.source, l.failures, l.repeats]),
      [['dhis2-poller', BIRTHS_SOURCE, 5, 0]],
    );
  });

  it('says nothing of passes succeeding again when a pass after failures is cut short by shutdown', async () => {
    const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
    assert.ok(source);
    lines.length = 0;
    const poller = new Dhis2Poller({
      sourceId: source.settings.id,
      client: new Dhis2Client(source.settings, { logger: silentLogger, attempts: 1 }),
      pipeline: source.pipeline,
      cursors: h.bridge.ledger,
      dhis2: dhis2SettingsOf(source.settings),
      poll: source.settings.poll,
      logger,
    });
    proxy.rules.push(() => answerStatus(503));
    await assert.rejects(poller.pollOnce());
    proxy.rules.length = 0;
    // The bridge stops while the next pass reads its first page of tracked entities.
    proxy.rules.push((req) => {
      if (req.url?.includes('/trackedEntities')) poller.stop();
      return undefined;
    });
    try {
      await poller.pollOnce();
    } finally {
      proxy.rules.length = 0;
    }
    assert.equal(logged('poll pass done').length, 1, 'the stopped pass ran');
    assert.deepEqual(logged('poll passes succeed again'), []);
    assert.equal(poller.status.consecutiveFailures, 1, 'a stopped pass is no success');
  });
});
