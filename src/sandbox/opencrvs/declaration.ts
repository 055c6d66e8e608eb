import type { EventForm } from './forms.js';
import type { SimVersion } from './types.js';
import { hasValidShape, isEmptyValue } from './value-shapes.js';

/** One entry of the JSON-encoded list OpenCRVS puts in a 400's `message`. */
export interface FieldProblem {
  message: string;
  id: string;
  value: unknown;
}

// The texts of opencrvs-core's `errorMessages` (commons/src/conditionals/validate.ts). 1.9 still used
// the "v2.error.*" set, whose required text was longer.
function requiredText(version: SimVersion): string {
  return version === '2.0' ? 'Required' : 'Required for registration';
}

/** The message core's zod error map gives a structurally wrong value of this field type. */
function invalidText(fieldType: string, value: unknown): string {
  if (typeof value === 'string' && fieldType === 'DATE') return 'Invalid date field';
  if (typeof value === 'string' && fieldType === 'EMAIL') return 'Invalid email address';
  return 'Invalid input';
}

function annotationProblems(form: EventForm, annotation: Record<string, unknown>, version: SimVersion) {
  const problems: FieldProblem[] = [];
  for (const [id, value] of Object.entries(annotation)) {
    const field = form.annotation.get(id);
    if (!field) {
      problems.push({ message: 'Unexpected field', id, value });
      continue;
    }
    // Annotation fields keep `required` as configured: sent empty or null, a required one fails.
    if (isEmptyValue(value) || value === null) {
      if (field.required) problems.push({ message: requiredText(version), id, value });
      continue;
    }
    if (!hasValidShape(field.type, value)) problems.push({ message: invalidText(field.type, value), id, value });
  }
  return problems;
}

function declarationProblems(form: EventForm, declaration: Record<string, unknown>) {
  const problems: FieldProblem[] = [];
  for (const [id, value] of Object.entries(declaration)) {
    const fieldType = form.fields.get(id);
    if (fieldType === undefined) {
      problems.push({ message: 'Unexpected field', id, value });
      continue;
    }
    // NOTIFY forces required=false: empty values are skipped and null is accepted. The SHOW
    // conditional (OpenCRVS also skips hidden fields) cannot be evaluated here: profiles state it in
    // words, so a malformed value in a hidden field is refused here where OpenCRVS would ignore it.
    if (isEmptyValue(value)) continue;
    if (!hasValidShape(fieldType, value)) problems.push({ message: invalidText(fieldType, value), id, value });
  }
  return problems;
}

/** `validateNotifyAction` of opencrvs-core: annotation problems first, then declaration problems. */
export function validateNotifyPayload(
  form: EventForm,
  declaration: Record<string, unknown>,
  annotation: Record<string, unknown> | undefined,
  version: SimVersion,
): FieldProblem[] {
  return [...annotationProblems(form, annotation ?? {}, version), ...declarationProblems(form, declaration)];
}
