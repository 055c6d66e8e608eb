// A direct evaluator for the common subset of FHIRPath that mappings use (paths, where/select/exists,
// equality on codes and strings, and/or, union, our custom functions). fhirpath.js stays the reference:
// it parses every expression (this file walks its AST), and anything outside the subset is left to it,
// either at compile time (Unsupported) or per call (NEED_SLOW, e.g. comparing date-typed values, whose
// FHIRPath semantics depend on the model). A differential test keeps both in agreement on the fixtures.
// Why: fhirpath.js costs ~3–400 µs per expression on real contexts; this is ~20–100× cheaper.
import { isObject } from '../../util/is-object.js';
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

export interface AstNode {
  type: string;
  text?: string;
  children?: AstNode[];
}

/** A primitive that carries FHIR primitive-element extensions (`_birthDate`); `value` may be absent. */
export class Prim {
  constructor(
    readonly value: unknown,
    readonly ext: Record<string, unknown>,
  ) {}
}

export class Unsupported extends Error {}
/** Thrown during evaluation when a case needs the reference engine. */
export const NEED_SLOW = Symbol('need-slow');

export interface FastEnv {
  vars: Record<string, unknown>;
  codeSets: ReadonlyMap<string, CodeSet>;
  /** IANA zone UTC dateTimes are read in (daysAfter, calendarDate); none: dates as written. */
  timeZone?: string;
  /**
   * Changed by the caller for every evaluation: what a where() criterion reads of the context alone
   * (`%subject.birthDate`) is computed once per evaluation, not once per item (memoized()).
   */
  evaluation?: number;
}

type Fn = (focus: unknown[], env: FastEnv) => unknown[];

// Element names that are choice types somewhere in R4 (value[x], deceased[x], effective[x] …) and their type
// suffixes; filled from the fhirpath R4 model by the caller (empty for plain JSON sources such as DHIS2).
export interface ChoiceInfo {
  names: ReadonlySet<string>;
  suffixes: ReadonlySet<string>;
}

// Boolean answers (coded(), exists(), empty()), shared: a result is read, never changed (CompiledExpr.evaluate).
const TRUE: unknown[] = [true];
const FALSE: unknown[] = [false];

const slow = (): never => {
  throw NEED_SLOW;
};

export function unwrap(item: unknown): unknown {
  return item instanceof Prim ? item.value : item;
}

function pushValue(out: unknown[], value: unknown, ext: unknown): void {
  if (isObject(ext)) out.push(new Prim(value ?? undefined, ext));
  else if (value !== undefined && value !== null) out.push(value);
}

function pushMember(out: unknown[], v: unknown, u: unknown): void {
  if (Array.isArray(v) || Array.isArray(u)) {
    const vs = Array.isArray(v) ? v : [];
    const us = Array.isArray(u) ? u : [];
    const n = Math.max(vs.length, us.length);
    for (let i = 0; i < n; i++) pushValue(out, vs[i], us[i]);
  } else {
    pushValue(out, v, u);
  }
}

/** A choice element's typed keys, each with the element's value key and its primitive-extension key. */
type ChoiceKeys = ReadonlyMap<string, { bare: string; under: string }>;

/**
 * Every key that names the choice element `name` with a type suffix ('effectiveDateTime', and
 * '_effectiveDateTime' for its extensions), built once per name at compile: navigate() then looks each key
 * of a resource up as it is, where slicing the suffix off every key and joining `_` to the one found made
 * new strings to hash for every observation a where() reads (the birth triggers read `effective` of each
 * one several times).
 */
function choiceKeys(name: string, choice: ChoiceInfo): ChoiceKeys | undefined {
  if (!choice.names.has(name)) return undefined;
  const keys = new Map<string, { bare: string; under: string }>();
  for (const suffix of choice.suffixes) {
    if (suffix === '') continue;
    const hit = { bare: `${name}${suffix}`, under: `_${name}${suffix}` };
    keys.set(hit.bare, hit);
    keys.set(hit.under, hit);
  }
  return keys;
}

function navigate(items: unknown[], name: string, under: string, choice: ChoiceKeys | undefined): unknown[] {
  const out: unknown[] = [];
  for (const item of items) {
    const o = item instanceof Prim ? item.ext : item;
    if (!isObject(o)) continue;
    const v = o[name];
    const u = o[under];
    if (v !== undefined || u !== undefined) {
      pushMember(out, v, u);
      continue;
    }
    if (choice === undefined) continue;
    // A choice element (value[x], effective[x]): the first key, or `_key`, that is the name and a type suffix.
    // A for-in (own keys checked), not Object.keys: no array of keys allocated for every item.
    for (const key in o) {
      const hit = choice.get(key);
      if (hit !== undefined && Object.hasOwn(o, key)) {
        pushMember(out, o[hit.bare], o[hit.under]);
        break;
      }
    }
  }
  return out;
}

const DATE_LIKE = /^\d{4}(-\d{2}(-\d{2})?)?(T|$)/;

/** A comparable primitive, or NEED_SLOW for dates (model-typed in fhirpath.js) and objects. */
function primitive(item: unknown): string | number | boolean {
  const v = unwrap(item);
  if (typeof v === 'string') return DATE_LIKE.test(v) ? slow() : v;
  if (typeof v === 'number' || typeof v === 'boolean') return v;
  return slow();
}

function equalItems(a: unknown, b: unknown): boolean {
  const x = primitive(a);
  const y = primitive(b);
  if (typeof x !== typeof y) return slow();
  return x === y;
}

function equals(left: unknown[], right: unknown[]): unknown[] {
  if (left.length === 0 || right.length === 0) return [];
  if (left.length !== right.length) return [false];
  for (let i = 0; i < left.length; i++) if (!equalItems(left[i], right[i])) return [false];
  return [true];
}

/** FHIRPath singleton-to-boolean for logic operators: undefined = empty. */
function toBool(items: unknown[]): boolean | undefined {
  if (items.length === 0) return undefined;
  if (items.length > 1) return slow();
  const v = unwrap(items[0]);
  return typeof v === 'boolean' ? v : slow();
}

function single(items: unknown[]): unknown {
  if (items.length > 1) return slow();
  return items.length === 1 ? unwrap(items[0]) : undefined;
}

/** The one date daysAfter(), yearsAfter() or calendarDate() reads on a side; several is an error (functions.ts). */
function oneDate(items: unknown[], fn: string, side: 'input' | 'argument'): unknown {
  if (items.length > 1) throw severalDatesError(fn, side);
  return items.length === 1 ? unwrap(items[0]) : undefined;
}

function union(a: unknown[], b: unknown[]): unknown[] {
  const out: unknown[] = [];
  const seen = new Set<unknown>();
  for (const item of [...a, ...b]) {
    // fhirpath.js deduplicates by deep equality; identity is the same for resources from one context.
    const key = item instanceof Prim || isObject(item) ? item : unwrap(item);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(item);
  }
  return out;
}

function stringLiteral(text: string): string {
  return text.slice(1, -1).replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, esc: string) => {
    if (esc.length > 1) return String.fromCharCode(Number.parseInt(esc.slice(1), 16));
    return { n: '\n', t: '\t', r: '\r', f: '\f' }[esc] ?? esc;
  });
}

function child(node: AstNode, i = 0): AstNode {
  const c = node.children?.[i];
  if (!c) throw new Unsupported(`malformed ${node.type}`);
  return c;
}

function literalString(node: AstNode): string {
  // A ParamList entry is TermExpression > LiteralTerm > StringLiteral.
  let n: AstNode | undefined = node;
  while (n && n.type !== 'StringLiteral') n = n.children?.length === 1 ? n.children[0] : undefined;
  if (!n?.text) throw new Unsupported('expected a string literal');
  return stringLiteral(n.text);
}

function literalNumber(node: AstNode): number {
  let n: AstNode | undefined = node;
  while (n && n.type !== 'NumberLiteral') n = n.children?.length === 1 ? n.children[0] : undefined;
  if (!n?.text) throw new Unsupported('expected a number literal');
  return Number(n.text);
}

/**
 * What an expression can be shown, from its parse tree alone, to give on any data: `bool` never throws and
 * gives at most one boolean (so toBool never asks for the reference engine); `safe` never throws.
 */
type Total = 'bool' | 'safe' | undefined;

export class FastCompiler {
  /** `codeSets`: the sets coded() may name (their names were checked at compile), so coded() cannot fail. */
  constructor(
    private readonly choice: ChoiceInfo,
    private readonly codeSets?: ReadonlyMap<string, CodeSet>,
  ) {}

  compile(ast: AstNode): Fn {
    return this.node(ast);
  }

  /** How many where()/select()/exists() criteria the node being compiled is inside. */
  private inCriteria = 0;

  private node(n: AstNode): Fn {
    if (this.inCriteria > 0 && n.type !== 'ExternalConstantTerm' && n.type !== 'LiteralTerm' && ofContext(n)) {
      // Read of the context alone, inside a criterion run for every item: once per evaluation (memoized).
      const saved = this.inCriteria;
      this.inCriteria = 0;
      try {
        return memoized(this.node(n));
      } finally {
        this.inCriteria = saved;
      }
    }
    switch (n.type) {
      case 'EntireExpression':
      case 'TermExpression':
      case 'ParenthesizedTerm':
        return this.node(child(n));
      case 'InvocationTerm':
        return this.invocation(child(n), (focus) => focus, true);
      case 'InvocationExpression': {
        const left = this.node(child(n, 0));
        return this.invocation(child(n, 1), left, false);
      }
      case 'ExternalConstantTerm': {
        const name = n.text ?? '';
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Unsupported('quoted variable');
        return (_focus, env) => {
          const v = env.vars[name];
          if (v === undefined) return slow();
          return Array.isArray(v) ? v : v === null ? [] : [v];
        };
      }
      case 'LiteralTerm':
        return this.literal(child(n));
      case 'IndexerExpression': {
        const base = this.node(child(n, 0));
        const index = literalNumber(child(n, 1));
        return (focus, env) => {
          const items = base(focus, env);
          return index < items.length ? [items[index]] : [];
        };
      }
      case 'UnionExpression':
        return this.binary(n, union);
      case 'EqualityExpression':
        if (n.text === '=') return this.binary(n, equals);
        if (n.text === '!=')
          return this.binary(n, (a, b) => {
            const r = equals(a, b);
            return r.length ? [!r[0]] : r;
          });
        throw new Unsupported(n.text);
      case 'InequalityExpression':
        return this.binary(n, (a, b) => compare(n.text ?? '', a, b));
      case 'MembershipExpression':
        return this.binary(n, (a, b) => membership(n.text === 'in' ? a : b, n.text === 'in' ? b : a));
      case 'AndExpression':
        if (n.text === 'and' && (this.total(child(n, 0)) === 'bool' || this.total(child(n, 1)) === 'bool'))
          return this.shortCircuit(n, false);
        return this.binary(n, (a, b) => {
          const x = toBool(a);
          const y = toBool(b);
          if (x === false || y === false) return [false];
          return x === true && y === true ? [true] : [];
        });
      case 'OrExpression':
        if (n.text === 'or' && (this.total(child(n, 0)) === 'bool' || this.total(child(n, 1)) === 'bool'))
          return this.shortCircuit(n, true);
        return this.binary(n, (a, b) => {
          const x = toBool(a);
          const y = toBool(b);
          if (n.text === 'xor') return x === undefined || y === undefined ? [] : [x !== y];
          if (x === true || y === true) return [true];
          return x === false && y === false ? [false] : [];
        });
      case 'AdditiveExpression':
        return this.binary(n, (a, b) => additive(n.text ?? '', a, b));
      case 'MultiplicativeExpression':
        // `*` and `/` on single numbers (DHIS2 grams → kilograms); anything else is left to fhirpath.js.
        if (n.text !== '*' && n.text !== '/') throw new Unsupported(n.text);
        return this.binary(n, (a, b) => {
          if (a.length === 0 || b.length === 0) return [];
          const x = a.length === 1 ? unwrap(a[0]) : undefined;
          const y = b.length === 1 ? unwrap(b[0]) : undefined;
          if (typeof x !== 'number' || typeof y !== 'number') return slow();
          if (n.text === '*') return [x * y];
          return y === 0 ? [] : [x / y];
        });
      default:
        throw new Unsupported(n.type);
    }
  }

  private binary(n: AstNode, op: (a: unknown[], b: unknown[]) => unknown[]): Fn {
    const left = this.node(child(n, 0));
    const right = this.node(child(n, 1));
    return (focus, env) => op(left(focus, env), right(focus, env));
  }

  /**
   * `and` (decisive false) or `or` (decisive true) with one operand that can neither throw nor need the
   * reference engine (total: 'bool'): that operand is evaluated only when the other does not decide. The
   * result is the one evaluating both gives, errors included, as the operand skipped could not have failed.
   * The stillbirth rule asks `code.coded(…) and value.coded(…)` of every observation of every child: the
   * value (a choice element, found by a scan of the keys) is read only of a birth-outcome observation.
   */
  private shortCircuit(n: AstNode, decisive: boolean): Fn {
    const rightTotal = this.total(child(n, 1)) === 'bool';
    const left = this.node(child(n, 0));
    const right = this.node(child(n, 1));
    // An operand that may fail first, so that its error is met whether or not it decides; else as written.
    const [first, second] = rightTotal ? [left, right] : [right, left];
    return (focus, env) => {
      const x = toBool(first(focus, env));
      if (x === decisive) return [decisive];
      const y = toBool(second(focus, env));
      if (y === decisive) return [decisive];
      return x === !decisive && y === !decisive ? [!decisive] : [];
    };
  }

  /** What `n` can be shown to give on any data (Total); at the start of an expression the focus is $this. */
  private total(n: AstNode): Total {
    switch (n.type) {
      case 'EntireExpression':
      case 'TermExpression':
      case 'ParenthesizedTerm':
        return n.children?.length === 1 ? this.total(child(n)) : undefined;
      case 'InvocationTerm':
        return this.invocationTotal(child(n), 'safe');
      case 'InvocationExpression':
        return this.invocationTotal(child(n, 1), this.total(child(n, 0)));
      case 'LiteralTerm': {
        const type = child(n).type;
        if (type === 'BooleanLiteral') return 'bool';
        return type === 'StringLiteral' || type === 'NumberLiteral' || type === 'NullLiteral' ? 'safe' : undefined;
      }
      case 'AndExpression':
      case 'OrExpression':
        return this.total(child(n, 0)) === 'bool' && this.total(child(n, 1)) === 'bool' ? 'bool' : undefined;
      default:
        return undefined;
    }
  }

  private invocationTotal(n: AstNode, left: Total): Total {
    if (left === undefined) return undefined;
    if (n.type === 'ThisInvocation') return left;
    if (n.type === 'MemberInvocation') return 'safe'; // navigate() reads whatever is there, never fails
    if (n.type !== 'FunctionInvocation') return undefined;
    const functn = child(n);
    const name = child(functn, 0).text ?? '';
    const params = functn.children?.[1]?.children ?? [];
    const literal = () => {
      try {
        return literalString(params[0] as AstNode);
      } catch {
        return undefined;
      }
    };
    switch (params.length === 0 ? name : `${name}/${params.length}`) {
      case 'exists':
      case 'empty':
        return 'bool';
      case 'not':
        return left === 'bool' ? 'bool' : undefined;
      case 'first':
      case 'last':
      case 'count':
        return 'safe';
      case 'exists/1':
        return this.total(params[0] as AstNode) === 'bool' ? 'bool' : undefined;
      case 'where/1':
        return this.total(params[0] as AstNode) === 'bool' ? 'safe' : undefined;
      case 'extension/1':
        return literal() !== undefined ? 'safe' : undefined;
      case 'coded/1': {
        const set = literal();
        return set !== undefined && this.codeSets?.has(set) ? 'bool' : undefined;
      }
      default:
        return undefined;
    }
  }

  private literal(n: AstNode): Fn {
    let value: unknown;
    if (n.type === 'StringLiteral') value = stringLiteral(n.text ?? "''");
    else if (n.type === 'NumberLiteral') value = Number(n.text);
    else if (n.type === 'BooleanLiteral') value = n.text === 'true';
    else if (n.type === 'NullLiteral') return () => [];
    else throw new Unsupported(n.type);
    const result = [value];
    return () => result;
  }

  /** `left.invocation`; at the start of an expression `left` is the focus ($this or the root). */
  private invocation(n: AstNode, left: Fn, atStart: boolean): Fn {
    if (n.type === 'ThisInvocation') return left;
    if (n.type === 'MemberInvocation') {
      const name = n.text ?? '';
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Unsupported('quoted identifier');
      const choice = choiceKeys(name, this.choice);
      // `Patient.name` at the start of an expression filters by resource type, as in fhirpath.js.
      if (atStart && /^[A-Z]/.test(name)) {
        return (focus, env) => left(focus, env).filter((r) => isObject(r) && r.resourceType === name);
      }
      const under = `_${name}`;
      return (focus, env) => navigate(left(focus, env), name, under, choice);
    }
    if (n.type === 'FunctionInvocation') return this.fn(child(n), left, atStart);
    throw new Unsupported(n.type);
  }

  private fn(functn: AstNode, left: Fn, atStart: boolean): Fn {
    const name = child(functn, 0).text ?? '';
    const params = functn.children?.[1]?.children ?? [];
    const arity = (count: number) => {
      if (params.length !== count) throw new Unsupported(`${name}/${params.length}`);
    };
    const p = (i: number) => this.node(params[i] as AstNode);
    // A criterion or projection, evaluated on each item in turn.
    const perItem = (i: number) => {
      this.inCriteria += 1;
      try {
        return p(i);
      } finally {
        this.inCriteria -= 1;
      }
    };
    switch (name) {
      case 'where': {
        arity(1);
        const crit = perItem(0);
        return (focus, env) => {
          const out: unknown[] = [];
          for (const item of left(focus, env)) if (toBool(crit([item], env)) === true) out.push(item);
          return out;
        };
      }
      case 'select': {
        arity(1);
        const proj = perItem(0);
        return (focus, env) => left(focus, env).flatMap((item) => proj([item], env));
      }
      case 'exists': {
        if (params.length === 0) return (focus, env) => (left(focus, env).length > 0 ? TRUE : FALSE);
        arity(1);
        const crit = perItem(0);
        return (focus, env) => {
          for (const item of left(focus, env)) if (toBool(crit([item], env)) === true) return TRUE;
          return FALSE;
        };
      }
      case 'empty':
        arity(0);
        return (focus, env) => (left(focus, env).length === 0 ? TRUE : FALSE);
      case 'count':
        arity(0);
        return (focus, env) => [left(focus, env).length];
      case 'first':
        arity(0);
        return (focus, env) => left(focus, env).slice(0, 1);
      case 'last':
        arity(0);
        return (focus, env) => left(focus, env).slice(-1);
      case 'not':
        arity(0);
        return (focus, env) => {
          const b = toBool(left(focus, env));
          return b === undefined ? [] : [!b];
        };
      case 'hasValue':
        arity(0);
        return (focus, env) => {
          const items = left(focus, env);
          if (items.length !== 1) return [false];
          const v = unwrap(items[0]);
          return [v !== undefined && !isObject(v) && !Array.isArray(v)];
        };
      case 'iif': {
        if (!atStart || params.length < 2 || params.length > 3) throw new Unsupported('iif form');
        const cond = p(0);
        const then = p(1);
        const otherwise = params.length === 3 ? p(2) : () => [];
        return (focus, env) => (toBool(cond(focus, env)) === true ? then(focus, env) : otherwise(focus, env));
      }
      case 'extension': {
        arity(1);
        const url = literalString(params[0] as AstNode);
        return (focus, env) => {
          const out: unknown[] = [];
          for (const item of left(focus, env)) {
            const o = item instanceof Prim ? item.ext : item;
            if (!isObject(o) || !Array.isArray(o.extension)) continue;
            for (const e of o.extension) if (isObject(e) && e.url === url) out.push(e);
          }
          return out;
        };
      }
      case 'toString':
        arity(0);
        return (focus, env) => {
          const v = single(left(focus, env));
          if (v === undefined) return [];
          if (typeof v === 'string' && !DATE_LIKE.test(v)) return [v];
          if (typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v))) return [String(v)];
          return slow();
        };
      case 'substring': {
        if (params.length < 1 || params.length > 2) throw new Unsupported('substring');
        const start = literalNumber(params[0] as AstNode);
        const length = params.length === 2 ? literalNumber(params[1] as AstNode) : undefined;
        return this.stringFn(left, (s) => {
          if (start < 0 || start >= s.length) return [];
          return [length === undefined ? s.slice(start) : s.substr(start, length)];
        });
      }
      case 'startsWith':
      case 'endsWith':
      case 'contains': {
        arity(1);
        const arg = literalString(params[0] as AstNode);
        return this.stringFn(left, (s) => [
          name === 'startsWith' ? s.startsWith(arg) : name === 'endsWith' ? s.endsWith(arg) : s.includes(arg),
        ]);
      }
      case 'replace': {
        arity(2);
        const pattern = literalString(params[0] as AstNode);
        const substitution = literalString(params[1] as AstNode);
        // An empty pattern inserts between every character in FHIRPath: rare, left to fhirpath.js.
        if (pattern === '') throw new Unsupported('replace with an empty pattern');
        // fhirpath.js reads `$&`, `$1`… in the substitution as JavaScript's replace does: left to it.
        if (substitution.includes('$')) throw new Unsupported('replace with $ in the substitution');
        return this.stringFn(left, (s) => [s.split(pattern).join(substitution)]);
      }
      case 'matches': {
        arity(1);
        const re = new RegExp(literalString(params[0] as AstNode), 'su');
        return this.stringFn(left, (s) => [re.test(s)]);
      }
      case 'lower':
      case 'upper':
      case 'trim':
        arity(0);
        return this.stringFn(left, (s) => [
          name === 'lower' ? s.toLowerCase() : name === 'upper' ? s.toUpperCase() : s.trim(),
        ]);
      case 'coded': {
        arity(1);
        const setName = literalString(params[0] as AstNode);
        // The set looked up once per code-set table (one per mapping), not for every item of a where().
        let setsOf: ReadonlyMap<string, CodeSet> | undefined;
        let set: CodeSet | undefined;
        return (focus, env) => {
          if (env.codeSets !== setsOf) {
            set = env.codeSets.get(setName);
            setsOf = env.codeSets;
          }
          if (!set) return slow();
          for (const item of left(focus, env)) if (itemIsCoded(unwrap(item), set)) return TRUE;
          return FALSE;
        };
      }
      case 'daysAfter':
      case 'yearsAfter': {
        // d.daysAfter(other), d.yearsAfter(other): counted from `other` to `d`.
        arity(1);
        const since = p(0);
        const count = name === 'daysAfter' ? daysBetween : yearsBetween;
        return (focus, env) => {
          const date = oneDate(left(focus, env), name, 'input');
          const n = count(oneDate(since(focus, env), name, 'argument'), date, env.timeZone);
          return n === undefined ? [] : [n];
        };
      }
      case 'toDecimal':
        arity(0);
        return (focus, env) => {
          const items = left(focus, env);
          if (items.length === 0) return [];
          const v = items.length === 1 ? unwrap(items[0]) : undefined;
          if (typeof v === 'number') return [v];
          if (typeof v === 'string' && /^[+-]?\d+(\.\d+)?$/.test(v)) return [Number(v)];
          return slow();
        };
      case 'humanName': {
        // fhirpath.js evaluates both arguments at the root: the same focus only at the start of an expression.
        if (!atStart) throw new Unsupported('humanName not at the start');
        arity(2);
        const given = p(0);
        const family = p(1);
        return (focus, env) => humanName(given(focus, env).map(unwrap), family(focus, env).map(unwrap));
      }
      case 'ref':
        arity(0);
        return (focus, env) =>
          left(focus, env).flatMap((item) => {
            const ref = resourceRef(item);
            return ref ? [ref] : [];
          });
      case 'calendarDate':
        arity(0);
        return (focus, env) => {
          const date = calendarDate(oneDate(left(focus, env), name, 'input'), env.timeZone);
          return date === undefined ? [] : [date];
        };
      case 'yearOf':
        arity(0);
        return (focus, env) => {
          const v = unwrap(single(left(focus, env)));
          if (v === undefined) return [];
          const year = typeof v === 'string' ? /^(\d{4})(?:$|-|T)/.exec(v)?.[1] : undefined;
          return year === undefined ? slow() : [Number(year)];
        };
      default:
        throw new Unsupported(name);
    }
  }

  private stringFn(left: Fn, op: (s: string) => unknown[]): Fn {
    return (focus, env) => {
      const v = single(left(focus, env));
      if (v === undefined) return [];
      if (typeof v !== 'string' || DATE_LIKE.test(v)) return slow();
      return op(v);
    };
  }
}

/**
 * Whether a node's value depends on nothing but the context's variables and literals: not on the focus
 * (a member read at the start, `$this`, iif() and humanName(), which read their arguments at the focus),
 * so that it is the same for every item a criterion is run on. where(), select() and exists() run their
 * argument on their own items, not on the focus; any other function's arguments must qualify too.
 */
function ofContext(n: AstNode): boolean {
  switch (n.type) {
    case 'ExternalConstantTerm':
    case 'LiteralTerm':
      return true;
    case 'EntireExpression':
    case 'TermExpression':
    case 'ParenthesizedTerm':
      return n.children?.length === 1 && ofContext(n.children[0] as AstNode);
    case 'InvocationExpression': {
      const [left, invocation] = n.children ?? [];
      if (!left || !invocation || !ofContext(left)) return false;
      if (invocation.type === 'MemberInvocation' || invocation.type === 'ThisInvocation') return true;
      if (invocation.type !== 'FunctionInvocation') return false;
      const functn = invocation.children?.[0];
      const name = functn?.children?.[0]?.text;
      const params = functn?.children?.[1]?.children ?? [];
      if (name === 'where' || name === 'select' || name === 'exists') return true;
      return params.every(ofContext);
    }
    case 'IndexerExpression':
    case 'UnionExpression':
    case 'EqualityExpression':
    case 'InequalityExpression':
    case 'MembershipExpression':
    case 'AndExpression':
    case 'OrExpression':
    case 'AdditiveExpression':
    case 'MultiplicativeExpression':
      return (n.children?.length ?? 0) > 0 && (n.children ?? []).every(ofContext);
    default:
      return false;
  }
}

/**
 * `fn` computed once per evaluation (FastEnv.evaluation); pure, so the result is the one each call would
 * give. A call that throws (a several-dates error, NEED_SLOW) ends the evaluation, and is not kept.
 */
function memoized(fn: Fn): Fn {
  let evaluation: number | undefined;
  let value: unknown[] = [];
  return (focus, env) => {
    if (env.evaluation === undefined || env.evaluation !== evaluation) {
      value = fn(focus, env);
      evaluation = env.evaluation;
    }
    return value;
  };
}

function compare(op: string, a: unknown[], b: unknown[]): unknown[] {
  const x = single(a);
  const y = single(b);
  if (x === undefined || y === undefined) return [];
  const both = typeof x === 'number' && typeof y === 'number';
  const strings = typeof x === 'string' && typeof y === 'string' && !DATE_LIKE.test(x) && !DATE_LIKE.test(y);
  if (!both && !strings) return slow();
  const [l, r] = [x as number | string, y as number | string];
  return [op === '<' ? l < r : op === '<=' ? l <= r : op === '>' ? l > r : l >= r];
}

function membership(element: unknown[], collection: unknown[]): unknown[] {
  if (element.length === 0) return [];
  if (element.length > 1) return slow();
  return [collection.some((item) => equalItems(element[0], item))];
}

function additive(op: string, a: unknown[], b: unknown[]): unknown[] {
  if (op === '&') {
    const x = single(a) ?? '';
    const y = single(b) ?? '';
    if (typeof x !== 'string' || typeof y !== 'string') return slow();
    return [x + y];
  }
  const x = single(a);
  const y = single(b);
  if (x === undefined || y === undefined) return [];
  if (typeof x === 'number' && typeof y === 'number') return [op === '+' ? x + y : x - y];
  if (op === '+' && typeof x === 'string' && typeof y === 'string' && !DATE_LIKE.test(x)) return [x + y];
  return slow();
}
