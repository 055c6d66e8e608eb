// SourcePipeline and commits another evaluation overtook (src/sources/evaluation-order.ts): the record is
// read again at once, a few rounds at most, and a session whose record was not read again says so.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openLedger } from '../../src/ledger/index.js';
import type { MappingSet, ResourceFetcher } from '../../src/mapping/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { OvertakenReadFailed, SourcePipeline } from '../../src/sources/pipeline.js';

const SUBJECT = 'Patient/1';

/** Every resource is about SUBJECT, which is no birth (a commit that writes nothing, as most are). */
const mappings = {
  subjectsFor: () => [{ mappingId: 'birth.test', subjectRef: SUBJECT, searchable: false }],
  mapSubjectDetailed: async () => ({
    result: { status: 'skipped', mappingId: 'birth.test', eventType: 'birth', subjectRef: SUBJECT, reason: 'no birth' },
    noEvidence: true,
  }),
} as unknown as MappingSet;

const fetcher = (): ResourceFetcher => ({}) as ResourceFetcher;
const patient = { resourceType: 'Patient', id: '1' } as const;

describe('SourcePipeline: overtaken commits', () => {
  it('reads a record again up to 3 rounds at once; a session overtaken beyond that is told, not silently dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pipeline-overtaken-'));
    const ledger = openLedger(join(dir, 'bridge.db'));
    try {
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const rereads: string[][] = [];
      const pipeline = new SourcePipeline({
        sourceId: 'emr',
        mappings,
        ledger,
        logger: silentLogger,
        reread: async (subjects) => {
          rereads.push(subjects);
          await held; // the EMR is slow: every reread is still in flight when the next session commits
        },
      });
      // Four sessions begin, then a fifth commits the record: each of the four is overtaken.
      const older = [fetcher(), fetcher(), fetcher(), fetcher()].map((f) => pipeline.reading(f));
      const later = pipeline.reading(fetcher());
      pipeline.commit((await pipeline.evaluate([patient], later)).results);
      // All four commit before any reread ends (waiting a turn of the event loop instead was not enough on a
      // loaded machine: the fourth commit then came after the release and found a round free).
      const committed = await Promise.all(
        older.map(async (f) => {
          const { results } = await pipeline.evaluate([patient], f);
          assert.equal(pipeline.overtakes(results), true);
          pipeline.commit(results);
          return f;
        }),
      );
      await new Promise((resolve) => setImmediate(resolve)); // the rereads begin in a microtask of each commit
      assert.equal(rereads.length, 3, 'three rounds in flight at once');
      const outcomes = committed.map((f) =>
        pipeline.finished(f).then(
          () => 'read again',
          (err: unknown) => (err instanceof OvertakenReadFailed ? 'not read again' : String(err)),
        ),
      );
      release();
      assert.deepEqual((await Promise.all(outcomes)).sort(), [
        'not read again',
        'read again',
        'read again',
        'read again',
      ]);
      await pipeline.finished(later);
    } finally {
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects finished() when the reread failed, so the caller keeps what would redo it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pipeline-overtaken-'));
    const ledger = openLedger(join(dir, 'bridge.db'));
    try {
      const pipeline = new SourcePipeline({
        sourceId: 'emr',
        mappings,
        ledger,
        logger: silentLogger,
        reread: async () => {
          throw new Error('HTTP 503');
        },
      });
      const older = pipeline.reading(fetcher());
      const later = pipeline.reading(fetcher());
      pipeline.commit((await pipeline.evaluate([patient], later)).results);
      pipeline.commit((await pipeline.evaluate([patient], older)).results);
      assert.equal(await pipeline.settled(older), false);
      await assert.rejects(pipeline.finished(older), OvertakenReadFailed);
      await pipeline.finished(later);
    } finally {
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not record a birth an older evaluation read, once a later one found the record or its evidence deleted', async () => {
    for (const deleted of [SUBJECT, 'Encounter/9']) {
      const dir = mkdtempSync(join(tmpdir(), 'pipeline-overtaken-'));
      const ledger = openLedger(join(dir, 'bridge.db'));
      try {
        const rereads: string[][] = [];
        const pipeline = new SourcePipeline({
          sourceId: 'emr',
          mappings: birthOf('Encounter/9'),
          ledger,
          logger: silentLogger,
          reread: async (subjects) => void rereads.push(subjects),
        });
        const poll = pipeline.reading(fetcher());
        const { results } = await pipeline.evaluate([patient], poll); // the birth, read before the deletion
        // A notification of the deletion: read again, gone (404). No row holds the record yet.
        const notification = pipeline.reading(fetcher());
        assert.deepEqual(pipeline.recordDeleted(deleted, notification), []);
        await pipeline.finished(notification);
        assert.equal(pipeline.overtakes(results), true, `${deleted}: the poll's read is older than the deletion`);
        pipeline.commit(results);
        await pipeline.finished(poll);
        assert.deepEqual(
          ledger.list({ limit: 10 }).map((row) => row.state),
          [],
          `${deleted}: no birth recorded from the older read`,
        );
        assert.deepEqual(rereads, [[SUBJECT]], `${deleted}: the record is read again instead`);
      } finally {
        ledger.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

/** SUBJECT is a birth, found by `evidence`. */
function birthOf(evidence: string): MappingSet {
  return {
    mappings: [{ id: 'birth.test', eventType: 'birth', subjectType: 'Patient' }],
    subjectsFor: () => [{ mappingId: 'birth.test', subjectRef: SUBJECT, searchable: false }],
    mapSubjectDetailed: async () => ({
      result: {
        status: 'mapped',
        mappingId: 'birth.test',
        eventType: 'birth',
        subjectRef: SUBJECT,
        sourceRef: evidence,
        payloadHash: 'h1',
        declaration: { 'child.dob': '2026-01-01' },
        routing: { office: 'office-1' },
        warnings: [],
      },
    }),
  } as unknown as MappingSet;
}
