import {
  AsAtom,
  type Atom,
  DotAtom,
  FhirPathAtom,
  FunctionAtom,
  globalSchema,
  isResourceType,
  parseFhirPath,
  SymbolAtom,
  UnionAtom,
} from '@medplum/core';

// R4 shares one SearchParameter between many resource types: Observation's `code` is a union of 30
// branches (`AllergyIntolerance.code | Condition.code | … | Observation.code | …`). Evaluating that
// string with evalFhirPath parses it again on every call and then walks every branch against the
// resource, about 0.4 ms per Observation; the branch for the type alone takes microseconds. So each
// (type, parameter) is parsed once, and branches that can only ever yield nothing for this type
// are dropped.

// Functions that return an empty collection for an empty input without evaluating their arguments.
const EMPTY_IN_EMPTY_OUT = new Set(['where', 'ofType', 'as', 'resolve']);

const cache = new Map<string, Map<string, FhirPathAtom | null>>();

/**
 * The parsed FHIRPath of search parameter `code` for resources of `resourceType`, with the union
 * branches rooted at another resource type removed; undefined when the type has no such parameter
 * (or it has no expression). Evaluates to exactly what the full expression gives on that type.
 */
export function searchExpression(resourceType: string, code: string): FhirPathAtom | undefined {
  let byCode = cache.get(resourceType);
  if (!byCode) {
    byCode = new Map();
    cache.set(resourceType, byCode);
  }
  let atom = byCode.get(code);
  if (atom === undefined) {
    const expression = globalSchema.types[resourceType]?.searchParams?.[code]?.expression;
    atom = expression ? expressionForType(resourceType, expression) : null;
    byCode.set(code, atom);
  }
  return atom ?? undefined;
}

/** `expression` parsed, without the branches that yield nothing on `resourceType` (exported for tests). */
export function expressionForType(resourceType: string, expression: string): FhirPathAtom {
  const parsed = parseFhirPath(expression);
  const kept = branchesOf(parsed.child).filter((branch) => !isForeignPath(branch, resourceType));
  // Nothing left means the expression is not shaped like the R4 ones: keep it whole.
  if (kept.length === 0) return parsed;
  const child = kept.reduce((left, right) => new UnionAtom(left, right));
  return new FhirPathAtom(expression, child);
}

function branchesOf(atom: Atom): Atom[] {
  return atom instanceof UnionAtom ? [...branchesOf(atom.left), ...branchesOf(atom.right)] : [atom];
}

/**
 * True only for a plain path (`Other.a.b`, `Other.a as T`, `.where(…)`, `.resolve()`) that starts at
 * another resource type. Its first step yields nothing on this type (the symbol is neither the
 * resource's type nor one of its element names, which start lower-case), and every later step maps
 * nothing to nothing. Anything else (`exists()`, `iif`, indexers, operators) might turn an empty
 * collection into a value, so it is kept.
 */
function isForeignPath(atom: Atom, resourceType: string): boolean {
  if (atom instanceof SymbolAtom) return isResourceType(atom.name) && atom.name !== resourceType;
  if (atom instanceof AsAtom) return isForeignPath(atom.left, resourceType);
  if (atom instanceof DotAtom) {
    const right = atom.right;
    // A `%variable` step ignores its input, so only element names count as steps.
    const step =
      (right instanceof SymbolAtom && !right.name.startsWith('%')) ||
      (right instanceof FunctionAtom && EMPTY_IN_EMPTY_OUT.has(right.name));
    return step && isForeignPath(atom.left, resourceType);
  }
  return false;
}
