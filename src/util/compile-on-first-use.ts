// ajv compiles a schema by generating and evaluating code: 10-200 ms each, which every command paid at
// start-up for schemas only a call to OpenCRVS or a source uses (`ledger`, `--help`, `validate`).
import type { ValidateFunction } from 'ajv';

/**
 * A validator that compiles on its first call, then is that compiled one: its `errors` are the last call's,
 * as a compiled validator's are.
 */
export function compileOnFirstUse<T>(compile: () => ValidateFunction<T>): ValidateFunction<T> {
  let compiled: ValidateFunction<T> | undefined;
  const validate = (data: unknown): data is T => {
    compiled ??= compile();
    return compiled(data);
  };
  Object.defineProperty(validate, 'errors', { get: () => compiled?.errors ?? null });
  return validate as ValidateFunction<T>;
}
