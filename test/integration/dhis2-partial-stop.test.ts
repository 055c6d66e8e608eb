// A DHIS2 recheck evaluates what it read partially: it stops reading once a failure shows the source itself is
// the problem (here a proxy's page for one mother's read). The mothers' reads already under way then end at
// once, tries and all, as a FHIR source's (fhir-partial-stop.test.ts). Before, only the reads not yet asked
// were saved: each one in flight waited out sources[].timeoutMs and the client's every try (here 3 × 20 s)
// while the recheck's rows stayed locked. Against the DHIS2 simulator behind the fault proxy.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { CHILD_PROGRAMME } from '../../src/sandbox/dhis2/index.js';
import { sleep, waitUntil } from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, enrolledIn } from './helpers/dhis2-harness.js';
import { startDhis2HarnessBehindProxy } from './helpers/dhis2-proxy.js';
import { forbiddenPage } from './helpers/fault-proxy.js';

const READ = '/api/tracker/trackedEntities/';
// Far longer than the page's own tries take under any load: a read under way closed unanswered was ended by
// the recheck, not by its timeout, and a read waited out would be tried again (each try seen by the proxy).
const TIMEOUT_MS = 20_000;

describe('DHIS2 recheck: a partial evaluation that stops ends the reads under way', () => {
  it("a proxy's page for one mother's read ends the others' reads at once; the rows wait", async () => {
    const { proxy, h } = await startDhis2HarnessBehindProxy({
      births: 3,
      deaths: 0,
      writeBack: false,
      delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
      birthsSource: { timeoutMs: TIMEOUT_MS },
    });
    try {
      const births = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(births);
      await births.poller.pollOnce();
      const rows = h.rows().filter((r) => r.sourceId === BIRTHS_SOURCE);
      assert.equal(rows.length, 3);
      assert.ok(rows.every((r) => r.state === 'pending'));
      const mothers = enrolledIn(h.seeded, CHILD_PROGRAMME).map((child) => {
        const mother = child.relationships?.[0]?.to.trackedEntity?.trackedEntity;
        assert.ok(mother, 'every child has a mother');
        return mother;
      });
      const [paged, ...others] = mothers;
      assert.ok(paged && others.length === 2);
      // The other mothers' reads hang, never answered; the first mother's read meets a proxy's 403 page (the
      // source is the problem: the evaluation stops), on every try, once the others are all under way.
      const held = new Set<string>();
      const closedUnanswered: string[] = [];
      const waitingForHeld: Array<() => void> = [];
      const whenAllHeld = (then: () => void) => {
        const check = () => (held.size === others.length ? then() : waitingForHeld.push(check));
        check();
      };
      proxy.seen.length = 0; // the poll read the mothers too
      proxy.rules.push((req) => {
        const mother = mothers.find((uid) => req.method === 'GET' && req.url?.startsWith(`${READ}${uid}`));
        if (mother === undefined) return undefined;
        if (mother === paged) return (res: ServerResponse) => whenAllHeld(() => forbiddenPage()(res));
        return (res: ServerResponse) => {
          held.add(mother);
          res.on('close', () => {
            if (!res.writableEnded) closedUnanswered.push(mother);
          });
          for (const waiting of waitingForHeld.splice(0)) waiting();
        };
      });
      await sleep(1_100); // past recheckAfterSeconds
      const metPage = () => proxy.seen.some((s) => s.status === 403 && s.url.startsWith(`${READ}${paged}`));
      for (let round = 0; round < 5 && !metPage(); round++) await h.bridge.worker.processNext();

      assert.ok(metPage(), "the first mother's read met the page");
      assert.deepEqual([...held].sort(), [...others].sort(), "the other mothers' reads were under way");
      // The proxy sees a connection closed a moment after the client ended it (bounded well within a timeout).
      await waitUntil('the reads under way closed', () => closedUnanswered.length >= others.length, TIMEOUT_MS / 2);
      assert.deepEqual(closedUnanswered.sort(), [...others].sort(), 'the reads under way were ended unanswered');
      assert.equal(
        proxy.seen.filter((s) => others.some((uid) => s.url.startsWith(`${READ}${uid}`))).length,
        others.length,
        'not tried again',
      );
      // The page says nothing of the records: neither sent unchecked nor held dead; they wait (app.ts).
      for (const row of rows) assert.equal(h.rows().find((r) => r.id === row.id)?.state, 'pending');
      assert.deepEqual(await h.events(), []);
    } finally {
      await h.close();
      await proxy.close();
    }
  });
});
