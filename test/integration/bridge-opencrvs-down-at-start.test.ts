// The bridge started while OpenCRVS cannot list its locations (down, a gateway answering 503): the routing
// table cannot be resolved. The EMR is read all the same when OpenCRVS answered for that table before (the
// ledger keeps its answers), and nothing is sent before OpenCRVS confirms the table; a bridge that never had
// an answer says which routing references it waits for.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/load.js';
import { openLedger } from '../../src/ledger/index.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { runCli } from './helpers/bridge-cli.js';
import {
  assertDeliveredOnce,
  birthResources,
  type Harness,
  ROUTING,
  sleep,
  startHarness,
  startSimulators,
  waitUntil,
} from './helpers/bridge-harness.js';

const LOCATIONS_DOWN = { faults: { errorRate: 1, errorStatus: 503, operations: ['locations' as const] } };

interface Readiness {
  status: string;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

async function readiness(bridge: Bridge): Promise<Readiness> {
  const res = await fetch(`http://127.0.0.1:${bridge.httpPort}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as Readiness;
}

/**
 * Rewrites the answers the ledger kept so that every routed office is another one (location ids are per
 * deployment: OpenCRVS set up again under the same address). Returns that office and the routed ids.
 */
function storedAnswersElsewhere(h: Harness): { elsewhere: string; routed: string[] } {
  const offices: string[] = [ROUTING.defaultOffice, ...Object.values(ROUTING.facilities).map((r) => r.office)];
  const elsewhere = h.sim.locations.find(
    (l) => l.locationType === 'CRVS_OFFICE' && !offices.includes(l.externalId ?? ''),
  );
  assert.ok(elsewhere);
  const db = new Database(h.config.store.path);
  try {
    const kept = db.prepare('SELECT COUNT(*) AS n FROM opencrvs_locations').get() as { n: number };
    assert.ok(kept.n > 0, 'the answers are kept in the ledger');
    const moved = db.prepare('UPDATE opencrvs_locations SET location_id = ? WHERE location_id = ?');
    for (const externalId of offices) moved.run(elsewhere.id, h.location(externalId).id);
  } finally {
    db.close();
  }
  return { elsewhere: elsewhere.id, routed: offices.map((externalId) => h.location(externalId).id) };
}

/**
 * A location list slower than any pass here, within opencrvs.timeoutMs: a pass that ends at its --timeout
 * ended without that answer, whatever the machine's load, and a call it ended is the bridge's doing, not
 * its client's own timeout.
 */
const SLOW = {
  timeoutMs: 120_000,
  locations: { faults: { delayMs: 60_000, operations: ['locations' as const] } },
};

/**
 * Until OpenCRVS has seen at least `n` location calls closed by the bridge before it answered them (the
 * pass gave up on them). Bounded well within SLOW's delay: a call the pass waited for, or left to run, is
 * answered instead, and never counted.
 */
async function closedUnanswered(sim: Harness['sim'], n: number): Promise<void> {
  await waitUntil(
    `${n} location calls closed unanswered`,
    async () => ((await sim.control.abandonedRequests()).locations ?? 0) >= n,
    30_000,
  );
}

function notifiedOffices(events: Array<{ actions: Array<{ type: string; createdAtLocation?: string }> }>): string[] {
  return events.map((event) => event.actions.find((a) => a.type === 'NOTIFY')?.createdAtLocation ?? '');
}

describe('bridge: OpenCRVS cannot list its locations when the bridge starts', () => {
  for (const version of ['2.0', '1.9'] as const)
    it(`OpenCRVS ${version}: with the routing table it answered before, births are read and recorded, and delivered once when it answers`, async () => {
      const h = await startHarness({ version });
      let restarted: Bridge | undefined;
      try {
        // The first run resolved the routing table; the bridge restarts while OpenCRVS is down.
        await h.bridge.stop();
        await h.sim.control.configure(LOCATIONS_DOWN);
        restarted = new Bridge(h.config, { logger: silentLogger, schedule: true });
        const bridge = restarted;
        await bridge.start();
        assert.equal(bridge.ready, false, 'the routing table is not confirmed');
        await h.writeBirths(0, 3);
        const rows = () => bridge.ledger.list({ limit: 100 });
        await waitUntil('three births recorded', () => rows().length === 3);
        assert.deepEqual(
          rows().map((r) => r.state),
          ['pending', 'pending', 'pending'],
        );
        // The offices are the routing table's, as OpenCRVS gave them before.
        const offices = new Set([ROUTING.defaultOffice, ...Object.values(ROUTING.facilities).map((r) => r.office)]);
        const ids = [...offices].map((externalId) => h.location(externalId).id);
        for (const row of rows()) assert.ok(ids.includes(row.payload?.office ?? ''), `office of row ${row.id}`);
        const ready = await readiness(bridge);
        assert.equal(ready.status, 'not ready');
        assert.match(
          JSON.stringify(ready.checks.routing),
          /not confirmed in OpenCRVS yet; records are read and recorded/,
        );
        assert.equal((await h.events()).length, 0, 'nothing sent before OpenCRVS confirmed the routing table');

        await h.sim.control.configure({ faults: {} });
        await waitUntil('the births delivered', () => rows().every((r) => r.state === 'delivered'), 40_000);
        assert.equal(bridge.ready, true);
        await assertDeliveredOnce({ ...h, rows } as Harness, 3);
        assert.equal((await readiness(bridge)).checks.routing?.ok, true);
      } finally {
        await h.sim.control.configure({ faults: {} });
        await restarted?.stop();
        await h.close();
      }
    });

  it('credentials refused at a restart: the routing table is asked again when the token endpoint is, not every second', async () => {
    const h = await startHarness({ worker: false });
    let restarted: Bridge | undefined;
    try {
      // The first run resolved the routing table; OpenCRVS then deactivated the client.
      await h.bridge.stop();
      await h.sim.control.removeClient(h.sim.clientId);
      const tokensBefore = (await h.sim.control.requests()).token ?? 0;
      const lines: string[] = [];
      const logger = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
      restarted = new Bridge(h.config, { logger, schedule: false, http: false });
      await restarted.start();
      // Long enough for the 1 s, 2 s tries that met the token endpoint's 30 s refusal (token.ts) at once.
      await sleep(4_500);
      const routing = lines
        .map((line) => JSON.parse(line) as { level: string; msg: string })
        .filter((l) => l.msg.startsWith('routing could not be confirmed'));
      assert.equal(routing.length, 1, routing.map((l) => l.msg).join('\n'));
      assert.equal(routing[0]?.level, 'warn');
      assert.match(routing[0]?.msg ?? '', /retrying in 30 s$/);
      assert.equal((await h.sim.control.requests()).token, tokensBefore + 1, 'the token endpoint asked once');
    } finally {
      await restarted?.stop();
      await h.close();
    }
  });

  it('OpenCRVS set up again meanwhile: the births recorded on its old answers are mapped again before they are sent', async () => {
    const h = await startHarness();
    let restarted: Bridge | undefined;
    try {
      await h.bridge.stop();
      const { elsewhere, routed } = storedAnswersElsewhere(h);

      await h.sim.control.configure(LOCATIONS_DOWN);
      restarted = new Bridge(h.config, { logger: silentLogger, schedule: true });
      const bridge = restarted;
      await bridge.start();
      await h.writeBirths(0, 3);
      const rows = () => bridge.ledger.list({ limit: 100 });
      await waitUntil('three births recorded', () => rows().length === 3);
      assert.deepEqual(
        rows().map((r) => r.payload?.office),
        [elsewhere, elsewhere, elsewhere],
        'recorded on the old answers',
      );
      await h.sim.control.configure({ faults: {} });
      await waitUntil('the births delivered', () => rows().every((r) => r.state === 'delivered'), 40_000);
      const events = await assertDeliveredOnce({ ...h, rows } as Harness, 3);
      for (const office of notifiedOffices(events))
        assert.ok(routed.includes(office), 'sent to the office OpenCRVS answers now');
      for (const row of rows()) assert.ok(routed.includes(row.payload?.office ?? ''), 'and the ledger says so');
    } finally {
      await h.sim.control.configure({ faults: {} });
      await restarted?.stop();
      await h.close();
    }
  });

  it('OpenCRVS set up again, and the bridge restarted before it answered: the next process maps those births again', async () => {
    const h = await startHarness();
    let first: Bridge | undefined;
    let next: Bridge | undefined;
    try {
      await h.bridge.stop();
      const { elsewhere, routed } = storedAnswersElsewhere(h);
      await h.sim.control.configure(LOCATIONS_DOWN);
      first = new Bridge(h.config, { logger: silentLogger, schedule: true });
      const recording = first;
      await recording.start();
      await h.writeBirths(0, 3);
      await waitUntil('three births recorded', () => recording.ledger.list({ limit: 100 }).length === 3);
      await recording.stop();
      first = undefined;
      // The next process finds OpenCRVS answering at once: it never ran on the old answers itself.
      await h.sim.control.configure({ faults: {} });
      next = new Bridge(h.config, { logger: silentLogger, schedule: true });
      const bridge = next;
      await bridge.start();
      const rows = () => bridge.ledger.list({ limit: 100 });
      await waitUntil('the births delivered', () => rows().every((r) => r.state === 'delivered'), 40_000);
      const events = await assertDeliveredOnce({ ...h, rows } as Harness, 3);
      assert.ok(!notifiedOffices(events).includes(elsewhere), 'no birth went to the office of the old answers');
      for (const office of notifiedOffices(events)) assert.ok(routed.includes(office));
    } finally {
      await h.sim.control.configure({ faults: {} });
      await first?.stop();
      await next?.stop();
      await h.close();
    }
  });

  it('a replay pressed as OpenCRVS comes back, before the bridge confirmed the table, sends nothing to the old answers', async () => {
    const h = await startHarness();
    let restarted: Bridge | undefined;
    try {
      await h.bridge.stop();
      const { elsewhere } = storedAnswersElsewhere(h);
      await h.sim.control.configure(LOCATIONS_DOWN);
      restarted = new Bridge(h.config, { logger: silentLogger, schedule: true });
      const bridge = restarted;
      await bridge.start();
      await h.writeBirths(0, 3);
      const rows = () => bridge.ledger.list({ limit: 100 });
      await waitUntil('three births recorded', () => rows().length === 3);
      // One of them dead, as any row an operator replays.
      const victim = rows()[0];
      assert.ok(victim);
      const claimed = bridge.ledger.claimRow(victim.id, 'test-worker');
      assert.ok(claimed);
      bridge.ledger.settle({
        id: claimed.id,
        workerId: 'test-worker',
        step: 'notify',
        startedAt: Date.now(),
        claimedAttempts: claimed.attempts,
        claimedPayloadHash: claimed.payloadHash,
        settlement: { outcome: 'dead', error: { classification: 'permanent', kind: 'bad-request', message: 'x' } },
      });
      await h.sim.control.configure({ faults: {} });
      // Replay resolves the table itself and runs the worker, before the bridge's own retry fires.
      await bridge.replay([victim.id]);
      await waitUntil('the births delivered', () => rows().every((r) => r.state === 'delivered'), 40_000);
      const events = await assertDeliveredOnce({ ...h, rows } as Harness, 3);
      assert.ok(!notifiedOffices(events).includes(elsewhere), 'no birth went to the office of the old answers');
    } finally {
      await h.sim.control.configure({ faults: {} });
      await restarted?.stop();
      await h.close();
    }
  });

  it('without an earlier answer, nothing is read and /readyz names the references it waits for; then it starts', async () => {
    const sims = await startSimulators();
    let bridge: Bridge | undefined;
    try {
      await sims.sim.control.configure(LOCATIONS_DOWN);
      bridge = new Bridge(configFromObject(sims.configObject()), { logger: silentLogger, schedule: true });
      const started = bridge;
      await started.start();
      for (const r of birthResources(0)) await sims.fhir.upsert(r);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.equal(started.ledger.list().length, 0, 'no record mapped without offices');
      const routing = JSON.stringify((await readiness(started)).checks.routing);
      assert.match(routing, /not resolved in OpenCRVS yet \(routing\.defaultOffice, routing\.facilities\[/);
      assert.match(routing, /polling, notifications and delivery wait/);
      await sims.sim.control.configure({ faults: {} });
      await waitUntil('the birth delivered', () => started.ledger.list()[0]?.state === 'delivered', 40_000);
      assert.equal((await sims.sim.control.events()).length, 1);
    } finally {
      await sims.sim.control.configure({ faults: {} });
      await bridge?.stop();
      await sims.close();
    }
  });

  it('sync --once: OpenCRVS answers again while the pass reads the EMR: the routing table is asked again and the births go out in that pass', async () => {
    // The location list comes back with the pass's first search of the EMR (after the pass gave up on it).
    let upAtFirstSearch: (() => Promise<void>) | undefined;
    const h = await startHarness({
      fhirPaging: {
        beforeSearch: async () => {
          const up = upAtFirstSearch;
          upAtFirstSearch = undefined;
          await up?.();
        },
      },
    });
    let pass: Bridge | undefined;
    try {
      // An earlier run resolved the routing table: its answers are kept in the ledger.
      await h.bridge.stop();
      await h.sim.control.configure(LOCATIONS_DOWN);
      await h.writeBirths(0, 2);
      pass = new Bridge(h.config, { logger: silentLogger, http: false, schedule: false, worker: false, lease: 'sync' });
      const sync = pass;
      let cameBack = false;
      upAtFirstSearch = async () => {
        await h.sim.control.configure({ faults: {} });
        cameBack = true;
      };
      const summary = await sync.syncOnce(undefined, { timeoutMs: 8_000 });
      assert.ok(cameBack, 'OpenCRVS was down until the pass read the EMR');
      assert.equal(summary.deliverySkipped, undefined, 'the routing table was confirmed after polling');
      assert.equal(summary.delivered.length, 2, 'the births recorded on the kept answers went out in this pass');
      assert.equal(summary.ok, true, 'everything found was delivered');
      const rows = () => sync.ledger.list({ limit: 100 });
      const events = await assertDeliveredOnce({ ...h, rows } as Harness, 2);
      const routed = [ROUTING.defaultOffice, ...Object.values(ROUTING.facilities).map((r) => r.office)].map(
        (externalId) => h.location(externalId).id,
      );
      for (const office of notifiedOffices(events)) assert.ok(routed.includes(office));
    } finally {
      await h.sim.control.configure({ faults: {} });
      await pass?.stop();
      await h.close();
    }
  });

  it("sync --once: the routing table asked again after polling is given up on at the pass's --timeout: its calls are cut off, and mark nothing", async () => {
    // At the pass's first search of the EMR, the location list answers again, but slowly: each call within
    // opencrvs.timeoutMs, yet later than the pass's deadline. Before, that last lookup had no deadline
    // of its own and held the pass until it answered (one such wait per group of references); then, given
    // up on, its calls ran on to their answer or timeout.
    const PASS_MS = 4_000;
    let slowAtFirstSearch: (() => Promise<void>) | undefined;
    const h = await startHarness({
      opencrvs: { timeoutMs: SLOW.timeoutMs },
      fhirPaging: {
        beforeSearch: async () => {
          const slow = slowAtFirstSearch;
          slowAtFirstSearch = undefined;
          await slow?.();
        },
      },
    });
    let pass: Bridge | undefined;
    try {
      await h.bridge.stop();
      await h.sim.control.configure(LOCATIONS_DOWN);
      await h.writeBirths(0, 1);
      pass = new Bridge(h.config, { logger: silentLogger, http: false, schedule: false, worker: false, lease: 'sync' });
      const sync = pass;
      slowAtFirstSearch = () => h.sim.control.configure(SLOW.locations);
      const summary = await sync.syncOnce(undefined, { timeoutMs: PASS_MS });
      assert.equal(slowAtFirstSearch, undefined, 'the location list turned slow when the pass read the EMR');
      assert.match(summary.deliverySkipped ?? '', /no answer within the pass's --timeout/);
      assert.equal(summary.delivered.length, 0);
      // The pass ended without their answer: OpenCRVS sees the calls given up on closed before it answered
      // them (the bridge still running: not its client closing at stop).
      await closedUnanswered(h.sim, 1);
      assert.equal(sync.ready, false, 'a lookup given up on marked nothing ready');
    } finally {
      await h.sim.control.configure({ faults: {} });
      await pass?.stop();
      await h.close();
    }
  });

  for (const version of ['2.0', '1.9'] as const)
    it(`sync --once, OpenCRVS ${version}: a slow location list is cut off after a quarter of the --timeout, and the pass reads on the kept answers and ends on time`, async () => {
      // Each call answers within opencrvs.timeoutMs (5 s), but later than the pass's deadline. Before, the
      // first lookup had no deadline of its own: one such wait per group of four references (two here), and
      // its answer then let the pass go on long past its --timeout. (1.9: the gateway's v1 location API, which the
      // simulator held for no delay before.)
      const PASS_MS = 4_000;
      const h = await startHarness({ version, opencrvs: { timeoutMs: SLOW.timeoutMs } });
      let pass: Bridge | undefined;
      try {
        await h.bridge.stop();
        await h.writeBirths(0, 1);
        await h.sim.control.configure(SLOW.locations);
        pass = new Bridge(h.config, {
          logger: silentLogger,
          http: false,
          schedule: false,
          worker: false,
          lease: 'sync',
        });
        const summary = await pass.syncOnce(undefined, { timeoutMs: PASS_MS });
        assert.deepEqual(
          summary.rows.map((r) => r.state),
          ['pending'],
          'the birth was read and recorded on the kept answers',
        );
        assert.match(summary.deliverySkipped ?? '', /no answer within the pass's --timeout/);
        assert.equal(summary.delivered.length, 0);
        // The lookup before polling and the one after were both cut off, not waited for nor left to run to
        // their answer.
        await closedUnanswered(h.sim, 2);
        assert.equal(pass.ready, false);
      } finally {
        await h.sim.control.configure({ faults: {} });
        await pass?.stop();
        await h.close();
      }
    });

  it('sync --once without kept answers: a slow location list fails the pass at its --timeout, its calls cut off', async () => {
    const PASS_MS = 2_000;
    const sims = await startSimulators();
    let pass: Bridge | undefined;
    try {
      await sims.sim.control.configure(SLOW.locations);
      pass = new Bridge(configFromObject(sims.configObject({ opencrvs: { timeoutMs: SLOW.timeoutMs } })), {
        logger: silentLogger,
        http: false,
        schedule: false,
        worker: false,
        lease: 'sync',
      });
      const sync = pass;
      await assert.rejects(sync.syncOnce(undefined, { timeoutMs: PASS_MS }), /no answer within the pass's --timeout/);
      await closedUnanswered(sims.sim, 1);
      assert.equal(sync.ready, false);
    } finally {
      await sims.sim.control.configure({ faults: {} });
      await pass?.stop();
      await sims.close();
    }
  });

  it('sync --once: a pass records the births on the answers kept and sends nothing; the next pass OpenCRVS answers delivers them once', async () => {
    const sims = await startSimulators();
    try {
      const config = join(sims.dir, 'bridge.yaml');
      writeFileSync(config, stringify(sims.configObject()));
      // An earlier pass resolved the routing table: its answers are kept in the ledger.
      const first = await runCli(['sync', '--once', '--config', config]);
      assert.equal(first.code, 0, first.stderr || first.stdout);

      await sims.sim.control.configure(LOCATIONS_DOWN);
      for (const i of [0, 1]) for (const r of birthResources(i)) await sims.fhir.upsert(r);
      const down = await runCli(['sync', '--once', '--config', config, '--json', '--timeout', '8']);
      assert.equal(down.code, 1, down.stderr || down.stdout);
      assert.notEqual(down.stdout, '', `the pass ran and printed its summary (${down.stderr.slice(0, 300)})`);
      const summary = JSON.parse(down.stdout);
      assert.equal(summary.ok, false);
      assert.match(summary.deliverySkipped, /OpenCRVS could not confirm the offices and facilities routed to/);
      assert.deepEqual(
        summary.events.map((e: { state: string }) => e.state),
        ['pending', 'pending'],
      );
      assert.deepEqual(summary.delivered, []);
      assert.equal((await sims.sim.control.events()).length, 0, 'nothing sent to an unconfirmed office');
      const routed = [ROUTING.defaultOffice, ...Object.values(ROUTING.facilities).map((r) => r.office)].map(
        (externalId) => sims.sim.locations.find((l) => l.externalId === externalId)?.id,
      );
      const ledger = openLedger(join(sims.dir, 'bridge.db'));
      try {
        for (const row of ledger.list({ limit: 100 })) {
          assert.ok(routed.includes(row.payload?.office), `row ${row.id} has its office as OpenCRVS gave it before`);
          assert.ok(row.payload?.officeUnchecked, `row ${row.id} is marked to be checked before it is sent`);
        }
      } finally {
        ledger.close();
      }

      // Without --json the summary says why, and the result line gives that reason alone.
      const again = await runCli(['sync', '--once', '--config', config, '--timeout', '8']);
      assert.equal(again.code, 1, again.stderr || again.stdout);
      assert.match(again.stdout, /DELIVERY SKIPPED: OpenCRVS could not confirm the offices and facilities routed to/);
      assert.match(again.stdout, /result: delivery skipped: OpenCRVS could not confirm the routing table\n$/);

      await sims.sim.control.configure({ faults: {} });
      const back = await runCli(['sync', '--once', '--config', config, '--json']);
      assert.equal(back.code, 0, back.stderr || back.stdout);
      const delivered = JSON.parse(back.stdout);
      assert.equal(delivered.deliverySkipped, null);
      assert.equal(delivered.delivered.length, 2, 'the births recorded while OpenCRVS was down');
      const events = await sims.sim.control.events();
      assert.equal(events.length, 2);
      for (const event of events)
        assert.equal(event.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Accepted').length, 1);
      for (const office of notifiedOffices(events)) assert.ok(routed.includes(office));
      const last = await runCli(['sync', '--once', '--config', config]);
      assert.equal(last.code, 0, last.stderr || last.stdout);
      assert.equal((await sims.sim.control.events()).length, 2, 'nothing sent twice');
    } finally {
      await sims.sim.control.configure({ faults: {} });
      await sims.close();
    }
  });
});
