// The DHIS2 write-back never replaces a value it finds in its target: the national id in an attribute
// `writeBack` names by mistake, or the tracking id of a second registration of the same record. The job is
// abandoned saying so, where abandoned write-backs show (the job's error, the sync summary, /metrics), and
// no log line quotes what the field holds.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Bridge } from '../../src/app.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { ATTRIBUTES, BIRTH_DATA_ELEMENTS, CHILD_PROGRAMME, type TrackedEntity } from '../../src/sandbox/dhis2/index.js';
import { BIRTHS_SOURCE, dataValueOf, enrolledIn, startDhis2Harness } from './helpers/dhis2-harness.js';

const OCCUPIED =
  /already holds another value \(not overwritten\): a second registration .*or the wrong writeBack target/;
const NATIONAL_ID = 'SL-2026-000123';

const attributeOf = (te: TrackedEntity | undefined, uid: string) =>
  te?.attributes?.find((a) => a.attribute === uid)?.value ?? undefined;

/** What a source's jobs' abandonment counter says in /metrics. */
async function abandonedTotal(bridge: Bridge, source: string): Promise<number | undefined> {
  const name = `bridge_write_backs_abandoned_total{source="${source}"} `;
  const line = (await bridge.renderMetrics()).body.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? undefined : Number(line.slice(name.length));
}

describe('a DHIS2 write-back target that already holds another value', () => {
  it('keeps the national id of a writeBack.attribute naming it, abandoning the job with the reason', async () => {
    const logLines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => logLines.push(line) } });
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      logger,
      // The child has a national id, as a hospital's records do.
      entities: (entities) => {
        const children = new Set(enrolledIn(entities, CHILD_PROGRAMME).map((t) => t.trackedEntity));
        return entities.map((te) =>
          children.has(te.trackedEntity)
            ? {
                ...te,
                attributes: [...(te.attributes ?? []), { attribute: ATTRIBUTES.nationalId, value: NATIONAL_ID }],
              }
            : te,
        );
      },
      configure: ({ sources }) => {
        const [source] = sources;
        assert.ok(source);
        source.writeBack = { attribute: ATTRIBUTES.nationalId };
      },
    });
    try {
      const writesBefore = h.dhis2.writes().length;
      assert.equal(await abandonedTotal(h.bridge, BIRTHS_SOURCE), 0);
      const summary = await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      assert.ok(summary.ok, 'the birth is delivered: a write-back changes no delivery');
      const [row] = h.rows();
      assert.ok(row?.trackingId);
      const uid = row.subjectKey.replace('TrackedEntity/', '');
      assert.equal(
        attributeOf(h.dhis2.trackedEntity(uid), ATTRIBUTES.nationalId),
        NATIONAL_ID,
        'the national id stays',
      );
      assert.equal(h.dhis2.writes().length, writesBefore, 'nothing was sent to DHIS2');

      const job = h.bridge.writeBacks?.store.get(row.id);
      assert.equal(job?.outcome, 'abandoned');
      assert.equal(job?.attempts, 1, 'abandoned at once: the same read gives the same answer');
      assert.match(job?.lastError ?? '', OCCUPIED);
      assert.match(job?.lastError ?? '', new RegExp(`attribute ${ATTRIBUTES.nationalId}`));
      assert.equal(summary.writeBacks?.abandoned, 1);
      assert.match(summary.writeBacks?.failures[0]?.error ?? '', OCCUPIED);
      assert.equal(await abandonedTotal(h.bridge, BIRTHS_SOURCE), 1);

      const abandoned = logLines.filter((l) => l.includes('write-back abandoned'));
      assert.equal(abandoned.length, 1, logLines.join(''));
      assert.match(abandoned[0] ?? '', OCCUPIED);
      assert.ok(!logLines.some((l) => l.includes(NATIONAL_ID)), 'no log line quotes the national id');
    } finally {
      await h.close();
    }
  });

  it("keeps the first registration's tracking id in the data element when a second one of the record writes back", async () => {
    const h = await startDhis2Harness({ births: 1, deaths: 0 });
    let second: Bridge | undefined;
    try {
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const [first] = h.rows();
      assert.ok(first?.trackingId);
      assert.equal(h.bridge.writeBacks?.store.get(first.id)?.outcome, 'written');
      const uid = first.subjectKey.replace('TrackedEntity/', '');
      const value = () => dataValueOf(h.dhis2, uid, CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId);
      assert.equal(value(), first.trackingId);

      // The same records read again under another source id with a ledger of its own (a second deployment,
      // a source renamed by hand): OpenCRVS registers the birth a second time, with another tracking id.
      const sources = h.config.sources
        .filter((s) => s.id === BIRTHS_SOURCE)
        .map((s) => ({ ...s, id: `${BIRTHS_SOURCE}-again` }));
      const store = { ...h.config.store, path: join(h.dir, 'second.db') };
      second = new Bridge(
        { ...h.config, sources, store },
        { logger: silentLogger, schedule: false, http: false, worker: false },
      );
      await second.start();
      assert.equal(await abandonedTotal(second, `${BIRTHS_SOURCE}-again`), 0);
      const summary = await second.syncOnce(undefined, { timeoutMs: 20_000 });
      const [again] = second.ledger.list({ limit: 10 });
      assert.ok(again?.trackingId && again.trackingId !== first.trackingId, 'a second registration');
      assert.equal(value(), first.trackingId, "the first registration's tracking id stays");

      const job = second.writeBacks?.store.get(again.id);
      assert.equal(job?.outcome, 'abandoned');
      assert.match(job?.lastError ?? '', OCCUPIED);
      assert.match(job?.lastError ?? '', new RegExp(`data element ${BIRTH_DATA_ELEMENTS.trackingId}`));
      assert.ok(!(job?.lastError ?? '').includes(first.trackingId), 'the value held is not quoted');
      assert.equal(summary.writeBacks?.abandoned, 1);
      assert.equal(await abandonedTotal(second, `${BIRTHS_SOURCE}-again`), 1);
    } finally {
      await second?.stop();
      await h.close();
    }
  });
});

describe("a DHIS2 write-back target that holds the row's own earlier tracking id", () => {
  // OpenCRVS lost the event (restored from an older backup), the same ledger row was delivered again and
  // got a new tracking id: the job restarts for it. What DHIS2 holds is the bridge's own write for this
  // row, an id OpenCRVS no longer has, and the new one replaces it.
  const NEW_TRACKING_ID = 'BNEWTRACK01';

  it('replaces it in the data element with the new tracking id, saying so without quoting either', async () => {
    const logLines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (line: string) => logLines.push(line) } });
    const h = await startDhis2Harness({ births: 1, deaths: 0, logger });
    try {
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const [row] = h.rows();
      assert.ok(row?.trackingId);
      const runner = h.bridge.writeBacks;
      assert.ok(runner);
      assert.equal(runner.store.get(row.id)?.outcome, 'written');
      const uid = row.subjectKey.replace('TrackedEntity/', '');
      const value = () => dataValueOf(h.dhis2, uid, CHILD_PROGRAMME, BIRTH_DATA_ELEMENTS.trackingId);
      assert.equal(value(), row.trackingId);

      assert.ok(runner.store.enqueue(row.id, BIRTHS_SOURCE, NEW_TRACKING_ID, Date.now()), 'the job restarts');
      assert.deepEqual(runner.store.get(row.id)?.earlierTrackingIds, [row.trackingId]);
      const report = await runner.processDue();
      assert.equal(report.written, 1);
      assert.equal(report.abandoned, 0);
      const job = runner.store.get(row.id);
      assert.equal(job?.outcome, 'written', job?.lastError ?? '');
      assert.equal(value(), NEW_TRACKING_ID, 'the new tracking id replaced the old one');

      const written = logLines.filter((l) => l.includes('tracking id written back'));
      assert.equal(written.length, 2, logLines.join(''));
      assert.match(written[1] ?? '', /"replaced":"earlier tracking id of this row"/);
      assert.doesNotMatch(written[0] ?? '', /"replaced"/, 'the first write replaced nothing');
      // The delivery's own line names the tracking id OpenCRVS gave; the write-back's lines name neither.
      const writeBackLines = logLines.filter((l) => l.includes('"component":"write-back"'));
      assert.ok(writeBackLines.length >= 2, logLines.join(''));
      assert.ok(!writeBackLines.some((l) => l.includes(row.trackingId ?? '?')), 'the old id is not quoted');
      assert.ok(!writeBackLines.some((l) => l.includes(NEW_TRACKING_ID)), 'the new id is not quoted');
    } finally {
      await h.close();
    }
  });

  it("replaces it in a writeBack.attribute too, and still keeps a value that is not the row's own", async () => {
    const h = await startDhis2Harness({
      births: 1,
      deaths: 0,
      configure: ({ sources }) => {
        const [source] = sources;
        assert.ok(source);
        source.writeBack = { attribute: ATTRIBUTES.trackingId };
      },
    });
    try {
      await h.bridge.syncOnce([BIRTHS_SOURCE], { timeoutMs: 20_000 });
      const [row] = h.rows();
      assert.ok(row?.trackingId);
      const runner = h.bridge.writeBacks;
      assert.ok(runner);
      assert.equal(runner.store.get(row.id)?.outcome, 'written');
      const uid = row.subjectKey.replace('TrackedEntity/', '');
      const value = () => attributeOf(h.dhis2.trackedEntity(uid), ATTRIBUTES.trackingId);
      assert.equal(value(), row.trackingId);

      assert.ok(runner.store.enqueue(row.id, BIRTHS_SOURCE, NEW_TRACKING_ID, Date.now()));
      await runner.processDue();
      assert.equal(runner.store.get(row.id)?.outcome, 'written', runner.store.get(row.id)?.lastError ?? '');
      assert.equal(value(), NEW_TRACKING_ID);

      // The row delivered once more: what DHIS2 holds now (NEW_TRACKING_ID) is the row's own and is replaced
      // too; but a job whose earlier ids do not include the value held (another registration's) leaves it.
      assert.ok(runner.store.enqueue(row.id, BIRTHS_SOURCE, 'BTHIRDTRK01', Date.now()));
      assert.deepEqual(runner.store.get(row.id)?.earlierTrackingIds, [row.trackingId, NEW_TRACKING_ID]);
      await runner.processDue();
      assert.equal(value(), 'BTHIRDTRK01');

      // Someone else's value in the attribute (a second registration's id, entered in DHIS2): the row's job
      // restarted once more does not count it as its own, and leaves it.
      const te = h.dhis2.trackedEntity(uid);
      assert.ok(te);
      const other = <T extends { attribute: string }>(a: T): T =>
        a.attribute === ATTRIBUTES.trackingId ? { ...a, value: 'BOTHERREG01' } : a;
      const copy = structuredClone(te);
      h.dhis2.seed([
        {
          ...copy,
          attributes: copy.attributes?.map(other),
          enrollments: copy.enrollments?.map((en) => ({ ...en, attributes: en.attributes?.map(other) })),
        },
      ]);
      assert.equal(value(), 'BOTHERREG01');
      const writesBefore = h.dhis2.writes().length;
      assert.ok(runner.store.enqueue(row.id, BIRTHS_SOURCE, 'BFOURTHTRK1', Date.now()));
      await runner.processDue();
      assert.equal(value(), 'BOTHERREG01', "another registration's id stays");
      assert.equal(h.dhis2.writes().length, writesBefore, 'nothing was sent to DHIS2');
      const job = runner.store.get(row.id);
      assert.equal(job?.outcome, 'abandoned');
      assert.match(job?.lastError ?? '', OCCUPIED);
      assert.ok(!(job?.lastError ?? '').includes('BOTHERREG01'), 'the value held is not quoted');
    } finally {
      await h.close();
    }
  });
});
