import type { Ledger, RecordChange } from '../ledger/index.js';
import {
  type MapOptions,
  type MappingSet,
  type MapResult,
  mapSubject,
  type Resource,
  type ResourceFetcher,
} from '../mapping/index.js';
import type { Logger } from '../observability/logger.js';

/** A mapping result; `excluded` when an exclusion rule fired (e.g. a fetal death), not a mere non-match. */
export interface Evaluation {
  result: MapResult;
  excluded: boolean;
}

/** What one evaluation pass recorded, for logs, `sync` and the admin page (no personal data). */
export interface PassReport {
  resources: number;
  subjects: number;
  mapped: Record<RecordChange, number>;
  skipped: number;
  invalid: number;
  ledgerIds: number[];
}

export function emptyReport(): PassReport {
  return {
    resources: 0,
    subjects: 0,
    mapped: { inserted: 0, replaced: 0, unchanged: 0, 'updated-after-notification': 0 },
    skipped: 0,
    invalid: 0,
    ledgerIds: [],
  };
}

export function addReports(into: PassReport, from: PassReport): PassReport {
  into.resources += from.resources;
  into.subjects += from.subjects;
  for (const key of Object.keys(into.mapped) as RecordChange[]) into.mapped[key] += from.mapped[key];
  into.skipped += from.skipped;
  into.invalid += from.invalid;
  into.ledgerIds.push(...from.ledgerIds);
  return into;
}

export interface PipelineDeps {
  sourceId: string;
  mappings: MappingSet;
  ledger: Ledger;
  logger: Logger;
  mapOptions?: () => MapOptions;
}

/**
 * The part every source shares: changed resources → the subjects they affect → mapping (with
 * context fetched through the source) → one ledger transaction that records the results together
 * with whatever cursor the caller passes, so a watermark never runs ahead of the rows it covers.
 */
export class SourcePipeline {
  private readonly log: Logger;

  constructor(private readonly deps: PipelineDeps) {
    this.log = deps.logger.child({ component: 'pipeline', source: deps.sourceId });
  }

  /** Maps every subject affected by `resources`. Fetch errors propagate: the caller retries the pass. */
  async evaluate(
    resources: Resource[],
    fetcher: ResourceFetcher,
  ): Promise<{ results: Evaluation[]; subjects: number }> {
    const subjects = new Map<string, { mappingId: string; subjectRef: string }>();
    for (const resource of resources) {
      for (const subject of this.deps.mappings.subjectsFor(resource)) {
        subjects.set(`${subject.mappingId}\n${subject.subjectRef}`, subject);
      }
    }
    const results: Evaluation[] = [];
    const options = this.deps.mapOptions?.() ?? {};
    for (const { mappingId, subjectRef } of subjects.values()) {
      const { result, excluded } = await this.deps.mappings.mapSubjectDetailed(mappingId, subjectRef, fetcher, options);
      results.push({ result, excluded: excluded === true });
    }
    return { results, subjects: subjects.size };
  }

  /** Records results (and the cursor, if given) in one transaction. */
  commit(results: Evaluation[], cursor?: { name: string; value: string }): PassReport {
    const report = emptyReport();
    const { ledger, sourceId } = this.deps;
    ledger.transaction(() => {
      for (const { result, excluded } of results) {
        if (result.status === 'mapped') {
          const office = result.routing.office;
          if (!office) {
            // mapSubject reports a missing office as invalid; this guards the contract.
            report.invalid++;
            continue;
          }
          const { row, change } = ledger.recordEvent({
            sourceId,
            eventType: result.eventType,
            subjectKey: result.subjectRef,
            sourceRef: result.sourceRef,
            sourceVersion: result.sourceVersion,
            mappingId: result.mappingId,
            payloadHash: result.payloadHash,
            payload: { declaration: result.declaration, office, facility: result.routing.facility },
          });
          report.mapped[change]++;
          if (change !== 'unchanged') report.ledgerIds.push(row.id);
        } else if (result.status === 'invalid') {
          const row = ledger.recordInvalid({
            sourceId,
            eventType: result.eventType,
            subjectKey: result.subjectRef,
            sourceRef: result.subjectRef,
            mappingId: result.mappingId,
            errors: result.errors,
          });
          report.invalid++;
          report.ledgerIds.push(row.id);
        } else if (result.eventType && result.subjectRef && excluded) {
          // Kept visible ("why was this stillbirth not notified?"); plain non-matches are not recorded.
          const row = ledger.recordSkipped({
            sourceId,
            eventType: result.eventType,
            subjectKey: result.subjectRef,
            sourceRef: result.subjectRef,
            reason: result.reason,
          });
          report.skipped++;
          report.ledgerIds.push(row.id);
        }
      }
      if (cursor) ledger.setCursor(sourceId, cursor.name, cursor.value);
    });
    report.subjects = results.length;
    if (report.invalid > 0) this.log.warn({ invalid: report.invalid }, 'records could not be mapped; see the ledger');
    return report;
  }
}
