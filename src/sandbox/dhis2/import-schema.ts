import { Ajv } from 'ajv';
import type { TrackerImportPayload } from './types.js';

/**
 * Structural check of a POST /api/tracker body before the importer's DHIS2-style validation (which
 * answers with E-codes). Like DHIS2's JSON mapper it coerces scalars to strings (`"value": 5.7` is
 * accepted as "5.7"), keeps unknown properties, and rejects bodies whose shape cannot be read (400).
 */
const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const bool = { type: 'boolean' } as const;
const timestamps = { createdAt: str, createdAtClient: str, updatedAt: str, updatedAtClient: str, storedBy: str };

const note = { type: 'object', required: ['value'], properties: { note: str, value: str } };
const attribute = {
  type: 'object',
  required: ['attribute'],
  properties: { attribute: str, value: nullableStr, displayName: str, valueType: str, code: str, ...timestamps },
};
const dataValue = {
  type: 'object',
  required: ['dataElement'],
  properties: { dataElement: str, value: nullableStr, providedElsewhere: bool, ...timestamps },
};
const item = {
  type: 'object',
  properties: {
    trackedEntity: { type: 'object', required: ['trackedEntity'], properties: { trackedEntity: str } },
    enrollment: { type: 'object', required: ['enrollment'], properties: { enrollment: str } },
    event: { type: 'object', required: ['event'], properties: { event: str } },
  },
};
const relationship = {
  type: 'object',
  required: ['relationshipType', 'from', 'to'],
  properties: { relationship: str, relationshipType: str, bidirectional: bool, from: item, to: item, ...timestamps },
};
const relationships = { type: 'array', items: relationship };
const event = {
  type: 'object',
  properties: {
    event: str,
    status: { enum: ['ACTIVE', 'COMPLETED', 'VISITED', 'SCHEDULE', 'OVERDUE', 'SKIPPED'] },
    program: str,
    programStage: str,
    enrollment: str,
    trackedEntity: str,
    orgUnit: str,
    occurredAt: str,
    scheduledAt: str,
    completedAt: str,
    followUp: bool,
    deleted: bool,
    attributeOptionCombo: str,
    attributeCategoryOptions: str,
    dataValues: { type: 'array', items: dataValue },
    notes: { type: 'array', items: note },
    relationships,
    ...timestamps,
  },
};
const enrollment = {
  type: 'object',
  properties: {
    enrollment: str,
    trackedEntity: str,
    program: str,
    status: { enum: ['ACTIVE', 'COMPLETED', 'CANCELLED'] },
    orgUnit: str,
    enrolledAt: str,
    occurredAt: str,
    completedAt: str,
    followUp: bool,
    deleted: bool,
    attributes: { type: 'array', items: attribute },
    events: { type: 'array', items: event },
    notes: { type: 'array', items: note },
    relationships,
    ...timestamps,
  },
};
const trackedEntity = {
  type: 'object',
  properties: {
    trackedEntity: str,
    trackedEntityType: str,
    orgUnit: str,
    inactive: bool,
    deleted: bool,
    potentialDuplicate: bool,
    attributes: { type: 'array', items: attribute },
    enrollments: { type: 'array', items: enrollment },
    relationships,
    ...timestamps,
  },
};

export const trackerImportPayloadSchema = {
  type: 'object',
  properties: {
    trackedEntities: { type: 'array', items: trackedEntity },
    enrollments: { type: 'array', items: enrollment },
    events: { type: 'array', items: event },
    relationships,
  },
};

const ajv = new Ajv({ allErrors: true, coerceTypes: true, strict: false });

/** Type guard for a POST /api/tracker body (coerces scalar values to strings in place). */
export const isTrackerImportPayload = ajv.compile<TrackerImportPayload>(trackerImportPayloadSchema);

export function describeImportPayloadErrors(): string {
  return (isTrackerImportPayload.errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`)
    .join('; ');
}
