// What each `x.coded('set')` of a mapping is applied to, as a path from the subject: the DHIS2 checks
// (sources/dhis2/mapping-codes.ts) judge a mapping only by the programme and stage tests on the subject's
// own enrollments. `program.coded('anc')` inside `%mother.enrollments.where(…)` is the mother's programme,
// which the programme polled says nothing about; reading it from the text alone called such a mapping
// unreachable and refused a configuration that works. A test whose items cannot be followed back to the
// subject (a union, select(), a read or searched variable) has no path, and is not judged.
import fhirpath from 'fhirpath';
import { child, functionName, functionParams, ITEM_PRESERVING, stringLiteral, variableName } from './fhirpath/ast.js';
import type { AstNode } from './fhirpath/fast.js';

/** An expression of a loaded mapping: its parse tree, or the text to parse. */
export interface ExpressionView {
  text: string;
  ast?: AstNode;
}

/** What this reads of a loaded mapping (a CompiledMapping is one). */
export interface CodedTestsInput {
  expressions?: ReadonlyArray<ExpressionView>;
  /** Its context, in order: a `value` variable holds the items its expressions give. */
  context?: ReadonlyArray<{ name: string; kind: string; exprs: ReadonlyArray<ExpressionView> }>;
  /** The trigger's alternatives (`trigger.when`). */
  when?: ReadonlyArray<{ expr: ExpressionView }>;
}

export interface CodedTest {
  set: string;
  /** What `coded()` is applied to, from the subject (`['enrollments', 'program']`); undefined when unknown. */
  path?: readonly string[];
}

/** Functions whose arguments are evaluated on each item of their input. */
const PER_ITEM = new Set(['where', 'select', 'exists', 'all']);

type Path = readonly string[] | undefined;

function parsed(expression: ExpressionView): AstNode | undefined {
  if (expression.ast) return expression.ast;
  try {
    return fhirpath.parse(expression.text) as AstNode;
  } catch {
    return undefined;
  }
}

const memberName = (node: AstNode): string => (node.text ?? '').replace(/^`|`$/g, '');

/** The items `node` gives, as a path from the subject; `focus` is the path of the items it is evaluated on. */
function pathOf(node: AstNode | undefined, focus: Path, variables: ReadonlyMap<string, Path>): Path {
  if (!node) return undefined;
  switch (node.type) {
    case 'EntireExpression':
    case 'TermExpression':
    case 'ParenthesizedTerm':
    case 'InvocationTerm':
      return node.children?.length === 1 ? pathOf(child(node), focus, variables) : undefined;
    case 'ExternalConstantTerm': {
      const name = variableName(node) ?? '';
      return name === 'subject' ? [] : variables.get(name);
    }
    case 'MemberInvocation':
      return focus && [...focus, memberName(node)];
    case 'ThisInvocation':
      return focus;
    case 'FunctionInvocation':
      return ITEM_PRESERVING.has(functionName(node)) ? focus : undefined;
    case 'InvocationExpression': {
      const left = pathOf(child(node), focus, variables);
      const right = child(node, 1);
      if (right?.type === 'MemberInvocation') return left && [...left, memberName(right)];
      return right?.type === 'FunctionInvocation' && ITEM_PRESERVING.has(functionName(right)) ? left : undefined;
    }
    default:
      return undefined;
  }
}

function collect(node: AstNode, focus: Path, variables: ReadonlyMap<string, Path>, out: CodedTest[]): void {
  let input: Path;
  let invocation: AstNode | undefined;
  if (node.type === 'InvocationExpression' && child(node, 1)?.type === 'FunctionInvocation') {
    collect(child(node) as AstNode, focus, variables, out);
    input = pathOf(child(node), focus, variables);
    invocation = child(node, 1);
  } else if (node.type === 'FunctionInvocation') {
    input = focus; // `where(…)` at the start of a term: applied to the items in focus
    invocation = node;
  }
  if (!invocation) {
    for (const c of node.children ?? []) collect(c, focus, variables, out);
    return;
  }
  const name = functionName(invocation);
  const params = functionParams(invocation);
  const set = name === 'coded' ? stringLiteral(params[0]) : undefined;
  if (set) out.push(input ? { set, path: input } : { set });
  for (const param of params) collect(param, PER_ITEM.has(name) ? input : undefined, variables, out);
}

/** The %variables an expression reads. */
function variablesIn(node: AstNode, out: Set<string>): Set<string> {
  if (node.type === 'ExternalConstantTerm') out.add(variableName(node) ?? '');
  for (const c of node.children ?? []) variablesIn(c, out);
  return out;
}

/** The context variables' paths from the subject, in order (each sees the ones before it). */
function contextPaths(mapping: CodedTestsInput): Map<string, Path> {
  const variables = new Map<string, Path>();
  for (const item of mapping.context ?? []) {
    // A variable with fallbacks holds the subject's items only when every fallback gives the same ones.
    const paths = item.kind === 'value' ? item.exprs.map((e) => pathOf(parsed(e), [], variables)) : [];
    const [first] = paths;
    const same = first && paths.every((p) => p && p.join('.') === first.join('.'));
    variables.set(item.name, same ? first : undefined);
  }
  return variables;
}

function testsOf(ast: AstNode, variables: ReadonlyMap<string, Path>): CodedTest[] {
  const out: CodedTest[] = [];
  collect(ast, [], variables, out); // expressions are evaluated on the subject
  return out;
}

/** Every `coded()` test of the mapping's expressions, with what it is applied to. */
export function codedTests(mapping: CodedTestsInput): CodedTest[] {
  const variables = contextPaths(mapping);
  return (mapping.expressions ?? []).flatMap((e) => {
    const ast = parsed(e);
    return ast ? testsOf(ast, variables) : [];
  });
}

/**
 * The code sets tested against the subject's `path` (`enrollments.program`) that decide whether the mapping
 * triggers; undefined when it can trigger without such a test. An alternative of `trigger.when` depends on
 * the tests in it and in the context variables it reads, however indirectly (a variable with fallbacks only
 * when each fallback does). Tests elsewhere (an `unless` rule, a field) never stop it triggering. Without
 * `when` (a mapping not compiled by this module), every test counts.
 */
export function triggerSets(mapping: CodedTestsInput, path: string): string[] | undefined {
  if (!mapping.when) {
    const sets = codedTests(mapping).flatMap((t) => (t.path?.join('.') === path ? [t.set] : []));
    return sets.length > 0 ? [...new Set(sets)] : undefined;
  }
  const variables = contextPaths(mapping);
  // Per variable: whether it is empty unless one of its tests matches, and the sets of those tests.
  const gates = new Map<string, { gated: boolean; sets: string[] }>();
  const gateOf = (e: ExpressionView) => {
    const ast = parsed(e);
    if (!ast) return { gated: false, sets: [] };
    const own = testsOf(ast, variables).flatMap((t) => (t.path?.join('.') === path ? [t.set] : []));
    const read = [...variablesIn(ast, new Set())].flatMap((name) => gates.get(name) ?? []);
    return {
      gated: own.length > 0 || read.some((g) => g.gated),
      sets: [...own, ...read.flatMap((g) => g.sets)],
    };
  };
  for (const item of mapping.context ?? []) {
    const each = item.kind === 'search' ? [] : item.exprs.map(gateOf);
    gates.set(item.name, {
      gated: each.length > 0 && each.every((g) => g.gated),
      sets: each.flatMap((g) => g.sets),
    });
  }
  const alternatives = mapping.when.map((w) => gateOf(w.expr));
  if (alternatives.length === 0 || !alternatives.every((g) => g.gated)) return undefined;
  return [...new Set(alternatives.flatMap((g) => g.sets))];
}
