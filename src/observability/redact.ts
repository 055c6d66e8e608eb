// Personal data and secrets never reach a log line. Redaction happens here, at the logger, so a
// careless `log.info({ resource })` anywhere in the code base is still safe.
import { innerErrors } from './inner-errors.js';

/** Keys whose values are personal data or secrets, wherever they appear in a logged object. */
const SENSITIVE_KEYS = new Set(
  [
    // secrets
    'clientsecret',
    'client_secret',
    'secret',
    'hmacsecret',
    'password',
    'token',
    'accesstoken',
    'access_token',
    'authorization',
    'cookie',
    'set-cookie',
    'apikey',
    'api_key',
    'x-api-key',
    'refresh_token',
    'refreshtoken',
    'id_token',
    // personal data (FHIR, OpenCRVS declarations, DHIS2 attributes)
    'name',
    'names',
    'given',
    'family',
    'firstname',
    'middlename',
    'surname',
    'birthdate',
    'dob',
    'deceaseddatetime',
    'deceaseddate',
    'identifier',
    'identifiers',
    'nid',
    'brn',
    'passport',
    'address',
    'telecom',
    'phone',
    'phoneno',
    'email',
    // the same under the names other systems and our own code give them
    'fullname',
    'nationalid',
    'dateofbirth',
    'phonenumber',
    'mrn',
    'street',
    'line',
    'text', // a FHIR resource's narrative (text.div) holds the name
    'div',
    'declaration',
    'payload',
    'resource',
    'body',
    'attributes',
    'datavalues',
    'value',
    'values',
  ].map((k) => k.toLowerCase()),
);

/**
 * OpenCRVS declaration field ids are dotted (`child.dob`, `mother.nid`, `informant.phoneNo`,
 * `eventDetails.date` = the date of death): the last segment says what the value is.
 */
const SENSITIVE_FIELD_SUFFIXES = new Set(
  ['name', 'dob', 'nid', 'brn', 'passport', 'address', 'phoneno', 'email', 'date', 'age', 'description'].map((k) =>
    k.toLowerCase(),
  ),
);

const REDACTED = '[redacted]';
const MAX_DEPTH = 8;

// Secret-bearing fragments inside free text: query-string credentials (the OpenCRVS token URL carries
// the client secret), bearer tokens, and JWTs.
const STRING_SCRUBBERS: ReadonlyArray<[RegExp, string]> = [
  [
    /([?&](?:client_secret|client_id|access_token|refresh_token|id_token|token|password|secret|api_?key|key|sig|signature)=)[^&\s"']*/gi,
    `$1${REDACTED}`,
  ],
  // Authorization schemes: OAuth (as libraries spell it) and HTTP Basic, DHIS2's personal access tokens (`ApiToken d2pat_…`).
  [/\b([Bb]earer|BEARER|Basic|ApiToken)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`],
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, REDACTED],
  [/(\/\/[^/\s:@]+:)[^@\s/]+@/g, `$1${REDACTED}@`],
  // Search parameters that carry personal data (FHIR `family=`, `birthdate=`, `identifier=`, chained
  // `subject:Patient.name=`, a modifier written `name%3Acontains=` as URLSearchParams does, full-text
  // `_content=`, DHIS2's `filter=attribute:EQ:value` and `phone=`), wherever a URL is logged.
  [
    /([?&](?:[\w.:-]*[.:])?(?:name|given|family|phonetic|birthdate|birth-date|death-date|deathdate|deceased|identifier|phone|email|telecom|address(?:-[a-z]+)?|mrn|nid|brn|passport|mothersMaidenName|_content|_text|filter)(?:(?::|%3A)[a-z-]+)?=)[^&\s"']*/gi,
    `$1${REDACTED}`,
  ],
  // Email addresses in free text.
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, REDACTED],
];

export function scrubString(text: string): string {
  let out = text;
  for (const [pattern, replacement] of STRING_SCRUBBERS) out = out.replace(pattern, replacement);
  return out;
}

export function isSensitiveKey(key: string): boolean {
  const lower = key.toLowerCase();
  if (SENSITIVE_KEYS.has(lower)) return true;
  const dot = lower.lastIndexOf('.');
  return dot >= 0 && SENSITIVE_FIELD_SUFFIXES.has(lower.slice(dot + 1));
}

// Error properties worth keeping: classifications and statuses, never bodies or payloads.
const ERROR_FIELDS = ['code', 'status', 'kind', 'classification', 'operation', 'retryable'] as const;

function redactError(error: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { type: error.name, message: scrubString(error.message) };
  const fields: Record<string, unknown> = { ...error };
  for (const field of ERROR_FIELDS) {
    const value = fields[field];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      out[field] = typeof value === 'string' ? scrubString(value) : value;
    }
  }
  if (error.stack) out.stack = scrubString(error.stack);
  if (error.cause !== undefined) out.cause = redactDeep(error.cause, depth + 1);
  // An AggregateError's own message is empty: the reasons are its inner errors (not enumerable, so
  // never copied above). A few, their messages scrubbed like the outer one's; no stacks.
  const inner = innerErrors(error);
  if (inner) {
    out.errors = inner.shown.map((item) => ({ ...item, message: scrubString(item.message) }));
    if (inner.more > 0) out.moreErrors = inner.more;
  }
  return out;
}

/** Returns a copy of `value` with sensitive keys replaced and secret fragments scrubbed from strings. */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[depth limit]';
  if (value instanceof Error) return redactError(value, depth);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = isSensitiveKey(key) && item !== undefined && item !== null ? REDACTED : redactDeep(item, depth + 1);
  }
  return out;
}
