// Finding known values (what the bridge sent, its secrets) where an answer or an error quotes them, in
// whatever form the quoting wrote them: HTML entities (`O&#39;Brien`, `Nd&eacute;`), JSON escapes
// (`Nd\u00e9`, `\"`), percent-encoding (`Nd%C3%A9`, a form's `+` for a space), another Unicode
// normalisation (é as one code point or two), typographic apostrophes, another case. An exact substring
// match found none of these.
//
// The text is decoded into a searchable form that remembers, for every character, which characters of
// the original it came from; a value found there is replaced in the original. Decoding runs a few times
// over (an echo escaped twice: a JSON text quoted in an HTML page), and every pass is searched, the
// undecoded text too (a value that holds `%41` is quoted as it is as often as decoded).

const REDACTED = '[redacted]';
/** Decoding passes after the text as it is. */
const DECODE_PASSES = 3;

/**
 * A text and, for each of its UTF-16 units, the span [from, to) of the original text it stands for.
 * `null` maps are the identity (the original itself, or a form of it of the same length).
 */
interface Layer {
  text: string;
  from: Int32Array | null;
  to: Int32Array | null;
  /**
   * A caseless layer's memory of case: per unit, 1 where it was written in a case other than lower (or,
   * where the layer only lower-cased ASCII, the text before).
   */
  cased?: Uint8Array | string;
}

interface Needle {
  /** The value folded case-preserving: matched anywhere, as an exact substring was. */
  exact: string;
  /** The value folded caseless: matched only where it stands as a word (see EchoOptions). */
  caseless?: string;
  /**
   * The value written as a JSON value (`"G"`, `12`), matched only where it stands as one, in either case
   * (EchoOptions.anywhereMinLength); `quoted`: its quotes are kept, the text between them hidden.
   */
  json?: { quoted: boolean };
}

export interface EchoOptions {
  /**
   * Values at least this long (with a letter that has case) are also matched in another case, where
   * the match stands as a word and is not written all in lower case: an upper-cased echo ("NDÉ",
   * "O'BRIEN") is both. A name inside another word ("Ali" in "vALId") is not that name, and a server's
   * own words and field ids are lower case ("child.name" for a surname Child): taking those out would
   * shred the very message that says what went wrong, and the words the bridge classifies an answer
   * by. A value sent in lower case is found in lower case anyway (matched as sent, anywhere).
   */
  caselessMinLength: number;
  /** Also found written all in lower case (secrets: no server word or field id is one). */
  lowerCaseToo?: boolean;
  /**
   * Values longer than this are not looked for: the caller cuts every text it searches to this length
   * first, so such a value is never found whole, and preparing it (each form folded) costs about a
   * second of the event loop per 2 MB.
   */
  longest?: number;
  /**
   * Values shorter than this are found only where they stand as a whole JSON value, written as a JSON
   * string (or a number, for one that reads as a number): after a `:`, `[` or `,`, before a `,`, `}` or
   * `]` (`"middlename":"G"` in a declaration quoted back), in any case and any form above; and as the
   * whole of a string (or a number) of a parsed answer (isWhole). Not in free text: every 'M' or '12' of a
   * message would go. Unset: every value is found anywhere.
   */
  anywhereMinLength?: number;
}

/** What JSON.stringify writes for a number (a value so written may be echoed without quotes). */
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** Values to find, compiled once; hide() may then be called on any number of texts. */
export class Echoes {
  private readonly needles: Needle[];
  private readonly lowerCaseToo: boolean;
  /** The values found only as JSON values, folded caseless (isWhole). */
  private readonly wholes = new Set<string>();
  private readonly anywhereMinLength: number;

  constructor(values: Iterable<string>, options: EchoOptions) {
    const seen = new Set<string>();
    this.needles = [];
    this.lowerCaseToo = options.lowerCaseToo === true;
    const longest = options.longest ?? Number.POSITIVE_INFINITY;
    const anywhere = options.anywhereMinLength ?? 0;
    this.anywhereMinLength = anywhere;
    for (const value of values) {
      if (value === '' || value.length > longest) continue;
      if (value.length < anywhere) {
        this.wholes.add(foldText(value, true));
        const forms: Array<[string, boolean]> = [[JSON.stringify(value), true]];
        if (JSON_NUMBER.test(value)) forms.push([value, false]);
        for (const [form, quoted] of forms) {
          const exact = foldText(form, false);
          if (seen.has(`json:${exact}`)) continue;
          seen.add(`json:${exact}`);
          const cased = form.toLowerCase() !== form.toUpperCase();
          this.needles.push(
            cased ? { exact, caseless: foldText(form, true), json: { quoted } } : { exact, json: { quoted } },
          );
        }
        continue;
      }
      const caseless = value.length >= options.caselessMinLength && value.toLowerCase() !== value.toUpperCase();
      // A form body writes a space as '+' (its '+' as %2B, which decoding turns back into '+').
      const written = value.includes(' ') ? [value, value.replaceAll(' ', '+')] : [value];
      for (const form of written) {
        const exact = foldText(form, false);
        if (seen.has(exact)) continue;
        seen.add(exact);
        this.needles.push(caseless ? { exact, caseless: foldText(form, true) } : { exact });
      }
    }
  }

  get size(): number {
    return this.needles.length;
  }

  /** Whether a string or number of a parsed answer is, as a whole, a value found only as a JSON value. */
  isWhole(value: string | number): boolean {
    if (this.wholes.size === 0) return false;
    const text = typeof value === 'number' ? JSON.stringify(value) : value.trim();
    return text.length < this.anywhereMinLength && this.wholes.has(foldText(text, true));
  }

  /** The text with every value found, in any of the forms above, replaced by [redacted]. */
  hide(text: string): string {
    if (this.needles.length === 0 || text === '') return text;
    // A text to decode or fold is first read without the maps back to the original (most hold no value,
    // and the maps were most of the time spent): only one where a value may be is read again with them.
    if ((DECODABLE.test(text) || NOT_PLAIN_ASCII.test(text)) && !this.mayHold(text)) return text;
    const spans: Array<[number, number]> = [];
    let layer: Layer | undefined = { text, from: null, to: null };
    for (let pass = 0; layer && pass <= DECODE_PASSES; pass++) {
      if (pass > 0) layer = decoded(layer, true);
      if (layer) this.search(layer, spans);
    }
    return spans.length === 0 ? text : replaced(text, spans);
  }

  /** Whether any value is in any decoded form of the text, word or case aside (a superset of what hide finds). */
  private mayHold(text: string): boolean {
    let layer: Layer | undefined = { text, from: null, to: null };
    for (let pass = 0; layer && pass <= DECODE_PASSES; pass++) {
      if (pass > 0) layer = decoded(layer, false);
      if (!layer) break;
      const exact = folded(layer, false, false).text;
      let caseless: string | undefined;
      for (const needle of this.needles) {
        if (exact.includes(needle.exact)) return true;
        if (needle.caseless === undefined) continue;
        caseless ??= folded(layer, true, false).text;
        if (caseless.includes(needle.caseless)) return true;
      }
    }
    return false;
  }

  private search(layer: Layer, spans: Array<[number, number]>): void {
    const exact = folded(layer, false, true);
    let caseless: Layer | undefined;
    for (const needle of this.needles) {
      find(exact, needle.exact, needle.json ? 'json value' : 'anywhere', spans, needle.json?.quoted);
      if (needle.caseless === undefined) continue;
      caseless ??= folded(layer, true, true);
      const where = needle.json ? 'json value' : this.lowerCaseToo ? 'word' : 'cased word';
      find(caseless, needle.caseless, where, spans, needle.json?.quoted);
    }
  }
}

/**
 * Every place `needle` is found: anywhere, or only as a word (and not written all in lower case), or
 * only as a JSON value (`quoted`: what is between its quotes is hidden, the quotes kept).
 */
function find(
  layer: Layer,
  needle: string,
  where: 'anywhere' | 'word' | 'cased word' | 'json value',
  spans: Array<[number, number]>,
  quoted = false,
): void {
  const { text } = layer;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const end = at + needle.length;
    if (where === 'json value') {
      if (!JSON_BEFORE.has(jsonNeighbour(text, at - 1, -1)) || !JSON_AFTER.has(jsonNeighbour(text, end, 1))) continue;
      if (quoted) {
        spans.push([fromOf(layer, at + 1), toOf(layer, end - 2)]);
        continue;
      }
    } else if (where !== 'anywhere' && (isWordUnit(text, at - 1) || isWordUnit(text, end))) continue;
    if (where === 'cased word' && !casedWithin(layer, at, end)) continue;
    spans.push([fromOf(layer, at), toOf(layer, end - 1)]);
  }
}

const JSON_BEFORE = new Set([':', '[', ',']);
const JSON_AFTER = new Set([',', '}', ']']);
const JSON_SPACE = new Set([' ', '\t', '\n', '\r']);

/** The character next to a JSON value, past a few spaces (an indented echo); '' at either end. */
function jsonNeighbour(text: string, from: number, step: 1 | -1): string {
  let at = from;
  for (let spaces = 0; spaces < 16 && JSON_SPACE.has(text.charAt(at)); spaces++) at += step;
  return at < 0 ? '' : text.charAt(at);
}

function casedWithin(layer: Layer, at: number, end: number): boolean {
  const { cased } = layer;
  if (typeof cased === 'string') return /[A-Z]/.test(cased.slice(at, end));
  return cased?.subarray(at, end).includes(1) === true;
}

// `_` too: `BAD_REQUEST` is one word, not a name BAD.
const WORD = /[\p{L}\p{N}\p{M}_]/u;

function isWordUnit(text: string, index: number): boolean {
  return index >= 0 && index < text.length && WORD.test(text.charAt(index));
}

function fromOf(layer: Layer, index: number): number {
  return layer.from ? (layer.from[index] as number) : index;
}

function toOf(layer: Layer, index: number): number {
  return layer.to ? (layer.to[index] as number) : index + 1;
}

/** Overlapping spans become one [redacted]: a full name and the surname inside it go together. */
function replaced(text: string, spans: Array<[number, number]>): string {
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = '';
  let kept = 0;
  let open: [number, number] | undefined;
  for (const span of spans) {
    if (open && span[0] < open[1]) {
      open[1] = Math.max(open[1], span[1]);
      continue;
    }
    if (open) {
      out += `${text.slice(kept, open[0])}${REDACTED}`;
      kept = open[1];
    }
    open = [span[0], span[1]];
  }
  if (open) {
    out += `${text.slice(kept, open[0])}${REDACTED}`;
    kept = open[1];
  }
  return out + text.slice(kept);
}

// Folding: one spelling for what reads the same.

const APOSTROPHES = new Set(['\u2018', '\u2019', '\u02bc', '\uff07']);
const SPACES = new Set(['\u00a0', '\u202f', '\u2007']);

function foldChar(char: string, caseless: boolean): string {
  const plain = APOSTROPHES.has(char) ? "'" : SPACES.has(char) ? ' ' : char.normalize('NFD');
  // Upper then lower: 'ß' and 'SS' both become 'ss'.
  return caseless ? plain.toUpperCase().toLowerCase() : plain;
}

function foldText(text: string, caseless: boolean): string {
  let out = '';
  for (const char of text) out += foldChar(char, caseless);
  return out;
}

// What a character other than ASCII folds to, and whether it has case, remembered: a text repeats the
// few it has (normalize() on every one of them was most of the time an answer took).
interface Folding {
  text: string;
  cased: boolean;
}
const FOLDED = [new Map<string, Folding>(), new Map<string, Folding>()] as const;
const MAX_FOLDED = 4096;

function foldCached(char: string, caseless: boolean): Folding {
  const cache = FOLDED[caseless ? 1 : 0];
  let out = cache.get(char);
  if (out === undefined) {
    out = { text: foldChar(char, caseless), cased: char !== char.toLowerCase() };
    if (cache.size >= MAX_FOLDED) cache.clear();
    cache.set(char, out);
  }
  return out;
}

const NOT_PLAIN_ASCII = /[^\x20-\x7e\t\n\r]/;

/** The layer folded; `mapped` false: its text only (its maps are left out, and mean nothing). */
function folded(layer: Layer, caseless: boolean, mapped: boolean): Layer {
  const { text } = layer;
  // Most texts: nothing to normalise, and lower-casing ASCII keeps every position.
  if (!NOT_PLAIN_ASCII.test(text)) return caseless ? { ...layer, text: text.toLowerCase(), cased: text } : layer;
  const out = new Builder(text.length, mapped, caseless);
  // ASCII folds to itself (lower-cased, when caseless) unit for unit: it is copied a run at a time.
  let index = 0;
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code < 0x80) continue;
    out.copy(layer, index, at, caseless);
    const pair = code >= 0xd800 && code <= 0xdbff && (text.codePointAt(at) as number) > 0xffff;
    const char = text.slice(at, pair ? at + 2 : at + 1);
    const folding = foldCached(char, caseless);
    out.push(folding.text, fromOf(layer, at), toOf(layer, at + char.length - 1), caseless && folding.cased);
    if (pair) at += 1;
    index = at + 1;
  }
  out.copy(layer, index, text.length, caseless);
  return out.layer();
}

/**
 * A layer written a piece at a time, its maps in typed arrays that grow as needed; or, not `mapped`,
 * its text alone.
 */
class Builder {
  private text = '';
  private from: Int32Array;
  private to: Int32Array;
  private cased: Uint8Array | undefined;
  private length = 0;

  constructor(
    capacity: number,
    private readonly mapped: boolean,
    withCase = false,
  ) {
    const size = mapped ? Math.max(16, capacity) : 0;
    this.from = new Int32Array(size);
    this.to = new Int32Array(size);
    this.cased = withCase && mapped ? new Uint8Array(size) : undefined;
  }

  /** Units that each stand for the span [from, to) of the original. */
  push(text: string, from: number, to: number, cased = false): void {
    this.text += text;
    if (!this.mapped) return;
    this.reserve(text.length);
    for (let k = this.length; k < this.length + text.length; k++) {
      this.from[k] = from;
      this.to[k] = to;
      if (cased && this.cased) this.cased[k] = 1;
    }
    this.length += text.length;
  }

  /** The units [start, end) of `layer` as they are (lower-cased, if `lower`: ASCII only). */
  copy(layer: Layer, start: number, end: number, lower = false): void {
    if (end <= start) return;
    const run = layer.text.slice(start, end);
    this.text += lower ? run.toLowerCase() : run;
    if (!this.mapped) return;
    const n = end - start;
    this.reserve(n);
    const at = this.length;
    if (layer.from && layer.to) {
      this.from.set(layer.from.subarray(start, end), at);
      this.to.set(layer.to.subarray(start, end), at);
    } else {
      for (let k = 0; k < n; k++) {
        this.from[at + k] = start + k;
        this.to[at + k] = start + k + 1;
      }
    }
    if (lower && this.cased) {
      for (let k = 0; k < n; k++) {
        const code = run.charCodeAt(k);
        if (code >= 65 && code <= 90) this.cased[at + k] = 1;
      }
    }
    this.length += n;
  }

  layer(): Layer {
    if (!this.mapped) return { text: this.text, from: null, to: null };
    const layer: Layer = {
      text: this.text,
      from: this.from.subarray(0, this.length),
      to: this.to.subarray(0, this.length),
    };
    if (this.cased) layer.cased = this.cased.subarray(0, this.length);
    return layer;
  }

  private reserve(more: number): void {
    const needed = this.length + more;
    if (needed <= this.from.length) return;
    const size = Math.max(needed, this.from.length * 2);
    const grow = <T extends Int32Array | Uint8Array>(array: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(array.subarray(0, this.length));
      return next;
    };
    this.from = grow(this.from, (n) => new Int32Array(n));
    this.to = grow(this.to, (n) => new Int32Array(n));
    if (this.cased) this.cased = grow(this.cased, (n) => new Uint8Array(n));
  }
}

// Decoding: one pass of HTML entities, JSON (and JavaScript) backslash escapes and percent-encoding.

const DECODABLE = /[&\\%]/;
const ESCAPE = /[&\\%]/g;
const ENTITY = /&(?:#([0-9]{1,7});?|#[xX]([0-9a-fA-F]{1,6});?|([A-Za-z][A-Za-z0-9]{1,31});)/y;
const UNICODE_ESCAPE = /\\u([0-9a-fA-F]{4})/y;
const PERCENT_BYTE = /%([0-9a-fA-F]{2})/y;
const BACKSLASHED: Record<string, string> = {
  '"': '"',
  "'": "'",
  '\\': '\\',
  '/': '/',
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
};

/** The text with one layer of escaping undone, or undefined when there was none. */
function decoded(layer: Layer, mapped: boolean): Layer | undefined {
  const { text } = layer;
  if (!DECODABLE.test(text)) return undefined;
  const out = new Builder(text.length, mapped);
  let changed = false;
  // Text between escapes is copied a run at a time.
  let kept = 0;
  ESCAPE.lastIndex = 0;
  for (let found = ESCAPE.exec(text); found; found = ESCAPE.exec(text)) {
    const i = found.index;
    const char = found[0];
    const undone = char === '&' ? entityAt(text, i) : char === '\\' ? escapeAt(text, i) : percentAt(text, i);
    if (!undone) continue;
    out.copy(layer, kept, i);
    out.push(undone.text, fromOf(layer, i), toOf(layer, i + undone.length - 1));
    kept = i + undone.length;
    ESCAPE.lastIndex = kept;
    changed = true;
  }
  if (!changed) return undefined;
  out.copy(layer, kept, text.length);
  return out.layer();
}

interface Decoded {
  text: string;
  /** How many units of the text it replaces. */
  length: number;
}

function codePoint(value: number): string | undefined {
  if (value <= 0 || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return undefined;
  return String.fromCodePoint(value);
}

function entityAt(text: string, at: number): Decoded | undefined {
  ENTITY.lastIndex = at;
  const match = ENTITY.exec(text);
  if (!match) return undefined;
  const [whole, decimal, hex, name] = match;
  const decodedText =
    decimal !== undefined
      ? codePoint(Number.parseInt(decimal, 10))
      : hex !== undefined
        ? codePoint(Number.parseInt(hex, 16))
        : namedEntity(name ?? '');
  return decodedText === undefined ? undefined : { text: decodedText, length: whole.length };
}

function escapeAt(text: string, at: number): Decoded | undefined {
  UNICODE_ESCAPE.lastIndex = at;
  const unicode = UNICODE_ESCAPE.exec(text);
  // One UTF-16 unit: a pair written as two escapes is two units, together one character again.
  if (unicode) return { text: String.fromCharCode(Number.parseInt(unicode[1] ?? '', 16)), length: 6 };
  const escaped = BACKSLASHED[text.charAt(at + 1)];
  return escaped === undefined ? undefined : { text: escaped, length: 2 };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** One character as percent-encoded UTF-8 (`%C3%A9`), or one ASCII byte. */
function percentAt(text: string, at: number): Decoded | undefined {
  const first = byteAt(text, at);
  if (first === undefined) return undefined;
  if (first < 0x80) return first === 0 ? undefined : { text: String.fromCharCode(first), length: 3 };
  const count =
    first >= 0xc2 && first <= 0xdf ? 2 : first >= 0xe0 && first <= 0xef ? 3 : first >= 0xf0 && first <= 0xf4 ? 4 : 0;
  if (count === 0) return undefined;
  const bytes = new Uint8Array(count);
  bytes[0] = first;
  for (let k = 1; k < count; k++) {
    const next = byteAt(text, at + 3 * k);
    if (next === undefined || next < 0x80 || next > 0xbf) return undefined;
    bytes[k] = next;
  }
  try {
    return { text: UTF8.decode(bytes), length: 3 * count };
  } catch {
    return undefined;
  }
}

function byteAt(text: string, at: number): number | undefined {
  PERCENT_BYTE.lastIndex = at;
  const match = PERCENT_BYTE.exec(text);
  return match ? Number.parseInt(match[1] ?? '', 16) : undefined;
}

// HTML's named entities, as far as names are written with them: an accented letter is its base letter
// and a combining mark (`&Ccaron;` is C + U+030C), which folding to NFD makes the same as `Č`; the
// letters that decompose to nothing and the punctuation a name may hold are listed.
const ACCENTS: Record<string, string> = {
  acute: '\u0301',
  grave: '\u0300',
  circ: '\u0302',
  tilde: '\u0303',
  macr: '\u0304',
  breve: '\u0306',
  dot: '\u0307',
  uml: '\u0308',
  ring: '\u030a',
  dblac: '\u030b',
  caron: '\u030c',
  cedil: '\u0327',
  ogon: '\u0328',
};
const ACCENTED = /^([A-Za-z])(acute|grave|circ|tilde|macr|breve|dot|uml|ring|dblac|caron|cedil|ogon)$/;
const NAMED: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  lsquo: '\u2018',
  rsquo: '\u2019',
  sbquo: '\u201a',
  ldquo: '\u201c',
  rdquo: '\u201d',
  ndash: '\u2013',
  mdash: '\u2014',
  AElig: 'Æ',
  aelig: 'æ',
  OElig: 'Œ',
  oelig: 'œ',
  Oslash: 'Ø',
  oslash: 'ø',
  ETH: 'Ð',
  eth: 'ð',
  THORN: 'Þ',
  thorn: 'þ',
  szlig: 'ß',
  Dstrok: 'Đ',
  dstrok: 'đ',
  Hstrok: 'Ħ',
  hstrok: 'ħ',
  Lstrok: 'Ł',
  lstrok: 'ł',
  Tstrok: 'Ŧ',
  tstrok: 'ŧ',
  ENG: 'Ŋ',
  eng: 'ŋ',
  imath: 'ı',
  inodot: 'ı',
  IJlig: 'Ĳ',
  ijlig: 'ĳ',
};

function namedEntity(name: string): string | undefined {
  const known = NAMED[name];
  if (known !== undefined) return known;
  const accented = ACCENTED.exec(name);
  return accented ? `${accented[1]}${ACCENTS[accented[2] ?? '']}` : undefined;
}

// An answer, scrubbed string by string, within a budget.

/** What stands for a string, key or value past the budget: nothing past it is kept unchecked. */
export const CUT = '[cut: answer too long to check]';

export interface DeepLimits {
  /** Containers deeper than this are replaced by '[depth limit]'. */
  maxDepth: number;
  /**
   * Each string and key is searched and kept up to this many units, the rest dropped (the SecretScrubber
   * keeps 2,000 of them, and searches past that for a value that starts before its cut).
   */
  window: number;
}

/**
 * Units searched in all, over every string and key of one value. An answer may be 64 MB (opencrvs/
 * http.ts), and searching runs on the event loop: a 2.4 MB error body took seconds, during which no
 * receiver was acknowledged and no lock renewed. What is kept of an answer is far less: OpenCRVS's
 * `message` (2,000 characters), its `error` and `error_description`, or a page's title (classify.ts).
 */
const MAX_SCRUBBED_UNITS = 131_072;
/** Strings, keys and other values visited in all: each costs its own work however short it is. */
const MAX_SCRUBBED_ITEMS = 4096;

/**
 * A copy of `value` with every string passed through `scrubText` and every key through `scrubKey`,
 * read breadth first (an answer's own top-level `message` and `error` before whatever it nests) until
 * MAX_SCRUBBED_UNITS or MAX_SCRUBBED_ITEMS is spent. Past that, a string, a number or a nested value is
 * CUT, and the rest of an array or an object is one CUT item or entry: never passed on unchecked.
 */
export function scrubDeep(
  value: unknown,
  scrubText: (text: string) => string,
  scrubKey: (key: string) => string,
  limits: DeepLimits,
  scrubNumber: (value: number) => unknown = (n) => n,
): unknown {
  let units = MAX_SCRUBBED_UNITS;
  let items = MAX_SCRUBBED_ITEMS;
  const spend = (length: number): boolean => {
    if (items <= 0 || length > units) {
      units = 0;
      items = 0;
      return false;
    }
    items -= 1;
    units -= length;
    return true;
  };
  /** The text searched and scrubbed, or undefined past the budget. */
  const text = (raw: string, scrub: (text: string) => string): string | undefined => {
    const searched = raw.length > limits.window ? raw.slice(0, limits.window) : raw;
    return spend(searched.length) ? scrub(searched) : undefined;
  };
  // Containers wait their turn (breadth first) in a slot of their parent's copy, CUT until filled.
  const pending: Array<{ from: object; depth: number; fill: (copy: unknown) => void }> = [];
  const visit = (item: unknown, depth: number, fill: (copy: unknown) => void): unknown => {
    if (typeof item === 'string') return text(item, scrubText) ?? CUT;
    if (!spend(0)) return CUT;
    if (typeof item === 'number') return scrubNumber(item);
    if (item === null || typeof item !== 'object') return item;
    if (depth >= limits.maxDepth) return '[depth limit]';
    pending.push({ from: item, depth, fill });
    return CUT;
  };
  let root = visit(value, 0, (copy) => {
    root = copy;
  });
  for (let next = 0; next < pending.length && items > 0; next++) {
    const { from, depth, fill } = pending[next] as (typeof pending)[number];
    if (Array.isArray(from)) {
      const copy: unknown[] = [];
      fill(copy);
      for (const item of from) {
        if (items <= 0) {
          copy.push(CUT);
          break;
        }
        const at = copy.length;
        copy.push(
          visit(item, depth + 1, (inner) => {
            copy[at] = inner;
          }),
        );
      }
      continue;
    }
    const copy: Record<string, unknown> = {};
    fill(copy);
    for (const [key, item] of Object.entries(from)) {
      const clean = items <= 0 ? undefined : text(key, scrubKey);
      if (clean === undefined) {
        copy[CUT] = CUT;
        break;
      }
      copy[clean] = visit(item, depth + 1, (inner) => {
        copy[clean] = inner;
      });
    }
  }
  return root;
}
