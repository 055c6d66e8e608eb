// The bridge driven by FHIR subscription notifications only (no poll schedule): each wire style the
// sandbox speaks reaches the receiver, is stored, re-read from the source and delivered exactly once;
// duplicates change nothing; dropped notifications and heartbeat silence end in a catch-up poll.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { createLogger } from '../../src/observability/logger.js';
import type { NotifyStyle } from '../../src/sandbox/fhir/index.js';
import {
  assertDeliveredOnce,
  birthResources,
  eventsBySubject,
  type Harness,
  type HarnessOptions,
  notifiedDeclaration,
  SOURCE_ID,
  startHarness,
} from './helpers/bridge-harness.js';

const BEARER = 'subscription-bearer-secret';
const HMAC = 'medplum-hmac-secret';

const STYLES: Array<{ style: NotifyStyle; options: HarnessOptions }> = [
  { style: 'hapi-empty', options: { notify: { style: 'hapi-empty' } } },
  { style: 'hapi-payload', options: { notify: { style: 'hapi-payload' } } },
  {
    style: 'medplum',
    options: { notify: { style: 'medplum', secret: HMAC }, subscription: { hmacSecret: HMAC } },
  },
  {
    style: 'backport-id-only',
    options: {
      notify: { style: 'backport-id-only', headers: { Authorization: `Bearer ${BEARER}` }, heartbeatSeconds: 1 },
      subscription: { secret: BEARER, heartbeatSeconds: 30 },
    },
  },
];

/** Everything the sandbox sent has been answered and every stored notification processed. */
async function settle(h: Harness): Promise<void> {
  await h.fhir.emitter?.flush();
  await h.waitFor('the inbox to drain', () => h.bridge.ledger.inbox.backlog().depth === 0);
  await h.bridge.inbox.processOnce();
}

async function writeBirthsAsTransactions(h: Harness, from: number, count: number): Promise<void> {
  // One transaction per birth, as an EMR commits an encounter's resources together.
  for (let i = from; i < from + count; i++) await h.transaction(birthResources(i));
}

describe('bridge end to end by subscription', () => {
  for (const { style, options } of STYLES) {
    it(`delivers births exactly once from ${style} notifications alone`, async () => {
      const h = await startHarness(options);
      try {
        await writeBirthsAsTransactions(h, 0, 3);
        await h.waitForEvents(3);
        await settle(h);
        // Whatever was queued after the last event (trailing catch-up polls, deliveries) has finished.
        await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
        const events = await assertDeliveredOnce(h, 3);
        for (const event of events) {
          const declaration = notifiedDeclaration(event);
          assert.ok(declaration['child.weightAtBirth'], 'the record was complete when it was delivered');
          assert.ok(declaration['mother.name']);
        }
        // Only the style without detail needed polls; nothing was lost on the way.
        assert.equal(h.bridge.sources[0]?.poller.status.lastPollStartedAt !== undefined, style === 'hapi-empty');
        assert.equal(h.bridge.inbox.status(SOURCE_ID)?.gaps, 0);
      } finally {
        await h.close();
      }
    });
  }
});

describe('bridge subscription faults', () => {
  const backport = (heartbeatSeconds: number): HarnessOptions => ({
    notify: { style: 'backport-id-only', headers: { Authorization: `Bearer ${BEARER}` } },
    subscription: { secret: BEARER, heartbeatSeconds },
  });

  it('an update announced after delivery creates no second event; the row shows it, a metric counts it, the log names the row', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
    const h = await startHarness({
      notify: { style: 'medplum', secret: HMAC },
      subscription: { hmacSecret: HMAC },
      logger,
    });
    const counted = async () =>
      /bridge_updates_after_notification_total\{source="emr",event_type="birth"\} (\d+)/.exec(
        (await h.bridge.renderMetrics()).body,
      )?.[1];
    try {
      const resources = birthResources(0);
      await h.transaction(resources);
      await h.waitForEvents(1);
      await settle(h);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.equal(await counted(), '0', 'the series is there before the first update');
      assert.deepEqual(h.bridge.ledger.list({ updatedAfterNotification: true }), []);
      const child = resources.find((r) => r.resourceType === 'Patient' && r.id?.endsWith('-child'));
      assert.ok(child?.resourceType === 'Patient');
      await h.fhir.upsert({ ...child, name: [{ use: 'official', family: 'Renamed', given: ['Corrected'] }] });
      await settle(h);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      const [event] = await assertDeliveredOnce(h, 1);
      assert.ok(event);
      assert.notDeepEqual(notifiedDeclaration(event)['child.name'], { firstname: 'Corrected', surname: 'Renamed' });
      const [row] = h.rows();
      assert.equal(row?.updatesAfterNotification, 1);
      // Recorded by the inbox, which no poll pass reports: the metric, the log and the listing say it.
      assert.equal(await counted(), '1');
      assert.deepEqual(
        h.bridge.ledger.list({ updatedAfterNotification: true }).map((r) => r.id),
        [row.id],
      );
      const said = lines
        .map((line) => JSON.parse(line) as { msg?: string; rows?: number[] })
        .filter((line) => line.msg?.startsWith('source records changed after OpenCRVS was notified'));
      assert.deepEqual(
        said.map((line) => line.rows),
        [[row.id]],
      );
      assert.doesNotMatch(lines.join('\n'), /Renamed|Corrected/, 'no personal data in the log');
    } finally {
      await h.close();
    }
  });

  it('duplicate notifications change nothing', async () => {
    const h = await startHarness({ notify: { style: 'hapi-payload' } });
    try {
      h.fhir.emitter?.duplicateNext(6);
      await writeBirthsAsTransactions(h, 0, 1);
      await h.waitForEvents(1);
      await settle(h);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      await assertDeliveredOnce(h, 1);
      const [row] = h.rows();
      assert.equal(row?.updatesAfterNotification, 0);
      const stored = h.bridge.ledger.inbox.prune(Date.now() + 1);
      assert.equal(stored, 12, 'each of the 6 notifications arrived twice and was processed');
    } finally {
      await h.close();
    }
  });

  it('dropped backport notifications leave a gap in event numbers, and the catch-up poll delivers the missed birth', async () => {
    const h = await startHarness(backport(30));
    try {
      h.fhir.emitter?.dropNext(6);
      await writeBirthsAsTransactions(h, 0, 1); // every notification of birth 0 lost
      await h.fhir.emitter?.flush();
      await h.bridge.inbox.processOnce();
      assert.equal((await h.events()).length, 0, 'nothing announced birth 0');
      await writeBirthsAsTransactions(h, 1, 1); // event numbers 7…12 after 0: a gap
      await h.waitForEvents(2);
      await settle(h);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      await assertDeliveredOnce(h, 2);
      const status = h.bridge.inbox.status(SOURCE_ID);
      assert.equal(status?.gaps, 1);
      assert.match(status?.lastGapReason ?? '', /event numbers jumped from 0 to 7/);
      assert.ok((await eventsBySubject(h)).has('Patient/e2e-birth-0-child'), 'the missed birth was delivered');
    } finally {
      await h.close();
    }
  });

  it('a heartbeat that counts unseen events triggers a catch-up poll', async () => {
    const h = await startHarness(backport(30));
    try {
      h.fhir.emitter?.dropNext(6);
      await writeBirthsAsTransactions(h, 0, 1);
      await h.fhir.emitter?.sendHeartbeat();
      await h.waitForEvents(1);
      assert.match(h.bridge.inbox.status(SOURCE_ID)?.lastGapReason ?? '', /heartbeat reports 6 unseen/);
    } finally {
      await h.close();
    }
  });

  it('heartbeat silence longer than twice the period triggers a catch-up poll', async () => {
    const h = await startHarness(backport(1));
    try {
      h.fhir.emitter?.pauseHeartbeats();
      h.fhir.emitter?.dropNext(6);
      await writeBirthsAsTransactions(h, 0, 1);
      await h.fhir.emitter?.flush();
      await h.bridge.inbox.processOnce();
      // The processor checks silence every half period; more than 2 s without a word is a gap.
      await h.waitForEvents(1, 15_000);
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      await assertDeliveredOnce(h, 1);
      assert.match(h.bridge.inbox.status(SOURCE_ID)?.lastGapReason ?? '', /no notification for \d+ s/);
      // Checking again at once finds no new silence (one catch-up per silent period, not per tick).
      const gaps = h.bridge.inbox.status(SOURCE_ID)?.gaps ?? 0;
      h.bridge.inbox.checkSilence();
      assert.equal(h.bridge.inbox.status(SOURCE_ID)?.gaps, gaps);
    } finally {
      await h.close();
    }
  });
});

/** A fetal-death observation (LOINC 73811-2) about `child`: the birth mapping skips such a child. */
function fetalDeathReport(id: string, child: string): Resource {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '73811-2', display: 'Fetal death' }] },
    subject: { reference: child },
    valueBoolean: true,
  } as Resource;
}

describe('bridge subscription: deletions before delivery', () => {
  // backport-id-only names the deleted resource like any change: it is read, and a 404/410 is a delete.
  for (const style of ['hapi-payload', 'medplum', 'backport-id-only'] as const) {
    it(`${style}: a child deleted in the EMR before its birth was sent is withdrawn, not sent`, async () => {
      const notify = style === 'medplum' ? { style, secret: HMAC } : { style };
      const subscription = style === 'medplum' ? { hmacSecret: HMAC } : undefined;
      const h = await startHarness({ notify, ...(subscription ? { subscription } : {}), worker: false });
      try {
        await writeBirthsAsTransactions(h, 0, 2);
        await settle(h);
        assert.deepEqual(
          h.rows().map((r) => r.state),
          ['pending', 'pending'],
        );
        const child = h.rows()[0]?.subjectKey;
        assert.ok(child);
        const res = await fetch(`${h.fhir.baseUrl}/${child}`, { method: 'DELETE' });
        assert.ok(res.ok, `delete: HTTP ${res.status}`);
        await settle(h);
        const [gone, kept] = h.rows();
        assert.equal(gone?.state, 'skipped');
        assert.equal(gone?.skipReason, 'deleted in the source before it was sent');
        assert.equal(kept?.state, 'pending', 'the other birth is untouched');
        // The queue is delivered now: only the birth that still exists goes out.
        await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
        const events = await h.sim.control.events();
        assert.equal(events.length, 1);
        assert.equal(h.rows()[1]?.state, 'delivered');
      } finally {
        await h.close();
      }
    });

    // The report is the evidence of the exclusion, and the skipped row names the child, not the report:
    // only the report's last version, read from the EMR's history, says which record to evaluate again.
    it(`${style}: a fetal-death report deleted in the EMR lets the live birth it held back be notified`, async () => {
      const notify = style === 'medplum' ? { style, secret: HMAC } : { style };
      const subscription = style === 'medplum' ? { hmacSecret: HMAC } : undefined;
      const h = await startHarness({ notify, ...(subscription ? { subscription } : {}), worker: false });
      try {
        const birth = birthResources(0);
        const child = birth.find((r) => r.resourceType === 'Patient' && r.id?.endsWith('-child'));
        assert.ok(child?.id);
        const report = fetalDeathReport('e2e-fetal-death-report', `Patient/${child.id}`);
        await h.transaction([...birth, report]);
        await settle(h);
        assert.deepEqual(
          h.rows().map((r) => [r.subjectKey, r.state, r.skipReason]),
          [
            [
              `Patient/${child.id}`,
              'skipped',
              'fetal death (stillbirth): not a live birth, never notified as one (fetal death observation)',
            ],
          ],
        );
        const res = await fetch(`${h.fhir.baseUrl}/Observation/${report.id}`, { method: 'DELETE' });
        assert.ok(res.ok, `delete: HTTP ${res.status}`);
        await settle(h);
        assert.deepEqual(
          h.rows().map((r) => [r.subjectKey, r.state]),
          [[`Patient/${child.id}`, 'pending']],
        );
        await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
        await assertDeliveredOnce(h, 1);
      } finally {
        await h.close();
      }
    });
  }
});
