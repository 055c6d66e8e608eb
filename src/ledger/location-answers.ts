// What OpenCRVS last answered about location references (opencrvs/locations.ts keeps them for lastKnown),
// one row per reference and OpenCRVS (migration 015). Several processes keep answers in one ledger (serve,
// a replay or `sync` beside it): each writes only the answers it got itself, and only when one changed, so
// none writes an older copy over another's newer answers.
import type { Db } from './db.js';

/** An answer about a reference: the location's id and type, or null for "not listed". */
export type KeptLocation = { id: string; locationType: string } | null;

export interface LedgerLocationAnswers {
  /** The newest `limit` answers kept for this OpenCRVS, the one changed longest ago first. */
  load(opencrvs: string, limit: number): Array<[string, KeptLocation]>;
  /**
   * Keeps an answer, written only when it is not the one kept; `max` answers are kept for this OpenCRVS,
   * the one changed longest ago forgotten first. Returns whether anything was written.
   */
  save(opencrvs: string, ref: string, answer: KeptLocation, max: number): boolean;
}

export function createLocationAnswers(db: Db): LedgerLocationAnswers {
  // `LIMIT +?`: a bare bound LIMIT is compiled again at every run (db.ts).
  const load = db.prepare<[string, number], { ref: string; location_id: string | null; location_type: string | null }>(
    `SELECT ref, location_id, location_type FROM opencrvs_locations WHERE opencrvs = ? ORDER BY rowid DESC LIMIT +?`,
  );
  // REPLACE inserts the changed answer again: its rowid then says it changed last.
  const save = db.prepare<{ opencrvs: string; ref: string; id: string | null; type: string | null; now: number }>(`
    INSERT OR REPLACE INTO opencrvs_locations (opencrvs, ref, location_id, location_type, changed_at)
    SELECT @opencrvs, @ref, @id, @type, @now
    WHERE NOT EXISTS (SELECT 1 FROM opencrvs_locations
      WHERE opencrvs = @opencrvs AND ref = @ref AND location_id IS @id AND location_type IS @type)`);
  const prune = db.prepare<{ opencrvs: string; max: number }>(`
    DELETE FROM opencrvs_locations WHERE opencrvs = @opencrvs AND rowid IN (
      SELECT rowid FROM opencrvs_locations WHERE opencrvs = @opencrvs ORDER BY rowid DESC LIMIT -1 OFFSET @max)`);
  const saveAndPrune = db.transaction((input: Parameters<typeof save.run>[0], max: number) => {
    if (save.run(input).changes === 0) return false;
    prune.run({ opencrvs: input.opencrvs, max });
    return true;
  });
  return {
    load: (opencrvs, limit) =>
      load
        .all(opencrvs, Math.max(1, limit))
        .reverse()
        .map(({ ref, location_id, location_type }): [string, KeptLocation] => [
          ref,
          location_id === null ? null : { id: location_id, locationType: location_type ?? '' },
        ]),
    save: (opencrvs, ref, answer, max) =>
      saveAndPrune.immediate(
        { opencrvs, ref, id: answer?.id ?? null, type: answer?.locationType ?? null, now: Date.now() },
        Math.max(1, max),
      ),
  };
}
