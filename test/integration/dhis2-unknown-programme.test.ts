// sources[].dhis2.program changed to a uid DHIS2 does not have (a typo in an edit, a programme deleted):
// DHIS2 2.41 answers a tracked entity read naming it 404 "Program with id <uid> could not be found."
// (DefaultTrackedEntityService looks the programme up before the tracked entity), as it answers for a
// deleted tracked entity. Taken for the record's 404, the recheck held every waiting birth dead, and an
// attribute write-back abandoned its job for a record gone. It is the configuration's failure instead,
// naming the key, and says nothing of any record.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import type { BridgeConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/observability/logger.js';
import { CHILD_PROGRAMME, DEATH_PROGRAMME, type Dhis2ScopedUser, ORG_UNITS } from '../../src/sandbox/dhis2/index.js';
import { Dhis2Client, Dhis2SourceError } from '../../src/sources/dhis2/client.js';
import { dhis2SettingsOf } from '../../src/sources/dhis2/settings.js';
import { sleep } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, type Dhis2Harness, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

/** A uid of the right shape that neither the simulator's metadata nor its data has. */
const UNKNOWN_PROGRAMME = 'IpHINAT79UX';
const TRACKING_ATTRIBUTE = 'SbxTrkIdAtt';

/** `config` with the births source's programme changed to UNKNOWN_PROGRAMME, as an operator's edit would. */
function withUnknownProgramme(config: BridgeConfig): BridgeConfig {
  return {
    ...config,
    sources: config.sources.map((s) =>
      s.id === BIRTHS_SOURCE ? { ...s, dhis2: { ...dhis2SettingsOf(s), program: UNKNOWN_PROGRAMME } } : s,
    ),
  };
}

/** A user of the whole country with whom DHIS2 shares the death programme's data only, not the Child Programme's. */
const DEATHS_CLERK: Dhis2ScopedUser = {
  username: 'deaths-clerk',
  password: 'Deaths-Clerk-1',
  organisationUnits: [ORG_UNITS.sierraLeone],
  programs: [DEATH_PROGRAMME],
};

/** `config` with the births source reading as DEATHS_CLERK, a user the Child Programme is not shared with. */
function asDeathsClerk(config: BridgeConfig): BridgeConfig {
  const auth = { type: 'basic' as const, username: DEATHS_CLERK.username, password: DEATHS_CLERK.password };
  return { ...config, sources: config.sources.map((s) => (s.id === BIRTHS_SOURCE ? { ...s, auth } : s)) };
}

/** A new Bridge on the same ledger with `config`, as after a restart with the edited configuration. */
async function restarted(config: BridgeConfig): Promise<Bridge> {
  const bridge = new Bridge(config, { logger: silentLogger, schedule: false, http: false, worker: false });
  await bridge.start();
  return bridge;
}

describe('DHIS2: a programme DHIS2 does not have, named by a read', () => {
  it('the read fails naming sources[].dhis2.program; it is no answer that the tracked entity is gone', async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 0, writeBack: false });
    const source = h.config.sources.find((s) => s.id === BIRTHS_SOURCE);
    assert.ok(source);
    const client = new Dhis2Client(source, { logger: silentLogger, attempts: 1 });
    try {
      const [child] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child?.trackedEntity);
      assert.ok(await client.trackedEntity(child.trackedEntity, { program: CHILD_PROGRAMME }), 'read in its programme');
      const failure = await client.trackedEntity(child.trackedEntity, { program: UNKNOWN_PROGRAMME }).then(
        () => assert.fail('taken for an answer about the tracked entity'),
        (err: unknown) => err,
      );
      assert.ok(failure instanceof Dhis2SourceError);
      assert.equal(failure.status, 404);
      assert.equal(failure.programRefused, 'missing');
      assert.equal(
        failure.message,
        `read tracked entity failed: HTTP 404 (DHIS2 has no programme ${UNKNOWN_PROGRAMME}: check sources[].dhis2.program of source ${BIRTHS_SOURCE}; run doctor)`,
      );
      // A tracked entity DHIS2 does not have, in a programme it has: still "gone" (undefined).
      assert.equal(await client.trackedEntity('AbCdEfGhIj1', { program: CHILD_PROGRAMME }), undefined);
    } finally {
      client.close();
      await h.close();
    }
  });

  it('the recheck of waiting births neither withdraws them nor holds them dead', async () => {
    const h: Dhis2Harness = await startDhis2Harness({
      births: 2,
      deaths: 0,
      writeBack: false,
      delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
    });
    let next: Bridge | undefined;
    try {
      const polled = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(polled);
      await polled.poller.pollOnce();
      const waiting = h.rows().filter((r) => r.sourceId === BIRTHS_SOURCE);
      assert.equal(waiting.length, 2);
      assert.ok(waiting.every((r) => r.state === 'pending'));
      await h.bridge.stop();

      next = await restarted(withUnknownProgramme(h.config));
      await sleep(1_100);
      await next.worker.runUntilIdle({ timeoutMs: 10_000 });
      const rows = next.ledger.list({ limit: 100 }).filter((r) => r.sourceId === BIRTHS_SOURCE);
      assert.equal(rows.length, 2);
      for (const row of rows) {
        assert.equal(row.skipReason, null, `row ${row.id} not withdrawn`);
        // The recheck's failure is the source's, as for refused credentials: the row goes out as recorded
        // (an unreadable source does not stop registrations), never given up for a record DHIS2 deleted.
        assert.equal(row.state, 'delivered', `row ${row.id}: ${row.state} (${row.lastError?.message ?? '-'})`);
      }
      assert.equal((await h.events()).length, 2);
    } finally {
      await next?.stop();
      await h.close();
    }
  });

  it('an attribute write-back is retried, not abandoned as for a tracked entity gone', async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      configure: ({ sources }) => {
        const [source] = sources;
        assert.ok(source);
        source.writeBack = { attribute: TRACKING_ATTRIBUTE, baseDelayMs: 1, maxDelayMs: 1, maxAttempts: 5 };
        sources.splice(1, 1);
      },
    });
    let next: Bridge | undefined;
    try {
      const polled = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(polled);
      await polled.poller.pollOnce();
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      const [row] = h.rows();
      assert.equal(row?.state, 'delivered');
      await h.bridge.stop();

      next = await restarted(withUnknownProgramme(h.config));
      await next.writeBacks?.drain({ timeoutMs: 10_000 });
      const [job] = next.writeBacks?.store.list() ?? [];
      assert.ok(job, 'the delivered row has its write-back job');
      assert.equal(job.outcome, null, `still to do, not ${job.outcome}`);
      assert.equal(job.attempts, 1);
      assert.match(
        job.lastError ?? '',
        new RegExp(`DHIS2 has no programme ${UNKNOWN_PROGRAMME}: check sources\\[\\]\\.dhis2\\.program`),
      );
    } finally {
      await next?.stop();
      await h.close();
    }
  });
});

// DHIS2 2.42+ answers a list or read naming a programme whose data is not shared with the user 403 "User
// has no access to program: <uid>" (dhis2-core OperationsParamsValidator.validateProgramAccess). The
// client took a list's 403 for refused credentials (and asked for them anew), a read's for a record refused.
describe("DHIS2: a programme not shared with the source's user", () => {
  it('a poll fails naming the programme and the user, not the credentials', async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      writeBack: false,
      simulator: { users: [DEATHS_CLERK] },
      configure: ({ sources }) => {
        sources[0] = {
          ...sources[0],
          auth: { type: 'basic', username: DEATHS_CLERK.username, password: DEATHS_CLERK.password },
        };
      },
    });
    try {
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 10_000 });
      assert.deepEqual(summary.failedSources, [BIRTHS_SOURCE]);
      const status = h.bridge.sourceStatuses().find((s) => s.id === BIRTHS_SOURCE);
      assert.equal(
        status?.lastError,
        `list tracked entities failed: HTTP 403 (DHIS2 does not share programme ${CHILD_PROGRAMME} with the user of sources[].auth of source ${BIRTHS_SOURCE}: give that user data read access to it in DHIS2, or check sources[].dhis2.program; run doctor)`,
      );
    } finally {
      await h.close();
    }
  });

  it('the recheck of waiting births, read as a user the programme is not shared with, holds none dead', async () => {
    const h = await startDhis2Harness({
      births: 2,
      deaths: 0,
      writeBack: false,
      delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
      simulator: { users: [DEATHS_CLERK] },
    });
    let next: Bridge | undefined;
    try {
      const polled = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(polled);
      await polled.poller.pollOnce();
      assert.equal(h.rows().filter((r) => r.state === 'pending').length, 2);
      await h.bridge.stop();

      next = await restarted(asDeathsClerk(h.config));
      await sleep(1_100);
      await next.worker.runUntilIdle({ timeoutMs: 10_000 });
      const rows = next.ledger.list({ limit: 100 }).filter((r) => r.sourceId === BIRTHS_SOURCE);
      assert.equal(rows.length, 2);
      for (const row of rows) {
        assert.equal(row.skipReason, null, `row ${row.id} not withdrawn`);
        assert.equal(row.state, 'delivered', `row ${row.id}: ${row.state} (${row.lastError?.message ?? '-'})`);
      }
    } finally {
      await next?.stop();
      await h.close();
    }
  });
});
