// A DHIS2 birth an operator dismissed, read again after the bridge maps records otherwise: it stays
// dismissed while the tracked entity is what it was. A correction of the child's attributes, which does
// not move the birth event (the row's source version), brings it back as before.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ATTRIBUTES, CHILD_PROGRAMME, DEFAULT_SANDBOX_AUTH } from '../../src/sandbox/dhis2/index.js';
import { BIRTHS_SOURCE, type Dhis2Harness, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

const BASIC = `Basic ${Buffer.from(`${DEFAULT_SANDBOX_AUTH.username}:${DEFAULT_SANDBOX_AUTH.password}`).toString('base64')}`;

/** The NOTIFYs OpenCRVS received (each is Requested, then decided by the country configuration). */
async function notifies(h: Dhis2Harness): Promise<number> {
  return (await h.events()).flatMap((e) => e.actions.filter((a) => a.type === 'NOTIFY' && a.status === 'Requested'))
    .length;
}

describe('DHIS2: a dismissed row read again', () => {
  it('stays dismissed when only the mapping changed, and comes back when an attribute was corrected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dhis2-dismiss-'));
    const mappingFile = join(dir, 'birth.yaml');
    const shipped = readFileSync(new URL('../../mappings/birth.dhis2.yaml', import.meta.url), 'utf8');
    writeFileSync(mappingFile, shipped);
    const h = await startDhis2Harness({
      births: 2,
      deaths: 0,
      writeBack: false,
      configure: ({ sources }) => {
        const births = sources.find((s) => s.id === BIRTHS_SOURCE);
        assert.ok(births);
        births.mappings = [mappingFile];
      },
    });
    let next: Bridge | undefined;
    try {
      const [child0, child1] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child0?.trackedEntity && child1?.trackedEntity);
      const key0 = `TrackedEntity/${child0.trackedEntity}`;
      const key1 = `TrackedEntity/${child1.trackedEntity}`;
      await h.sim.control.configure({ actionConfirmation: 'reject' });
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      await h.sim.control.configure({ actionConfirmation: 'accept' });
      const byKey = (ledger: Bridge['ledger']) =>
        new Map(ledger.list({ limit: 100 }).map((row) => [row.subjectKey, row]));
      const dead = byKey(h.bridge.ledger);
      const ids = [key0, key1].map((key) => {
        const row = dead.get(key);
        assert.equal(row?.state, 'dead');
        return row.id;
      });
      assert.deepEqual(h.bridge.ledger.dismiss(ids, 'registered by hand').dismissed, ids);
      const sent = await notifies(h);
      await h.bridge.stop();

      // The mapping now leaves every birth weight out (a range no weight fits), and a clinician corrects
      // child 1's first name on the tracked entity: its birth event is untouched.
      const narrowed = shipped.replace(/^ {4}max: 6\n/m, '    max: 0.2\n');
      assert.notEqual(narrowed, shipped, 'the range was found in the shipped mapping');
      writeFileSync(mappingFile, narrowed);
      const corrected = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false&importStrategy=UPDATE`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: BASIC },
        body: JSON.stringify({
          trackedEntities: [
            {
              trackedEntity: child1.trackedEntity,
              trackedEntityType: child1.trackedEntityType,
              orgUnit: child1.orgUnit,
              attributes: [{ attribute: ATTRIBUTES.firstName, value: 'Corrected' }],
            },
          ],
        }),
      });
      assert.equal(corrected.status, 200, await corrected.text());

      next = new Bridge(h.config, { logger: silentLogger, schedule: false, http: false, worker: false });
      await next.start();
      await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000, since: '2026-01-01T00:00:00.000' });
      const after = byKey(next.ledger);
      assert.equal(after.get(key0)?.state, 'skipped', 'the same record: the decision stands');
      assert.equal(after.get(key0)?.skipReason, 'dismissed by an operator: registered by hand');
      assert.notEqual(after.get(key0)?.payloadHash, dead.get(key0)?.payloadHash, 'mapped otherwise');
      assert.equal(after.get(key1)?.state, 'delivered', 'its attributes changed: back to the queue, as before');
      assert.equal(after.get(key1)?.sourceVersion, dead.get(key1)?.sourceVersion, 'the birth event did not move');
      assert.equal(await notifies(h), sent + 1, 'only child 1 was sent');
    } finally {
      await next?.stop();
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
