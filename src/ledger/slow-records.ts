// The strikes of slow records (sources/pipeline.ts, slowRecords), kept so that they outlive the process:
// a bridge restarted (a crash loop, a rolling update) or run as `sync --once` from cron (a new process
// every pass) reaches three strikes all the same. The pipeline keeps a copy in memory and writes here only
// when a strike counts, when a record with strikes is read in time again, or when one is pushed out.
import type { Db } from './db.js';

/** A record's strikes, as the pipeline keys them: one mapping of one record of one source. */
export interface SlowRecordStrikes {
  mappingId: string;
  subjectRef: string;
  strikes: number;
  /** The wall clock (ms since the epoch) when the last strike counted. */
  struckAt: number;
}

export interface LedgerSlowRecords {
  /**
   * `sourceId`'s records with strikes, the oldest strike first. Forgets first every source's strikes struck
   * before `before` (old: a retired source's too), or after `after` (a clock put back a long way), and
   * `sourceId`'s beyond the `keep` last struck.
   */
  load(sourceId: string, bounds: { before: number; after: number; keep: number }): SlowRecordStrikes[];
  /** Writes the strikes of `set`, then forgets those of `clear` (pushed out after being set too), in one transaction. */
  write(
    sourceId: string,
    set: readonly SlowRecordStrikes[],
    clear: ReadonlyArray<{ mappingId: string; subjectRef: string }>,
  ): void;
}

export function createSlowRecords(db: Db): LedgerSlowRecords {
  const forget = db.prepare<{ before: number; after: number }>(
    'DELETE FROM slow_records WHERE struck_at < @before OR struck_at > @after',
  );
  // `LIMIT +@keep`: a bare bound LIMIT is compiled again at every run (db.ts).
  const trim = db.prepare<{ sourceId: string; keep: number }>(`
    DELETE FROM slow_records WHERE source_id = @sourceId AND (mapping_id, subject_ref) NOT IN (
      SELECT mapping_id, subject_ref FROM slow_records WHERE source_id = @sourceId
      ORDER BY struck_at DESC LIMIT +@keep)`);
  const list = db.prepare<[string], SlowRecordStrikes>(`
    SELECT mapping_id AS mappingId, subject_ref AS subjectRef, strikes, struck_at AS struckAt
    FROM slow_records WHERE source_id = ? ORDER BY struck_at, mapping_id, subject_ref`);
  const upsert = db.prepare<{ sourceId: string } & SlowRecordStrikes>(`
    INSERT INTO slow_records (source_id, mapping_id, subject_ref, strikes, struck_at)
    VALUES (@sourceId, @mappingId, @subjectRef, @strikes, @struckAt)
    ON CONFLICT (source_id, mapping_id, subject_ref) DO UPDATE SET
      strikes = excluded.strikes, struck_at = excluded.struck_at`);
  const remove = db.prepare<{ sourceId: string; mappingId: string; subjectRef: string }>(
    'DELETE FROM slow_records WHERE source_id = @sourceId AND mapping_id = @mappingId AND subject_ref = @subjectRef',
  );

  const load = db.transaction((sourceId: string, bounds: { before: number; after: number; keep: number }) => {
    forget.run({ before: bounds.before, after: bounds.after });
    trim.run({ sourceId, keep: Math.max(0, Math.floor(bounds.keep)) });
    return list.all(sourceId);
  });
  const write = db.transaction(
    (
      sourceId: string,
      set: readonly SlowRecordStrikes[],
      clear: ReadonlyArray<{ mappingId: string; subjectRef: string }>,
    ) => {
      for (const strikes of set)
        upsert.run({
          sourceId,
          mappingId: strikes.mappingId,
          subjectRef: strikes.subjectRef,
          strikes: strikes.strikes,
          struckAt: strikes.struckAt,
        });
      for (const { mappingId, subjectRef } of clear) remove.run({ sourceId, mappingId, subjectRef });
    },
  );

  return {
    load: (sourceId, bounds) => load.immediate(sourceId, bounds),
    write: (sourceId, set, clear) => {
      if (set.length > 0 || clear.length > 0) write.immediate(sourceId, set, clear);
    },
  };
}
