// Compiles mapping expressions once: fhirpath.js (with the R4 model for FHIR sources, no model for plain
// JSON such as DHIS2 payloads) is the reference engine and the syntax check; the fast path in fast.ts
// evaluates the common subset directly and hands anything else back to fhirpath.js.
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { type AstNode, type ChoiceInfo, FastCompiler, type FastEnv, NEED_SLOW, Prim, Unsupported } from './fast.js';
import {
  type CodeSet,
  calendarDate,
  daysBetween,
  humanName,
  itemIsCoded,
  resourceRef,
  severalDatesError,
  yearsBetween,
} from './functions.js';

export type SourceKind = 'fhir' | 'dhis2';

export interface CompiledExpr {
  readonly text: string;
  /** fhirpath.js's parse tree of it, for the load-time checks (search-coverage.ts, element-check.ts). */
  readonly ast: AstNode;
  /** True when the fast path compiled it (it may still fall back per call). */
  readonly fast: boolean;
  /** Calls the fast path handed to fhirpath.js (a diagnostic for the benchmark and tests). */
  readonly fallbacks: number;
  /**
   * The result may be an array of the context itself (`%observations`) or one shared by every call (a
   * literal): read it, never change it.
   */
  evaluate(root: unknown, vars: Record<string, unknown>): unknown[];
  /** The reference engine only (used by the differential test and the benchmark). */
  evaluateReference(root: unknown, vars: Record<string, unknown>): unknown[];
}

export class ExpressionError extends Error {}

/**
 * An expression that compiled but failed on this record's data (date arithmetic on a malformed value,
 * say). The record is invalid, kept in the ledger with this message; other records map on.
 */
export class ExpressionRuntimeError extends Error {
  constructor(
    readonly expression: string,
    reason: string,
  ) {
    super(`expression failed on this record: ${reason} (in ${expression})`);
    this.name = 'ExpressionRuntimeError';
  }
}

function runtimeError(text: string, err: unknown): ExpressionRuntimeError {
  // Scrubbed whole, then cut: a value may hold a newline.
  const reason = withoutValues(err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  return new ExpressionRuntimeError(text, reason.length > 300 ? `${reason.slice(0, 299)}…` : reason);
}

/**
 * fhirpath.js quotes the data it failed on (`Unexpected collection ["Amani","Neema"]; expected singleton…`,
 * `"1990-13-01" is not a date.`), and this message is kept in the ledger and shown to operators: the
 * values go, the shape of the problem stays.
 */
/**
 * Everything from the first `quote` to the last: a value may itself hold a quote (fhirpath.js does not
 * escape it), so pairing quotes could leave part of it outside. A lone double quote cuts the rest (the
 * value was cut off); a lone single quote is an apostrophe.
 */
function quotedOut(text: string, quote: string, cutLone: boolean): string {
  const first = text.indexOf(quote);
  if (first < 0) return text;
  const last = text.lastIndexOf(quote);
  if (last === first) return cutLone ? `${text.slice(0, first)}${quote}…` : text;
  return `${text.slice(0, first)}${quote}…${quote}${text.slice(last + 1)}`;
}

const CANNOT_CONVERT = /\bCannot convert /i;
const TO_TYPE_AT = /(?= to \w)/gi;
const TO_TYPE = / to (?:a |an )?\w+/iy;

/**
 * fhirpath.js names a value it cannot convert without quotes: "Cannot convert Plot 12 Kabwata to a number".
 * Up to the last " to <type>": the value may itself hold " to " ("Road to Kabwata") or a newline. What
 * /\b(Cannot convert ).+( to (?:a |an )?\w+)/gis made `$1…$2`, each character read once: that pattern
 * read the rest of the text again from every "Cannot convert " a value repeated (0.25 s for 64 kB).
 */
function withoutConvertedValue(message: string): string {
  const start = message.search(CANNOT_CONVERT);
  if (start < 0) return message;
  const after = start + 'Cannot convert '.length;
  let last = -1;
  for (const found of message.matchAll(TO_TYPE_AT)) if (found.index > after) last = found.index;
  if (last < 0) return message;
  TO_TYPE.lastIndex = last;
  const type = TO_TYPE.exec(message)?.[0] ?? '';
  return `${message.slice(0, after)}…${type}${message.slice(last + type.length)}`;
}

export function withoutValues(message: string): string {
  let out = withoutConvertedValue(message);
  out = quotedOut(quotedOut(out, '"', true), "'", false);
  // JSON arrays and objects, innermost first, until none is left.
  for (let before = ''; before !== out; ) {
    before = out;
    out = out.replace(/\[[^[\]{}]*\]|\{[^[\]{}]*\}/g, '…');
  }
  // Unquoted numbers and dates (a birth date, a phone number): any run of two or more digits.
  return out.replace(/[+-]?\d[\d.:+\-TZ]*\d/g, '…');
}

// FHIRPath 2.0 function names (plus fhirpath.js's FHIR extras), so that a typo fails at load instead of at
// run time inside a where() on data we did not see in tests.
const KNOWN_FUNCTIONS = new Set(
  (
    'empty exists all allTrue anyTrue allFalse anyFalse subsetOf supersetOf count distinct isDistinct where select ' +
    'repeat repeatAll ofType as is first last tail skip take intersect exclude union combine iif toBoolean ' +
    'convertsToBoolean toInteger convertsToInteger toDate convertsToDate toDateTime convertsToDateTime toDecimal ' +
    'convertsToDecimal toQuantity convertsToQuantity toString convertsToString toTime convertsToTime indexOf ' +
    'lastIndexOf substring startsWith endsWith contains upper lower replace matches matchesFull replaceMatches ' +
    'length toChars split join trim encode decode escape unescape abs ceiling exp floor ln log power round sqrt ' +
    'truncate children descendants trace now today timeOfDay not extension hasValue getValue resolve memberOf ' +
    'htmlChecks conformsTo type sum min max avg aggregate lowBoundary highBoundary precision yearOf monthOf dayOf ' +
    'hourOf minuteOf secondOf millisecondOf timezoneOffsetOf dateOf timeOf sort coalesce single comparable ' +
    'coded daysAfter yearsAfter ref humanName calendarDate'
  ).split(' '),
);

function buildChoiceInfo(): ChoiceInfo {
  const names = new Set<string>();
  const suffixes = new Set<string>();
  for (const [path, types] of Object.entries(r4.choiceTypePaths)) {
    names.add(path.slice(path.lastIndexOf('.') + 1));
    for (const t of types) suffixes.add(t);
  }
  return { names, suffixes };
}

const FHIR_CHOICE = buildChoiceInfo();
const NO_CHOICE: ChoiceInfo = { names: new Set(), suffixes: new Set() };

function walk(node: AstNode, visit: (n: AstNode) => void): void {
  visit(node);
  for (const c of node.children ?? []) walk(c, visit);
}

function finish(items: unknown[]): unknown[] {
  // Most results hold no primitive with extensions: given back as they are, not copied (every expression
  // of every record ends here).
  let i = 0;
  while (i < items.length && !(items[i] instanceof Prim)) i++;
  if (i === items.length) return items;
  const out: unknown[] = items.slice(0, i);
  for (; i < items.length; i++) {
    const item = items[i];
    if (item instanceof Prim) {
      if (item.value !== undefined && item.value !== null) out.push(item.value);
    } else {
      out.push(item);
    }
  }
  return out;
}

export class ExpressionCompiler {
  private readonly fastCompiler: FastCompiler;
  private readonly env: FastEnv = { vars: {}, codeSets: new Map() };
  private readonly userInvocationTable: Record<string, unknown>;

  constructor(
    readonly source: SourceKind,
    private readonly codeSets: ReadonlyMap<string, CodeSet>,
    private readonly useFastPath = true,
    timeZone?: string,
  ) {
    this.fastCompiler = new FastCompiler(source === 'fhir' ? FHIR_CHOICE : NO_CHOICE, codeSets);
    this.env = { vars: {}, codeSets, ...(timeZone ? { timeZone } : {}) };
    const val = (v: unknown) => fhirpath.util.valData(v);
    // d.daysAfter(other), d.yearsAfter(other): one date each side, counted from `other` to `d`.
    const between = (
      name: string,
      count: (since: unknown, date: unknown, timeZone?: string) => number | undefined,
    ) => ({
      fn: (inputs: unknown[], since: unknown[]) => {
        if (inputs.length > 1) throw severalDatesError(name, 'input');
        if (since.length > 1) throw severalDatesError(name, 'argument');
        if (inputs.length === 0 || since.length === 0) return [];
        const n = count(val(since[0]), val(inputs[0]), timeZone);
        return n === undefined ? [] : [n];
      },
      arity: { 1: ['Any'] },
    });
    // where(criteria) keeps only the items whose criteria is true, and exists(criteria) is where(…).exists()
    // (FHIRPath N1, 5.2.1 and 5.1.2): an item whose criteria is false is left out. fhirpath.js 5.1.1 asks
    // whether its first result is a JavaScript truthy value, and a boolean read from the data is a node
    // object there, truthy even when false: `%items.where(flag)` kept the items whose flag is false. The fast
    // path leaves them out, so one expression gave two answers, by which engine ran it (one falls back to
    // fhirpath.js on some records' data, and any expression outside the subset runs there). Replaced here by
    // fhirpath.js's own rule with that one case mended: a false value read from the data is false. Anything
    // else (a computed result, a non-boolean value, several results) is decided as fhirpath.js decides it.
    type Criteria = (item: unknown) => unknown[];
    // Whether an item's criteria holds, with `$index` set for the criteria as fhirpath.js sets it.
    const holdsFor =
      (ctx: { $index?: number }, criteria: Criteria) =>
      (item: unknown, index: number): boolean => {
        ctx.$index = index;
        const result = criteria(item);
        return Boolean(result[0]) && val(result[0]) !== false;
      };
    this.userInvocationTable = {
      where: {
        fn(this: { $index?: number }, items: unknown[], criteria: Criteria) {
          return items.filter(holdsFor(this, criteria));
        },
        arity: { 1: ['Expr'] },
        internalStructures: true,
      },
      exists: {
        fn(this: { $index?: number }, items: unknown[], criteria?: Criteria) {
          return [criteria ? items.some(holdsFor(this, criteria)) : items.length > 0];
        },
        arity: { 0: [], 1: ['Expr'] },
        internalStructures: true,
      },
      coded: {
        fn: (inputs: unknown[], setName: string) => {
          const set = codeSets.get(setName);
          if (!set) throw new Error(`unknown code set '${setName}'`);
          return [inputs.some((i) => itemIsCoded(val(i), set))];
        },
        arity: { 1: ['String'] },
      },
      daysAfter: between('daysAfter', daysBetween),
      yearsAfter: between('yearsAfter', yearsBetween),
      ref: {
        fn: (inputs: unknown[]) => inputs.map((i) => resourceRef(val(i))).filter((r) => r !== undefined),
        arity: { 0: [] },
      },
      // The YYYY-MM-DD a complete date or dateTime starts with (its local calendar date); empty for a
      // partial one ('1990', as OpenMRS sends an estimated birth date) or anything else.
      calendarDate: {
        fn: (inputs: unknown[]) => {
          if (inputs.length > 1) throw severalDatesError('calendarDate', 'input');
          const date = inputs.length === 1 ? calendarDate(val(inputs[0]), timeZone) : undefined;
          return date === undefined ? [] : [date];
        },
        arity: { 0: [] },
      },
      // Both arguments are evaluated from the root, so they name their values through %variables.
      humanName: {
        fn: (_inputs: unknown[], given: unknown[], family: unknown[]) => humanName(given.map(val), family.map(val)),
        arity: { 2: ['AnyAtRoot', 'AnyAtRoot'] },
      },
    };
  }

  /**
   * Compiles `text`; `variables` are the names the expression may use as %name. Throws ExpressionError with
   * a sentence fit for an integration engineer (syntax, unknown function, unknown variable or code set).
   */
  compile(text: string, variables: ReadonlySet<string>): CompiledExpr {
    let ast: AstNode;
    let reference: (root: unknown, vars: Record<string, unknown>) => unknown[];
    try {
      ast = fhirpath.parse(text) as AstNode;
      // fhirpath.compile parses the text again, and most expressions never need it (the fast path answers):
      // compiled at the first call, as it cannot fail once the text parsed. Loading the shipped mappings
      // spent a third of its time here.
      const model = this.source === 'fhir' ? r4 : undefined;
      const options = { userInvocationTable: this.userInvocationTable as never };
      let compiled: ReturnType<typeof fhirpath.compile> | undefined;
      reference = (root, vars) => {
        compiled ??= fhirpath.compile(text, model, options);
        return compiled(root as never, vars as never) as unknown[];
      };
    } catch (err) {
      throw new ExpressionError(`FHIRPath does not compile: ${(err as Error).message.split('\n')[0]}`);
    }
    walk(ast, (n) => {
      if (n.type === 'ExternalConstantTerm' && n.text && !variables.has(n.text.replace(/^`|`$/g, ''))) {
        throw new ExpressionError(
          `unknown variable %${n.text}; known: ${[...variables].map((v) => `%${v}`).join(', ')}`,
        );
      }
      if (n.type === 'Functn') {
        const name = n.children?.[0]?.text ?? '';
        if (!KNOWN_FUNCTIONS.has(name)) throw new ExpressionError(`unknown FHIRPath function ${name}()`);
        if (name === 'coded') {
          const arg = JSON.stringify(n.children?.[1] ?? {});
          const m = /"StringLiteral","text":"'([^']*)'"/.exec(arg);
          const known = [...this.codeSets.keys()];
          if (!m)
            throw new ExpressionError(`coded() needs the name of a code set in quotes, one of: ${known.join(', ')}`);
          const name = m[1] ?? '';
          if (!this.codeSets.has(name)) {
            const like = known.find((k) => k.toLowerCase() === name.toLowerCase());
            throw new ExpressionError(
              `unknown code set '${name}'${like ? ` (did you mean ${like}?)` : ''}; the codes section has: ${known.join(', ')}`,
            );
          }
        }
      }
    });
    let fast: ((focus: unknown[], env: FastEnv) => unknown[]) | undefined;
    if (this.useFastPath) {
      try {
        fast = this.fastCompiler.compile(ast);
      } catch (err) {
        if (!(err instanceof Unsupported)) throw err;
      }
    }
    const env = this.env;
    let fallbacks = 0;
    return {
      text,
      ast,
      fast: fast !== undefined,
      get fallbacks() {
        return fallbacks;
      },
      evaluateReference: reference,
      evaluate(root, vars) {
        if (fast) {
          env.vars = vars;
          env.evaluation = (env.evaluation ?? 0) + 1;
          try {
            return finish(fast([root], env));
          } catch (err) {
            if (err !== NEED_SLOW) throw runtimeError(text, err);
            fallbacks += 1;
          }
        }
        try {
          return reference(root, vars);
        } catch (err) {
          throw runtimeError(text, err);
        }
      },
    };
  }
}
