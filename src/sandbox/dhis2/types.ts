/**
 * DHIS2 Tracker (2.40+ `/api/tracker`) object shapes as they appear on the wire, in both the import
 * payloads (POST /api/tracker, nested or flat) and the export responses (GET /api/tracker/…).
 * Field names follow the dhis2-docs tracker examples copied under test/fixtures/dhis2/.
 *
 * These types describe the simulator's own data. The DHIS2 source must validate what it receives
 * (ajv) rather than import them: they say what a well-formed server sends, not what every server does.
 */

/** An 11-character DHIS2 identifier: a letter followed by 10 letters or digits. */
export type Uid = string;

/** DHIS2 timestamps are ISO 8601 local date-times without a zone, e.g. `2019-08-21T13:25:38.022`. */
export type Dhis2DateTime = string;

export type EnrollmentStatus = 'ACTIVE' | 'COMPLETED' | 'CANCELLED';
export type EventStatus = 'ACTIVE' | 'COMPLETED' | 'VISITED' | 'SCHEDULE' | 'OVERDUE' | 'SKIPPED';
export type ImportStrategy = 'CREATE' | 'UPDATE' | 'CREATE_AND_UPDATE' | 'DELETE';

export interface Geometry {
  type: string;
  coordinates: unknown;
}

/** A tracked entity attribute value (on a tracked entity, or the program view of it on an enrollment). */
export interface Attribute {
  attribute: Uid;
  code?: string;
  displayName?: string;
  createdAt?: Dhis2DateTime;
  updatedAt?: Dhis2DateTime;
  storedBy?: string;
  valueType?: string;
  /** `null` or `""` in an import payload deletes the value. */
  value: string | null;
}

/** A data element value captured on an event. */
export interface DataValue {
  dataElement: Uid;
  value: string | null;
  createdAt?: Dhis2DateTime;
  updatedAt?: Dhis2DateTime;
  storedBy?: string;
  providedElsewhere?: boolean;
}

export interface Note {
  note?: Uid;
  value: string;
  storedAt?: Dhis2DateTime;
  storedBy?: string;
}

export interface Event {
  event?: Uid;
  status?: EventStatus;
  program?: Uid;
  programStage?: Uid;
  enrollment?: Uid;
  enrollmentStatus?: EnrollmentStatus;
  trackedEntity?: Uid;
  orgUnit?: Uid;
  occurredAt?: Dhis2DateTime;
  scheduledAt?: Dhis2DateTime;
  completedAt?: Dhis2DateTime;
  followUp?: boolean;
  deleted?: boolean;
  createdAt?: Dhis2DateTime;
  createdAtClient?: Dhis2DateTime;
  updatedAt?: Dhis2DateTime;
  updatedAtClient?: Dhis2DateTime;
  attributeOptionCombo?: Uid;
  attributeCategoryOptions?: string;
  geometry?: Geometry;
  storedBy?: string;
  dataValues?: DataValue[];
  notes?: Note[];
  relationships?: Relationship[];
}

export interface Enrollment {
  enrollment?: Uid;
  trackedEntity?: Uid;
  trackedEntityType?: Uid;
  program?: Uid;
  status?: EnrollmentStatus;
  orgUnit?: Uid;
  enrolledAt?: Dhis2DateTime;
  occurredAt?: Dhis2DateTime;
  completedAt?: Dhis2DateTime;
  followUp?: boolean;
  deleted?: boolean;
  createdAt?: Dhis2DateTime;
  createdAtClient?: Dhis2DateTime;
  updatedAt?: Dhis2DateTime;
  updatedAtClient?: Dhis2DateTime;
  attributeOptionCombo?: Uid;
  geometry?: Geometry;
  storedBy?: string;
  attributes?: Attribute[];
  events?: Event[];
  notes?: Note[];
  relationships?: Relationship[];
}

/** One end of a relationship. Imports name the object by uid only; exports may embed it. */
export interface RelationshipItem {
  trackedEntity?: { trackedEntity: Uid } & Omit<TrackedEntity, 'trackedEntity'>;
  enrollment?: { enrollment: Uid } & Omit<Enrollment, 'enrollment'>;
  event?: { event: Uid } & Omit<Event, 'event'>;
}

export interface Relationship {
  relationship?: Uid;
  relationshipType: Uid;
  relationshipName?: string;
  bidirectional?: boolean;
  createdAt?: Dhis2DateTime;
  createdAtClient?: Dhis2DateTime;
  updatedAt?: Dhis2DateTime;
  from: RelationshipItem;
  to: RelationshipItem;
}

export interface ProgramOwner {
  orgUnit: Uid;
  trackedEntity: Uid;
  program: Uid;
}

export interface TrackedEntity {
  trackedEntity?: Uid;
  trackedEntityType?: Uid;
  orgUnit?: Uid;
  createdAt?: Dhis2DateTime;
  createdAtClient?: Dhis2DateTime;
  updatedAt?: Dhis2DateTime;
  updatedAtClient?: Dhis2DateTime;
  inactive?: boolean;
  deleted?: boolean;
  potentialDuplicate?: boolean;
  geometry?: Geometry;
  storedBy?: string;
  attributes?: Attribute[];
  enrollments?: Enrollment[];
  relationships?: Relationship[];
  programOwners?: ProgramOwner[];
}

/** Body of POST /api/tracker: nested (children inside parents) or flat (sibling arrays), or both. */
export interface TrackerImportPayload {
  trackedEntities?: TrackedEntity[];
  enrollments?: Enrollment[];
  events?: Event[];
  relationships?: Relationship[];
}

export type TrackerType = 'TRACKED_ENTITY' | 'ENROLLMENT' | 'EVENT' | 'RELATIONSHIP';

export interface ImportStats {
  created: number;
  updated: number;
  deleted: number;
  ignored: number;
  total: number;
}

/** One validation failure, as DHIS2 reports it (`errorCode` like E1063; `uid` of the offending object). */
export interface ImportErrorReport {
  message: string;
  errorCode: string;
  trackerType: TrackerType;
  uid: Uid;
}

export interface ObjectReport {
  trackerType: TrackerType;
  uid: Uid;
  errorReports: ImportErrorReport[];
}

export interface TypeReport {
  trackerType: TrackerType;
  stats: ImportStats;
  objectReports: ObjectReport[];
}

/** Response of a synchronous POST /api/tracker?async=false (reportMode=ERRORS-like, with objectReports). */
export interface ImportReport {
  status: 'OK' | 'ERROR' | 'WARNING';
  validationReport: { errorReports: ImportErrorReport[]; warningReports: ImportErrorReport[] };
  stats: ImportStats;
  bundleReport?: {
    status: 'OK' | 'ERROR' | 'WARNING';
    typeReportMap: Partial<Record<TrackerType, TypeReport>>;
    stats: ImportStats;
  };
  message?: string;
}

/** What the simulator remembers of each POST /api/tracker it received (for tests and the demo). */
export interface WriteRecord {
  receivedAt: Dhis2DateTime;
  importStrategy: ImportStrategy;
  /** The body as received. */
  payload: TrackerImportPayload;
  /** HTTP status answered: 200 on OK, 409 when validation failed. */
  httpStatus: number;
  report: ImportReport;
}
