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

/**
 * A position in the model: paths such as 'Patient' or 'Patient.contact' (several where a variable may be
 * either: `%mother` is a RelatedPerson or a Patient, by the fallback that found her).
 */
type Step = { paths: string[] } | 'open' | { error: string };

/** The element `member` of `path`, if the model has it. */
function stepOne(path: string, member: string): Step {
  const at = `${path}.${member}`;
  if (member === 'extension') return { paths: ['Extension'] };
  // `_birthDate`: the JSON of a primitive's id and extensions, which fhirpath.js lets one navigate.
  if (INHERITED.has(member) || member.startsWith('_')) return 'open';
  const elsewhere = model.pathsDefinedElsewhere[at];
  if (elsewhere) return { paths: [elsewhere] };
  const type = model.path2Type[at];
  if (type) {
    if (type === 'BackboneElement' || type === 'Element') return { paths: [at] };
    // A primitive (lower case) or any resource: nothing further to check.
    return /^[a-z]/.test(type) || type === 'Resource' ? 'open' : { paths: [type] };
  }
  if (model.choiceTypePaths[at]) return 'open';
  // A choice element named with its type: deceasedDateTime, valueQuantity.
  for (const [base, types] of Object.entries(model.choiceTypePaths)) {
    if (!base.startsWith(`${path}.`)) continue;
    const name = base.slice(path.length + 1);
    const suffix = member.startsWith(name) ? member.slice(name.length) : '';
    // The type name with its first letter in capitals, exactly: deceasedDateTime, not deceasedDatetime.
    if (types.some((t) => suffix === t.charAt(0).toUpperCase() + t.slice(1))) return 'open';
  }
  return { error: `${path} has no element '${member}'` };
}

/** The element `member` of any of the types at `at`: an error only when none of them has it. */
function step(at: { paths: string[] }, member: string): Step {
  const found = new Set<string>();
  for (const path of at.paths) {
    const next = stepOne(path, member);
    if (next === 'open') return 'open';
    if ('paths' in next) for (const p of next.paths) found.add(p);
  }
  if (found.size > 0) return { paths: [...found] };
  const names =
    at.paths.length > 1 ? `${at.paths.slice(0, -1).join(', ')} and ${at.paths.at(-1)} have` : `${at.paths[0]} has`;
  return { error: `${names} no element '${member}'` };
}

/** Either of two positions (a union, `a | b`): open when either is. */
function either(a: Step, b: Step): Step {
  if (typeof a !== 'object' || typeof b !== 'object' || !('paths' in a) || !('paths' in b)) return 'open';
  return { paths: [...new Set([...a.paths, ...b.paths])] };
}

export function elementProblems(ast: AstNode, variableTypes: ReadonlyMap<string, readonly string[]>): string[] {
  const problems: string[] = [];
  const typeOf = (node: AstNode | undefined, self: Step): Step => {
    if (!node) return 'open';
    switch (node.type) {
      case 'EntireExpression':
      case 'TermExpression':
      case 'ParenthesizedTerm':
        return typeOf(child(node), self);
      case 'ExternalConstantTerm': {
        const types = variableTypes.get(variableName(node) ?? '');
        return types && types.length > 0 ? { paths: [...types] } : 'open';
      }
      case 'UnionExpression':
        return either(typeOf(child(node), self), typeOf(child(node, 1), self));
      case 'InvocationTerm': {
        // A member at the start of a where() argument, say: an element of the item being filtered.
        const member = child(node);
        if (member?.type === 'MemberInvocation' && typeof self === 'object' && 'paths' in self)
          return report(step(self, member.text ?? ''));
        return 'open';
      }
      case 'InvocationExpression': {
        const left = child(node);
        const right = child(node, 1);
        const input = typeOf(left, self);
        if (right?.type === 'MemberInvocation')
          return typeof input === 'object' && 'paths' in input ? report(step(input, right.text ?? '')) : 'open';
        if (right?.type === 'FunctionInvocation') {
          const name = functionName(right);
          for (const param of functionParams(right)) typeOf(param, ON_ITEMS.has(name) ? input : 'open');
          if (SAME_TYPE.has(name)) return input;
          if (name === 'extension') return { paths: ['Extension'] };
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
