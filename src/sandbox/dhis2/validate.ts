import { type FlatPayload, programOfStage } from './flatten.js';
import { itemUid, type TrackerStore } from './store.js';
import { isUid, parseDhis2DateTime } from './time.js';
import type { Enrollment, ImportErrorReport, ImportStrategy, RelationshipItem, TrackerType, Uid } from './types.js';
import type { SimulatedUser } from './user.js';

export type Action = 'create' | 'update' | 'delete' | 'ignore';

export interface Plan {
  errors: ImportErrorReport[];
  warnings: ImportErrorReport[];
  /** What the importer will do with each object, by uid. */
  actions: Map<Uid, Action>;
}

/** What the store holds under a uid: nothing, a live object, or a soft-deleted one. */
type Existing = { deleted?: boolean } | undefined;

const CODES: Record<TrackerType, { exists: string; missing: string; deleted: string; label: string }> = {
  TRACKED_ENTITY: { exists: 'E1002', missing: 'E1063', deleted: 'E1114', label: 'TrackedEntity' },
  ENROLLMENT: { exists: 'E1080', missing: 'E1081', deleted: 'E1113', label: 'Enrollment' },
  EVENT: { exists: 'E1030', missing: 'E1032', deleted: 'E1082', label: 'Event' },
  RELATIONSHIP: { exists: 'E4015', missing: 'E4016', deleted: 'E4017', label: 'Relationship' },
};

/** Who imports (server.ts): the username for messages and their org units; none when seeding. */
export interface Importer {
  username: string;
  orgUnits: SimulatedUser;
}

/**
 * DHIS2's tracker validation, reduced to what a poller and a write-back can trip over: uid formats,
 * create-vs-update against what exists, required properties (E1121–E1124), missing parents, dates,
 * relationship ends, and the importing user's org units (see checkScope). Error codes and messages follow
 * the dhis2-docs error table.
 */
export function planImport(
  store: TrackerStore,
  flat: FlatPayload,
  strategy: ImportStrategy,
  importer?: Importer,
): Plan {
  const plan: Plan = { errors: [], warnings: [], actions: new Map() };
  const error = (trackerType: TrackerType, uid: Uid, errorCode: string, message: string) =>
    plan.errors.push({ trackerType, uid, errorCode, message });
  const payloadTe = new Set(flat.trackedEntities.map((te) => te.trackedEntity));
  const payloadEn = new Map(flat.enrollments.map((en) => [en.enrollment, en]));
  const payloadEv = new Set(flat.events.map((ev) => ev.event));

  const decide = (type: TrackerType, uid: Uid, existing: Existing): Action | undefined => {
    const codes = CODES[type];
    if (!isUid(uid)) {
      error(type, uid, 'E1048', `Object: \`${codes.label}\`, uid: \`${uid}\`, has an invalid uid format.`);
      return undefined;
    }
    if (existing?.deleted) {
      error(type, uid, codes.deleted, `${codes.label}: \`${uid}\`, is already deleted and can't be modified.`);
      return undefined;
    }
    if (strategy === 'CREATE' && existing) {
      error(type, uid, codes.exists, `${codes.label}: \`${uid}\`, already exists.`);
      return undefined;
    }
    if ((strategy === 'UPDATE' || strategy === 'DELETE') && !existing) {
      error(type, uid, codes.missing, `${codes.label}: \`${uid}\`, does not exist.`);
      return undefined;
    }
    const action: Action = strategy === 'DELETE' ? 'delete' : existing ? 'update' : 'create';
    plan.actions.set(uid, action);
    return action;
  };
  const requireProps = (type: TrackerType, uid: Uid, code: string, noun: string, props: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === '')
        error(type, uid, code, `Missing required ${noun} property: \`${name}\`.`);
    }
  };
  const checkDates = (type: TrackerType, uid: Uid, dates: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(dates)) {
      if (value !== undefined && parseDhis2DateTime(value) === undefined) {
        error(type, uid, 'E9999', `Invalid date time \`${value}\` for property \`${name}\`.`);
      }
    }
  };

  for (const te of flat.trackedEntities) {
    const uid = te.trackedEntity;
    const existing = store.trackedEntity(uid);
    const action = decide('TRACKED_ENTITY', uid, existing);
    if (!action || action === 'delete') continue;
    requireProps('TRACKED_ENTITY', uid, 'E1121', 'tracked entity', {
      trackedEntityType: te.trackedEntityType,
      orgUnit: te.orgUnit,
    });
    if (existing && te.trackedEntityType && existing.trackedEntityType !== te.trackedEntityType) {
      error('TRACKED_ENTITY', uid, 'E1126', 'Not allowed to update Tracked Entity property: trackedEntityType.');
    }
  }

  for (const en of flat.enrollments) {
    const uid = en.enrollment;
    const existing = store.enrollment(uid);
    const action = decide('ENROLLMENT', uid, existing);
    if (!action || action === 'delete') continue;
    requireProps('ENROLLMENT', uid, 'E1122', 'enrollment', {
      program: en.program,
      orgUnit: en.orgUnit,
      trackedEntity: en.trackedEntity,
    });
    if (!en.enrolledAt) error('ENROLLMENT', uid, 'E1025', 'Property enrolledAt is null.');
    checkDates('ENROLLMENT', uid, { enrolledAt: en.enrolledAt, occurredAt: en.occurredAt });
    if (en.trackedEntity && !payloadTe.has(en.trackedEntity) && !store.trackedEntity(en.trackedEntity)) {
      error('ENROLLMENT', uid, 'E1068', `Could not find TrackedEntity: \`${en.trackedEntity}\`, linked to Enrollment.`);
    }
    if (existing && en.program && existing.program !== en.program) {
      error(
        'ENROLLMENT',
        uid,
        'E1094',
        `Not allowed to update Enrollment: \`${uid}\`, existing Program \`${existing.program}\`.`,
      );
    }
  }

  for (const ev of flat.events) {
    const uid = ev.event;
    const existing = store.event(uid);
    const action = decide('EVENT', uid, existing);
    if (!action || action === 'delete') continue;
    requireProps('EVENT', uid, 'E1123', 'event', { orgUnit: ev.orgUnit, programStage: ev.programStage });
    const enrollmentUid = ev.enrollment ?? existing?.enrollment;
    const enrollment: Enrollment | undefined = enrollmentUid
      ? (payloadEn.get(enrollmentUid) ?? store.enrollment(enrollmentUid))
      : undefined;
    if (!enrollmentUid) error('EVENT', uid, 'E1033', `Event: \`${uid}\`, Enrollment value is NULL.`);
    else if (!enrollment) error('EVENT', uid, 'E1081', `Enrollment: \`${enrollmentUid}\`, does not exist.`);
    const program = ev.program ?? enrollment?.program ?? programOfStage(ev.programStage);
    if (enrollment && program && enrollment.program !== program) {
      error(
        'EVENT',
        uid,
        'E1079',
        `Event: \`${uid}\`, program: \`${program}\` is different from program defined in enrollment \`${enrollment.enrollment}\`.`,
      );
    }
    if (existing && program && existing.program !== program) {
      error(
        'EVENT',
        uid,
        'E1110',
        `Not allowed to update Event: \`${uid}\`, existing Program \`${existing.program}\`.`,
      );
    }
    const status = ev.status ?? 'ACTIVE';
    if (!ev.occurredAt && status !== 'SCHEDULE' && status !== 'SKIPPED' && status !== 'OVERDUE') {
      error('EVENT', uid, 'E1031', 'Event OccurredAt date is missing.');
    }
    checkDates('EVENT', uid, { occurredAt: ev.occurredAt, scheduledAt: ev.scheduledAt, completedAt: ev.completedAt });
  }

  const known: Record<keyof RelationshipItem, (uid: Uid) => boolean> = {
    trackedEntity: (uid) => payloadTe.has(uid) || Boolean(store.trackedEntity(uid)),
    enrollment: (uid) => payloadEn.has(uid) || Boolean(store.enrollment(uid)),
    event: (uid) => payloadEv.has(uid) || Boolean(store.event(uid)),
  };
  for (const rel of flat.relationships) {
    const uid = rel.relationship;
    const existing = store.relationship(uid);
    if (existing && strategy !== 'DELETE' && strategy !== 'CREATE') {
      // Relationships are immutable in DHIS2: re-sending one is reported as ignored, not as an update.
      plan.actions.set(uid, 'ignore');
      plan.warnings.push({
        trackerType: 'RELATIONSHIP',
        uid,
        errorCode: 'E4015',
        message: `Relationship: \`${uid}\`, already exists.`,
      });
      continue;
    }
    const action = decide('RELATIONSHIP', uid, existing ? {} : undefined);
    if (!action || action === 'delete') continue;
    const ends = [rel.from, rel.to].map((end) => {
      const kinds = (['trackedEntity', 'enrollment', 'event'] as const).filter((kind) => itemUid(end, kind));
      if (kinds.length !== 1) {
        error(
          'RELATIONSHIP',
          uid,
          'E4001',
          `Relationship Item \`from/to\` for Relationship \`${uid}\` is invalid: an Item can link only one Tracker entity.`,
        );
        return undefined;
      }
      const kind = kinds[0] ?? 'trackedEntity';
      const target = itemUid(end, kind) ?? '';
      if (!known[kind](target))
        error('RELATIONSHIP', uid, 'E4012', `Could not find \`${kind}\`: \`${target}\`, linked to Relationship.`);
      return `${kind}:${target}`;
    });
    if (ends[0] && ends[0] === ends[1])
      error('RELATIONSHIP', uid, 'E4000', `Relationship: \`${uid}\` cannot link to itself`);
    const duplicate = store
      .relationshipsOf('trackedEntity', rel.from.trackedEntity?.trackedEntity ?? '')
      .find(
        (other) =>
          other.relationshipType === rel.relationshipType &&
          other.from.trackedEntity?.trackedEntity === rel.from.trackedEntity?.trackedEntity &&
          other.to.trackedEntity?.trackedEntity === rel.to.trackedEntity?.trackedEntity,
      );
    if (duplicate && rel.from.trackedEntity && rel.to.trackedEntity) {
      error(
        'RELATIONSHIP',
        uid,
        'E4018',
        `Relationship: \`${uid}\`, linking trackedEntity: \`${rel.from.trackedEntity.trackedEntity}\` to trackedEntity: \`${rel.to.trackedEntity.trackedEntity}\` already exists.`,
      );
    }
  }
  if (importer) checkScope(store, flat, importer, plan, payloadEn);
  return plan;
}

/**
 * The importing user's org units, as DHIS2's security validators check them (dhis2-core's
 * SecurityOwnershipValidators and DefaultTrackerAccessManager): the program owner (the enrollment's org
 * unit, as the simulator keeps it) in the capture scope for anything below a tracked entity, the org unit
 * of a new object in the capture scope. Tracked entity: created or deleted, its registering org unit
 * (E1000); updated or deleted, the user must own it in one of its programs (E1003; no enrollment: its
 * registering org unit). Enrollment: created, its org unit (E1000); updated or deleted, its owner (E1102).
 * Event: created, its org unit (E1000) and its owner (E1102); updated or deleted, its owner only (E1102),
 * as 2.38 to 2.42 do (dhis2-core #10042; #21242 later checked an updated event's org unit too, and #23508
 * only when the update changes it). Relationships are not checked. Runs on the plan's decisions.
 */
function checkScope(
  store: TrackerStore,
  flat: FlatPayload,
  importer: Importer,
  plan: Plan,
  payloadEn: ReadonlyMap<Uid, Enrollment>,
): void {
  const { username, orgUnits } = importer;
  const error = (trackerType: TrackerType, uid: Uid, errorCode: string, message: string) =>
    plan.errors.push({ trackerType, uid, errorCode, message });
  const noWrite = (trackerType: TrackerType, uid: Uid, orgUnit: string | undefined) =>
    error(
      trackerType,
      uid,
      'E1000',
      `User: \`${username}\`, has no write access to OrganisationUnit: \`${orgUnit ?? ''}\`.`,
    );
  const notOwner = (trackerType: TrackerType, uid: Uid, te: string | undefined, program: string | undefined) =>
    error(
      trackerType,
      uid,
      'E1102',
      `User: \`${username}\`, does not have access to the tracked entity: \`${te ?? ''}\`, Program: \`${program ?? ''}\`, combination.`,
    );
  /** The stored enrollment: its org unit is the owner before this import moves it (DHIS2 checks the preheat). */
  const storedEnrollment = (enrollment: string | undefined) => (enrollment ? store.enrollment(enrollment) : undefined);

  for (const te of flat.trackedEntities) {
    const uid = te.trackedEntity;
    const existing = store.trackedEntity(uid);
    const action = plan.actions.get(uid);
    if (action === 'create' && !orgUnits.inCaptureScope(te.orgUnit)) noWrite('TRACKED_ENTITY', uid, te.orgUnit);
    if ((action !== 'update' && action !== 'delete') || !existing) continue;
    if (action === 'delete' && !orgUnits.inCaptureScope(existing.orgUnit))
      noWrite('TRACKED_ENTITY', uid, existing.orgUnit);
    const owners = store.enrollmentsOf(uid).map((en) => en.orgUnit);
    if (!(owners.length ? owners : [existing.orgUnit]).some((ou) => orgUnits.inCaptureScope(ou)))
      error(
        'TRACKED_ENTITY',
        uid,
        'E1003',
        `User: \`${username}\`, has no write access to TrackedEntity: \`${uid}\` (OWNERSHIP_ACCESS_DENIED).`,
      );
  }
  for (const en of flat.enrollments) {
    const uid = en.enrollment;
    const existing = store.enrollment(uid);
    const action = plan.actions.get(uid);
    if (action === 'create' && !orgUnits.inCaptureScope(en.orgUnit)) noWrite('ENROLLMENT', uid, en.orgUnit);
    if ((action === 'update' || action === 'delete') && existing && !orgUnits.inCaptureScope(existing.orgUnit))
      notOwner('ENROLLMENT', uid, existing.trackedEntity, existing.program);
  }
  for (const ev of flat.events) {
    const uid = ev.event;
    const existing = store.event(uid);
    const action = plan.actions.get(uid);
    if (!action || action === 'ignore') continue;
    const enrollmentUid = ev.enrollment ?? existing?.enrollment;
    const enrollment = storedEnrollment(enrollmentUid) ?? (enrollmentUid ? payloadEn.get(enrollmentUid) : undefined);
    const orgUnit = ev.orgUnit ?? existing?.orgUnit;
    if (action === 'create' && !orgUnits.inCaptureScope(orgUnit)) noWrite('EVENT', uid, orgUnit);
    if (enrollment && !orgUnits.inCaptureScope(enrollment.orgUnit))
      notOwner('EVENT', uid, enrollment.trackedEntity, enrollment.program);
  }
}
