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
    'display', // a FHIR reference's display is usually the patient's name (subject.display)
    'valuestring', // an extension's or an Observation's free text
    // an extension's birth date or time (a parent's, the child's) and place: keys are matched whole, so
    // `address` above does not cover them (valueHumanName, valueContactPoint and valueIdentifier hold
    // `family`, `value`, … which are)
    'valuedate',
    'valuedatetime',
    'valuetime', // a time of birth on its own (an extension's or an Observation's), as personal as the date
    'valueinstant',
    'valueaddress',
    'contact', // Patient.contact: next of kin, with their names, phones and addresses
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

/** Credential keys as they appear quoted in JSON or `key: value` text (util.inspect, YAML, prose). */
const CREDENTIAL_KEYS =
  'client_?secret|access_?token|refresh_?token|id_?token|password|passwd|pwd|api_?key|x-api-key|x-auth-token|hmac_?secret|secret|token|authorization|(?:set-)?cookie';
/** The same unquoted, before `:` or `=`: only those that are no ordinary word (`token: expired` stays). */
const BARE_CREDENTIAL_KEYS =
  'client_?secret|access_?token|refresh_?token|id_?token|password|passwd|api_?key|x-api-key|x-auth-token|hmac_?secret|(?:set-)?cookie';
/** Words that are a credential's key unquoted only before a quoted value, as util.inspect writes one (`token: 'abc'`). */
const WORD_CREDENTIAL_KEYS = 'secret|token|authorization';
/** Credential keys in a query string, a fragment or a form body, wherever they start a word. */
const QUERY_CREDENTIAL_KEYS =
  'client_secret|access_token|refresh_token|id_token|token|password|passwd|pwd|hmac_?secret|secret|api_?key|x-api-key|x-auth-token';
/**
 * Short names that are a credential only as a parameter of their own (`?key=`, `&sig=`, a form body's
 * first), not as the end of another name or in prose (`sort_key=`, `cache_key=`, `cursor key=…`).
 */
const QUERY_SIGNATURE_KEYS = 'key|sig|signature';
/** A character of a token, a base64 value or a URL-safe credential. */
const CRED = '[A-Za-z0-9._~+/=-]';

// Secret-bearing fragments inside free text: query-string credentials (the OpenCRVS token URL carries
// the client secret), bearer tokens, and JWTs. Every pattern can start only at a word it names (a key,
// a scheme, `eyJ`, `//`) and reads on only to the end of what follows it, so 1 MB is scrubbed in linear
// time (test/unit/redact.test.ts, `npm run bench:scrub`).
const STRING_SCRUBBERS: ReadonlyArray<[RegExp, string]> = [
  // A key not glued to a word before it: after `?` or `&` as in a URL, but also `;` (the old separator),
  // `&amp;` (a URL in HTML), `#` (an implicit-grant fragment, `#access_token=…`) and a form body's start.
  // `client_id` is no secret: it names the client in every log line that should.
  [
    new RegExp(
      `((?:(?<![A-Za-z0-9])(?:${QUERY_CREDENTIAL_KEYS})|(?:^|(?<=[?&;#]))(?:${QUERY_SIGNATURE_KEYS}))=)[^&\\s"']*`,
      'gi',
    ),
    `$1${REDACTED}`,
  ],
  // The same URL-encoded, as a URL carried in another's query (`?next=https%3A…%3Fclient_secret%3D…`):
  // after `%3F`, `%26`, `%23` or `%3B` too, and up to the encoded `&` (`%26`) of the inner URL, which a
  // value would have had encoded once more (`%2526`).
  [
    new RegExp(
      `((?:(?<![A-Za-z0-9])(?:${QUERY_CREDENTIAL_KEYS})|(?<=%(?:3F|26|23|3B))(?:${QUERY_CREDENTIAL_KEYS}|${QUERY_SIGNATURE_KEYS}))%3D)(?:[^&%\\s"']|%(?!26))*`,
      'gi',
    ),
    `$1${REDACTED}`,
  ],
  // A Cookie request header holds cookies only, every one a possible session: the whole header value, not
  // its first pair (the next pattern stops at `;`). Not Set-Cookie: its one pair ends at `;`, and the
  // attributes after it (Path, HttpOnly) say nothing secret. It starts only at the word and reads to the
  // line's end once.
  [/((?<![A-Za-z0-9_-])cookie[ \t]*:[ \t]*)(?![ \t"'[{])[^\n"']+/gi, `$1${REDACTED}`],
  // `"access_token":"…"` (a token answer quoted in an error), `'password': '…'`, `password: hunter2`,
  // `client_secret = …`, `X-API-Key: …`, and `token: '…'` (a word alone, but not before quotes): a quoted
  // value whole (escaped quotes included), else up to a separator. Not a key at the end of a dotted path:
  // `sources[0].auth.password: must be string` is a ConfigError, whose problem never repeats the value.
  [
    new RegExp(
      `((?<![A-Za-z0-9_.])(?:(["'])(?:${CREDENTIAL_KEYS})\\2|(?:${BARE_CREDENTIAL_KEYS})|(?:${WORD_CREDENTIAL_KEYS})(?=[ \\t]*[:=][ \\t]*["']))[ \\t]*[:=][ \\t]*)(?:(["'])(?:(?!\\3)[^\\\\\\n]|\\\\.)*\\3|(?!["'\\[{])[^\\s,;&"'}\\]]+)`,
      'gi',
    ),
    `$1$3${REDACTED}$3`,
  ],
  // Authorization schemes, in any case: OAuth's bearer, DHIS2's personal access tokens (`ApiToken
  // d2pat_…`), and HTTP Basic and `Token` (Django REST and others), the last two only before what looks
  // like a credential: 16 characters or more, or 8 or more that mix letters with digits or have a capital
  // after a small letter (base64: `dXNlcjpwYXNz`). `token 3 times`, `basic 401`, `Token Expired`, `basic
  // OAuth2`, `token URL:` and a challenge's `Basic realm="…"` stay. The scheme in any case; the
  // credential's letters are what tell it (no `i` flag). Once a run is under 16 characters, the other
  // tests read at most those 16.
  [/\b(bearer|apitoken)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`],
  [
    new RegExp(
      `\\b([Bb][Aa][Ss][Ii][Cc]|[Tt][Oo][Kk][Ee][Nn])\\s+(?!realm=)(?=${CRED}{16}|(?=${CRED}{8})(?:(?=[A-Za-z._~+/=-]*[0-9])(?=[0-9._~+/=-]*[A-Za-z])|(?=[A-Z0-9._~+/=-]*[a-z]${CRED}*?[A-Z])))${CRED}+`,
      'g',
    ),
    `$1 ${REDACTED}`,
  ],
  // A JWT: `eyJ…` followed by two dotted parts. Written so that no character is read more than a few times
  // (a 64 kB answer of `eyJeyJ…`, or of one long run without a dot, is read in linear time): a match starts
  // only where a run of token characters starts (the lookbehind) and is kept ($1) up to its first `eyJ`; the
  // first `eyJ` is the one to try, since a later one in the same run has a shorter part before the dot.
  // `(?=(x+))\2` is an atomic x+ (a lookahead is never entered again): a run that ends without its dot
  // fails at once instead of being given back one character at a time. It hides exactly what
  // /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g did (test/unit/redact.test.ts compares them).
  [
    /(?<![A-Za-z0-9_-])(?=([A-Za-z0-9_-]*?)eyJ)\1eyJ(?=([A-Za-z0-9_-]{5,}))\2\.(?=([A-Za-z0-9_-]{5,}))\3\.[A-Za-z0-9_-]*/g,
    `$1${REDACTED}`,
  ],
  // A URL's userinfo, all of it: `user:password`, a password with an unescaped `@` in it (the userinfo
  // ends at the authority's last `@`), or a token given as the user alone (`https://TOKEN@host`). Only
  // after a scheme: `//` and `@` in prose (`docs//faq@v2`) are no URL. The scheme starts where its run
  // of scheme characters does, so `a.a.a.…` is read once, not once from each `a`.
  [/((?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#"'<>\\`{}|^]*@/g, `$1${REDACTED}@`],
  // A protocol-relative URL (`//user:password@host`, as a config or an HTML page writes one): its `//`
  // starts a word (after a space, a quote, `=`, `(`, …, not glued to a word or a scheme's `:` as in
  // `docs//faq@v2`) and, unlike after a scheme, it counts only with a password: `//x@y` in prose stays.
  // The user part reads no `:` and the rest no `/`, so each character is read from one `//` only.
  [/((?<![A-Za-z0-9_+.%:/-])\/\/)[^\s/?#"'<>\\`{}|^:]+:[^\s/?#"'<>\\`{}|^]*@/g, `$1${REDACTED}@`],
  // Search parameters that carry personal data (FHIR `family=`, `birthdate=`, `identifier=`, chained
  // `subject:Patient.name=`, a modifier written `name%3Acontains=` as URLSearchParams does, full-text
  // `_content=`, DHIS2's `filter=attribute:EQ:value` and `phone=`), wherever a URL is logged, after any
  // separator a query string uses (`&amp;` included).
  [
    /([?&;#](?:[\w.:-]*[.:])?(?:name|given|family|phonetic|birthdate|birth-date|death-date|deathdate|deceased|identifier|phone|email|telecom|address(?:-[a-z]+)?|mrn|nid|brn|passport|mothersMaidenName|_content|_text|filter)(?:(?::|%3A)[a-z-]+)?=)[^&\s"']*/gi,
    `$1${REDACTED}`,
  ],
];

const LOCAL_PART = /[A-Za-z0-9._%+-]/;
const DOMAIN = /[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/y;

/**
 * Email addresses in free text: what /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g
 * matches, found from each `@` instead. That pattern tried every start in a run of local-part characters
 * and read the run to its end each time: 4.7 s for 64 kB of 'a' (an OpenCRVS 503 body), on the event loop.
 * Here the local part is read back from its `@` once, and a domain is read only after an `@`.
 */
function hideEmails(text: string): string {
  let out = '';
  let done = 0; // what is before this is in `out`; a match may not start before it (as with /g)
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    if (at < done) continue;
    let start = at;
    while (start > done && LOCAL_PART.test(text[start - 1] ?? '')) start--;
    if (start === at) continue;
    DOMAIN.lastIndex = at + 1;
    if (!DOMAIN.test(text)) continue;
    out += `${text.slice(done, start)}${REDACTED}`;
    done = DOMAIN.lastIndex;
  }
  return done === 0 ? text : out + text.slice(done);
}

export function scrubString(text: string): string {
  let out = text;
  for (const [pattern, replacement] of STRING_SCRUBBERS) out = out.replace(pattern, replacement);
  return hideEmails(out);
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
