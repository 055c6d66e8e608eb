// Personal data and secrets never reach a log line. Redaction happens here, at the logger, so a
// careless `log.info({ resource })` anywhere in the code base is still safe.

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
    'apikey',
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

const REDACTED = '[redacted]';
const MAX_DEPTH = 8;

// Secret-bearing fragments inside free text: query-string credentials (the OpenCRVS token URL carries
// the client secret), bearer tokens, and JWTs.
const STRING_SCRUBBERS: ReadonlyArray<[RegExp, string]> = [
  [/([?&](?:client_secret|client_id|access_token|token|password|secret)=)[^&\s"']*/gi, `$1${REDACTED}`],
  [/(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`],
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, REDACTED],
  [/(\/\/[^/\s:@]+:)[^@\s/]+@/g, `$1${REDACTED}@`],
];

export function scrubString(text: string): string {
  let out = text;
  for (const [pattern, replacement] of STRING_SCRUBBERS) out = out.replace(pattern, replacement);
  return out;
}

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEYS.has(key.toLowerCase());
}

/** Returns a copy of `value` with sensitive keys replaced and secret fragments scrubbed from strings. */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[depth limit]';
  if (value instanceof Error) {
    return {
      type: value.name,
      message: scrubString(value.message),
      stack: value.stack ? scrubString(value.stack) : undefined,
    };
  }
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = isSensitiveKey(key) && item !== undefined && item !== null ? REDACTED : redactDeep(item, depth + 1);
  }
  return out;
}
