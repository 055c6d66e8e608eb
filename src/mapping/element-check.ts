// FHIRPath returns nothing for an element a resource does not have: `%subject.deceasedDatetime` (for
// deceasedDateTime) compiles, runs and is always empty, so a trigger with it quietly finds no death, ever.
// At load, member names are checked against the FHIR R4 model wherever the type is known: the subject, the
// results of context searches, reads that name their type, and what is reached from them by element names,
// where(), first() and the like. Where the type is open (an untyped read, a choice element), the check
// stops rather than guess.
import r4 from 'fhirpath/fhir-context/r4/index.js';
import { child, functionName, functionParams, ITEM_PRESERVING, variableName } from './fhirpath/ast.js';
import type { AstNode } from './fhirpath/fast.js';

const model = r4 as unknown as {
  path2Type: Record<string, string>;
  choiceTypePaths: Record<string, string[]>;
  pathsDefinedElsewhere: Record<string, string>;
};

/** Elements every resource and element has (from Resource, DomainResource, Element). */
const INHERITED = new Set(['id', 'meta', 'implicitRules', 'language', 'text', 'contained', 'modifierExtension']);
/** Functions whose items are (some of) their input's, of the same type. */
const SAME_TYPE = new Set([...ITEM_PRESERVING, 'trace']);
/** Functions whose argument is evaluated on each input item (`$this`). */
const ON_ITEMS = new Set(['where', 'select', 'exists', 'all', 'repeat']);

/** A position in the model: a path such as 'Patient' or 'Patient.contact'. */
type Step = { path: string } | 'open' | { error: string };

/** The element `member` of `at`, if the model has it. */
function step(at: { path: string }, member: string): Step {
  const path = `${at.path}.${member}`;
  if (member === 'extension') return { path: 'Extension' };
  // `_birthDate`: the JSON of a primitive's id and extensions, which fhirpath.js lets one navigate.
  if (INHERITED.has(member) || member.startsWith('_')) return 'open';
  const elsewhere = model.pathsDefinedElsewhere[path];
  if (elsewhere) return { path: elsewhere };
  const type = model.path2Type[path];
  if (type) {
    if (type === 'BackboneElement' || type === 'Element') return { path };
    // A primitive (lower case) or any resource: nothing further to check.
    return /^[a-z]/.test(type) || type === 'Resource' ? 'open' : { path: type };
  }
  if (model.choiceTypePaths[path]) return 'open';
  // A choice element named with its type: deceasedDateTime, valueQuantity.
  for (const [base, types] of Object.entries(model.choiceTypePaths)) {
    if (!base.startsWith(`${at.path}.`)) continue;
    const name = base.slice(at.path.length + 1);
    const suffix = member.startsWith(name) ? member.slice(name.length) : '';
    // The type name with its first letter in capitals, exactly: deceasedDateTime, not deceasedDatetime.
    if (types.some((t) => suffix === t.charAt(0).toUpperCase() + t.slice(1))) return 'open';
  }
  return { error: `${at.path} has no element '${member}'` };
}

export function elementProblems(ast: AstNode, variableTypes: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  const typeOf = (node: AstNode | undefined, self: Step): Step => {
    if (!node) return 'open';
    switch (node.type) {
      case 'EntireExpression':
      case 'TermExpression':
      case 'ParenthesizedTerm':
        return typeOf(child(node), self);
      case 'ExternalConstantTerm': {
        const type = variableTypes.get(variableName(node) ?? '');
        return type ? { path: type } : 'open';
      }
      case 'InvocationTerm': {
        // A member at the start of a where() argument, say: an element of the item being filtered.
        const member = child(node);
        if (member?.type === 'MemberInvocation' && typeof self === 'object' && 'path' in self)
          return report(step(self, member.text ?? ''));
        return 'open';
      }
      case 'InvocationExpression': {
        const left = child(node);
        const right = child(node, 1);
        const input = typeOf(left, self);
        if (right?.type === 'MemberInvocation')
          return typeof input === 'object' && 'path' in input ? report(step(input, right.text ?? '')) : 'open';
        if (right?.type === 'FunctionInvocation') {
          const name = functionName(right);
          for (const param of functionParams(right)) typeOf(param, ON_ITEMS.has(name) ? input : 'open');
          if (SAME_TYPE.has(name)) return input;
          if (name === 'extension') return { path: 'Extension' };
        }
        return 'open';
      }
      default:
        for (const c of node.children ?? []) typeOf(c, self);
        return 'open';
    }
  };
  const report = (result: Step): Step => {
    if (typeof result === 'object' && 'error' in result) {
      problems.push(result.error);
      return 'open';
    }
    return result;
  };
  typeOf(ast, 'open');
  return problems;
}
