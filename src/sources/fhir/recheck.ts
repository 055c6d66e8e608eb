import type { LedgerRow } from '../../ledger/index.js';
import type { Logger } from '../../observability/logger.js';
import { type ReevaluatedSource, reevaluate } from './reevaluate.js';

export interface RecheckedSource extends ReevaluatedSource {
  id: string;
}

/**
 * The delivery worker's recheck (delivery's SourceRecheck) for FHIR sources: the subjects of rows that
 * waited are read and evaluated again, as a notification about them would be. A subject the server
 * answers 404/410 for (deleted; in OpenMRS, voided, as a merge leaves the duplicate) withdraws its row;
 * a merge, an entered-in-error record or lost evidence skips it; new data replaces the payload.
 */
export function fhirRecheck(
  sources: RecheckedSource[],
  ledger: { get(id: number): LedgerRow | undefined },
  logger: Logger,
): { appliesTo(row: LedgerRow): boolean; run(rows: LedgerRow[]): Promise<void> } {
  const byId = new Map(sources.map((source) => [source.id, source]));
  const log = logger.child({ component: 'recheck' });
  return {
    appliesTo: (row) => byId.has(row.sourceId),
    async run(rows) {
      const subjects = new Map<RecheckedSource, Set<string>>();
      for (const row of rows) {
        const source = byId.get(row.sourceId);
        if (!source) continue;
        const set = subjects.get(source) ?? new Set<string>();
        set.add(row.subjectKey);
        subjects.set(source, set);
      }
      for (const [source, refs] of subjects) await reevaluate(source, [], [...refs]);
      // Counts only: which records were withdrawn is in the ledger, not in logs.
      const withdrawn = rows.filter((row) => ledger.get(row.id)?.state === 'skipped').length;
      log.info({ rows: rows.length, withdrawn }, 'waiting rows rechecked at their source before sending');
    },
  };
}
