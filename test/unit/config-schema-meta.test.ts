// The shipped schemas against the JSON Schema meta-schema: the CLI's shared Ajv instance no longer checks
// them at each start (config/schema.ts sharedVerboseAjv), so this is where a broken edit to one is caught.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAjv, readProfileJson, sharedVerboseAjv } from '../../src/config/schema.js';

describe('shipped JSON schemas', () => {
  for (const file of ['config.schema.json', 'mapping.schema.json']) {
    it(`${file} is a valid draft-07 schema`, () => {
      const ajv = createAjv();
      const ok = ajv.validateSchema(readProfileJson(file) as object);
      assert.equal(ok, true, ajv.errorsText(ajv.errors));
    });
  }

  it('are compiled at start without the meta-schema check', () => {
    // A schema only the meta-schema refuses (a `title` that is no text) compiles: the check is not made.
    assert.doesNotThrow(() => sharedVerboseAjv().compile({ type: 'string', title: 3 }));
    assert.throws(() => createAjv().compile({ type: 'string', title: 3 }), /schema is invalid/);
  });
});
