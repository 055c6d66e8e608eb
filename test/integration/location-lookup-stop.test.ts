// A stop (SIGTERM) while OpenCRVS holds the routing table's location lookups (each call within opencrvs.timeoutMs,
// here two minutes): the lookups end as the stop begins. Serve's start-up (resolveLocationsUntilReady) and a
// replay (which asks for the table first) held them until the stop's last step closed the OpenCRVS client:
// after the listeners' close (up to 5 s for a request being received, or for that admin replay itself) and the
// worker's drain (up to 30 s).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type Simulators, startSimulators, waitUntil } from './helpers/bridge-harness.js';

/** How long OpenCRVS holds a location lookup, and the bridge waits for one: far past the tests' own timeout. */
const LOOKUP_MS = 120_000;

describe('a stop during a stalled location lookup', () => {
  let sims: Simulators;
  before(async () => {
    sims = await startSimulators();
  });
  after(async () => {
    await sims?.sim.control.configure({ faults: {} });
    await sims?.close();
  });

  /**
   * A bridge whose location lookup is under way (OpenCRVS received it and holds it) once `begin` has run, and
   * a request to its main listener left unfinished: the stop's close of that listener waits for it (5 s),
   * as for a notification being received, before the rest of the stop (which closes the OpenCRVS client).
   */
  async function stalled(begin: (bridge: Bridge) => Promise<unknown>, before: (bridge: Bridge) => Promise<void>) {
    const config = configFromObject(sims.configObject({ opencrvs: { timeoutMs: LOOKUP_MS }, subscription: {} }));
    const bridge = new Bridge(config, { logger: silentLogger, schedule: false, worker: false });
    await before(bridge);
    await sims.sim.control.configure({ faults: { delayMs: LOOKUP_MS, operations: ['locations'] } });
    const asked = (await sims.sim.control.requests()).locations ?? 0;
    const ended = begin(bridge).then(
      () => 'lookup',
      () => 'lookup',
    );
    await waitUntil(
      'OpenCRVS holds a location lookup',
      async () => ((await sims.sim.control.requests()).locations ?? 0) > asked,
    );
    const port = bridge.httpPort;
    assert.ok(port);
    const receiving = connect(port, '127.0.0.1');
    await once(receiving, 'connect');
    receiving.write(
      'POST /fhir-subscription/emr HTTP/1.1\r\nHost: b\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{',
    );
    return { bridge, ended, receiving };
  }

  /** Stops the bridge: what `begin` started ends with the stop, before the stop's other steps are done. */
  async function stopEndsIt(
    begin: (bridge: Bridge) => Promise<unknown>,
    before: (bridge: Bridge) => Promise<void> = async () => {},
  ): Promise<Bridge> {
    const abandoned = (await sims.sim.control.abandonedRequests()).locations ?? 0;
    const { bridge, ended, receiving } = await stalled(begin, before);
    try {
      const stopped = bridge.stop().then(() => 'stop');
      assert.equal(await Promise.race([ended, stopped]), 'lookup', 'ended by the stop, not by the client closed');
      receiving.destroy();
      await stopped;
    } finally {
      receiving.destroy();
      await sims.sim.control.configure({ faults: {} });
    }
    // Cut off (its connection closed), not left to run on.
    await waitUntil(
      'the lookup given up on is closed',
      async () => ((await sims.sim.control.abandonedRequests()).locations ?? 0) > abandoned,
      5_000,
    );
    return bridge;
  }

  it('ends the start-up waiting for the routing table', { timeout: 30_000 }, async () => {
    const bridge = await stopEndsIt((b) => b.start());
    assert.equal(bridge.ready, false);
  });

  it('ends a replay asking for the routing table first, which then replays nothing', { timeout: 30_000 }, async () => {
    let refused: unknown;
    await stopEndsIt(
      (b) =>
        b.replay('dead').catch((err: unknown) => {
          refused = err;
        }),
      // Started while OpenCRVS refused its location list (no answer kept: nothing read): the routing table
      // is not resolved, so a replay asks for it first.
      async (b) => {
        await sims.sim.control.configure({ faults: { errorRate: 1, errorStatus: 503, operations: ['locations'] } });
        await b.start();
        assert.equal(b.ready, false);
      },
    );
    assert.match(String(refused), /the bridge is stopping: nothing was replayed/);
  });
});
