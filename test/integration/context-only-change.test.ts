// A correction to a record of a birth's context only (the mother, an observation), the child's own record
// unchanged, over HTTP against the FHIR sandbox, the DHIS2 simulator and the OpenCRVS simulator. What
// docs/deployment.md (§7, "A record whose content changed …") and docs/dhis2.md say is seen, and what is not:
// - waiting to be sent, the worker's recheck maps the birth again with fresh reads: the correction goes out;
// - delivered, a poll sees a correction to a record the mapping *searches* for by the child (a RelatedPerson,
//   an Observation of the child) and counts an update after notification; one to a record it only *reads*
//   by reference (the mother's own Patient, a DHIS2 mother's tracked entity) names no child, and is seen
//   only when the child is read again (a change to it, or `sync --once --since`). The "not seen" assertions
//   record that limit as docs/mappings.md ("Which changes a poll sees") states it: a reverse lookup from such
//   a record to the rows that read it would change both.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Observation, Patient, RelatedPerson, Resource } from '@medplum/fhirtypes';
import { Bridge } from '../../src/app.js';
import { configFromObject } from '../../src/config/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ATTRIBUTES, CHILD_PROGRAMME, DEFAULT_SANDBOX_AUTH } from '../../src/sandbox/dhis2/index.js';
import type { TrackedEntity } from '../../src/sandbox/dhis2/types.js';
import {
  birthResources,
  notifiedDeclaration,
  type Simulators,
  sleep,
  startSimulators,
} from './helpers/bridge-harness.js';
import { BIRTHS_SOURCE, type Dhis2Harness, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

const CORRECTED = { use: 'official' as const, family: 'Corrected', given: ['Amended'] };
const correctedName = { firstname: 'Amended', surname: 'Corrected' };

const byType = <T extends Resource>(resources: Resource[], type: T['resourceType'], suffix: string): T => {
  const found = resources.find((r) => r.resourceType === type && r.id?.endsWith(suffix) === true);
  assert.ok(found, `${type} *${suffix}`);
  return found as T;
};

/**
 * Birth `i` as the sandbox writes it; `mother: 'patient'` leaves out the RelatedPerson, so the mapping takes
 * the mother from her own Patient, read through the maternity encounter the birth encounter is part of.
 */
function birth(i: number, mother: 'relatedPerson' | 'patient'): Resource[] {
  const all = birthResources(i);
  return mother === 'patient' ? all.filter((r) => r.resourceType !== 'RelatedPerson') : all;
}

/** A bridge on the simulators' ledger (no schedule, no worker): stopped and started again as `serve` would be. */
async function bridgeOn(sims: Simulators, delivery: Record<string, unknown>): Promise<Bridge> {
  const object = sims.configObject({ delivery });
  const bridge = new Bridge(configFromObject(object), {
    logger: silentLogger,
    schedule: false,
    http: false,
    worker: false,
  });
  await bridge.start();
  return bridge;
}

async function pollOnce(bridge: Bridge) {
  const poller = bridge.sources[0]?.poller;
  assert.ok(poller);
  return poller.pollOnce();
}

async function onlyEvent(sims: Simulators) {
  const events = await sims.sim.control.events();
  assert.equal(events.length, 1, 'one OpenCRVS event');
  const [event] = events;
  assert.ok(event);
  return event;
}

describe('FHIR: a correction to a record of the context only, the child unchanged', () => {
  const waiting = [
    { mother: 'patient', recheckAfterSeconds: 1 },
    { mother: 'relatedPerson', recheckAfterSeconds: 1 },
    { mother: 'patient', recheckAfterSeconds: 0 },
  ] as const;
  for (const { mother, recheckAfterSeconds } of waiting) {
    const record = mother === 'patient' ? 'Patient' : 'RelatedPerson';
    const title =
      recheckAfterSeconds > 0
        ? `waiting to be sent (settleSeconds), the mother's corrected ${record} goes out: the recheck reads it`
        : `with recheckAfterSeconds 0, the waiting birth goes out with the mother's ${record} as first polled`;
    it(title, async () => {
      const sims = await startSimulators();
      const bridge = await bridgeOn(sims, { settleSeconds: 1, recheckAfterSeconds });
      try {
        const resources = birth(0, mother);
        for (const r of resources) await sims.fhir.upsert(r);
        await pollOnce(bridge);
        const [row] = bridge.ledger.list({ limit: 10 });
        assert.equal(row?.state, 'pending');
        if (mother === 'patient') {
          const motherPatient = byType<Patient>(resources, 'Patient', '-mother');
          await sims.fhir.upsert({ ...motherPatient, name: [CORRECTED] });
        } else {
          const rp = byType<RelatedPerson>(resources, 'RelatedPerson', '-mother-rp');
          await sims.fhir.upsert({ ...rp, name: [CORRECTED] });
        }
        // A poll between the correction and the send: the RelatedPerson names the child, who is mapped again
        // (the waiting payload replaced); the mother's Patient names no child, and the payload stays.
        await pollOnce(bridge);
        const polled = bridge.ledger.get(row.id);
        if (mother === 'patient') assert.equal(polled?.payloadHash, row.payloadHash);
        else assert.notEqual(polled?.payloadHash, row.payloadHash);
        await sleep(1_100);
        await bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
        assert.equal(bridge.ledger.get(row.id)?.state, 'delivered');
        const sent = notifiedDeclaration(await onlyEvent(sims))['mother.name'];
        if (recheckAfterSeconds > 0) assert.deepEqual(sent, correctedName);
        else assert.notDeepEqual(sent, correctedName);
      } finally {
        await bridge.stop();
        await sims.close();
      }
    });
  }

  it('delivered, a corrected RelatedPerson or Observation of the child counts an update after notification', async () => {
    const sims = await startSimulators();
    const bridge = await bridgeOn(sims, {});
    try {
      const resources = birth(1, 'relatedPerson');
      for (const r of resources) await sims.fhir.upsert(r);
      assert.ok((await bridge.syncOnce()).ok);
      const rp = byType<RelatedPerson>(resources, 'RelatedPerson', '-mother-rp');
      await sims.fhir.upsert({ ...rp, name: [CORRECTED] });
      const renamed = await bridge.syncOnce();
      assert.equal(renamed.report.mapped['updated-after-notification'], 1, 'the RelatedPerson names the child');
      const weight = byType<Observation>(resources, 'Observation', '-weight');
      assert.ok(weight.valueQuantity);
      await sims.fhir.upsert({ ...weight, valueQuantity: { ...weight.valueQuantity, value: 3210 } });
      const reweighed = await bridge.syncOnce();
      assert.equal(reweighed.report.mapped['updated-after-notification'], 1, 'the Observation names the child');
      const [row] = bridge.ledger.list({ limit: 10 });
      assert.equal(row?.updatesAfterNotification, 2);
      await onlyEvent(sims);
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });

  it("delivered, the mother's own Patient corrected alone is not seen by a poll; sync --since reads the child again and counts it", async () => {
    const sims = await startSimulators();
    let bridge = await bridgeOn(sims, {});
    try {
      const resources = birth(2, 'patient');
      for (const r of resources) await sims.fhir.upsert(r);
      assert.ok((await bridge.syncOnce()).ok);
      const event = await onlyEvent(sims);
      assert.notDeepEqual(notifiedDeclaration(event)['mother.name'], correctedName);
      const motherPatient = byType<Patient>(resources, 'Patient', '-mother');
      await sims.fhir.upsert({ ...motherPatient, name: [CORRECTED] });
      // The mother's Patient is read (Patient is the subject type) but is no birth, and points at no child.
      const polled = await bridge.syncOnce();
      assert.equal(polled.report.mapped['updated-after-notification'], 0);
      assert.equal(bridge.ledger.list({ limit: 10 })[0]?.updatesAfterNotification, 0);

      // The workaround the docs give: stop serve, read the period again, start serve.
      await bridge.stop();
      bridge = await bridgeOn(sims, {});
      const reread = await bridge.syncOnce(undefined, { since: '2020-01-01' });
      assert.equal(reread.report.mapped['updated-after-notification'], 1);
      const [row] = bridge.ledger.list({ limit: 10 });
      assert.equal(row?.updatesAfterNotification, 1);
      await onlyEvent(sims);
    } finally {
      await bridge.stop();
      await sims.close();
    }
  });
});

/** Posts the mother's tracked entity with her first name corrected, as a DHIS2 user saving her profile does. */
async function correctMother(h: Dhis2Harness, motherUid: string): Promise<void> {
  const mother = h.seeded.find((te) => te.trackedEntity === motherUid);
  assert.ok(mother);
  const attributes = (mother.attributes ?? []).map((a) =>
    a.attribute === ATTRIBUTES.firstName ? { ...a, value: 'Amended' } : a,
  );
  const res = await fetch(`${h.dhis2.baseUrl}/api/tracker?async=false`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `ApiToken ${DEFAULT_SANDBOX_AUTH.pat}` },
    body: JSON.stringify({
      trackedEntities: [
        { trackedEntity: motherUid, trackedEntityType: mother.trackedEntityType, orgUnit: mother.orgUnit, attributes },
      ],
    }),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, await res.text());
}

function motherOf(child: TrackedEntity): string {
  const rel = child.relationships?.[0];
  const uid = rel?.to?.trackedEntity?.trackedEntity;
  assert.ok(uid, 'the demo child has a relationship to its mother');
  return uid;
}

async function motherName(h: Dhis2Harness): Promise<unknown> {
  const events = await h.events();
  assert.equal(events.length, 1, 'one OpenCRVS event');
  const [event] = events;
  assert.ok(event);
  const name = notifiedDeclaration(event)['mother.name'] as { firstname?: string } | undefined;
  return name?.firstname;
}

describe("DHIS2: a correction to the mother's tracked entity only, the child unchanged", () => {
  it('waiting to be sent (settleSeconds), the recheck reads her again and the corrected name goes out', async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      writeBack: false,
      delivery: { settleSeconds: 1, recheckAfterSeconds: 1 },
    });
    try {
      const [child] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child?.trackedEntity);
      const source = h.bridge.dhis2Sources.find((s) => s.settings.id === BIRTHS_SOURCE);
      assert.ok(source);
      await source.poller.pollOnce();
      const [row] = h.rows();
      assert.equal(row?.state, 'pending');
      await correctMother(h, motherOf(child));
      await sleep(1_100);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.equal(h.bridge.ledger.get(row.id)?.state, 'delivered');
      assert.equal(await motherName(h), 'Amended');
    } finally {
      await h.close();
    }
  });

  it('delivered, a poll does not see her correction (she is not in the programme); sync --since counts it', async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 0, writeBack: false });
    let next: Bridge | undefined;
    try {
      const [child] = enrolledIn(h.seeded, CHILD_PROGRAMME);
      assert.ok(child?.trackedEntity);
      assert.ok((await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 })).ok);
      assert.notEqual(await motherName(h), 'Amended');
      await correctMother(h, motherOf(child));
      const polled = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000 });
      assert.equal(polled.report.subjects, 0, 'no tracked entity of the programme changed');
      assert.equal(h.rows()[0]?.updatesAfterNotification, 0);

      // The workaround the docs give: stop serve, read the period again, start serve.
      await h.bridge.stop();
      next = new Bridge(h.config, { logger: silentLogger, schedule: false, http: false, worker: false });
      await next.start();
      const reread = await next.syncOnce([BIRTHS_SOURCE], { timeoutMs: 30_000, since: '2026-01-01T00:00:00.000' });
      assert.equal(reread.report.mapped['updated-after-notification'], 1);
      assert.equal(next.ledger.list({ limit: 10 })[0]?.updatesAfterNotification, 1);
      assert.equal((await h.events()).length, 1);
    } finally {
      await next?.stop();
      await h.close();
    }
  });
});
