// What the bridge accepts from a DHIS2 server, checked with ajv before anything reads it. The schemas
// require only what the bridge uses and let everything else through (DHIS2 adds fields between versions).
import type { ValidateFunction } from 'ajv';
import { createAjv } from '../../config/ajv.js';
import { compileOnFirstUse } from '../../util/compile-on-first-use.js';

type Obj = Record<string, unknown>;

export interface TrackerAttribute extends Obj {
  attribute: string;
  value?: string | null;
}

export interface TrackerDataValue extends Obj {
  dataElement: string;
  value?: string | null;
}

export interface TrackerEvent extends Obj {
  event: string;
  program?: string;
  programStage?: string;
  enrollment?: string;
  trackedEntity?: string;
  orgUnit?: string;
  status?: string;
  updatedAt?: string;
  dataValues?: TrackerDataValue[];
}

export interface TrackerEnrollment extends Obj {
  enrollment: string;
  program?: string;
  orgUnit?: string;
  status?: string;
  events?: TrackerEvent[];
}

export interface TrackerTrackedEntity extends Obj {
  trackedEntity: string;
  trackedEntityType?: string;
  orgUnit?: string;
  /** Soft-deleted: only a list asked with `includeDeleted=true` shows one. */
  deleted?: boolean;
  updatedAt?: string;
  attributes?: TrackerAttribute[];
  enrollments?: TrackerEnrollment[];
  relationships?: Obj[];
}

/** 2.41+: `{ pager, trackedEntities }`; 2.40: `{ page, pageSize, instances }`; paging=false: the list alone. */
export interface TrackedEntityPage extends Obj {
  trackedEntities?: TrackerTrackedEntity[];
  instances?: TrackerTrackedEntity[];
}

export interface ImportReport extends Obj {
  status: 'OK' | 'ERROR' | 'WARNING';
  validationReport?: { errorReports?: Array<{ errorCode?: string; uid?: string; message?: string }> };
}

const str = { type: 'string' };
const nullableStr = { type: ['string', 'null'] };
const dataValue = { type: 'object', required: ['dataElement'], properties: { dataElement: str, value: nullableStr } };
const attribute = { type: 'object', required: ['attribute'], properties: { attribute: str, value: nullableStr } };
const event = {
  type: 'object',
  required: ['event'],
  properties: {
    event: str,
    program: str,
    programStage: str,
    enrollment: str,
    trackedEntity: str,
    orgUnit: str,
    status: str,
    updatedAt: str,
    dataValues: { type: 'array', items: dataValue },
  },
};
const enrollment = {
  type: 'object',
  required: ['enrollment'],
  properties: {
    enrollment: str,
    program: str,
    orgUnit: str,
    status: str,
    events: { type: 'array', items: event },
  },
};
const trackedEntity = {
  type: 'object',
  required: ['trackedEntity'],
  properties: {
    trackedEntity: str,
    trackedEntityType: str,
    orgUnit: str,
    deleted: { type: 'boolean' },
    updatedAt: str,
    attributes: { type: 'array', items: attribute },
    enrollments: { type: 'array', items: enrollment },
    relationships: { type: 'array', items: { type: 'object' } },
  },
};
const page = {
  type: 'object',
  properties: {
    trackedEntities: { type: 'array', items: trackedEntity },
    instances: { type: 'array', items: trackedEntity },
  },
  anyOf: [{ required: ['trackedEntities'] }, { required: ['instances'] }],
};
const importReport = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { enum: ['OK', 'ERROR', 'WARNING'] },
    validationReport: {
      type: 'object',
      properties: {
        errorReports: {
          type: 'array',
          items: { type: 'object', properties: { errorCode: str, uid: str, message: str } },
        },
      },
    },
  },
};

let ajv: ReturnType<typeof createAjv> | undefined;
function sharedAjv(): ReturnType<typeof createAjv> {
  ajv ??= createAjv();
  return ajv;
}
const compile = <T>(schema: object): ValidateFunction<T> => compileOnFirstUse(() => sharedAjv().compile<T>(schema));
export const isTrackedEntityPage: ValidateFunction<TrackedEntityPage> = compile<TrackedEntityPage>(page);
export const isTrackedEntity: ValidateFunction<TrackerTrackedEntity> = compile<TrackerTrackedEntity>(trackedEntity);
export const isTrackerEvent: ValidateFunction<TrackerEvent> = compile<TrackerEvent>(event);
export const isObjectResponse: ValidateFunction<Obj> = compile<Obj>({ type: 'object' });
export const isImportReport: ValidateFunction<ImportReport> = compile<ImportReport>(importReport);

/** The first schema problem, for an error message (a path and a keyword: never the value, which may be personal). */
export function schemaProblem(validate: ValidateFunction): string {
  const first = validate.errors?.[0];
  return first ? `${first.instancePath || '(root)'} ${first.message ?? first.keyword}` : 'invalid';
}
