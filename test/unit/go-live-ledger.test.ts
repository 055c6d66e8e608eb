// poll.since is the source's go-live: events dated before it are recorded skipped. One set later than the
// source in fact ran from (an earlier version's restore advice: the backup's time) is said by doctor and at
// start, from what the ledger holds. And a `sinceDays` given to a source that already ran counts its days
// from the source's first recorded event, not from the day it is first read.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { checkStore } from '../../src/doctor/local-checks.js';
import { openLedger } from '../../src/ledger/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { beforeGoLive } from '../../src/sources/go-live.js';
import { FIRST_SYNC_CURSOR, firstSyncStart } from '../../src/sources/pass.js';
import { eventInput } from './ledger-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-go-live-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 86_400_000;
/** When the ledger first recorded an event of the source `emr`: it ran from then. */
const FIRST_SEEN = Date.parse('2025-01-10T08:00:00Z');

/** A ledger whose source `emr` recorded a birth on FIRST_SEEN (and `cursor`, its first sync start, if given). */
function ranLedger(name: string, cursor?: string): string {
  const path = join(dir, `${name}.db`);
  const ledger = openLedger(path, { now: () => FIRST_SEEN });
  try {
    ledger.recordEvent(eventInput('child-1'));
    if (cursor) ledger.setCursor('emr', FIRST_SYNC_CURSOR, cursor);
  } finally {
    ledger.close();
  }
  return path;
}

function config(path: string, poll: Record<string, unknown>) {
  return configFromObject({
    opencrvs: { domain: 'opencrvs.example.org', clientId: 'c', clientSecret: 'not-a-real-secret' },
    store: { path },
    sources: [{ id: 'emr', kind: 'fhir', baseUrl: 'http://127.0.0.1:9/fhir', poll }],
    routing: { defaultOffice: 'LHUYvwY2Aq1' },
  });
}

const goLiveChecks = (path: string, poll: Record<string, unknown>) =>
  checkStore(config(path, poll)).filter((check) => check.name.startsWith('go-live'));

describe('poll.since later than the ledger shows the source ran', () => {
  it('doctor warns, naming the source, both dates and that births dated between are skipped', () => {
    const path = ranLedger('restored');
    const [check, ...more] = goLiveChecks(path, { since: '2025-03-01' });
    assert.equal(more.length, 0);
    assert.equal(check?.name, 'go-live emr');
    assert.equal(check?.status, 'warn');
    assert.match(check?.detail ?? '', /^sources\[emr\]\.poll\.since \(2025-03-01\) is later than 2025-01-10, /);
    assert.match(check?.detail ?? '', /dated between 2025-01-10 and 2025-03-01 .* recorded skipped/);
    assert.match(check?.detail ?? '', /set it back to the source's real go-live \(2025-01-10 or earlier/);
    // The go-live on or before the day it ran from: nothing to say.
    assert.deepEqual(goLiveChecks(path, { since: '2025-01-10' }), []);
    assert.deepEqual(goLiveChecks(path, { since: '2024-06-01T00:00:00Z' }), []);
    assert.deepEqual(goLiveChecks(path, { sinceDays: 30 }), []);
  });

  it('takes the start an earlier poll.sinceDays chose as the day it ran from when earlier', () => {
    const path = ranLedger('was-since-days', '2024-12-11T08:00:00.000Z');
    const [check] = goLiveChecks(path, { since: '2025-01-05' });
    assert.match(
      check?.detail ?? '',
      /\(2025-01-05\) is later than 2024-12-11, .*\(the first sync start poll\.sinceDays chose\)/,
    );
  });

  it('says nothing for a source with nothing recorded', () => {
    const path = join(dir, 'empty.db');
    openLedger(path).close();
    assert.deepEqual(goLiveChecks(path, { since: '2025-03-01' }), []);
  });

  it('is logged when the bridge is built (serve, sync, replay), with the dates and no record data', async () => {
    const path = ranLedger('at-start');
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const bridge = new Bridge(config(path, { since: '2025-03-01' }), {
      logger,
      schedule: false,
      http: false,
      worker: false,
    });
    await bridge.stop();
    const said = lines.map((line) => JSON.parse(line)).filter((line) => String(line.msg).includes('poll.since'));
    assert.equal(said.length, 1);
    assert.equal(said[0].source, 'emr');
    assert.equal(said[0].since, '2025-03-01');
    assert.equal(said[0].ranFrom, '2025-01-10');
  });
});

describe('poll.sinceDays given to a source that already ran', () => {
  it('counts its days from the first recorded event, not from today', () => {
    const ledger = openLedger(ranLedger('since-days-later'));
    try {
      const now = FIRST_SEEN + 200 * DAY;
      const start = firstSyncStart({ sinceDays: 30 }, ledger, 'emr', now);
      assert.equal(start, new Date(FIRST_SEEN - 30 * DAY).toISOString());
      assert.equal(ledger.getCursor('emr', FIRST_SYNC_CURSOR), start, 'kept');
      // A source with nothing recorded starts from the day it first runs, as before.
      assert.equal(firstSyncStart({ sinceDays: 30 }, ledger, 'new', now), new Date(now - 30 * DAY).toISOString());
    } finally {
      ledger.close();
    }
  });
});

describe('poll.since removed while the ledger holds go-live skips', () => {
  /** A ledger of `emr` with two births skipped before the go-live 2025-03-01 and one skipped otherwise. */
  function skippedLedger(name: string): string {
    const path = ranLedger(name);
    const ledger = openLedger(path, { now: () => FIRST_SEEN });
    try {
      for (const [child, reason] of [
        ['old-1', beforeGoLive({ eventType: 'birth', eventDate: '2024-11-02' }, '2025-03-01')],
        ['old-2', beforeGoLive({ eventType: 'birth', eventDate: '2025-02-27' }, '2025-03-01')],
        ['test-1', "dismissed: a test record born before the source's go-live 2025-03-01: never sent"],
      ] as const) {
        assert.ok(reason);
        ledger.recordSkipped({
          sourceId: 'emr',
          eventType: 'birth',
          subjectKey: `Patient/${child}`,
          sourceRef: `Patient/${child}`,
          reason,
        });
      }
    } finally {
      ledger.close();
    }
    return path;
  }

  it('doctor warns with how many rows were skipped for the go-live, its date and what to do', () => {
    const path = skippedLedger('removed');
    const [check, ...more] = goLiveChecks(path, {});
    assert.equal(more.length, 0);
    assert.equal(check?.name, 'go-live emr');
    assert.equal(check?.status, 'warn');
    assert.match(
      check?.detail ?? '',
      /^sources\[emr\] has no go-live .* holds 2 row\(s\) skipped as before its go-live 2025-03-01: /,
    );
    assert.match(check?.detail ?? '', /set it back to 2025-03-01 and restart/);
    // A go-live given, even an earlier one (the pass says what it sends then), or sinceDays: nothing here.
    assert.deepEqual(
      goLiveChecks(path, { since: '2025-03-01' }).filter((c) => /no go-live/.test(c.detail)),
      [],
    );
    assert.deepEqual(goLiveChecks(path, { sinceDays: 30 }), []);
  });

  it('says nothing for a source without go-live skips', () => {
    assert.deepEqual(goLiveChecks(ranLedger('never-skipped'), {}), []);
  });

  it('is logged at start as one warn line with the count and date, no record data', async () => {
    const path = skippedLedger('removed-at-start');
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const bridge = new Bridge(config(path, {}), { logger, schedule: false, http: false, worker: false });
    await bridge.stop();
    const said = lines.map((line) => JSON.parse(line)).filter((line) => /has no go-live/.test(String(line.msg)));
    assert.equal(said.length, 1);
    assert.equal(said[0].level, 'warn');
    assert.equal(said[0].source, 'emr');
    assert.equal(said[0].goLive, '2025-03-01');
    assert.equal(said[0].goLiveSkips, 2);
    assert.doesNotMatch(JSON.stringify(said[0]), /old-1|old-2|Patient\//);
  });
});
