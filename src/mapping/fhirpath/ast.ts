// Reading fhirpath.js parse trees for the load-time checks (search-coverage.ts, element-check.ts): the
// node shapes they share, and the variable whose items an expression gives.
import type { AstNode } from './fast.js';

/** Functions whose result is (a part of) their input's items, not something reached from them. */
export const ITEM_PRESERVING: ReadonlySet<string> = new Set([
  'where',
  'first',
  'last',
  'single',
  'tail',
  'skip',
  'take',
  'distinct',
]);

export const child = (node: AstNode | undefined, i = 0): AstNode | undefined => node?.children?.[i];

/** The name of a FunctionInvocation node (`where`). */
export function functionName(invocation: AstNode): string {
  return child(child(invocation))?.text ?? '';
}

/** The argument nodes of a FunctionInvocation node. */
export function functionParams(invocation: AstNode): AstNode[] {
  return child(child(invocation), 1)?.children ?? [];
}

/** The text of the string literal an argument node is (`'birthWeight'` → birthWeight), if it is one. */
export function stringLiteral(node: AstNode | undefined): string | undefined {
  let n = node;
  while (n && n.type !== 'StringLiteral') n = n.children?.length === 1 ? n.children[0] : undefined;
  return n?.text?.replace(/^'|'$/g, '');
}

/** The name of a %variable term (ExternalConstantTerm). */
export function variableName(node: AstNode): string | undefined {
  return node.text?.replace(/^`|`$/g, '');
}

/** The variable whose items `node` gives, filtered but not navigated (`%obs`, `%obs.where(…).first()`). */
export function itemsOf(node: AstNode | undefined): string | undefined {
  if (!node) return undefined;
  switch (node.type) {
    case 'EntireExpression':
    case 'TermExpression':
    case 'ParenthesizedTerm':
      return itemsOf(child(node));
    case 'ExternalConstantTerm':
      return variableName(node);
    case 'InvocationExpression': {
      const right = child(node, 1);
      return right?.type === 'FunctionInvocation' && ITEM_PRESERVING.has(functionName(right))
        ? itemsOf(child(node))
        : undefined;
    }
    default:
      return undefined;
  }
}
