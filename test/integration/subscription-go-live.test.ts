// A notification is held to the source's go-live (poll.since) as a poll is: a record last changed before
// it is never read by a pass, so a notification naming one (forged, or an EMR resending old records) must
// not have it sent either; the duplicate of a paper registration is what the go-live exists to prevent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { generateBirth } from '../../src/sandbox/demo/generate.js';
import { birthResources, type Harness, SOURCE_ID, startHarness } from './helpers/bridge-harness.js';

const BEARER = 'subscription-bearer-secret';
const BEFORE_GO_LIVE = Date.parse('2020-06-01T00:00:00Z');
const GO_LIVE = '2025-01-01';

/** Everything the sandbox sent has been answered and every stored notification processed. */
async function settle(h: Harness): Promise<void> {
  await h.fhir.emitter?.flush();
  await h.waitFor('the inbox to drain', () => h.bridge.ledger.inbox.backlog().depth === 0);
  await h.bridge.inbox.processOnce();
}

function child(resources: Resource[]): Resource {
  const found = resources.find((r) => r.resourceType === 'Patient' && r.id?.endsWith('-child'));
  assert.ok(found);
  return found;
}

/** Births 0 and 1 were written in 2020; the source goes live in 2025. The EMR's clock is `clock.at`. */
async function goLiveHarness(clock: { at: number }, worker = true): Promise<Harness> {
  return startHarness({
    notify: { style: 'hapi-payload', headers: { Authorization: `Bearer ${BEARER}` } },
    subscription: { secret: BEARER },
    poll: { since: GO_LIVE },
    seed: [...birthResources(0), ...birthResources(1)],
    fhirClock: () => clock.at,
    worker,
  });
}

describe('subscription notifications and the go-live (poll.since)', () => {
  it('a record last changed before the go-live is not sent when a notification names it, as a poll does not', async () => {
    const clock = { at: BEFORE_GO_LIVE };
    const h = await goLiveHarness(clock);
    try {
      await h.bridge.sources[0]?.poller.pollOnce();
      assert.equal(h.rows().length, 0, 'the poll reads nothing from before the go-live');
      // As HAPI sends it (`PUT <endpoint>/Patient/<id>` with the resource), with the right bearer secret.
      const old = child(birthResources(0));
      const response = await fetch(`${h.receiverUrl}/Patient/${old.id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${BEARER}` },
        body: JSON.stringify(old),
        signal: AbortSignal.timeout(10_000),
      });
      await response.text();
      assert.equal(response.status, 200, 'the notification itself is well formed and authenticated');
      await settle(h);
      // A birth written after the go-live goes out as usual.
      clock.at = Date.now();
      await h.transaction(birthResources(2));
      await settle(h);
      await h.waitForEvents(1);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.deepEqual(
        h.rows().map((r) => r.subjectKey),
        ['Patient/e2e-birth-2-child'],
        'nothing is recorded for the record from before the go-live',
      );
      assert.equal((await h.events()).length, 1);
    } finally {
      await h.close();
    }
  });

  it('a child born before the go-live, its records written after it, is recorded as skipped, not sent', async () => {
    const h = await goLiveHarness({ at: Date.now() });
    try {
      // A child of 2024 met for the first time now (a vaccination visit): every resource is new to the EMR.
      await h.transaction(generateBirth(0, { prefix: 'visit', startDate: '2024-06-02' }) as Resource[]);
      await settle(h);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.deepEqual(
        h.rows().map((r) => [r.subjectKey, r.state, r.skipReason]),
        [
          [
            'Patient/visit-birth-0-child',
            'skipped',
            "born before the source's go-live 2025-01-01: registered otherwise",
          ],
        ],
      );
      assert.equal((await h.events()).length, 0);
    } finally {
      await h.close();
    }
  });

  it('a change after the go-live to an older record is evaluated, and the record it made is evaluated as any other', async () => {
    const clock = { at: BEFORE_GO_LIVE };
    const h = await goLiveHarness(clock, false);
    try {
      // The birth's weight entered after the go-live: a poll would read the Observation, so its birth counts.
      clock.at = Date.now();
      const weight = birthResources(1).find((r) => r.id === 'e2e-birth-1-weight');
      assert.ok(weight?.resourceType === 'Observation');
      await h.fhir.upsert({ ...weight, valueQuantity: { ...weight.valueQuantity, value: 3.4 } });
      await settle(h);
      const [row] = h.rows();
      assert.equal(row?.subjectKey, 'Patient/e2e-birth-1-child');
      assert.equal(row?.state, 'pending');
      assert.equal(row?.sourceRef, 'Encounter/e2e-birth-1-birth');
      // The birth encounter, its evidence, deleted: the child (last changed in 2020, but held by the ledger)
      // is evaluated again, as it would be after the go-live, and its birth is mapped from what is left.
      const res = await fetch(`${h.fhir.baseUrl}/Encounter/e2e-birth-1-birth`, {
        method: 'DELETE',
        signal: AbortSignal.timeout(10_000),
      });
      assert.ok(res.ok, `delete: HTTP ${res.status}`);
      await settle(h);
      const [after] = h.rows();
      assert.equal(h.rows().length, 1);
      assert.equal(after?.sourceRef, 'Patient/e2e-birth-1-child', 'the deleted encounter is no longer its evidence');
      assert.notEqual(after?.payloadHash, row?.payloadHash, 'mapped again without the deleted encounter');
      assert.equal(h.bridge.inbox.status(SOURCE_ID)?.gaps, 0);
    } finally {
      await h.close();
    }
  });
});
