// A context search that filters by code (`code: '{codes:newbornObservation,…}'`) asks the EMR for those codes
// only. A code set applied to what that search returned (`%observations.where(code.coded('birthWeight'))`)
// but not asked for can never match: the EMR's records with its codes are not read, and the field stays
// empty without a word. Adding a code to a set (the documented way to accept an EMR's own concept) would
// then quietly do nothing. This check, run at load, names the search to extend instead.
import type { CompiledContextItem } from './compile.js';
import { child, functionName, functionParams, itemsOf, stringLiteral } from './fhirpath/ast.js';
import type { AstNode } from './fhirpath/fast.js';

export interface ExpressionSource {
  /** The parse tree the compiler made of it. */
  ast: AstNode;
  /** Where the expression is in the mapping file, for the error. */
  path: readonly (string | number)[];
}

export interface CoverageProblem {
  path: readonly (string | number)[];
  message: string;
}

/** `code` relative to the items being filtered (`where(code.coded('x'))`). */
function isOwnCode(node: AstNode | undefined): boolean {
  const term = node?.type === 'TermExpression' ? child(node) : undefined;
  const member = term?.type === 'InvocationTerm' ? child(term) : undefined;
  return member?.type === 'MemberInvocation' && member.text === 'code';
}

/** Each `code.coded('set')` applied to a variable's own items, with that variable. */
function codedUses(node: AstNode, items: string | undefined, out: Array<{ variable: string; set: string }>): void {
  if (node.type === 'InvocationExpression' && child(node, 1)?.type === 'FunctionInvocation') {
    const left = child(node) as AstNode;
    const invocation = child(node, 1) as AstNode;
    const params = functionParams(invocation);
    if (functionName(invocation) === 'coded' && items && isOwnCode(left)) {
      const set = stringLiteral(params[0]);
      if (set) out.push({ variable: items, set });
    }
    codedUses(left, items, out);
    // The arguments of where(), exists()… are evaluated on the items of what they are called on.
    for (const param of params) codedUses(param, itemsOf(left), out);
    return;
  }
  for (const c of node.children ?? []) codedUses(c, items, out);
}

export function searchCoverageProblems(
  context: CompiledContextItem[],
  codeSets: Record<string, unknown[]>,
  expressions: ExpressionSource[],
): CoverageProblem[] {
  // Per search filtering by code sets only: the codes it asks for, and the variables holding its items.
  const searches: Array<{ name: string; codes: Set<string>; holders: Set<string> }> = [];
  for (const item of context) {
    if (item.kind === 'search') {
      const code = item.params?.find((p) => p.name === 'code');
      if (!code || code.parts.some((part) => 'expr' in part)) continue;
      const codes = new Set(code.parts.flatMap((part) => ('codes' in part ? part.codes : [])));
      searches.push({ name: item.name, codes, holders: new Set([item.name]) });
    } else if (item.kind === 'value') {
      const roots = item.exprs.map((e) => itemsOf(e.ast));
      for (const search of searches) if (roots.some((r) => r && search.holders.has(r))) search.holders.add(item.name);
    }
  }
  if (searches.length === 0) return [];
  const problems: CoverageProblem[] = [];
  for (const { ast, path } of expressions) {
    const uses: Array<{ variable: string; set: string }> = [];
    codedUses(ast, undefined, uses);
    for (const { variable, set } of uses) {
      const search = searches.find((s) => s.holders.has(variable));
      const missing = (codeSets[set] ?? []).map(String).filter((code) => !search?.codes.has(code));
      if (!search || missing.length === 0) continue;
      problems.push({
        path,
        message:
          `code set '${set}' is applied to %${variable}, which holds only what the context search ` +
          `'${search.name}' asked the EMR for, and its code parameter does not ask for ${missing.join(', ')}: ` +
          `add ${set} to it (code: '{codes:…,${set}}'), or these records are never read`,
      });
    }
  }
  return problems;
}
