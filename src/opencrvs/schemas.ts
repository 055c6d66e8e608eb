// JSON Schemas for what OpenCRVS sends back. Responses are checked here before the rest of the
// bridge sees them as typed values (docs/opencrvs-api.md, "The answer of a NOTIFY" and "Calls"). Unknown
// extra keys are allowed: newer OpenCRVS versions add fields, and only the ones listed here are relied upon.
import { Ajv, type Schema, type ValidateFunction } from 'ajv';
import { compileOnFirstUse } from '../util/compile-on-first-use.js';
import type { EventDocument, Location } from './types.js';

let ajv: Ajv | undefined;
function sharedAjv(): Ajv {
  ajv ??= new Ajv({ strict: false, allErrors: false });
  return ajv;
}
const compile = <T>(schema: Schema): ValidateFunction<T> => compileOnFirstUse(() => sharedAjv().compile<T>(schema));

const nullableString = { anyOf: [{ type: 'string' }, { type: 'null' }] };

export const eventActionSchema = {
  type: 'object',
  required: ['id', 'type', 'status', 'transactionId'],
  properties: {
    id: { type: 'string', minLength: 1 },
    type: { type: 'string', minLength: 1 },
    status: { enum: ['Requested', 'Accepted', 'Rejected'] },
    transactionId: { type: 'string' },
    createdAt: { type: 'string' },
    createdBy: { type: 'string' },
    createdByUserType: { type: 'string' },
    createdAtLocation: nullableString,
    declaration: { type: 'object' },
    annotation: { anyOf: [{ type: 'object' }, { type: 'null' }] },
    originalActionId: nullableString,
  },
} as const;

export const eventDocumentSchema = {
  type: 'object',
  required: ['id', 'type', 'trackingId', 'createdAt', 'updatedAt', 'actions'],
  properties: {
    id: { type: 'string', minLength: 1 },
    type: { type: 'string', minLength: 1 },
    trackingId: { type: 'string', minLength: 1 },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    actions: { type: 'array', items: eventActionSchema },
  },
} as const;

export const locationSchema = {
  type: 'object',
  required: ['id', 'name', 'locationType'],
  properties: {
    id: { type: 'string', minLength: 1 },
    name: { type: 'string' },
    externalId: nullableString,
    administrativeAreaId: nullableString,
    validUntil: nullableString,
    locationType: { type: 'string', minLength: 1 },
  },
} as const;

export interface TokenResponse {
  access_token: string;
  token_type?: string;
}

/** A FHIR Location as served by the v1.x location API (docs/opencrvs-api.md, "Calls"); only what we read. */
export interface FhirLocation {
  id: string;
  name?: string;
  status?: string;
  type?: { coding?: Array<{ system?: string; code?: string }> };
  identifier?: Array<{ system?: string; value?: string }>;
  partOf?: { reference?: string };
}

export interface FhirLocationBundle {
  resourceType: 'Bundle';
  entry?: Array<{ resource?: FhirLocation }>;
}

export const validateEventDocument = compile<EventDocument>(eventDocumentSchema);
export const validateLocations = compile<Location[]>({ type: 'array', items: locationSchema });
export const validateTokenResponse = compile<TokenResponse>({
  type: 'object',
  required: ['access_token'],
  properties: { access_token: { type: 'string', minLength: 1 }, token_type: { type: 'string' } },
});
export const validateFhirLocationBundle = compile<FhirLocationBundle>({
  type: 'object',
  required: ['resourceType'],
  properties: {
    resourceType: { const: 'Bundle' },
    entry: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          resource: {
            type: 'object',
            required: ['id'],
            properties: {
              id: { type: 'string', minLength: 1 },
              name: { type: 'string' },
              status: { type: 'string' },
              type: {
                type: 'object',
                properties: {
                  coding: {
                    type: 'array',
                    items: { type: 'object', properties: { system: { type: 'string' }, code: { type: 'string' } } },
                  },
                },
              },
              identifier: {
                type: 'array',
                items: { type: 'object', properties: { system: { type: 'string' }, value: { type: 'string' } } },
              },
              partOf: { type: 'object', properties: { reference: { type: 'string' } } },
            },
          },
        },
      },
    },
  },
});

/** A short, data-free reason for a failed validation (ajv paths and keywords only, no values). */
export function schemaProblem(errors: ReadonlyArray<{ instancePath: string; message?: string }> | null | undefined) {
  const first = errors?.[0];
  return first ? `${first.instancePath || '(root)'} ${first.message ?? 'is invalid'}` : 'is invalid';
}
