import { readdirSync, readFileSync } from 'node:fs';
import { Ajv, type JSONSchemaType } from 'ajv';
import { packagePaths } from '../../config/paths.js';
import type { SimVersion } from './types.js';

/** The parts of a form profile (profiles/opencrvs/<country>/v<version>/<event>.json) the simulator uses. */
interface FormProfileFile {
  eventType: string;
  fields: Array<{ id: string; type: string }>;
  presentational: Array<{ id: string; type: string }>;
  annotation: Array<{ id: string; type: string; required: boolean }>;
}

const idType = {
  type: 'object',
  required: ['id', 'type'],
  properties: { id: { type: 'string' }, type: { type: 'string' } },
} as const;

const profileSchema: JSONSchemaType<FormProfileFile> = {
  type: 'object',
  required: ['eventType', 'fields', 'presentational', 'annotation'],
  properties: {
    eventType: { type: 'string' },
    fields: { type: 'array', items: idType },
    presentational: { type: 'array', items: idType },
    annotation: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'type', 'required'],
        properties: { id: { type: 'string' }, type: { type: 'string' }, required: { type: 'boolean' } },
      },
    },
  },
};

const validateProfile = new Ajv({ strict: false }).compile(profileSchema);

/** One event type's declaration form as NOTIFY validation sees it. */
export interface EventForm {
  eventType: string;
  /** Every declaration field id (data and presentational alike) with its field type. */
  fields: Map<string, string>;
  /** The DECLARE review fields, the only keys allowed in `annotation`. */
  annotation: Map<string, { type: string; required: boolean }>;
}

export function profileDir(country: string, version: SimVersion): string {
  return `${packagePaths.profiles}opencrvs/${country}/v${version}/`;
}

/** Loads every form profile of a country and version, keyed by event type. */
export function loadForms(country: string, version: SimVersion, dir = profileDir(country, version)) {
  const forms = new Map<string, EventForm>();
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.json'))) {
    const data: unknown = JSON.parse(readFileSync(`${dir}${name}`, 'utf8'));
    if (!validateProfile(data)) {
      throw new Error(`form profile ${dir}${name}: ${validateProfile.errors?.[0]?.message ?? 'invalid'}`);
    }
    // Presentational fields (dividers, headings…) are form fields too: OpenCRVS does not answer
    // "Unexpected field" for them, it maps them to plain text.
    const fields = new Map<string, string>();
    for (const field of [...data.fields, ...data.presentational]) fields.set(field.id, field.type);
    const annotation = new Map(data.annotation.map((f) => [f.id, { type: f.type, required: f.required }]));
    forms.set(data.eventType, { eventType: data.eventType, fields, annotation });
  }
  if (forms.size === 0) throw new Error(`no form profiles in ${dir}`);
  return forms;
}
