// Ajv, apart from the error descriptions (schema.ts): the configuration's and the mappings' validators are
// compiled ahead (scripts/schema-validators.mjs, with these options and `verbose`), so a command that only
// loads the configuration never loads Ajv.
import { Ajv } from 'ajv';

/**
 * `verbose`: each error carries the schema node that failed (`parentSchema`), which describeAjvError reads a
 * `patternMessage` and an unknown key's allowed keys from. It carries the value refused too (`data`): such
 * errors are described, never logged.
 */
export function createAjv(options: { verbose?: boolean } = {}): Ajv {
  return new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: options.verbose === true });
}
