import { type FlatPayload, flatten } from './flatten.js';
import type { TrackerStore } from './store.js';
import type {
  ImportReport,
  ImportStats,
  ImportStrategy,
  TrackerImportPayload,
  TrackerType,
  TypeReport,
  Uid,
} from './types.js';
import { type Action, type Importer, planImport } from './validate.js';
import { Writer } from './writer.js';

export interface ImportOptions {
  importStrategy: ImportStrategy;
  /** VALIDATE checks without writing (DHIS2 `importMode=VALIDATE`). */
  validateOnly?: boolean;
  /** Seeding keeps the payload's createdAt/updatedAt so demo data can carry its own history. */
  keepTimestamps?: boolean;
  /** The user importing, whose org units are checked (validate.ts checkScope); none when seeding. */
  importer?: Importer;
}

export interface ImportResult {
  httpStatus: number;
  report: ImportReport;
}

const emptyStats = (): ImportStats => ({ created: 0, updated: 0, deleted: 0, ignored: 0, total: 0 });

/**
 * POST /api/tracker with atomicMode=ALL (DHIS2's default): either every object is valid and all are
 * written, or nothing is written, every object counts as ignored, and the answer is 409 with the errors.
 * Every write stamps `updatedAt` with one server time per import, and a change below a tracked entity
 * (enrollment, event, relationship) also bumps the tracked entity's `updatedAt`, as DHIS2 does — so a
 * bridge that writes back will see its own record again on the next `updatedAfter` poll.
 */
export function importTracker(
  store: TrackerStore,
  payload: TrackerImportPayload,
  options: ImportOptions,
): ImportResult {
  const flat = flatten(payload);
  const plan = planImport(store, flat, options.importStrategy, options.importer);
  const types = typeReports(flat, plan.actions);
  const stats = sumStats(Object.values(types).map((t) => t.stats));
  if (plan.errors.length) {
    for (const type of Object.values(types)) {
      type.stats = { ...emptyStats(), ignored: type.stats.total, total: type.stats.total };
      for (const report of type.objectReports)
        report.errorReports = plan.errors.filter((e) => e.uid === report.uid && e.trackerType === type.trackerType);
    }
    const ignored = { ...emptyStats(), ignored: stats.total, total: stats.total };
    return {
      httpStatus: 409,
      report: {
        status: 'ERROR',
        validationReport: { errorReports: plan.errors, warningReports: plan.warnings },
        stats: ignored,
        bundleReport: { status: 'ERROR', typeReportMap: types, stats: ignored },
        message: 'Validation failed',
      },
    };
  }
  if (!options.validateOnly) new Writer(store, options.keepTimestamps ?? false, plan.actions).write(flat);
  return {
    httpStatus: 200,
    report: {
      status: plan.warnings.length ? 'WARNING' : 'OK',
      validationReport: { errorReports: [], warningReports: plan.warnings },
      stats,
      bundleReport: { status: 'OK', typeReportMap: types, stats },
    },
  };
}

function typeReports(flat: FlatPayload, actions: Map<Uid, Action>): Partial<Record<TrackerType, TypeReport>> {
  const build = (trackerType: TrackerType, uids: Uid[]): TypeReport => {
    const stats = emptyStats();
    for (const uid of uids) {
      const action = actions.get(uid) ?? 'ignore';
      const key =
        action === 'create' ? 'created' : action === 'update' ? 'updated' : action === 'delete' ? 'deleted' : 'ignored';
      stats[key]++;
      stats.total++;
    }
    return { trackerType, stats, objectReports: uids.map((uid) => ({ trackerType, uid, errorReports: [] })) };
  };
  return {
    TRACKED_ENTITY: build(
      'TRACKED_ENTITY',
      flat.trackedEntities.map((x) => x.trackedEntity),
    ),
    ENROLLMENT: build(
      'ENROLLMENT',
      flat.enrollments.map((x) => x.enrollment),
    ),
    EVENT: build(
      'EVENT',
      flat.events.map((x) => x.event),
    ),
    RELATIONSHIP: build(
      'RELATIONSHIP',
      flat.relationships.map((x) => x.relationship),
    ),
  };
}

function sumStats(all: ImportStats[]): ImportStats {
  const out = emptyStats();
  for (const s of all) for (const key of Object.keys(out) as (keyof ImportStats)[]) out[key] += s[key];
  return out;
}
