// A poll pass and a notification's evaluation of the same birth run side by side and commit in either
// order. The pass below is held between its reads and its commit (the only seam: the pipeline's
// evaluate) while the EMR changes the child and the notification of that change is processed; then the
// pass commits what it read before. Over HTTP: FHIR sandbox, receiver, inbox, ledger, simulator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Composition, Patient, Resource } from '@medplum/fhirtypes';
import { FhirSourceError } from '../../src/sources/fhir/fhir-client.js';
import type { SourcePipeline } from '../../src/sources/pipeline.js';
import { birthResources, type Harness, type HarnessOptions, startHarness } from './helpers/bridge-harness.js';

const child = (resources: Resource[]): Patient => {
  const found = resources.find((r): r is Patient => r.resourceType === 'Patient' && r.id?.endsWith('-child') === true);
  assert.ok(found);
  return found;
};

type Evaluate = SourcePipeline['evaluate'];

/**
 * Holds the first evaluation `matches` picks, after it has read and mapped, until `release`: the only
 * seam, so that an evaluation commits after others that began later.
 */
function holdEvaluation(
  pipeline: SourcePipeline,
  matches: (args: Parameters<Evaluate>, evaluated: Awaited<ReturnType<Evaluate>>) => boolean,
) {
  const evaluate = pipeline.evaluate.bind(pipeline);
  const parked = parking();
  let first = true;
  pipeline.evaluate = async (...args) => {
    const evaluated = await evaluate(...args);
    if (first && matches(args, evaluated)) {
      first = false;
      await parked.wait();
    }
    return evaluated;
  };
  return { held: parked.held, release: parked.release };
}

/** `wait()` parks its caller until `release()`; `held` resolves once it is parked. */
function parking() {
  let release!: () => void;
  const open = new Promise<void>((resolve) => {
    release = resolve;
  });
  let reached!: () => void;
  const held = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const wait = async () => {
    reached();
    await open;
  };
  return { held, release, wait };
}

// Only a poll pass evaluates with a coverage (the third argument).
const byPoll = (args: Parameters<Evaluate>) => args[2] !== undefined;
const ofChild = (evaluated: Awaited<ReturnType<Evaluate>>) =>
  evaluated.results.some((e) => e.result.subjectRef === CHILD);

/**
 * A poll pass held after reading the birth, while `change` is made in the EMR and notified. The poll's
 * first evaluation of the child is of the Encounter page (types go in alphabetical order): Compositions
 * were read before it, and the later pages hold the child's resources at versions it saw, so it is the
 * pass's last word on the birth.
 */
async function pollHeldWhile(h: Harness, change: () => Promise<void>): Promise<void> {
  const source = h.bridge.sources[0];
  assert.ok(source);
  const { held, release } = holdEvaluation(source.pipeline, (args, evaluated) => byPoll(args) && ofChild(evaluated));
  const pass = source.poller.pollOnce();
  await Promise.race([held, pass]);
  await change();
  release();
  await pass;
}

const CHILD = `Patient/${child(birthResources(0)).id}`;

/** The EMR's fetal death report for birth 0's child: the record is a stillbirth, never a live birth. */
const fetalDeathReport = (status: Composition['status']): Composition => ({
  resourceType: 'Composition',
  id: 'e2e-birth-0-fetal-death-report',
  status,
  type: { coding: [{ system: 'http://loinc.org', code: '69045-3' }] },
  subject: { reference: CHILD },
  date: '2025-01-10T10:00:00Z',
  author: [{ display: 'Ward clerk' }],
  title: 'Fetal death report',
});

const rowOfChild0 = (h: Harness) => h.rows().find((r) => r.subjectKey === CHILD);

/** Birth 0 in the EMR, which notifies every change (no worker: the tests send when they choose). */
async function birth0Notified(options: Pick<HarnessOptions, 'fhirPaging'> = {}) {
  const h = await startHarness({
    seed: birthResources(0),
    notify: { style: 'hapi-payload' },
    worker: false,
    ...options,
  });
  const source = h.bridge.sources[0];
  if (!source) {
    await h.close();
    throw new Error('the harness has no FHIR source');
  }
  return { h, source };
}

/** Lets a held notification's evaluation commit: its older stillbirth withdraws nothing; the birth goes out once. */
async function birthStandsAfter(h: Harness, releaseNotification: () => void): Promise<void> {
  releaseNotification();
  await h.waitFor('the notification processed', () => h.bridge.ledger.inbox.backlog().depth === 0);
  assert.equal(rowOfChild0(h)?.state, 'pending', 'the older read did not withdraw the birth');
  await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
  assert.equal((await h.events()).length, 1);
}

/** The poll's first search (Compositions) waits, once armed, until released: the pass began, read nothing. */
function firstSearchGate() {
  const parked = parking();
  let armed = true;
  const beforeSearch = async (type: string) => {
    if (armed && type === 'Composition') {
      armed = false;
      await parked.wait();
    }
  };
  return { held: parked.held, release: parked.release, beforeSearch };
}

/**
 * A poll pass begun but held before its first search while a stillbirth report is notified and
 * recorded: the notification's evaluation began after the pass, and committed first. Then the report
 * is entered in error, that notification lost: only a read from now on sees the live birth.
 */
async function stillbirthWithdrawnDuringPass(before?: (h: Harness) => Promise<void>) {
  const gate = firstSearchGate();
  const { h, source } = await birth0Notified({ fhirPaging: { beforeSearch: gate.beforeSearch } });
  try {
    const pass = source.poller.pollOnce();
    await gate.held;
    await h.fhir.upsert(fetalDeathReport('final'));
    await h.waitFor('the notification recorded the stillbirth', () => rowOfChild0(h)?.state === 'skipped');
    await before?.(h);
    h.fhir.emitter?.dropNext(1);
    await h.fhir.upsert(fetalDeathReport('entered-in-error'));
    return { h, source, pass, releasePass: gate.release };
  } catch (err) {
    await h.close();
    throw err;
  }
}

describe('bridge: a poll pass and a notification evaluate one birth at once', () => {
  it('a stillbirth reported while the pass held its older read is not notified as a birth when the pass commits', async () => {
    const h = await startHarness({ seed: birthResources(0), notify: { style: 'hapi-payload' } });
    try {
      await pollHeldWhile(h, async () => {
        await h.fhir.upsert(fetalDeathReport('final'));
        await h.waitFor('the notification recorded the stillbirth', () => rowOfChild0(h)?.state === 'skipped');
      });
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.equal(rowOfChild0(h)?.state, 'skipped', 'the stillbirth stands');
      assert.match(rowOfChild0(h)?.skipReason ?? '', /fetal death/);
      assert.equal((await h.events()).length, 0, 'OpenCRVS never heard of a live birth');
    } finally {
      await h.close();
    }
  });

  it('a stillbirth report entered in error while the pass held its read of it leaves the birth to be notified', async () => {
    const seed = [...birthResources(0), fetalDeathReport('final')];
    const h = await startHarness({ seed, notify: { style: 'hapi-payload' }, worker: false });
    try {
      await pollHeldWhile(h, async () => {
        await h.fhir.upsert(fetalDeathReport('entered-in-error'));
        await h.waitFor('the notification recorded the birth', () => rowOfChild0(h)?.state === 'pending');
      });
      assert.equal(rowOfChild0(h)?.state, 'pending', 'the birth is still to be sent');
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.equal(rowOfChild0(h)?.state, 'delivered');
      assert.equal((await h.events()).length, 1);
    } finally {
      await h.close();
    }
  });

  it('a notification evaluated from a read older than a poll that committed meanwhile is read again', async () => {
    const { h, source } = await birth0Notified();
    try {
      const { held, release } = holdEvaluation(
        source.pipeline,
        (args, evaluated) => !byPoll(args) && ofChild(evaluated),
      );
      // The report's notification is evaluated (a stillbirth) and held before it commits.
      await h.fhir.upsert(fetalDeathReport('final'));
      await held;
      // The report is then entered in error, and that notification lost: only a poll sees the birth again.
      h.fhir.emitter?.dropNext(1);
      await h.fhir.upsert(fetalDeathReport('entered-in-error'));
      await source.poller.pollOnce();
      assert.equal(rowOfChild0(h)?.state, 'pending', 'the poll, begun after the notification, recorded the birth');
      await birthStandsAfter(h, release);
    } finally {
      await h.close();
    }
  });

  it('a poll overtaken by a notification it read after is read again: the newer record decides', async () => {
    const { h, pass, releasePass } = await stillbirthWithdrawnDuringPass();
    try {
      // The pass reads the child now: a live birth. It began before the notification committed.
      releasePass();
      await pass;
      assert.equal(rowOfChild0(h)?.state, 'pending', 'the birth as the EMR holds it now');
      await h.bridge.worker.runUntilIdle({ timeoutMs: 10_000 });
      assert.equal((await h.events()).length, 1);
    } finally {
      await h.close();
    }
  });

  it('a notification that read before a poll begun earlier, and commits after it, is read again', async () => {
    const { h, source } = await birth0Notified();
    try {
      const poll = holdEvaluation(source.pipeline, byPoll);
      const pass = source.poller.pollOnce();
      await poll.held;
      // Begun after the pass, the notification's evaluation reads the stillbirth and is held before it commits.
      const notification = holdEvaluation(source.pipeline, (args, evaluated) => !byPoll(args) && ofChild(evaluated));
      await h.fhir.upsert(fetalDeathReport('final'));
      await notification.held;
      h.fhir.emitter?.dropNext(1);
      await h.fhir.upsert(fetalDeathReport('entered-in-error'));
      // The pass reads the child after that (a live birth) and commits first.
      poll.release();
      await pass;
      assert.equal(rowOfChild0(h)?.state, 'pending');
      await birthStandsAfter(h, notification.release);
    } finally {
      await h.close();
    }
  });

  it('an overtaken poll whose reread fails holds its watermark: the next pass reads the birth again', async () => {
    const { h, source, pass, releasePass } = await stillbirthWithdrawnDuringPass();
    try {
      // The EMR fails the one read of the child that follows the refused commit: the reread.
      const read = source.client.read.bind(source.client);
      const overtakes = source.pipeline.overtakes.bind(source.pipeline);
      let failNextChildRead = false;
      source.pipeline.overtakes = (results) => {
        const refused = overtakes(results);
        failNextChildRead ||= refused;
        return refused;
      };
      source.client.read = async (type, id) => {
        if (failNextChildRead && `${type}/${id}` === CHILD) {
          failNextChildRead = false;
          throw new FhirSourceError('read Patient failed: HTTP 503', 503, true);
        }
        return read(type, id);
      };
      releasePass();
      await pass;
      assert.equal(rowOfChild0(h)?.state, 'skipped', 'the reread failed: the stillbirth still stands');
      await source.poller.pollOnce();
      assert.equal(rowOfChild0(h)?.state, 'pending', 'the next pass read the live birth again');
    } finally {
      await h.close();
    }
  });

  it('a reread overtaken in turn by an older evaluation is read again', async () => {
    let amended: ReturnType<typeof holdEvaluation> | undefined;
    const { h, source, pass, releasePass } = await stillbirthWithdrawnDuringPass(async (h) => {
      // Another edit of the report (still a stillbirth): its evaluation is held before it commits.
      const pipeline = h.bridge.sources[0]?.pipeline;
      assert.ok(pipeline);
      amended = holdEvaluation(pipeline, (args, evaluated) => !byPoll(args) && ofChild(evaluated));
      await h.fhir.upsert({ ...fetalDeathReport('final'), title: 'Fetal death report (amended)' });
      await amended.held;
    });
    try {
      // The pass reads the live birth and is refused; its reread of the child is held before it commits.
      const reread = holdEvaluation(source.pipeline, (args, evaluated) => !byPoll(args) && ofChild(evaluated));
      releasePass();
      await reread.held;
      // The amended report's evaluation (begun before the reread) commits its stillbirth; then the reread.
      amended?.release();
      await h.waitFor('the amended report processed', () => h.bridge.ledger.inbox.backlog().depth === 0);
      reread.release();
      await pass;
      assert.equal(rowOfChild0(h)?.state, 'pending', 'the birth as the EMR holds it now');
    } finally {
      await h.close();
    }
  });
});
