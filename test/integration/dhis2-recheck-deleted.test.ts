// A DHIS2 recheck (the worker's before a first send, a `replay --dead`'s reading) that finds many tracked
// entities deleted records each deletion in a transaction of its own, with a turn of the event loop between
// them: back to back, they held serve's event loop for hundreds of ms. Against the DHIS2 simulator, in
// which every waiting birth's tracked entity is deleted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SANDBOX_AUTH } from '../../src/sandbox/dhis2/index.js';
import { BIRTHS_SOURCE, startDhis2Harness } from './helpers/dhis2-harness.js';

const GONE = 20;

describe('bridge: tracked entities a DHIS2 recheck finds deleted', () => {
  it('withdraws each unsent row, with turns of the event loop between the deletions', async () => {
    const h = await startDhis2Harness({ births: GONE, deaths: 0, writeBack: false });
    try {
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      await source.poller.pollOnce();
      const rows = h.rows().filter((r) => r.sourceId === BIRTHS_SOURCE);
      assert.equal(rows.length, GONE);
      assert.ok(rows.every((r) => r.state === 'pending'));
      const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=DELETE`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
        body: JSON.stringify({
          trackedEntities: rows.map((r) => ({ trackedEntity: r.subjectKey.slice('TrackedEntity/'.length) })),
        }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(res.status, 200, await res.text());

      // What serve does meanwhile: a turn of the event loop, noting how many rows are withdrawn each time.
      const seen: number[] = [];
      let done = false;
      const tick = () => {
        if (done) return;
        seen.push(h.bridge.ledger.counts().reduce((n, c) => n + (c.state === 'skipped' ? c.count : 0), 0));
        setImmediate(tick);
      };
      setImmediate(tick);
      try {
        await source.recheck(rows.map((r) => r.subjectKey));
      } finally {
        done = true;
      }

      const now = new Map(h.rows().map((r) => [r.id, r]));
      assert.deepEqual(
        rows.map((r) => [now.get(r.id)?.state, now.get(r.id)?.skipReason]),
        Array(GONE).fill(['skipped', 'deleted in the source before it was sent']),
      );
      assert.ok(
        seen.some((n) => n > 0 && n < GONE),
        `the loop turned between two deletions (withdrawn rows seen: ${[...new Set(seen)].join(', ')})`,
      );
    } finally {
      await h.close();
    }
  });
});
