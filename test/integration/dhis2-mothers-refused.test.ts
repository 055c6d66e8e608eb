// A DHIS2 that refuses the listing of the mothers by uid (`trackedEntities=…` without a programme: an older
// version, a proxy rule) fails no pass and is warned of once a reading, so it must show elsewhere: the
// gauge bridge_source_context_listing_consecutive_failures and a /readyz note. Against the DHIS2 simulator
// behind the fault proxy, with the OpenCRVS simulator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { BIRTHS_SOURCE } from './helpers/dhis2-harness.js';
import { startDhis2HarnessBehindProxy } from './helpers/dhis2-proxy.js';
import { dhis2Error, type FaultRule } from './helpers/fault-proxy.js';

/** The listing by uid with no programme (the mothers'), answered as a DHIS2 that will not list so. */
const refuseListingByUid: FaultRule = (req) => {
  const url = new URL(req.url ?? '/', 'http://proxy');
  const byUid = url.searchParams.has('trackedEntities') || url.searchParams.has('trackedEntity');
  return req.method === 'GET' &&
    url.pathname === '/api/tracker/trackedEntities' &&
    byUid &&
    !url.searchParams.has('program')
    ? dhis2Error(409, 'Either Program or Tracked entity type should be specified')
    : undefined;
};

describe('DHIS2 source: a mothers’ listing DHIS2 always refuses', () => {
  it('counts the refused passes in a gauge and notes them on /readyz, warned once, until DHIS2 answers again', async () => {
    const lines: Array<{ level: string; msg: string }> = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    const { proxy, h } = await startDhis2HarnessBehindProxy({ births: 1, deaths: 0, writeBack: false, logger });
    try {
      proxy.rules.push(refuseListingByUid);
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      const gauge = async () => {
        const { body } = await h.bridge.renderMetrics();
        const found = body.match(
          new RegExp(`^bridge_source_context_listing_consecutive_failures\\{source="${BIRTHS_SOURCE}"\\} (\\d+)$`, 'm'),
        );
        return found ? Number(found[1]) : undefined;
      };
      const note = () => {
        const check = h.bridge.readinessChecks().find((c) => c.name === `context:${BIRTHS_SOURCE}`);
        assert.ok(check?.note, 'a note: it never fails readiness');
        return check.run();
      };
      assert.equal(await gauge(), 0, 'present from start');

      for (let pass = 0; pass < 3; pass++) await source.poller.pollOnce();
      const refused = proxy.seen.filter((s) => s.status === 409);
      assert.equal(refused.length, 3, 'one refused request a pass');
      assert.equal(source.poller.status.consecutiveFailures, 0, 'the passes themselves succeed');
      assert.equal(h.rows().length, 1, 'the birth is recorded');
      assert.equal(await gauge(), 3);
      assert.match(String(await note()), /refused the listing of the mothers .* 3 passes in a row: .*HTTP 409/);
      const warned = lines.filter((l) => l.level === 'warn' && /could not be listed/.test(l.msg));
      assert.equal(warned.length, 1, 'warned once a reading, not every pass');

      proxy.rules.length = 0;
      await source.poller.pollOnce();
      assert.equal(await gauge(), 0);
      assert.equal(await note(), undefined);
      assert.equal(lines.filter((l) => /listed again/.test(l.msg)).length, 1);
    } finally {
      await h.close();
      await proxy.close();
    }
  });

  it('stops counting the refusals once no mother is left to ask, as a dismissal of her birth leaves it', async () => {
    const { proxy, h } = await startDhis2HarnessBehindProxy({ births: 1, deaths: 0, writeBack: false });
    try {
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      // The birth dies as an OpenCRVS that refuses it leaves it: only a dead row can be dismissed.
      await h.sim.control.configure({ actionConfirmation: 'reject' });
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const [row] = h.rows();
      assert.equal(row?.state, 'dead');

      proxy.rules.push(refuseListingByUid);
      for (let pass = 0; pass < 3; pass++) await source.poller.pollOnce();
      assert.equal(proxy.seen.filter((s) => s.status === 409).length, 3, 'her listing refused each pass');
      assert.equal(source.poller.contextListing.consecutiveRefusals, 3);

      // Dismissed, the birth's row asks for its mother no more: the passes after ask DHIS2 nothing to refuse.
      assert.deepEqual(h.bridge.ledger.dismiss([row.id], 'duplicate').dismissed, [row.id]);
      proxy.seen.length = 0;
      await source.poller.pollOnce();
      await source.poller.pollOnce();
      const asked = proxy.seen.filter((s) => new URL(s.url, 'http://proxy').searchParams.has('trackedEntities'));
      assert.deepEqual(asked, [], 'no listing by uid asked');
      assert.equal(source.poller.contextListing.consecutiveRefusals, 0);
      assert.equal(source.poller.contextListing.lastError, undefined);
      const check = h.bridge.readinessChecks().find((c) => c.name === `context:${BIRTHS_SOURCE}`);
      assert.equal(await check?.run(), undefined, 'no note of refusals on /readyz');
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
