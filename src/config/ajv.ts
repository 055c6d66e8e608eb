// The Ajv instances of the configuration and the mappings, apart from the error descriptions (schema.ts):
// a command that only loads the configuration uses its precompiled validator and never loads Ajv.
import { Ajv } from 'ajv';

/**
 * `verbose`: each error carries the schema node that failed (`parentSchema`), which describeAjvError reads a
 * `patternMessage` and an unknown key's allowed keys from. It carries the value refused too (`data`): such
 * errors are described, never logged.
 */
export function createAjv(options: { verbose?: boolean; validateSchema?: boolean } = {}): Ajv {
  return new Ajv({
    allErrors: true,
    useDefaults: true,
    strict: false,
    verbose: options.verbose === true,
    validateSchema: options.validateSchema ?? true,
  });
}

let verbose: Ajv | undefined;
/**
 * One `createAjv({ verbose: true })` for the configuration's and the mappings' schemas
 * (profiles/config.schema.json, profiles/mapping.schema.json). It does not check them against the JSON Schema
 * meta-schema, which an Ajv instance compiles before its first schema: 60-80 ms of every command's start-up,
 * `ledger --find` included, to re-check two files of this package that do not change after its build
 * (test/unit/config-validator.test.ts checks them once). The configuration's own validator is compiled ahead
 * (config-validator.generated.ts), so only the commands that load the mappings compile with it.
 */
export function sharedVerboseAjv(): Ajv {
  verbose ??= createAjv({ verbose: true, validateSchema: false });
  return verbose;
}
