// What an OpenCRVS answer echoes of what the bridge sent (names, dates, field values) is taken out
// before the answer is logged or stored. Secrets are the SecretScrubber's (observability/secret-scrubber.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { packagePaths } from '../config/paths.js';
import { Echoes, scrubDeep } from '../observability/echoes.js';
import { isUuid } from '../util/uuid.js';

const MAX_DEPTH = 8;
const REDACTED = '[redacted]';

/**
 * Shorter values (a middle initial 'G', a surname 'Li', a number 2) are hidden only where an answer
 * quotes them as a JSON value (`"middlename":"G"`, or a parsed answer's string or number that is that
 * value whole), not in free text: taking out every 'M' or '12' of a message would garble it, and the
 * words it is classified by.
 */
const MIN_SENT_VALUE = 3;

/** Per field id, the option codes the OpenCRVS form offers it (`child.gender` → male, female, unknown). */
export type FormCodes = ReadonlyMap<string, ReadonlySet<string>>;

const NO_CODES: FormCodes = new Map();
const codesByForm = new Map<string, FormCodes>();

/**
 * The option codes of a country's forms, every event type of the version (profiles/opencrvs/<country>/
 * v<version>/*.json; options of SELECT, RADIO_GROUP, FILE_WITH_OPTIONS, NUMBER_WITH_UNIT fields). They
 * are the form's words, no one's data, and short ones are inside other words: 'male' hidden took
 * "female" apart. Without a readable profile there are none, and every value sent is hidden.
 */
export function formCodes(country: string, version: string): FormCodes {
  const dir = `${packagePaths.profiles}opencrvs/${country}/v${version}/`;
  const known = codesByForm.get(dir);
  if (known) return known;
  const codes = new Map<string, Set<string>>();
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    // No profile for this country and version: the mapping side refuses it, with a message.
  }
  for (const file of files) {
    let profile: unknown;
    try {
      profile = JSON.parse(readFileSync(`${dir}${file}`, 'utf8'));
    } catch {
      continue;
    }
    const fields = (profile as { fields?: unknown } | null)?.fields;
    for (const field of Array.isArray(fields) ? fields : []) {
      const { id, options } = (field ?? {}) as { id?: unknown; options?: unknown };
      if (typeof id !== 'string' || !Array.isArray(options)) continue;
      const set = codes.get(id) ?? new Set<string>();
      for (const option of options) if (typeof option === 'string') set.add(option);
      codes.set(id, set);
    }
  }
  codesByForm.set(dir, codes);
  return codes;
}

/**
 * The values of a declaration we sent (names, dates, addresses, numbers, as text), however short. An
 * answer that echoes them (a 5xx that quotes the request, a proxy page) must not carry them into logs or
 * the ledger, whose errors outlive the payload. Location UUIDs are kept: they are no one's data and say
 * which office was refused. So is a field's value that is one of its option codes (`codes`): the same
 * text in a free-text field (a surname 'NONE') is still hidden.
 */
export function sentValues(declaration: unknown, codes: FormCodes = NO_CODES): string[] {
  const out = new Set<string>();
  const walk = (value: unknown, depth: number, options: ReadonlySet<string> | undefined): void => {
    if (depth > MAX_DEPTH) return;
    if (typeof value === 'string') {
      const text = value.trim();
      if (text !== '' && !isUuid(text) && !options?.has(text)) out.add(text);
    } else if (typeof value === 'number' && Number.isFinite(value)) {
      out.add(JSON.stringify(value));
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, depth + 1, options);
    } else if (value && typeof value === 'object') {
      // Declaration keys are field ids; a document's `option`, an interval's `unit` are inside one.
      for (const [key, item] of Object.entries(value)) walk(item, depth + 1, options ?? codes.get(key));
    }
  };
  walk(declaration, 0, undefined);
  return [...out];
}

/**
 * The values we sent, ready to be found in an answer: as sent, and as an answer may write them (HTML-
 * or JSON-escaped, percent-encoded, in another Unicode normalisation or case; observability/echoes.ts).
 */
export function sentEchoes(sent: readonly string[]): Echoes {
  return new Echoes(sent, {
    caselessMinLength: MIN_SENT_VALUE,
    longest: MAX_SEARCHED,
    anywhereMinLength: MIN_SENT_VALUE,
  });
}

/**
 * Longer strings are cut before they are searched. What is kept of an answer is far shorter (the
 * SecretScrubber keeps 2,000 characters), and the values must go before that cut, or the start of one
 * it splits would stay.
 */
const MAX_SEARCHED = 65_536;

/**
 * A deep copy of an answer (its keys too) with every value we sent, in any form `sent` finds, replaced by
 * [redacted]; past the budget of one answer (observability/echoes.ts, scrubDeep), what is left is cut.
 */
export function withoutSentValues(value: unknown, sent: Echoes): unknown {
  if (sent.size === 0) return value;
  const hide = (text: string) => sent.hide(text);
  const leaf = (text: string) => (sent.isWhole(text) ? REDACTED : sent.hide(text));
  const number = (n: number) => (sent.isWhole(n) ? REDACTED : n);
  // A text answer is free text as a whole, not a JSON value.
  if (typeof value === 'string') return scrubDeep(value, hide, hide, { maxDepth: MAX_DEPTH, window: MAX_SEARCHED });
  return scrubDeep(value, leaf, hide, { maxDepth: MAX_DEPTH, window: MAX_SEARCHED }, number);
}

/**
 * OpenCRVS answers a bad declaration with a JSON-encoded list of field problems that echoes each
 * offending `value` (a name, a date of birth). What is kept is the field id and OpenCRVS's message, not
 * the value: errors are stored and logged, and outlive the payload. Other text is returned as it is.
 */
export function withoutValues(message: string): string {
  if (!message.trimStart().startsWith('[')) return message;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return message;
  }
  if (!Array.isArray(parsed)) return message;
  return JSON.stringify(
    parsed.map((item: unknown) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) return item;
      const { value: _dropped, ...rest }: Record<string, unknown> = { ...item };
      return rest;
    }),
  );
}
